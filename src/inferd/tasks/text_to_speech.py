from ._base import InputKind, Param, Task

TASK = Task(
    name="text-to-speech",
    input_kind=InputKind.TEXT,
    summary="Read text aloud; the answer is audio bytes (FLAC unless `Accept` asks for WAV).",
    output=bytes,
    parameters=(Param("speaker", str, "Voice or speaker name, when the model has several."),),
    single_input=True,
    example_input="Hello world",
    example_output=b"fLaC...",
    returns_audio=True,
)
