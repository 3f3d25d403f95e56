"""What the HTTP layer needs to know that the engine does not: limits, auth, CORS, and how to answer."""

from __future__ import annotations

from dataclasses import dataclass

from .media_limits import MediaLimits

# Inputs one request may carry, on every route (HF lists, TEI /embed, OpenAI `input`...): OpenAI's limit for
# embeddings, and what /info reports as TGI's max_client_batch_size.
MAX_CLIENT_BATCH_SIZE = 2048
_MEDIA = MediaLimits()


@dataclass
class ServerSettings:
    """Settings of the HTTP half of `inferd serve` (the engine has its own EngineSettings)."""

    api_key: str | None = None  # when set, every route but /health needs `Authorization: Bearer <key>`
    max_json_bytes: int = 2_000_000  # body limit for JSON/text requests (TGI's default payload limit)
    max_media_bytes: int = 50_000_000  # body limit for requests to models that take images or audio
    request_timeout_s: float = 60.0  # a non-streaming request taking longer answers 504
    compute_type: str = "cpu"
    docs: bool = True  # serve a Swagger UI page at /docs
    playground: bool = True  # serve the playground page at / and /playground (server/playground/)
    cors_origins: tuple[str, ...] = ()  # web origins allowed to call the server from a browser ("*": any)
    gzip: bool = False  # gzip JSON and text answers over 1 KB for clients that accept it (never streams)
    max_client_batch_size: int = MAX_CLIENT_BATCH_SIZE  # inputs per request, any route (413 above)
    # Per image or audio input, checked from the file's header before decoding (see media_limits.py).
    max_image_pixels: int = _MEDIA.max_image_pixels
    max_image_side: int = _MEDIA.max_image_side
    max_image_aspect: float = _MEDIA.max_image_aspect
    max_audio_seconds: float = _MEDIA.max_audio_seconds

    @property
    def media_limits(self) -> MediaLimits:
        return MediaLimits(
            max_image_pixels=self.max_image_pixels,
            max_image_side=self.max_image_side,
            max_image_aspect=self.max_image_aspect,
            max_audio_seconds=self.max_audio_seconds,
        )
