"""``statefun-serve``'s HTTP/1.1 server: one asyncio protocol that calls the handler directly.

No web framework sits between the socket and ``handle_async``: the protocol
parses requests with httptools (or ``statefun.serving.http1`` where httptools
is missing), and the requests read in one loop iteration are answered together
in one callback, each handler run inline (``statefun.serving.inline``) and its
response bytes written at once; on uvloop where installed, plain asyncio otherwise.

What it serves, per connection (HTTP/1.1 keep-alive; HTTP/1.0 with
``Connection: keep-alive``):

* ``POST path`` → the handler; 200 with ``Content-Type: application/octet-stream``,
  or the error status of ``statefun.serving.reply_for_error``: the same status,
  content type and body as the aiohttp, ASGI and WSGI adapters;
* ``GET``/``HEAD health_path`` → 200 ``ok`` (503 while draining);
* another method on either path → 405 with ``Allow``; another path → 404;
* a body over ``max_request_bytes`` → 413 as soon as the head (``Content-Length``)
  or the chunk that crosses the limit says so, then the connection is closed
  without reading the rest;
* ``Expect: 100-continue`` → ``100 Continue`` only for a request that will be
  read; otherwise its final status at once;
* malformed requests → 400 (414/431 for an oversized target or head, 501/505
  for unsupported transfer codings or versions), then close.

Pipelined requests are answered in order, one at a time; reading pauses while
a request's function is suspended and while the client does not read its
responses, so memory per connection stays bounded. A request head must arrive
within ``header_timeout`` and its body within ``body_timeout`` (408 and close
otherwise); an idle connection is closed after ``keep_alive_timeout``. A
server-side close half-closes first and discards what the client still sends
for a moment, so that the client reads the final response instead of a reset.
``drain()`` (on SIGTERM/SIGINT) stops accepting, closes idle connections,
lets requests in flight finish within ``graceful_timeout`` and closes the rest.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import functools
import inspect
import logging
import os
import signal
import socket
import time
import typing
from dataclasses import dataclass

from statefun.serving import (
    CONTENT_TYPE,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_PATH,
    HttpReply,
    PathMatcher,
    _text,
    method_not_allowed_reply,
    not_found_reply,
    reply_for_error,
    too_large_reply,
)
from statefun.serving import http1
from statefun.serving.inline import PENDING, InlineRunner

__all__ = [
    "HttpServer",
    "ServerConfig",
    "bind_socket",
    "choose_loop",
    "choose_parser",
    "run",
]

logger = logging.getLogger("statefun.serving")

# How long a closing connection keeps reading (and discarding) after its final response.
LINGER_SECONDS = 2.0


class _Handler(typing.Protocol):
    def handle_async(self, request_bytes: bytes) -> typing.Awaitable[bytes]: ...


def _coroutine_function(
    handler: _Handler,
) -> typing.Callable[[bytes], typing.Coroutine[typing.Any, typing.Any, bytes]]:
    """``handler.handle_async``, made a coroutine function if it only returns an awaitable."""
    handle = handler.handle_async
    if inspect.iscoroutinefunction(handle):
        return typing.cast(
            typing.Callable[[bytes], typing.Coroutine[typing.Any, typing.Any, bytes]], handle
        )

    async def handle_awaitable(request_bytes: bytes) -> bytes:
        return await handle(request_bytes)

    return handle_awaitable


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``statefun-serve`` can be told; the defaults are the CLI's."""

    host: str = "127.0.0.1"
    port: int = 8000
    path: str = DEFAULT_PATH
    health_path: str = "/health"
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 75.0
    graceful_timeout: float = 30.0
    max_head_bytes: int = 64 * 1024
    max_target_bytes: int = 8 * 1024
    max_headers: int = 100
    backlog: int = 1024
    loop: str = "auto"
    """``auto`` (uvloop where installed), ``uvloop`` or ``asyncio``."""
    http: str = "auto"
    """``auto`` (httptools where installed), ``httptools`` or ``python`` (statefun.serving.http1)."""
    inline: bool = True
    """Run each request's first step inline (see statefun.serving.inline); False: one task each."""

    def __post_init__(self) -> None:
        for name in ("path", "health_path"):
            value = getattr(self, name)
            if not value.startswith("/") or "?" in value or any(c.isspace() for c in value):
                raise ValueError(f"{name} must be an absolute path like /statefun, not {value!r}")
        if self.path == self.health_path:
            raise ValueError(f"path and health_path are both {self.path!r}")
        PathMatcher(self.path)  # a placeholder other than {function.name} is refused
        if "{" in self.health_path:
            raise ValueError(f"health_path holds a placeholder: {self.health_path!r}")
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout", "graceful_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        if self.max_request_bytes < 0:
            raise ValueError(f"max_request_bytes must not be negative: {self.max_request_bytes}")
        if self.loop not in ("auto", "uvloop", "asyncio"):
            raise ValueError(f"loop must be auto, uvloop or asyncio, not {self.loop!r}")
        if self.http not in ("auto", "httptools", "python"):
            raise ValueError(f"http must be auto, httptools or python, not {self.http!r}")


class _Parser(typing.Protocol):
    def feed_data(self, data: bytes) -> None: ...

    def get_method(self) -> bytes: ...

    def get_http_version(self) -> str: ...

    def should_keep_alive(self) -> bool: ...

    def should_upgrade(self) -> bool: ...


@dataclass(frozen=True)
class ParserBackend:
    name: str
    new: typing.Callable[[typing.Any], _Parser]
    errors: tuple[type[BaseException], ...]
    upgrade: tuple[type[BaseException], ...]


def choose_parser(name: str, max_head_bytes: int) -> ParserBackend:
    """httptools where asked for or (``auto``) installed, else the pure-Python parser."""
    if name in ("auto", "httptools"):
        try:
            import httptools
        except ImportError:
            if name == "httptools":
                raise
        else:
            return ParserBackend(
                "httptools",
                httptools.HttpRequestParser,
                (httptools.HttpParserError,),
                (httptools.HttpParserUpgrade,),
            )
    return ParserBackend(
        "python",
        functools.partial(http1.HttpRequestParser, max_head_bytes=max_head_bytes),
        (http1.HttpParserError,),
        (),
    )


def choose_loop(name: str) -> tuple[str, typing.Callable[[], asyncio.AbstractEventLoop]]:
    """uvloop's loop where asked for or (``auto``) installed, else asyncio's."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise
        else:
            return "uvloop", typing.cast(
                typing.Callable[[], asyncio.AbstractEventLoop], uvloop.new_event_loop
            )
    return "asyncio", asyncio.new_event_loop


def bind_socket(
    host: str, port: int, *, reuse_port: bool = False, backlog: int | None = 1024
) -> socket.socket:
    """A TCP socket bound to ``host:port``, listening unless ``backlog`` is None.

    With ``reuse_port`` several processes bind the same port and the kernel
    spreads the connections between those listening (Linux's SO_REUSEPORT).
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, protocol, _, address = infos[0]
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if backlog is not None:
            sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Reject(Exception):
    """Raised from a parser callback: answer ``reply``, close, and read no further."""

    def __init__(self, reply: HttpReply, extra: bytes = b"") -> None:
        super().__init__(reply.status)
        self.reply = reply
        self.extra = extra


def _error(status: int, message: str) -> HttpReply:
    return _text(status, message)


def _failure_reply(error: BaseException) -> HttpReply:
    if not isinstance(error, Exception):  # a CancelledError: the function did not finish
        error = RuntimeError(f"the function was interrupted ({type(error).__name__})")
    return reply_for_error(error)


_KEEP = b""
_KEEP_HTTP10 = b"Connection: keep-alive\r\n"
_CLOSE = b"Connection: close\r\n"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CALL, _REPLY, _RAW = 0, 1, 2
# Connection states: between requests, reading a head, reading a body, closing.
_IDLE, _HEAD, _BODY, _CLOSING = 0, 1, 2, 3
_Entry = tuple[int, typing.Any, bytes]


class _Connection(asyncio.Protocol):
    __slots__ = (
        "_server",
        "_parser",
        "_transport",
        "_state",
        "_deadline",
        "_queue",
        "_busy",
        "_pending_connection",
        "_reading",
        "_write_paused",
        "_done_reading",
        "_eof",
        "_target",
        "_length",
        "_codings",
        "_expect",
        "_body",
        "_size",
        "_reply",
        "_connection",
        "_upgrade",
        "_headers",
        "_head_bytes",
        "_progress",
        "_unreported",
    )

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._parser = server.parser.new(self)
        self._transport: asyncio.Transport | None = None
        self._state = _IDLE
        self._deadline = server.clock + server.config.keep_alive_timeout
        self._queue: collections.deque[_Entry] = collections.deque()
        self._busy = False
        self._pending_connection = _KEEP
        self._reading = True
        self._write_paused = False
        # No further request will be parsed (a close is queued, or the parser failed).
        self._done_reading = False
        self._eof = False
        self._unreported = 0
        self._progress = False
        self._new_request()

    def _new_request(self) -> None:
        self._target = b""
        self._length: int | None = None
        self._codings: list[bytes] = []
        self._expect: bytes | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._reply: tuple[HttpReply, bytes, bool] | None = None
        self._connection = _KEEP
        self._upgrade = False
        self._headers = 0
        self._head_bytes = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = typing.cast(asyncio.Transport, transport)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._queue.clear()
        self._server.forget(self)

    def eof_received(self) -> bool:
        self._eof = True
        self._done_reading = True
        if self._busy or self._queue:
            return True  # half-open: the responses still go out, then we close
        return False

    def pause_writing(self) -> None:
        self._write_paused = True
        self._deadline = self._server.clock + self._server.config.keep_alive_timeout
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()
        if self._queue and not self._busy:
            self._process()

    def data_received(self, data: bytes) -> None:
        if self._done_reading:
            return  # closing: discard
        self._progress = False
        try:
            self._parser.feed_data(data)
        except _Reject as reject:
            self._rejected(reject)
        except self._server.parser.errors as error:
            cause = error.__context__
            if isinstance(cause, _Reject):
                self._rejected(cause)
            elif not self._done_reading:
                status = getattr(error, "status", 400)
                message = str(error) or "malformed request"
                if cause is not None and not isinstance(cause, self._server.parser.errors):
                    logger.error("statefun-serve: a request callback failed", exc_info=cause)
                    status, message = 500, "the server failed to read the request"
                self._rejected(_Reject(_error(status, f"bad HTTP request: {message}")))
        except self._server.parser.upgrade:
            # httptools stops at an upgrade request (answered normally, see on_headers_complete);
            # what follows is not HTTP, so nothing more is read.
            self._done_reading = True
        else:
            if self._state != _IDLE:
                if self._progress:
                    self._unreported = 0
                else:
                    # Bytes httptools may hold for one unfinished target, header or trailer line.
                    self._unreported += len(data)
                    if self._unreported > self._server.config.max_head_bytes:
                        self._rejected(_Reject(_error(431, "request head too large")))
        if self._queue and not self._busy:
            self._server.schedule(self)
        elif self._busy and self._reading:
            self._update_reading()

    # parser callbacks

    def on_message_begin(self) -> None:
        self._state = _HEAD
        self._deadline = self._server.clock + self._server.header_timeout
        self._progress = True
        self._unreported = 0

    def on_url(self, url: bytes) -> None:
        self._progress = True
        self._target += url
        if len(self._target) > self._server.config.max_target_bytes:
            raise _Reject(_error(414, "request target too long"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._progress = True
        self._headers += 1
        size = len(name)
        self._head_bytes += size + len(value) + 4
        server = self._server
        if self._headers > server.max_headers or self._head_bytes > server.max_head_bytes:
            raise _Reject(_error(431, "request header fields too large"))
        if size == 14 or size == 17 or size == 6:  # the lengths of the three names read below
            self._framing_header(name.lower(), value)

    def _framing_header(self, name: bytes, value: bytes) -> None:
        if self._state != _HEAD:
            return  # a chunked body's trailer fields: counted, otherwise ignored
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise _Reject(_error(400, "bad HTTP request: malformed Content-Length")) from None
            if self._length is not None and self._length != length:
                raise _Reject(_error(400, "bad HTTP request: conflicting Content-Length values"))
            self._length = length
        elif name == b"transfer-encoding":
            self._codings += [part.strip().lower() for part in value.split(b",")]
        elif name == b"expect":
            self._expect = value.strip()

    def on_headers_complete(self) -> None:
        self._progress = True
        server = self._server
        config = server.config
        self._state = _BODY
        self._deadline = server.clock + config.body_timeout
        parser = self._parser
        version = parser.get_http_version()
        if version != "1.1":
            if version != "1.0":
                raise _Reject(_error(505, "only HTTP/1.0 and HTTP/1.1 are supported"))
            self._connection = _KEEP_HTTP10 if parser.should_keep_alive() else _CLOSE
        elif not parser.should_keep_alive():
            self._connection = _CLOSE
        target = self._target
        method = parser.get_method()
        if target != server.path_bytes:
            self._route(target, method)
        elif method != b"POST":
            self._reply = (method_not_allowed_reply(), b"Allow: POST\r\n", False)
        if method == b"HEAD" and self._reply is not None:
            self._reply = (self._reply[0], self._reply[1], True)  # a HEAD answer has no body
        if self._codings:
            if version == "1.0":
                raise _Reject(_error(400, "bad HTTP request: Transfer-Encoding in HTTP/1.0"))
            if self._codings != [b"chunked"]:
                raise _Reject(_error(501, "transfer codings other than chunked are not supported"))
        if parser.should_upgrade():
            if self._length or self._codings:
                raise _Reject(_error(400, "bad HTTP request: Upgrade is not supported"))
            # Answered as an ordinary request; the connection then closes (httptools reads
            # what follows an upgrade request as another protocol).
            self._upgrade = True
            self._connection = _CLOSE
        limit = config.max_request_bytes
        if self._length is not None and self._length > limit:
            raise _Reject(too_large_reply(self._length, limit))
        if self._expect is not None:
            if self._expect.lower() != b"100-continue":
                raise _Reject(_error(417, "only Expect: 100-continue is supported"))
            if self._reply is not None:
                # The body is not wanted: answer now, and close (whether the client then sends
                # the body or not is its choice, so the next request cannot be found reliably).
                raise _Reject(self._reply[0], self._reply[1])
            self._queue.append((_RAW, _CONTINUE, _KEEP))

    def _route(self, target: bytes, method: bytes) -> None:
        server = self._server
        path = target.split(b"?", 1)[0]
        if path.startswith((b"http://", b"https://")):  # absolute-form
            path = b"/" + path.split(b"/", 3)[3] if path.count(b"/") >= 3 else b"/"
        if path == server.path_bytes or (
            server.path_matches is not None and server.path_matches(path.decode("latin-1"))
        ):
            if method != b"POST":
                self._reply = (method_not_allowed_reply(), b"Allow: POST\r\n", False)
        elif path == server.health_path_bytes:
            if method in (b"GET", b"HEAD"):
                self._reply = (server.health_reply(), b"", method == b"HEAD")
            else:
                reply = _error(405, "the health check accepts GET and HEAD only")
                self._reply = (reply, b"Allow: GET, HEAD\r\n", False)
        else:
            self._reply = (not_found_reply(server.config.path), b"", False)

    def on_body(self, body: bytes) -> None:
        self._progress = True
        self._size += len(body)
        if self._size > self._server.config.max_request_bytes:
            raise _Reject(too_large_reply(None, self._server.config.max_request_bytes))
        if self._reply is None:
            self._body.append(body)

    def on_message_complete(self) -> None:
        server = self._server
        self._state = _IDLE
        self._deadline = server.clock + server.config.keep_alive_timeout
        connection = _CLOSE if server.draining else self._connection
        if self._reply is None:
            body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            self._queue.append((_CALL, body, connection))
        else:
            self._queue.append((_REPLY, self._reply, connection))
        if connection is _CLOSE:
            self._done_reading = True
        self._new_request()

    # responses

    def _rejected(self, reject: _Reject) -> None:
        self._done_reading = True
        self._queue.append((_REPLY, (reject.reply, reject.extra, False), _CLOSE))

    def _encode(self, reply: HttpReply, extra: bytes, head_only: bool, connection: bytes) -> bytes:
        head = b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s%s\r\n" % (
            reply.status_line.encode("latin-1"),
            reply.content_type.encode("latin-1"),
            len(reply.body),
            self._server.date_line,
            connection,
            extra,
        )
        return head if head_only else head + reply.body

    def _ok(self, body: typing.Any, connection: bytes) -> bytes:
        if type(body) is not bytes:
            if not isinstance(body, (bytes, bytearray, memoryview)):
                error = TypeError(f"handle_async returned {type(body).__name__}, not bytes")
                return self._encode(reply_for_error(error), b"", False, connection)
            body = bytes(body)
        return b"%s%d\r\n%s\r\n%s" % (self._server.ok_head, len(body), connection, body)

    def _call(self, body: bytes, connection: bytes) -> bytes | None:
        server = self._server
        try:
            result = server.runner.start(server.handle(body), self._resume)
        except (Exception, asyncio.CancelledError) as error:
            return self._encode(_failure_reply(error), b"", False, connection)
        if result is PENDING:
            return None
        return self._ok(result, connection)

    def _process(self) -> None:
        """Answer queued requests in order until one suspends (or the connection closes)."""
        if self._transport is None:
            return
        queue = self._queue
        out: list[bytes] = []
        closing = False
        while queue and not self._write_paused:
            kind, payload, connection = queue.popleft()
            if self._server.draining and kind != _RAW:
                connection = _CLOSE
            if kind == _CALL:
                response = self._call(payload, connection)
                if response is None:
                    self._busy = True
                    self._pending_connection = connection
                    break
            elif kind == _REPLY:
                reply, extra, head_only = payload
                response = self._encode(reply, extra, head_only, connection)
            else:
                response = payload
            out.append(response)
            if connection is _CLOSE:
                closing = True
                queue.clear()
                break
        transport = self._transport
        if transport is None:
            return
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if closing:
            self._close()
        elif not self._busy:
            self._after_responses()
        else:
            self._update_reading()

    def _resume(self, result: typing.Any, error: BaseException | None) -> None:
        """A suspended request finished (called from its task)."""
        self._busy = False
        transport = self._transport
        if transport is None:
            return  # the client went away; the function ran all the same
        connection = _CLOSE if self._server.draining else self._pending_connection
        if error is None:
            response = self._ok(result, connection)
        else:
            response = self._encode(_failure_reply(error), b"", False, connection)
        transport.write(response)
        if connection is _CLOSE:
            self._close()
        elif self._queue:
            # The next request's inline step must run outside this task.
            self._server.schedule(self)
        else:
            self._after_responses()

    def _after_responses(self) -> None:
        if self._eof or (self._server.draining and self._state == _IDLE):
            self._close_idle()
            return
        if self._state == _IDLE:
            self._deadline = self._server.clock + self._server.config.keep_alive_timeout
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None:
            return
        wanted = not (self._busy or self._write_paused)
        if wanted == self._reading:
            return
        self._reading = wanted
        if wanted:
            config, clock = self._server.config, self._server.clock
            # Time spent paused is not the client's: restart the current read's clock.
            if self._state == _HEAD:
                self._deadline = clock + config.header_timeout
            elif self._state == _BODY:
                self._deadline = clock + config.body_timeout
            transport.resume_reading()
        else:
            transport.pause_reading()

    def _close(self) -> None:
        """Half-close after the last response, read and discard for a moment, then close."""
        transport = self._transport
        self._done_reading = True
        self._queue.clear()
        if transport is None or self._state == _CLOSING:
            return
        self._state = _CLOSING
        if self._eof or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self._deadline = self._server.clock + LINGER_SECONDS
        if not self._reading:
            self._reading = True
            transport.resume_reading()

    def expire(self) -> None:
        """The deadline passed (the server's tick calls this unless a function is running)."""
        transport = self._transport
        if transport is None:
            return
        if self._state == _CLOSING or self._write_paused:
            transport.abort()
        elif self._state == _IDLE:
            if not self._queue:
                self._close_idle()
        else:
            what = "head" if self._state == _HEAD else "body"
            self._rejected(_Reject(_error(408, f"timed out reading the request {what}")))
            self._process()

    def _close_idle(self) -> None:
        """Close a connection between requests: nothing of the client's is left unread."""
        self._done_reading = True
        self._state = _CLOSING
        if self._transport is not None:
            self._transport.close()

    def drain(self) -> None:
        """The server is draining: close now if idle, else after the request in progress."""
        if self._state == _IDLE and not self._busy and not self._queue:
            self._close_idle()

    @property
    def busy(self) -> bool:
        return self._busy


class HttpServer:
    """The server of one process: its listening socket, its connections, its clock."""

    def __init__(self, handler: _Handler, config: ServerConfig) -> None:
        self.config = config
        self.handle = _coroutine_function(handler)
        self.loop = asyncio.get_running_loop()
        self.parser = choose_parser(config.http, config.max_head_bytes)
        self.runner = InlineRunner(self.loop, inline=config.inline)
        self.connections: set[_Connection] = set()
        self.path_bytes = config.path.encode("latin-1")
        matcher = PathMatcher(config.path)
        # a {function.name} path: each function's path is matched off the fast path's equality
        self.path_matches: typing.Callable[[str], bool] | None = (
            matcher if matcher.templated else None
        )
        # Read per request: kept here rather than behind config's attribute lookups.
        self.max_headers = config.max_headers
        self.max_head_bytes = config.max_head_bytes
        self.header_timeout = config.header_timeout
        self.health_path_bytes = config.health_path.encode("latin-1")
        self.draining = False
        self.clock = self.loop.time()
        self.date_line = b""
        self.ok_head = b""
        self._date_second = -1
        self._update_date()
        self._server: asyncio.Server | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._interval = min(
            1.0,
            max(
                0.005,
                min(config.header_timeout, config.body_timeout, config.keep_alive_timeout) / 5,
            ),
        )
        self._drain_deadline = 0.0
        self._ready: list[_Connection] = []
        self._drained: asyncio.Future[None] = self.loop.create_future()
        self.parent_pid: int | None = None

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._server.sockets) if self._server else ()

    @property
    def port(self) -> int:
        port: int = self.sockets[0].getsockname()[1]
        return port

    async def start(self, sock: socket.socket | None = None) -> None:
        config = self.config
        if sock is None:
            sock = bind_socket(config.host, config.port, backlog=config.backlog)
        self._server = await self.loop.create_server(
            lambda: _Connection(self), sock=sock, backlog=config.backlog
        )
        self._tick = self.loop.call_later(self._interval, self._on_tick)

    def health_reply(self) -> HttpReply:
        return _error(503, "draining") if self.draining else _text(200, "ok")

    def _update_date(self) -> None:
        now = time.time()
        second = int(now)
        if second != self._date_second:
            self._date_second = second
            self.date_line = b"Date: %s\r\n" % email.utils.formatdate(now, usegmt=True).encode()
            self.ok_head = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%sContent-Length: " % (
                CONTENT_TYPE.encode(),
                self.date_line,
            )

    def _on_tick(self) -> None:
        self.clock = now = self.loop.time()
        self._update_date()
        for connection in [c for c in self.connections if c._deadline <= now and not c.busy]:
            connection.expire()
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            logger.warning("statefun-serve: the supervisor is gone; draining")
            self.drain()
        if self.draining:
            if now >= self._drain_deadline:
                self._abort_all()
            self._check_drained()
        self._tick = self.loop.call_later(self._interval, self._on_tick)

    def drain(self) -> None:
        """Stop accepting, finish the requests in flight, then close (a second call: close now)."""
        if self.draining:
            logger.warning("statefun-serve: asked again to stop; closing connections now")
            self._abort_all()
            self._check_drained()
            return
        self.draining = True
        self._drain_deadline = self.loop.time() + self.config.graceful_timeout
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.drain()
        self._check_drained()

    def _abort_all(self) -> None:
        for connection in list(self.connections):
            if connection._transport is not None:
                connection._transport.abort()
        self.runner.cancel()

    def schedule(self, connection: _Connection) -> None:
        """Answer ``connection``'s queued requests soon, with those of the other connections.

        Requests read in one loop iteration are answered together, in one callback after the
        reads: running the handler for one request after another, rather than between the
        socket reads, costs measurably less CPU per request (bench/http_serving.md).
        """
        ready = self._ready
        if not ready:
            self.loop.call_soon(self._answer_ready)
        ready.append(connection)

    def _answer_ready(self) -> None:
        ready, self._ready = self._ready, []
        for connection in ready:
            if connection._queue and not connection._busy:
                connection._process()

    def forget(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if self.draining:
            self._check_drained()

    def _check_drained(self) -> None:
        if not self.connections and not self._drained.done():
            self._drained.set_result(None)

    async def wait_drained(self) -> None:
        """Wait until ``drain()`` has closed every connection."""
        await self._drained
        if self._tick is not None:
            self._tick.cancel()
        if self._server is not None:
            self._server.close()
        tasks = list(self.runner.tasks)
        self.runner.cancel()
        # Let the cancelled runner tasks finish before the loop goes away.
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)


async def _serve(
    handler: _Handler,
    config: ServerConfig,
    sock: socket.socket | None,
    on_ready: typing.Callable[[HttpServer], None] | None,
    parent_pid: int | None,
) -> None:
    server = HttpServer(handler, config)
    server.parent_pid = parent_pid
    await server.start(sock)
    loop = server.loop
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, server.drain)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
            pass
    if on_ready is not None:
        on_ready(server)
    try:
        await server.wait_drained()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.remove_signal_handler(signum)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass


def run(
    handler: _Handler,
    config: ServerConfig,
    *,
    sock: socket.socket | None = None,
    on_ready: typing.Callable[[HttpServer], None] | None = None,
    parent_pid: int | None = None,
) -> None:
    """Serve ``handler`` until SIGTERM/SIGINT, then drain and return.

    ``sock``: a listening socket to serve (default: bind ``config.host:port``).
    ``parent_pid``: drain when this process's parent is no longer that process
    (a worker whose supervisor died).
    """
    _, new_loop = choose_loop(config.loop)
    loop = new_loop()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(_serve(handler, config, sock, on_ready, parent_pid))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
