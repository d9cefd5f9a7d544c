"""Subclasses that present themselves as the 3.x class they extend.

The dual message, context and address add the 2.x members to the 3.x objects.
3.x code prints them, logs their ``repr`` and reads their class name in
``AttributeError`` s; taking the base's ``__module__``, ``__name__`` and
``__qualname__`` keeps all of that as it is for the 3.x class.
"""

from __future__ import annotations

import typing

__all__ = ["presented_as"]

C = typing.TypeVar("C", bound=type)


def presented_as(base: type) -> typing.Callable[[C], C]:
    """Class decorator: the class takes ``base`` 's names (pickling must then use ``__reduce__``)."""

    def present(cls: C) -> C:
        assert issubclass(cls, base), (cls, base)
        for attribute in ("__module__", "__name__", "__qualname__"):
            setattr(cls, attribute, getattr(base, attribute))
        return cls

    return present
