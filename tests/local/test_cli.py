"""The `statefun-local` command on JSON-lines input, against a greeter process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from typing import Iterator

import pytest

from local_support import JSON_GREETER, JSON_GREETER_MODULE, spawn_server, stop
from statefun.local.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = JSON_GREETER_MODULE.replace("{max_batch}", "1000")


@pytest.fixture(scope="module")
def greeter_port() -> Iterator[int]:
    server, port = spawn_server(JSON_GREETER)
    try:
        yield port
    finally:
        stop(server)


def test_a_run_reads_the_file_writes_egress_and_resumes_where_it_stopped(tmp_path, greeter_port, capsys) -> None:  # type: ignore[no-untyped-def]
    module = tmp_path / "module.yaml"
    module.write_text(MODULE.format(port=greeter_port))
    names = tmp_path / "names.jsonl"
    names.write_text(
        '{"key": "Ann", "value": {"name": "Ann"}}\n{"key": "Ann", "value": 5\n'
        '{"key": "Bo", "value": {"name": "Bo"}}\n'
    )
    db = str(tmp_path / "state.db")
    # A run that had to skip a record says how many and ends with exit code 3.
    assert main([str(module), "--db", db, "--input", str(names)]) == 3
    captured = capsys.readouterr()
    greetings = [json.loads(line) for line in captured.out.splitlines()]
    assert [
        (g["egress"], g["topic"], g["key"], json.loads(g["value"])["seen"]) for g in greetings
    ] == [("example/greets", "greetings", "Ann", 1), ("example/greets", "greetings", "Bo", 1)]
    assert f"{names}:2: record skipped: not a JSON object" in captured.err
    assert "1 input record(s) were skipped" in captured.err

    # A second run over the grown file processes only the new line, with the stored state.
    with open(names, "a") as handle:
        handle.write('{"key": "Ann", "value": {"name": "Ann"}}\n')
    out_dir = tmp_path / "egress"
    assert main([str(module), "--db", db, "--input", str(names), "--egress-dir", str(out_dir)]) == 0
    assert "skipped" not in capsys.readouterr().err
    written = (out_dir / "example.greets.jsonl").read_text().splitlines()
    assert [json.loads(json.loads(line)["value"])["seen"] for line in written] == [2]


def test_option_errors_are_clear(tmp_path, greeter_port, capsys) -> None:  # type: ignore[no-untyped-def]
    module = tmp_path / "module.yaml"
    module.write_text(MODULE.format(port=greeter_port))
    assert main([str(module), "--db", ":memory:", "--input", str(tmp_path / "missing.jsonl")]) == 2
    assert "--input" in capsys.readouterr().err
    assert main([str(module), "--db", ":memory:", "--egress", "example/nope=x.jsonl"]) == 2
    assert "the module defines no egress 'example/nope'" in capsys.readouterr().err
    assert (
        main([str(module), "--db", ":memory:", "--egress-type", "example/greets=no.such.Message"])
        == 2
    )
    assert "protobuf message 'no.such.Message' is not known" in capsys.readouterr().err
    # ID:TOPIC names a topic of an egress the module defines; anything else is no egress.
    for key in ["example/nope:greetings", "example/greets:", "example/greets/greetings"]:
        assert main([str(module), "--db", ":memory:", "--egress-type", f"{key}=x.Y"]) == 2
        assert f"the module defines no egress {key!r}" in capsys.readouterr().err
    assert main([str(module), "--db", ":memory:", "--egress-type", "example/greets:t=x.Y"]) == 2
    assert "protobuf message 'x.Y' is not known" in capsys.readouterr().err
    assert main([str(module), "--db", ":memory:", "--proto-module", "no_such_module_pb2"]) == 2
    assert "--proto-module no_such_module_pb2: can not import it" in capsys.readouterr().err


def test_records_can_come_from_stdin(tmp_path, greeter_port) -> None:  # type: ignore[no-untyped-def]
    """stdin as a pipe (read through tee), as a redirected file, and as a device."""
    (tmp_path / "module.yaml").write_text(MODULE.format(port=greeter_port))
    records = "".join(
        json.dumps({"key": name, "value": {"name": name}}) + "\n" for name in ["A", "B", "A"]
    )
    (tmp_path / "records.jsonl").write_text(records)
    command = [sys.executable, "-m", "statefun.local", "module.yaml", "--db", ":memory:"]
    with open(tmp_path / "records.jsonl") as redirected:
        for stdin in (None, redirected):
            result = subprocess.run(
                [*command, "--input", "-"],
                input=records if stdin is None else None,
                stdin=stdin,
                capture_output=True,
                text=True,
                timeout=60,
                cwd=tmp_path,
            )
            assert result.returncode == 0, result.stderr
            greetings = [
                json.loads(json.loads(line)["value"]) for line in result.stdout.splitlines()
            ]
            assert sorted((g["name"], g["seen"]) for g in greetings) == [
                ("A", 1),
                ("A", 2),
                ("B", 1),
            ]
    empty = subprocess.run(
        [*command, "--input", "-"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert empty.returncode == 0 and "done: 0 messages processed" in empty.stderr


def test_a_failing_function_stops_the_run_and_its_messages_wait(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The JSON greeter fails (HTTP 500) on a value that is not JSON; --call-timeout bounds the
    retries, the run exits 1, and the message is still in the inbox for the next run."""
    server = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "bench", "local_greeter_server.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        module = tmp_path / "module.yaml"
        module.write_text(MODULE.format(port=int(server.stdout.readline())))
        names = tmp_path / "names.jsonl"
        names.write_text('{"key": "Ann", "value": "not json"}\n')
        db = str(tmp_path / "state.db")
        command = [str(module), "--db", db, "--input", str(names), "--call-timeout", "500ms"]
        assert main(command) == 1
        err = capsys.readouterr().err
        assert "HTTP 500" in err and "within the call timeout of 0.5 s" in err
        assert f"1 message(s) wait in {db}" in err
        assert main([*command[:-2], "--call-timeout", "soon"]) == 2
        assert "--call-timeout 'soon'" in capsys.readouterr().err
    finally:
        server.kill()
        server.wait(timeout=10)


def test_a_rewritten_input_file_is_read_from_the_start(tmp_path, greeter_port, capsys) -> None:  # type: ignore[no-untyped-def]
    module = tmp_path / "module.yaml"
    module.write_text(MODULE.format(port=greeter_port))
    names = tmp_path / "names.jsonl"
    names.write_text(
        '{"key": "Ann", "value": {"name": "Ann"}}\n{"key": "Bo", "value": {"name": "Bo"}}\n'
    )
    db = str(tmp_path / "state.db")
    assert main([str(module), "--db", db, "--input", str(names)]) == 0
    capsys.readouterr()
    # Rewritten with new content, not appended to: byte offsets from the last run mean nothing.
    names.write_text(
        '{"key": "Cy", "value": {"name": "Cy"}}\n{"key": "Ann", "value": {"name": "Ann"}}\n'
    )
    assert main([str(module), "--db", db, "--input", str(names)]) == 0
    captured = capsys.readouterr()
    assert "is not the file read up to byte" in captured.err
    seen = [
        (json.loads(line)["key"], json.loads(json.loads(line)["value"])["seen"])
        for line in captured.out.splitlines()
    ]
    assert sorted(seen) == [("Ann", 2), ("Cy", 1)]


def _greeter_package_copy(tmp_path, port: int):  # type: ignore[no-untyped-def]
    """examples/greeter copied to tmp_path/examples/greeter, its module.yaml pointing at `port`."""
    package = tmp_path / "examples" / "greeter"
    shutil.copytree(
        os.path.join(ROOT, "examples", "greeter"),
        package,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    module = package / "module.yaml"
    module.write_text(module.read_text().replace("localhost:8000", f"127.0.0.1:{port}"))
    return module


def test_the_pb2_modules_of_the_package_holding_module_yaml_are_found(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The greeter's generated module.yaml and messages_pb2, without --proto-module: JSON
    ingress values become GreetRequest bytes, so the real greeter greets by name."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "examples.greeter", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        module = _greeter_package_copy(tmp_path, port)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        # From the directory holding examples/ (as in the README) the package is named through
        # it; from anywhere else its parent directory is put on sys.path.
        for cwd, path, name in [
            (tmp_path, "examples/greeter/module.yaml", "examples.greeter.generated.messages_pb2"),
            (elsewhere, str(module), "greeter.generated.messages_pb2"),
        ]:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "statefun.local",
                    path,
                    "--input",
                    "-",
                    "--db",
                    ":memory:",
                    "--egress-type",
                    "example/greets=example.GreetResponse",
                    "--wait-for-endpoints",
                    "20",
                ],
                input='{"key": "Alice", "value": {"name": "Alice"}}\n',
                capture_output=True,
                text=True,
                timeout=60,
                cwd=cwd,
            )
            assert result.returncode == 0, result.stderr
            assert f"statefun-local: protobuf modules loaded: {name}\n" in result.stderr
            # The generated module asks for exactly-once Kafka egress; that is the only warning.
            warnings = [line for line in result.stderr.splitlines() if "warning" in line]
            assert len(warnings) == 1 and "asks for exactly-once delivery" in warnings[0]
            assert [json.loads(line) for line in result.stdout.splitlines()] == [
                {
                    "egress": "example/greets",
                    "topic": "greetings",
                    "key": "Alice",
                    "value": {"name": "Alice", "greeting": "Welcome Alice"},
                }
            ]
    finally:
        server.kill()
        server.wait(timeout=10)


def test_a_pb2_module_that_fails_to_import_is_a_warning(tmp_path, greeter_port) -> None:  # type: ignore[no-untyped-def]
    package = tmp_path / "functions"
    (package / "generated").mkdir(parents=True)
    (package / "not_a_package").mkdir()
    (package / "__init__.py").write_text("")
    (package / "generated" / "__init__.py").write_text("")
    (package / "generated" / "broken_pb2.py").write_text("raise RuntimeError('boom')\n")
    marker = tmp_path / "executed"
    # Neither a module not named *_pb2.py nor a _pb2 outside the packages is executed.
    for path in [package / "generated" / "helper.py", package / "not_a_package" / "other_pb2.py"]:
        path.write_text(f"open({str(marker)!r}, 'a').write({path.name!r})\n")
    (package / "module.yaml").write_text(MODULE.format(port=greeter_port))
    command = [sys.executable, "-m", "statefun.local", "functions/module.yaml", "--db", ":memory:"]
    records = '{"key": "Ann", "value": "{\\"name\\": \\"Ann\\"}"}\n'
    result = subprocess.run(
        [*command, "--input", "-"],
        input=records,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    broken = package / "generated" / "broken_pb2.py"
    assert (
        f"statefun-local: warning: {broken}: not loaded: importing "
        "functions.generated.broken_pb2 failed: RuntimeError: boom\n"
    ) in result.stderr
    assert "protobuf modules loaded" not in result.stderr
    assert [json.loads(json.loads(line)["value"]) for line in result.stdout.splitlines()] == [
        {"name": "Ann", "seen": 1, "greeting": "Hello Ann #1"}
    ]
    assert not marker.exists()

    # --proto-module is an explicit override: nothing is discovered then.
    result = subprocess.run(
        [*command, "--input", "-", "--proto-module", "statefun.types_pb2"],
        input=records,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "broken_pb2" not in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _delaying(delay_ms: int):  # type: ignore[no-untyped-def]
    """A function that answers each message with a delayed one to example/greeter."""
    from aiohttp import web

    from local_support import reply
    from statefun import request_reply_pb2 as pb

    async def handle(request: pb.ToFunction.InvocationBatchRequest) -> web.StreamResponse:
        response = pb.FromFunction()
        for invocation in request.invocations:
            response.invocation_result.delayed_invocations.add(
                delay_in_ms=delay_ms,
                target=pb.Address(namespace="example", type="greeter", id=request.target.id),
                argument=invocation.argument,
            )
        return reply(response)

    return handle


def test_a_run_kept_alive_by_timers_says_so_and_until_idle_ends_it(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from local_support import ThreadedFunctions, greeter_handler, write_module

    names = tmp_path / "names.jsonl"
    names.write_text('{"key": "Ann", "value": "Ann"}\n')
    with ThreadedFunctions({"scheduler": _delaying(1500), "greeter": greeter_handler()}) as fake:
        module = write_module(str(tmp_path), fake.port, targets="[example/scheduler]")
        started = time.monotonic()
        assert main([module, "--db", ":memory:", "--input", str(names)]) == 0
        captured = capsys.readouterr()
        assert time.monotonic() - started > 1.2  # it waited for the timer
        assert re.search(
            r"input done; waiting only for 1 delayed message\(s\), the next fires at "
            r"\d\d:\d\d:\d\d \(in [01] s\)",
            captured.err,
        ), captured.err
        assert json.loads(captured.out)["key"] == "Ann"  # and the timer's message was greeted

        db = str(tmp_path / "state.db")
        assert main([module, "--db", db, "--input", str(names), "--until-idle"]) == 0
        err = capsys.readouterr().err
        assert f"1 delayed message(s) pending (the next due at " in err
        assert f"they stay in {db} for the next run" in err
    with sqlite3.connect(db) as stored:
        assert stored.execute("SELECT COUNT(*) FROM timers").fetchone()[0] == 1


def test_the_same_input_twice_is_read_once(tmp_path, greeter_port, capsys) -> None:  # type: ignore[no-untyped-def]
    module = tmp_path / "module.yaml"
    module.write_text(MODULE.format(port=greeter_port))
    names = tmp_path / "names.jsonl"
    names.write_text('{"key": "Ann", "value": {"name": "Ann"}}\n')
    command = [str(module), "--db", ":memory:", "--input", str(names)]
    assert main([*command, "--input", os.path.join(str(tmp_path), ".", "names.jsonl")]) == 0
    captured = capsys.readouterr()
    assert "is given more than once; it is read once" in captured.err
    assert len(captured.out.splitlines()) == 1


@pytest.mark.parametrize(
    "extra, problem",
    [
        (
            ["--endpoint", "nope/*=http://127.0.0.1:1/x"],
            "--endpoint 'nope/*=http://127.0.0.1:1/x': no endpoint serves 'nope/*'",
        ),
        (["--endpoint", "example/*"], "expected PATTERN=URL"),
        (["--topic", "names"], "--topic goes with --key-field"),
        (
            ["--key-field", "name", "--topic", "other"],
            "--topic 'other': no ingress has it; topics/streams: names",
        ),
        (["--until-idle", "--follow"], "--until-idle ends a run once its input is processed"),
        (["--max-backlog", "0"], "--max-backlog must be at least 1"),
        (["--db", "{tmp}/no/such/dir/state.db"], "check that its directory exists"),
        (["--db", "{tmp}/module.yaml"], "is not a SQLite database"),
    ],
)
def test_more_option_errors_are_one_line(tmp_path, greeter_port, capsys, extra: list[str], problem: str) -> None:  # type: ignore[no-untyped-def]
    module = tmp_path / "module.yaml"
    module.write_text(MODULE.format(port=greeter_port))
    options = [part.replace("{tmp}", str(tmp_path)) for part in extra]
    if "--db" not in options:
        options += ["--db", ":memory:"]
    assert main([str(module), *options]) == 2
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert line.startswith("statefun-local: error: ") and problem in line, line
