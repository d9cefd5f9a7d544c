# Seed 002 "Serving Asynchronous Functions". The page leaves out the imports, the registry and
# compute_greeting; here compute_greeting is a coroutine that unpacks the request and packs a reply.
import asyncio

from compat_support import GreetRequest, GreetResponse
from google.protobuf.any_pb2 import Any

from statefun import AsyncRequestReplyHandler, StatefulFunctions

functions = StatefulFunctions()


async def compute_greeting(message):
    await asyncio.sleep(0)
    greet_request = GreetRequest()
    message.Unpack(greet_request)
    reply = Any()
    reply.Pack(GreetResponse(name=greet_request.name, greeting="Hello " + greet_request.name))
    return reply


# --- page code ---
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
