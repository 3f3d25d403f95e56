import pytest

from inferd.sse import ServerSentEvent, SSEDecoder, aiter_events, encode_event, iter_events


def events(text: str) -> list[ServerSentEvent]:
    return list(iter_events(text.split("\n")))


def test_data_with_and_without_space_after_colon():
    assert [e.data for e in events("data:x\n\ndata: x\n\ndata:  x\n\n")] == ["x", "x", " x"]


def test_data_that_starts_with_the_word_data_is_not_eaten():
    # lstrip("data:") would turn this into "ta".
    assert events("data: data\n\n")[0].data == "data"
    assert events("data:ata\n\n")[0].data == "ata"


def test_multi_line_data_is_joined_with_newlines():
    assert events("data: a\ndata:\ndata: b\n\n")[0].data == "a\n\nb"


def test_comments_are_ignored():
    assert [e.data for e in events(": keep-alive\ndata: x\n:another\n\n")] == ["x"]


def test_event_id_and_retry():
    (event,) = events("event: token\nid: 7\nretry: 1500\ndata: {}\n\n")
    assert event == ServerSentEvent(event="token", data="{}", id="7", retry=1500)


def test_id_persists_but_event_and_retry_reset():
    first, second = events("event: a\nid: 1\nretry: 10\ndata: x\n\ndata: y\n\n")
    assert (second.event, second.id, second.retry) == (None, "1", None)


def test_retry_must_be_digits_and_id_must_not_hold_nul():
    (event,) = events("retry: 1.5\nid: a\0b\ndata: x\n\n")
    assert event.retry is None and event.id is None


def test_field_without_colon_has_an_empty_value():
    (event,) = events("data\ndata\n\n")
    assert event.data == "\n"


def test_unknown_fields_and_events_without_data_are_dropped():
    assert events("foo: bar\n\nevent: ping\n\n\n\n") == []


def test_crlf_and_cr_line_endings():
    lines = ["data: a\r\n", "\r\n", "data: b\r", "\r"]
    assert [e.data for e in iter_events(lines)] == ["a", "b"]


def test_bytes_lines_and_utf8():
    lines = ['data: {"text": "é"}\n'.encode(), b"\n"]
    assert [e.data for e in iter_events(lines)] == ['{"text": "é"}']


def test_an_item_holding_several_lines():
    assert [e.data for e in iter_events(["data: a\n\ndata: b\n\n"])] == ["a", "b"]


def test_flush_dispatches_an_event_without_trailing_blank_line():
    # TGI sometimes closes the stream right after its last data line.
    assert [e.data for e in iter_events(["data: a", "", "data: last"])] == ["a", "last"]
    decoder = SSEDecoder()
    assert decoder.decode("data: x") is None
    assert decoder.flush() == ServerSentEvent(event=None, data="x", id=None, retry=None)
    assert decoder.flush() is None


def test_byte_order_mark_is_stripped():
    assert events("\ufeffdata: x\n\n")[0].data == "x"


def test_tgi_stream_recorded_body():
    body = (
        'data:{"token":{"id":3,"text":" ","logprob":-2.0078125,"special":false},'
        '"generated_text":"","details":{"finish_reason":"length","generated_tokens":1,"seed":null}}\n\n'
    )
    (event,) = iter_events(body.encode().splitlines(keepends=True))
    assert event.data.startswith('{"token"')


async def test_aiter_events():
    async def lines():
        for line in [b"data: a\n", b"\n", b"data: b\n"]:
            yield line

    assert [e.data async for e in aiter_events(lines())] == ["a", "b"]


def test_encode_event_round_trips():
    raw = encode_event("line1\nline2", event="message", id="3")
    assert raw == b"event: message\nid: 3\ndata: line1\ndata: line2\n\n"
    assert list(iter_events(raw.decode().split("\n"))) == [
        ServerSentEvent(event="message", data="line1\nline2", id="3", retry=None)
    ]
    assert encode_event("[DONE]") == b"data: [DONE]\n\n"
    with pytest.raises(ValueError):
        encode_event("x", event="a\nb")
