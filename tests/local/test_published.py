"""A published application run unchanged: its module.yaml names docker hosts, its input file
holds a producer's raw JSON values (tests/local/published/, our re-creation of one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Iterator

import pytest

from local_support import spawn_server, stop

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PUBLISHED = os.path.join(HERE, "published")
MODULE = os.path.join(PUBLISHED, "greeter", "module.yaml")
INPUT = os.path.join(PUBLISHED, "greeter", "input-example.json")


@pytest.fixture(scope="module")
def functions_port() -> Iterator[int]:
    server, port = spawn_server(os.path.join(PUBLISHED, "functions.py"))
    try:
        yield port
    finally:
        stop(server)


def run_published(
    port: int, source: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The published greeter, its endpoint pointed at `port`, raw JSON lines from `source`."""
    endpoint = f"example/*=http://127.0.0.1:{port}/statefun"
    return local(
        MODULE,
        "--db",
        ":memory:",
        "--endpoint",
        endpoint,
        "--key-field",
        "name",
        "--input",
        source,
        stdin=stdin,
    )


def local(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statefun.local", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


def test_the_published_greeter_runs_with_endpoint_and_key_field(functions_port: int) -> None:
    result = run_published(functions_port, INPUT)
    assert result.returncode == 0, result.stderr
    greetings = [json.loads(line) for line in result.stdout.splitlines()]
    by_name: dict[str, list[str]] = {}
    for record in greetings:
        assert (record["egress"], record["topic"]) == ("example/greets", "greetings")
        by_name.setdefault(str(record["key"]), []).append(str(record["value"]))
    assert by_name == {
        "Bob": [
            "Welcome Bob",
            "Nice to see you again Bob",
            "Third time is a charm Bob",
            "Nice to see you at the 4-nth time Bob!",
        ],
        "Joe": ["Welcome Joe"],
    }
    # The module asks for exactly-once; the local runtime says what it gives instead.
    assert "egress example/greets asks for exactly-once delivery" in result.stderr
    assert "at-least-once" in result.stderr


def test_docker_hosts_are_named_with_the_way_out(functions_port: int) -> None:
    unchanged = local("check", MODULE)
    assert unchanged.returncode == 2
    (error,) = [line for line in unchanged.stderr.splitlines() if "error:" in line]
    assert "the host 'functions' is not known here" in error
    assert "--endpoint" in error and "example/*=http://127.0.0.1:8000/statefun" in error
    # HOST:PORT alone keeps the module's scheme and path.
    checked = local("check", MODULE, "--endpoint", f"*=127.0.0.1:{functions_port}")
    assert checked.returncode == 0, checked.stderr
    assert "ok" in checked.stdout


def test_skipped_raw_lines_are_counted_and_fail_the_run(functions_port: int, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = tmp_path / "names.json"
    lines.write_text(
        '{"name": "Ann"}\nnot json\n{"last": "no name"}\n{"name": 7}\n{"name": "Ann"}\n'
    )
    result = run_published(functions_port, str(lines))
    assert result.returncode == 3, result.stderr
    assert [json.loads(line)["value"] for line in result.stdout.splitlines()] == [
        "Welcome Ann",
        "Nice to see you again Ann",
    ]
    assert f"{lines}:2: record skipped: not JSON" in result.stderr
    assert (
        f"{lines}:3: record skipped: --key-field name: the key must be a non-empty string, it is missing"
        in result.stderr
    )
    assert (
        f"{lines}:4: record skipped: --key-field name: the key must be a non-empty string, it is int 7"
        in result.stderr
    )
    assert "3 input record(s) were skipped" in result.stderr
    # Everything skipped is a failed run too, and stdin takes raw lines the same way.
    bad = run_published(functions_port, "-", stdin="[1]\n")
    assert (
        bad.returncode == 3
        and "<stdin>:1: record skipped: --key-field name: the line is not a JSON object"
        in bad.stderr
    )
