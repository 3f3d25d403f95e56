"""Transcript segments as SubRip (.srt) and WebVTT (.vtt) captions: pure functions, for /v1/audio/transcriptions.

srt([{"start": 0.0, "end": 1.5, "text": " Hello."}])
'1\\n00:00:00,000 --> 00:00:01,500\\nHello.\\n'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _clock(seconds: float, decimal: str) -> str:
    millis = max(0, round(float(seconds) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def srt(segments: Sequence[Mapping[str, Any]]) -> str:
    cues = [
        f"{i}\n{_clock(s['start'], ',')} --> {_clock(s['end'], ',')}\n{str(s['text']).strip()}\n"
        for i, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def vtt(segments: Sequence[Mapping[str, Any]]) -> str:
    cues = [
        f"{_clock(s['start'], '.')} --> {_clock(s['end'], '.')}\n{str(s['text']).strip()}\n" for s in segments
    ]
    return "WEBVTT\n\n" + "\n".join(cues)
