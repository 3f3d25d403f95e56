from typing import Any

from ._base import InputKind, Task
from ._params import IMAGE_GENERATION_PARAMETERS

TASK = Task(
    name="text-to-image",
    input_kind=InputKind.TEXT,
    summary="Draw an image from a prompt.",
    output=Any,  # PIL.Image.Image
    parameters=IMAGE_GENERATION_PARAMETERS,
    single_input=True,
    example_input="An astronaut riding a horse on the moon.",
    example_output="<PIL.Image>",
    returns_image=True,
)
