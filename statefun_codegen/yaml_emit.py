"""A small, deterministic block-YAML writer for manifests we write (``--adopt``).

PyYAML's emitter cannot place comments, and an adopted manifest needs them where
module.yaml left something unsaid. The values are plain data (dicts in insertion
order, lists, text, integers); a ``Commented`` value carries the comment lines
written above its key. A string is written plain only when every YAML reader
(1.1 and 1.2) reads it back as that same string; otherwise it is double-quoted
with JSON's escapes, which YAML reads identically.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml

Value = object  # str | int | bool | Mapping[str, Value] | Sequence[Value] | Commented | None

# letters, digits and the punctuation of names, addresses and URLs; no indicator first
_PLAIN = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_./:+=@-]*", re.ASCII)
_FLOW_LIMIT = 88  # a flow list longer than this goes to block style


@dataclass(frozen=True)
class Commented:
    value: Value
    comment: str  # one or more lines, written as '# ...' above the key


def dump(document: Mapping[str, Value], header: str = "") -> str:
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    _mapping(document, 0, lines)
    return "\n".join(lines) + "\n"


def scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and ": " not in text and _reads_back(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _reads_back(text: str) -> bool:
    """True when YAML 1.1 (PyYAML, SnakeYAML) reads ``text`` as this very string."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(loaded, str) and loaded == text


def _comment(comment: str, indent: int, lines: list[str]) -> None:
    width = max(_FLOW_LIMIT - indent - 2, 40)
    for paragraph in comment.splitlines():
        for line in textwrap.wrap(paragraph, width, break_on_hyphens=False) or [""]:
            lines.append(f"{' ' * indent}# {line}".rstrip())


def _mapping(mapping: Mapping[str, Value], indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for key, value in mapping.items():
        inner = value.value if isinstance(value, Commented) else value
        if indent == 0 and lines and isinstance(inner, Mapping):
            lines.append("")  # the top-level sections stand apart
        if isinstance(value, Commented):
            _comment(value.comment, indent, lines)
            value = value.value
        head = f"{pad}{scalar(key)}:"
        if isinstance(value, Mapping):
            if not value:
                lines.append(f"{head} {{}}")
            else:
                lines.append(head)
                _mapping(value, indent + 2, lines)
        elif isinstance(value, (list, tuple)):
            _sequence(value, head, indent, lines)
        else:
            lines.append(f"{head} {scalar(value)}")


def _sequence(items: Sequence[Value], head: str, indent: int, lines: list[str]) -> None:
    simple = all(not isinstance(i, (Mapping, list, tuple, Commented)) for i in items)
    flow = f"[{', '.join(scalar(i) for i in items)}]"
    if simple and len(head) + 1 + len(flow) <= _FLOW_LIMIT:
        lines.append(f"{head} {flow}")
        return
    lines.append(head)
    pad = " " * (indent + 2)
    for item in items:
        if isinstance(item, Mapping) and item:
            nested: list[str] = []
            _mapping(item, indent + 4, nested)
            start = next(i for i, line in enumerate(nested) if not line.lstrip().startswith("#"))
            lines.extend(line[2:] for line in nested[:start])  # comments above the '- '
            lines.append(f"{pad}- {nested[start][indent + 4 :]}")
            lines.extend(nested[start + 1 :])
        else:
            lines.append(f"{pad}- {scalar(item)}")
