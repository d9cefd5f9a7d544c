"""module_rules: module.yaml read as the Java runtime reads it, in every format.

Our own module.yaml (the goldens, every format of the rich schema) must load without a
single diagnostic and read back to what the manifest said; module.yaml files written by
hand, as users of upstream write them, load with the runtime's leniency and are refused
where the runtime refuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from statefun_codegen.module_rules import (
    endpoint_url_problem,
    function_target_problem,
    okhttp_timeouts_problem,
    read_module_yaml,
    split_typename,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GOLDEN_MODULES = [
    REPO / "examples" / "greeter" / "module.yaml",
    HERE / "golden" / "rich" / "module.yaml",
]


@pytest.mark.parametrize("path", GOLDEN_MODULES, ids=lambda p: p.parent.name)
def test_the_goldens_load_without_a_single_diagnostic(path: Path) -> None:
    module = read_module_yaml(path.read_bytes(), path.name)
    assert module.format == "3.1" and module.runtimes == "StateFun 3.1+"
    assert module.diagnostics == ()
    assert module.endpoints and module.loads


def test_the_rich_golden_reads_back_to_its_manifest() -> None:
    module = read_module_yaml((HERE / "golden" / "rich" / "module.yaml").read_bytes(), "m.yaml")
    endpoints = {e.functions: e for e in module.endpoints}
    assert set(endpoints) == {"acme/audit", "acme/order-tracker"}
    tracker = endpoints["acme/order-tracker"]
    assert tracker.url_path_template == "http://functions:8000/statefun/{function.name}"
    assert tracker.max_num_batch_requests == 100
    assert tracker.transport.type == "io.statefun.transports.v1/okhttp"
    assert dict(tracker.transport.timeouts) == {"call": 120_000, "connect": 10_000}
    assert tracker.transport.effective_timeouts()["read"] == 10_000  # OkHttp's default
    ingresses = {i.id: i for i in module.ingresses}
    orders = ingresses["acme/orders"]
    assert [(r.source, r.value_type, r.targets) for r in orders.routes] == [
        ("orders", "type.googleapis.com/acme.orders.Order", ("acme/order-tracker",)),
        ("shipments", "type.googleapis.com/acme.orders.Shipped", ("acme/order-tracker",)),
    ]
    assert ("startupPosition", "earliest") in orders.settings
    assert [r.value_type for r in ingresses["acme/audit-lines"].routes] == [
        "io.statefun.types/string"
    ]
    assert {e.id for e in module.egresses} == {"acme/receipts", "acme/events"}


@pytest.mark.parametrize("module_format", ["3.0", "2.0"])
def test_every_format_of_the_rich_schema_loads_and_reads_back(
    module_format: str, generate: Callable[..., Path]
) -> None:
    out = generate("rich", "--module-format", module_format)
    module = read_module_yaml((out / "module.yaml").read_bytes(), "module.yaml")
    assert module.format == module_format and module.diagnostics == ()
    assert {i.id for i in module.ingresses} == {"acme/orders", "acme/audit-lines"}
    if module_format == "3.0":
        assert {e.functions for e in module.endpoints} == {"acme/audit", "acme/order-tracker"}
        assert all(e.transport.type.endswith("okhttp") for e in module.endpoints)
    else:
        (tracker,) = [f for f in module.functions if f.typename == "acme/order-tracker"]
        assert tracker.endpoint == "http://functions:8000/statefun/order-tracker"
        assert [(s.name, s.expire_after_millis, s.expire_mode) for s in tracker.states] == [
            ("total", None, None),
            ("list", None, None),
            ("profile", 86_400_000, "after-write"),
            ("last_seen", 5_400_000, "after-invoke"),
        ]
        assert dict(tracker.timeouts) == {"call": 120_000, "connect": 10_000}


HAND_WRITTEN = {
    # as the StateFun 3.x documentation writes it, with the runtime's leniency
    "upstream-3.2-lenient": (
        """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: https://endpoint/{function.name}
  transport:
    type: io.statefun.transports.v1/async
    call: 2 minutes
    connect: 20 s
    pool_ttl: 15s
    pool_size: 1024
---
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  address: kafka:9092
  autoOffsetResetPosition: EARLIEST
  startupPosition:
    type: date
    date: 2020-02-01 04:15:00.00 Z
  topics:
    - topic: names
      valueType: example/GreetRequest
      targets:
        - example/greeter
---
kind: io.statefun.kafka.v1/egress
spec:
  id: example/greets
  address: kafka:9092
  deliverySemantic:
    type: exactly-once
    transactionTimeoutMillis: 900000
""",
        "3.1",
        ["module.yaml:20:11: error: startup date '2020-02-01 04:15:00.00 Z' does not match"],
    ),
    "upstream-3.0-legacy": (
        """\
version: "3.0"
module:
  meta:
    type: REMOTE
  spec:
    endpoints:
      - endpoint:
          meta:
            kind: http
          spec:
            functions: example/*
            urlPathTemplate: http://functions:8000/{function.name}
            timeouts:
              call: 1min
    ingresses:
      - ingress:
          meta:
            type: io.statefun.kafka/ingress
            id: example/names
          spec:
            address: kafka:9092
            topics:
              - topic: names
                valueType: example/GreetRequest
                targets: [example/greeter]
""",
        "3.0",
        [],
    ),
    "upstream-2.0-walkthrough": (
        """\
version: "2.0"
module:
  meta:
    type: remote
  spec:
    functions:
      - function:
          meta:
            kind: http
            type: example/greeter
          spec:
            endpoint: http://python-worker:8000/statefun
            states:
              - name: seen_count
              - name: session
                expireAfter: 30min
            maxNumBatchRequests: 500
            timeout: 2min
    ingresses:
      - ingress:
          meta:
            type: statefun.kafka.io/routable-protobuf-ingress
            id: example/names
          spec:
            address: kafka-broker:9092
            consumerGroupId: my-group-id
            topics:
              - topic: names
                typeUrl: com.googleapis/example.GreetRequest
                targets:
                  - example/greeter
    egresses:
      - egress:
          meta:
            type: statefun.kafka.io/generic-egress
            id: example/greets
          spec:
            address: kafka-broker:9092
            deliverySemantic:
              type: exactly-once
              transactionTimeoutMillis: 100000
""",
        "2.0",
        [],
    ),
    "version-1.0-state-names": (
        """\
version: "1.0"
module:
  meta: {type: remote}
  spec:
    functions:
      - function:
          meta: {kind: http, type: example/greeter}
          spec:
            endpoint: http://worker:8000/statefun
            states: [seen_count]
""",
        "1.0",
        [],
    ),
    "unquoted-version": (
        "version: 3.0\nmodule: {meta: {type: remote}, spec: {}}\n",
        "",
        ["module.yaml:1:10: error: version: 3.0 is not text to the runtime"],
    ),
    "version-3.1-is-not-legacy": (
        'version: "3.1"\nmodule: {meta: {type: remote}, spec: {}}\n',
        "",
        ["module.yaml:1:10: error: Unrecognized format version '3.1'"],
    ),
    "not-remote": (
        'version: "3.0"\nmodule: {meta: {type: embedded}, spec: {}}\n',
        "3.0",
        ["module.yaml:2:23: error: module type 'embedded' is not remote"],
    ),
    "component-without-spec": (
        "kind: io.statefun.endpoints.v2/http\n",
        "3.1",
        ["module.yaml:1:1: error: a component needs 'spec' (and 'kind')"],
    ),
    "custom-kind-and-ignored-keys": (
        """\
kind: com.example/my-binder
spec: {anything: 1}
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/greeter
  urlPathTemplate: http://fn:8000/
  maxNumBatchReqests: 10
""",
        "3.1",
        [
            "module.yaml:1:7: warning: kind 'com.example/my-binder' is not built into StateFun",
            "module.yaml:8:3: warning: the runtime ignores the key 'maxNumBatchReqests'",
        ],
    ),
    "what-the-runtime-refuses": (
        """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/greet*
  urlPathTemplate: http://my_service:8000/{function.name}
---
kind: io.statefun.endpoints.v1/http
spec:
  functions: example/other
  urlPathTemplate: http://fn:8000/
  timeouts:
    call: 5s
    connect: 0s
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/
  topics: []
---
kind: io.statefun.kafka.v1/egress
spec:
  id: example/out
  deliverySemantic:
    type: exactly-once
---
kind: io.statefun.kafka.v1/egress
spec:
  id: example/out
""",
        "3.1",
        [
            "module.yaml:3:14: error: bad functions: 'example/greet*': only <namespace>/<name>",
            "module.yaml:12:14: error: 'connect': Timeout durations must be larger than 0",
            "module.yaml:16:7: error: the ingress id 'example/' is not <namespace>/<name>",
            "module.yaml:17:11: error: Routing config for 'topics' cannot be empty",
            "module.yaml:23:5: error: exactly-once delivery needs transactionTimeout",
            "module.yaml:27:7: error: egress example/out is declared twice",
        ],
    ),
    "yaml-1.1-and-jackson": (
        """\
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  topics:
    - topic: on
      valueType: &t example/Name
      targets: [example/greeter]
    - topic: names
      valueType: *t
      targets: [example/greeter]
""",
        "3.1",
        [
            "module.yaml:5:14: warning: 'topic' 'on' is read as the bool true",
            "module.yaml:9:18: warning: 'valueType' is the alias *t",
        ],
    ),
    "okhttp-timeouts": (
        """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/greeter
  urlPathTemplate: http://fn:8000/
  transport:
    type: io.statefun.transports.v1/okhttp
    timeouts:
      call: 5s
""",
        "3.1",
        ["module.yaml:8:7: error: the connect timeout (its default), 10s, is longer than the call"],
    ),
    "not-yaml": ("kind: [unclosed\n", "", ["module.yaml:2:1: error: invalid YAML"]),
    "empty": ("# nothing\n", "", ["module.yaml:1:1: error: module.yaml is empty"]),
}


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_hand_written_module_yaml(name: str) -> None:
    text, module_format, expected = HAND_WRITTEN[name]
    module = read_module_yaml(text, "module.yaml")
    assert module.format == module_format
    got = [d.format().split("\n")[0] for d in module.diagnostics]
    assert len(got) == len(expected), got
    for want, line in zip(expected, got):
        assert line.startswith(want), (want, line)


def test_the_lenient_spellings_are_read_as_the_runtime_reads_them() -> None:
    text, _, _ = HAND_WRITTEN["upstream-3.2-lenient"]
    module = read_module_yaml(text.replace("04:15:00.00 Z", "04:15:00.000 +0000"), "m.yaml")
    assert module.diagnostics == ()
    (endpoint,) = module.endpoints
    assert (endpoint.namespace, endpoint.name) == ("example", None)  # example/*
    assert dict(endpoint.transport.timeouts) == {"call": 120_000, "connect": 20_000}
    (ingress,) = module.ingresses
    assert ("autoOffsetResetPosition", "earliest") in ingress.settings
    (egress,) = module.egresses
    assert egress.transaction_timeout_millis == 900_000
    walkthrough = read_module_yaml(HAND_WRITTEN["upstream-2.0-walkthrough"][0], "m.yaml")
    (function,) = walkthrough.functions
    assert [(s.name, s.expire_after_millis, s.expire_mode) for s in function.states] == [
        ("seen_count", None, None),
        ("session", 1_800_000, "after-invoke"),  # the 2.x default mode
    ]
    assert walkthrough.runtimes == "StateFun 2.1+"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a/b", ("a", "b")), ("/b", ("", "b")), ("a/b/", ("a", "b")), ("a/", None), ("a//b", None)],
)
def test_typenames_split_as_java_does(text: str, expected: tuple[str, str] | None) -> None:
    assert split_typename(text) == expected


def test_the_shared_rules() -> None:
    assert function_target_problem("ns/*") is None
    assert function_target_problem("n*/x") is not None
    assert endpoint_url_problem("http://fn:8000/x") is None
    assert "no server" in (endpoint_url_problem("http://fn_1:8000/x") or "")
    assert ".sock" in (endpoint_url_problem("http+unix:///run/x/statefun") or "")
    assert okhttp_timeouts_problem({"call": 60_000}) is None
    assert "read timeout" in (okhttp_timeouts_problem({"read": 61_000}) or "")
