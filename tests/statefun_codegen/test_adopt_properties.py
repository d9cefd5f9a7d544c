"""Property: any module.yaml whose facts a manifest can say adopts without a warning, and the
adopted manifest regenerates a module.yaml the runtime sees exactly as the original.

Hypothesis draws deployments (functions in one or two namespaces, per-function or wildcard
endpoints with one URL or a ``{function.name}`` pattern, OkHttp or async transports and their
timeouts, Kafka and Kinesis ingresses with every startup position, region and credentials
kind, egresses with each delivery semantic, client properties with YAML 1.1 traps) and writes
each in the 3.1+, 3.0 or 2.0 format, with the runtime's lenient spellings (``2 minutes``,
``EARLIEST``, ``REMOTE``, ``transactionTimeoutMillis``) mixed in. Derandomized and bounded as
test_properties.py is (STATEFUN_HYPOTHESIS_EXPLORE=1, STATEFUN_HYPOTHESIS_EXAMPLES=N).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from statefun_codegen.adopt import adopt_module_yaml
from statefun_codegen.generate import Options, generate
from statefun_codegen.module_rules import (
    ModuleYaml,
    differing_parts,
    read_module_yaml,
    runtime_view,
)
from statefun_codegen.protoc_runner import ProtoInput, compile_protos

EXPLORE = os.environ.get("STATEFUN_HYPOTHESIS_EXPLORE") == "1"
EXAMPLES = int(os.environ.get("STATEFUN_HYPOTHESIS_EXAMPLES", "40"))
PROTOS = Path(__file__).resolve().parent / "adopt" / "protos"
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not EXPLORE,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
VALUE_TYPES = (
    "type.googleapis.com/shop.AddToCart",
    "type.googleapis.com/shop.Checkout",
    "type.googleapis.com/inventory.Restock",
    "type.googleapis.com/shop.Item",
    "type.googleapis.com/inventory.Item",
    "io.statefun.types/string",
    "io.statefun.types/long",
)
# (spelling, the duration in ms) as the runtime reads them
DURATIONS = (
    ("30s", 30_000),
    ("2 minutes", 120_000),
    ("1min", 60_000),
    ("90 s", 90_000),
    ("5000ms", 5_000),
    ("1 h", 3_600_000),
)
PROPERTY_VALUES = ("100", "yes", "on", "0755", "1:30", "true", "a b", "x=y", "~")


@dataclass
class Deployment:
    module_format: str
    documents: list[dict[str, Any]] = field(default_factory=list)

    def text(self) -> str:
        if self.module_format == "3.1":
            return yaml.safe_dump_all(self.documents, sort_keys=False)
        return yaml.safe_dump(self.documents[0], sort_keys=False)


names = st.sampled_from(["cart", "checkout", "inventory", "audit", "order-tracker", "greeter"])


def _duration(draw: st.DrawFn, at_most: int | None = None) -> tuple[str, int]:
    choices = [d for d in DURATIONS if at_most is None or d[1] <= at_most]
    return draw(st.sampled_from(choices))


def _properties(draw: st.DrawFn) -> list[dict[str, str]]:
    keys = draw(st.lists(st.sampled_from(["max.poll.records", "acks", "RecordTtl"]), unique=True))
    return [{key: draw(st.sampled_from(PROPERTY_VALUES))} for key in keys]


def _startup(draw: st.DrawFn, kinesis: bool, topics: list[str]) -> dict[str, Any] | None:
    kinds = ["earliest", "latest", "date"] + (
        [] if kinesis else ["group-offsets", "specific-offsets"]
    )
    kind = draw(st.none() | st.sampled_from(kinds))
    if kind is None:
        return None
    spec: dict[str, Any] = {"type": kind}
    if kind == "date":
        spec["date"] = draw(
            st.sampled_from(["2024-01-31 23:59:00.000 +0000", "2023-02-28 00:00:00.001 -0130"])
        )
    if kind == "specific-offsets":
        spec["offsets"] = [
            {f"{draw(st.sampled_from(topics))}/{partition}": draw(st.integers(0, 10**12))}
            for partition in range(draw(st.integers(1, 3)))
        ]
    return spec


def _aws(draw: st.DrawFn, spec: dict[str, Any]) -> None:
    region = draw(st.sampled_from([None, "default", "specific", "custom-endpoint"]))
    if region is not None:
        spec["awsRegion"] = {"type": region}
        if region != "default":
            spec["awsRegion"]["id"] = draw(st.sampled_from(["eu-west-1", "us-east-1"]))
        if region == "custom-endpoint":
            spec["awsRegion"]["endpoint"] = "http://localstack:4566"
    credentials = draw(st.sampled_from([None, "default", "profile"]))
    if credentials is not None:
        spec["awsCredentials"] = {"type": credentials}
        if credentials == "profile":
            spec["awsCredentials"]["profileName"] = "ops"
            if draw(st.booleans()):
                spec["awsCredentials"]["profilePath"] = "/etc/aws/credentials"


@st.composite
def deployments(draw: st.DrawFn, hostile: bool = False) -> Deployment:
    """A deployment; ``hostile`` mixes in what a manifest cannot say (each warned about)."""

    def odd() -> bool:
        return hostile and draw(st.integers(0, 3)) == 0

    module_format = draw(st.sampled_from(["3.1", "3.0", "2.0"]))
    own = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    functions = [f"shop/{n}" for n in own]
    if module_format != "2.0" and draw(st.booleans()):
        # a name of its own: the generator names modules by function name alone
        functions.append(f"ops/{draw(names.filter(lambda n: n not in own))}")
    host = draw(st.sampled_from(["http://functions:8000/statefun", "https://fn.example.com"]))
    by_name = draw(st.booleans())
    wildcard = module_format != "2.0" and draw(st.booleans())
    max_batch = draw(st.none() | st.integers(1, 5000))
    okhttp = module_format != "3.1" or draw(st.booleans())
    call_ms = None
    timeouts: dict[str, str] = {}
    if draw(st.booleans()):
        call, call_ms = _duration(draw)
        timeouts["call"] = call
        keys = ("connect", "read", "write") if okhttp else ("connect",)
        for key in draw(st.lists(st.sampled_from(keys), unique=True)):
            timeouts[key] = _duration(draw, at_most=call_ms)[0]
        if okhttp and call_ms < 10_000:  # the defaults of the others must not exceed call
            timeouts.update({k: timeouts.get(k, "5000ms") for k in ("connect", "read", "write")})
    deployment = Deployment(module_format)

    def url(function: str) -> str:
        return f"{host}/{function.partition('/')[2]}" if by_name else host

    endpoints: list[dict[str, Any]] = []
    served = sorted({f.partition("/")[0] for f in functions}) if wildcard else functions
    for target in served:
        spec: dict[str, Any] = {
            "functions": f"{target}/*" if wildcard else target,
            "urlPathTemplate": f"{host}/{{function.name}}" if by_name and wildcard else url(target),
        }
        if max_batch is not None:
            spec["maxNumBatchRequests"] = max_batch
        if odd():  # one endpoint unlike the others
            spec["maxNumBatchRequests"] = draw(st.integers(1, 5000))
        if odd():
            spec["urlPathTemplate"] = "http://elsewhere:9000/fn"
        if module_format == "3.0" or (okhttp and draw(st.booleans())):
            if timeouts:
                spec["timeouts"] = dict(timeouts)
            kind = "io.statefun.endpoints.v1/http"
        else:
            kind = "io.statefun.endpoints.v2/http"
            transport: dict[str, Any] = {}
            if okhttp:
                transport = {"type": "io.statefun.transports.v1/okhttp"}
                if timeouts:
                    transport["timeouts"] = dict(timeouts)
            elif timeouts or draw(st.booleans()):
                transport = {"type": "io.statefun.transports.v1/async", **timeouts}
                if odd():
                    transport["trust_cacerts"] = "file:///etc/ca.pem"
                    transport["pool_size"] = 8
            if transport:
                spec["transport"] = transport
        endpoints.append({"kind": kind, "spec": spec})
    ingresses: list[dict[str, Any]] = []
    routed: list[str] = []
    for index in range(draw(st.integers(1 if wildcard else 0, 2))):
        kinesis = draw(st.booleans())
        sources = draw(
            st.lists(
                st.sampled_from(["orders", "carts", "on", "0755", "a.b-c_d"]),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
        spec = {"id": f"shop/in{index}"}
        if kinesis:
            _aws(draw, spec)
        else:
            spec["address"] = draw(st.sampled_from(["kafka:9092", "k1:9092,k2:9093"]))
            if draw(st.booleans()):
                spec["consumerGroupId"] = "shop"
            reset = draw(st.none() | st.sampled_from(["earliest", "LATEST", "Earliest"]))
            if reset is not None:
                spec["autoOffsetResetPosition"] = reset
        startup = _startup(draw, kinesis, sources)
        if startup is not None:
            spec["startupPosition"] = startup
        value_key = "typeUrl" if module_format == "2.0" else "valueType"
        routes = []
        for source in sources:
            targets = draw(
                st.lists(st.sampled_from(functions), min_size=1, max_size=2, unique=True)
            )
            if odd():
                targets = draw(st.sampled_from([[], [*targets, "shop/*"]]))
            routed += targets
            routes.append(
                {
                    "stream" if kinesis else "topic": source,
                    value_key: draw(st.sampled_from(VALUE_TYPES)),
                    "targets": targets,
                }
            )
        spec["streams" if kinesis else "topics"] = routes
        properties = _properties(draw)
        if properties:
            spec["clientConfigProperties" if kinesis else "properties"] = properties
        family = "kinesis" if kinesis else "kafka"
        ingresses.append({"kind": f"io.statefun.{family}.v1/ingress", "spec": spec})
    egresses: list[dict[str, Any]] = []
    for index in range(draw(st.integers(0, 2))):
        spec = {"id": f"shop/out{index}"}
        if draw(st.booleans()):
            _aws(draw, spec)
            if draw(st.booleans()):
                spec["maxOutstandingRecords"] = draw(st.integers(1, 10_000))
            kind = "io.statefun.kinesis.v1/egress"
        else:
            spec["address"] = "kafka:9092"
            delivery = draw(st.sampled_from([None, "at-least-once", "exactly-once", "none"]))
            if delivery is not None:
                spec["deliverySemantic"] = {"type": delivery}
                if delivery == "exactly-once" or odd():  # (a manifest says it for exactly-once)
                    millis = draw(st.sampled_from([60_000, 900_000, 123_456]))
                    if module_format == "2.0" or draw(st.booleans()):
                        spec["deliverySemantic"]["transactionTimeoutMillis"] = millis
                    else:
                        spec["deliverySemantic"]["transactionTimeout"] = f"{millis} ms"
            kind = "io.statefun.kafka.v1/egress"
        properties = _properties(draw)
        if properties:
            key = "clientConfigProperties" if "kinesis" in kind else "properties"
            spec[key] = properties
        egresses.append({"kind": kind, "spec": spec})
    # a namespace served by a wildcard names its functions only through the routes to them
    assume(hostile or not wildcard or set(functions) <= set(routed))
    if module_format == "3.1":
        extensions = [{"kind": "com.example/metrics", "spec": {"port": 9249}}] if odd() else []
        deployment.documents = [*endpoints, *ingresses, *egresses, *extensions]
        return deployment
    if module_format == "3.0":
        legacy = {
            "endpoints": [
                {"endpoint": {"meta": {"kind": "http"}, "spec": e["spec"]}} for e in endpoints
            ]
        }
        for key, items in (("ingresses", ingresses), ("egresses", egresses)):
            if items:
                legacy[key] = [
                    {
                        key[:-2] if key == "egresses" else "ingress": {
                            "meta": {
                                "type": item["kind"].replace(".v1/", "/"),
                                "id": item["spec"]["id"],
                            },
                            "spec": {k: v for k, v in item["spec"].items() if k != "id"},
                        }
                    }
                    for item in items
                ]
        deployment.documents = [
            {"version": "3.0", "module": {"meta": {"type": "remote"}, "spec": legacy}}
        ]
        return deployment
    functions_2x = []
    for function in functions:
        states = [
            {"name": state, **({"expireAfter": "1 day", "expireMode": mode} if mode else {})}
            for state, mode in draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(["seen", "lines", "total"]),
                        st.sampled_from([None, "after-invoke", "after-write"]),
                    ),
                    max_size=2,
                    unique_by=lambda pair: pair[0],
                )
            )
        ]
        spec = {"endpoint": url(function), "states": states}
        if max_batch is not None:
            spec["maxNumBatchRequests"] = max_batch
        for key, name in (
            ("call", "timeout"),
            ("connect", "connectTimeout"),
            ("read", "readTimeout"),
            ("write", "writeTimeout"),
        ):
            if key in timeouts:
                spec[name] = timeouts[key]
        kind = "http"
        if odd():
            kind, spec = "grpc", {"host": "legacy", "port": 9000, "states": states}
        functions_2x.append({"function": {"meta": {"kind": kind, "type": function}, "spec": spec}})
    spec_2x: dict[str, Any] = {"functions": functions_2x}
    kinds = {"kafka": "statefun.kafka.io", "kinesis": "statefun.kinesis.io"}
    for key, items, suffix in (
        ("ingresses", ingresses, "routable-protobuf-ingress"),
        ("egresses", egresses, "generic-egress"),
    ):
        if items:
            spec_2x[key] = [
                {
                    key[:-2] if key == "egresses" else "ingress": {
                        "meta": {
                            "type": f"{kinds['kinesis' if 'kinesis' in item['kind'] else 'kafka']}/{suffix}",
                            "id": item["spec"]["id"],
                        },
                        "spec": {k: v for k, v in item["spec"].items() if k != "id"},
                    }
                }
                for item in items
            ]
    deployment.documents = [
        {"version": "2.0", "module": {"meta": {"type": "REMOTE"}, "spec": spec_2x}}
    ]
    return deployment


def _filled(text: str) -> str:
    return text.replace("url: TODO\n", "url: http://localhost:8000/statefun\n").replace(
        ": TODO\n", ": string\n"
    )


@pytest.fixture(scope="module")
def proto_input() -> ProtoInput:
    return compile_protos(sorted(PROTOS.glob("*.proto")), [PROTOS])


def test_what_a_manifest_can_say_adopts_silently_and_regenerates_the_same_module(
    proto_input: ProtoInput,
) -> None:
    seen: Counter[str] = Counter()

    @SETTINGS
    @given(deployments())
    def property(deployment: Deployment) -> None:
        text = deployment.text()
        original = read_module_yaml(text, "module.yaml")
        assert original.loads, [d.format() for d in original.diagnostics]
        adoption = adopt_module_yaml(text, "module.yaml", proto_input, "statefun.yaml")
        # the reader's own warnings (YAML 1.1 words in properties, a topic routed twice) are
        # about module.yaml; adoption adds none for what the manifest can say
        adopted = [d for d in adoption.diagnostics if d not in original.diagnostics]
        assert not adopted, [d.format() for d in adopted] + [text, adoption.text]
        assert adoption.module_format == deployment.module_format
        options = Options(module_format=adoption.module_format, stubs=False)
        generated = generate(proto_input, _filled(adoption.text), "statefun.yaml", options)
        module_yaml = next(f.content for f in generated.files if f.path == "module.yaml")
        regenerated = read_module_yaml(module_yaml, "regenerated")
        differences = differing_parts(runtime_view(original), runtime_view(regenerated))
        assert not differences, (differences, text, adoption.text)
        seen[deployment.module_format] += 1
        seen["ingresses"] += len(original.ingresses)
        seen["egresses"] += len(original.egresses)
        seen["templates"] += "{function.name}" in adoption.text

    property()
    print(f"adopt property: {dict(seen)}")
    assert all(seen[kind] for kind in ("3.1", "3.0", "2.0", "ingresses", "egresses", "templates"))


def _spans(module: ModuleYaml) -> dict[tuple[str, str], tuple[int, int]]:
    """The lines of each component: from its start to the next component's."""
    starts: list[tuple[int, str, str]] = []
    starts += [(e.location.line, "endpoints", e.functions) for e in module.endpoints]
    starts += [(f.location.line, "functions", f.typename) for f in module.functions]
    starts += [(i.location.line, "ingresses", i.id) for i in module.ingresses]
    starts += [(e.location.line, "egresses", e.id) for e in module.egresses]
    starts += [(o.location.line, "others", "") for o in module.others]
    starts += [(r.location.line, "routers", "") for r in module.routers]
    starts.sort()
    spans: dict[tuple[str, str], tuple[int, int]] = {}
    for index, (line, section, key) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else 10**9
        spans[(section, key)] = (line, end)
    return spans


def test_whatever_a_manifest_cannot_say_is_warned_about_where_it_is(
    proto_input: ProtoInput,
) -> None:
    seen: Counter[str] = Counter()

    @SETTINGS
    @given(deployments(hostile=True))
    def property(deployment: Deployment) -> None:
        text = deployment.text()
        original = read_module_yaml(text, "module.yaml")
        assume(original.loads)  # a refused module is the error corpus' business
        adoption = adopt_module_yaml(text, "module.yaml", proto_input, "statefun.yaml")
        if any(
            "regenerating from the adopted manifest fails" in d.message
            for d in adoption.diagnostics
        ):
            seen["refused"] += 1
            return
        options = Options(module_format=adoption.module_format, stubs=False)
        generated = generate(proto_input, _filled(adoption.text), "statefun.yaml", options)
        module_yaml = next(f.content for f in generated.files if f.path == "module.yaml")
        regenerated = read_module_yaml(module_yaml, "regenerated")
        spans = _spans(original)
        warned = [d.location.line for d in adoption.diagnostics if d.location.path == "module.yaml"]
        for section, key, _, _ in differing_parts(
            runtime_view(original), runtime_view(regenerated)
        ):
            first, end = spans[(section, key or "")]
            assert any(first <= line < end for line in warned), (section, key, text, adoption.text)
            seen["differences"] += 1
        seen["adopted"] += 1

    property()
    print(f"adopt hostile property: {dict(seen)}")
    assert seen["differences"] and seen["adopted"], seen
