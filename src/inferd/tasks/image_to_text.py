from ._base import InputKind, Task
from ._params import GENERATE_PARAMETERS, MAX_NEW_TOKENS

TASK = Task(
    name="image-to-text",
    input_kind=InputKind.IMAGE,
    summary="Describe or read an image (captioning, OCR).",
    output=str,
    parameters=(MAX_NEW_TOKENS, GENERATE_PARAMETERS),
    example_input="invoice.png",
    example_output="Invoice #4521",
)
