"""The body of the StateFun function ``example/greeter`` (the walkthrough's greeter).

statefun-codegen created this file once; it is handwritten from here on and the
generator never touches it again.
"""

from __future__ import annotations

from .generated import GreeterContext, messages_pb2

TEMPLATES = ["", "Welcome %s", "Nice to see you again %s", "Third time is a charm %s"]


def compute_greeting(name: str, seen: int) -> messages_pb2.GreetResponse:
    """A personalised greeting, based on how many times ``name`` has been seen before."""
    if seen < len(TEMPLATES):
        greeting = TEMPLATES[seen] % name
    else:
        greeting = "Nice to see you at the %d-nth time %s!" % (seen, name)
    return messages_pb2.GreetResponse(name=name, greeting=greeting)


async def greeter(ctx: GreeterContext, message: messages_pb2.GreetRequest) -> None:
    state = ctx.storage.seen_count or messages_pb2.SeenCount()
    state.seen += 1
    ctx.storage.seen_count = state
    response = compute_greeting(message.name, state.seen)
    ctx.send_greets(response, key=message.name)
