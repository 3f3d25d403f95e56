from typing import Any

from ._base import InputKind, Param, Task

TASK = Task(
    name="feature-extraction",
    input_kind=InputKind.TEXT,  # a str or a list of str
    summary="Embed text as vectors (a numpy float32 array in the client).",
    output=Any,  # numpy.ndarray
    parameters=(
        Param("normalize", bool, "L2-normalise the vectors."),
        Param("prompt_name", str, "Name of a prompt the model defines, put before the text."),
        Param("truncate", bool, "Truncate inputs longer than the model takes instead of failing."),
        Param(
            "truncation_direction",
            str,
            "Which side to cut when truncating.",
            choices=("left", "right", "Left", "Right"),
        ),
        Param("dimensions", int, "Keep only the first `dimensions` values (Matryoshka models).", minimum=1),
    ),
    example_input="Today is a sunny day",
    example_output=[0.0196, -0.0243, 0.0558],
    pipeline_route=True,
    top_level_parameters=True,
)
