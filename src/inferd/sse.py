"""Server-sent events: one line-by-line decoder that follows the WHATWG spec, and the encoder the server uses.

Pure: no I/O. The client feeds it the lines of a response body (httpx `iter_lines`, aiohttp `content`):

    for event in iter_events(response.iter_lines()):
        if event.data == "[DONE]":
            break

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

# The only line terminators SSE knows; str.splitlines() would also split on \x0b, \x1c, \u2028...
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@dataclass(frozen=True)
class ServerSentEvent:
    event: str | None
    data: str
    id: str | None
    retry: int | None


class SSEDecoder:
    """Feed it lines; it returns an event each time a blank line ends one."""

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        # The spec keeps the last event id across events (it is what a reconnect sends as Last-Event-ID).
        self._last_event_id: str | None = None
        self._retry: int | None = None
        self._first_line = True

    def decode(self, line: str) -> ServerSentEvent | None:
        line = line.rstrip("\r\n")
        if self._first_line:
            # A UTF-8 byte order mark may open the stream; it is not part of the first field name.
            self._first_line = False
            if line.startswith(_BOM):
                line = line[1:]
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: TGI and proxies use them as keep-alives
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]  # exactly one space is part of the syntax; more spaces are data
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
        # Any other field name is ignored, as the spec says.
        return None

    def flush(self) -> ServerSentEvent | None:
        """At end of stream: the pending event, if the server did not end it with a blank line.

        The spec would discard it; TGI and HF servers sometimes close the stream right after the last `data:`
        line, and dropping their final event (the one with `details`) would lose the generation's end.
        """
        return self._dispatch()

    def _dispatch(self) -> ServerSentEvent | None:
        data, event, retry = self._data, self._event, self._retry
        self._data, self._event, self._retry = [], None, None
        if not data:
            # Per spec an event without data is not dispatched (e.g. a lone `event:` or `retry:` block).
            return None
        return ServerSentEvent(event=event, data="\n".join(data), id=self._last_event_id, retry=retry)


def _split(item: str | bytes) -> list[str]:
    """The lines in one item: normally one line, but tolerate an item holding several whole lines."""
    text = item.decode("utf-8", errors="replace") if isinstance(item, (bytes, bytearray)) else item
    # Strip exactly one terminator: "\n" alone is one blank line, "a\n\n" is "a" then a blank line.
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith(("\n", "\r")):
        text = text[:-1]
    return _LINE_BREAK.split(text)


def iter_events(lines: Iterable[str | bytes]) -> Iterator[ServerSentEvent]:
    """The events in a sequence of lines (str or bytes, with or without their line terminator)."""
    decoder = SSEDecoder()
    for item in lines:
        for line in _split(item):
            event = decoder.decode(line)
            if event is not None:
                yield event
    last = decoder.flush()
    if last is not None:
        yield last


async def aiter_events(lines: AsyncIterable[str | bytes]) -> AsyncIterator[ServerSentEvent]:
    """`iter_events` for an async source of lines."""
    decoder = SSEDecoder()
    async for item in lines:
        for line in _split(item):
            event = decoder.decode(line)
            if event is not None:
                yield event
    last = decoder.flush()
    if last is not None:
        yield last


def encode_event(data: str, *, event: str | None = None, id: str | None = None) -> bytes:
    """One event on the wire: `data: ...\\n\\n`, each line of `data` on its own `data:` line."""
    parts = []
    for name, value in (("event", event), ("id", id)):
        if value is not None:
            if _LINE_BREAK.search(value):
                raise ValueError(f"An SSE `{name}` cannot contain a line break: {value!r}")
            parts.append(f"{name}: {value}\n")
    parts.extend(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    parts.append("\n")
    return "".join(parts).encode("utf-8")
