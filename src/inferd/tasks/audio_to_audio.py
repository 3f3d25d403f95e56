from typing import TypedDict

from ._base import InputKind, Task

AudioToAudioOutput = TypedDict("AudioToAudioOutput", {"label": str, "content-type": str, "blob": bytes})

TASK = Task(
    name="audio-to-audio",
    input_kind=InputKind.AUDIO,
    summary="Turn audio into other audio (source separation, enhancement).",
    output=list[AudioToAudioOutput],
    example_input="sample1.flac",
    example_output=[{"label": "label_0", "content-type": "audio/flac", "blob": b"fLaC..."}],
    returns_audio=True,
)
