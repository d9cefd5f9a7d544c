"""Read the function manifest (YAML) into positioned declarations, strictly.

Every key is checked against the known set (a typo is an error with a "did you
mean"), every value's shape is checked, and every problem is collected so the
user sees all of them at once. References (types, functions, egresses) stay
unresolved text here; ``model.py`` resolves them against the protos.
"""

from __future__ import annotations

import difflib
import keyword
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
from .module_rules import startup_date_problem
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
class SendDecl:
    """A function this one messages (``sends``), and what it sends there."""

    target: Ref
    types: tuple[Ref, ...] | None  # None: every input type of the target
    delay: Duration | None = None  # default delay of the send_after helper
    token: str | None = None  # default cancellation token of the send_after helper
    token_location: Location | None = None
    # the mapping form: send_after_x(target_id, message, *, delay=..., token=...)
    keyword_form: bool = False


@dataclass(frozen=True, eq=False)
class FunctionDecl:
    name: str
    location: Location
    doc: str
    inputs: tuple[Ref, ...]
    states: tuple[StateDecl, ...]
    sends: tuple[SendDecl, ...]
    egresses: tuple[Ref, ...]


@dataclass(frozen=True, eq=False)
class TypeDecl:
    """``types:`` entry: rename a message's typename, or declare a JSON type (with a shape)."""

    name: str
    location: Location
    typename: str | None
    typename_location: Location
    json: bool
    schema: YNode | None = None  # a JSON Schema (read by json_shapes)
    typeddict: str | None = None  # 'module:Name' of the user's own TypedDict
    shape_location: Location | None = None


@dataclass(frozen=True, eq=False)
class EndpointDecl:
    url: str
    location: Location
    max_batch_requests: int | None
    transport: str
    timeouts: tuple[tuple[str, Duration], ...]
    transport_location: Location | None = None  # where 'transport' was written, if it was
    # 'functions': '*' or '<namespace>/*' patterns, served by one document each
    wildcards: tuple[Ref, ...] = ()


@dataclass(frozen=True, eq=False)
class RouteDecl:
    """One topic (Kafka) or stream (Kinesis) of an ingress and where its records go."""

    source: str
    location: Location
    type: Ref
    targets: tuple[Ref, ...]
    source_location: Location | None = None


@dataclass(frozen=True, eq=False)
class OffsetDecl:
    """``topic/partition: offset`` of a Kafka ingress starting at specific offsets."""

    topic: str
    partition: int
    offset: int
    location: Location


@dataclass(frozen=True, eq=False)
class StartupDecl:
    """Where an ingress starts reading when it has no committed position of its own."""

    kind: str  # earliest | latest | group-offsets | date | specific-offsets
    location: Location
    date: str | None = None
    offsets: tuple[OffsetDecl, ...] = ()


@dataclass(frozen=True, eq=False)
class RegionDecl:
    kind: str  # default | specific | custom-endpoint
    location: Location
    id: str | None = None
    endpoint: str | None = None


@dataclass(frozen=True, eq=False)
class CredentialsDecl:
    kind: str  # default | basic | profile
    location: Location
    access_key_id: str | None = None
    secret_access_key: str | None = None
    profile_name: str | None = None
    profile_path: str | None = None


@dataclass(frozen=True, eq=False)
class IngressDecl:
    name: str
    location: Location
    kind: str
    address: str | None
    consumer_group: str | None
    startup_position: StartupDecl | None
    aws_region: RegionDecl | None
    routes: tuple[RouteDecl, ...]
    properties: tuple[tuple[str, str], ...]
    address_location: Location | None = None
    auto_offset_reset: str | None = None
    aws_credentials: CredentialsDecl | None = None


@dataclass(frozen=True, eq=False)
class EgressTopicDecl:
    """A topic (Kafka) or stream (Kinesis) of an egress: its own helper and value type."""

    target: str
    location: Location
    type: Ref | None
    key: Ref | None  # the message field giving the record key / partition key


@dataclass(frozen=True, eq=False)
class EgressDecl:
    name: str
    location: Location
    kind: str
    address: str | None
    delivery: str | None
    transaction_timeout: Duration | None
    aws_region: RegionDecl | None
    max_outstanding_records: int | None
    default_target: str | None
    type: Ref | None
    properties: tuple[tuple[str, str], ...]
    address_location: Location | None = None
    default_target_location: Location | None = None
    key: Ref | None = None  # the single-topic form's key field
    topics: tuple[EgressTopicDecl, ...] = ()  # the several-topics form
    aws_credentials: CredentialsDecl | None = None


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
ENDPOINT_KEYS = ("url", "functions", "max_batch_requests", "transport", "timeouts")
TIMEOUT_KEYS = {"okhttp": ("call", "connect", "read", "write"), "async": ("call", "connect")}
FUNCTION_KEYS = ("doc", "input", "state", "sends", "egress")
STATE_KEYS = ("type", "expire_after_call", "expire_after_write")
SEND_KEYS = ("types", "delay", "token")
TYPE_KEYS = ("typename", "json", "schema", "typeddict")
KAFKA_INGRESS_KEYS = (
    "kind",
    "address",
    "consumer_group",
    "startup_position",
    "auto_offset_reset",
    "topics",
    "properties",
)
KINESIS_INGRESS_KEYS = (
    "kind",
    "aws_region",
    "aws_credentials",
    "startup_position",
    "streams",
    "properties",
)
KAFKA_EGRESS_KEYS = (
    "kind",
    "address",
    "delivery",
    "transaction_timeout",
    "topic",
    "type",
    "key",
    "topics",
    "properties",
)
KINESIS_EGRESS_KEYS = (
    "kind",
    "aws_region",
    "aws_credentials",
    "max_outstanding_records",
    "stream",
    "type",
    "partition_key",
    "streams",
    "properties",
)
ROUTE_KEYS = {"kafka": ("topic", "type", "targets"), "kinesis": ("stream", "type", "targets")}
EGRESS_TOPIC_KEYS = {
    "kafka": ("topic", "type", "key"),
    "kinesis": ("stream", "type", "partition_key"),
}
DELIVERY_SEMANTICS = ("at-least-once", "exactly-once", "none")
STARTUP_POSITIONS = {
    "kafka": ("earliest", "latest", "group-offsets"),
    "kinesis": ("earliest", "latest"),
}
STARTUP_KEYS = {"kafka": ("date", "offsets"), "kinesis": ("date",)}
OFFSET_RESETS = ("earliest", "latest")
REGION_KEYS = ("id", "endpoint")
CREDENTIAL_KEYS = {
    "basic": ("type", "access_key_id", "secret_access_key"),
    "profile": ("type", "profile_name", "profile_path"),
}
BOOTSTRAP_SERVERS = "bootstrap.servers"
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

    def integer(
        self,
        node: YNode | None,
        what: str,
        maximum: int = JAVA_INT_MAX,
        zero: bool = False,
    ) -> int | None:
        """A positive (or, with ``zero``, non-negative) whole number in plain decimal; YAML
        1.1's other spellings are refused."""
        if node is None:
            return None
        text = node.text.strip() if isinstance(node, YScalar) else ""
        kind = "non-negative" if zero else "positive"
        problem = f"{what} must be a {kind} whole number" + (
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
            elif int(text) == 0 and not zero:
                problem = f"{what} must be a positive whole number, not 0"
            elif int(text) > maximum:
                problem = f"{what} {text} is larger than the runtime allows ({maximum})"
            else:
                return int(text)
        elif re.fullmatch(r"[-+]?[0-9][0-9_]*", text, re.ASCII):
            problem = f"{what} must be a {kind} whole number written with digits only, not '{text}'"
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
    wildcards: list[Ref] = []
    for ref in reader.refs(mapping.get("functions"), "an endpoint 'functions' pattern"):
        if ref.text == "*" or (ref.text.endswith("/*") and ref.text.count("*") == 1):
            wildcards.append(ref)
        else:
            reader.errors.error(
                ref.location,
                f"endpoint 'functions' takes '*' (every function of the namespace, also ones "
                f"added later) or '<namespace>/*', not '{shown(ref.text)}'",
                "the functions the manifest declares are served anyway",
            )
    if url is None or url_node is None:
        return None
    return EndpointDecl(
        url.strip(),
        url_node.location,
        max_batch,
        transport,
        tuple(timeouts),
        transport_node.location if transport_node is not None else None,
        tuple(wildcards),
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
    schema_entry = mapping.entry("schema")
    typeddict_node = mapping.get("typeddict")
    shape_node = schema_entry.value if schema_entry is not None else typeddict_node
    if shape_node is not None and json_node is None:
        reader.errors.error(
            shape_node.location,
            f"type '{name}' renames a message; 'schema' and 'typeddict' give a JSON type its "
            "shape (write 'json: <typename>')",
        )
        return None
    if schema_entry is not None and typeddict_node is not None:
        reader.errors.error(
            typeddict_node.location,
            f"type '{name}' gives both 'schema' and 'typeddict'; choose one",
        )
        return None
    typeddict = reader.string(typeddict_node, f"the typeddict of type '{name}'")
    if typeddict is not None and typeddict_node is not None:
        problem = typeddict_path_problem(typeddict)
        if problem:
            reader.errors.error(
                typeddict_node.location,
                f"bad typeddict '{shown(typeddict)}' for type '{name}': {problem}",
            )
            return None
    return TypeDecl(
        name,
        location,
        typename,
        chosen.location,
        json_node is not None,
        schema_entry.value if schema_entry is not None else None,
        typeddict,
        shape_node.location if shape_node is not None else None,
    )


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", re.ASCII)


def typeddict_path_problem(text: str) -> str | None:
    """``module:Name`` (a leading '.' is relative to the output package), or why not."""
    module, sep, attribute = text.partition(":")
    relative = module.startswith(".")
    module = module[1:] if relative else module
    if not sep or not _DOTTED.fullmatch(module) or not _DOTTED.fullmatch(attribute):
        return (
            "expected 'package.module:Name' (or '.module:Name' for a module of the output "
            "package, next to the function bodies)"
        )
    if "." in attribute:
        return "the part after ':' is one name"
    for part in (*module.split("."), attribute):
        if keyword.iskeyword(part):
            return f"'{part}' is a Python keyword"
    return None


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
        sends=_parse_sends(reader, mapping.get("sends"), what),
        egresses=reader.refs(mapping.get("egress"), f"an egress of {what}"),
    )


def _parse_sends(reader: _Reader, node: YNode | None, owner: str) -> tuple[SendDecl, ...]:
    """``sends: [a, b]`` (every input of each), or ``sends: {a: [T, ...], b: {types, delay,
    token}}``: the types sent and the defaults of the delayed helper."""
    if not isinstance(node, YMapping):
        return tuple(SendDecl(ref, None) for ref in reader.refs(node, f"a target of {owner}"))
    sends: list[SendDecl] = []
    for entry in node.entries:
        if not reader.name(entry, "target"):
            continue
        target = Ref(entry.key, entry.key_location)
        what = f"the sends of {owner} to '{shown(entry.key)}'"
        value = entry.value
        if isinstance(value, YScalar) and value.is_null:
            sends.append(SendDecl(target, None, keyword_form=True))
            continue
        if not isinstance(value, YMapping):
            listed = reader.refs(value, f"a type in {what}")
            if isinstance(value, YSequence) and not value.items:
                reader.errors.error(value.location, f"{what} lists no type")
                continue
            sends.append(SendDecl(target, listed, keyword_form=True))
            continue
        reader.keys(value, SEND_KEYS, what)
        types_node = value.get("types")
        types = reader.refs(types_node, f"a type in {what}") if types_node is not None else None
        if types_node is not None and not types:
            reader.errors.error(types_node.location, f"'types' of {what} lists no type")
            continue
        delay = reader.duration(
            value.get("delay"),
            f"the delay of {what}",
            TIMEDELTA_MAX_MILLIS,
            "Python's timedelta allows",
        )
        token_node = value.get("token")
        token = reader.string(token_node, f"the cancellation token of {what}")
        sends.append(
            SendDecl(
                target,
                types,
                delay,
                token,
                token_node.location if token_node is not None else None,
                keyword_form=True,
            )
        )
    return tuple(sends)


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
    properties = reader.properties(mapping.get("properties"), "property")
    _require_address(reader, kind, mapping, properties, what)
    return IngressDecl(
        name=name,
        location=location,
        kind=kind,
        address=address,
        consumer_group=reader.string(mapping.get("consumer_group"), "consumer_group"),
        startup_position=_parse_startup(reader, kind, mapping.get("startup_position"), what),
        aws_region=_parse_region(reader, mapping.get("aws_region")),
        routes=tuple(routes),
        properties=properties,
        address_location=_where(mapping.get("address")),
        auto_offset_reset=reader.choice(
            mapping.get("auto_offset_reset"), "auto_offset_reset", OFFSET_RESETS
        ),
        aws_credentials=_parse_credentials(reader, mapping.get("aws_credentials"), what),
    )


def _require_address(
    reader: _Reader,
    kind: str,
    mapping: YMapping,
    properties: tuple[tuple[str, str], ...],
    what: str,
) -> None:
    """Kafka needs its bootstrap servers: 'address', or the client property itself."""
    if kind != "kafka" or mapping.get("address") is not None:
        return
    if any(key == BOOTSTRAP_SERVERS for key, _ in properties):
        return
    reader.errors.error(mapping.location, f"{what} needs 'address' (the Kafka bootstrap servers)")


def _parse_startup(
    reader: _Reader, kind: str, node: YNode | None, owner: str
) -> StartupDecl | None:
    """``earliest`` | ``latest`` | ``group-offsets``, or ``{date: ...}`` / ``{offsets: ...}``."""
    if node is None:
        return None
    what = f"the startup_position of {owner}"
    if not isinstance(node, YMapping):
        choice = reader.choice(node, "startup_position", STARTUP_POSITIONS[kind])
        return StartupDecl(choice, node.location) if choice is not None else None
    allowed = STARTUP_KEYS[kind]
    reader.keys(node, allowed, what)
    given = [e for e in node.entries if e.key in allowed]
    if len(given) != 1:
        if len(given) > 1 or not node.entries:  # unknown keys alone are reported already
            reader.errors.error(
                node.location,
                f"{what} is one of {', '.join(STARTUP_POSITIONS[kind])}, or a mapping with "
                f"one key: {' or '.join(allowed)}",
            )
        return None
    entry = given[0]
    if entry.key == "date":
        date = reader.string(entry.value, "the startup date")
        if date is None:
            return None
        problem = startup_date_problem(date, real_date=True)
        if problem:
            reader.errors.error(
                entry.value.location,
                f"bad startup date '{shown(date)}' (yyyy-MM-dd HH:mm:ss.SSS Z): {problem}",
            )
            return None
        return StartupDecl("date", node.location, date=date)
    offsets_node = reader.mapping(entry.value, "the startup offsets")
    if offsets_node is None:
        return None
    if not offsets_node.entries:
        reader.errors.error(
            entry.value.location, "the startup offsets are empty: give 'topic/partition: offset'"
        )
        return None
    offsets: list[OffsetDecl] = []
    for offset in offsets_node.entries:
        if not reader.name(offset, "startup offset"):
            continue
        topic, _, partition = offset.key.rpartition("/")
        if not topic or not re.fullmatch(r"[0-9]+", partition, re.ASCII):
            reader.errors.error(
                offset.key_location,
                f"startup offset key '{shown(offset.key)}' is not topic/partition "
                "(e.g. orders/0)",
            )
            continue
        if int(partition) > JAVA_INT_MAX:
            reader.errors.error(
                offset.key_location, f"partition {partition} does not fit Kafka's int"
            )
            continue
        value = reader.integer(
            offset.value, f"the offset of {offset.key}", JAVA_LONG_MAX, zero=True
        )
        if value is not None:
            offsets.append(OffsetDecl(topic, int(partition), value, offset.key_location))
    if not offsets:
        return None
    return StartupDecl("specific-offsets", node.location, offsets=tuple(offsets))


def _parse_region(reader: _Reader, node: YNode | None) -> RegionDecl | None:
    """``eu-west-1`` (specific), ``default`` (the AWS provider chain), or ``{endpoint, id}``."""
    if node is None:
        return None
    if not isinstance(node, YMapping):
        text = reader.string(node, "aws_region")
        if text is None:
            return None
        if text == "default":
            return RegionDecl("default", node.location)
        return RegionDecl("specific", node.location, id=text)
    reader.keys(node, REGION_KEYS, "aws_region")
    endpoint = reader.string(node.get("endpoint"), "the endpoint of aws_region")
    region_id = reader.string(node.get("id"), "the id of aws_region")
    for key, value in (("endpoint", endpoint), ("id", region_id)):
        if node.get(key) is None:
            reader.errors.error(
                node.location,
                f"a custom aws_region needs '{key}' (the service endpoint URL and the "
                "region it signs for)",
            )
    if endpoint is None or region_id is None:
        return None
    return RegionDecl("custom-endpoint", node.location, id=region_id, endpoint=endpoint)


def _parse_credentials(reader: _Reader, node: YNode | None, owner: str) -> CredentialsDecl | None:
    """``default``, or ``{type: basic, access_key_id, secret_access_key}`` /
    ``{type: profile, profile_name, profile_path?}``."""
    if node is None:
        return None
    what = f"the aws_credentials of {owner}"
    if not isinstance(node, YMapping):
        if reader.choice(node, "aws_credentials", ("default",)) is None:
            return None
        return CredentialsDecl("default", node.location)
    kind = reader.choice(node.get("type"), f"the type of {what}", ("default", *CREDENTIAL_KEYS))
    if node.get("type") is None:
        reader.errors.error(node.location, f"{what} needs 'type' (default, basic or profile)")
    if kind is None:
        return None
    reader.keys(node, CREDENTIAL_KEYS.get(kind, ("type",)), f"{what} (type {kind})")
    values: dict[str, str | None] = {}
    for key in CREDENTIAL_KEYS.get(kind, ("type",))[1:]:
        values[key] = reader.string(node.get(key), key)
        if node.get(key) is None and key != "profile_path":
            reader.errors.error(node.location, f"{what} (type {kind}) needs '{key}'")
    if kind == "basic" and values.get("secret_access_key"):
        reader.errors.warning(
            _where(node.get("secret_access_key")) or node.location,
            f"{what} holds a secret access key: it is written to module.yaml in plain text",
            "prefer type: default (environment, instance role) or profile",
        )
    return CredentialsDecl(
        kind,
        node.location,
        access_key_id=values.get("access_key_id"),
        secret_access_key=values.get("secret_access_key"),
        profile_name=values.get("profile_name"),
        profile_path=values.get("profile_path"),
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
    properties = reader.properties(mapping.get("properties"), "property")
    _require_address(reader, kind, mapping, properties, what)
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
    key_key = "key" if kind == "kafka" else "partition_key"
    list_key = target_key + "s"
    topics = _parse_egress_topics(reader, kind, mapping.get(list_key), what)
    if mapping.get(list_key) is not None:
        for single in (target_key, "type", key_key):
            single_node = mapping.get(single)
            if single_node is not None:
                reader.errors.error(
                    single_node.location,
                    f"{what} lists '{list_key}', each with its own {target_key}, type and "
                    f"{key_key}; '{single}' belongs in those entries",
                )
    return EgressDecl(
        name=name,
        location=location,
        kind=kind,
        address=reader.string(mapping.get("address"), f"the address of {what}"),
        delivery=delivery,
        transaction_timeout=timeout,
        aws_region=_parse_region(reader, mapping.get("aws_region")),
        max_outstanding_records=reader.integer(
            mapping.get("max_outstanding_records"), "max_outstanding_records"
        ),
        default_target=reader.string(mapping.get(target_key), target_key),
        type=Ref(type_text, type_node.location) if type_text and type_node else None,
        properties=properties,
        address_location=_where(mapping.get("address")),
        default_target_location=_where(mapping.get(target_key)),
        key=_field_ref(reader, mapping.get(key_key), key_key),
        topics=topics,
        aws_credentials=_parse_credentials(reader, mapping.get("aws_credentials"), what),
    )


def _field_ref(reader: _Reader, node: YNode | None, what: str) -> Ref | None:
    text = reader.string(node, what)
    return Ref(text.strip(), node.location) if text is not None and node is not None else None


def _parse_egress_topics(
    reader: _Reader, kind: str, node: YNode | None, owner: str
) -> tuple[EgressTopicDecl, ...]:
    if node is None:
        return ()
    target_key = "topic" if kind == "kafka" else "stream"
    key_key = "key" if kind == "kafka" else "partition_key"
    if not isinstance(node, YSequence) or not node.items:
        reader.errors.error(node.location, f"'{target_key}s' of {owner} must be a non-empty list")
        return ()
    topics: list[EgressTopicDecl] = []
    for item in node.items:
        mapping = reader.mapping(item, f"a {target_key} of {owner}")
        if mapping is None:
            continue
        reader.keys(mapping, EGRESS_TOPIC_KEYS[kind], f"a {target_key} of {owner}")
        target_node = mapping.get(target_key)
        target = reader.string(target_node, target_key)
        if target_node is None:
            reader.errors.error(mapping.location, f"a {target_key} of {owner} needs '{target_key}'")
        type_node = mapping.get("type")
        type_text = reader.string(type_node, f"the type of {target_key} '{target}'")
        if target is None or target_node is None:
            continue
        topics.append(
            EgressTopicDecl(
                target.strip(),
                target_node.location,
                Ref(type_text, type_node.location) if type_text and type_node else None,
                _field_ref(reader, mapping.get(key_key), key_key),
            )
        )
    return tuple(topics)


def _where(node: YNode | None) -> Location | None:
    return node.location if node is not None else None
