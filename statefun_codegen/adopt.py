"""``statefun-codegen --adopt``: the manifest of an existing module.yaml.

read (``module_rules.read_module_yaml``, the runtime's own rules and defaults) ->
describe (this module: plain data in the manifest's shape) -> emit (``yaml_emit``)
-> verify (generate from the description and compare the runtime's view of both
module.yaml files).

module.yaml says where functions are served, what the ingresses route to them and
how the I/O is configured; it does not say what state a function keeps (3.x), whom
it messages, what it writes to an egress, or what a function that no ingress feeds
accepts. Those are left as ``TODO`` with a comment; everything module.yaml says is
either in the manifest or a located warning naming what the manifest cannot say.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from dataclasses import dataclass, field

from .diagnostics import ERROR, WARNING, Diagnostic, GenerationError, Location
from .durations import format_duration
from .generate import Options, generate
from .model import BUILTIN_TYPES
from .module_rules import (
    ASYNC_TRANSPORT,
    ENDPOINT_V1,
    KAFKA_PROTOBUF_20,
    OKHTTP_TRANSPORT,
    Egress,
    Ingress,
    ModuleYaml,
    absent,
    differing_parts,
    read_module_yaml,
    runtime_view,
    split_typename,
)
from .protoc_runner import ProtoInput
from .schema import Schema
from .yaml_emit import Commented, Value, dump

PROTOBUF_PREFIX = "type.googleapis.com/"
DEFAULT_MAX_BATCH = 1000
FUNCTION_NAME = "{function.name}"


class Unknown(str):
    """A fact module.yaml does not hold: written as TODO for the user to fill in; the
    verification puts ``stand_in`` there (module.yaml never depends on it)."""

    stand_in: str

    def __new__(cls, stand_in: str) -> Unknown:
        made = super().__new__(cls, "TODO")
        made.stand_in = stand_in
        return made


TODO = Unknown("string")  # a type
TODO_URL = Unknown("http://localhost:8000/statefun")


@dataclass(frozen=True, eq=False)
class Adoption:
    text: str  # the manifest
    module_format: str  # the --module-format that regenerates the original's format
    diagnostics: tuple[Diagnostic, ...]  # located in module.yaml (or in the manifest)
    todos: int  # facts left for the user


def adopt_module_yaml(
    data: bytes | str, path: str, proto_input: ProtoInput, manifest_path: str
) -> Adoption:
    """Describe the module.yaml ``data`` as a manifest; GenerationError if the runtime would
    refuse it. ``manifest_path`` is where the manifest will live (for the verification)."""
    module = read_module_yaml(data, path)
    if module.errors:
        raise GenerationError(list(module.diagnostics))
    describer = _Describer(module, Schema(proto_input))
    document = describer.describe()
    module_format = "2.0" if module.format in ("1.0", "2.0") else module.format
    diagnostics = [*module.warnings, *describer.warnings]
    header = _header(module, module_format)
    diagnostics += _verify(
        module, document, header, proto_input, manifest_path, module_format, describer.warned
    )
    text = dump(document, header)
    return Adoption(text, module_format, tuple(diagnostics), describer.todos)


def _header(module: ModuleYaml, module_format: str) -> str:
    name = posixpath.basename(module.path.replace("\\", "/")) or "module.yaml"
    lines = [f"Adopted by statefun-codegen --adopt from {name} ({module.runtimes} format)."]
    if module_format != "3.1":
        lines.append(f"It regenerates that format with --module-format {module_format}.")
    return "\n".join(lines)


# ---- describe --------------------------------------------------------------------------


@dataclass(eq=False)
class _Served:
    """Where one function (or every function of a namespace) is served, as module.yaml says."""

    functions: str  # ns/name or ns/*
    namespace: str
    name: str | None
    url: str
    max_batch: int
    transport: str  # async | okhttp | a custom transport's typename
    timeouts: tuple[tuple[str, int], ...]
    properties: tuple[tuple[str, str], ...]
    location: Location


@dataclass(eq=False)
class _Describer:
    module: ModuleYaml
    schema: Schema
    warnings: list[Diagnostic] = field(default_factory=list)
    warned: set[tuple[str, str]] = field(default_factory=set)  # (view section, id)
    todos: int = 0
    namespace: str = ""
    json_types: dict[str, str] = field(default_factory=dict)  # typename -> manifest name

    def warn(self, location: Location, message: str, part: tuple[str, str] | None = None) -> None:
        self.warnings.append(Diagnostic(location, message, WARNING))
        if part is not None:
            self.warned.add(part)

    def todo(self, unknown: Unknown = TODO) -> Unknown:
        self.todos += 1
        return unknown

    def key(self, typename: str) -> str:
        namespace, _, name = typename.partition("/")
        return name if namespace == self.namespace else typename

    def describe(self) -> dict[str, Value]:
        served = self.served()
        routes = [(i, r) for i in self.module.ingresses for r in i.routes]
        functions: list[str] = []  # typenames, first mention first
        named = [s.functions for s in served if s.name is not None]
        if self.module.functions:  # 2.x, gRPC functions (served by no URL) included
            named = [f.typename for f in self.module.functions]
        for typename in named:
            if typename not in functions:
                functions.append(typename)
        for _, route in routes:
            for target in route.targets:
                if not target.endswith("/*") and target not in functions:
                    functions.append(target)
        self.namespace = self.choose_namespace(served, functions)
        document: dict[str, Value] = {"namespace": self.namespace}
        document["endpoint"] = self.endpoint(served, functions)
        inputs: dict[str, list[str]] = {typename: [] for typename in functions}
        ingresses = {}
        for ingress in self.module.ingresses:
            described = self.ingress(ingress, inputs)
            if described is not None:
                ingresses[self.key(ingress.id)] = described
        types = {name: {"json": typename} for typename, name in sorted(self.json_types.items())}
        if types:
            document["types"] = Commented(
                types,
                "module.yaml names these types by typename only: no message of the .proto "
                "files given has it, so they are JSON types here (see the warnings)",
            )
        unsaid = "whom a function messages ('sends') or which egresses it writes to ('egress')"
        if not self.module.functions:
            unsaid = f"what state a function keeps, {unsaid}"
        document["functions"] = Commented(
            self.functions(functions, inputs), f"module.yaml does not say {unsaid}: add them"
        )
        if ingresses:
            document["ingresses"] = ingresses
        egresses = {self.key(e.id): self.egress(e) for e in self.module.egresses}
        if egresses:
            document["egresses"] = Commented(
                egresses,
                "module.yaml does not say which topic or value type an egress writes: add "
                "'topic' and 'type' (or 'topics') for typed helpers",
            )
        for router in self.module.routers:
            self.warn(
                router.location,
                f"a 2.x protobuf router (ingress {router.ingress} to {router.target}) cannot be "
                "said in a manifest, which routes by topic: regenerating leaves it out",
                ("routers", ""),
            )
        for other in self.module.others:
            self.warn(
                other.location,
                f"component kind '{other.kind}' cannot be said in a manifest: regenerating "
                "leaves it out (keep it in a module.yaml of your own)",
                ("others", ""),
            )
        return document

    # ---- where functions are served ----

    def served(self) -> list[_Served]:
        found: list[_Served] = []
        for endpoint in self.module.endpoints:
            transport = endpoint.transport
            if endpoint.kind == ENDPOINT_V1 or transport.type == OKHTTP_TRANSPORT:
                kind = "okhttp"
            elif transport.type == ASYNC_TRANSPORT:
                kind = "async"
            else:
                kind = transport.type
            found.append(
                _Served(
                    endpoint.functions,
                    endpoint.namespace,
                    endpoint.name,
                    endpoint.url_path_template,
                    endpoint.max_num_batch_requests,
                    kind,
                    transport.timeouts,
                    transport.properties,
                    endpoint.location,
                )
            )
        for function in self.module.functions:
            namespace, name = split_typename(function.typename) or ("", function.typename)
            if function.kind != "http":
                self.warn(
                    function.location,
                    f"function {function.typename} is a 2.x {function.kind} function; the "
                    "manifest's functions are served over HTTP, so it is adopted as one",
                    ("functions", function.typename),
                )
                continue
            found.append(
                _Served(
                    function.typename,
                    namespace,
                    name,
                    function.endpoint,
                    function.max_num_batch_requests,
                    "okhttp",
                    function.timeouts,
                    (),
                    function.location,
                )
            )
        return found

    def choose_namespace(self, served: list[_Served], functions: list[str]) -> str:
        counts: Counter[str] = Counter()
        order: list[str] = []
        mentioned = [s.namespace for s in served if s.name is None]
        mentioned += [t.partition("/")[0] for t in functions]
        mentioned += [i.id.partition("/")[0] for i in self.module.ingresses]
        mentioned += [e.id.partition("/")[0] for e in self.module.egresses]
        for namespace in mentioned:
            counts[namespace] += 1
            if namespace not in order:
                order.append(namespace)
        if not order:
            return str(self.todo())
        return max(order, key=lambda ns: (counts[ns], -order.index(ns)))

    def endpoint(self, served: list[_Served], functions: list[str]) -> dict[str, Value]:
        if not served:
            location = Location(self.module.path, 1, 1)
            self.warn(location, "module.yaml serves no function: the endpoint url is left to you")
            return {"url": self.todo(TODO_URL)}
        url = self.common_url(served)
        first = served[0]
        for item in served:
            what = f"the endpoint of {item.functions}"
            part = ("functions" if self.module.functions else "endpoints", item.functions)
            if not _url_fits(url, item):
                self.warn(
                    item.location,
                    f"{what} is {item.url}; the manifest has one endpoint URL for every function "
                    f"({url}, a {FUNCTION_NAME} template where the URLs differ by name): "
                    "regenerating serves it there",
                    part,
                )
            for label, mine, theirs in (
                ("maxNumBatchRequests", item.max_batch, first.max_batch),
                ("transport", item.transport, first.transport),
                ("timeouts", dict(item.timeouts), dict(first.timeouts)),
            ):
                if mine != theirs:
                    self.warn(
                        item.location,
                        f"{what} has {label} {_shown(mine)} where the first endpoint (line "
                        f"{first.location.line}) has {_shown(theirs)}; the manifest has one "
                        "endpoint, so regenerating gives it the first one's",
                        part,
                    )
            if item.properties:
                names = ", ".join(key for key, _ in item.properties)
                self.warn(
                    item.location,
                    f"{what} sets transport options the manifest cannot say ({names}): "
                    "regenerating leaves them out",
                    part,
                )
            if item.transport not in ("async", "okhttp"):
                self.warn(
                    item.location,
                    f"{what} uses the transport '{item.transport}' of an extension; the manifest "
                    "knows async and okhttp: regenerating uses async",
                    part,
                )
        endpoint: dict[str, Value] = {"url": url}
        wildcards = []
        for item in served:
            if item.name is None:
                pattern = "*" if item.namespace == self.namespace else item.functions
                if pattern not in wildcards:
                    wildcards.append(pattern)
        if wildcards:
            endpoint["functions"] = wildcards[0] if len(wildcards) == 1 else wildcards
            covered = {w.partition("/")[0] if w != "*" else self.namespace for w in wildcards}
            if not any(t.partition("/")[0] in covered for t in functions):
                item = next(s for s in served if s.name is None)
                self.warn(
                    item.location,
                    f"{item.functions} serves functions module.yaml does not name: the manifest "
                    "lists each function, so name them under 'functions'",
                )
        if first.max_batch != DEFAULT_MAX_BATCH:
            endpoint["max_batch_requests"] = first.max_batch
        if first.transport == "okhttp":
            endpoint["transport"] = "okhttp"
        if first.timeouts:
            endpoint["timeouts"] = {key: format_duration(ms) for key, ms in first.timeouts}
        return endpoint

    def common_url(self, served: list[_Served]) -> str:
        """The URL (or ``{function.name}`` template) that gives the most endpoints theirs."""
        candidates: list[str] = []
        for item in served:
            candidates.append(item.url)
            if item.name and item.name in item.url and FUNCTION_NAME not in item.url:
                candidates.append(item.url.replace(item.name, FUNCTION_NAME))
                head, _, tail = item.url.rpartition(item.name)
                candidates.append(f"{head}{FUNCTION_NAME}{tail}")
        return max(candidates, key=lambda c: sum(_url_fits(c, s) for s in served))

    # ---- functions ----

    def functions(self, functions: list[str], inputs: dict[str, list[str]]) -> dict[str, Value]:
        states = {f.typename: f.states for f in self.module.functions}
        described: dict[str, Value] = {}
        for typename in functions:
            entry: dict[str, Value] = {}
            accepted = inputs.get(typename) or []
            if accepted:
                entry["input"] = accepted[0] if len(accepted) == 1 else accepted
            else:
                entry["input"] = Commented(
                    self.todo(),
                    "no ingress routes to this function, so module.yaml does not say what it "
                    "accepts: name its input type(s)",
                )
            state: dict[str, Value] = {}
            for spec in states.get(typename, ()):
                if spec.expire_after_millis is None:
                    state[spec.name] = self.todo()
                    continue
                mode = "call" if spec.expire_mode == "after-invoke" else "write"
                state[spec.name] = {
                    "type": self.todo(),
                    f"expire_after_{mode}": format_duration(spec.expire_after_millis),
                }
            if state:
                entry["state"] = Commented(
                    state, "the 2.x module.yaml names the states, not their types: give each one"
                )
            described[self.key(typename)] = entry
        return described

    # ---- types ----

    def type_ref(self, typename: str, location: Location) -> str:
        """The manifest's name for the type of a route (a message, a built-in or JSON)."""
        for name, (_, builtin_typename, _) in BUILTIN_TYPES.items():
            if builtin_typename == typename:
                return name
        if typename.startswith(PROTOBUF_PREFIX):
            full_name = typename[len(PROTOBUF_PREFIX) :]
            info = self.schema.messages.get(full_name)
            if info is not None and not info.is_map_entry:
                same_short = [
                    m
                    for m in self.schema.messages.values()
                    if m.qualname == info.qualname and not m.is_map_entry
                ]
                clash = info.qualname in BUILTIN_TYPES or len(same_short) > 1
                return info.full_name if clash else info.qualname
        return self.json_type(typename, location)

    def json_type(self, typename: str, location: Location) -> str:
        if typename in self.json_types:
            return self.json_types[typename]
        last = typename.rpartition("/")[2]
        if typename.startswith(PROTOBUF_PREFIX):
            last = last.rpartition(".")[2]
        words = "".join(c if c.isascii() and c.isalnum() else " " for c in last).split()
        base = "".join(w[:1].upper() + w[1:] for w in words) or "Json"
        if not base[0].isalpha():
            base = f"Json{base}"
        taken = {*BUILTIN_TYPES, *self.json_types.values()}
        taken |= {m.qualname for m in self.schema.messages.values()}
        name, number = base, 2
        while name in taken:
            name, number = f"{base}{number}", number + 1
        self.json_types[typename] = name
        if typename.startswith(PROTOBUF_PREFIX):
            message = typename[len(PROTOBUF_PREFIX) :]
            self.warn(
                location,
                f"message '{message}' is not in the .proto files given (-I): adopted as the JSON "
                f"type '{name}' with the same typename; pass the .proto that defines it to type "
                "it as that message",
            )
        else:
            self.warn(
                location,
                f"typename '{typename}' is not a message's (type.googleapis.com/<message>) or a "
                f"built-in's: adopted as the JSON type '{name}'; if it is a message under "
                "another typename, declare it under 'types' with 'typename:'",
            )
        return name

    # ---- ingresses and egresses ----

    def ingress(self, ingress: Ingress, inputs: dict[str, list[str]]) -> dict[str, Value] | None:
        part = ("ingresses", ingress.id)
        if ingress.kind == KAFKA_PROTOBUF_20:
            self.warn(
                ingress.location,
                f"ingress {ingress.id} is a 2.x protobuf-ingress, routed by a router; the "
                "manifest routes each topic to functions: regenerating leaves it out",
                part,
            )
            return None
        family = "kinesis" if "kinesis" in ingress.kind else "kafka"
        settings = dict(ingress.settings)
        spec: dict[str, Value] = {"kind": family}
        if family == "kafka":
            _copy(settings, spec, ("address", "address"), ("consumerGroupId", "consumer_group"))
        else:
            _aws(settings, spec)
        startup = _startup(settings)
        if startup is not None:
            spec["startup_position"] = startup
        if family == "kafka" and "autoOffsetResetPosition" in settings:
            spec["auto_offset_reset"] = settings["autoOffsetResetPosition"]
        source_key = "topic" if family == "kafka" else "stream"
        routes: dict[str, dict[str, Value]] = {}
        routed: dict[str, tuple[str, list[str]]] = {}
        for route in ingress.routes:  # the runtime keeps the last route of a topic
            targets = [t for t in route.targets if not t.endswith("/*")]
            if len(targets) != len(route.targets):
                self.warn(
                    route.location,
                    f"{source_key} '{route.source}' routes to every function of a namespace "
                    "(ns/*); the manifest routes to named functions: regenerating leaves that "
                    "target out",
                    part,
                )
            if not targets:
                self.warn(
                    route.location,
                    f"{source_key} '{route.source}' of ingress {ingress.id} routes to no "
                    "function; the manifest needs a target: regenerating leaves it out",
                    part,
                )
                routes.pop(route.source, None)
                routed.pop(route.source, None)
                continue
            type_ref = self.type_ref(route.value_type, route.location)
            routes[route.source] = {
                source_key: route.source,
                "type": type_ref,
                "targets": [self.key(t) for t in targets],
            }
            routed[route.source] = (type_ref, targets)
        for type_ref, targets in routed.values():
            for target in targets:
                accepted = inputs.setdefault(target, [])
                if type_ref not in accepted:
                    accepted.append(type_ref)
        spec["topics" if family == "kafka" else "streams"] = list(routes.values())
        if ingress.properties:
            spec["properties"] = dict(ingress.properties)
        return spec

    def egress(self, egress: Egress) -> dict[str, Value]:
        family = "kinesis" if "kinesis" in egress.kind else "kafka"
        settings = dict(egress.settings)
        spec: dict[str, Value] = {"kind": family}
        if family == "kafka":
            _copy(settings, spec, ("address", "address"), ("deliverySemantic", "delivery"))
            timeout = egress.transaction_timeout_millis
            if timeout is not None and settings.get("deliverySemantic") == "exactly-once":
                spec["transaction_timeout"] = format_duration(timeout)
            elif timeout is not None:
                self.warn(
                    egress.location,
                    f"egress {egress.id} gives a transaction timeout with "
                    f"{settings.get('deliverySemantic')} delivery; the manifest takes one only "
                    "for exactly-once, which alone has transactions: regenerating leaves it out",
                    ("egresses", egress.id),
                )
        else:
            _aws(settings, spec)
            if "maxOutstandingRecords" in settings:
                spec["max_outstanding_records"] = int(settings["maxOutstandingRecords"])
        if egress.properties:
            spec["properties"] = dict(egress.properties)
        return spec


def _url_fits(url: str, item: _Served) -> bool:
    if item.name is None:
        return url == item.url
    return url.replace(FUNCTION_NAME, item.name) == item.url.replace(FUNCTION_NAME, item.name)


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_duration(v)}" for k, v in value.items()) + "}"
    return str(value)


def _copy(settings: dict[str, str], spec: dict[str, Value], *pairs: tuple[str, str]) -> None:
    for source, target in pairs:
        if source in settings:
            spec[target] = settings[source]


def _startup(settings: dict[str, str]) -> Value | None:
    kind = settings.get("startupPosition")
    if kind is None:
        return None
    if kind == "date":
        return {"date": settings["startupPosition.date"]}
    if kind == "specific-offsets":
        prefix = "startupPosition.offsets."
        offsets: dict[str, Value] = {
            key[len(prefix) :]: int(value)
            for key, value in settings.items()
            if key.startswith(prefix)
        }
        return {"offsets": offsets}
    return kind


def _aws(settings: dict[str, str], spec: dict[str, Value]) -> None:
    region = settings.get("awsRegion")
    if region == "default":
        spec["aws_region"] = "default"
    elif region == "specific":
        spec["aws_region"] = settings["awsRegion.id"]
    elif region == "custom-endpoint":
        spec["aws_region"] = {
            "id": settings["awsRegion.id"],
            "endpoint": settings["awsRegion.endpoint"],
        }
    credentials = settings.get("awsCredentials")
    if credentials == "default":
        spec["aws_credentials"] = "default"
    elif credentials in ("basic", "profile"):
        keys = {
            "basic": (("accessKeyId", "access_key_id"), ("secretAccessKey", "secret_access_key")),
            "profile": (("profileName", "profile_name"), ("profilePath", "profile_path")),
        }[credentials]
        described: dict[str, Value] = {"type": credentials}
        for source, target in keys:
            if f"awsCredentials.{source}" in settings:
                described[target] = settings[f"awsCredentials.{source}"]
        spec["aws_credentials"] = described


# ---- verify ------------------------------------------------------------------------------


def _filled(value: Value) -> Value:
    """The document with each TODO given a stand-in (module.yaml never depends on them)."""
    if isinstance(value, Unknown):
        return value.stand_in
    if isinstance(value, Commented):
        return Commented(_filled(value.value), value.comment)
    if isinstance(value, dict):
        return {key: _filled(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_filled(item) for item in value]
    return value


def _verify(
    module: ModuleYaml,
    document: dict[str, Value],
    header: str,
    proto_input: ProtoInput,
    manifest_path: str,
    module_format: str,
    warned: set[tuple[str, str]],
) -> list[Diagnostic]:
    """Regenerate from the description; where the runtime would see a difference no warning
    explains yet, say so at the original component."""
    filled = _filled(document)
    assert isinstance(filled, dict)
    options = Options(module_format=module_format, stubs=False)
    try:
        # the same lines as the manifest written, so that its locations hold there
        generated = generate(proto_input, dump(filled, header), manifest_path, options)
    except GenerationError as exc:
        return [
            Diagnostic(
                d.location,
                f"regenerating from the adopted manifest fails here: {d.message}",
                WARNING,
                d.hint,
            )
            for d in exc.diagnostics
            if d.severity == ERROR
        ]
    text = next(f.content for f in generated.files if f.path == options.module_yaml)
    regenerated = read_module_yaml(text, options.module_yaml)
    warned_sections = {section for section, key in warned if not key}
    locations: dict[tuple[str, str], Location] = {}
    for endpoint in module.endpoints:
        locations[("endpoints", endpoint.functions)] = endpoint.location
    for function in module.functions:
        locations[("functions", function.typename)] = function.location
    for ingress in module.ingresses:
        locations[("ingresses", ingress.id)] = ingress.location
    for egress in module.egresses:
        locations[("egresses", egress.id)] = egress.location
    found: list[Diagnostic] = []
    for section, key, before, after in differing_parts(
        runtime_view(module), runtime_view(regenerated)
    ):
        if section in warned_sections or (section, key or "") in warned:
            continue
        where = locations.get((section, key or ""), Location(module.path, 1, 1))
        if absent(after):
            change = "leaves it out"
        elif absent(before):
            change = "adds it"
        else:
            change = f"changes it from {before!r} to {after!r}"
        found.append(
            Diagnostic(
                where,
                f"regenerating from the adopted manifest {change} ({section} {key or ''})".replace(
                    " )", ")"
                ),
                WARNING,
            )
        )
    return found
