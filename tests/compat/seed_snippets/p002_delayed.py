# Seed 002 "Sending Delayed Messages". The page passes the delay third, against the documented
# pack_and_send_after(delay, typename, id, message); both orders work, so it runs as printed.
from compat_support import Response

# --- page code ---
from datetime import timedelta
from statefun import StatefulFunctions

functions = StatefulFunctions()

@functions.bind("example/delay")
def delayed_function(context, message):
    """A simple stateful function that sends a message to its caller with a delay"""

    response = Response()
    response.message = "hello from the past"

    context.pack_and_send_after(
        context.caller.typename(),
        context.caller.identity,
        timedelta(minutes=30),
        response)
