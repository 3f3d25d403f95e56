from ._base import InputKind, Param, Task
from ._params import CANDIDATE_LABELS, HYPOTHESIS_TEMPLATE
from ._types import Label

TASK = Task(
    name="zero-shot-classification",
    input_kind=InputKind.TEXT,
    summary="Pick which of the given labels fits a text.",
    output=list[Label],
    # v0.21 clients send candidate_labels as one comma-joined string; newer ones send a list. Both are accepted.
    parameters=(
        CANDIDATE_LABELS,
        HYPOTHESIS_TEMPLATE,
        Param("multi_label", bool, "Score each label on its own instead of making them sum to one."),
    ),
    example_input="A new model offers an explanation for how the Galilean satellites formed.",
    example_output=[
        {"label": "scientific discovery", "score": 0.75},
        {"label": "space & cosmos", "score": 0.25},
    ],
)
