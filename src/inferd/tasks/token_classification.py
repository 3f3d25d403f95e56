from typing import TypedDict

from ._base import InputKind, Param, Task


class TokenClassificationOutput(TypedDict, total=False):
    entity_group: str
    entity: str
    score: float
    word: str
    start: int
    end: int


TASK = Task(
    name="token-classification",
    input_kind=InputKind.TEXT,
    summary="Find named entities (people, places, organisations) in a text.",
    output=list[TokenClassificationOutput],
    parameters=(
        Param(
            "aggregation_strategy",
            str,
            "How to merge sub-word tokens into entities.",
            choices=("none", "simple", "first", "average", "max"),
        ),
        Param("ignore_labels", list, "Labels to leave out.", items=str),
        Param("stride", int, "Overlap between chunks of a long text, in tokens.", minimum=0),
    ),
    example_input="My name is Sarah Jessica Parker but you can call me Jessica",
    example_output=[
        {"entity_group": "PER", "score": 0.99, "word": "Sarah Jessica Parker", "start": 11, "end": 31}
    ],
)
