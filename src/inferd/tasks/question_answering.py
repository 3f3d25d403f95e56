from typing import TypedDict

from ._base import InputKind, Param, Task
from ._params import QA_PARAMETERS


class QuestionAnsweringOutput(TypedDict):
    score: float
    start: int
    end: int
    answer: str


TASK = Task(
    name="question-answering",
    input_kind=InputKind.QUESTION_CONTEXT,
    summary="Find the answer to a question in a context.",
    output=QuestionAnsweringOutput,
    parameters=(
        *QA_PARAMETERS,
        Param("align_to_words", bool, "Only give answers that start and end on word boundaries."),
    ),
    example_input={"question": "What is my name?", "context": "My name is Clara and I live in Berkeley."},
    example_output={"score": 0.98, "start": 11, "end": 16, "answer": "Clara"},
)
