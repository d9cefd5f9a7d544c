"""A function address that reads as both the 3.x ``SdkAddress`` and the 2.x address.

3.x code reads ``address.namespace``, ``.name``, ``.id`` and ``.typename`` (a
``str``); 2.x code reads ``.namespace``, ``.type``, ``.identity`` and calls
``.typename()``. ``DualAddress`` is an ``SdkAddress`` (``isinstance``,
equality, hashing and ``repr`` as for the 3.x class) whose ``typename`` is a
``Typename``: a ``str`` that returns itself when called.
"""

from __future__ import annotations

import typing

from statefun.compat.disguise import presented_as
from statefun.core import SdkAddress

__all__ = ["Typename", "DualAddress", "dual_address"]


class Typename(str):
    """A ``namespace/name`` string that can also be called.

    2.x code calls ``address.typename()``; 3.x code reads ``address.typename``.
    Being a ``str`` that returns itself when called, it serves both.
    """

    __slots__ = ()

    def __call__(self) -> str:
        return str(self)


_new = object.__new__
_set = object.__setattr__


@presented_as(SdkAddress)
class DualAddress(SdkAddress):
    """An ``SdkAddress`` with the 2.x members ``type``, ``identity`` and ``typename()``.

    It presents itself as ``SdkAddress`` (class name, ``repr``), and compares
    equal to the ``SdkAddress`` with the same fields, so 3.x code cannot tell
    it apart except by ``type(address) is SdkAddress``.
    """

    @property
    def type(self) -> str:
        """The 2.x name of the function type's second part (3.x: ``name``)."""
        return self.name

    @property
    def identity(self) -> str:
        """The 2.x name of the instance id (3.x: ``id``)."""
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SdkAddress):
            return (self.namespace, self.name, self.id, self.typename) == (
                other.namespace,
                other.name,
                other.id,
                other.typename,
            )
        return NotImplemented

    __hash__ = SdkAddress.__hash__

    def __reduce__(self) -> tuple[typing.Any, ...]:
        # The class is named after SdkAddress, so pickle could not find it by name.
        return (dual_address, (self.namespace, self.name, self.id))


def dual_address(namespace: str, name: str, id: str) -> DualAddress:
    """The address ``namespace/name`` ``id`` (built as ``statefun.core.new_address`` does)."""
    address: DualAddress = _new(DualAddress)
    _set(
        address,
        "__dict__",
        {
            "namespace": namespace,
            "name": name,
            "id": id,
            "typename": Typename(f"{namespace}/{name}"),
        },
    )
    return address
