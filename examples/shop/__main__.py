"""Serve the shop: ``python -m examples.shop [--host H] [--port P] [--workers N]``.

The same as ``statefun-serve examples.shop.__main__:make_handler --path /statefun``. One server
serves every ``shop/*`` function, as module.yaml's wildcard endpoint expects. The port defaults
to the one in the endpoint URL (8000), overridable with ``--port`` or ``SHOP_PORT``; the path
is the endpoint's (``/statefun``).

``SHOP_REMINDER_AFTER`` (seconds) replaces the manifest's one-hour abandoned-cart delay, for
demos and tests; it is read where the handler is made, so every worker sees it.
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta

from statefun import RequestReplyHandler, StatefulFunctions
from statefun.serving.cli import main as serve

from .cart import make_cart
from .checkout import checkout
from .generated import ENDPOINT_PATH, ENDPOINT_PORT, register_functions
from .inventory import inventory

REMINDER_AFTER_ENV = "SHOP_REMINDER_AFTER"


def reminder_after() -> timedelta | None:
    """The abandoned-cart delay from ``SHOP_REMINDER_AFTER``; None keeps the manifest's."""
    text = os.environ.get(REMINDER_AFTER_ENV, "").strip()
    if not text:
        return None
    seconds = float(text)
    if not seconds > 0:
        raise SystemExit(f"{REMINDER_AFTER_ENV}={text!r}: give a positive number of seconds")
    return timedelta(seconds=seconds)


def make_handler() -> RequestReplyHandler:
    functions = StatefulFunctions()
    register_functions(
        functions,
        cart=make_cart(reminder_after()),
        checkout=checkout,
        inventory=inventory,
    )
    return RequestReplyHandler(functions)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.shop")
    parser.add_argument("--host", default=os.environ.get("SHOP_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SHOP_PORT", ENDPOINT_PORT or 8000)),
    )
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    reminder_after()  # a bad SHOP_REMINDER_AFTER stops here, not in every worker
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
            f"{__spec__.name if __spec__ else 'examples.shop.__main__'}:make_handler",
        ]
    )


if __name__ == "__main__":
    main()
