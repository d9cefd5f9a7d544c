# Seed 002 "Function Types and Messaging": "Alternatively, functions can be manually bound to the
# runtime." The caller of p002_caller.py, registered with the page's register line instead of
# the decorator (seed 001 prints the same code).
from compat_support import User

# --- page code ---
from google.protobuf.any_pb2 import Any
from statefun import StatefulFunctions

functions = StatefulFunctions()

# --- page code ---
def caller_function(context, message):
    """A simple stateful function that sends a message to the user with id `user1`"""

    user = User()
    user.user_id = "user1"
    user.name = "Seth"

    envelope = Any()
    envelope.Pack(user)

    context.send("example/hello", user.user_id, envelope)

# --- page code ---
functions.register("example/caller", caller_function)
