"""Binary inputs (audio, images): what users may pass, turned into bytes. Pure except for reading local files;
URLs are handed back for the client to download with its own connection pool.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any, BinaryIO, Union

# bytes, bytearray, memoryview, a binary file object, a path (str or Path), an http(s) URL, or a PIL.Image
ContentT = Union[bytes, bytearray, memoryview, BinaryIO, str, Path, Any]  # noqa: UP007


class Url(str):
    """A binary input the client must download first."""


def _is_pil_image(content: Any) -> bool:
    return any(cls.__module__.startswith("PIL.") for cls in type(content).__mro__) and hasattr(
        content, "save"
    )


def prepare(content: ContentT) -> bytes | Url:
    """Bytes for everything but a URL, which comes back as `Url` for the client to download."""
    if isinstance(content, bytes):
        return content
    if isinstance(content, (bytearray, memoryview)):
        return bytes(content)
    if isinstance(content, str) and content.startswith(("http://", "https://")):
        return Url(content)
    if isinstance(content, (str, Path)):
        path = Path(content)
        if not path.is_file():
            raise FileNotFoundError(
                f"File not found at {path}. If `data` is a string, it must either be a URL or a path to a"
                " local file. To pass raw content, please encode it as bytes first."
            )
        return path.read_bytes()
    if _is_pil_image(content):
        image: Any = content
        buffer = io.BytesIO()
        image.save(buffer, format=image.format or "PNG")
        return buffer.getvalue()
    if hasattr(content, "read"):
        data = content.read()
        if isinstance(data, str):
            raise TypeError("A file given as input must be opened in binary mode ('rb').")
        return bytes(data)
    raise TypeError(
        f"Unsupported input type {type(content).__name__}: pass bytes, a binary file, a path, a URL or a PIL.Image."
    )


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pil_image(data: bytes) -> Any:
    """A PIL.Image from encoded bytes (PNG, JPEG, ...). Pillow is an optional extra."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(
            "This task returns images: install Pillow with `pip install 'inferd[images]'` (or `pip install Pillow`)."
        ) from exc
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
