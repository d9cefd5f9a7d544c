"""A pure-Python HTTP/1.1 request parser with httptools' callback interface.

``statefun-serve`` parses requests with httptools (llhttp) when it is installed
and with this parser otherwise, through the same protocol code: the parser
calls ``on_message_begin``, ``on_url``, ``on_header``, ``on_headers_complete``,
``on_body`` and ``on_message_complete`` on its protocol object, and answers
``get_method``, ``get_http_version``, ``should_keep_alive`` and
``should_upgrade``, as ``httptools.HttpRequestParser`` does.

It is strict where leniency lets one request be read two ways (RFC 9112):
lines end in CRLF, header names are tokens with no space before the colon, no
obsolete line folding, ``Content-Length`` is digits (repeated only with the
same value), ``Transfer-Encoding`` may not be combined with ``Content-Length``
and must end in ``chunked``, and chunk sizes are hex. Anything else raises
``HttpParserError`` with the status to answer; the parser then stays broken,
as the connection must be closed. Memory is bounded by ``max_head_bytes`` for
a request head (or a trailer section) and by a small limit for chunk lines:
body bytes are handed to ``on_body`` as they arrive, never buffered whole.
Exceptions raised by a callback propagate unchanged out of ``feed_data``.
"""

from __future__ import annotations

import re
import typing

__all__ = ["HttpParserError", "HttpRequestParser", "ParserProtocol"]

DEFAULT_MAX_HEAD_BYTES = 64 * 1024
# A chunk-size line: hex digits and chunk extensions, which we ignore.
_MAX_CHUNK_LINE = 4096
# 2**64 - 1 has 16 hex digits; anything longer is not a size a sane client sends.
_MAX_CHUNK_SIZE_DIGITS = 16

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
# Field values: visible characters, spaces and tabs, and obs-text; no other controls.
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_DIGITS = re.compile(rb"[0-9]+")
_BARE_LF = re.compile(rb"(?<!\r)\n")

_REQUEST_LINE = 0
_BODY = 1
_CHUNK_SIZE = 2
_CHUNK_DATA = 3
_CHUNK_END = 4
_TRAILERS = 5
_BROKEN = 6


class HttpParserError(Exception):
    """The bytes are not an acceptable HTTP/1.1 request; ``status`` is the 4xx/5xx to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ParserProtocol(typing.Protocol):
    def on_message_begin(self) -> None: ...

    def on_url(self, url: bytes) -> None: ...

    def on_header(self, name: bytes, value: bytes) -> None: ...

    def on_headers_complete(self) -> None: ...

    def on_body(self, body: bytes) -> None: ...

    def on_message_complete(self) -> None: ...


def _tokens(value: bytes) -> list[bytes]:
    return [token.strip(b" \t").lower() for token in value.split(b",") if token.strip(b" \t")]


class HttpRequestParser:
    """Incremental parser of pipelined HTTP/1.x requests (see the module docstring)."""

    def __init__(
        self, protocol: ParserProtocol, *, max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES
    ) -> None:
        self._protocol = protocol
        self._max_head = max_head_bytes
        self._buffer = bytearray()
        self._scan_from = 0
        self._state = _REQUEST_LINE
        self._remaining = 0
        self._method = b""
        self._version = "1.1"
        self._keep_alive = True
        self._upgrade = False
        self._begun = False
        self._error: HttpParserError | None = None

    def get_method(self) -> bytes:
        return self._method

    def get_http_version(self) -> str:
        return self._version

    def should_keep_alive(self) -> bool:
        return self._keep_alive

    def should_upgrade(self) -> bool:
        return self._upgrade

    def feed_data(self, data: bytes | bytearray | memoryview) -> None:
        if self._error is not None:
            raise self._error
        self._buffer += data
        try:
            self._parse()
        except HttpParserError as error:
            self._fail(error)

    def _fail(self, error: HttpParserError) -> typing.NoReturn:
        self._state = _BROKEN
        self._error = error
        self._buffer.clear()
        raise error

    def _parse(self) -> None:
        buffer = self._buffer
        position = 0
        try:
            while position < len(buffer):
                state = self._state
                if state == _REQUEST_LINE:
                    consumed = self._parse_head(buffer, position)
                    if consumed < 0:
                        return
                    position = consumed
                elif state == _BODY:
                    position = self._body_bytes(buffer, position)
                    if self._remaining == 0:
                        self._complete()
                elif state == _CHUNK_SIZE:
                    consumed = self._parse_chunk_size(buffer, position)
                    if consumed < 0:
                        return
                    position = consumed
                elif state == _CHUNK_DATA:
                    position = self._body_bytes(buffer, position)
                    if self._remaining == 0:
                        self._state = _CHUNK_END
                elif state == _CHUNK_END:
                    if len(buffer) - position < 2:
                        return
                    if buffer[position : position + 2] != b"\r\n":
                        raise HttpParserError("chunk data is not followed by CRLF")
                    position += 2
                    self._state = _CHUNK_SIZE
                elif state == _TRAILERS:
                    consumed = self._parse_trailers(buffer, position)
                    if consumed < 0:
                        return
                    position = consumed
                else:  # pragma: no cover - _BROKEN raises in feed_data
                    return
        finally:
            del buffer[:position]
            self._scan_from = max(0, self._scan_from - position)

    def _find_head_end(self, buffer: bytearray, position: int) -> int:
        start = max(position, self._scan_from)
        end = buffer.find(b"\r\n\r\n", start)
        if end < 0:
            if len(buffer) - position > self._max_head:
                raise HttpParserError("request head too large", 431)
            # A head ended by bare LFs would never be found: refuse it now.
            if _BARE_LF.search(buffer, start):
                raise HttpParserError("a line ends in a bare LF, not CRLF")
            # The terminator may straddle this read and the next.
            self._scan_from = max(position, len(buffer) - 3)
        return end

    def _parse_head(self, buffer: bytearray, position: int) -> int:
        # RFC 9112 2.2: ignore empty lines before the request line.
        while buffer.startswith(b"\r\n", position):
            position += 2
        if position >= len(buffer):
            return position
        if buffer[position : position + 1] == b"\n":
            raise HttpParserError("bare LF before the request line")
        if not self._begun:
            # At the first byte, as httptools does: the protocol times the head from here.
            self._begun = True
            self._protocol.on_message_begin()
        end = self._find_head_end(buffer, position)
        if end < 0:
            # Fail fast on bytes that cannot start a request (a look at the first few only, so
            # a head trickling in byte by byte costs linear time).
            method = bytes(buffer[position : position + 32]).split(b" ", 1)[0].split(b"\r", 1)[0]
            if method and not _TOKEN.fullmatch(method):
                raise HttpParserError("malformed request line")
            return -1
        if end - position > self._max_head:
            raise HttpParserError("request head too large", 431)
        self._scan_from = 0
        head = bytes(buffer[position:end])
        lines = head.split(b"\r\n")
        self._request_line(lines[0])
        headers = self._header_lines(lines[1:])
        self._framing(headers)
        self._protocol.on_headers_complete()
        if self._state == _REQUEST_LINE:
            self._complete()
        return end + 4

    def _request_line(self, line: bytes) -> None:
        parts = line.split(b" ")
        if len(parts) != 3 or b"\n" in line or b"\r" in line:
            raise HttpParserError("malformed request line")
        method, target, version = parts
        if not _TOKEN.fullmatch(method):
            raise HttpParserError("malformed request method")
        if not _TARGET.fullmatch(target):
            raise HttpParserError("malformed request target")
        matched = _VERSION.fullmatch(version)
        if matched is None:
            raise HttpParserError("malformed HTTP version")
        if matched.group(1) != b"1":
            raise HttpParserError("only HTTP/1.0 and HTTP/1.1 are supported", 505)
        self._method = method
        self._version = f"1.{matched.group(2).decode()}"
        self._protocol.on_url(target)

    def _header_lines(self, lines: list[bytes]) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        on_header = self._protocol.on_header
        for line in lines:
            if line[:1] in (b" ", b"\t"):
                raise HttpParserError("obsolete header line folding")
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise HttpParserError("malformed header line")
            value = value.strip(b" \t")
            if not _FIELD_VALUE.fullmatch(value):
                raise HttpParserError("control character in a header value")
            headers.append((name.lower(), value))
            on_header(name, value)
        return headers

    def _framing(self, headers: list[tuple[bytes, bytes]]) -> None:
        lengths: set[bytes] = set()
        codings: list[bytes] = []
        connection: list[bytes] = []
        has_upgrade = False
        for name, value in headers:
            if name == b"content-length":
                lengths.update(part.strip(b" \t") for part in value.split(b","))
            elif name == b"transfer-encoding":
                codings += _tokens(value)
            elif name == b"connection":
                connection += _tokens(value)
            elif name == b"upgrade":
                has_upgrade = True
        http10 = self._version == "1.0"
        self._keep_alive = b"keep-alive" in connection if http10 else b"close" not in connection
        self._upgrade = has_upgrade and b"upgrade" in connection and self._method != b"CONNECT"
        if codings:
            if http10:
                raise HttpParserError("Transfer-Encoding in an HTTP/1.0 request")
            if lengths:
                raise HttpParserError("both Transfer-Encoding and Content-Length")
            if codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
                raise HttpParserError("Transfer-Encoding must end in a single chunked")
            if len(codings) > 1:
                raise HttpParserError("transfer codings other than chunked", 501)
            self._state = _CHUNK_SIZE
            return
        if lengths:
            if len(lengths) != 1:
                raise HttpParserError("conflicting Content-Length values")
            (length,) = lengths
            if not _DIGITS.fullmatch(length) or len(length) > 19:
                raise HttpParserError("malformed Content-Length")
            self._remaining = int(length)
            if self._remaining:
                self._state = _BODY
                return
        self._state = _REQUEST_LINE

    def _body_bytes(self, buffer: bytearray, position: int) -> int:
        take = min(self._remaining, len(buffer) - position)
        self._remaining -= take
        self._protocol.on_body(bytes(buffer[position : position + take]))
        return position + take

    def _parse_chunk_size(self, buffer: bytearray, position: int) -> int:
        end = buffer.find(b"\r\n", position, position + _MAX_CHUNK_LINE + 2)
        if end < 0:
            if len(buffer) - position > _MAX_CHUNK_LINE:
                raise HttpParserError("chunk size line too long")
            return -1
        line = bytes(buffer[position:end])
        size, semicolon, extensions = line.partition(b";")
        if semicolon:
            # Chunk extensions (ignored): BWS before ';' is allowed, control characters are not.
            size = size.rstrip(b" \t")
            if not _FIELD_VALUE.fullmatch(extensions):
                raise HttpParserError("control character in chunk extensions")
        if not _HEX.fullmatch(size) or len(size) > _MAX_CHUNK_SIZE_DIGITS:
            raise HttpParserError("malformed chunk size")
        self._remaining = int(size, 16)
        self._state = _CHUNK_DATA if self._remaining else _TRAILERS
        return end + 2

    def _parse_trailers(self, buffer: bytearray, position: int) -> int:
        if buffer.startswith(b"\r\n", position):
            self._complete()
            return position + 2
        end = self._find_head_end(buffer, position)
        if end < 0:
            return -1
        # Trailer fields go to on_header as httptools reports them (the protocol ignores them).
        self._header_lines(bytes(buffer[position:end]).split(b"\r\n"))
        self._scan_from = 0
        self._complete()
        return end + 4

    def _complete(self) -> None:
        self._state = _REQUEST_LINE
        self._begun = False
        self._protocol.on_message_complete()
