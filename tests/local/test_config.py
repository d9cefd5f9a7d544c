"""module.yaml loading: the accepted formats, and a precise error for each bad input."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from statefun.local.cli import main
from statefun.local.config import KAFKA_EGRESS, KAFKA_INGRESS, KINESIS_INGRESS, load_module
from statefun.local.durations import DurationError, parse_duration_ms
from statefun.local.errors import ConfigError

GOOD = """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: http://functions:8000/{function.name}
  maxNumBatchRequests: 50
  transport:
    type: io.statefun.transports.v1/async
    call: 2m
    connect: 5 s
---
kind: io.statefun.endpoints.v1/http
spec:
  functions: other/exact
  urlPathTemplate: https://other:9000/statefun
  timeouts:
    call: 30s
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  address: kafka:9092
  startupPosition:
    type: earliest
  topics:
    - topic: names
      valueType: type.googleapis.com/example.GreetRequest
      targets:
        - example/greeter
        - other/exact
---
kind: io.statefun.kinesis.v1/ingress
spec:
  id: example/clicks
  streams:
    - stream: clicks
      valueType: example/Click
      targets: [example/clicker]
---
kind: io.statefun.kafka.v1/egress
spec:
  id: example/greets
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 15min
"""


def write(tmp_path, text: str, name: str = "module.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def error_of(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_module(write(tmp_path, text))
    return str(caught.value)


def test_a_full_component_module_is_read(tmp_path) -> None:
    config = load_module(write(tmp_path, GOOD))
    wildcard, exact = config.endpoints
    assert (wildcard.max_batch, wildcard.call_timeout_s, wildcard.connect_timeout_s) == (
        50,
        120.0,
        5.0,
    )
    assert (exact.max_batch, exact.call_timeout_s, exact.connect_timeout_s) == (1000, 30.0, 10.0)
    assert config.endpoint_for("example/greeter") is wildcard
    assert config.endpoint_for("other/exact") is exact
    assert config.endpoint_for("other/missing") is None
    assert wildcard.url_for("example/greeter") == "http://functions:8000/greeter"
    names = config.ingresses["example/names"]
    assert names.kind == KAFKA_INGRESS
    assert names.routes[0].value_type == "type.googleapis.com/example.GreetRequest"
    assert names.routes[0].targets == ("example/greeter", "other/exact")
    assert config.ingresses["example/clicks"].kind == KINESIS_INGRESS
    assert config.egresses["example/greets"].kind == KAFKA_EGRESS
    # Exactly-once is accepted and warned about: the local runtime writes egress at-least-once.
    (warning,) = config.warnings
    assert "egress example/greets asks for exactly-once delivery" in warning
    assert "at-least-once" in warning


def test_transport_defaults_follow_the_async_client(tmp_path) -> None:
    config = load_module(
        write(
            tmp_path,
            """\
        kind: io.statefun.endpoints.v2/http
        spec:
          functions: a/b
          urlPathTemplate: http://h/{function.name}
        ---
        kind: io.statefun.endpoints.v2/http
        spec:
          functions: a/c
          urlPathTemplate: http://h/{function.name}
          transport:
            call: 1min
            timeouts: {call: 7s}
        """,
        )
    )
    assert [(e.call_timeout_s, e.connect_timeout_s) for e in config.endpoints] == [
        (120.0, 20.0),
        (7.0, 10.0),
    ]


def test_legacy_version_3_0_is_converted(tmp_path) -> None:
    config = load_module(
        write(
            tmp_path,
            """\
        version: "3.0"
        module:
          meta:
            type: remote
          spec:
            endpoints:
              - endpoint:
                  meta:
                    kind: http
                  spec:
                    functions: example/*
                    urlPathTemplate: http://functions:8000/statefun
                    timeouts: {call: 1 min}
            ingresses:
              - ingress:
                  meta:
                    type: io.statefun.kafka/ingress
                    id: example/names
                  spec:
                    address: kafka:9092
                    topics:
                      - topic: names
                        valueType: example/Name
                        targets: [example/greeter]
            egresses:
              - egress:
                  meta:
                    type: io.statefun.kafka/egress
                    id: example/greets
                  spec:
                    address: kafka:9092
        """,
        )
    )
    assert config.endpoints[0].call_timeout_s == 60.0
    assert config.ingresses["example/names"].routes[0].targets == ("example/greeter",)
    assert list(config.egresses) == ["example/greets"]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "kind: io.statefun.endpoints.v3/http\nspec: {}\n",
            "module.yaml:1: document 1, key 'kind': unknown kind 'io.statefun.endpoints.v3/http'",
        ),
        (
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n",
            "module.yaml:3: document 1, key 'spec.urlPathTemplate': required key is missing",
        ),
        (
            "kind: io.statefun.endpoints.v2/http\n",
            "document 1, key 'spec': required key is missing",
        ),
        (
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://h/x\n"
            "  transport:\n    call: 10 parsecs\n",
            "module.yaml:6: document 1, key 'spec.transport.call': bad duration: '10 parsecs' has an unknown time unit 'parsecs'",
        ),
        (
            "kind: io.statefun.endpoints.v1/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://h/x\n"
            "  timeouts: {call: 5s, read: 10s}\n",
            "key 'spec.timeouts.read': must not be longer than the call timeout",
        ),
        (
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://h/x\n"
            "  transport: {call: 0s}\n",
            "key 'spec.transport.call': a timeout must be greater than zero",
        ),
        (
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/b*\n  urlPathTemplate: http://h/x\n",
            "key 'spec.functions': a wildcard must be the whole name",
        ),
        (
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/b\n  urlPathTemplate: h:80/x\n",
            "key 'spec.urlPathTemplate': the local runtime calls http:// or https:// endpoints",
        ),
        (
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://h/x\n---\n"
            "kind: io.statefun.kafka.v1/ingress\nspec:\n  id: a/in\n  topics: []\n",
            "module.yaml:9: document 2, key 'spec.topics': the list must not be empty",
        ),
        (
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://h/x\n---\n"
            "kind: io.statefun.kafka.v1/ingress\nspec:\n  id: a/in\n  topics:\n    - topic: t\n      targets: [a/f]\n",
            "module.yaml:10: document 2, key 'spec.topics[0].valueType': required key is missing",
        ),
        (
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: http://h/x\n---\n"
            "kind: io.statefun.kafka.v1/ingress\nspec:\n  id: a/in\n  topics:\n    - topic: t\n      valueType: x/y\n"
            "      targets: [a/f, b/g]\n",
            "document 2, key 'spec.topics[0].targets[1]': no endpoint in this module serves function type 'b/g'",
        ),
        (
            "kind: io.statefun.kafka.v1/egress\nspec:\n  id: a/out\n  deliverySemantic: {type: exactly-once}\n",
            "key 'spec.deliverySemantic.transactionTimeout': exactly-once needs a transactionTimeout",
        ),
        (
            "kind: io.statefun.endpoints.v2/http\nspec: [1, 2]\n",
            "key 'spec': expected a mapping, got a list",
        ),
        (
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n   bad: indent\n",
            "module.yaml:4: document 1: not valid YAML",
        ),
        ('version: "2.0"\nmodule: {}\n', "key 'version': format version '2.0' is not served"),
        (
            "kind: io.statefun.kafka.v1/egress\nspec: {id: a/out}\n",
            "no function endpoint (io.statefun.endpoints.v2/http) is defined",
        ),
    ],
)
def test_bad_modules_name_file_document_and_key(tmp_path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text)
    assert expected in message
    assert message.startswith(str(tmp_path / "module.yaml"))


def test_unknown_keys_are_warnings_that_name_the_key(tmp_path) -> None:
    config = load_module(
        write(
            tmp_path,
            """\
        kind: io.statefun.endpoints.v2/http
        spec:
          functions: a/*
          urlPathTemplate: http://h/x
          maxNumBatchRequest: 10
        """,
        )
    )
    assert len(config.warnings) == 1
    assert (
        "module.yaml:5: document 1: key 'spec.maxNumBatchRequest' is not a known key"
        in config.warnings[0]
    )


@pytest.mark.parametrize(
    "raw, millis",
    [
        ("10s", 10_000),
        ("10 s", 10_000),
        ("2min", 120_000),
        ("2m", 120_000),
        ("1 h", 3_600_000),
        ("1d", 86_400_000),
        ("500", 500),
        (250, 250),
        ("3 SECONDS", 3_000),
        ("7ms", 7),
        ("1500µs", 1.5),
        ("2000000ns", 2),
    ],
)
def test_durations_parse_like_flink(raw: object, millis: float) -> None:
    assert parse_duration_ms(raw) == pytest.approx(millis)


@pytest.mark.parametrize("raw", ["", "s", "1.5s", "-1s", "10 fortnights", True, None, [1]])
def test_bad_durations_are_rejected(raw: object) -> None:
    with pytest.raises(DurationError):
        parse_duration_ms(raw)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_check_reports_an_unreachable_endpoint(tmp_path, capsys) -> None:
    port = _free_port()
    path = write(
        tmp_path,
        f"""\
        kind: io.statefun.endpoints.v2/http
        spec:
          functions: a/*
          urlPathTemplate: http://127.0.0.1:{port}/{{function.name}}
        """,
    )
    assert main(["check", path]) == 2
    error = capsys.readouterr().err
    assert (
        f"{path}:4: document 1, key 'spec.urlPathTemplate': endpoint http://127.0.0.1:{port}/"
        in error
    )
    assert "is unreachable" in error
    assert main(["check", "--no-endpoint-check", path]) == 0


def test_the_cli_reports_bad_input_without_a_traceback(tmp_path) -> None:
    path = write(tmp_path, "kind: io.statefun.kafka.v2/ingress\nspec: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "statefun.local", path, "--db", ":memory:"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"statefun-local: error: {path}:1: document 1, key 'kind': unknown kind" in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "statefun.local", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert missing.returncode == 2 and "can not read module file" in missing.stderr


BAD_MODULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad_modules")


@pytest.mark.parametrize(
    "case", sorted(name[:-5] for name in os.listdir(BAD_MODULES) if name.endswith(".yaml"))
)
def test_the_bad_module_corpus(tmp_path, case: str) -> None:
    with open(os.path.join(BAD_MODULES, f"{case}.yaml")) as handle:
        text = handle.read()
    with open(os.path.join(BAD_MODULES, f"{case}.expected")) as handle:
        expected = handle.read().strip()
    path = tmp_path / "module.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_module(str(path))
    message = str(caught.value)
    assert message.startswith(str(tmp_path) + "/") and "\n" not in message
    assert expected in message, message


def test_the_playground_kinds_are_read(tmp_path) -> None:
    config = load_module(
        write(
            tmp_path,
            """\
        kind: io.statefun.endpoints.v2/http
        spec:
          functions: greeter.fns/*
          urlPathTemplate: http://localhost:1108/
        ---
        kind: io.statefun.playground.v1/ingress
        spec:
          port: 8090
        ---
        kind: io.statefun.playground.v1/egress
        spec:
          port: 8091
          topics: [greetings, greetings, other]
          extra: 1
        """,
        )
    )
    assert config.playground_ingress is not None and config.playground_ingress.port == 8090
    assert config.playground_egress is not None
    assert (config.playground_egress.port, config.playground_egress.topics) == (
        8091,
        ("greetings", "other"),
    )
    assert list(config.ingresses) == ["io.statefun.playground/ingress"]
    assert list(config.egresses) == ["io.statefun.playground/egress"]
    (warning,) = config.warnings
    assert "key 'spec.extra' is not a known key of io.statefun.playground.v1/egress" in warning


def test_endpoint_overrides(tmp_path) -> None:
    from statefun.local.config import override_endpoints

    config = load_module(write(tmp_path, GOOD))
    urls = lambda overrides: {  # noqa: E731
        e.functions: e.url_path_template for e in override_endpoints(config, overrides).endpoints
    }
    assert urls(["example/*=http://127.0.0.1:8000/statefun"]) == {
        "example/*": "http://127.0.0.1:8000/statefun",
        "other/exact": "https://other:9000/statefun",
    }
    # '*' is every endpoint; HOST:PORT keeps scheme and path; a URL without a path keeps it too.
    assert urls(["*=127.0.0.1:9"]) == {
        "example/*": "http://127.0.0.1:9/{function.name}",
        "other/exact": "https://127.0.0.1:9/statefun",
    }
    assert urls(["other/*=http://10.0.0.1:1"])["other/exact"] == "http://10.0.0.1:1/statefun"
    # One function of a wildcard endpoint gets an endpoint of its own, with the same settings.
    split = override_endpoints(config, ["example/greeter=http://127.0.0.1:7/fn"])
    assert split.endpoint_for("example/greeter").url_path_template == "http://127.0.0.1:7/fn"  # type: ignore[union-attr]
    assert split.endpoint_for("example/other").url_path_template == "http://functions:8000/{function.name}"  # type: ignore[union-attr]
    assert split.endpoint_for("example/greeter").max_batch == 50  # type: ignore[union-attr]
    assert split.endpoint_for("example/greeter").overridden_by == "--endpoint 'example/greeter=http://127.0.0.1:7/fn'"  # type: ignore[union-attr]
    for bad, problem in [
        ("nope/*=http://h:1", "no endpoint serves 'nope/*'; the module has example/*, other/exact"),
        ("example/*=ftp://h/x", "calls http:// or https:// endpoints"),
        ("example/*=h/x", "expected a URL (http://HOST:PORT/path) or HOST:PORT"),
        ("example=http://h:1", "PATTERN must be '*', 'namespace/*' or 'namespace/name'"),
        ("example/*=http://h:99999/x", "Port out of range"),
        ("example/*", "expected PATTERN=URL"),
    ]:
        with pytest.raises(ConfigError, match=None) as caught:
            override_endpoints(config, [bad])
        assert str(caught.value).startswith(f"--endpoint {bad!r}: ") and problem in str(
            caught.value
        ), caught.value
