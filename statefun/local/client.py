"""Request-reply calls to remote functions with the retry rules of the endpoint's transport.

Flink's two HTTP transports retry differently, and a function that works with one can fail with
the other, so each endpoint follows its own (``io.statefun.endpoints.v2/http`` ``transport.type``):

* ``io.statefun.transports.v1/async`` (Netty, the default since 3.2): any failed attempt is
  retried — connection errors, any non-2xx status (4xx included), a wrong Content-Type, a body
  that is not a FromFunction — with a backoff of 2 ms·2^n until the call timeout is spent.
* ``io.statefun.transports.v1/okhttp`` (and every ``v1/http`` endpoint): connection errors and
  HTTP 408, 409, 420, 429, 499 and 5xx are retried with a backoff from 10 ms, doubling; any other
  status, a wrong Content-Type or an unreadable body fails at once.

Flink's backoff doubles without a cap; here it is capped at 1 s, so a function server that comes
back is picked up quickly. That only adds attempts.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable

from google.protobuf import message

from statefun import request_reply_pb2 as pb
from statefun.local.errors import FunctionCallError, ProtocolError
from statefun.local.http11 import AttemptTimeout, ConnectionPool, HttpError, Reply, Target

CONTENT_TYPE = "application/octet-stream"
HEADERS = {"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE, "User-Agent": "statefun-local"}
TRANSPORT_ASYNC = "io.statefun.transports.v1/async"
TRANSPORT_OKHTTP = "io.statefun.transports.v1/okhttp"
_OKHTTP_RETRIED = frozenset({408, 409, 420, 429, 499})
_MAX_BACKOFF_S = 1.0
_REPORT_EVERY_S = 5.0


@dataclass(frozen=True)
class RetryRules:
    transport: str
    first_backoff_s: float
    retries_status: Callable[[int], bool]
    retries_bad_reply: bool  # wrong Content-Type, unparsable body
    content_type_ok: Callable[[str | None], bool]


def _netty_content_type(value: str | None) -> bool:
    # Netty: one of the comma-separated values equals it, ignoring case.
    return value is not None and any(
        part.strip().lower() == CONTENT_TYPE for part in value.split(",")
    )


def _okhttp_content_type(value: str | None) -> bool:
    # OkHttp: the MediaType parsed from the header equals application/octet-stream exactly.
    return value is not None and value.strip() == CONTENT_TYPE


ASYNC_RULES = RetryRules(TRANSPORT_ASYNC, 0.004, lambda status: True, True, _netty_content_type)
OKHTTP_RULES = RetryRules(
    TRANSPORT_OKHTTP,
    0.010,
    lambda status: status >= 500 or status in _OKHTTP_RETRIED,
    False,
    _okhttp_content_type,
)


def rules_for(transport: str) -> RetryRules:
    return OKHTTP_RULES if transport == TRANSPORT_OKHTTP else ASYNC_RULES


class _BadReply(Exception):
    """A reply that is not a usable FromFunction; retried or not depending on the transport."""


class FunctionClient:
    """Keep-alive connections shared by all endpoints, at most `pool_size` calls at a time."""

    def __init__(self, pool_size: int = 256, log: Callable[[str], None] | None = None) -> None:
        self._log = log or (lambda text: None)
        self._pool = ConnectionPool()
        self._targets: dict[str, Target] = {}
        # Calls wait for a free slot *before* their call timeout starts, so a large backlog of
        # distinct addresses does not time out while queued.
        self._slots = asyncio.Semaphore(pool_size)
        self.pool_size = pool_size
        self.requests_sent = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._pool.close()

    async def call(
        self,
        url: str,
        body: bytes,
        call_timeout_s: float,
        connect_timeout_s: float,
        rules: RetryRules = ASYNC_RULES,
        attempt_timeout_s: float | None = None,
    ) -> pb.FromFunction:
        """POST one ToFunction and return the FromFunction, retrying as `rules` say until the
        call timeout is spent (an attempt lasting at most `attempt_timeout_s`, OkHttp's read
        timeout); raises FunctionCallError naming the last real failure."""
        target = self._targets.get(url)
        if target is None:
            target = self._targets[url] = Target.parse(url, HEADERS)
        async with self._slots:
            return await self._call(
                target, body, call_timeout_s, connect_timeout_s, rules, attempt_timeout_s
            )

    async def _call(
        self,
        target: Target,
        body: bytes,
        call_timeout_s: float,
        connect_timeout_s: float,
        rules: RetryRules,
        attempt_timeout_s: float | None,
    ) -> pb.FromFunction:
        started = time.monotonic()
        deadline = started + call_timeout_s
        backoff = rules.first_backoff_s
        attempts = 0
        real_failure = ""  # the last failure that was not the call timeout cutting an attempt
        last_failure = ""
        next_report = started + _REPORT_EVERY_S
        while True:
            attempts += 1
            self.requests_sent += 1
            budget = max(deadline - time.monotonic(), 0.001)
            if attempt_timeout_s is not None:
                budget = min(budget, attempt_timeout_s)
            try:
                reply = await self._pool.post(target, body, budget, connect_timeout_s)
                return self._read(target.url, reply, rules)
            except _BadReply as bad:
                last_failure = real_failure = str(bad)
            except AttemptTimeout as timeout:
                last_failure = str(timeout)
                if time.monotonic() < deadline - 0.001:
                    real_failure = last_failure  # the attempt itself was slow: that is real
            except HttpError as error:
                last_failure = real_failure = str(error)
            remaining = deadline - time.monotonic()
            if remaining <= 0.001:
                elapsed = time.monotonic() - started
                reason = real_failure or last_failure
                cut = (
                    "; the last attempt was cut off by the call timeout"
                    if real_failure and last_failure != real_failure
                    else ""
                )
                raise FunctionCallError(
                    f"{target.url} did not succeed within the call timeout of "
                    f"{call_timeout_s:g} s ({attempts} attempt(s) in {elapsed:.1f} s, "
                    f"{rules.transport} retry rules); last failure: {reason}{cut}"
                )
            now = time.monotonic()
            if now >= next_report:
                # Retrying quietly for minutes would look like a hang.
                self._log(
                    f"{target.url}: {real_failure or last_failure}; retrying for up to "
                    f"{remaining:.0f} s more"
                )
                next_report = now + _REPORT_EVERY_S
            await asyncio.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    @staticmethod
    def _read(url: str, reply: Reply, rules: RetryRules) -> pb.FromFunction:
        status = reply.status
        if not 200 <= status < 300:
            excerpt = reply.body[:200].decode("utf-8", "replace").strip()
            failure = f"HTTP {status}" + (f" {reply.reason}" if reply.reason else "")
            failure += f": {excerpt}" if excerpt else ""
            if rules.retries_status(status):
                raise _BadReply(failure)
            raise FunctionCallError(
                f"{url} failed with {failure} (not retried by the {rules.transport} transport)"
            )
        problem = ""
        if not rules.content_type_ok(reply.content_type):
            problem = (
                f"HTTP {status} with Content-Type {reply.content_type or '(none)'!r}; a StateFun "
                f"function must reply {CONTENT_TYPE}"
            )
        else:
            try:
                return pb.FromFunction.FromString(reply.body)
            except message.DecodeError as error:
                problem = f"a reply body that is not a FromFunction ({error})"
        if rules.retries_bad_reply:
            raise _BadReply(problem)
        raise ProtocolError(
            f"{url} replied {problem} (not retried by the {rules.transport} transport)"
        )
