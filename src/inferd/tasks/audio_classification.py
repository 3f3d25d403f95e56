from ._base import InputKind, Task
from ._params import FUNCTION_TO_APPLY, TOP_K
from ._types import Label

TASK = Task(
    name="audio-classification",
    input_kind=InputKind.AUDIO,
    summary="Label an audio clip.",
    output=list[Label],
    parameters=(TOP_K, FUNCTION_TO_APPLY),
    example_input="sample1.flac",
    example_output=[{"label": "speech", "score": 0.98}, {"label": "no-speech", "score": 0.02}],
)
