"""OpenAI's audio routes on the server's speech models: POST /v1/audio/transcriptions and /v1/audio/speech.

    client.audio.transcriptions.create(model="whisper-1", file=open("a.wav", "rb"), response_format="srt")
    client.audio.speech.create(model="tts-1", voice="alloy", input="Hello", response_format="wav")

`model` picks the model as on the chat route; OpenAI's own names (whisper-1, tts-1, gpt-4o-transcribe...) and
placeholders mean the server's default automatic-speech-recognition / text-to-speech model.

Transcriptions take a multipart body (`file`, `model`, `language`, `prompt`, `response_format` json / text /
srt / vtt / verbose_json, `timestamp_granularities[]` segment, `temperature`). Segment times come from the
model's timestamps (`return_timestamps`); word times (`timestamp_granularities` `word`) from models whose engine
has them (faster-whisper), a 400 naming the field from others.
`language` is reported as sent (or "und", undetermined: the models here do not report what they detected).

Speech takes JSON (`input`, `voice`, `response_format` mp3 / wav / flac / opus / pcm, `speed` 1.0). OpenAI's
voice names (alloy, echo...) give the model's own voice; any other name is passed as the task's `speaker`, so a
model with several voices can be asked for one (and one without refuses it). Each format is encoded with
libsndfile when it has the encoder (MP3 needs libsndfile >= 1.1); otherwise, and for aac, a 400 says so.
`pcm` is OpenAI's: raw 16-bit little-endian samples at 24 kHz, mono.
"""

from __future__ import annotations

import io
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ...backends._audio import resample
from ...tasks import Audio
from ..errors import ServerError
from ..hub import no_model_message
from ..limits import read_body, unless_disconnected
from ..media_limits import decode_audio
from ..metrics import Observation
from ..respond import JSONResponse
from ..state import AppState, endpoint
from ..waiting import waits_for_model
from .openai import bad, json_body
from .openai_captions import srt, vtt

ASR, TTS = "automatic-speech-recognition", "text-to-speech"
TRANSCRIPTION_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
OPENAI_VOICES = {
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
}
# OpenAI's model names: they mean "the server's default model for the task" here.
_OPENAI_MODELS = {"", "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "tts-1", "tts-1-hd"}
_OPENAI_MODELS |= {"gpt-4o-mini-tts", "dummy", "default"}
# response_format -> (libsndfile format, subtype, rates the codec takes (None: any), content type)
SPEECH_FORMATS: Mapping[str, tuple[str, str, tuple[int, ...] | None, str]] = {
    "mp3": (
        "MP3",
        "MPEG_LAYER_III",
        (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
        "audio/mpeg",
    ),
    "wav": ("WAV", "PCM_16", None, "audio/wav"),
    "flac": ("FLAC", "PCM_16", None, "audio/flac"),
    "opus": ("OGG", "OPUS", (8000, 12000, 16000, 24000, 48000), "audio/ogg"),
    "pcm": ("RAW", "PCM_16", (24000,), "audio/pcm"),
}


def _model(request: Request, state: AppState, named: Any, task: str) -> str:
    model_id = request.path_params.get("model_id")
    if model_id is None:
        if named is not None and not isinstance(named, str):
            raise bad("`model` must be a string.", "model")
        model_id = None if named is None or named in _OPENAI_MODELS else named
    if model_id is None:
        model_id = state.engine.recommended(task)
        if model_id is None:
            raise ServerError(no_model_message(task), "not_found")
    entry = state.engine.entry(model_id)
    if task not in entry.tasks:
        raise bad(f"Model {model_id} does not serve {task}; it serves {list(entry.tasks)}.", "model")
    return str(model_id)


async def _form(request: Request, state: AppState) -> dict[str, Any]:
    """The multipart fields (repeated ones as lists), read within the media size limit."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise bad("The body must be multipart/form-data with a `file` field (the audio).")
    data = await read_body(request, state.settings.max_media_bytes)

    async def body() -> AsyncGenerator[bytes, None]:
        yield data

    try:
        form = await MultiPartParser(request.headers, body(), max_part_size=1 << 20).parse()
    except MultiPartException as exc:
        raise bad(f"The multipart body cannot be read: {exc.message}") from None
    fields: dict[str, Any] = {}
    for key, item in form.multi_items():
        value: Any = await item.read() if isinstance(item, UploadFile) else item
        key = key.removesuffix("[]")
        if key in fields:
            fields[key] = [*fields[key], value] if isinstance(fields[key], list) else [fields[key], value]
        else:
            fields[key] = value
    return fields


def _text_field(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or isinstance(value, str):
        return value or None
    raise bad(f"`{name}` must be a text field.", name)


def transcription_request(fields: Mapping[str, Any]) -> tuple[bytes, str, dict[str, Any]]:
    """(audio bytes, response_format, ASR parameters) from the form; a 400 naming the field if wrong."""
    audio = fields.get("file")
    if not isinstance(audio, bytes) or not audio:
        raise bad("`file` must be an audio file (WAV, FLAC, OGG or MP3).", "file")
    response_format = _text_field(fields, "response_format") or "json"
    if response_format not in TRANSCRIPTION_FORMATS:
        raise bad(f"`response_format` must be one of {list(TRANSCRIPTION_FORMATS)}.", "response_format")
    granularities = fields.get("timestamp_granularities", [])
    granularities = [granularities] if isinstance(granularities, str) else granularities
    if any(g not in ("segment", "word") for g in granularities):
        raise bad('`timestamp_granularities` may hold "segment" and "word".', "timestamp_granularities")
    if granularities and response_format != "verbose_json":
        raise bad(
            '`timestamp_granularities` needs `response_format: "verbose_json"`.', "timestamp_granularities"
        )
    params: dict[str, Any] = {}
    for name in ("language", "prompt"):
        value = _text_field(fields, name)
        if value is not None:
            params[name] = value
    temperature = _text_field(fields, "temperature")
    if temperature is not None:
        try:
            degrees = float(temperature)
        except ValueError:
            raise bad("`temperature` must be a number.", "temperature") from None
        if degrees != 0:  # passed on: a model that cannot sample says so
            params["generate_parameters"] = {"temperature": degrees}
    if response_format in ("srt", "vtt", "verbose_json"):
        params["return_timestamps"] = "word" if "word" in granularities else True
    return audio, response_format, params


def _segments(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "seek": 0,
            "start": float(chunk["timestamp"][0]),
            "end": float(
                chunk["timestamp"][1] if chunk["timestamp"][1] is not None else chunk["timestamp"][0]
            ),
            "text": str(chunk["text"]),
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": 0.0,
            "compression_ratio": 0.0,
            "no_speech_prob": 0.0,
        }
        for i, chunk in enumerate(result.get("chunks") or [])
    ]


@endpoint(protocol="openai")
async def transcriptions(request: Request, state: AppState, obs: Observation) -> Response:
    fields = await _form(request, state)
    model_id = _model(request, state, fields.get("model"), ASR)
    obs.model, obs.task = model_id, ASR
    data, response_format, params = transcription_request(fields)
    audio: Audio = await run_in_threadpool(decode_audio, data, "file", state.settings.media_limits)
    work = state.engine.predict(model_id, ASR, [audio], params, wait_for_model=waits_for_model(request))
    [result] = await unless_disconnected(request, work, state.settings.request_timeout_s)
    text = str(result.get("text", "")).strip()
    headers = obs.headers(state.settings.compute_type)
    if response_format == "text":
        return PlainTextResponse(text + "\n", headers=headers)
    if response_format in ("srt", "vtt"):
        segments = _segments(result) or [{"start": 0.0, "end": audio.seconds, "text": text}]
        render = srt if response_format == "srt" else vtt
        return PlainTextResponse(render(segments), headers=headers)
    answer: dict[str, Any] = {"text": text}
    if response_format == "verbose_json":
        answer = {
            "task": "transcribe",
            "language": params.get("language", "und"),
            "duration": round(audio.seconds, 3),
            "text": text,
            "segments": _segments(result),
        }
        if params["return_timestamps"] == "word":
            if "words" not in result:  # a model whose engine has no word times (only faster-whisper's has)
                raise bad(
                    f"Model {model_id} gives no word timestamps; ask for segments.", "timestamp_granularities"
                )
            answer["words"] = result["words"]
    return JSONResponse(answer, headers=headers)


def speech_request(body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(text, response_format, TTS parameters) from the JSON body; a 400 naming the field if wrong."""
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise bad("`input` must be a non-empty string.", "input")
    voice = body.get("voice")
    if voice is not None and not isinstance(voice, (str, dict)):
        raise bad("`voice` must be a string.", "voice")
    params: dict[str, Any] = {}
    if isinstance(voice, str) and voice and voice not in OPENAI_VOICES:
        params["speaker"] = voice
    response_format = body.get("response_format") or "mp3"
    if response_format not in SPEECH_FORMATS:
        raise bad(
            f"`response_format` {response_format!r} cannot be encoded here; use one of {list(SPEECH_FORMATS)}.",
            "response_format",
        )
    speed = body.get("speed")
    if speed not in (None, 1, 1.0):
        raise bad("`speed` other than 1.0 is not available on this server's voices.", "speed")
    if body.get("instructions"):
        raise bad("`instructions` are not available on this server's voices.", "instructions")
    if body.get("stream_format") not in (None, "audio"):
        raise bad('`stream_format` must be "audio".', "stream_format")
    return text, response_format, params


def encode_speech(audio: Audio, response_format: str) -> bytes:
    """The audio in OpenAI's `response_format`, resampled to a rate the codec takes; ServerError if libsndfile
    has no encoder for it."""
    import soundfile

    fmt, subtype, rates, _ = SPEECH_FORMATS[response_format]
    if subtype not in soundfile.available_subtypes(fmt):
        raise bad(
            f"`response_format` {response_format!r} needs a libsndfile with the {subtype} encoder, which this "
            f"server's has not (libsndfile {soundfile.__libsndfile_version__}); use wav or flac.",
            "response_format",
        )
    samples, rate = np.asarray(audio.array, dtype=np.float32), int(audio.sampling_rate)
    if rates is not None and rate not in rates:
        target = min((r for r in rates if r >= rate), default=max(rates))
        samples, rate = resample(samples, rate, target), target
    out = io.BytesIO()
    soundfile.write(out, np.clip(samples, -1.0, 1.0), rate, format=fmt, subtype=subtype)
    return out.getvalue()


@endpoint(protocol="openai")
async def speech(request: Request, state: AppState, obs: Observation) -> Response:
    body = await json_body(request, state, "`input` and `voice`")
    model_id = _model(request, state, body.get("model"), TTS)
    obs.model, obs.task = model_id, TTS
    text, response_format, params = speech_request(body)
    work = state.engine.predict(model_id, TTS, [text], params, wait_for_model=waits_for_model(request))
    [audio] = await unless_disconnected(request, work, state.settings.request_timeout_s)
    data = await run_in_threadpool(encode_speech, audio, response_format)
    headers = obs.headers(state.settings.compute_type)
    headers["x-compute-characters"] = str(len(text))
    return Response(data, media_type=SPEECH_FORMATS[response_format][3], headers=headers)


__all__ = ["speech", "transcriptions"]
