"""statefun.serving.http1, the pure-Python parser: httptools' callbacks, strictness, bounds."""

from __future__ import annotations

import importlib.util
import typing

import pytest

from statefun.serving.http1 import HttpParserError, HttpRequestParser

VALID = [
    b"POST /statefun HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /health?verbose=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    b"POST /statefun HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n2;name=value\r\nde\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
    b"\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    b"POST /b HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    b"GET / HTTP/1.1\r\nX-Empty:\r\nX-Spaces:   padded   \r\nX-Obs-Text: caf\xe9\r\n\r\n",
]


class Recorder:
    """Records the callbacks in order, joining consecutive url/body pieces."""

    def __init__(self) -> None:
        self.events: list[tuple[str, typing.Any]] = []
        self.parser: typing.Any = None

    def _add(self, kind: str, value: typing.Any = None) -> None:
        if kind in ("url", "body") and self.events and self.events[-1][0] == kind:
            self.events[-1] = (kind, self.events[-1][1] + value)
        else:
            self.events.append((kind, value))

    def on_message_begin(self) -> None:
        self._add("begin")

    def on_url(self, url: bytes) -> None:
        self._add("url", url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # httptools keeps a value's trailing whitespace; ours drops it, as RFC 9110 5.5 says.
        self._add("header", (name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        parser = self.parser
        self._add(
            "headers",
            (parser.get_method(), parser.get_http_version(), parser.should_keep_alive()),
        )

    def on_body(self, body: bytes) -> None:
        if body:
            self._add("body", body)

    def on_message_complete(self) -> None:
        self._add("complete")


def events(
    data: bytes, step: int | None = None, parser_class: typing.Any = None
) -> list[typing.Any]:
    recorder = Recorder()
    parser = (parser_class or HttpRequestParser)(recorder)
    recorder.parser = parser
    step = step or len(data)
    for start in range(0, len(data), step):
        parser.feed_data(data[start : start + step])
    return recorder.events


@pytest.mark.parametrize("data", VALID)
def test_valid_requests_in_any_split_give_the_same_callbacks(data: bytes) -> None:
    whole = events(data)
    assert whole.count(("complete", None)) == data.count(b"HTTP/1.")
    for step in (1, 2, 3, 7, 13):
        assert events(data, step) == whole, step


@pytest.mark.skipif(importlib.util.find_spec("httptools") is None, reason="httptools not installed")
@pytest.mark.parametrize("data", VALID)
def test_the_callbacks_are_those_of_httptools(data: bytes) -> None:
    import httptools

    assert events(data) == events(data, parser_class=httptools.HttpRequestParser)


@pytest.mark.parametrize(
    "data, status",
    [
        (b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 70000, 431),  # refused before it ends
        (b"GET / HTTP/3.0\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET / HTTP/1.1\nHost: x\n", 400),  # bare LF: refused before the head could end
        (b"\x16\x03\x01\x02\x00", 400),  # a TLS client hello, at its first bytes
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 5000, 400),
    ],
)
def test_refusals_carry_their_status(data: bytes, status: int) -> None:
    with pytest.raises(HttpParserError) as refused:
        events(data)
    assert refused.value.status == status


def test_a_broken_parser_stays_broken() -> None:
    parser = HttpRequestParser(Recorder())
    with pytest.raises(HttpParserError):
        parser.feed_data(b"BAD REQUEST LINE HERE\r\n\r\n")
    with pytest.raises(HttpParserError):
        parser.feed_data(b"GET / HTTP/1.1\r\n\r\n")


def test_a_head_trickled_byte_by_byte_costs_linear_time() -> None:
    import time

    head = b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"v" * 60000 + b"\r\n\r\n"
    recorder = Recorder()
    parser = HttpRequestParser(recorder)
    recorder.parser = parser
    started = time.perf_counter()
    for position in range(len(head)):
        parser.feed_data(head[position : position + 1])
    assert recorder.events[-1] == ("complete", None)
    # Quadratic rescanning would take tens of seconds here; linear takes well under one.
    assert time.perf_counter() - started < 5


def test_callback_exceptions_propagate_unchanged() -> None:
    class Refuses(Recorder):
        def on_headers_complete(self) -> None:
            raise LookupError("refused by the protocol")

    with pytest.raises(LookupError, match="refused by the protocol"):
        HttpRequestParser(Refuses()).feed_data(b"GET / HTTP/1.1\r\n\r\n")
