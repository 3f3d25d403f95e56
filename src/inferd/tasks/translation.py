from ._base import InputKind, Param, Task
from ._params import CLEAN_UP_TOKENIZATION_SPACES, GENERATE_PARAMETERS, TRUNCATION

TASK = Task(
    name="translation",
    input_kind=InputKind.TEXT,
    summary="Translate a text.",
    output=str,
    parameters=(
        Param("src_lang", str, "Language of the input (multilingual models)."),
        Param("tgt_lang", str, "Language to translate into (multilingual models)."),
        CLEAN_UP_TOKENIZATION_SPACES,
        TRUNCATION,
        GENERATE_PARAMETERS,
    ),
    example_input="Hello world",
    example_output="Hallo Welt",
)
