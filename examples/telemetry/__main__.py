"""Serve the telemetry functions: ``python -m examples.telemetry [--host H] [--port P] [--workers N]``.

The same as ``statefun-serve examples.telemetry.__main__:make_handler --path /statefun``:
statefun-serve's HTTP/1.1 server. The port defaults to the one in the generated module.yaml's
endpoint (8000), overridable with ``--port`` or the ``TELEMETRY_PORT`` environment variable;
the path is the endpoint's (``/statefun``), so module.yaml and the server agree. module.yaml
names the docker host ``telemetry-functions``; run locally, point the runtime here with
``statefun-local ... --endpoint 'telemetry/*=http://127.0.0.1:8000/statefun'``.
"""

from __future__ import annotations

import argparse
import os

from statefun import RequestReplyHandler, StatefulFunctions
from statefun.serving.cli import main as serve

from .alerting import alerting
from .device import device
from .generated import ENDPOINT_PATH, ENDPOINT_PORT, register_functions


def make_handler() -> RequestReplyHandler:
    functions = StatefulFunctions()
    register_functions(functions, alerting=alerting, device=device)
    return RequestReplyHandler(functions)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.telemetry")
    parser.add_argument("--host", default=os.environ.get("TELEMETRY_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("TELEMETRY_PORT", ENDPOINT_PORT or 8000)),
    )
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    serve(
        [
            "--host",
            args.host,
            "--port",
            str(args.port),
            "--path",
            ENDPOINT_PATH,
            "--workers",
            str(args.workers),
            f"{__spec__.name if __spec__ else 'examples.telemetry.__main__'}:make_handler",
        ]
    )


if __name__ == "__main__":
    main()
