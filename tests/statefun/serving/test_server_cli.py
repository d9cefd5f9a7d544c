"""The ``statefun-serve`` command: targets, one-line errors, SIGTERM drain, the worker supervisor."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import typing
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from server_harness import Client, exchange, post, request, sent_strings  # noqa: E402

from statefun.serving import cli  # noqa: E402

SERVICE = """
import asyncio, os
from statefun import StatefulFunctions, RequestReplyHandler, message_builder

functions = StatefulFunctions()

@functions.bind("test/greeter")
def greeter(context, message):
    context.send(message_builder(target_typename="test/inbox", target_id="x",
                                 str_value=f"Hello {message.as_string()} from {os.getpid()}"))

@functions.bind("test/sleeper")
async def sleeper(context, message):
    await asyncio.sleep(message.as_int() / 1000)
    context.send(message_builder(target_typename="test/inbox", target_id="x", str_value="slept"))

handler = RequestReplyHandler(functions)

def make_handler():
    return handler

def make_functions():
    return functions

not_a_handler = 42

def returns_a_number():
    return 7

def fails():
    raise RuntimeError("no database today")

async def async_factory():
    return handler

class Holder:
    handler = handler
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding service module ``svc_<n>`` (unique: modules are imported in-process)."""
    name = f"svc_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(SERVICE)
    (tmp_path / "broken_syntax.py").write_text("def broken(:\n")
    (tmp_path / "broken_import.py").write_text("import a_dependency_nobody_installed\n")
    (tmp_path / "broken_runtime.py").write_text("x = 1\nvalue = 1 / 0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    return tmp_path / f"{name}.py"


@pytest.mark.parametrize(
    "attr", ["handler", "make_handler", "functions", "make_functions", "Holder.handler"]
)
def test_targets_a_handler_a_registry_or_a_factory(project: Path, attr: str) -> None:
    handler = cli.load_target(f"{project.stem}:{attr}")
    body = request("greeter", name="Ann")
    assert sent_strings(handler.handle_sync(body))[0].startswith("Hello Ann from ")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no_colon", r"'no_colon' is not module:attribute \(for example myapp.functions:handler\)"),
        ("mod:", r"'mod:' is not module:attribute .*"),
        ("bad-name:x", r"'bad-name:x' is not module:attribute .*"),
        (
            "nowhere_module:x",
            r"cannot import module 'nowhere_module': no module named 'nowhere_module' \(looked in the current directory .* and on sys.path\)",
        ),
        ("{svc}:missing", r"module '{svc}' has no attribute 'missing'"),
        ("{svc}:Holder.missing", r"{svc}:Holder has no attribute 'missing'"),
        (
            "{svc}:not_a_handler",
            r"{svc}:not_a_handler is int; expected a StatefulFunctions, a RequestReplyHandler, or a function returning one",
        ),
        (
            "{svc}:returns_a_number",
            r"{svc}:returns_a_number\(\) returned int; expected a StatefulFunctions or a RequestReplyHandler",
        ),
        (
            "{svc}:fails",
            r"calling {svc}:fails\(\) failed: RuntimeError: no database today \(at .*{svc}.py:\d+\)",
        ),
        ("{svc}:async_factory", r"{svc}:async_factory is an async function; .*"),
        (
            "broken_syntax:x",
            r"importing 'broken_syntax' failed: SyntaxError: .* \(at .*broken_syntax.py:1:\d+\)",
        ),
        (
            "broken_import:x",
            r"importing 'broken_import' failed: ModuleNotFoundError: No module named 'a_dependency_nobody_installed' \(at .*broken_import.py:1\)",
        ),
        (
            "broken_runtime:x",
            r"importing 'broken_runtime' failed: ZeroDivisionError: division by zero \(at .*broken_runtime.py:2\)",
        ),
    ],
)
def test_bad_targets_are_one_line_errors(
    project: Path, spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = spec.format(svc=project.stem)
    with pytest.raises(SystemExit) as exited:
        cli.main([spec])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.fullmatch(f"statefun-serve: error: {message.format(svc=project.stem)}\n", err), err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--port", "70000"], "not a port number"),
        (["--workers", "0"], "must be positive"),
        (["--max-request-bytes", "lots"], "not a size"),
        (["--path", "statefun"], "path must be an absolute path"),
        (["--header-timeout", "-1"], "must be positive"),
    ],
)
def test_bad_options_are_usage_errors(
    project: Path, arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([*arguments, f"{project.stem}:handler"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_sizes_take_units() -> None:
    assert cli._size("1000") == 1000
    assert cli._size("64KiB") == 64 * 1024
    assert cli._size("32M") == 32 * 1024 * 1024


class Served:
    """``statefun-serve`` in a subprocess; its stderr lines collected as they come."""

    def __init__(self, cwd: Path, *arguments: str, command: list[str] | None = None) -> None:
        self.port = _free_port()
        base = command or [sys.executable, "-m", "statefun.serving"]
        self.process = subprocess.Popen(
            [*base, "--port", str(self.port), *arguments],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, pattern: str, timeout: float = 20, after: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines[after:]:
                found = re.search(pattern, line)
                if found:
                    return found
            assert self.process.poll() is None or time.monotonic() < deadline, self.lines
            assert time.monotonic() < deadline, f"no line matching {pattern!r}: {self.lines}"
            time.sleep(0.02)

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = exchange(self.port, b"GET /health HTTP/1.1\r\n\r\n", timeout=2)
                if response is not None and response.status == 200:
                    return
            except OSError:
                pass
            assert self.process.poll() is None, self.lines
            assert time.monotonic() < deadline, self.lines
            time.sleep(0.05)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        return code


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_console_script_serves_from_the_current_directory_and_drains_on_sigterm(
    project: Path,
) -> None:
    script = Path(sys.executable).with_name("statefun-serve")
    command = [str(script)] if script.exists() else None
    served = Served(
        project.parent, "--graceful-timeout", "5", f"{project.stem}:make_handler", command=command
    )
    try:
        served.wait_ready()
        served.wait_for_line(
            rf"serving {project.stem}:make_handler on http://127.0.0.1:{served.port}/statefun"
        )
        response = exchange(served.port, post(request("greeter", name="Cy")))
        assert response is not None and sent_strings(response.body)[0].startswith("Hello Cy from ")
        # A slow request in flight when SIGTERM arrives still gets its answer.
        client = Client(served.port)
        client.send(post(request("sleeper", delay_ms=700)))
        time.sleep(0.2)
        served.process.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection(("127.0.0.1", served.port), timeout=1).close()
        response = client.response()
        assert response is not None and response.status == 200
        assert sent_strings(response.body) == ["slept"]
        assert response.headers["connection"] == "close"
        client.close()
        assert served.process.wait(timeout=10) == 0
        assert any(line.endswith("stopped") for line in served.lines)
    finally:
        served.stop()


def test_a_port_in_use_is_a_one_line_error(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for workers in ("1", "2"):
            completed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "statefun.serving",
                    "--port",
                    str(port),
                    "--workers",
                    workers,
                    f"{project.stem}:handler",
                ],
                cwd=project.parent,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert completed.returncode == 1
            assert completed.stderr == (
                f"statefun-serve: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
            )


def _serving_pids(port: int, until: set[int]) -> set[int]:
    """The pids of the workers that answered, one request per connection, until ``until`` did."""
    pids: set[int] = set()
    for attempt in range(60):
        response = exchange(port, post(request("greeter", name="Di")))
        assert response is not None and response.status == 200
        pids.add(int(sent_strings(response.body)[0].rsplit(" ", 1)[1]))
        if until <= pids:
            break
    return pids


def test_the_supervisor_restarts_a_dead_worker_and_drains_them_all(project: Path) -> None:
    served = Served(project.parent, "--workers", "2", f"{project.stem}:handler")
    try:
        served.wait_ready()
        first = int(served.wait_for_line(r"worker 1 started \(pid (\d+)\)").group(1))
        second = int(served.wait_for_line(r"worker 2 started \(pid (\d+)\)").group(1))
        for pid in (first, second):
            served.wait_for_line(rf" {pid} INFO worker listening")
        # Connections are spread over both workers' sockets (SO_REUSEPORT).
        assert _serving_pids(served.port, until={first, second}) == {first, second}
        os.kill(first, signal.SIGKILL)
        served.wait_for_line(rf"worker 1 \(pid {first}\) was killed by SIGKILL; restarting it")
        replacement = int(
            served.wait_for_line(rf"worker 1 started \(pid (?!{first}\))(\d+)\)").group(1)
        )
        served.wait_for_line(rf" {replacement} INFO worker listening")
        pids = _serving_pids(served.port, until={replacement})
        assert replacement in pids and first not in pids
        assert served.stop() == 0
        assert not _alive(second) and not _alive(replacement)
    finally:
        served.stop()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_whose_supervisor_died_drain_and_exit(project: Path) -> None:
    served = Served(project.parent, "--workers", "2", f"{project.stem}:handler")
    try:
        served.wait_ready()
        pids = [
            int(served.wait_for_line(rf"worker {n} started \(pid (\d+)\)").group(1)) for n in (1, 2)
        ]
        served.process.kill()  # SIGKILL: the supervisor cannot pass anything on
        served.process.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids):
            assert time.monotonic() < deadline, "an orphaned worker kept running"
            time.sleep(0.05)
    finally:
        served.stop()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_asking_for_a_missing_fast_path_says_which_extra_installs_it(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(SystemExit) as exited:
        cli.main(["--loop", "uvloop", f"{project.stem}:handler"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(
        "statefun-serve: error: uvloop is not installed (pip install 'statefun-typed[serve]')\n"
    )


def test_a_function_name_template_path_is_served_and_logged_as_given(project: Path) -> None:
    """The path a {function.name} urlPathTemplate gives (generated as ENDPOINT_PATH)."""
    served = Served(project.parent, "--path", "/fn/{function.name}", f"{project.stem}:make_handler")
    try:
        served.wait_ready()
        served.wait_for_line(rf"on http://127.0.0.1:{served.port}/fn/\{{function\.name\}}")
        response = exchange(served.port, post(request("greeter", name="Di"), path="/fn/greeter"))
        assert response is not None and sent_strings(response.body)[0].startswith("Hello Di from ")
    finally:
        assert served.stop() == 0
