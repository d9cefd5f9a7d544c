# Seed 002 "Persistence": "persisted values may be cleared by deleting its value" (seed 001
# prints the same). The page shows the statement alone; it runs in a function of its own here.
from statefun import StatefulFunctions

functions = StatefulFunctions()

@functions.bind("example/forget")
def forget(context, message):
    # --- page code ---
    del context["count"]
