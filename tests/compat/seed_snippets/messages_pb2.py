# Stands in for the walkthrough's generated messages_pb2 (seed 003 "Start with the events":
# package example, GreetRequest, GreetResponse, SeenCount), so its imports run as printed.
from compat_support import GreetRequest, GreetResponse, SeenCount

__all__ = ["GreetRequest", "GreetResponse", "SeenCount"]
