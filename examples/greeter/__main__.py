"""Serve the greeter: ``python -m examples.greeter [--host H] [--port P]``.

The port defaults to the one in the generated module.yaml's endpoint (8000),
overridable with ``--port`` or the ``GREETER_PORT`` environment variable; the
path is the endpoint's (``/statefun``), so module.yaml and the server agree.
"""

from __future__ import annotations

import argparse
import os

from aiohttp import web

from statefun import RequestReplyHandler, StatefulFunctions
from statefun.serving.aiohttp import make_app

from .generated import ENDPOINT_PATH, ENDPOINT_PORT, register_functions
from .greeter import greeter


def make_handler() -> RequestReplyHandler:
    functions = StatefulFunctions()
    register_functions(functions, greeter=greeter)
    return RequestReplyHandler(functions)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.greeter")
    parser.add_argument("--host", default=os.environ.get("GREETER_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GREETER_PORT", ENDPOINT_PORT or 8000)),
    )
    args = parser.parse_args()
    app = make_app(make_handler(), path=ENDPOINT_PATH)
    print(
        f"greeter functions serving on http://{args.host}:{args.port}{ENDPOINT_PATH}",
        flush=True,
    )
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
