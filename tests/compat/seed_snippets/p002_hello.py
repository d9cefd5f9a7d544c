# Seed 002 "Defining A Stateful Function"; seed 001 prints the same code.
from compat_support import User

# --- page code ---
from statefun import StatefulFunctions

functions = StatefulFunctions()

@functions.bind("example/hello")
def hello_function(context, message):
    """A simple hello world function"""
    user = User()
    message.Unpack(user)

    print("Hello " + user.name)
