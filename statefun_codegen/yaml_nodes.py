"""Load YAML into plain nodes that remember where each value was written.

PyYAML's ``compose`` keeps positions but resolves nothing; we turn its nodes into
small frozen dataclasses so the manifest parser can point at the exact line and
column of every key and value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import yaml

from .diagnostics import Diagnostic, GenerationError, Location

Scalar = Union[str, int, float, bool, None]


@dataclass(frozen=True, eq=False)
class YScalar:
    value: Scalar
    location: Location


@dataclass(frozen=True, eq=False)
class YEntry:
    key: str
    key_location: Location
    value: YNode


@dataclass(frozen=True, eq=False)
class YMapping:
    entries: tuple[YEntry, ...]
    location: Location

    def get(self, key: str) -> YNode | None:
        for entry in self.entries:
            if entry.key == key:
                return entry.value
        return None


@dataclass(frozen=True, eq=False)
class YSequence:
    items: tuple[YNode, ...]
    location: Location


YNode = Union[YScalar, YMapping, YSequence]

# libyaml's parser when PyYAML has it (same nodes and marks, many times faster)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str, path: str) -> YNode | None:
    """Parse one YAML document; syntax errors and duplicate keys become diagnostics."""
    try:
        try:
            node = yaml.compose(text, Loader=_LOADER)
        except yaml.YAMLError:
            # PyYAML's own parser words syntax errors better; errors are rare, so re-parse
            node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise GenerationError([Diagnostic(location, f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise GenerationError([Diagnostic(Location(path), f"invalid YAML: {exc}")]) from None
    if node is None:
        return None
    problems: list[Diagnostic] = []
    converted = _convert(node, path, problems, yaml.SafeLoader(""))
    if problems:
        raise GenerationError(problems)
    return converted


def _location(node: yaml.Node, path: str) -> Location:
    return Location(path, node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(
    node: yaml.Node, path: str, problems: list[Diagnostic], constructor: yaml.SafeLoader
) -> YNode:
    location = _location(node, path)
    if isinstance(node, yaml.MappingNode):
        entries: list[YEntry] = []
        seen: dict[str, Location] = {}
        for key_node, value_node in node.value:
            key_location = _location(key_node, path)
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Diagnostic(key_location, "a key must be a plain string"))
                continue
            key = str(key_node.value)
            if key in seen:
                first = seen[key]
                problems.append(
                    Diagnostic(
                        key_location,
                        f"duplicate key '{key}' (first given at line {first.line})",
                    )
                )
                continue
            seen[key] = key_location
            entries.append(
                YEntry(key, key_location, _convert(value_node, path, problems, constructor))
            )
        return YMapping(tuple(entries), location)
    if isinstance(node, yaml.SequenceNode):
        return YSequence(
            tuple(_convert(item, path, problems, constructor) for item in node.value), location
        )
    assert isinstance(node, yaml.ScalarNode)
    constructed = constructor.construct_object(node, deep=True)
    if isinstance(constructed, (str, int, float, bool)) or constructed is None:
        return YScalar(constructed, location)
    return YScalar(str(node.value), location)
