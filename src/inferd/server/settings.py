"""What the HTTP layer needs to know that the engine does not: limits, auth, CORS, and how to answer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServerSettings:
    """Settings of the HTTP half of `inferd serve` (the engine has its own EngineSettings)."""

    api_key: str | None = None  # when set, every inference route needs `Authorization: Bearer <key>`
    max_json_bytes: int = 2_000_000  # body limit for JSON/text requests (TGI's default payload limit)
    max_media_bytes: int = 50_000_000  # body limit for requests to models that take images or audio
    request_timeout_s: float = 60.0  # a non-streaming request taking longer answers 504
    compute_type: str = "cpu"
    docs: bool = True  # serve a Swagger UI page at /docs
    playground: bool = True  # serve the playground page at / and /playground (server/playground/)
    cors_origins: tuple[str, ...] = ()  # web origins allowed to call the server from a browser ("*": any)
    gzip: bool = False  # gzip JSON and text answers over 1 KB for clients that accept it (never streams)
