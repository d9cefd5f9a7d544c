# The "Serving Asynchronous Functions" snippet of the 2.x Python SDK page (seed 002), as the page
# prints it, with the names it leaves undefined supplied: the imports, a StatefulFunctions from
# statefun.compat (the function has no type hint and no state, so it is 2.x-style there), and a
# compute_greeting coroutine that builds the reply.
import asyncio

from compat_support import GreetRequest, GreetResponse
from google.protobuf.any_pb2 import Any

from statefun import AsyncRequestReplyHandler
from statefun.compat import StatefulFunctions

functions = StatefulFunctions()


async def compute_greeting(message):
    await asyncio.sleep(0)
    greet_request = GreetRequest()
    message.Unpack(greet_request)
    reply = Any()
    reply.Pack(GreetResponse(name=greet_request.name, greeting="Hello " + greet_request.name))
    return reply


@functions.bind("example/hello")
async def hello(context, message):
    response = await compute_greeting(message)
    context.reply(response)

from aiohttp import web

handler = AsyncRequestReplyHandler(functions)

async def handle(request):
    req = await request.read()
    res = await handler(req)
    return web.Response(body=res, content_type="application/octet-stream")

app = web.Application()
app.add_routes([web.post('/statefun', handle)])

if __name__ == '__main__':
    web.run_app(app, port=5000)
