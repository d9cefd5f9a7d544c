"""A greeter-like function served with the SDK on 127.0.0.1, for the local runtime's benchmark
and end-to-end tests: counts each name in int state `seen_count` and greets on egress
example/greets (Kafka topic `greetings`, JSON value). Prints its port on the first stdout line.

    python bench/local_greeter_server.py [--port 0] [--path /statefun]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from aiohttp import web

from statefun import (
    Context,
    IntType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    ValueSpec,
    kafka_egress_message,
    make_json_type,
)
from statefun.serving.aiohttp import make_app

GREET_REQUEST = make_json_type("example/GreetRequest")

functions = StatefulFunctions()


@functions.bind("example/greeter", specs=[ValueSpec(name="seen_count", type=IntType)])
def greet(context: Context, message: Message) -> None:
    request: Any = message.as_type(GREET_REQUEST)
    seen = (context.storage.seen_count or 0) + 1
    context.storage.seen_count = seen
    response = {
        "name": request["name"],
        "seen": seen,
        "greeting": f"Hello {request['name']} #{seen}",
    }
    if "seq" in request:
        response["seq"] = request["seq"]
    context.send_egress(
        kafka_egress_message(
            typename="example/greets",
            topic="greetings",
            key=request["name"],
            value=json.dumps(response),
        )
    )


async def serve(host: str, port: int, path: str) -> None:
    runner = web.AppRunner(make_app(RequestReplyHandler(functions), path=path), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(bound, flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--path", default="/statefun")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port, args.path))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
