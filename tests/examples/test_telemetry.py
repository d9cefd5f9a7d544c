"""examples/telemetry, a pipeline written against the generated code, checked as a user would.

The generated tree and module.yaml are up to date with the schemas (``--check``), the
example type-checks under ``mypy --strict``, and the functions server (``python -m
examples.telemetry``) runs end to end under ``statefun.local`` on the generated module.yaml
as it is: configurations over the Kafka ingress, readings over the Kinesis ingress, alerts and
rollups out of the one Kafka egress, each topic decoded as its own message. The silence timer
runs in real time (statefun.local fires delayed messages on the wall clock), so the script
gives its devices a 1.5 s silence timeout, and is fed through stdin (``--input -``) so that
one device can keep reporting while another goes quiet; ``--until-idle`` ends the run with
only the unconfigured device's default 5-minute timer pending.
"""

from __future__ import annotations

import json
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from google.protobuf import json_format

from examples.telemetry.generated import Alert, Rollup, telemetry_pb2
from statefun_codegen.module_rules import read_module_yaml

REPO = Path(__file__).resolve().parent.parent.parent

T0 = 1_717_236_000_000  # 2024-06-01 10:00 UTC; the devices report every 10 s of their time
SILENCE_MS = 1500


def test_module_yaml_reads_as_the_flink_runtime_would() -> None:
    """statefun.local takes broker settings on trust, so the deployment side of module.yaml is
    checked with the runtime's own reading rules (module_rules): no diagnostic, and the
    localstack endpoint, the startup positions and the routes as the manifest says."""
    module = read_module_yaml((REPO / "examples/telemetry/module.yaml").read_bytes(), "module.yaml")
    assert module.diagnostics == ()
    assert [(e.functions, e.url_path_template) for e in module.endpoints] == [
        ("telemetry/*", "http://telemetry-functions:8000/statefun")
    ]
    ingresses = {i.id: i for i in module.ingresses}
    readings, configs = ingresses["telemetry/readings"], ingresses["telemetry/device-configs"]
    assert [(r.source, r.value_type, r.targets) for r in readings.routes] == [
        ("readings", "type.googleapis.com/telemetry.Reading", ("telemetry/device",))
    ]
    assert {
        ("awsRegion", "custom-endpoint"),
        ("awsRegion.id", "us-east-1"),
        ("awsRegion.endpoint", "http://localstack:4566"),
        ("startupPosition", "date"),
        ("startupPosition.date", "2024-06-01 00:00:00.000 +0000"),
    } <= set(readings.settings)
    assert [(r.source, r.value_type, r.targets) for r in configs.routes] == [
        ("device-configs", "telemetry/device-config", ("telemetry/device",))
    ]
    assert ("startupPosition", "earliest") in configs.settings
    assert [e.id for e in module.egresses] == ["telemetry/events"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config(device: str, config: dict[str, Any]) -> str:
    record = {"ingress": "telemetry/device-configs", "topic": "device-configs", "key": device}
    return json.dumps({**record, "value": config}) + "\n"


def _reading(device: str, index: int, value: float) -> str:
    reading = {"device_id": device, "timestamp_ms": T0 + 10_000 * index, "value": value}
    record = {"ingress": "telemetry/readings", "stream": "readings", "key": device}
    return json.dumps({**record, "value": reading}) + "\n"


BOILER = {
    "name": "Boiler room 1",
    "thresholds": {"max": 80.0},
    "window_size": 4,
    "silence_timeout_ms": SILENCE_MS,
}
FREEZER = {
    "name": "Freezer 7",
    "thresholds": {"min": -30.0, "max": -10.0},
    "window_size": 3,
    "silence_timeout_ms": SILENCE_MS,
}
# The fleet tightens the freezer's maximum and rolls it up in pairs from then on.
FREEZER_TIGHTER = {**FREEZER, "thresholds": {"min": -30.0, "max": -15.0}, "window_size": 2}

FIRST = [
    _config("boiler-1", BOILER),
    _config("freezer-7", FREEZER),
    *(_reading("boiler-1", i, v) for i, v in enumerate([70.0, 75.0, 85.0, 90.0])),
    *(_reading("freezer-7", i, v) for i, v in enumerate([-20.0, -35.0, -18.0])),
    _config("freezer-7", FREEZER_TIGHTER),
    _reading("freezer-7", 3, -12.0),
    _reading("freezer-7", 4, -17.0),
    # No configuration: no thresholds, windows of 10, the manifest's default silence (5 min).
    *(_reading("sensor-x", i, 100.0 * i - 450.0) for i in range(10)),
]
# boiler-1 keeps reporting, one reading every 0.5 s (a third of its silence timeout) ...
LIVE = [_reading("boiler-1", i, v) for i, v in [(4, 72.0), (5, 74.0), (6, 71.0), (7, 78.0)]]
# ... and once freezer-7 has gone silent, reports its last reading.
LAST = _reading("boiler-1", 8, 96.0)


class _Lines:
    """The lines a process writes to a pipe, as they come (a thread reads them)."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, wanted: Callable[[str], bool], what: str, timeout: float) -> None:
        """Collect lines until one is ``wanted``; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not any(wanted(line) for line in self.lines):
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {what} within {timeout} s: {self.lines}") from None
            assert line is not None, f"the stream ended before {what}: {self.lines}"
            self.lines.append(line)

    def rest(self) -> list[str]:
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return self.lines


def _silent(device: str) -> Callable[[str], bool]:
    """Whether an egress line is ``device``'s SILENT alert."""

    def wanted(line: str) -> bool:
        record = json.loads(line)
        return bool(
            record["topic"] == "alerts"
            and record["key"] == device
            and record["value"].get("kind") == "SILENT"
        )

    return wanted


def _alert(
    device: str,
    kind: telemetry_pb2.AlertKind,
    value: float,
    threshold: float,
    index: int,
    held: int = 0,
) -> Alert:
    return Alert(
        device_id=device,
        device_name={"boiler-1": "Boiler room 1", "freezer-7": "Freezer 7"}[device],
        kind=kind,
        value=value,
        threshold=threshold,
        timestamp_ms=T0 + 10_000 * index,
        suppressed=held,
    )


def _rollup(device: str, first: int, last: int, values: list[float]) -> Rollup:
    return Rollup(
        device_id=device,
        window_start_ms=T0 + 10_000 * first,
        window_end_ms=T0 + 10_000 * last,
        count=len(values),
        min=min(values),
        max=max(values),
        mean=sum(values) / len(values),
    )


def test_the_pipeline_runs_end_to_end_on_statefun_local(tmp_path: Path) -> None:
    port = _free_port()
    server_log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "examples.telemetry", "--port", str(port)],
        cwd=REPO,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    runtime = None
    try:
        runtime = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "statefun.local",
                "examples/telemetry/module.yaml",
                "--input",
                "-",
                "--db",
                ":memory:",
                "--endpoint",
                f"telemetry/*=http://127.0.0.1:{port}/statefun",
                "--egress-type",
                "telemetry/events:alerts=telemetry.Alert",
                "--egress-type",
                "telemetry/events:rollups=telemetry.Rollup",
                "--until-idle",
                "--wait-for-endpoints",
                "20",
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert runtime.stdin and runtime.stdout and runtime.stderr
        egress, log = _Lines(runtime.stdout), _Lines(runtime.stderr)
        stdin = runtime.stdin

        def feed(*lines: str) -> None:
            try:
                stdin.writelines(lines)
                stdin.flush()
            except BrokenPipeError:  # the runtime stopped: say why
                raise AssertionError("".join(log.rest())) from None

        log.wait_for(lambda line: "running examples/telemetry" in line, "start", 30)
        feed(*FIRST)
        for line in LIVE:
            time.sleep(0.5)
            feed(line)
        egress.wait_for(_silent("freezer-7"), "freezer-7 going silent", 10)
        assert not any(_silent("boiler-1")(line) for line in egress.lines)
        feed(LAST)
        egress.wait_for(_silent("boiler-1"), "boiler-1 going silent", 10)
        # Input done; only sensor-x's silence check is pending, due in the default 5 minutes.
        runtime.stdin.close()
        assert runtime.wait(timeout=30) == 0, "".join(log.rest())
        records = [json.loads(line) for line in egress.rest()]
        stderr = "".join(log.rest())
    finally:
        for process in (runtime, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        server_log.close()

    assert "warning" not in stderr, stderr
    pending = re.search(
        r"1 delayed message\(s\) pending \(the next due at \S+ \(in (\d+) min", stderr
    )
    assert pending is not None and pending.group(1) == "4", stderr

    assert {(r["egress"], r["topic"]) for r in records} == {
        ("telemetry/events", "alerts"),
        ("telemetry/events", "rollups"),
    }
    alerts: dict[str, list[Alert]] = {}
    rollups: dict[str, list[Rollup]] = {}
    for record in records:
        # The key is the value's device_id (the manifest's `key: device_id`), in both topics.
        if record["topic"] == "alerts":
            alert = json_format.ParseDict(record["value"], Alert())
            assert record["key"] == alert.device_id
            alerts.setdefault(alert.device_id, []).append(alert)
        else:
            rollup = json_format.ParseDict(record["value"], Rollup())
            assert record["key"] == rollup.device_id
            rollups.setdefault(rollup.device_id, []).append(rollup)

    assert alerts == {
        "boiler-1": [
            _alert("boiler-1", telemetry_pb2.ABOVE_MAX, 85.0, 80.0, 2),
            # 90.0, 10 s after 85.0, is held back; 96.0, a minute after it, is written and counts it
            _alert("boiler-1", telemetry_pb2.ABOVE_MAX, 96.0, 80.0, 8, held=1),
            # silent once, after its last reading; never while it kept reporting
            _alert("boiler-1", telemetry_pb2.SILENT, 96.0, 0.0, 8),
        ],
        "freezer-7": [
            _alert("freezer-7", telemetry_pb2.BELOW_MIN, -35.0, -30.0, 1),
            # -12 is fine under the first configuration, too warm under the tightened one
            _alert("freezer-7", telemetry_pb2.ABOVE_MAX, -12.0, -15.0, 3),
            _alert("freezer-7", telemetry_pb2.SILENT, -17.0, 0.0, 4),
        ],
        # sensor-x has no configuration, so no thresholds: no alert whatever it reads
    }

    assert rollups == {
        "boiler-1": [
            _rollup("boiler-1", 0, 3, [70.0, 75.0, 85.0, 90.0]),
            _rollup("boiler-1", 4, 7, [72.0, 74.0, 71.0, 78.0]),
            # 96.0 waits in the next window
        ],
        "freezer-7": [
            _rollup("freezer-7", 0, 2, [-20.0, -35.0, -18.0]),
            _rollup("freezer-7", 3, 4, [-12.0, -17.0]),  # window_size 2 from the new config
        ],
        "sensor-x": [_rollup("sensor-x", 0, 9, [100.0 * i - 450.0 for i in range(10)])],
    }
