from __future__ import annotations

import json
from datetime import timedelta

import pytest

from statefun.core import SdkAddress, ValueSpec, parse_typename, simple_type, validate_typename
from statefun.errors import TypenameError
from statefun.wrapper_types import IntType


def test_sdk_address_is_frozen_and_hashable() -> None:
    address = SdkAddress("ns", "fn", "id", "ns/fn")
    assert address == SdkAddress("ns", "fn", "id", "ns/fn")
    assert {address: 1}[SdkAddress("ns", "fn", "id", "ns/fn")] == 1
    with pytest.raises(AttributeError):
        address.id = "other"  # type: ignore[misc]


def test_simple_type_round_trips_and_requires_all_arguments() -> None:
    pair = simple_type(
        "ex/pair", lambda v: f"{v[0]},{v[1]}".encode(), lambda b: tuple(b.decode().split(","))
    )
    serializer = pair.serializer()
    assert serializer.serialize(("a", "b")) == b"a,b"
    assert serializer.deserialize(b"a,b") == ("a", "b")
    with pytest.raises(ValueError):
        simple_type(None, bytes, bytes)
    with pytest.raises(ValueError):
        simple_type("ex/t", None, bytes)
    with pytest.raises(ValueError):
        simple_type("ex/t", bytes, None)


def test_simple_type_encodes_a_str_serializer_result_as_utf8() -> None:
    # The upstream docs use json.dumps, which returns str; upstream then failed on the wire.
    user = simple_type("ex/user", json.dumps, json.loads)
    assert user.serializer().serialize({"name": "ä"}) == '{"name": "\\u00e4"}'.encode()
    assert user.serializer().deserialize(b'{"name": "x"}') == {"name": "x"}


@pytest.mark.parametrize("name", ["-a", "1a", "a b", "a-b", "def", "Seen", "_", ""])
def test_value_spec_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        ValueSpec(name, IntType)


def test_value_spec_accepts_unicode_lowercase_identifiers() -> None:
    assert ValueSpec("ä", IntType).name == "ä"


def test_value_spec_keyword_error_lists_keywords() -> None:
    with pytest.raises(ValueError, match="lambda"):
        ValueSpec("def", IntType)


def test_value_spec_type_checks() -> None:
    with pytest.raises(ValueError, match="type can not be missing"):
        ValueSpec("a", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a StateFun type"):
        ValueSpec("a", int)  # type: ignore[arg-type]


def test_value_spec_expiration() -> None:
    spec = ValueSpec("a", IntType, expire_after_call=timedelta(seconds=5))
    assert (spec.duration, spec.after_call, spec.after_write) == (5000, True, False)
    spec = ValueSpec("a", IntType, expire_after_write=timedelta(microseconds=1500))
    assert (spec.duration, spec.after_call, spec.after_write) == (1, False, True)
    spec = ValueSpec("a", IntType, expire_after_call=timedelta(0))
    assert (spec.duration, spec.after_call, spec.after_write) == (0, False, False)
    with pytest.raises(ValueError, match="not both"):
        ValueSpec("a", IntType, expire_after_call=timedelta(1), expire_after_write=timedelta(1))


def test_parse_typename_splits_at_last_slash() -> None:
    assert parse_typename("com.example/greeter") == ("com.example", "greeter")
    assert parse_typename("a/b/c") == ("a/b", "c")


@pytest.mark.parametrize("bad", ["", "noslash", "/bar", "n/", "/"])
def test_parse_typename_rejects(bad: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_typename(bad)
    assert repr(bad) in str(raised.value)


def test_validate_typename_names_what_and_value() -> None:
    assert validate_typename("a/b", "x") == "a/b"
    with pytest.raises(
        TypenameError, match="the egress typename must be of the form 'namespace/name', got 'nope'"
    ):
        validate_typename("nope", "the egress typename")
    with pytest.raises(TypenameError, match="the egress typename is missing"):
        validate_typename(None, "the egress typename")
    # What upstream's parse_typename raised for objects that are not strings.
    with pytest.raises(AttributeError, match="must be a 'namespace/name' string, got int 3"):
        validate_typename(3, "a typename")
    with pytest.raises(TypeError, match="got bytes b'a/b'"):
        validate_typename(b"a/b", "a typename")
