"""The 2.x view of a function address: ``namespace``, ``type``, ``identity`` and ``typename()``."""

from __future__ import annotations

from dataclasses import dataclass

from statefun.core import SdkAddress

__all__ = ["Typename", "Address", "address_from_sdk", "NO_CALLER"]


class Typename(str):
    """A ``namespace/name`` string that can also be called.

    2.x code calls ``address.typename()``; 3.x code reads ``address.typename``.
    Being a ``str`` that returns itself when called, it serves both.
    """

    __slots__ = ()

    def __call__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Address:
    """A function address as 2.x code sees it.

    The 3.x spellings ``name`` and ``id`` are available too. The address of an
    ingress "caller" has every part empty and is falsy, so both
    ``if context.caller:`` (the 2.x docs' ``None`` check) and
    ``context.caller.typename()`` (what 2.x code did unguarded) behave.
    """

    namespace: str
    type: str
    identity: str

    @property
    def typename(self) -> Typename:
        return Typename(f"{self.namespace}/{self.type}")

    @property
    def name(self) -> str:
        return self.type

    @property
    def id(self) -> str:
        return self.identity

    def __bool__(self) -> bool:
        return bool(self.namespace or self.type or self.identity)

    def __repr__(self) -> str:
        return f"{self.namespace}/{self.type}/{self.identity}"


NO_CALLER = Address("", "", "")


def address_from_sdk(address: SdkAddress | None) -> Address:
    """Convert a 3.x address; ``None`` (an ingress caller) becomes the empty ``NO_CALLER``."""
    if address is None:
        return NO_CALLER
    return Address(address.namespace, address.name, address.id)
