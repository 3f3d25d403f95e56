from ._base import InputKind, Task
from ._params import FUNCTION_TO_APPLY, TOP_K
from ._types import Label

TASK = Task(
    name="text-classification",
    input_kind=InputKind.TEXT,
    summary="Label a text (sentiment, topic, language).",
    output=list[Label],
    parameters=(TOP_K, FUNCTION_TO_APPLY),
    example_input="I like you. I love you",
    example_output=[{"label": "POSITIVE", "score": 0.9998}, {"label": "NEGATIVE", "score": 0.0002}],
)
