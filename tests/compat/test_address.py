"""``DualAddress``: an ``SdkAddress`` to 3.x code, the 2.x address to 2.x code."""

from __future__ import annotations

import copy
import dataclasses
import pickle

from statefun.compat.address import DualAddress, Typename, dual_address
from statefun.core import SdkAddress

PLAIN = SdkAddress("example", "greeter", "Ann", "example/greeter")


def test_typename_is_a_string_that_can_be_called() -> None:
    typename = Typename("example/greeter")

    assert typename == "example/greeter" and isinstance(typename, str)
    assert typename() == "example/greeter" and type(typename()) is str
    assert typename.split("/") == ["example", "greeter"]
    assert repr(typename) == "'example/greeter'"


def test_the_3x_reading_is_that_of_sdk_address() -> None:
    address = dual_address("example", "greeter", "Ann")

    assert isinstance(address, SdkAddress)
    assert (address.namespace, address.name, address.id) == ("example", "greeter", "Ann")
    assert address.typename == "example/greeter"
    assert address == PLAIN and PLAIN == address and not (address != PLAIN)
    assert address != dual_address("example", "greeter", "Bob")
    assert hash(address) == hash(PLAIN)
    assert {address: 1}[PLAIN] == 1
    assert repr(address) == repr(PLAIN)
    assert str(address) == str(PLAIN)
    assert type(address).__name__ == "SdkAddress"
    assert dataclasses.astuple(address) == dataclasses.astuple(PLAIN)


def test_the_2x_reading() -> None:
    address = dual_address("example", "greeter", "Ann")

    assert (address.namespace, address.type, address.identity) == ("example", "greeter", "Ann")
    assert address.typename() == "example/greeter"


def test_it_is_frozen_and_survives_copy_and_pickle() -> None:
    address = dual_address("example", "greeter", "Ann")

    try:
        address.id = "Bob"  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("a DualAddress must be frozen, as SdkAddress")
    for clone in (copy.copy(address), copy.deepcopy(address), pickle.loads(pickle.dumps(address))):
        assert type(clone) is DualAddress
        assert clone == address and clone.typename() == "example/greeter"
