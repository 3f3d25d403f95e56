from typing import Any

from ._base import InputKind, Param, Task
from ._params import IMAGE_GENERATION_PARAMETERS

TASK = Task(
    name="image-to-image",
    input_kind=InputKind.IMAGE,
    summary="Make a new image from an image and an optional prompt.",
    output=Any,  # PIL.Image.Image
    parameters=(
        Param("prompt", str, "What the new image should show."),
        *IMAGE_GENERATION_PARAMETERS,
        Param(
            "strength",
            float,
            "How much the image may change: 0 keeps it, 1 ignores it (denoising steps run: steps x strength).",
            minimum=0,
            exclusive_minimum=True,
            maximum=1,
        ),
        Param("target_size", dict, "{'width': w, 'height': h} of the output."),
    ),
    example_input="cat.png",
    example_output="<PIL.Image>",
    returns_image=True,
)
