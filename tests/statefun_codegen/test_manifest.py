"""The manifest's small rules: the published JSON Schema agrees with the parser, durations, names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statefun_codegen import manifest
from statefun_codegen.durations import format_duration, parse_duration_millis
from statefun_codegen.naming import camel, snake

SCHEMA = json.loads((Path(manifest.__file__).parent / "manifest.schema.json").read_text())


def _props(node: dict[str, object]) -> set[str]:
    properties = node["properties"]
    assert isinstance(properties, dict)
    return set(properties)


def test_the_json_schema_knows_exactly_the_parsers_keys() -> None:
    top = SCHEMA["properties"]
    assert _props(SCHEMA) == set(manifest.TOP_KEYS)
    assert _props(top["endpoint"]["oneOf"][1]) == set(manifest.ENDPOINT_KEYS)
    function = top["functions"]["additionalProperties"]
    assert _props(function) == set(manifest.FUNCTION_KEYS)
    assert _props(function["properties"]["state"]["additionalProperties"]["oneOf"][1]) == set(
        manifest.STATE_KEYS
    )
    assert _props(top["types"]["additionalProperties"]) == set(manifest.TYPE_KEYS)
    kafka_in, kinesis_in = top["ingresses"]["additionalProperties"]["oneOf"]
    assert _props(kafka_in) == set(manifest.KAFKA_INGRESS_KEYS)
    assert _props(kinesis_in) == set(manifest.KINESIS_INGRESS_KEYS)
    kafka_out, kinesis_out = top["egresses"]["additionalProperties"]["oneOf"]
    assert _props(kafka_out) == set(manifest.KAFKA_EGRESS_KEYS)
    assert _props(kinesis_out) == set(manifest.KINESIS_EGRESS_KEYS)
    assert _props(SCHEMA["definitions"]["kafkaRoute"]) == set(manifest.ROUTE_KEYS["kafka"])
    assert _props(SCHEMA["definitions"]["kinesisRoute"]) == set(manifest.ROUTE_KEYS["kinesis"])
    definitions = SCHEMA["definitions"]
    assert _props(definitions["kafkaEgressTopic"]) == set(manifest.EGRESS_TOPIC_KEYS["kafka"])
    assert _props(definitions["kinesisEgressStream"]) == set(manifest.EGRESS_TOPIC_KEYS["kinesis"])
    assert _props(definitions["awsRegion"]["oneOf"][1]) == set(manifest.REGION_KEYS)
    credential_keys = {key for keys in manifest.CREDENTIAL_KEYS.values() for key in keys}
    assert _props(definitions["awsCredentials"]["oneOf"][1]) == credential_keys
    sends = function["properties"]["sends"]["oneOf"][1]["additionalProperties"]["oneOf"][2]
    assert _props(sends) == set(manifest.SEND_KEYS)
    startup = kafka_in["properties"]["startup_position"]["oneOf"]
    assert _props(definitions["startupDate"]) | _props(startup[2]) == set(
        manifest.STARTUP_KEYS["kafka"]
    )


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("100", 100),
        ("100ms", 100),
        ("30 s", 30_000),
        ("2min", 120_000),
        ("1h", 3_600_000),
        ("2 days", 172_800_000),
        ("1m", None),
        ("-1s", None),
        ("1.5s", None),
        ("5 parsecs", None),
    ],
)
def test_durations_follow_flink_time_utils(text: str, millis: int | None) -> None:
    assert parse_duration_millis(text) == millis


def test_durations_are_written_in_the_largest_exact_unit() -> None:
    assert [format_duration(m) for m in (1, 1000, 90_000, 5_400_000, 86_400_000)] == [
        "1ms",
        "1s",
        "90s",
        "90min",
        "1d",
    ]


@pytest.mark.parametrize(
    ("name", "module", "cls"),
    [
        ("greeter", "greeter", "Greeter"),
        ("order-tracker", "order_tracker", "OrderTracker"),
        ("class", "class_", "Class"),
        ("list", "list_", "List"),
        ("none", "none", "None_"),
        ("HTTPServer", "http_server", "HttpServer"),
    ],
)
def test_one_escaping_rule_for_python_names(name: str, module: str, cls: str) -> None:
    assert (snake(name), camel(name)) == (module, cls)


def test_a_large_manifest_without_aliases_is_not_taken_for_an_alias_bomb() -> None:
    """The value budget counts each value once, not once per enclosing level."""
    from statefun_codegen.yaml_nodes import MAX_NODES, YMapping, load_yaml

    functions = "".join(
        f"  f{i}:\n    input: [A, B]\n    state:\n      s: {{type: C, expire_after_call: 1h}}\n"
        for i in range(MAX_NODES // 20)
    )
    root = load_yaml(f"namespace: big\nfunctions:\n{functions}", "statefun.yaml")
    assert isinstance(root, YMapping)
    functions_node = root.get("functions")
    assert isinstance(functions_node, YMapping)
    assert len(functions_node.entries) == MAX_NODES // 20
