"""Read the function manifest (YAML) into positioned declarations, strictly.

Every key is checked against the known set (a typo is an error with a "did you
mean"), every value's shape is checked, and every problem is collected so the
user sees all of them at once. References (types, functions, egresses) stay
unresolved text here; ``model.py`` resolves them against the protos.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, TypeVar

from .diagnostics import Collector, Location
from .durations import (
    JAVA_INT_MAX,
    JAVA_LONG_MAX,
    UNITS_HELP,
    format_duration,
    parse_duration,
)
from .durations import TIMEDELTA_MAX_MILLIS
from .yaml_nodes import YEntry, YMapping, YNode, YScalar, YSequence, load_yaml

# YAML 1.1 reads these plain words as booleans (PyYAML and the Java runtime's SnakeYAML do)
YAML11_BOOLEANS = {
    **dict.fromkeys(("yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("no", "No", "NO", "off", "Off", "OFF"), False),
}

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Ref:
    """A name the user wrote that points at something else (a type, function or egress)."""

    text: str
    location: Location


@dataclass(frozen=True, eq=False)
class Duration:
    millis: int
    location: Location


@dataclass(frozen=True, eq=False)
class StateDecl:
    name: str
    location: Location
    type: Ref
    expire_after_call: Duration | None
    expire_after_write: Duration | None


@dataclass(frozen=True, eq=False)
class FunctionDecl:
    name: str
    location: Location
    doc: str
    inputs: tuple[Ref, ...]
    states: tuple[StateDecl, ...]
    sends: tuple[Ref, ...]
    egresses: tuple[Ref, ...]


@dataclass(frozen=True, eq=False)
class TypeDecl:
    """``types:`` entry: rename a message's typename, or declare a JSON type."""

    name: str
    location: Location
    typename: str | None
    typename_location: Location
    json: bool


@dataclass(frozen=True, eq=False)
class EndpointDecl:
    url: str
    location: Location
    max_batch_requests: int | None
    transport: str
    timeouts: tuple[tuple[str, Duration], ...]
    transport_location: Location | None = None  # where 'transport' was written, if it was


@dataclass(frozen=True, eq=False)
class RouteDecl:
    """One topic (Kafka) or stream (Kinesis) of an ingress and where its records go."""

    source: str
    location: Location
    type: Ref
    targets: tuple[Ref, ...]
    source_location: Location | None = None


@dataclass(frozen=True, eq=False)
class IngressDecl:
    name: str
    location: Location
    kind: str
    address: str | None
    consumer_group: str | None
    startup_position: str | None
    aws_region: str | None
    routes: tuple[RouteDecl, ...]
    properties: tuple[tuple[str, str], ...]
    address_location: Location | None = None
    aws_region_location: Location | None = None


@dataclass(frozen=True, eq=False)
class EgressDecl:
    name: str
    location: Location
    kind: str
    address: str | None
    delivery: str | None
    transaction_timeout: Duration | None
    aws_region: str | None
    max_outstanding_records: int | None
    default_target: str | None
    type: Ref | None
    properties: tuple[tuple[str, str], ...]
    address_location: Location | None = None
    aws_region_location: Location | None = None
    default_target_location: Location | None = None


@dataclass(frozen=True, eq=False)
class Manifest:
    path: str
    namespace: str
    namespace_location: Location
    endpoint: EndpointDecl
    types: tuple[TypeDecl, ...]
    functions: tuple[FunctionDecl, ...]
    ingresses: tuple[IngressDecl, ...]
    egresses: tuple[EgressDecl, ...]


TOP_KEYS = ("namespace", "endpoint", "types", "functions", "ingresses", "egresses")
ENDPOINT_KEYS = ("url", "max_batch_requests", "transport", "timeouts")
TIMEOUT_KEYS = {"okhttp": ("call", "connect", "read", "write"), "async": ("call", "connect")}
FUNCTION_KEYS = ("doc", "input", "state", "sends", "egress")
STATE_KEYS = ("type", "expire_after_call", "expire_after_write")
TYPE_KEYS = ("typename", "json")
KAFKA_INGRESS_KEYS = (
    "kind",
    "address",
    "consumer_group",
    "startup_position",
    "topics",
    "properties",
)
KINESIS_INGRESS_KEYS = ("kind", "aws_region", "startup_position", "streams", "properties")
KAFKA_EGRESS_KEYS = (
    "kind",
    "address",
    "delivery",
    "transaction_timeout",
    "topic",
    "type",
    "properties",
)
KINESIS_EGRESS_KEYS = (
    "kind",
    "aws_region",
    "max_outstanding_records",
    "stream",
    "type",
    "properties",
)
ROUTE_KEYS = {"kafka": ("topic", "type", "targets"), "kinesis": ("stream", "type", "targets")}
DELIVERY_SEMANTICS = ("at-least-once", "exactly-once", "none")
STARTUP_POSITIONS = {
    "kafka": ("earliest", "latest", "group-offsets"),
    "kinesis": ("earliest", "latest"),
}
TRANSPORTS = ("async", "okhttp")
KAFKA_BROKER_MAX_TRANSACTION_MILLIS = 15 * 60 * 1000


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def text_problem(text: str, allow_layout: bool = False) -> str | None:
    """Why ``text`` cannot be a name, topic or any other value we copy into code or YAML.

    Control characters, format characters (the bidirectional overrides U+202A-U+202E and
    U+2066-U+2069 that reorder what a reader sees, zero-width characters) and line or
    paragraph separators are refused; ``allow_layout`` lets free text keep tabs and newlines.
    """
    for char in text:
        if allow_layout and char in "\t\n":
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp"):
            name = unicodedata.name(char, "")
            if not name:
                return f"contains the control character U+{ord(char):04X}"
            return f"contains U+{ord(char):04X} ({name}), an invisible character"
    return None


class _Reader:
    """Shape checks shared by every section; each failure is recorded, never raised."""

    def __init__(self, errors: Collector) -> None:
        self.errors = errors

    def mapping(self, node: YNode | None, what: str) -> YMapping | None:
        if node is None:
            return None
        if isinstance(node, YMapping):
            return node
        if isinstance(node, YScalar) and node.is_null:
            return YMapping((), node.location)
        self.errors.error(node.location, f"{what} must be a mapping")
        return None

    def keys(self, node: YMapping, allowed: tuple[str, ...], what: str) -> None:
        for entry in node.entries:
            if entry.key not in allowed:
                self.errors.error(
                    entry.key_location,
                    f"unknown key '{shown(entry.key)}' in {what}{did_you_mean(entry.key, allowed)}",
                )

    def name(self, entry: YEntry, what: str) -> bool:
        """A mapping key that names something: text as written, no invisible characters."""
        problem = text_problem(entry.key)
        if problem is not None:
            self.errors.error(entry.key_location, f"{what} name '{shown(entry.key)}' {problem}")
            return False
        return True

    def string(self, node: YNode | None, what: str, allow_layout: bool = False) -> str | None:
        """Any scalar's text exactly as written (``on`` stays 'on', ``0755`` stays '0755')."""
        if node is None:
            return None
        if isinstance(node, YScalar) and not node.is_null and node.text.strip():
            problem = text_problem(node.text, allow_layout)
            if problem is not None:
                self.errors.error(node.location, f"{what} '{shown(node.text)}' {problem}")
                return None
            return node.text
        self.errors.error(node.location, f"{what} must be a non-empty string")
        return None

    def integer(self, node: YNode | None, what: str, maximum: int = JAVA_INT_MAX) -> int | None:
        """A positive whole number in plain decimal; YAML 1.1's other spellings are refused."""
        if node is None:
            return None
        text = node.text.strip() if isinstance(node, YScalar) else ""
        problem = f"{what} must be a positive whole number" + (
            f", not '{shown(text)}'" if text else ""
        )
        if re.fullmatch(r"[0-9]+", text, re.ASCII):
            if len(text) > 1 and text.startswith("0"):
                octal = (
                    f" (YAML 1.1 reads it as the octal number {int(text, 8)})"
                    if re.fullmatch("[0-7]+", text)
                    else ""
                )
                problem = (
                    f"{what} '{text}' has a leading zero, which YAML tools read as octal"
                    f"{octal}; write it without the zero"
                )
            elif int(text) == 0:
                problem = f"{what} must be a positive whole number, not 0"
            elif int(text) > maximum:
                problem = f"{what} {text} is larger than the runtime allows ({maximum})"
            else:
                return int(text)
        elif re.fullmatch(r"[-+]?[0-9][0-9_]*", text, re.ASCII):
            problem = (
                f"{what} must be a positive whole number written with digits only, not '{text}'"
            )
        self.errors.error(node.location, problem)
        return None

    def choice(self, node: YNode | None, what: str, choices: tuple[str, ...]) -> str | None:
        value = self.string(node, what)
        if value is None or node is None:
            return None
        if value not in choices:
            self.errors.error(
                node.location,
                f"{what} must be one of {', '.join(choices)}, not '{shown(value)}'"
                + did_you_mean(value, choices),
            )
            return None
        return value

    def duration(
        self,
        node: YNode | None,
        what: str,
        maximum: int = JAVA_LONG_MAX,
        limit_reason: str = "the runtime's limit",
    ) -> Duration | None:
        if node is None:
            return None
        text = node.text if isinstance(node, YScalar) and not node.is_null else None
        parsed = parse_duration(text) if text is not None else None
        if parsed is None or text is None:
            display = shown(text) if text is not None else "?"
            hint = ""
            if text is not None and re.fullmatch(r"[0-9]+ *[mM]", text.strip()):
                hint = "'m' is not read by every StateFun version; write 'min' for minutes"
            elif text is not None and re.fullmatch(r"[0-9]+(?::[0-5]?[0-9])+", text.strip()):
                hint = (
                    f"'{text.strip()}' is not a duration (YAML 1.1 would read it as the "
                    "sexagesimal number "
                    f"{_sexagesimal(text.strip())}); write it with a unit, e.g. 90s"
                )
            self.errors.error(
                node.location,
                f"bad duration '{display}' for {what}: expected a positive number "
                f"followed by {UNITS_HELP}, e.g. 30s",
                hint,
            )
            return None
        if parsed.number > JAVA_LONG_MAX or parsed.millis > JAVA_LONG_MAX:
            self.errors.error(
                node.location,
                f"duration '{shown(text)}' for {what} is too long for the runtime "
                "(it must fit in a Java long of milliseconds)",
            )
            return None
        if parsed.millis <= 0:
            self.errors.error(
                node.location, f"{what} must be longer than 0 (the runtime rejects 0)"
            )
            return None
        if parsed.millis > maximum:
            self.errors.error(
                node.location,
                f"duration '{shown(text)}' for {what} is longer than {limit_reason} "
                f"({_limit_text(maximum)})",
            )
            return None
        if parsed.bare:
            self.errors.warning(
                node.location,
                f"'{text.strip()}' for {what} has no unit, so StateFun reads it as "
                f"{parsed.millis} milliseconds",
                f"write '{parsed.millis}ms' to say so, or the unit you meant (e.g. "
                f"{parsed.millis}s)",
            )
        return Duration(parsed.millis, node.location)

    def refs(self, node: YNode | None, what: str) -> tuple[Ref, ...]:
        """A single name or a list of names."""
        if node is None:
            return ()
        items = node.items if isinstance(node, YSequence) else (node,)
        refs: list[Ref] = []
        for item in items:
            text = self.string(item, what)
            if text is not None:
                refs.append(Ref(text, item.location))
        return tuple(refs)

    def properties(self, node: YNode | None, what: str) -> tuple[tuple[str, str], ...]:
        """Client properties: keys and values are kept as the text written."""
        mapping = self.mapping(node, "'properties'")
        if mapping is None:
            return ()
        pairs: list[tuple[str, str]] = []
        for entry in mapping.entries:
            if not self.name(entry, what):
                continue
            value = entry.value
            if not isinstance(value, YScalar) or value.is_null:
                self.errors.error(
                    value.location, f"{what} '{shown(entry.key)}' must be a plain value"
                )
                continue
            text = self.string(value, f"{what} '{shown(entry.key)}'")
            if text is None:
                continue
            if not value.quoted and text in YAML11_BOOLEANS:
                self.errors.warning(
                    value.location,
                    f"{what} '{shown(entry.key)}' is kept as the text '{text}' (YAML 1.1 "
                    f"would read it as {str(YAML11_BOOLEANS[text]).lower()}); Kafka and "
                    "Kinesis clients expect true or false",
                    f"write {str(YAML11_BOOLEANS[text]).lower()} if you mean a boolean, or "
                    f"quote '{text}' to keep the word",
                )
            pairs.append((entry.key, text))
        return tuple(pairs)

    def named_sections(
        self, node: YNode | None, what: str, parse: Callable[[str, Location, YNode], T | None]
    ) -> tuple[T, ...]:
        mapping = self.mapping(node, what)
        if mapping is None:
            return ()
        parsed: list[T] = []
        for entry in mapping.entries:
            if not self.name(entry, _SINGULAR.get(what, what)):
                continue
            item = parse(entry.key, entry.key_location, entry.value)
            if item is not None:
                parsed.append(item)
        return tuple(parsed)


_SINGULAR = {"functions": "function", "ingresses": "ingress", "egresses": "egress", "types": "type"}


def shown(text: str, limit: int = 80) -> str:
    """User text for a message: invisible characters made visible, long text cut."""
    shown = "".join(
        c if unicodedata.category(c)[0] != "C" and c not in "\u2028\u2029" else f"\\u{ord(c):04x}"
        for c in text
    )
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _limit_text(millis: int) -> str:
    if millis == TIMEDELTA_MAX_MILLIS:
        return "999999999 days"
    if millis == JAVA_INT_MAX:
        return "2147483647ms, about 24.8 days"
    return format_duration(millis)


def _sexagesimal(text: str) -> int:
    value = 0
    for part in text.split(":"):
        value = value * 60 + int(part)
    return value


def parse_manifest_text(text: str | bytes, path: str) -> tuple[Manifest | None, Collector]:
    """Parse the manifest; returns the declarations and the problems found.

    YAML-level problems (bad bytes, tags, alias bombs, syntax) raise GenerationError.
    """
    errors = Collector()
    root = load_yaml(text, path)
    reader = _Reader(errors)
    whole_file = Location(path, 1, 1)
    if root is None:
        errors.error(
            whole_file, "the manifest is empty: it needs at least 'namespace' and 'functions'"
        )
        return None, errors
    top = reader.mapping(root, "the manifest")
    if top is None:
        return None, errors
    reader.keys(top, TOP_KEYS, "the manifest")
    namespace_node = top.get("namespace")
    namespace = reader.string(namespace_node, "namespace")
    if namespace_node is None:
        errors.error(top.location, "missing required key 'namespace'")
    endpoint = _parse_endpoint(reader, top)
    types = reader.named_sections(
        top.get("types"), "types", lambda n, loc, v: _parse_type(reader, n, loc, v)
    )
    functions = reader.named_sections(
        top.get("functions"), "functions", lambda n, loc, v: _parse_function(reader, n, loc, v)
    )
    functions_node = top.get("functions")
    if functions_node is None:
        errors.error(top.location, "missing required key 'functions'")
    elif not functions and not errors.diagnostics:
        errors.error(functions_node.location, "'functions' must declare at least one function")
    ingresses = reader.named_sections(
        top.get("ingresses"), "ingresses", lambda n, loc, v: _parse_ingress(reader, n, loc, v)
    )
    egresses = reader.named_sections(
        top.get("egresses"), "egresses", lambda n, loc, v: _parse_egress(reader, n, loc, v)
    )
    if namespace is None or endpoint is None:
        return None, errors
    manifest = Manifest(
        path=path,
        namespace=namespace,
        namespace_location=namespace_node.location if namespace_node else whole_file,
        endpoint=endpoint,
        types=types,
        functions=functions,
        ingresses=ingresses,
        egresses=egresses,
    )
    return manifest, errors


def _parse_endpoint(reader: _Reader, top: YMapping) -> EndpointDecl | None:
    node = top.get("endpoint")
    if node is None:
        reader.errors.error(top.location, "missing required key 'endpoint' (at least its 'url')")
        return None
    if isinstance(node, YScalar):
        url = reader.string(node, "endpoint")
        return EndpointDecl(url.strip(), node.location, None, "async", ()) if url else None
    mapping = reader.mapping(node, "endpoint")
    if mapping is None:
        return None
    reader.keys(mapping, ENDPOINT_KEYS, "endpoint")
    url_node = mapping.get("url")
    url = reader.string(url_node, "endpoint url")
    if url_node is None:
        reader.errors.error(mapping.location, "missing required key 'url' in endpoint")
    transport_node = mapping.get("transport")
    transport = reader.choice(transport_node, "endpoint transport", TRANSPORTS) or "async"
    timeouts: list[tuple[str, Duration]] = []
    timeouts_node = reader.mapping(mapping.get("timeouts"), "endpoint timeouts")
    if timeouts_node is not None:
        allowed = TIMEOUT_KEYS[transport]
        reader.keys(timeouts_node, allowed, f"endpoint timeouts of the {transport} transport")
        for entry in timeouts_node.entries:
            if entry.key in allowed:
                duration = reader.duration(
                    entry.value,
                    f"timeout '{entry.key}'",
                    JAVA_INT_MAX,
                    "the runtime's HTTP clients accept",
                )
                if duration is not None:
                    timeouts.append((entry.key, duration))
    max_batch = reader.integer(mapping.get("max_batch_requests"), "max_batch_requests")
    if url is None or url_node is None:
        return None
    return EndpointDecl(
        url.strip(),
        url_node.location,
        max_batch,
        transport,
        tuple(timeouts),
        transport_node.location if transport_node is not None else None,
    )


def _parse_type(reader: _Reader, name: str, location: Location, node: YNode) -> TypeDecl | None:
    mapping = reader.mapping(node, f"type '{name}'")
    if mapping is None:
        return None
    reader.keys(mapping, TYPE_KEYS, f"type '{name}'")
    typename_node = mapping.get("typename")
    json_node = mapping.get("json")
    if typename_node is not None and json_node is not None:
        reader.errors.error(
            json_node.location,
            f"type '{name}' gives both 'typename' and 'json': 'json: <typename>' alone declares a JSON type",
        )
        return None
    if typename_node is None and json_node is None:
        reader.errors.error(mapping.location, f"type '{name}' needs 'typename' or 'json'")
        return None
    chosen = typename_node if typename_node is not None else json_node
    assert chosen is not None
    typename = reader.string(chosen, f"the typename of type '{name}'")
    return TypeDecl(name, location, typename, chosen.location, json_node is not None)


def _parse_function(
    reader: _Reader, name: str, location: Location, node: YNode
) -> FunctionDecl | None:
    mapping = reader.mapping(node, f"function '{name}'")
    if mapping is None:
        return None
    what = f"function '{name}'"
    reader.keys(mapping, FUNCTION_KEYS, what)
    inputs = reader.refs(mapping.get("input"), f"an input type of {what}")
    if mapping.get("input") is None:
        reader.errors.error(location, f"{what} needs 'input': the message type(s) it accepts")
    states: list[StateDecl] = []
    state_node = reader.mapping(mapping.get("state"), f"the state of {what}")
    if state_node is not None:
        for entry in state_node.entries:
            if not reader.name(entry, "state"):
                continue
            state = _parse_state(reader, entry.key, entry.key_location, entry.value, what)
            if state is not None:
                states.append(state)
    doc_node = mapping.get("doc")
    doc = (
        reader.string(doc_node, f"the doc of {what}", allow_layout=True)
        if doc_node is not None
        else None
    )
    return FunctionDecl(
        name=name,
        location=location,
        doc=doc or "",
        inputs=inputs,
        states=tuple(states),
        sends=reader.refs(mapping.get("sends"), f"a target of {what}"),
        egresses=reader.refs(mapping.get("egress"), f"an egress of {what}"),
    )


def _parse_state(
    reader: _Reader, name: str, location: Location, node: YNode, owner: str
) -> StateDecl | None:
    what = f"state '{name}' of {owner}"
    if isinstance(node, YScalar):
        text = reader.string(node, f"the type of {what}")
        return StateDecl(name, location, Ref(text, node.location), None, None) if text else None
    mapping = reader.mapping(node, what)
    if mapping is None:
        return None
    reader.keys(mapping, STATE_KEYS, what)
    type_node = mapping.get("type")
    text = reader.string(type_node, f"the type of {what}")
    if type_node is None:
        reader.errors.error(mapping.location, f"{what} needs 'type'")
    after_call = reader.duration(
        mapping.get("expire_after_call"),
        "expire_after_call",
        TIMEDELTA_MAX_MILLIS,
        "Python's timedelta allows",
    )
    after_write = reader.duration(
        mapping.get("expire_after_write"),
        "expire_after_write",
        TIMEDELTA_MAX_MILLIS,
        "Python's timedelta allows",
    )
    if after_call is not None and after_write is not None:
        reader.errors.error(
            after_write.location,
            f"{what} sets both expire_after_call and expire_after_write; choose one",
        )
    if text is None or type_node is None:
        return None
    return StateDecl(name, location, Ref(text, type_node.location), after_call, after_write)


def _kind(reader: _Reader, mapping: YMapping, what: str) -> str | None:
    node = mapping.get("kind")
    if node is None:
        reader.errors.error(mapping.location, f"{what} needs 'kind' (kafka or kinesis)")
        return None
    return reader.choice(node, f"the kind of {what}", ("kafka", "kinesis"))


def _parse_ingress(
    reader: _Reader, name: str, location: Location, node: YNode
) -> IngressDecl | None:
    what = f"ingress '{name}'"
    mapping = reader.mapping(node, what)
    if mapping is None:
        return None
    kind = _kind(reader, mapping, what)
    if kind is None:
        return None
    reader.keys(mapping, KAFKA_INGRESS_KEYS if kind == "kafka" else KINESIS_INGRESS_KEYS, what)
    list_key = "topics" if kind == "kafka" else "streams"
    routes: list[RouteDecl] = []
    routes_node = mapping.get(list_key)
    if routes_node is None:
        reader.errors.error(mapping.location, f"{what} needs '{list_key}'")
    elif not isinstance(routes_node, YSequence) or not routes_node.items:
        reader.errors.error(
            routes_node.location, f"'{list_key}' of {what} must be a non-empty list"
        )
    else:
        for item in routes_node.items:
            route = _parse_route(reader, kind, item, what)
            if route is not None:
                routes.append(route)
    address = reader.string(mapping.get("address"), f"the address of {what}")
    if kind == "kafka" and mapping.get("address") is None:
        reader.errors.error(
            mapping.location, f"{what} needs 'address' (the Kafka bootstrap servers)"
        )
    return IngressDecl(
        name=name,
        location=location,
        kind=kind,
        address=address,
        consumer_group=reader.string(mapping.get("consumer_group"), "consumer_group"),
        startup_position=reader.choice(
            mapping.get("startup_position"), "startup_position", STARTUP_POSITIONS[kind]
        ),
        aws_region=reader.string(mapping.get("aws_region"), "aws_region"),
        routes=tuple(routes),
        properties=reader.properties(mapping.get("properties"), "property"),
        address_location=_where(mapping.get("address")),
        aws_region_location=_where(mapping.get("aws_region")),
    )


def _parse_route(reader: _Reader, kind: str, node: YNode, owner: str) -> RouteDecl | None:
    source_key = "topic" if kind == "kafka" else "stream"
    mapping = reader.mapping(node, f"a {source_key} of {owner}")
    if mapping is None:
        return None
    reader.keys(mapping, ROUTE_KEYS[kind], f"a {source_key} of {owner}")
    source = reader.string(mapping.get(source_key), source_key)
    type_node = mapping.get("type")
    type_text = reader.string(type_node, f"the type of {source_key} '{source}'")
    for key, present in ((source_key, source), ("type", type_text)):
        if mapping.get(key) is None:
            reader.errors.error(mapping.location, f"a {source_key} of {owner} needs '{key}'")
    targets = reader.refs(mapping.get("targets"), "a target")
    if mapping.get("targets") is not None and not targets:
        reader.errors.error(mapping.location, f"{source_key} '{source}' of {owner} has no targets")
    if mapping.get("targets") is None:
        reader.errors.error(mapping.location, f"a {source_key} of {owner} needs 'targets'")
    if source is None or type_text is None or type_node is None:
        return None
    return RouteDecl(
        source,
        mapping.location,
        Ref(type_text, type_node.location),
        targets,
        _where(mapping.get(source_key)),
    )


def _parse_egress(reader: _Reader, name: str, location: Location, node: YNode) -> EgressDecl | None:
    what = f"egress '{name}'"
    mapping = reader.mapping(node, what)
    if mapping is None:
        return None
    kind = _kind(reader, mapping, what)
    if kind is None:
        return None
    reader.keys(mapping, KAFKA_EGRESS_KEYS if kind == "kafka" else KINESIS_EGRESS_KEYS, what)
    if kind == "kafka" and mapping.get("address") is None:
        reader.errors.error(
            mapping.location, f"{what} needs 'address' (the Kafka bootstrap servers)"
        )
    delivery = reader.choice(mapping.get("delivery"), "delivery", DELIVERY_SEMANTICS)
    timeout = reader.duration(
        mapping.get("transaction_timeout"),
        "transaction_timeout",
        JAVA_INT_MAX,
        "Kafka's transaction.timeout.ms allows",
    )
    if timeout is not None and timeout.millis > KAFKA_BROKER_MAX_TRANSACTION_MILLIS:
        reader.errors.warning(
            timeout.location,
            f"transaction_timeout {format_duration(timeout.millis)} is longer than Kafka "
            "brokers accept by default (transaction.max.timeout.ms is 15min), so the producer "
            "will fail to start unless the broker is configured for it",
        )
    if (
        delivery == "exactly-once"
        and timeout is None
        and mapping.get("transaction_timeout") is None
    ):
        reader.errors.error(
            mapping.location,
            f"{what} is exactly-once, so it needs 'transaction_timeout' (e.g. 15min)",
        )
    if timeout is not None and delivery != "exactly-once":
        reader.errors.error(
            timeout.location, "transaction_timeout applies only to delivery: exactly-once"
        )
    type_node = mapping.get("type")
    type_text = reader.string(type_node, f"the type of {what}")
    target_key = "topic" if kind == "kafka" else "stream"
    return EgressDecl(
        name=name,
        location=location,
        kind=kind,
        address=reader.string(mapping.get("address"), f"the address of {what}"),
        delivery=delivery,
        transaction_timeout=timeout,
        aws_region=reader.string(mapping.get("aws_region"), "aws_region"),
        max_outstanding_records=reader.integer(
            mapping.get("max_outstanding_records"), "max_outstanding_records"
        ),
        default_target=reader.string(mapping.get(target_key), target_key),
        type=Ref(type_text, type_node.location) if type_text and type_node else None,
        properties=reader.properties(mapping.get("properties"), "property"),
        address_location=_where(mapping.get("address")),
        aws_region_location=_where(mapping.get("aws_region")),
        default_target_location=_where(mapping.get(target_key)),
    )


def _where(node: YNode | None) -> Location | None:
    return node.location if node is not None else None
