# Seed 003 "Sending A Response": the greeter answering each request on Kafka.

# --- page code ---
from messages_pb2 import GreetRequest, GreetResponse
from statefun import StatefulFunctions
# page bug: (missing)
from statefun import kafka_egress_record  # fixed: the page uses it without importing it

functions = StatefulFunctions()

@functions.bind("example/greeter")
def greet(context, message: GreetRequest):
    response = GreetResponse()
    response.name = message.name
    response.greeting = "Hello {}".format(message.name)
    
    egress_message = kafka_egress_record(topic="greetings", key=message.name, value=response)
    context.pack_and_send_egress("example/greets", egress_message)
