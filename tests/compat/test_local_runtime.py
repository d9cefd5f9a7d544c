"""The walkthrough's 2.x greeter driven by the embedded runtime (statefun.local) end to end.

The runtime reads the ingress records, negotiates the greeter's ``seen_count``
state from the ``IncompleteInvocationContext`` answer, keeps it between calls
and writes what reaches the Kafka egress: the greetings must count per name.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import pathlib
import subprocess
import sys
import threading
import typing

import pytest
from compat_support import GreetRequest, GreetResponse

HERE = pathlib.Path(__file__).resolve().parent
TIMEOUT_SECONDS = 60

MODULE_YAML = """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: {url}
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: example/names
  address: kafka-broker:9092
  consumerGroupId: my-group-id
  topics:
    - topic: names
      valueType: com.googleapis/example.GreetRequest
      targets:
        - example/greeter
---
kind: io.statefun.kafka.v1/egress
spec:
  id: example/greets
  address: kafka-broker:9092
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 15min
"""


@pytest.fixture
def greeter_url() -> typing.Iterator[str]:
    for needed in ("statefun.local", "yaml", "aiohttp"):  # the runtime's `local` extra
        pytest.importorskip(needed)
    from werkzeug.serving import make_server

    spec = importlib.util.spec_from_file_location(
        "seed_walkthrough_greeter_local", HERE / "seed_walkthrough_greeter.py"
    )
    assert spec is not None and spec.loader is not None
    greeter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(greeter)
    server = make_server("127.0.0.1", 0, greeter.app)
    thread = threading.Thread(target=server.serve_forever, name="compat-local-greeter", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/statefun"
    finally:
        server.shutdown()
        thread.join(10)


def test_the_local_runtime_runs_the_2x_walkthrough(
    greeter_url: str, tmp_path: pathlib.Path
) -> None:
    module = tmp_path / "module.yaml"
    module.write_text(MODULE_YAML.format(url=greeter_url), encoding="utf-8")
    names = ["Ann", "Bob", "Ann", "Ann", "Ann"]
    records = tmp_path / "names.jsonl"
    records.write_text(
        "".join(
            json.dumps(
                {
                    "key": name,
                    "value_base64": base64.b64encode(
                        GreetRequest(name=name).SerializeToString()
                    ).decode(),
                }
            )
            + "\n"
            for name in names
        ),
        encoding="utf-8",
    )
    egress = tmp_path / "greets.jsonl"

    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "statefun.local",
            str(module),
            "--db",
            ":memory:",
            "--input",
            str(records),
            "--egress",
            f"example/greets={egress}",
            "--call-timeout",
            "10s",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )

    assert completed.returncode == 0, completed.stderr
    greetings: dict[str, list[str]] = {}
    for line in egress.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert (record["egress"], record["topic"]) == ("example/greets", "greetings")
        # The runtime shows bytes as text when they are valid UTF-8, else as base64.
        raw = (
            base64.b64decode(record["value_base64"])
            if "value_base64" in record
            else record["value"].encode("utf-8")
        )
        response = GreetResponse.FromString(raw)
        assert response.name == record["key"]
        greetings.setdefault(record["key"], []).append(response.greeting)
    assert greetings == {
        "Ann": [
            "Welcome Ann",
            "Nice to see you again Ann",
            "Third time is a charm Ann",
            "Nice to see you at the 4-nth time Ann!",
        ],
        "Bob": ["Welcome Bob"],
    }
