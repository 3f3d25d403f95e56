from ._base import InputKind, Task
from ._params import CANDIDATE_LABELS, HYPOTHESIS_TEMPLATE
from ._types import Label

TASK = Task(
    name="zero-shot-image-classification",
    input_kind=InputKind.IMAGE,
    summary="Pick which of the given labels fits an image.",
    output=list[Label],
    parameters=(CANDIDATE_LABELS, HYPOTHESIS_TEMPLATE),
    example_input="cat.png",
    example_output=[{"label": "cat", "score": 0.95}, {"label": "dog", "score": 0.05}],
)
