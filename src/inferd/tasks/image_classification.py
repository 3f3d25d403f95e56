from ._base import InputKind, Task
from ._params import FUNCTION_TO_APPLY, TOP_K
from ._types import Label

TASK = Task(
    name="image-classification",
    input_kind=InputKind.IMAGE,
    summary="Label an image.",
    output=list[Label],
    parameters=(TOP_K, FUNCTION_TO_APPLY),
    example_input="cat.png",
    example_output=[{"label": "Egyptian cat", "score": 0.77}, {"label": "tabby, tabby cat", "score": 0.12}],
)
