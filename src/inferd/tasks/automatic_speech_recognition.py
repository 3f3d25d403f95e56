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
        Param(
            "language",
            str,
            "Language of the speech, an ISO-639-1 code such as 'en' (unset: the model's own setting or detection).",
        ),
        Param(
            "prompt", str, "Text the speech follows on from, to steer spelling and style (Whisper's prompt)."
        ),
        GENERATE_PARAMETERS,
    ),
    example_input="sample1.flac",
    example_output="A MAN SAID TO THE UNIVERSE SIR I EXIST",
)
