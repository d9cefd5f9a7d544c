"""HTTP calls to remote functions with the Flink runtime's retry rules."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import aiohttp

from statefun.local.errors import FunctionCallError, ProtocolError

CONTENT_TYPE = "application/octet-stream"
_HEADERS = {"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE, "User-Agent": "statefun-local"}
# Statuses OkHttp's RetryingCallback retries besides every 5xx.
_RETRIED_STATUSES = frozenset({408, 409, 420, 429, 499})
_FIRST_BACKOFF_S = 0.01
_MAX_BACKOFF_S = 1.0


def is_retried_status(status: int) -> bool:
    return status >= 500 or status in _RETRIED_STATUSES


class FunctionClient:
    """One keep-alive connection pool shared by all endpoints."""

    def __init__(self, pool_size: int = 256, log: Callable[[str], None] | None = None) -> None:
        self._log = log or (lambda text: None)
        self._session: aiohttp.ClientSession | None = None
        self._pool_size = pool_size
        # Calls wait for a free connection *before* their call timeout starts, so a large
        # backlog of distinct addresses does not time out while queued for the pool.
        self._slots = asyncio.Semaphore(pool_size)
        self.requests_sent = 0

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=15)
        self._session = aiohttp.ClientSession(connector=connector, headers=_HEADERS)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self, url: str, body: bytes, call_timeout_s: float, connect_timeout_s: float
    ) -> bytes:
        """POST one ToFunction; retries 5xx/408/409/420/429/499 and connection errors with
        exponential backoff until the call timeout is spent; other statuses fail at once."""
        assert self._session is not None, "FunctionClient.start() was not called"
        async with self._slots:
            return await self._call(url, body, call_timeout_s, connect_timeout_s)

    async def _call(
        self, url: str, body: bytes, call_timeout_s: float, connect_timeout_s: float
    ) -> bytes:
        assert self._session is not None
        deadline = time.monotonic() + call_timeout_s
        backoff = _FIRST_BACKOFF_S
        attempts = 0
        next_report = time.monotonic()
        while True:
            attempts += 1
            remaining = deadline - time.monotonic()
            timeout = aiohttp.ClientTimeout(
                total=max(remaining, 0.001),
                sock_connect=min(connect_timeout_s, max(remaining, 0.001)),
            )
            try:
                self.requests_sent += 1
                async with self._session.post(url, data=body, timeout=timeout) as response:
                    payload = await response.read()
                    if 200 <= response.status < 300:
                        content_type = response.headers.get("Content-Type", "")
                        if CONTENT_TYPE not in content_type.lower():
                            raise ProtocolError(
                                f"{url} replied HTTP {response.status} with Content-Type "
                                f"{content_type or '(none)'!r}; a StateFun function must reply {CONTENT_TYPE}"
                            )
                        return payload
                    excerpt = payload[:200].decode("utf-8", "replace").strip()
                    last_failure = f"HTTP {response.status}" + (f": {excerpt}" if excerpt else "")
                    if not is_retried_status(response.status):
                        raise FunctionCallError(f"{url} failed with {last_failure} (not retried)")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                last_failure = _describe(error)
            remaining = deadline - time.monotonic()
            if remaining > 0.005 and time.monotonic() >= next_report:
                # Retrying quietly for minutes would look like a hang.
                self._log(f"{url}: {last_failure}; retrying for up to {remaining:.0f} s more")
                next_report = time.monotonic() + 5
            if remaining <= 0.005:
                raise FunctionCallError(
                    f"{url} did not succeed within the call timeout of {call_timeout_s:g} s "
                    f"({attempts} attempts); last failure: {last_failure}"
                )
            await asyncio.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, _MAX_BACKOFF_S)


def _describe(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"
