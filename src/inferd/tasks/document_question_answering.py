from typing import TypedDict

from ._base import InputKind, Param, Task
from ._params import QA_PARAMETERS


class DocumentQuestionAnsweringOutput(TypedDict, total=False):
    answer: str
    score: float
    start: int
    end: int


TASK = Task(
    name="document-question-answering",
    input_kind=InputKind.IMAGE_QUESTION,
    summary="Answer a question about a document image.",
    output=list[DocumentQuestionAnsweringOutput],
    parameters=(
        *QA_PARAMETERS,
        Param("lang", str, "Language of the OCR."),
        Param("word_boxes", list, "Words and boxes already read from the image."),
    ),
    example_input={"image": "contract.jpeg", "question": "What is the purchase amount?"},
    example_output=[{"answer": "$1,000,000,000"}],
)
