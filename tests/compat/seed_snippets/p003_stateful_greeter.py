# Seed 003 "A Stateful Hello": compute_greeting and the greeter that counts how often it saw a
# name, in state "seen_count" that nothing declares (the walkthrough declared it in module.yaml).
# The page's snippets leave out the imports and the registry (its "Full Application" has them).
from messages_pb2 import SeenCount, GreetRequest, GreetResponse

from statefun import StatefulFunctions
from statefun import kafka_egress_record

functions = StatefulFunctions()

# --- page code ---
def compute_greeting(name, seen):
    """
    Compute a personalized greeting, based on the number of times this @name had been seen before.
    """
    templates = ["", "Welcome %s", "Nice to see you again %s", "Third time is a charm %s"]
    if seen < len(templates):
        greeting = templates[seen] % name
    else:
        greeting = "Nice to see you at the %d-nth time %s!" % (seen, name)

    response = GreetResponse()
    response.name = name
    response.greeting = greeting

    return response

# --- page code ---
@functions.bind("example/greeter")
# page bug: def greet(context, greet_message: GreetRequest):
def greet(context, greet_request: GreetRequest):  # fixed: the body reads greet_request
    state = context.state('seen_count').unpack(SeenCount)
    if not state:
        state = SeenCount()
        state.seen = 1
    else:
        state.seen += 1
    context.state('seen_count').pack(state)

    response = compute_greeting(greet_request.name, state.seen)

    egress_message = kafka_egress_record(topic="greetings", key=greet_request.name, value=response)
    context.pack_and_send_egress("example/greets", egress_message)
