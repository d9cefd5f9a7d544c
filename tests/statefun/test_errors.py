"""Each SDK error is also the exception upstream raised, so existing except clauses still work."""

from __future__ import annotations

import json
import pickle

import pytest
from google.protobuf.message import DecodeError

from statefun import errors


@pytest.mark.parametrize(
    "error, bases",
    [
        (errors.MalformedRequestError("x"), (errors.InvalidRequestError,)),
        (errors.StateTypeMismatchError("x"), (errors.InvalidRequestError, TypeError)),
        (errors.StateDecodingError("x"), (errors.InvalidRequestError,)),
        (errors.FunctionNotFoundError("ex/fn"), (KeyError,)),
        (errors.TypenameError("x"), (ValueError,)),
        (errors.MessageTypeMismatchError("x"), (TypeError,)),
        (errors.StateEncodingError("x"), (errors.StatefunError,)),
    ],
)
def test_hierarchy(error: Exception, bases: tuple[type, ...]) -> None:
    assert isinstance(error, errors.StatefunError)
    for base in bases:
        assert isinstance(error, base)


def test_function_not_found_reads_as_a_sentence_not_a_key_repr() -> None:
    error = errors.FunctionNotFoundError("ex/fn", ("ex/a", "ex/b"))
    assert str(error) == "no function is registered for typename 'ex/fn' (registered: ex/a, ex/b)"
    assert error.args == ("ex/fn",)
    assert str(errors.FunctionNotFoundError("ex/fn")).endswith("(registered: none)")


def _json_error() -> json.JSONDecodeError:
    try:
        json.loads(b'{"a": ')
    except json.JSONDecodeError as error:
        return error
    raise AssertionError("unreachable")


def _unicode_error() -> UnicodeDecodeError:
    try:
        b"ab\xff".decode("utf-8")
    except UnicodeDecodeError as error:
        return error
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "cause",
    [
        DecodeError("Truncated message."),
        ValueError("Value out of range: 2147483648"),
        TypeError("bad argument type"),
        OverflowError("int too large to convert to float"),
        KeyError("k"),
        _json_error(),
        _unicode_error(),
    ],
    ids=lambda cause: type(cause).__name__,
)
def test_derived_errors_are_both_the_sdks_and_the_causes_class(cause: Exception) -> None:
    error = errors.derived_error(errors.StateDecodingError, cause, "cannot decode state 'x'")
    assert isinstance(error, errors.StateDecodingError)
    assert isinstance(error, errors.InvalidRequestError)
    assert isinstance(error, type(cause))
    assert str(error) == "cannot decode state 'x'"
    assert type(error).__name__ == "StateDecodingError"
    assert error.args == cause.args
    # Handlers written for the cause's class find its attributes.
    for attribute in ("msg", "doc", "pos", "lineno", "colno", "start", "end", "reason", "object"):
        if hasattr(cause, attribute):
            assert getattr(error, attribute) == getattr(cause, attribute)
    # The same pair of classes makes the same derived class; it survives pickling.
    again = errors.derived_error(errors.StateDecodingError, cause, "other")
    assert type(again) is type(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)


def test_derived_error_keeps_the_cause_when_the_classes_cannot_be_combined() -> None:
    class Final(Exception):
        def __init_subclass__(cls) -> None:
            raise TypeError("final")

    cause = Final("x")
    assert errors.derived_error(errors.StateDecodingError, cause, "m") is cause
    # A cause that already is the SDK's class is returned as it is.
    own = errors.StateDecodingError("own")
    assert errors.derived_error(errors.StateDecodingError, own, "m") is own
