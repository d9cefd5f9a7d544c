"""A small keep-alive HTTP/1.1 client for request-reply calls: one POST, one reply, per attempt.

The runtime makes one request per batch, and with many distinct addresses a batch is often a
single message; aiohttp's client spent about 100 µs of CPU per request on that path. This client
does only what the protocol needs (POST with Content-Length; replies with Content-Length,
chunked, or read-until-close bodies; gzip/deflate if a server compresses anyway) at a fraction
of the cost. Failures are exceptions of this module, described for people by `describe`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024
# The async transport's default payload_max_bytes; a reply larger than this is refused.
MAX_BODY_BYTES = 32 * 1024 * 1024
_WANTED_HEADERS = frozenset(
    {"content-type", "content-length", "transfer-encoding", "connection", "content-encoding"}
)
# How often attempts are checked against their deadlines: one timer for all of them is cheaper
# than one per request.
_WATCH_EVERY_S = 0.02


class HttpError(Exception):
    """An attempt that got no usable HTTP reply; the message is meant for people."""


class Disconnected(HttpError):
    """The server closed the connection before the reply was complete."""


class AttemptTimeout(HttpError):
    """No complete reply within the time left for the attempt."""


@dataclass(frozen=True)
class Target:
    """Where and how to POST: parsed once per URL."""

    url: str
    scheme: str
    host: str
    port: int
    head: bytes  # request line and fixed headers, up to (not including) Content-Length

    @staticmethod
    def parse(url: str, headers: dict[str, str]) -> "Target":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        default_port = port == (443 if parts.scheme == "https" else 80)
        host_header = parts.hostname if default_port else f"{parts.hostname}:{port}"
        if ":" in parts.hostname:  # an IPv6 literal
            host_header = f"[{parts.hostname}]" + ("" if default_port else f":{port}")
        lines = [f"POST {path} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        return Target(url, parts.scheme, parts.hostname, port, head)


@dataclass(frozen=True)
class Reply:
    status: int
    reason: str
    content_type: str | None
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Reply] | None = None
        self._received_any = False
        self._reset_reply()

    def _reset_reply(self) -> None:
        self._status = 0
        self._reason = ""
        self._headers: dict[str, str] = {}
        self._body_start = -1
        self._length = -1  # Content-Length, or -1
        self._chunked = False
        self._until_close = False
        self._keep_alive = True
        self._chunks = bytearray()
        self._chunk_pos = 0

    # --- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._received_any = True
        if self._waiter is not None:
            self._parse()

    def eof_received(self) -> bool:
        self._finish_at_close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._finish_at_close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(
                Disconnected("the server closed the connection without a complete reply")
            )
        self._waiter = None

    # --- use -------------------------------------------------------------------------------
    @property
    def received_any(self) -> bool:
        return self._received_any

    def request(self, target: Target, body: bytes) -> "asyncio.Future[Reply]":
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._received_any = False
        self._reset_reply()
        self.transport.write(target.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        return self._waiter

    def abort(self, error: HttpError) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self._waiter = None
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return not self.closed and self._keep_alive and not self._until_close

    # --- parsing ---------------------------------------------------------------------------
    def _complete(self, body: bytes) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        encoding = self._headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "deflate"):
            try:
                body = zlib.decompress(body, 47 if encoding == "gzip" else zlib.MAX_WBITS)
            except zlib.error as error:
                self.close()
                waiter.set_exception(
                    HttpError(f"the {encoding} reply body does not decode: {error}")
                )
                return
        elif encoding != "identity":
            self.close()
            waiter.set_exception(HttpError(f"unsupported Content-Encoding {encoding!r}"))
            return
        waiter.set_result(
            Reply(self._status, self._reason, self._headers.get("content-type"), body)
        )

    def _fail(self, problem: str) -> None:
        self.abort(HttpError(problem))

    def _parse(self) -> None:
        while self._waiter is not None:
            if self._body_start < 0:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buffer) > MAX_HEAD_BYTES:
                        self._fail("the reply's header is larger than 64 KiB")
                    return
                if not self._parse_head(bytes(self._buffer[:end]).decode("latin-1")):
                    return
                del self._buffer[: end + 4]
                self._body_start = 0
                if 100 <= self._status < 200:  # 100 Continue and friends: the reply follows
                    self._reset_reply()
                    continue
            if self._length >= 0:
                if len(self._buffer) < self._length:
                    return
                body = bytes(self._buffer[: self._length])
                del self._buffer[: self._length]
                self._complete(body)
                return
            if self._chunked:
                self._parse_chunks()
                return
            if len(self._buffer) > MAX_BODY_BYTES:
                self._fail("the reply is larger than 32 MiB")
            return  # read until the server closes the connection

    def _parse_head(self, head: str) -> bool:
        status_line, _, header_text = head.partition("\r\n")
        version, _, rest = status_line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            self._fail(f"not an HTTP/1.x reply: {status_line[:80]!r}")
            return False
        self._status, self._reason = int(code), reason.strip()
        headers: dict[str, str] = {}
        for line in header_text.split("\r\n"):
            name, sep, value = line.partition(":")
            key = name.lower()
            if key not in _WANTED_HEADERS:
                key = key.strip()
                if key not in _WANTED_HEADERS:
                    continue
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self._headers = headers
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            self._keep_alive = "keep-alive" in connection
        else:
            self._keep_alive = "close" not in connection
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in headers:
            text = headers["content-length"].split(",")[0].strip()
            if not text.isdigit():
                self._fail(f"bad Content-Length {headers['content-length']!r}")
                return False
            self._length = int(text)
            if self._length > MAX_BODY_BYTES:
                self._fail(f"the reply is larger than 32 MiB ({self._length} bytes)")
                return False
        elif self._status in (204, 304):
            self._length = 0
        else:
            self._until_close = True
        return True

    def _parse_chunks(self) -> None:
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n", self._chunk_pos)
            if line_end < 0:
                return
            size_text = bytes(buffer[self._chunk_pos : line_end]).split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                self._fail(f"bad chunk size {size_text[:20]!r}")
                return
            if size == 0:
                # The last chunk; optional trailer lines end with an empty line.
                trailer_end = buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return
                del buffer[: trailer_end + 4]
                self._chunk_pos = 0
                self._complete(bytes(self._chunks))
                return
            start = line_end + 2
            if len(buffer) < start + size + 2:
                return
            self._chunks += buffer[start : start + size]
            if len(self._chunks) > MAX_BODY_BYTES:
                self._fail("the reply is larger than 32 MiB")
                return
            self._chunk_pos = start + size + 2

    def _finish_at_close(self) -> None:
        if self._waiter is not None and self._until_close and self._body_start >= 0:
            self._keep_alive = False
            body = bytes(self._buffer)
            self._buffer.clear()
            self._complete(body)


class ConnectionPool:
    """Idle keep-alive connections per (scheme, host, port); a connection is reused LIFO."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        self._deadlines: dict[_Connection, tuple[float, float]] = {}  # (deadline, timeout)
        self._watchdog: asyncio.TimerHandle | None = None

    def _watch(self) -> None:
        self._watchdog = None
        now = asyncio.get_running_loop().time()
        for connection, (deadline, timeout_s) in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[connection]
                connection.abort(AttemptTimeout(f"no reply within {timeout_s:.3g} s"))
        if self._deadlines:
            self._watchdog = asyncio.get_running_loop().call_later(_WATCH_EVERY_S, self._watch)

    async def post(
        self, target: Target, body: bytes, timeout_s: float, connect_timeout_s: float
    ) -> Reply:
        """One attempt. A reused connection the server had already closed is replaced once,
        silently: that is not a failure of the function."""
        key = (target.scheme, target.host, target.port)
        idle = self._idle.setdefault(key, [])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            reused = False
            connection: _Connection | None = None
            while idle:
                candidate = idle.pop()
                if not candidate.closed:
                    connection, reused = candidate, True
                    break
            if connection is None:
                remaining = max(deadline - loop.time(), 0.001)
                connection = await self._connect(
                    target, min(connect_timeout_s, remaining), cut=remaining < connect_timeout_s
                )
            try:
                reply = await self._exchange(connection, target, body, deadline - loop.time())
            except Disconnected:
                if reused and not connection.received_any and loop.time() < deadline:
                    continue
                raise
            if connection.reusable:
                idle.append(connection)
            else:
                connection.close()
            return reply

    async def _exchange(
        self, connection: _Connection, target: Target, body: bytes, timeout_s: float
    ) -> Reply:
        waiter = connection.request(target, body)
        loop = asyncio.get_running_loop()
        self._deadlines[connection] = (loop.time() + timeout_s, timeout_s)
        if self._watchdog is None:
            self._watchdog = loop.call_later(min(_WATCH_EVERY_S, timeout_s), self._watch)
        try:
            return await waiter
        except asyncio.CancelledError:
            connection.close()
            raise
        finally:
            self._deadlines.pop(connection, None)

    async def _connect(self, target: Target, timeout_s: float, cut: bool) -> _Connection:
        """A new connection; `cut`: the time left for the attempt, not the connect timeout,
        limits it (then running out of it is the call timeout's doing)."""
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if target.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls else None,
                ),
                timeout=timeout_s,
            )
        except asyncio.TimeoutError:
            problem = f"could not connect to {target.host}:{target.port} within {timeout_s:.3g} s"
            raise (AttemptTimeout if cut else HttpError)(problem) from None
        except socket.gaierror as error:
            raise HttpError(
                f"the host {target.host!r} is not known here ({error.strerror or error}); a "
                "docker or kubernetes service name? Point the endpoint elsewhere with "
                "--endpoint PATTERN=URL"
            ) from None
        except ConnectionRefusedError:
            raise HttpError(f"connection refused by {target.host}:{target.port}") from None
        except (OSError, ssl.SSLError) as error:
            raise HttpError(
                f"could not connect to {target.host}:{target.port}: {error.strerror or error}"
            ) from None
        sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        return protocol

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
