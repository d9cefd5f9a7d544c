# Seed 003 "Our First Function": the greeter with a type hint.

# --- page code ---
from messages_pb2 import GreetRequest
from statefun import StatefulFunctions

functions = StatefulFunctions()

@functions.bind("example/greeter")
def greet(context, greet_request: GreetRequest):
    pass
