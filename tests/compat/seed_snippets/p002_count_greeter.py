# Seed 002 "Persistence"; seed 001 prints the same code. The state "count" is declared nowhere:
# 2.x declared it in module.yaml, here the SDK asks the runtime for it on first use.
# generate_message's last branch adds str and int (the page's bug, from the fourth greeting on);
# it is left as printed, and test_seed_snippets.py checks that its TypeError reaches the caller.
from compat_support import CountMessage as Count, User

# --- page code ---
from google.protobuf.any_pb2 import Any
from statefun import StatefulFunctions

functions = StatefulFunctions()

@functions.bind("example/count")
def count_greeter(context, message):
    """Function that greets a user based on
    the number of times it has been called"""
    user = User()
    message.Unpack(user)


    state = context["count"]
    if state is None:
        state = Any()
        # page bug: state.Pack(Count(1))
        state.Pack(Count(value=1))  # fixed: protobuf messages take no positional arguments
        output = generate_message(1, user)
    else:
        counter = Count()
        state.Unpack(counter)
        counter.value += 1
        output = generate_message(counter.value, user)
        state.Pack(counter)

    context["count"] = state
    print(output)

def generate_message(count, user):
    if count == 1:
        return "Hello " + user.name
    elif count == 2:
        return "Hello again!"
    elif count == 3:
        return "Third time's the charm"
    else:
        return "Hello for the " + count + "th time"
