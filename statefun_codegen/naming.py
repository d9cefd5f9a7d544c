"""The one rule for turning user names into Python names.

Names are split into words on anything that is not a letter or digit (and on
camelCase boundaries); a result that is a Python keyword, a builtin or a name
the generated code itself uses gets a trailing underscore. Nothing else is
ever renamed.
"""

from __future__ import annotations

import builtins
import keyword
import re

_WORD = re.compile(r"[A-Z]+[0-9]*(?![a-z])|[A-Z]?[a-z]+[0-9]*|[0-9]+")
_RESERVED = frozenset(dir(builtins)) | {"annotations", "Any", "Final", "self", "cls"}


def words(name: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(name)]


def escape(identifier: str) -> str:
    if (
        keyword.iskeyword(identifier)
        or keyword.issoftkeyword(identifier)
        or identifier in _RESERVED
    ):
        return identifier + "_"
    return identifier


def snake(name: str) -> str:
    joined = "_".join(words(name))
    if not joined or joined[0].isdigit():
        joined = "_" + joined
    return escape(joined)


def camel(name: str) -> str:
    joined = "".join(w.capitalize() for w in words(name))
    if not joined or joined[0].isdigit():
        joined = "_" + joined
    return escape(joined)


def constant(name: str) -> str:
    return snake(name).rstrip("_").upper()
