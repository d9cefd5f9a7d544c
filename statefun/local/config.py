"""module.yaml (3.1+ component documents and legacy ``version: "3.0"``) → plain dataclasses.

Flink silently ignores unknown keys; here they are reported as warnings, and everything the
runtime can not serve is a ConfigError naming the file, document and key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence
from urllib.parse import urlsplit, urlunsplit

from statefun.local.errors import ConfigError
from statefun.local.yamldoc import Section, YamlDocument, load_documents

ENDPOINT_V1 = "io.statefun.endpoints.v1/http"
ENDPOINT_V2 = "io.statefun.endpoints.v2/http"
KAFKA_INGRESS = "io.statefun.kafka.v1/ingress"
KAFKA_EGRESS = "io.statefun.kafka.v1/egress"
KINESIS_INGRESS = "io.statefun.kinesis.v1/ingress"
KINESIS_EGRESS = "io.statefun.kinesis.v1/egress"
# The kinds of the apache/flink-statefun-playground image (its current examples use them).
PLAYGROUND_INGRESS = "io.statefun.playground.v1/ingress"
PLAYGROUND_EGRESS = "io.statefun.playground.v1/egress"
KNOWN_KINDS = (
    ENDPOINT_V1,
    ENDPOINT_V2,
    KAFKA_INGRESS,
    KAFKA_EGRESS,
    KINESIS_INGRESS,
    KINESIS_EGRESS,
    PLAYGROUND_INGRESS,
    PLAYGROUND_EGRESS,
)
# The playground's fixed identifiers (its Constants.java): functions send to this egress, with
# values of this type.
PLAYGROUND_INGRESS_ID = "io.statefun.playground/ingress"
PLAYGROUND_EGRESS_ID = "io.statefun.playground/egress"
PLAYGROUND_EGRESS_RECORD = "io.statefun.playground/EgressRecord"

TRANSPORT_OKHTTP = "io.statefun.transports.v1/okhttp"
TRANSPORT_ASYNC = "io.statefun.transports.v1/async"

# Legacy 3.0 names, converted the way LegacyRemoteModuleV30 does.
_LEGACY_KINDS = {
    "http": ENDPOINT_V1,
    "io.statefun.kafka/ingress": KAFKA_INGRESS,
    "io.statefun.kafka/egress": KAFKA_EGRESS,
    "io.statefun.kinesis/ingress": KINESIS_INGRESS,
    "io.statefun.kinesis/egress": KINESIS_EGRESS,
}


@dataclass(frozen=True)
class FunctionEndpoint:
    functions: str  # "ns/name", or "ns/*" for every function of a namespace
    url_path_template: str
    max_batch: int
    call_timeout_s: float
    connect_timeout_s: float
    where: str  # "module.yaml:3: document 1", for messages about this endpoint
    transport: str = TRANSPORT_ASYNC  # whose retry rules apply (v1 endpoints use OkHttp)
    overridden_by: str = ""  # the --endpoint option that set the URL, if one did
    # OkHttp gives up on an attempt whose reply does not come within its read timeout (and
    # retries); the async transport waits for the rest of the call timeout.
    read_timeout_s: float | None = None

    def serves(self, function_type: str) -> bool:
        namespace, _, name = self.functions.partition("/")
        if name == "*":
            return function_type.partition("/")[0] == namespace
        return function_type == self.functions

    def url_for(self, function_type: str) -> str:
        return self.url_path_template.replace("{function.name}", function_type.partition("/")[2])


@dataclass(frozen=True)
class IngressRoute:
    topic: str  # Kafka topic or Kinesis stream
    value_type: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class IngressSpec:
    id: str
    kind: str  # KAFKA_INGRESS, KINESIS_INGRESS or PLAYGROUND_INGRESS
    routes: tuple[IngressRoute, ...]
    port: int = 0  # the playground ingress's HTTP port

    def route(self, topic: str | None) -> IngressRoute | None:
        if topic is None:
            return self.routes[0] if len(self.routes) == 1 else None
        for candidate in self.routes:
            if candidate.topic == topic:
                return candidate
        return None


@dataclass(frozen=True)
class EgressSpec:
    id: str
    kind: str  # KAFKA_EGRESS, KINESIS_EGRESS or PLAYGROUND_EGRESS
    port: int = 0  # the playground egress's HTTP port
    topics: tuple[str, ...] = ()  # the playground egress's topics


@dataclass(frozen=True)
class ModuleConfig:
    file: str
    endpoints: tuple[FunctionEndpoint, ...]
    ingresses: dict[str, IngressSpec]
    egresses: dict[str, EgressSpec]
    warnings: tuple[str, ...] = field(default=())

    @property
    def playground_ingress(self) -> IngressSpec | None:
        return self.ingresses.get(PLAYGROUND_INGRESS_ID)

    @property
    def playground_egress(self) -> EgressSpec | None:
        return self.egresses.get(PLAYGROUND_EGRESS_ID)

    def endpoint_for(self, function_type: str) -> FunctionEndpoint | None:
        """The exact endpoint for a type wins over a namespace wildcard."""
        for endpoint in self.endpoints:
            if endpoint.functions == function_type:
                return endpoint
        for endpoint in self.endpoints:
            if endpoint.serves(function_type):
                return endpoint
        return None


def is_type_name(text: str) -> bool:
    namespace, slash, name = text.partition("/")
    return bool(slash and namespace and name and "/" not in name)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.endpoints: list[FunctionEndpoint] = []
        self.ingresses: dict[str, IngressSpec] = {}
        self.egresses: dict[str, EgressSpec] = {}
        self.warnings: list[str] = []
        self.ingress_target_sites: list[tuple[str, Section, int]] = []
        self.playground_ports: dict[str, int] = {}

    def warn_unknown(self, section: Section, known: set[str], kind: str) -> None:
        for key in section.unknown_keys(known):
            where = section.doc.line_of(section.path + (key,))
            self.warnings.append(
                f"{self.file}:{where}: document {section.doc.index}: key "
                f"'{'.'.join(str(p) for p in section.path + (key,))}' is not a known key of "
                f"{kind} (Flink ignores it too); check its spelling"
            )

    def add(self, kind: str, spec: Section) -> None:
        if kind in (ENDPOINT_V1, ENDPOINT_V2):
            self.add_endpoint(kind, spec)
        elif kind in (KAFKA_INGRESS, KINESIS_INGRESS):
            self.add_ingress(kind, spec)
        elif kind == PLAYGROUND_INGRESS:
            self.add_playground_ingress(spec)
        elif kind == PLAYGROUND_EGRESS:
            self.add_playground_egress(spec)
        else:
            self.add_egress(kind, spec)

    def add_endpoint(self, kind: str, spec: Section) -> None:
        functions = spec.string("functions")
        namespace, slash, name = functions.partition("/")
        if not (slash and namespace and name and "/" not in name and "*" not in namespace):
            raise spec.error(
                "functions", f"expected 'namespace/name' or 'namespace/*', got {functions!r}"
            )
        if "*" in name and name != "*":
            raise spec.error(
                "functions",
                f"a wildcard must be the whole name ('{namespace}/*'), got {functions!r}",
            )
        template = spec.string("urlPathTemplate")
        url = urlsplit(template)
        if url.scheme not in ("http", "https"):
            raise spec.error(
                "urlPathTemplate",
                f"the local runtime calls http:// or https:// endpoints, got {template!r}",
            )
        if not url.hostname:
            raise spec.error("urlPathTemplate", f"no host in {template!r}")
        max_batch = spec.integer("maxNumBatchRequests", 1000)
        call_ms, connect_ms = self.timeouts(kind, spec)
        transport = self.transport(kind, spec)
        read_ms = self.read_timeout_ms(kind, spec) if transport == TRANSPORT_OKHTTP else None
        where = f"{self.file}:{spec.doc.line_of(spec.path + ('urlPathTemplate',))}: document {spec.doc.index}"
        for existing in self.endpoints:
            if existing.functions == functions:
                raise spec.error(
                    "functions",
                    f"{functions!r} is already served by the endpoint at {existing.where}",
                )
        self.endpoints.append(
            FunctionEndpoint(
                functions,
                template,
                max_batch,
                call_ms / 1000,
                connect_ms / 1000,
                where,
                transport,
                read_timeout_s=None if read_ms is None else read_ms / 1000,
            )
        )
        known = {"functions", "urlPathTemplate", "maxNumBatchRequests"}
        known |= {"timeouts"} if kind == ENDPOINT_V1 else {"transport"}
        self.warn_unknown(spec, known, kind)

    def transport(self, kind: str, spec: Section) -> str:
        if kind == ENDPOINT_V1:
            return TRANSPORT_OKHTTP
        transport = spec.section("transport")
        if transport is None:
            return TRANSPORT_ASYNC
        return transport.string("type", required=False, default=TRANSPORT_ASYNC)

    def timeouts(self, kind: str, spec: Section) -> tuple[float, float]:
        if kind == ENDPOINT_V1:
            return self.okhttp_timeouts(spec.section("timeouts"))
        transport = spec.section("transport")
        if transport is None:
            return 120_000.0, 20_000.0  # the async transport's defaults (3.2+)
        transport_type = transport.string("type", required=False, default=TRANSPORT_ASYNC)
        if transport_type == TRANSPORT_OKHTTP:
            timeouts = self.okhttp_timeouts(transport.section("timeouts"))
            self.warn_unknown(transport, {"type", "timeouts"}, transport_type)
            return timeouts
        if transport_type != TRANSPORT_ASYNC:
            raise transport.error(
                "type",
                f"unknown transport {transport_type!r}; expected {TRANSPORT_ASYNC} or {TRANSPORT_OKHTTP}",
            )
        nested = transport.section("timeouts")
        if nested is not None:
            call = nested.duration_ms("call", 60_000)
            connect = nested.duration_ms("connect", 10_000)
            self.warn_unknown(nested, {"call", "connect"}, transport_type)
        else:
            call = transport.duration_ms("call", 120_000)
            connect = transport.duration_ms("connect", 20_000)
        for key in ("pool_ttl",):
            transport.duration_ms(key, 15_000)
        self.warn_unknown(
            transport,
            {
                "type",
                "timeouts",
                "call",
                "connect",
                "pool_ttl",
                "pool_size",
                "payload_max_bytes",
                "trust_cacerts",
                "client_cert",
                "client_key",
                "client_key_password",
            },
            transport_type,
        )
        return call, connect

    def read_timeout_ms(self, kind: str, spec: Section) -> float:
        if kind == ENDPOINT_V1:
            timeouts = spec.section("timeouts")
        else:
            transport = spec.section("transport")
            timeouts = transport.section("timeouts") if transport is not None else None
        return 10_000.0 if timeouts is None else timeouts.duration_ms("read", 10_000)

    def okhttp_timeouts(self, timeouts: Section | None) -> tuple[float, float]:
        if timeouts is None:
            return 60_000.0, 10_000.0
        call = timeouts.duration_ms("call", 60_000)
        connect = min(timeouts.duration_ms("connect", 10_000), call)
        for key in ("connect", "read", "write"):
            value = timeouts.duration_ms(key, 10_000)
            if timeouts.has(key) and value > call:
                raise timeouts.error(key, f"must not be longer than the call timeout ({call:g} ms)")
        self.warn_unknown(timeouts, {"call", "connect", "read", "write"}, "timeouts")
        return call, connect

    def type_name(self, section: Section, key: str) -> str:
        value = section.string(key)
        if not is_type_name(value):
            raise section.error(key, f"expected a type name 'namespace/name', got {value!r}")
        return value

    def add_ingress(self, kind: str, spec: Section) -> None:
        ingress_id = self.type_name(spec, "id")
        if ingress_id in self.ingresses:
            raise spec.error("id", f"ingress {ingress_id!r} is defined twice")
        list_key, name_key = ("topics", "topic") if kind == KAFKA_INGRESS else ("streams", "stream")
        routes: list[IngressRoute] = []
        for route in spec.sections(list_key):
            targets = route.strings("targets")
            for position, target in enumerate(targets):
                if not is_type_name(target):
                    raise route.doc.error(
                        route.path + ("targets", position),
                        f"expected a function type 'namespace/name', got {target!r}",
                    )
                self.ingress_target_sites.append((target, route, position))
            routes.append(
                IngressRoute(route.string(name_key), route.string("valueType"), tuple(targets))
            )
            self.warn_unknown(route, {name_key, "valueType", "targets"}, kind)
        if kind == KAFKA_INGRESS:
            reset = spec.raw("autoOffsetResetPosition", False)
            if reset is not None and str(reset).lower() not in ("earliest", "latest"):
                raise spec.error(
                    "autoOffsetResetPosition", f"expected 'earliest' or 'latest', got {reset!r}"
                )
            known = {
                "id",
                "address",
                "consumerGroupId",
                "topics",
                "autoOffsetResetPosition",
                "startupPosition",
                "properties",
            }
        else:
            known = {
                "id",
                "awsRegion",
                "awsCredentials",
                "startupPosition",
                "streams",
                "clientConfigProperties",
            }
        self.warn_unknown(spec, known, kind)
        self.ingresses[ingress_id] = IngressSpec(ingress_id, kind, tuple(routes))

    def add_egress(self, kind: str, spec: Section) -> None:
        egress_id = self.type_name(spec, "id")
        if egress_id in self.egresses:
            raise spec.error("id", f"egress {egress_id!r} is defined twice")
        if kind == KAFKA_EGRESS:
            semantic = spec.section("deliverySemantic")
            if semantic is not None:
                semantic_type = semantic.string("type", required=False, default="at-least-once")
                if semantic_type not in ("at-least-once", "exactly-once", "none"):
                    raise semantic.error(
                        "type",
                        f"expected at-least-once, exactly-once or none, got {semantic_type!r}",
                    )
                if semantic_type == "exactly-once":
                    self.warnings.append(
                        f"{self.file}:{semantic.doc.line_of(semantic.path + ('type',))}: document "
                        f"{semantic.doc.index}: egress {egress_id} asks for exactly-once delivery; "
                        "the local runtime gives at-least-once (after a crash a record can be "
                        "written twice, see docs/local.md), Flink gives exactly-once with "
                        "checkpointing"
                    )
                    if semantic.has("transactionTimeoutMillis"):
                        semantic.integer("transactionTimeoutMillis", 0)
                    else:
                        if not semantic.has("transactionTimeout"):
                            raise semantic.error(
                                "transactionTimeout",
                                "exactly-once needs a transactionTimeout (e.g. 15min)",
                            )
                        semantic.duration_ms("transactionTimeout", 0)
            known = {"id", "address", "deliverySemantic", "properties"}
        else:
            known = {
                "id",
                "awsRegion",
                "awsCredentials",
                "maxOutstandingRecords",
                "clientConfigProperties",
            }
        self.warn_unknown(spec, known, kind)
        self.egresses[egress_id] = EgressSpec(egress_id, kind)

    def port(self, spec: Section) -> int:
        value = spec.raw("port", True)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise spec.error("port", f"expected a TCP port (0 to 65535), got {value!r}")
        for used_by, used in self.playground_ports.items():
            if used == value and value != 0:
                raise spec.error(
                    "port", f"port {value} is already used by the playground {used_by}"
                )
        return value

    def add_playground_ingress(self, spec: Section) -> None:
        if PLAYGROUND_INGRESS_ID in self.ingresses:
            raise spec.error("port", f"a second {PLAYGROUND_INGRESS}; the playground has one")
        port = self.port(spec)
        self.playground_ports["ingress"] = port
        self.warn_unknown(spec, {"port"}, PLAYGROUND_INGRESS)
        self.ingresses[PLAYGROUND_INGRESS_ID] = IngressSpec(
            PLAYGROUND_INGRESS_ID, PLAYGROUND_INGRESS, (), port
        )

    def add_playground_egress(self, spec: Section) -> None:
        if PLAYGROUND_EGRESS_ID in self.egresses:
            raise spec.error("port", f"a second {PLAYGROUND_EGRESS}; the playground has one")
        port = self.port(spec)
        self.playground_ports["egress"] = port
        topics = spec.raw("topics", True)
        if not isinstance(topics, list) or not all(
            isinstance(topic, str) and topic for topic in topics
        ):
            raise spec.error("topics", f"expected a list of topic names, got {topics!r}")
        for topic in topics:
            if "/" in topic:
                raise spec.error(
                    "topics", f"topic {topic!r} can not be read as GET /<topic>: it contains '/'"
                )
        if not topics:
            self.warnings.append(
                f"{self.file}:{spec.doc.line_of(spec.path + ('topics',))}: document "
                f"{spec.doc.index}: the playground egress has no topics; every record sent to it "
                "stops the run"
            )
        self.warn_unknown(spec, {"port", "topics"}, PLAYGROUND_EGRESS)
        self.egresses[PLAYGROUND_EGRESS_ID] = EgressSpec(
            PLAYGROUND_EGRESS_ID, PLAYGROUND_EGRESS, port, tuple(dict.fromkeys(topics))
        )

    def check_targets(self, config: ModuleConfig) -> None:
        for target, route, position in self.ingress_target_sites:
            if config.endpoint_for(target) is None:
                raise route.doc.error(
                    route.path + ("targets", position),
                    f"no endpoint in this module serves function type {target!r}",
                )


def _component(builder: _Builder, doc: YamlDocument) -> None:
    root = Section.of(doc, (), doc.data)
    kind = root.string("kind")
    if kind not in KNOWN_KINDS:
        raise root.error(
            "kind", f"unknown kind {kind!r}; the local runtime serves {', '.join(KNOWN_KINDS)}"
        )
    spec = root.section("spec", required=True)
    assert spec is not None
    builder.add(kind, spec)
    builder.warn_unknown(root, {"kind", "spec"}, "a module component")


def _legacy(builder: _Builder, doc: YamlDocument, root: Section) -> None:
    version = str(root.raw("version", True))
    if version != "3.0":
        raise root.error(
            "version",
            f"format version {version!r} is not served; use the 3.1+ component documents "
            '(kind/spec) or version "3.0"',
        )
    module = root.section("module", required=True)
    assert module is not None
    meta = module.section("meta")
    if meta is not None:
        meta_type = meta.string("type", required=False, default="remote")
        if meta_type.lower() != "remote":
            raise meta.error("type", f"only 'remote' modules are served, got {meta_type!r}")
    spec = module.section("spec", required=True)
    assert spec is not None
    for list_key, item_key in (
        ("endpoints", "endpoint"),
        ("ingresses", "ingress"),
        ("egresses", "egress"),
    ):
        for item in spec.sections(list_key, required=False):
            component = item.section(item_key, required=True)
            assert component is not None
            component_meta = component.section("meta", required=True)
            assert component_meta is not None
            legacy_kind = component_meta.string("kind" if item_key == "endpoint" else "type")
            kind = _LEGACY_KINDS.get(legacy_kind, legacy_kind)
            if kind not in KNOWN_KINDS or (item_key == "endpoint") != (kind == ENDPOINT_V1):
                raise component_meta.error(
                    "kind" if item_key == "endpoint" else "type",
                    f"unknown {item_key} kind {legacy_kind!r}",
                )
            component_spec = component.section("spec", required=True)
            assert component_spec is not None
            if item_key != "endpoint":
                component_spec.data = dict(component_spec.data)
                component_spec.data["id"] = component_meta.raw("id", True)
            builder.add(kind, component_spec)


def load_module(file: str) -> ModuleConfig:
    """Parse and validate a module file; raises ConfigError with file, document and key."""
    documents = load_documents(file)
    present = [doc for doc in documents if doc.data is not None]
    builder = _Builder(file)
    if not present:
        raise ConfigError(f"{file}: the module file has no documents")
    if len(documents) == 1 and isinstance(present[0].data, dict) and "version" in present[0].data:
        _legacy(builder, present[0], Section.of(present[0], (), present[0].data))
    else:
        for doc in present:
            _component(builder, doc)
    if not builder.endpoints:
        raise ConfigError(f"{file}: no function endpoint ({ENDPOINT_V2}) is defined")
    config = ModuleConfig(
        file, tuple(builder.endpoints), builder.ingresses, builder.egresses, tuple(builder.warnings)
    )
    builder.check_targets(config)
    return config


def override_endpoints(config: ModuleConfig, overrides: Sequence[str]) -> ModuleConfig:
    """Apply ``--endpoint PATTERN=URL`` options, in order, without touching the file.

    PATTERN selects endpoints by their ``functions``: ``*`` is every endpoint, ``ns/*`` every
    endpoint of namespace ``ns``, ``ns/name`` the endpoint whose ``functions`` is exactly that —
    or, when a wildcard endpoint serves it, a new endpoint for that function alone (with the
    wildcard's settings), since an exact endpoint wins. URL is a whole URL template
    (``{function.name}`` works); one without a path keeps the endpoint's path, and a bare
    ``HOST:PORT`` replaces only the host and port.
    """
    endpoints = list(config.endpoints)
    for text in overrides:
        option = f"--endpoint {text!r}"
        pattern, sep, url = text.partition("=")
        pattern, url = pattern.strip(), url.strip()
        if not sep or not pattern or not url:
            raise ConfigError(
                f"{option}: expected PATTERN=URL, e.g. 'example/*=http://127.0.0.1:8000/statefun'"
            )
        namespace, slash, name = pattern.partition("/")
        if pattern != "*" and not (slash and namespace and name and "/" not in name):
            raise ConfigError(f"{option}: PATTERN must be '*', 'namespace/*' or 'namespace/name'")
        chosen = [
            index
            for index, endpoint in enumerate(endpoints)
            if pattern == "*"
            or endpoint.functions == pattern
            or (name == "*" and endpoint.functions.partition("/")[0] == namespace)
        ]
        if not chosen and name != "*" and pattern != "*":
            serving = config.endpoint_for(pattern)
            if serving is not None:
                endpoints.append(dataclasses.replace(serving, functions=pattern))
                chosen = [len(endpoints) - 1]
        if not chosen:
            served = ", ".join(endpoint.functions for endpoint in endpoints)
            raise ConfigError(f"{option}: no endpoint serves {pattern!r}; the module has {served}")
        for index in chosen:
            endpoint = endpoints[index]
            template = _override_url(endpoint.url_path_template, url, option)
            endpoints[index] = dataclasses.replace(
                endpoint, url_path_template=template, overridden_by=option
            )
    return dataclasses.replace(config, endpoints=tuple(endpoints))


def _override_url(original: str, given: str, option: str) -> str:
    old = urlsplit(original)
    if "://" not in given:
        if "/" in given or not given.rpartition(":")[2].isdigit():
            raise ConfigError(f"{option}: expected a URL (http://HOST:PORT/path) or HOST:PORT")
        new = old._replace(netloc=given)
    else:
        new = urlsplit(given)
        if not new.path:
            new = new._replace(path=old.path, query=new.query or old.query)
    if new.scheme not in ("http", "https"):
        raise ConfigError(f"{option}: the local runtime calls http:// or https:// endpoints")
    try:
        hostname, _ = new.hostname, new.port
    except ValueError as error:
        raise ConfigError(f"{option}: {error}") from None
    if not hostname:
        raise ConfigError(f"{option}: no host in {given!r}")
    return urlunsplit(new)
