"""A greeter application as the StateFun playground publishes it, re-created for our tests.

`example/person` counts the visits of a name in its state and passes the request on, with the
count, to `example/greeter`, which turns it into a greeting on an egress. Served the way the
published examples serve it: aiohttp, one POST route, RequestReplyHandler.handle_async.

    python functions.py [--port 0] [--egress kafka|playground]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from aiohttp import web

from statefun import (
    Context,
    IntType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    ValueSpec,
    egress_message_builder,
    kafka_egress_message,
    make_json_type,
    message_builder,
)

GREET_REQUEST = make_json_type(typename="example/GreetRequest")
EGRESS_RECORD = make_json_type(typename="io.statefun.playground/EgressRecord")
SETTINGS = {"egress": "kafka"}

functions = StatefulFunctions()


@functions.bind(typename="example/person", specs=[ValueSpec(name="visits", type=IntType)])
async def person(context: Context, message: Message) -> None:
    visits = (context.storage.visits or 0) + 1
    context.storage.visits = visits
    request: Any = message.as_type(GREET_REQUEST)
    request["visits"] = visits
    context.send(
        message_builder(
            target_typename="example/greeter",
            target_id=request["name"],
            value=request,
            value_type=GREET_REQUEST,
        )
    )


def greeting_for(name: str, visits: int) -> str:
    openers = {1: "Welcome", 2: "Nice to see you again", 3: "Third time is a charm"}
    if visits in openers:
        return f"{openers[visits]} {name}"
    return f"Nice to see you at the {visits}-nth time {name}!"


@functions.bind(typename="example/greeter")
async def greeter(context: Context, message: Message) -> None:
    request: Any = message.as_type(GREET_REQUEST)
    greeting = greeting_for(request["name"], request["visits"])
    if SETTINGS["egress"] == "playground":
        context.send_egress(
            egress_message_builder(
                target_typename="io.statefun.playground/egress",
                value={"topic": "greetings", "payload": greeting},
                value_type=EGRESS_RECORD,
            )
        )
    else:
        context.send_egress(
            kafka_egress_message(
                typename="example/greets", topic="greetings", key=request["name"], value=greeting
            )
        )


handler = RequestReplyHandler(functions)


async def handle(request: web.Request) -> web.Response:
    reply = await handler.handle_async(await request.read())
    return web.Response(body=reply, content_type="application/octet-stream")


async def serve(port: int) -> None:
    app = web.Application()
    app.add_routes([web.post("/statefun", handle)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--egress", choices=("kafka", "playground"), default="kafka")
    args = parser.parse_args()
    SETTINGS["egress"] = args.egress
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass
