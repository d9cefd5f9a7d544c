"""The greeter example served for real: `python -m examples.greeter` on 127.0.0.1, a real HTTP client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from statefun import kafka_egress_pb2
from statefun import request_reply_pb2 as rr

REPO = Path(__file__).resolve().parent.parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _greet_request(name: str) -> bytes:
    from examples.greeter.generated import GREET_REQUEST_TYPE, GreetRequest

    request = rr.ToFunction()
    invocation = request.invocation
    invocation.target.namespace, invocation.target.type, invocation.target.id = (
        "example",
        "greeter",
        name,
    )
    invocation.state.add(state_name="seen_count")
    argument = invocation.invocations.add().argument
    argument.typename, argument.has_value = GREET_REQUEST_TYPE.typename, True
    argument.value = GreetRequest(name=name).SerializeToString()
    return request.SerializeToString()


def test_the_served_greeter_answers_on_the_endpoint_path() -> None:
    from examples.greeter.generated import ENDPOINT_PATH, GreetResponse

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "examples.greeter"],
        cwd=REPO,
        env={**os.environ, "GREETER_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}{ENDPOINT_PATH}"
        deadline = time.monotonic() + 20
        while True:
            try:
                request = urllib.request.Request(url, data=_greet_request("Ann"), method="POST")
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.headers["Content-Type"] == "application/octet-stream"
                    body = response.read()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "the greeter server did not come up"
                time.sleep(0.1)
        result = rr.FromFunction.FromString(body).invocation_result
        (egress,) = result.outgoing_egresses
        record = kafka_egress_pb2.KafkaProducerRecord.FromString(egress.argument.value)
        assert GreetResponse.FromString(record.value_bytes).greeting == "Welcome Ann"
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout:
            server.stdout.close()
