"""The 2.x address: ``typename()`` as a method and ``typename`` as a string both work."""

from __future__ import annotations

import pytest

from statefun.compat.address import NO_CALLER, Address, Typename, address_from_sdk
from statefun.core import SdkAddress


def test_typename_is_a_string_and_a_method() -> None:
    address = Address("example", "greeter", "Ann")

    assert address.typename() == "example/greeter"
    assert address.typename == "example/greeter"
    assert isinstance(address.typename, Typename)
    assert type(address.typename()) is str
    assert f"{address.typename}" == "example/greeter"


def test_2x_and_3x_attribute_names() -> None:
    address = address_from_sdk(SdkAddress("example", "greeter", "Ann", "example/greeter"))

    assert (address.namespace, address.type, address.identity) == ("example", "greeter", "Ann")
    assert (address.name, address.id) == ("greeter", "Ann")
    assert repr(address) == "example/greeter/Ann"
    assert address
    with pytest.raises(AttributeError):
        address.identity = "Bob"  # type: ignore[misc]


def test_an_ingress_caller_is_an_empty_falsy_address() -> None:
    caller = address_from_sdk(None)

    assert caller is NO_CALLER
    assert not caller
    assert caller.typename() == "/"
    assert caller.identity == ""
