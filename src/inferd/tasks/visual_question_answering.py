from typing import TypedDict

from ._base import InputKind, Task
from ._params import TOP_K


class VisualQuestionAnsweringOutput(TypedDict):
    answer: str
    score: float


TASK = Task(
    name="visual-question-answering",
    input_kind=InputKind.IMAGE_QUESTION,
    summary="Answer a question about a picture.",
    output=list[VisualQuestionAnsweringOutput],
    parameters=(TOP_K,),
    example_input={"image": "lena.png", "question": "Who's in the picture?"},
    example_output=[{"score": 0.93, "answer": "woman"}],
)
