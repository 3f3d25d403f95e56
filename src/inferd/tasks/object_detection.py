from typing import TypedDict

from ._base import InputKind, Param, Task
from ._types import Box


class ObjectDetectionOutput(TypedDict):
    label: str
    score: float
    box: Box


TASK = Task(
    name="object-detection",
    input_kind=InputKind.IMAGE,
    summary="Find objects in an image, with boxes.",
    output=list[ObjectDetectionOutput],
    parameters=(Param("threshold", float, "Drop detections scored below this.", minimum=0, maximum=1),),
    example_input="people.jpg",
    example_output=[
        {"label": "person", "score": 0.99, "box": {"xmin": 10, "ymin": 20, "xmax": 110, "ymax": 220}}
    ],
)
