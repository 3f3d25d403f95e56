from ._base import InputKind, Param, Task
from ._params import CLEAN_UP_TOKENIZATION_SPACES, GENERATE_PARAMETERS, TRUNCATION

TASK = Task(
    name="summarization",
    input_kind=InputKind.TEXT,
    summary="Summarise a text.",
    output=str,
    parameters=(
        CLEAN_UP_TOKENIZATION_SPACES,
        TRUNCATION,
        GENERATE_PARAMETERS,
        Param("min_length", int, "Shortest summary in tokens.", minimum=1, maximum=500),
        Param("max_length", int, "Longest summary in tokens.", minimum=1, maximum=500),
    ),
    example_input="The tower is 324 metres (1,063 ft) tall, about the same height as an 81-storey building.",
    example_output="The tower is 324 metres tall.",
)
