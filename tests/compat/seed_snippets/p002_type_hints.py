# Seed 002 "Type Hints"; seed 001 prints the same code.
from compat_support import Admin, User

# --- page code ---
import typing
from statefun import StatefulFunctions

functions = StatefulFunctions()

@functions.bind("example/hello")
def hello_function(context, message: User):
    """A simple hello world function with typing"""

    print("Hello " + message.name)

# page bug: @function.bind("example/goodbye")
@functions.bind("example/goodbye")  # fixed: the page misspells its registry `functions`
def goodbye_function(context, message: typing.Union[User, Admin]):
    """A function that dispatches on types"""

    if isinstance(message, User):
        print("Goodbye user")
    elif isinstance(message, Admin):
        print("Goodbye Admin")
