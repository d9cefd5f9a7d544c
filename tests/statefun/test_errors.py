"""Each SDK error is also the builtin exception upstream raised, so existing except clauses still work."""

from __future__ import annotations

import pytest

from statefun import errors


@pytest.mark.parametrize(
    "error, bases",
    [
        (errors.MalformedRequestError("x"), (errors.InvalidRequestError,)),
        (errors.StateTypeMismatchError("x"), (errors.InvalidRequestError, TypeError)),
        (errors.StateDecodingError("x"), (errors.InvalidRequestError, ValueError)),
        (errors.FunctionNotFoundError("ex/fn"), (KeyError,)),
        (errors.TypenameError("x"), (ValueError,)),
        (errors.MessageTypeMismatchError("x"), (TypeError,)),
        (errors.StateEncodingError("x"), (TypeError, ValueError)),
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
