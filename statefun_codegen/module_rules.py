"""module.yaml as the Java StateFun runtime reads it: a reader into plain, located data.

``read_module_yaml(text, path)`` reads every format the runtime loads
(statefun-reference §5): the 3.1+ multi-document component format, the legacy
single-document ``version: "3.0"`` (3.x runtimes), and ``version: "1.0"`` /
``"2.0"`` (2.x runtimes). It applies the rules the runtime applies when it loads
the file and reports, with ``path:line:col``:

* errors: what the runtime would refuse (a missing required key, a typename that
  is not ``<namespace>/<name>`` by Java's ``String.split``, a URL ``java.net.URI``
  cannot parse or that has no server authority, a duration Flink's ``TimeUtils``
  cannot read, a zero timeout, OkHttp timeouts longer than the call, an unknown
  enum value, a second component with the same id ...);
* warnings: what the runtime accepts but probably not as meant: keys it ignores
  (Jackson's ``FAIL_ON_UNKNOWN_PROPERTIES=false``), an alias (Jackson reads it as the
  *name* of its anchor), a duplicate key (the last one wins), a plain scalar YAML 1.1
  reads as a boolean or number where text is expected (``topic: on``), an octal or
  sexagesimal spelling, a component kind that needs an extension binder.

It is lenient where the runtime is (``meta.type: REMOTE``, ``autoOffsetResetPosition:
EARLIEST``, ``2 minutes``, ``transactionTimeoutMillis``, ``ns/*`` targets, both state
spellings of 2.x) and returns the values as the runtime would use them: durations
in milliseconds with defaults applied where the runtime applies them, typenames
split, targets listed. The generator runs it on its own module.yaml before writing
(an internal error if the runtime would reject our own output); ``--adopt`` reads
existing deployments with it.

The shared rules (``split_typename``, ``endpoint_url_problem``,
``okhttp_timeouts_problem``, ``function_target_problem``) are what the manifest's
validation uses too, so the two can never disagree.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import java_uri
from .diagnostics import ERROR, WARNING, Diagnostic, GenerationError, Location
from .durations import JAVA_INT_MAX, JAVA_LONG_MAX, flink_duration_nanos, format_duration
from .yaml_nodes import Policy, YEntry, YMapping, YNode, YScalar, YSequence, load_documents

HTTP_SCHEMES = ("http", "https", "http+unix", "https+unix")
ENDPOINT_V1 = "io.statefun.endpoints.v1/http"
ENDPOINT_V2 = "io.statefun.endpoints.v2/http"
KAFKA_INGRESS = "io.statefun.kafka.v1/ingress"
KAFKA_EGRESS = "io.statefun.kafka.v1/egress"
KINESIS_INGRESS = "io.statefun.kinesis.v1/ingress"
KINESIS_EGRESS = "io.statefun.kinesis.v1/egress"
ASYNC_TRANSPORT = "io.statefun.transports.v1/async"
OKHTTP_TRANSPORT = "io.statefun.transports.v1/okhttp"
OKHTTP_DEFAULTS = {"call": 60_000, "connect": 10_000, "read": 10_000, "write": 10_000}
ASYNC_DEFAULTS = {"call": 120_000, "connect": 20_000}
LEGACY_30_KINDS = {
    "http": ENDPOINT_V1,
    "io.statefun.kafka/ingress": KAFKA_INGRESS,
    "io.statefun.kafka/egress": KAFKA_EGRESS,
    "io.statefun.kinesis/ingress": KINESIS_INGRESS,
    "io.statefun.kinesis/egress": KINESIS_EGRESS,
}
KAFKA_ROUTABLE_20 = "statefun.kafka.io/routable-protobuf-ingress"
KAFKA_PROTOBUF_20 = "statefun.kafka.io/protobuf-ingress"
KAFKA_EGRESS_20 = "statefun.kafka.io/generic-egress"
KINESIS_ROUTABLE_20 = "statefun.kinesis.io/routable-protobuf-ingress"
KINESIS_EGRESS_20 = "statefun.kinesis.io/generic-egress"
PROTOBUF_ROUTER_20 = "org.apache.flink.statefun.sdk/protobuf-router"
RUNTIMES = {
    "3.1": "StateFun 3.1+",
    "3.0": "StateFun 3.x",
    "2.0": "StateFun 2.1+",
    "1.0": "StateFun 2.x",
}

# SnakeYAML's (YAML 1.1) implicit resolvers, as Jackson's YAML parser applies them
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(
    r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"
)
_INT = re.compile(
    r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
    r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$"
)
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9_]+(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_READER_POLICY = Policy(
    what="module.yaml", aliases="anchor-name", duplicates="last-wins", merge_keys=True
)


# ---- the shared rules --------------------------------------------------------------


def split_typename(text: str) -> tuple[str, str] | None:
    """Java's ``TypeName.parseFrom``: ``text.split("/")`` must give exactly two parts.

    Java's split drops trailing empty strings, so ``a/b/`` is accepted as ``a/b`` and
    ``/b`` gives an empty namespace, while ``a/`` and ``a//b`` are refused.
    """
    parts = text.split("/")
    while parts and parts[-1] == "":
        parts.pop()
    if text == "":
        parts = [""]
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


def function_target_problem(text: str) -> str | None:
    """``TargetFunctions.fromPatternString``: ``ns/name`` or ``ns/*``, nothing else."""
    split = split_typename(text)
    if split is None:
        return f"'{text}' is not <namespace>/<name>"
    namespace, name = split
    if "*" in namespace or ("*" in name and name != "*"):
        return f"'{text}': only <namespace>/<name> or <namespace>/* are supported"
    return None


def endpoint_url_problem(url: str) -> str | None:
    """Why the runtime could not call ``url`` (placeholders already replaced), if it could not.

    ``URI.create`` must parse it; http(s) needs a server authority (the async transport
    calls ``parseServerAuthority()``, OkHttp needs a host) with a port in 1..65535; the
    unix schemes need a path segment ending in ``.sock``.
    """
    try:
        uri = java_uri.parse(url)
    except java_uri.UriSyntaxError as exc:
        return f"java.net.URI cannot parse it: {exc.reason} at index {exc.index}"
    if uri.scheme is None or uri.scheme not in HTTP_SCHEMES:
        return f"the scheme must be one of {', '.join(HTTP_SCHEMES)}"
    if uri.opaque:
        return "it must be hierarchical (scheme://...)"
    if uri.scheme.endswith("+unix"):
        segments = (uri.path or "").split("/")
        if not any(segment.endswith(".sock") for segment in segments):
            return (
                "a unix-socket URL needs the socket file in its path, ending in .sock "
                "(e.g. http+unix:///run/functions.sock/statefun)"
            )
        return None
    if uri.host is None:
        if not uri.authority:
            return "it has no host"
        reason = uri.server_error.reason if uri.server_error else "not a host and port"
        explained = (
            ": host names take letters, digits, '-' and '.', the last label starts with a "
            "letter, and '_' is not allowed"
            if "hostname" in reason
            else ""
        )
        return f"java.net.URI finds no server in '{uri.authority}' ({reason}){explained}"
    if uri.port != -1 and not 1 <= uri.port <= 65535:
        return f"the port {uri.port} is not in 1..65535"
    return None


def okhttp_timeouts_problem(timeouts: Mapping[str, int]) -> str | None:
    """``DefaultHttpRequestReplyClientSpec``: connect, read and write must each be <= call.

    ``timeouts`` holds the explicit values in milliseconds; the others take OkHttp's
    defaults (call 1min, connect/read/write 10s), as the runtime does.
    """
    effective = {**OKHTTP_DEFAULTS, **timeouts}
    for key in ("connect", "read", "write"):
        if effective[key] > effective["call"]:
            given = "" if key in timeouts else " (its default)"
            call = "" if "call" in timeouts else " (its default)"
            return (
                f"the {key} timeout{given}, {_millis_text(effective[key])}, is longer than the "
                f"call timeout{call}, {_millis_text(effective['call'])}; the OkHttp transport "
                "refuses that"
            )
    return None


def _millis_text(millis: int) -> str:
    return format_duration(millis)


_STARTUP_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{3}) ([+-])(\d{2})(\d{2})", re.ASCII
)


def startup_date_problem(text: str, real_date: bool = False) -> str | None:
    """Why ``text`` is not a startup date ``yyyy-MM-dd HH:mm:ss.SSS Z``, if it is not.

    The runtime parses it with a ``DateTimeFormatter`` in its default (smart) style: fields
    in range, a day 29-31 past the month's end moved to its last day. ``real_date`` also
    refuses such days (the manifest does: nobody means 31 April).
    """
    match = _STARTUP_DATE.fullmatch(text)
    if match is None:
        return "expected e.g. '2024-01-31 23:59:00.000 +0000'"
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    offset_hours, offset_minutes = int(match.group(9)), int(match.group(10))
    if not 1 <= month <= 12:
        return f"there is no month {month:02d}"
    if not 1 <= day <= 31:
        return f"there is no day {day:02d}"
    if hour > 23 or minute > 59 or second > 59:
        return f"{hour:02d}:{minute:02d}:{second:02d} is not a time of day"
    if offset_hours > 18 or offset_minutes > 59 or (offset_hours == 18 and offset_minutes):
        return (
            f"{match.group(8)}{match.group(9)}{match.group(10)} is not a UTC offset (at most ±1800)"
        )
    if real_date:
        last = calendar.monthrange(year, month)[1] if year else 31
        if day > last:
            return f"{year:04d}-{month:02d} has {last} days"
    return None


# ---- the data ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Transport:
    type: str  # io.statefun.transports.v1/async | .../okhttp | a custom transport typename
    timeouts: tuple[tuple[str, int], ...]  # explicit ones, milliseconds
    properties: tuple[tuple[str, str], ...]  # the rest, as text (pool_size, trust_cacerts ...)
    location: Location

    def effective_timeouts(self) -> dict[str, int]:
        """With the runtime's defaults for the keys not given."""
        defaults = OKHTTP_DEFAULTS if self.type == OKHTTP_TRANSPORT else ASYNC_DEFAULTS
        return {**defaults, **dict(self.timeouts)}


@dataclass(frozen=True, eq=False)
class HttpEndpoint:
    """An ``io.statefun.endpoints.v1|v2/http`` component (3.0's ``endpoint`` entries too)."""

    kind: str
    functions: str  # as written: ns/name or ns/*
    namespace: str
    name: str | None  # None for ns/*
    url_path_template: str
    max_num_batch_requests: int
    transport: Transport
    location: Location


@dataclass(frozen=True, eq=False)
class StateSpec:
    """A 2.x function's state: v1.0 names only, v2.0 with an optional expiration."""

    name: str
    expire_after_millis: int | None
    expire_mode: str | None  # after-invoke | after-write
    location: Location


@dataclass(frozen=True, eq=False)
class RemoteFunction:
    """A 2.x ``function`` entry (version 1.0 / 2.0)."""

    kind: str  # http | grpc
    typename: str
    endpoint: str
    states: tuple[StateSpec, ...]
    max_num_batch_requests: int
    timeouts: tuple[tuple[str, int], ...]  # timeout/connectTimeout/... as call/connect/...
    location: Location


@dataclass(frozen=True, eq=False)
class Route:
    """A topic (Kafka) or stream (Kinesis) of a routable ingress."""

    source: str
    value_type: str  # copied into TypedValue.typename (typeUrl in 2.x)
    targets: tuple[str, ...]
    location: Location


@dataclass(frozen=True, eq=False)
class Ingress:
    kind: str  # the component kind (3.1 spelling), or the 2.x meta.type
    id: str
    routes: tuple[Route, ...]
    settings: tuple[tuple[str, str], ...]  # address, consumerGroupId, startupPosition ... as text
    properties: tuple[tuple[str, str], ...]
    location: Location


@dataclass(frozen=True, eq=False)
class Egress:
    kind: str
    id: str
    settings: tuple[tuple[str, str], ...]  # address, deliverySemantic, awsRegion ... as text
    transaction_timeout_millis: int | None
    properties: tuple[tuple[str, str], ...]
    location: Location


@dataclass(frozen=True, eq=False)
class Router:
    """A 2.x protobuf router."""

    ingress: str
    target: str
    descriptor_set: str
    message_type: str
    location: Location


@dataclass(frozen=True, eq=False)
class OtherComponent:
    """A component whose kind needs an extension binder in the runtime: kept as read."""

    kind: str
    spec: YNode | None
    location: Location


@dataclass(frozen=True, eq=False)
class ModuleYaml:
    path: str
    format: str  # "3.1" (components), "3.0", "2.0", "1.0"; "" when not even that was read
    endpoints: tuple[HttpEndpoint, ...] = ()
    functions: tuple[RemoteFunction, ...] = ()  # 1.0 / 2.0
    ingresses: tuple[Ingress, ...] = ()
    egresses: tuple[Egress, ...] = ()
    routers: tuple[Router, ...] = ()  # 1.0 / 2.0
    others: tuple[OtherComponent, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def runtimes(self) -> str:
        """Which StateFun runtimes load this format."""
        return RUNTIMES.get(self.format, "none")

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == WARNING)

    @property
    def loads(self) -> bool:
        """True when the runtime would load it (warnings allowed)."""
        return not self.errors


# ---- reading -------------------------------------------------------------------------


def read_module_yaml(data: str | bytes, path: str) -> ModuleYaml:
    """Read ``data`` as the runtime would; never raises for anything the file holds."""
    try:
        documents, yaml_warnings = load_documents(data, path, _READER_POLICY)
    except GenerationError as exc:
        return ModuleYaml(path, "", diagnostics=exc.diagnostics)
    reader = _Reader(path)
    reader.diagnostics.extend(yaml_warnings)
    present = [d for d in documents if d is not None]
    if not present:
        reader.error(
            Location(path, 1, 1), "module.yaml is empty: the runtime finds no module in it"
        )
        return reader.result("")
    if len(documents) == 1 and isinstance(present[0], YMapping):
        version = present[0].get("version")
        if isinstance(version, YScalar) and _jackson_type(version) == "string":
            return reader.legacy(present[0], version)
        if isinstance(version, YScalar):
            reader.error(
                version.location,
                f"version: {version.text} is not text to the runtime (YAML reads it as a "
                "number), so it reads the file as components, not a legacy module",
                hint=f'write version: "{version.text}"',
            )
            return reader.result("")
    for document in documents:
        if document is not None:
            reader.component(document)
    return reader.result("3.1")


def _jackson_type(scalar: YScalar) -> str:
    """What Jackson's YAML parser makes of a scalar: string, null, bool, int or float."""
    if scalar.quoted or scalar.alias is not None:
        return "string"
    text = scalar.text
    if _NULL.match(text):
        return "null"
    if _BOOL.match(text):
        return "bool"
    if _INT.match(text):
        return "string" if ":" in text else "int"  # Jackson leaves sexagesimal as text
    if _FLOAT.match(text):
        return "float"
    return "string"


def _jackson_int(text: str) -> int | None:
    """The value of an int token as Jackson decodes it (binary, octal, hex, underscores)."""
    cleaned = text.replace("_", "")
    sign = -1 if cleaned.startswith("-") else 1
    digits = cleaned.lstrip("+-")
    try:
        if digits.startswith("0b"):
            return sign * int(digits[2:], 2)
        if digits.startswith("0x"):
            return sign * int(digits[2:], 16)
        if len(digits) > 1 and digits.startswith("0"):
            return sign * int(digits, 8)
        return sign * int(digits)
    except ValueError:
        return None


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        self.endpoints: list[HttpEndpoint] = []
        self.functions: list[RemoteFunction] = []
        self.ingresses: list[Ingress] = []
        self.egresses: list[Egress] = []
        self.routers: list[Router] = []
        self.others: list[OtherComponent] = []
        self.strict_text = False  # legacy formats read strings with JSON pointers: text only
        self.ids: dict[tuple[str, str], Location] = {}

    def error(self, location: Location, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(location, message, ERROR, hint))

    def warning(self, location: Location, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(location, message, WARNING, hint))

    def error_count(self) -> int:
        return sum(d.severity == ERROR for d in self.diagnostics)

    def result(self, module_format: str) -> ModuleYaml:
        return ModuleYaml(
            path=self.path,
            format=module_format,
            endpoints=tuple(self.endpoints),
            functions=tuple(self.functions),
            ingresses=tuple(self.ingresses),
            egresses=tuple(self.egresses),
            routers=tuple(self.routers),
            others=tuple(self.others),
            diagnostics=tuple(sorted(set(self.diagnostics))),
        )

    def unique(self, space: str, key: str, location: Location, what: str) -> None:
        first = self.ids.get((space, key))
        if first is not None:
            self.error(
                location,
                f"{what} {key} is declared twice (first at line {first.line}); the runtime "
                "refuses a second one",
            )
        else:
            self.ids[(space, key)] = location

    # ---- the 3.1+ component format ----

    def component(self, document: YNode) -> None:
        obj = self.object(document, "a component document")
        if obj is None:
            return
        kind = obj.text("kind", required=True)
        spec_node = obj.node("spec")
        if spec_node is None:
            self.error(document.location, "a component needs 'spec' (and 'kind')")
        obj.done()
        if kind is None or spec_node is None:
            return
        self.bind(kind, spec_node, document.location, obj.location_of("kind"))

    def bind(
        self, kind: str, spec_node: YNode, location: Location, kind_location: Location
    ) -> None:
        if split_typename(kind) is None:
            self.error(kind_location, f"kind '{kind}' is not <namespace>/<name>")
            return
        binders: dict[str, Callable[[_Object, Location], None]] = {
            ENDPOINT_V1: lambda spec, where: self.endpoint(ENDPOINT_V1, spec, where),
            ENDPOINT_V2: lambda spec, where: self.endpoint(ENDPOINT_V2, spec, where),
            KAFKA_INGRESS: self.kafka_ingress,
            KAFKA_EGRESS: self.kafka_egress,
            KINESIS_INGRESS: self.kinesis_ingress,
            KINESIS_EGRESS: self.kinesis_egress,
        }
        binder = binders.get(kind)
        if binder is None:
            self.warning(
                kind_location,
                f"kind '{kind}' is not built into StateFun: the runtime loads it only with an "
                "extension module that binds it",
            )
            self.others.append(OtherComponent(kind, spec_node, location))
            return
        spec = self.object(spec_node, f"the spec of {kind}")
        if spec is not None:
            binder(spec, location)
            spec.done()

    # ---- endpoints ----

    def endpoint(self, kind: str, spec: _Object, location: Location) -> None:
        functions = spec.text("functions", required=True)
        template = spec.text("urlPathTemplate", required=True)
        max_batch = spec.integer("maxNumBatchRequests", 1000)
        if functions is not None:
            problem = function_target_problem(functions)
            if problem:
                self.error(spec.location_of("functions"), f"bad functions: {problem}")
                functions = None
        if kind == ENDPOINT_V1:
            transport = self.okhttp_timeouts(spec, location)
        else:
            transport = self.transport(spec)
        if functions is None or template is None:
            return
        namespace, name = split_typename(functions) or ("", "")
        targets = [name] if name != "*" else []
        for target in targets or ["x"]:
            url = template.replace("{function.name}", target)
            problem = endpoint_url_problem(url)
            if problem:
                self.error(
                    spec.location_of("urlPathTemplate"),
                    f"bad urlPathTemplate '{template}': {problem}",
                )
                break
        self.unique("function", functions, spec.location_of("functions"), "the endpoint of")
        self.endpoints.append(
            HttpEndpoint(
                kind=kind,
                functions=functions,
                namespace=namespace,
                name=None if name == "*" else name,
                url_path_template=template,
                max_num_batch_requests=max_batch if max_batch is not None else 1000,
                transport=transport,
                location=location,
            )
        )

    def okhttp_timeouts(self, spec: _Object, location: Location) -> Transport:
        timeouts = spec.obj("timeouts")
        found: dict[str, int] = {}
        if timeouts is not None:
            refused = self.error_count()
            for key in ("call", "connect", "read", "write"):
                millis = timeouts.duration(key, nonzero=True)
                if millis is not None:
                    found[key] = millis
            timeouts.done()
            problem = okhttp_timeouts_problem(found)
            if problem and self.error_count() == refused:  # a bad value stops the runtime first
                self.error(timeouts.location, problem)
        return Transport(OKHTTP_TRANSPORT, tuple(sorted(found.items())), (), location)

    def transport(self, spec: _Object) -> Transport:
        node = spec.obj("transport")
        where = spec.location_of("transport")
        if node is None:
            return Transport(ASYNC_TRANSPORT, (), (), where)
        kind = node.text("type") or ASYNC_TRANSPORT
        if kind == OKHTTP_TRANSPORT:
            transport = self.okhttp_timeouts(node, where)
            node.done()
            return transport
        if kind != ASYNC_TRANSPORT:
            self.warning(
                node.location_of("type"),
                f"transport '{kind}' is not built into StateFun: the runtime needs an extension "
                "that provides it",
            )
            node.ignore_rest()
            return Transport(kind, (), (), where)
        found: dict[str, int] = {}
        for key in ("call", "connect"):
            millis = node.duration(key)
            if millis is not None:
                found[key] = millis
        nested = node.obj("timeouts")
        if nested is not None:  # when present, its values (with 1min/10s defaults) win
            found = {"call": 60_000, "connect": 10_000}
            for key in ("call", "connect"):
                millis = nested.duration(key, nonzero=True)
                if millis is not None:
                    found[key] = millis
            nested.done()
        settings = []
        # kept (pool_ttl in milliseconds) so that comparing two modules sees them
        for key, number in (
            ("pool_ttl", node.duration("pool_ttl")),
            ("pool_size", node.integer("pool_size", None)),
            ("payload_max_bytes", node.integer("payload_max_bytes", None)),
        ):
            if number is not None:
                settings.append((key, str(number)))
        for key in ("trust_cacerts", "client_cert", "client_key", "client_key_password"):
            text = node.text(key)
            if text is not None:
                settings.append((key, text))
        node.done()
        return Transport(ASYNC_TRANSPORT, tuple(sorted(found.items())), tuple(settings), where)

    # ---- Kafka and Kinesis ----

    def routes(
        self, spec: _Object, list_key: str, source_key: str, value_key: str
    ) -> tuple[Route, ...]:
        items = spec.array(list_key, required=True)
        if items is None:
            return ()
        if not items:
            self.error(
                spec.location_of(list_key), f"Routing config for '{list_key}' cannot be empty"
            )
        routes: list[Route] = []
        seen: dict[str, Location] = {}
        for item in items:
            route = self.object(item, f"an entry of {list_key}")
            if route is None:
                continue
            source = route.text(source_key, required=True)
            value_type = route.text(value_key, required=True, exact=True)
            targets: list[str] = []
            for target in route.array("targets", required=True) or ():
                text = self.scalar_text(target, "a target")
                if text is None:
                    continue
                if split_typename(text) is None:
                    self.error(target.location, f"target '{text}' is not <namespace>/<name>")
                    continue
                targets.append(text)
            route.done()
            if source is None or value_type is None:
                continue
            if source in seen:
                self.warning(
                    route.location_of(source_key),
                    f"{source_key} '{source}' is routed twice; the runtime keeps only the last "
                    f"route (the first is at line {seen[source].line})",
                )
            seen[source] = route.location_of(source_key)
            routes.append(Route(source, value_type, tuple(targets), item.location))
        return tuple(routes)

    def properties(self, spec: _Object, key: str) -> tuple[tuple[str, str], ...]:
        items = spec.array(key)
        pairs: list[tuple[str, str]] = []
        for item in items or ():
            if not isinstance(item, YMapping) or len(item.entries) != 1:
                self.error(item.location, f"each entry of {key} must be a single-key mapping")
                continue
            entry = item.entries[0]
            value = self.scalar_text(entry.value, f"property '{entry.key}'")
            if value is not None:
                pairs.append((entry.key, value))
        return tuple(pairs)

    def startup(self, spec: _Object, allowed: tuple[str, ...]) -> list[tuple[str, str]]:
        node = spec.obj("startupPosition")
        if node is None:
            return []
        kind = node.text("type", required=True)
        settings: list[tuple[str, str]] = []
        if kind is not None:
            if kind not in allowed:
                self.error(
                    node.location_of("type"),
                    f"Invalid startup position type: {kind}; valid values are [{', '.join(allowed)}]",
                )
            settings.append(("startupPosition", kind))
            if kind == "date":
                date = node.text("date", required=True)
                if date is not None and startup_date_problem(date):
                    self.error(
                        node.location_of("date"),
                        f"startup date '{date}' does not match 'yyyy-MM-dd HH:mm:ss.SSS Z': "
                        f"{startup_date_problem(date)}",
                    )
                elif date is not None:
                    settings.append(("startupPosition.date", date))
            if kind == "specific-offsets":
                for offset in node.array("offsets", required=True) or ():
                    if not isinstance(offset, YMapping) or len(offset.entries) != 1:
                        self.error(
                            offset.location,
                            "each offset must be a single 'topic/partition: offset' entry",
                        )
                        continue
                    entry = offset.entries[0]
                    topic, _, partition = entry.key.rpartition("/")
                    if not topic or not partition.isdigit():
                        self.error(
                            entry.key_location, f"offset key '{entry.key}' is not topic/partition"
                        )
                        continue
                    # read with asLong() in every format: a YAML integer is what it expects
                    number = (
                        isinstance(entry.value, YScalar) and _jackson_type(entry.value) == "int"
                    )
                    value = (
                        entry.value.text
                        if number and isinstance(entry.value, YScalar)
                        else self.scalar_text(entry.value, f"the offset of {entry.key}")
                    )
                    if value is None or not re.fullmatch(r"[0-9]+", value):
                        self.error(
                            entry.value.location,
                            f"the offset of {entry.key} must be a whole number",
                        )
                        continue
                    # the runtime keeps them in a map: the last one given for a partition wins
                    settings.append((f"startupPosition.offsets.{topic}/{int(partition)}", value))
        node.done()
        return settings

    def kafka_ingress(
        self,
        spec: _Object,
        location: Location,
        kind: str = KAFKA_INGRESS,
        value_key: str = "valueType",
    ) -> None:
        ingress_id = self.identifier(spec, "id", "ingress")
        settings: list[tuple[str, str]] = []
        for key in ("address", "consumerGroupId"):
            text = spec.text(key)
            if text is not None:
                settings.append((key, text))
        reset = spec.text("autoOffsetResetPosition")
        if reset is not None:
            if reset.upper() not in ("EARLIEST", "LATEST"):
                self.error(
                    spec.location_of("autoOffsetResetPosition"),
                    f"Invalid autoOffsetResetPosition: {reset}; valid values are [EARLIEST, LATEST]",
                )
            settings.append(("autoOffsetResetPosition", reset.lower()))
        settings += self.startup(
            spec, ("group-offsets", "earliest", "latest", "specific-offsets", "date")
        )
        routes = self.routes(spec, "topics", "topic", value_key)
        properties = self.properties(spec, "properties")
        if ingress_id is not None:
            self.ingresses.append(
                Ingress(kind, ingress_id, routes, tuple(settings), properties, location)
            )

    def kafka_egress(self, spec: _Object, location: Location, kind: str = KAFKA_EGRESS) -> None:
        egress_id = self.identifier(spec, "id", "egress")
        settings: list[tuple[str, str]] = []
        address = spec.text("address")
        if address is not None:
            settings.append(("address", address))
        timeout: int | None = None
        semantic = spec.obj("deliverySemantic")
        if semantic is not None:
            delivery = semantic.text("type") or "at-least-once"
            if delivery not in ("at-least-once", "exactly-once", "none"):
                self.error(
                    semantic.location_of("type"),
                    f"delivery semantic '{delivery}' is not at-least-once, exactly-once or none",
                )
            settings.append(("deliverySemantic", delivery))
            legacy = semantic.integer("transactionTimeoutMillis", None, minimum=1)
            modern = semantic.duration("transactionTimeout", nonzero=True)
            timeout = legacy if legacy is not None else modern
            if delivery == "exactly-once" and timeout is None:
                self.error(
                    semantic.location,
                    "exactly-once delivery needs transactionTimeout (or transactionTimeoutMillis)",
                )
            if timeout is not None and timeout > JAVA_INT_MAX:
                self.error(
                    semantic.location,
                    "the transaction timeout does not fit Kafka's transaction.timeout.ms (an int)",
                )
            semantic.done()
        properties = self.properties(spec, "properties")
        if egress_id is not None:
            self.egresses.append(
                Egress(kind, egress_id, tuple(settings), timeout, properties, location)
            )

    def aws(self, spec: _Object, settings: list[tuple[str, str]]) -> None:
        region = spec.obj("awsRegion")
        if region is not None:
            kind = region.text("type", required=True)
            if kind is not None:
                if kind not in ("default", "specific", "custom-endpoint"):
                    self.error(
                        region.location_of("type"),
                        f"awsRegion type '{kind}' is not default, specific or custom-endpoint",
                    )
                settings.append(("awsRegion", kind))
                if kind in ("specific", "custom-endpoint"):
                    region_id = region.text("id", required=True)
                    if region_id is not None:
                        settings.append(("awsRegion.id", region_id))
                if kind == "custom-endpoint":
                    endpoint = region.text("endpoint", required=True)
                    if endpoint is not None:
                        settings.append(("awsRegion.endpoint", endpoint))
            region.done()
        credentials = spec.obj("awsCredentials")
        if credentials is not None:
            kind = credentials.text("type", required=True)
            if kind is not None:
                if kind not in ("default", "basic", "profile"):
                    self.error(
                        credentials.location_of("type"),
                        f"awsCredentials type '{kind}' is not default, basic or profile",
                    )
                settings.append(("awsCredentials", kind))
                keys: tuple[tuple[str, bool], ...] = ()
                if kind == "basic":
                    keys = (("accessKeyId", True), ("secretAccessKey", True))
                if kind == "profile":
                    keys = (("profileName", True), ("profilePath", False))
                for key, required in keys:
                    text = credentials.text(key, required=required)
                    if text is not None:
                        settings.append((f"awsCredentials.{key}", text))
            credentials.done()

    def kinesis_ingress(
        self,
        spec: _Object,
        location: Location,
        kind: str = KINESIS_INGRESS,
        value_key: str = "valueType",
    ) -> None:
        ingress_id = self.identifier(spec, "id", "ingress")
        settings: list[tuple[str, str]] = []
        self.aws(spec, settings)
        settings += self.startup(spec, ("earliest", "latest", "date"))
        routes = self.routes(spec, "streams", "stream", value_key)
        properties = self.properties(spec, "clientConfigProperties")
        if ingress_id is not None:
            self.ingresses.append(
                Ingress(kind, ingress_id, routes, tuple(settings), properties, location)
            )

    def kinesis_egress(self, spec: _Object, location: Location, kind: str = KINESIS_EGRESS) -> None:
        egress_id = self.identifier(spec, "id", "egress")
        settings: list[tuple[str, str]] = []
        self.aws(spec, settings)
        records = spec.integer("maxOutstandingRecords", None, minimum=1)
        if records is not None:
            settings.append(("maxOutstandingRecords", str(records)))
        properties = self.properties(spec, "clientConfigProperties")
        if egress_id is not None:
            self.egresses.append(
                Egress(kind, egress_id, tuple(settings), None, properties, location)
            )

    def identifier(self, spec: _Object, key: str, what: str) -> str | None:
        text = spec.text(key, required=True)
        if text is None:
            return None
        if split_typename(text) is None:
            self.error(spec.location_of(key), f"the {what} id '{text}' is not <namespace>/<name>")
            return None
        self.unique(what, text, spec.location_of(key), f"{what}")
        return text

    # ---- legacy single-document formats ----

    def legacy(self, root: YMapping, version_node: YScalar) -> ModuleYaml:
        version = version_node.text
        self.strict_text = True
        top = _Object(self, root, "the module")
        top.text("version")
        module = top.obj("module", required=True)
        top.done()
        if version not in ("1.0", "2.0", "3.0"):
            self.error(
                version_node.location,
                f"Unrecognized format version '{version}': the runtimes read 3.0 (StateFun 3.x) "
                "and 1.0 or 2.0 (StateFun 2.x)",
            )
            return self.result("")
        if module is None:
            return self.result(version)
        meta = module.obj("meta", required=True)
        if meta is not None:
            kind = meta.text("type", required=True)
            if kind is not None and kind.lower() != "remote":
                self.error(meta.location_of("type"), f"module type '{kind}' is not remote")
            meta.done()
        spec = module.obj("spec", required=True)
        module.done()
        if spec is None:
            return self.result(version)
        if version == "3.0":
            self.legacy_30(spec)
        else:
            self.legacy_2x(spec, version)
        spec.done()
        return self.result(version)

    def legacy_30(self, spec: _Object) -> None:
        for item in spec.array("endpoints") or ():
            entry = self.wrapped(item, "endpoint")
            if entry is None:
                continue
            meta, body = entry
            kind = meta.text("kind", required=True)
            meta.done()
            if kind is None:
                continue
            if kind != "http":
                self.error(meta.location_of("kind"), f"endpoint kind '{kind}' is not http")
                continue
            self.strict_text = False  # the spec is bound as a 3.1 component
            self.endpoint(ENDPOINT_V1, body, item.location)
            body.done()
            self.strict_text = True
        for list_key, entry_key in (("ingresses", "ingress"), ("egresses", "egress")):
            for item in spec.array(list_key) or ():
                entry = self.wrapped(item, entry_key)
                if entry is None:
                    continue
                meta, body = entry
                kind = meta.text("type", required=True)
                ident = meta.text("id", required=True)
                meta.done()
                if kind is None or ident is None:
                    continue
                modern = LEGACY_30_KINDS.get(kind, kind)
                spec_node = body.node_
                # the runtime copies meta.id into the spec as 'id'
                copied = _with_id(spec_node, ident, meta.location_of("id"))
                self.strict_text = False
                self.bind(modern, copied, item.location, meta.location_of("type"))
                self.strict_text = True

    def legacy_2x(self, spec: _Object, version: str) -> None:
        for item in spec.array("functions") or ():
            entry = self.wrapped(item, "function")
            if entry is None:
                continue
            meta, body = entry
            kind = meta.text("kind", required=True)
            typename = meta.text("type", required=True)
            meta.done()
            if kind is not None and kind not in ("http", "grpc"):
                self.error(meta.location_of("kind"), f"function kind '{kind}' is not http or grpc")
            if typename is not None and split_typename(typename) is None:
                self.error(
                    meta.location_of("type"),
                    f"function type '{typename}' is not <namespace>/<name>",
                )
                typename = None
            endpoint = ""
            if kind == "grpc":
                body.text("host", required=True)
                body.integer("port", None, minimum=1)
            else:
                endpoint = body.text("endpoint", required=True) or ""
                if endpoint:
                    problem = endpoint_url_problem(endpoint)
                    if problem:
                        self.error(
                            body.location_of("endpoint"), f"bad endpoint '{endpoint}': {problem}"
                        )
            states = self.states_2x(body, version)
            max_batch = body.integer("maxNumBatchRequests", 1000)
            timeouts: dict[str, int] = {}
            for key, name in (
                ("timeout", "call"),
                ("connectTimeout", "connect"),
                ("readTimeout", "read"),
                ("writeTimeout", "write"),
            ):
                millis = body.duration(key, nonzero=True)
                if millis is not None:
                    timeouts[name] = millis
            body.done()
            if typename is None:
                continue
            self.unique("function", typename, meta.location_of("type"), "function")
            self.functions.append(
                RemoteFunction(
                    kind=kind or "http",
                    typename=typename,
                    endpoint=endpoint,
                    states=states,
                    max_num_batch_requests=max_batch if max_batch is not None else 1000,
                    timeouts=tuple(sorted(timeouts.items())),
                    location=item.location,
                )
            )
        for item in spec.array("routers") or ():
            self.router_2x(item)
        for list_key, entry_key in (("ingresses", "ingress"), ("egresses", "egress")):
            for item in spec.array(list_key) or ():
                self.io_2x(item, entry_key)

    def states_2x(self, body: _Object, version: str) -> tuple[StateSpec, ...]:
        states: list[StateSpec] = []
        for item in body.array("states") or ():
            if version == "1.0":
                name = self.scalar_text(item, "a state name")
                if name is not None:
                    states.append(StateSpec(name, None, None, item.location))
                continue
            state = self.object(item, "a state")
            if state is None:
                continue
            name = state.text("name", required=True)
            expire = state.duration("expireAfter")
            mode = state.text("expireMode")
            if mode is not None and mode not in ("after-invoke", "after-write"):
                self.error(
                    state.location_of("expireMode"),
                    f"expireMode '{mode}' is not after-invoke or after-write",
                )
            state.done()
            if name is not None:
                states.append(
                    StateSpec(
                        name, expire, (mode or "after-invoke") if expire else None, item.location
                    )
                )
        return tuple(states)

    def router_2x(self, item: YNode) -> None:
        entry = self.wrapped(item, "router")
        if entry is None:
            return
        meta, body = entry
        kind = meta.text("type", required=True)
        if kind is not None and kind.lower() != PROTOBUF_ROUTER_20:
            self.error(
                meta.location_of("type"), f"router type '{kind}' is not {PROTOBUF_ROUTER_20}"
            )
        meta.done()
        values = [
            body.text(key, required=True)
            for key in ("ingress", "target", "descriptorSet", "messageType")
        ]
        body.done()
        if all(v is not None for v in values):
            ingress, target, descriptor_set, message_type = (v or "" for v in values)
            self.routers.append(
                Router(ingress, target, descriptor_set, message_type, item.location)
            )

    def io_2x(self, item: YNode, entry_key: str) -> None:
        entry = self.wrapped(item, entry_key)
        if entry is None:
            return
        meta, spec = entry
        kind = meta.text("type", required=True)
        ident = meta.text("id", required=True)
        meta.done()
        if kind is None or ident is None:
            return
        binders: dict[str, Callable[[_Object, Location], None]] = {
            KAFKA_ROUTABLE_20: lambda o, at: self.kafka_ingress(
                o, at, KAFKA_ROUTABLE_20, "typeUrl"
            ),
            KINESIS_ROUTABLE_20: lambda o, at: self.kinesis_ingress(
                o, at, KINESIS_ROUTABLE_20, "typeUrl"
            ),
            KAFKA_EGRESS_20: lambda o, at: self.kafka_egress(o, at, KAFKA_EGRESS_20),
            KINESIS_EGRESS_20: lambda o, at: self.kinesis_egress(o, at, KINESIS_EGRESS_20),
        }
        binder = binders.get(kind)
        if binder is not None or kind == KAFKA_PROTOBUF_20:
            # the 2.x parsers read meta.id as the id; bind the spec the 3.x way with it copied in
            with_id = _Object(self, _with_id(spec.node_, ident, meta.location_of("id")), spec.what)
            if binder is not None:
                binder(with_id, item.location)
                with_id.used.add("id")
                with_id.done()
            else:  # protobuf-ingress: its own deserializer, not routed: read only the id
                if self.identifier(with_id, "id", entry_key) is not None:
                    self.ingresses.append(Ingress(kind, ident, (), (), (), item.location))
            return
        self.warning(
            meta.location_of("type"), f"{entry_key} type '{kind}' is not built into StateFun 2.x"
        )
        spec.ignore_rest()

    def wrapped(self, item: YNode, key: str) -> tuple[_Object, _Object] | None:
        """A legacy list entry, ``- key: {meta: {...}, spec: {...}}``: its meta and its spec."""
        wrapper = self.object(item, f"an entry of {key}s")
        if wrapper is None:
            return None
        body = wrapper.obj(key, required=True)
        wrapper.done()
        if body is None:
            return None
        meta = body.obj("meta", required=True)
        spec = body.obj("spec", required=True)
        body.done()
        return (meta, spec) if meta is not None and spec is not None else None

    # ---- values ----

    def object(self, node: YNode, what: str) -> _Object | None:
        if isinstance(node, YMapping):
            return _Object(self, node, what)
        self.error(node.location, f"{what} must be a mapping")
        return None

    def scalar_text(self, node: YNode, what: str, exact: bool = False) -> str | None:
        """A string the way the runtime reads one here, with a warning where YAML 1.1 bites."""
        if not isinstance(node, YScalar):
            self.error(node.location, f"{what} must be a plain value, not a list or mapping")
            return None
        if node.alias is not None:
            self.warning(
                node.location,
                f"{what} is the alias *{node.alias}; the runtime's YAML parser (Jackson) reads an "
                f"alias as the text '{node.alias}', not as the value it refers to",
                "write the value out",
            )
            return node.text
        kind = _jackson_type(node)
        if kind == "null":
            self.error(node.location, f"{what} is null (empty) where the runtime needs a value")
            return None
        if kind == "string":
            if not node.quoted and ":" in node.text and _INT.match(node.text):
                self.warning(
                    node.location,
                    f"{what} '{node.text}' looks like a YAML 1.1 sexagesimal number; the runtime "
                    "keeps it as text, other YAML tools read it as a number",
                    "quote it",
                )
            return node.text
        if self.strict_text or exact:
            self.error(
                node.location,
                f"{what} '{node.text}' is read as a {kind} by the runtime's YAML parser, but a "
                "string is required here",
                f"quote it: '{node.text}'",
            )
            return None
        shown = node.text
        if kind == "bool":
            shown = "true" if node.text.lower() in ("yes", "on", "true") else "false"
        elif kind == "int":
            value = _jackson_int(node.text)
            shown = str(value) if value is not None else node.text
        if shown != node.text:
            self.warning(
                node.location,
                f"{what} '{node.text}' is read as the {kind} {shown} by the runtime's YAML 1.1 "
                f"parser, so the runtime uses the text '{shown}'",
                f"quote it ('{node.text}') if you mean the text",
            )
        return shown


# ---- what a module does ---------------------------------------------------------------

# the settings the runtime assumes when a spec leaves them out
_INGRESS_DEFAULTS = {
    "kafka": {"startupPosition": "latest", "autoOffsetResetPosition": "latest"},
    "kinesis": {
        "startupPosition": "latest",
        "awsRegion": "default",
        "awsCredentials": "default",
    },
}
_EGRESS_DEFAULTS = {
    "kafka": {"deliverySemantic": "at-least-once"},
    "kinesis": {
        "awsRegion": "default",
        "awsCredentials": "default",
        "maxOutstandingRecords": "1000",
    },
}
_OKHTTP_2X_DEFAULTS = OKHTTP_DEFAULTS  # 2.2's timeout / connectTimeout / readTimeout / writeTimeout


def _io_family(kind: str) -> str:
    return "kinesis" if "kinesis" in kind else "kafka"


def runtime_view(module: ModuleYaml) -> dict[str, object]:
    """What the runtime makes of ``module``, its defaults applied, as plain comparable data.

    Two module.yaml files with equal views deploy the same functions, endpoints, routes and
    I/O: the format version, comments, key order, the spelling of a duration, a v1 endpoint
    against a v2 one with the OkHttp transport, a setting left out against its default, a
    literal URL against a ``{function.name}`` template giving it, all make no difference.
    """
    endpoints: dict[str, object] = {}
    for endpoint in module.endpoints:
        transport = endpoint.transport
        url = endpoint.url_path_template
        if endpoint.name is not None:  # the runtime fills the template in for this function
            url = url.replace("{function.name}", endpoint.name)
        endpoints[endpoint.functions] = {
            "url": url,
            "maxNumBatchRequests": endpoint.max_num_batch_requests,
            "transport": transport.type,
            "timeouts": transport.effective_timeouts(),
            "properties": dict(transport.properties),
        }
    functions: dict[str, object] = {}
    for function in module.functions:
        functions[function.typename] = {
            "kind": function.kind,
            "endpoint": function.endpoint,
            "states": sorted(
                (s.name, s.expire_after_millis, s.expire_mode) for s in function.states
            ),
            "maxNumBatchRequests": function.max_num_batch_requests,
            "timeouts": {**_OKHTTP_2X_DEFAULTS, **dict(function.timeouts)},
        }
    ingresses: dict[str, object] = {}
    for ingress in module.ingresses:
        routes: dict[str, object] = {}
        for route in ingress.routes:  # one route per topic: the last one wins
            routes[route.source] = (route.value_type, route.targets)
        ingresses[ingress.id] = {
            "kind": ingress.kind,
            "routes": routes,
            "settings": {**_INGRESS_DEFAULTS[_io_family(ingress.kind)], **dict(ingress.settings)},
            "properties": dict(ingress.properties),
        }
    egresses: dict[str, object] = {}
    for egress in module.egresses:
        egresses[egress.id] = {
            "kind": egress.kind,
            "settings": {**_EGRESS_DEFAULTS[_io_family(egress.kind)], **dict(egress.settings)},
            "transactionTimeoutMillis": egress.transaction_timeout_millis,
            "properties": dict(egress.properties),
        }
    return {
        "endpoints": endpoints,
        "functions": functions,
        "ingresses": ingresses,
        "egresses": egresses,
        "routers": sorted(
            (r.ingress, r.target, r.descriptor_set, r.message_type) for r in module.routers
        ),
        "others": sorted(o.kind for o in module.others),
    }


def view_differences(first: dict[str, object], second: dict[str, object]) -> list[str]:
    """Where two runtime views differ, one line each (``section id: what``); [] when equal."""
    lines: list[str] = []
    for section, key, a, b in differing_parts(first, second):
        if key is None:
            lines.append(f"{section}: {a!r} != {b!r}")
        elif a is _ABSENT:
            lines.append(f"{section} {key}: only in the second")
        elif b is _ABSENT:
            lines.append(f"{section} {key}: only in the first")
        else:
            lines.append(f"{section} {key}: {a!r} != {b!r}")
    return sorted(lines)


_ABSENT = object()


def differing_parts(
    first: dict[str, object], second: dict[str, object]
) -> list[tuple[str, str | None, object, object]]:
    """``(section, id or None, first's value, second's value)`` of each difference, in order;
    ``absent(value)`` tells a component only one side has."""
    parts: list[tuple[str, str | None, object, object]] = []
    for section in sorted(first.keys() | second.keys()):
        a, b = first.get(section), second.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(a.keys() | b.keys()):
                left, right = a.get(key, _ABSENT), b.get(key, _ABSENT)
                if left is _ABSENT or right is _ABSENT or left != right:
                    parts.append((section, key, left, right))
        elif a != b:
            parts.append((section, None, a, b))
    return parts


def absent(value: object) -> bool:
    return value is _ABSENT


def _with_id(spec: YMapping, ident: str, location: Location) -> YMapping:
    """The spec with ``id: ident`` (what the legacy loaders copy from meta.id)."""
    entries = (*(e for e in spec.entries if e.key != "id"), _entry("id", ident, location))
    return YMapping(entries, spec.location)


def _entry(key: str, value: str, location: Location) -> YEntry:
    return YEntry(key, location, YScalar(value, location, quoted=True), True)


class _Object:
    """A mapping read like a Jackson bean: known keys taken, the rest reported as ignored."""

    def __init__(self, reader: _Reader, node: YMapping, what: str) -> None:
        self.reader = reader
        self.node_ = node
        self.what = what
        self.location = node.location
        self.used: set[str] = set()
        self.ignored = False

    def location_of(self, key: str) -> Location:
        entry = self.node_.entry(key)
        if entry is None:
            return self.location
        return entry.value.location

    def node(self, key: str) -> YNode | None:
        self.used.add(key)
        value = self.node_.get(key)
        if isinstance(value, YScalar) and value.is_null:
            return None
        return value

    def text(self, key: str, required: bool = False, exact: bool = False) -> str | None:
        node = self.node(key)
        if node is None:
            if required:
                self.reader.error(self.location, f"{self.what} needs '{key}'")
            return None
        return self.reader.scalar_text(node, f"'{key}'", exact)

    def integer(self, key: str, default: int | None, minimum: int = 1) -> int | None:
        node = self.node(key)
        if node is None:
            return default
        if isinstance(node, YScalar) and node.alias is None:
            kind = _jackson_type(node)
            value = _jackson_int(node.text) if kind == "int" else None
            if kind == "string" and re.fullmatch(r"[-+]?[0-9]+", node.text):
                value = int(node.text)  # Jackson coerces a numeric string
            if value is not None:
                if value < minimum or value > JAVA_INT_MAX:
                    self.reader.error(
                        node.location, f"'{key}' must be between {minimum} and {JAVA_INT_MAX}"
                    )
                    return default
                if kind == "int" and not re.fullmatch(r"[-+]?(?:0|[1-9][0-9]*)", node.text):
                    self.reader.warning(
                        node.location,
                        f"'{key}' {node.text} is read as {value} (a YAML 1.1 octal, hex or "
                        "grouped number)",
                        f"write {value}",
                    )
                return value
        self.reader.error(node.location, f"'{key}' must be a whole number")
        return default

    def duration(self, key: str, nonzero: bool = False) -> int | None:
        """Milliseconds, as ``TimeUtils.parseDuration`` reads the token's text."""
        node = self.node(key)
        if node is None:
            return None
        if not isinstance(node, YScalar):
            self.reader.error(node.location, f"'{key}' must be a duration such as 30s")
            return None
        nanos, reason = flink_duration_nanos(node.text)
        if nanos is None:
            self.reader.error(
                node.location, f"'{key}' '{node.text}' is not a duration Flink reads: {reason}"
            )
            return None
        if nanos == 0 and nonzero:
            self.reader.error(node.location, f"'{key}': Timeout durations must be larger than 0")
            return None
        if nanos // 1_000_000 > JAVA_LONG_MAX:
            self.reader.error(node.location, f"'{key}' is too long for the runtime")
            return None
        return nanos // 1_000_000

    def obj(self, key: str, required: bool = False) -> _Object | None:
        node = self.node(key)
        if node is None:
            if required:
                self.reader.error(self.location, f"{self.what} needs '{key}'")
            return None
        return self.reader.object(node, f"'{key}'")

    def array(self, key: str, required: bool = False) -> tuple[YNode, ...] | None:
        node = self.node(key)
        if node is None:
            if required:
                self.reader.error(self.location, f"{self.what} needs '{key}'")
            return None
        if isinstance(node, YSequence):
            return node.items
        self.reader.error(node.location, f"'{key}' must be a list")
        return None

    def ignore_rest(self) -> None:
        self.ignored = True

    def done(self) -> None:
        """Keys nobody read: the runtime ignores them silently; we say so."""
        if self.ignored:
            return
        for entry in self.node_.entries:
            if entry.key not in self.used:
                self.reader.warning(
                    entry.key_location,
                    f"the runtime ignores the key '{entry.key}' in {self.what} (unknown keys "
                    "are skipped, so a typo here changes nothing)",
                )


__all__ = [
    "Egress",
    "HttpEndpoint",
    "Ingress",
    "ModuleYaml",
    "OtherComponent",
    "RemoteFunction",
    "Route",
    "Router",
    "StateSpec",
    "Transport",
    "endpoint_url_problem",
    "function_target_problem",
    "okhttp_timeouts_problem",
    "read_module_yaml",
    "runtime_view",
    "split_typename",
    "startup_date_problem",
    "view_differences",
]
