"""Read YAML safely into plain nodes that remember where each value was written.

YAML is a hostile format, so this reads PyYAML's *event* stream (its parser only,
never its constructors) and builds the nodes itself, with limits:

* bytes must be UTF-8 (a bad byte is reported at its line and column);
* no tags at all (``!!python/...``, ``!!binary``, ``!Ref``, ...): refused where they
  are written, never constructed;
* aliases are expanded only within a budget of nodes, so an alias bomb is refused
  in bounded time and memory, and an alias inside the node it names is refused;
  merge keys (``<<``) are refused; a policy can instead read an alias as its
  anchor's name, which is what the Java runtime's Jackson parser does;
* nesting, size and document count are bounded;
* scalars keep their text exactly as written, plus whether they were quoted:
  nothing is resolved here, so YAML 1.1's readings (``on`` as true, ``1:30`` as
  90, ``0755`` as 493) never happen silently. Each reader decides what a value
  means and says so when the text is ambiguous.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Literal, Union

import yaml

from .diagnostics import Diagnostic, GenerationError, Location

MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000  # after alias expansion
YAML_CORE_TAG = "tag:yaml.org,2002:"


@dataclass(frozen=True, eq=False)
class YScalar:
    text: str
    location: Location
    quoted: bool = False  # single, double, literal or folded: the text is certainly a string
    alias: str | None = None  # set when an alias was read as its anchor's name (Jackson's way)

    @property
    def is_null(self) -> bool:
        """A plain empty, ``~`` or ``null``: YAML's null in every version."""
        return not self.quoted and self.text in ("", "~", "null", "Null", "NULL")


@dataclass(frozen=True, eq=False)
class YEntry:
    key: str
    key_location: Location
    value: YNode
    key_quoted: bool = False


@dataclass(frozen=True, eq=False)
class YMapping:
    entries: tuple[YEntry, ...]
    location: Location

    def get(self, key: str) -> YNode | None:
        for entry in self.entries:
            if entry.key == key:
                return entry.value
        return None

    def entry(self, key: str) -> YEntry | None:
        for entry in self.entries:
            if entry.key == key:
                return entry
        return None


@dataclass(frozen=True, eq=False)
class YSequence:
    items: tuple[YNode, ...]
    location: Location


YNode = Union[YScalar, YMapping, YSequence]

# libyaml's parser when PyYAML has it (same events and marks, many times faster)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Duplicates = Literal["error", "last-wins"]
Aliases = Literal["expand", "anchor-name"]


@dataclass(frozen=True)
class Policy:
    """How strictly to read: the manifest refuses more than module.yaml's reader must."""

    what: str = "the manifest"
    aliases: Aliases = "expand"
    duplicates: Duplicates = "error"
    merge_keys: bool = False  # False: '<<' is refused; the reader passes it on as a plain key
    max_bytes: int = MAX_BYTES
    max_depth: int = MAX_DEPTH
    max_nodes: int = MAX_NODES


MANIFEST = Policy()


def decode_utf8(data: bytes, path: str, what: str = "the manifest") -> str:
    """Strict UTF-8 (a BOM is allowed); a bad byte is an error at its line and column."""
    for bom, name in (
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if data.startswith(bom):
            raise GenerationError(
                [
                    Diagnostic(
                        Location(path, 1, 1),
                        f"{what} is {name}-encoded; it must be UTF-8",
                        hint="save it as UTF-8",
                    )
                ]
            )
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise GenerationError(
            [
                Diagnostic(
                    Location(path, line, column),
                    f"{what} is not valid UTF-8 (byte 0x{data[exc.start]:02x} here)",
                    hint="save it as UTF-8",
                )
            ]
        ) from None


def load_yaml(data: str | bytes, path: str, policy: Policy = MANIFEST) -> YNode | None:
    """One YAML document (None when there is none, or it is empty)."""
    documents, _ = load_documents(data, path, policy, single=True)
    return documents[0] if documents else None


def load_documents(
    data: str | bytes, path: str, policy: Policy, single: bool = False
) -> tuple[list[YNode | None], list[Diagnostic]]:
    """Every document of a YAML stream (an empty one is None), and warnings about them."""
    size = len(data.encode("utf-8") if isinstance(data, str) else data)
    if size > policy.max_bytes:
        raise GenerationError(
            [
                Diagnostic(
                    Location(path, 1, 1),
                    f"{policy.what} is {size} bytes; more than {policy.max_bytes} is refused",
                )
            ]
        )
    text = decode_utf8(data, path, policy.what) if isinstance(data, bytes) else data
    _refuse_control_characters(text, path, policy)
    builder = _Builder(path, policy, single)
    try:
        try:
            events = list(yaml.parse(text, Loader=_LOADER))
        except yaml.YAMLError:
            # PyYAML's own parser words syntax errors better; errors are rare, so re-parse
            events = list(yaml.parse(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        raise GenerationError([_syntax_error(exc, text, path, policy)]) from None
    except yaml.YAMLError as exc:
        raise GenerationError(
            [Diagnostic(Location(path, 1, 1), f"invalid YAML: {exc}".rstrip())]
        ) from None
    documents = builder.build(events)
    if builder.problems:
        raise GenerationError(builder.problems)
    return documents, builder.warnings


# what YAML does not allow in a stream (tab, LF and CR aside)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


def _refuse_control_characters(text: str, path: str, policy: Policy) -> None:
    found = _CONTROL.search(text)
    if found is None:
        return
    index = found.start()
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    raise GenerationError(
        [
            Diagnostic(
                Location(path, line, column),
                f"{policy.what} contains the control character U+{ord(found.group()):04X}, "
                "which YAML does not allow",
            )
        ]
    )


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, path: str, policy: Policy) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    context = exc.context_mark
    if exc.context and context is not None and mark is not None and context.line != mark.line:
        problem += f" ({exc.context.strip()} that starts at line {context.line + 1})"
    if mark is None:
        return Diagnostic(Location(path, 1, 1), f"invalid YAML: {problem}")
    location = Location(path, mark.line + 1, mark.column + 1)
    lines = text.split("\n")
    tab_line = next(
        (
            number
            for number, line in enumerate(lines[: mark.line + 1], start=1)
            if "\t" in line[: len(line) - len(line.lstrip(" \t"))]
        ),
        None,
    )
    at_tab = mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t"
    if at_tab or tab_line is not None:
        if at_tab:
            problem = "a tab character here"
        else:
            location = Location(path, tab_line or 1, 1)
            problem = f"{problem} (line {tab_line} is indented with a tab)"
        return Diagnostic(
            location,
            f"invalid YAML: {problem}; YAML indents with spaces only, never a tab",
            hint="replace the tab with spaces",
        )
    return Diagnostic(location, f"invalid YAML: {problem}")


def _location(event: yaml.Event, path: str) -> Location:
    mark = event.start_mark
    return Location(path, mark.line + 1, mark.column + 1) if mark else Location(path, 1, 1)


def _shown_tag(tag: str) -> str:
    return "!!" + tag[len(YAML_CORE_TAG) :] if tag.startswith(YAML_CORE_TAG) else tag


@dataclass
class _Frame:
    kind: str  # "mapping" | "sequence"
    location: Location
    anchor: str | None
    items: list[YNode]
    keys: list[tuple[str, Location, bool]]
    pending_key: tuple[str, Location, bool] | None = None
    size: int = 1  # nodes below, after alias expansion


def _is_alias(event: yaml.Event) -> bool:
    return isinstance(event, yaml.AliasEvent)


class _Builder:
    """Events -> nodes, iteratively (no recursion limit to hit), within the policy's limits."""

    def __init__(self, path: str, policy: Policy, single: bool) -> None:
        self.path = path
        self.policy = policy
        self.single = single
        self.problems: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.anchors: dict[str, tuple[YNode, int]] = {}
        self.open_anchors: set[str] = set()
        self.total = 0

    def fail(self, location: Location, message: str, hint: str = "") -> None:
        self.problems.append(Diagnostic(location, message, hint=hint))

    def build(self, events: list[yaml.Event]) -> list[YNode | None]:
        documents: list[YNode | None] = []
        stack: list[_Frame] = []
        root: YNode | None = None
        for event in events:
            if self.problems:
                break
            if isinstance(event, yaml.DocumentStartEvent):
                if documents and self.single:
                    self.fail(
                        _location(event, self.path),
                        f"{self.policy.what} must be one YAML document, but a second one starts here",
                        hint="remove the '---' line, or merge the documents",
                    )
                    break
                root = None
                self.anchors.clear()
                self.total = 0
                continue
            if isinstance(event, yaml.DocumentEndEvent):
                documents.append(None if _is_empty(root) else root)
                continue
            if isinstance(event, (yaml.StreamStartEvent, yaml.StreamEndEvent)):
                continue
            node_and_size = self._node(event, stack)
            if node_and_size is None:
                continue
            node, size = node_and_size
            if stack:
                self._add(stack[-1], node, size, event)
            else:
                root = node
        return documents

    def _node(self, event: yaml.Event, stack: list[_Frame]) -> tuple[YNode, int] | None:
        location = _location(event, self.path)
        tag = getattr(event, "tag", None)
        if tag is not None and not isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            self.fail(
                location,
                f"YAML tag '{_shown_tag(tag)}' is not allowed: {self.policy.what} takes no tags, "
                "only plain values",
                hint="remove the tag; write the value itself",
            )
            return None
        if isinstance(event, yaml.AliasEvent):
            return self._alias(event, location)
        if isinstance(event, yaml.ScalarEvent):
            scalar = YScalar(event.value, location, quoted=event.style not in (None, ""))
            self._anchor(event.anchor, scalar, 1)
            return scalar, 1
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) >= self.policy.max_depth:
                self.fail(
                    location,
                    f"{self.policy.what} nests deeper than {self.policy.max_depth} levels",
                )
                return None
            kind = "mapping" if isinstance(event, yaml.MappingStartEvent) else "sequence"
            if event.anchor is not None:
                self.open_anchors.add(event.anchor)
            stack.append(_Frame(kind, location, event.anchor, [], []))
            return None
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            frame = stack.pop()
            node: YNode
            if frame.kind == "mapping":
                node = YMapping(
                    tuple(
                        YEntry(key, key_location, value, quoted)
                        for (key, key_location, quoted), value in zip(frame.keys, frame.items)
                    ),
                    frame.location,
                )
            else:
                node = YSequence(tuple(frame.items), frame.location)
            if frame.anchor is not None:
                self.open_anchors.discard(frame.anchor)
                self._anchor(frame.anchor, node, frame.size)
            return node, frame.size
        return None

    def _anchor(self, anchor: str | None, node: YNode, size: int) -> None:
        if anchor is not None:
            self.anchors[anchor] = (node, size)

    def _alias(self, event: yaml.AliasEvent, location: Location) -> tuple[YNode, int] | None:
        anchor = event.anchor or ""
        if self.policy.aliases == "anchor-name":
            return YScalar(anchor, location, alias=anchor), 1
        if anchor in self.open_anchors:
            self.fail(
                location,
                f"alias '*{anchor}' is inside the node it refers to, so it would never end",
            )
            return None
        found = self.anchors.get(anchor)
        if found is None:
            self.fail(location, f"alias '*{anchor}' refers to no anchor '&{anchor}' before it")
            return None
        return found

    def _add(self, frame: _Frame, node: YNode, size: int, event: yaml.Event) -> None:
        # each node counts once: a scalar or an alias' expansion when it is added, a
        # collection itself (1) when it closes, as its children were counted already
        self.total += (
            1 if isinstance(node, (YMapping, YSequence)) and not _is_alias(event) else size
        )
        frame.size += size
        if self.total > self.policy.max_nodes:
            self.fail(
                _location(event, self.path),
                f"{self.policy.what} expands to more than {self.policy.max_nodes} values "
                "(aliases are expanded); refusing it (an alias bomb?)",
                hint="aliases are supported for sharing values, not for building large documents",
            )
            return
        if frame.kind == "sequence":
            frame.items.append(node)
            return
        if frame.pending_key is None:
            key_location = _location(event, self.path)
            if not isinstance(node, YScalar):
                self.fail(key_location, "a key must be a plain string, not a list or mapping")
                frame.pending_key = ("", key_location, False)
                return
            frame.pending_key = (node.text, key_location, node.quoted)
            return
        key, key_location, quoted = frame.pending_key
        frame.pending_key = None
        if key == "<<" and not quoted and not self.policy.merge_keys:
            self.fail(
                key_location,
                "merge keys ('<<') are not supported; write the keys out "
                "(aliases such as 'address: *kafka' are supported)",
            )
            return
        for index, (seen, seen_location, _) in enumerate(frame.keys):
            if seen == key:
                if self.policy.duplicates == "error":
                    self.fail(
                        key_location,
                        f"duplicate key '{key}' (first given at line {seen_location.line})",
                    )
                    return
                # the Java runtime's Jackson keeps the last value; so does a last-wins reader
                self.warnings.append(
                    Diagnostic(
                        key_location,
                        f"duplicate key '{key}' (first given at line {seen_location.line}); "
                        "the runtime keeps only this last one",
                        "warning",
                    )
                )
                del frame.keys[index]
                del frame.items[index]
                break
        frame.keys.append((key, key_location, quoted))
        frame.items.append(node)


def _is_empty(node: YNode | None) -> bool:
    return node is None or (isinstance(node, YScalar) and node.is_null)
