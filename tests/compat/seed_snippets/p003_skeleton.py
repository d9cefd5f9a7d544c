# Seed 003 (the 2.0 Python walkthrough) "Our First Function": greeter/greeter.py as unpacked.

# --- page code ---
from statefun import StatefulFunctions

functions = StatefulFunctions()

@functions.bind("example/greeter")
def greet(context, greet_request):
    pass
