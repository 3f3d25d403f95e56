from typing import TypedDict

from ._base import InputKind, Param, Task
from ._params import TOP_K


class FillMaskOutput(TypedDict):
    score: float
    token: int
    token_str: str
    sequence: str


TASK = Task(
    name="fill-mask",
    input_kind=InputKind.TEXT,
    summary="Guess the masked word of a sentence.",
    output=list[FillMaskOutput],
    parameters=(TOP_K, Param("targets", list, "Only score these words.", items=str)),
    example_input="The goal of life is <mask>.",
    example_output=[
        {
            "score": 0.06,
            "token": 11098,
            "token_str": " happiness",
            "sequence": "The goal of life is happiness.",
        }
    ],
)
