from typing import Any, TypedDict

from ._base import InputKind, Param, Task


class ImageSegmentationOutput(TypedDict):
    label: str
    score: float | None
    mask: Any  # PIL.Image.Image in the client; base64 PNG on the wire


TASK = Task(
    name="image-segmentation",
    input_kind=InputKind.IMAGE,
    summary="Split an image into labelled masks.",
    output=list[ImageSegmentationOutput],
    parameters=(
        Param("threshold", float, "Drop masks scored below this.", minimum=0, maximum=1),
        Param(
            "mask_threshold",
            float,
            "Threshold that turns probabilities into a binary mask.",
            minimum=0,
            maximum=1,
        ),
        Param(
            "overlap_mask_area_threshold",
            float,
            "Merge or drop small disconnected parts of a mask.",
            minimum=0,
            maximum=1,
        ),
        Param("subtask", str, "Segmentation kind.", choices=("instance", "panoptic", "semantic")),
    ),
    example_input="astronaut.png",
    example_output=[{"label": "person", "score": 0.99, "mask": "<PIL.Image mode=L size=512x512>"}],
)
