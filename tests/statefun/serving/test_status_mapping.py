from __future__ import annotations

import logging

import pytest
from google.protobuf.message import DecodeError

from statefun import errors
from statefun.request_parsing import malformed
from statefun.serving import (
    CONTENT_TYPE,
    DEFAULT_MAX_REQUEST_BYTES,
    reply_for_error,
    too_large_reply,
)


@pytest.mark.parametrize(
    "error, status",
    [
        (errors.MalformedRequestError("bad body"), 400),
        (errors.StateTypeMismatchError("Type mismatch"), 400),
        (errors.StateDecodingError("cannot decode"), 400),
        (errors.FunctionNotFoundError("ex/fn"), 404),
        (RuntimeError("user bug"), 500),
        (KeyError("a user KeyError is the user's"), 500),
        (errors.TypenameError("raised in user code"), 500),
        # The SDK's errors that are also upstream's builtin ones map by the SDK's class: a
        # malformed target is a KeyError (upstream looked '/' up) yet a 400, not a 404.
        (malformed(KeyError("/"), "no target function type"), 400),
        (malformed(AttributeError("x"), "no target address"), 400),
        (malformed(DecodeError("Truncated"), "not a ToFunction message"), 400),
        (errors.derived_error(errors.StateDecodingError, DecodeError("x"), "bad state"), 400),
        (errors.derived_error(errors.StateEncodingError, ValueError("x"), "cannot store"), 500),
    ],
)
def test_statuses(error: BaseException, status: int, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="statefun.serving"):
        reply = reply_for_error(error)
    assert reply.status == status
    assert reply.content_type == "text/plain; charset=utf-8"
    body = reply.body.decode()
    if status == 500:
        assert type(error).__name__ in body and str(error) not in body
        assert caplog.records[-1].levelno == logging.ERROR and caplog.records[-1].exc_info
    else:
        assert str(error) in body
        assert caplog.records[-1].levelno == logging.WARNING


def test_defaults_and_too_large() -> None:
    assert CONTENT_TYPE == "application/octet-stream"
    assert DEFAULT_MAX_REQUEST_BYTES == 32 * 1024 * 1024
    reply = too_large_reply(100, 10)
    assert reply.status == 413 and reply.status_line.startswith("413 ")
    assert b"100 bytes, limit is 10 bytes" in reply.body
