from typing import TypedDict

from ._base import InputKind, Param, Task
from ._params import GENERATE_PARAMETERS


class AutomaticSpeechRecognitionChunk(TypedDict):
    text: str
    timestamp: list[float]


class AutomaticSpeechRecognitionOutput(TypedDict, total=False):
    text: str
    chunks: list[AutomaticSpeechRecognitionChunk]


TASK = Task(
    name="automatic-speech-recognition",
    input_kind=InputKind.AUDIO,
    summary="Transcribe speech to text.",
    output=str,  # v0.21 returns the text; the full dict is available with return_timestamps
    parameters=(
        Param("return_timestamps", bool, "Also return the text in chunks with their start and end times."),
        GENERATE_PARAMETERS,
    ),
    example_input="sample1.flac",
    example_output="A MAN SAID TO THE UNIVERSE SIR I EXIST",
)
