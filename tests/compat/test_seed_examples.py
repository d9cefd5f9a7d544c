"""Every example of the StateFun 2.x Python pages (seeds 000-003), run through the 3.x handler.

Each example's code is kept as the page writes it, with three documented
exceptions: ``@function.bind`` (a typo for ``functions``) in the goodbye
example; ``Count(1)``, which protobuf rejects, is a small factory in
compat_support; and unannotated functions without state are registered in
``statefun.compat.StatefulFunctions``, where (as in 2.x) they receive the Any.
Requests are real serialized ``ToFunction`` messages; responses are decoded
``FromFunction`` messages checked field by field.
"""

import asyncio
import typing
from datetime import timedelta

import pytest
from compat_support import (
    ANY_STATE_TYPENAME,
    Admin,
    Count,
    CountMessage,
    GreetRequest,
    GreetResponse,
    Response,
    SeenCount,
    User,
    address,
    any_state,
    from_function,
    to_function,
    typed,
    type_url,
    unpack_any_state,
)
from google.protobuf.any_pb2 import Any

import statefun.compat
from statefun import (
    AsyncRequestReplyHandler,
    RequestReplyHandler,
    StatefulFunctions,
    kafka_egress_record,
)
from statefun.kafka_egress_pb2 import KafkaProducerRecord
from statefun.request_reply_pb2 import FromFunction

MODIFY = FromFunction.PersistedValueMutation.MODIFY
DELETE = FromFunction.PersistedValueMutation.DELETE
SETH = User(user_id="user1", name="Seth")


# -- "Defining A Stateful Function": the untyped hello ----------------------------------------


def hello_page_functions() -> StatefulFunctions:
    functions = statefun.compat.StatefulFunctions()

    @functions.bind("example/hello")
    def hello_function(context, message):
        """A simple hello world function"""
        user = User()
        message.Unpack(user)

        print("Hello " + user.name)

    return functions


def test_untyped_hello_unpacks_the_any_itself(capsys: pytest.CaptureFixture[str]) -> None:
    handler = RequestReplyHandler(hello_page_functions())

    response = handler(to_function("example/hello", "user1", [(None, typed(SETH))]))

    assert capsys.readouterr().out == "Hello Seth\n"
    assert response == b""  # no side effects: an empty FromFunction, as upstream 3.x


# -- "Type Hints": hello typed, goodbye dispatching on a Union --------------------------------


def typed_page_functions(goodbye_hint: typing.Any) -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("example/hello")
    def hello_function(context, message: User):
        """A simple hello world function with typing"""

        print("Hello " + message.name)

    def goodbye_function(context, message: goodbye_hint):
        """A function that dispatches on types"""

        if isinstance(message, User):
            print("Goodbye user")
        elif isinstance(message, Admin):
            print("Goodbye Admin")

    functions.bind("example/goodbye")(goodbye_function)
    return functions


def test_typed_hello_receives_the_unpacked_user(capsys: pytest.CaptureFixture[str]) -> None:
    handler = RequestReplyHandler(typed_page_functions(typing.Union[User, Admin]))

    assert handler(to_function("example/hello", "user1", [(None, typed(SETH))])) == b""
    assert capsys.readouterr().out == "Hello Seth\n"


@pytest.mark.parametrize(
    "hint", [typing.Union[User, Admin], User | Admin], ids=["typing.Union", "pipe-union"]
)
def test_goodbye_dispatches_on_the_union(
    hint: typing.Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = RequestReplyHandler(typed_page_functions(hint))
    request = to_function(
        "example/goodbye",
        "someone",
        [(None, typed(SETH)), (None, typed(Admin(name="root"))), (None, typed(SETH))],
    )

    assert handler(request) == b""
    assert capsys.readouterr().out == "Goodbye user\nGoodbye Admin\nGoodbye user\n"


def test_goodbye_rejects_a_type_outside_the_union(capsys: pytest.CaptureFixture[str]) -> None:
    handler = RequestReplyHandler(typed_page_functions(typing.Union[User, Admin]))
    request = to_function("example/goodbye", "someone", [(None, typed(Count(3)))])

    with pytest.raises(ValueError) as raised:
        handler(request)

    assert str(raised.value) == (
        "Unknown message type type.googleapis.com/example.Count: the function example/goodbye "
        "accepts only example.User, example.Admin (from the type hint of its message parameter)"
    )
    assert capsys.readouterr().out == ""


# -- "Function Types and Messaging": the caller, bound and registered -------------------------


def caller_function(context, message):
    """A simple stateful function that sends a message to the user with id `user1`"""

    user = User()
    user.user_id = "user1"
    user.name = "Seth"

    envelope = Any()
    envelope.Pack(user)

    context.send("example/hello", user.user_id, envelope)


def assert_sent_seth_to_hello(response: FromFunction) -> FromFunction.Invocation:
    result = response.invocation_result
    assert len(result.state_mutations) == 0
    assert len(result.delayed_invocations) == 0
    assert len(result.outgoing_egresses) == 0
    (outgoing,) = result.outgoing_messages
    assert outgoing.target == address("example/hello", "user1")
    assert outgoing.argument.typename == "type.googleapis.com/example.User"
    assert outgoing.argument.has_value
    assert User.FromString(outgoing.argument.value) == SETH
    return outgoing


@pytest.mark.parametrize("registration", ["bind", "register"])
def test_caller_sends_a_packed_user_that_hello_understands(
    registration: str, capsys: pytest.CaptureFixture[str]
) -> None:
    functions = hello_page_functions()
    if registration == "bind":
        functions.bind("example/caller")(caller_function)
    else:
        functions.register("example/caller", caller_function)
    handler = RequestReplyHandler(functions)

    response = from_function(
        handler(to_function("example/caller", "c1", [(None, typed(Admin(name="go")))]))
    )
    outgoing = assert_sent_seth_to_hello(response)

    # Deliver it as the runtime would: the next batch for example/hello, caller example/caller.
    delivered = to_function(
        "example/hello", outgoing.target.id, [(address("example/caller", "c1"), outgoing.argument)]
    )
    assert handler(delivered) == b""
    assert capsys.readouterr().out == "Hello Seth\n"


# -- "Sending Delayed Messages" -----------------------------------------------------------------


def delayed_page_functions() -> StatefulFunctions:
    functions = statefun.compat.StatefulFunctions()

    @functions.bind("example/delay")
    def delayed_function(context, message):
        """A simple stateful function that sends a message to its caller with a delay"""

        response = Response()
        response.message = "hello from the past"

        context.pack_and_send_after(
            context.caller.typename(), context.caller.identity, timedelta(minutes=30), response
        )

    @functions.bind("example/delay-api-order")
    def delayed_function_reference_order(context, message):
        response = Response(message="hello from the past")
        context.pack_and_send_after(
            timedelta(minutes=30), context.caller.typename(), context.caller.identity, response
        )

    return functions


@pytest.mark.parametrize("function", ["example/delay", "example/delay-api-order"])
def test_delayed_reply_reaches_the_caller_after_thirty_minutes(function: str) -> None:
    handler = RequestReplyHandler(delayed_page_functions())
    request = to_function(function, "d1", [(address("example/caller", "c1"), typed(SETH))])

    result = from_function(handler(request)).invocation_result

    assert len(result.outgoing_messages) == 0
    (delayed,) = result.delayed_invocations
    assert delayed.delay_in_ms == 30 * 60 * 1000
    assert delayed.target == address("example/caller", "c1")
    assert delayed.argument.typename == "type.googleapis.com/example.Response"
    assert Response.FromString(delayed.argument.value).message == "hello from the past"
    assert not delayed.is_cancellation_request
    assert delayed.cancellation_token == ""


def test_delayed_reply_to_an_ingress_message_has_no_caller_to_reach() -> None:
    handler = RequestReplyHandler(delayed_page_functions())
    request = to_function("example/delay", "d1", [(None, typed(SETH))])

    with pytest.raises(ValueError, match="the target typename of pack_and_send_after\\(\\)"):
        handler(request)


# -- "Persistence": count_greeter ------------------------------------------------------------


def count_page_functions(outputs: list[str]) -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("example/count", states=["count"])
    def count_greeter(context, message):
        """Function that greets a user based on
        the number of times it has been called"""
        user = User()
        message.Unpack(user)

        state = context["count"]
        if state is None:
            state = Any()
            state.Pack(Count(1))
            output = generate_message(1, user)
        else:
            counter = CountMessage()
            state.Unpack(counter)
            counter.value += 1
            output = generate_message(counter.value, user)
            state.Pack(counter)

        context["count"] = state
        outputs.append(output)

    def generate_message(count, user):
        if count == 1:
            return "Hello " + user.name
        elif count == 2:
            return "Hello again!"
        elif count == 3:
            return "Third time's the charm"
        else:
            return "Hello for the " + count + "th time"

    @functions.bind("example/forget", states=["count"])
    def forget(context, message: User):
        del context["count"]

    return functions


def test_count_greeter_first_asks_the_runtime_for_its_any_state() -> None:
    handler = RequestReplyHandler(count_page_functions([]))

    response = from_function(handler(to_function("example/count", "user1", [(None, typed(SETH))])))

    assert response.WhichOneof("response") == "incomplete_invocation_context"
    (missing,) = response.incomplete_invocation_context.missing_values
    assert missing.state_name == "count"
    assert missing.type_typename == ANY_STATE_TYPENAME
    assert missing.HasField("expiration_spec")
    assert missing.expiration_spec.mode == FromFunction.ExpirationSpec.NONE


def test_count_greeter_counts_across_requests() -> None:
    outputs: list[str] = []
    handler = RequestReplyHandler(count_page_functions(outputs))
    state_value = None
    for expected_count in (1, 2, 3):
        request = to_function(
            "example/count", "user1", [(None, typed(SETH))], state={"count": state_value}
        )
        (mutation,) = from_function(handler(request)).invocation_result.state_mutations
        assert mutation.mutation_type == MODIFY
        assert mutation.state_name == "count"
        assert unpack_any_state(mutation.state_value, CountMessage).value == expected_count
        state_value = mutation.state_value

    assert outputs == ["Hello Seth", "Hello again!", "Third time's the charm"]


def test_count_greeter_counts_within_one_batch() -> None:
    outputs: list[str] = []
    handler = RequestReplyHandler(count_page_functions(outputs))
    request = to_function(
        "example/count", "user1", [(None, typed(SETH))] * 3, state={"count": None}
    )

    (mutation,) = from_function(handler(request)).invocation_result.state_mutations

    assert unpack_any_state(mutation.state_value, CountMessage).value == 3
    assert outputs == ["Hello Seth", "Hello again!", "Third time's the charm"]


def test_the_pages_fourth_greeting_bug_surfaces_as_the_users_exception() -> None:
    # generate_message concatenates str and int from the fourth time on; the
    # user's TypeError must reach the web framework unchanged.
    handler = RequestReplyHandler(count_page_functions([]))
    request = to_function(
        "example/count", "user1", [(None, typed(SETH))], state={"count": any_state(Count(3))}
    )

    with pytest.raises(TypeError, match="can only concatenate str"):
        handler(request)


def test_deleting_the_count_clears_it() -> None:
    handler = RequestReplyHandler(count_page_functions([]))
    request = to_function(
        "example/forget", "user1", [(None, typed(SETH))], state={"count": any_state(Count(2))}
    )

    (mutation,) = from_function(handler(request)).invocation_result.state_mutations

    assert mutation.mutation_type == DELETE
    assert mutation.state_name == "count"
    assert not mutation.HasField("state_value")


# -- The walkthrough (seed 003): greeter with kafka_egress_record ------------------------------


def first_walkthrough_functions() -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("example/greeter")
    def greet(context, message: GreetRequest):
        response = GreetResponse()
        response.name = message.name
        response.greeting = "Hello {}".format(message.name)

        egress_message = kafka_egress_record(topic="greetings", key=message.name, value=response)
        context.pack_and_send_egress("example/greets", egress_message)

    return functions


# The page's intermediate "Stateful Hello" snippet names its parameter greet_message but reads
# greet_request (a NameError in 2.x as well); its "Full Application" below is the one run here.
def full_walkthrough_functions() -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("example/greeter", states=["seen_count"])
    def greet(context, greet_request: GreetRequest):
        state = context.state("seen_count").unpack(SeenCount)
        if not state:
            state = SeenCount()
            state.seen = 1
        else:
            state.seen += 1
        context.state("seen_count").pack(state)

        response = compute_greeting(greet_request.name, state.seen)

        egress_message = kafka_egress_record(
            topic="greetings", key=greet_request.name, value=response
        )
        context.pack_and_send_egress("example/greets", egress_message)

    return functions


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


# The walkthrough's Kafka ingress routes GreetRequests with this typeUrl.
INGRESS_TYPE_URL = "com.googleapis/example.GreetRequest"


def assert_greeting_sent_to_kafka(result: typing.Any, name: str, greeting: str) -> None:
    (egress,) = result.outgoing_egresses
    assert (egress.egress_namespace, egress.egress_type) == ("example", "greets")
    assert egress.argument.typename == (
        "type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord"
    )
    assert egress.argument.has_value
    expected_value = GreetResponse(name=name, greeting=greeting).SerializeToString()
    assert egress.argument.value == (
        KafkaProducerRecord(
            key=name, value_bytes=expected_value, topic="greetings"
        ).SerializeToString()
    )
    record = KafkaProducerRecord.FromString(egress.argument.value)
    assert (record.topic, record.key) == ("greetings", name)
    assert GreetResponse.FromString(record.value_bytes) == GreetResponse(
        name=name, greeting=greeting
    )


def test_first_walkthrough_greeter_says_hello_to_kafka() -> None:
    handler = RequestReplyHandler(first_walkthrough_functions())
    request = to_function(
        "example/greeter", "Ann", [(None, typed(GreetRequest(name="Ann"), INGRESS_TYPE_URL))]
    )

    result = from_function(handler(request)).invocation_result

    assert len(result.state_mutations) == 0
    assert_greeting_sent_to_kafka(result, "Ann", "Hello Ann")


def test_full_walkthrough_greeter_remembers_how_often_it_saw_a_name() -> None:
    handler = RequestReplyHandler(full_walkthrough_functions())
    request = GreetRequest(name="Ann")
    incomplete = from_function(
        handler(to_function("example/greeter", "Ann", [(None, typed(request, INGRESS_TYPE_URL))]))
    )
    (missing,) = incomplete.incomplete_invocation_context.missing_values
    assert (missing.state_name, missing.type_typename) == ("seen_count", ANY_STATE_TYPENAME)

    expected_greetings = [
        "Welcome Ann",
        "Nice to see you again Ann",
        "Third time is a charm Ann",
        "Nice to see you at the 4-nth time Ann!",
        "Nice to see you at the 5-nth time Ann!",
    ]
    state_value = None
    for seen, greeting in enumerate(expected_greetings, start=1):
        batch = to_function(
            "example/greeter",
            "Ann",
            [(None, typed(request, INGRESS_TYPE_URL))],
            state={"seen_count": state_value},
        )
        result = from_function(handler(batch)).invocation_result
        (mutation,) = result.state_mutations
        assert (mutation.mutation_type, mutation.state_name) == (MODIFY, "seen_count")
        assert unpack_any_state(mutation.state_value, SeenCount).seen == seen
        assert_greeting_sent_to_kafka(result, "Ann", greeting)
        state_value = mutation.state_value


# -- "Serving Asynchronous Functions": the async hello that replies ----------------------------


async def compute_greeting_async(message: Any) -> Any:
    """What the async example's ``compute_greeting`` stands for: an awaited lookup."""
    await asyncio.sleep(0)
    request = GreetRequest()
    message.Unpack(request)
    reply = Any()
    reply.Pack(GreetResponse(name=request.name, greeting=f"Hello {request.name}"))
    return reply


def async_page_functions() -> StatefulFunctions:
    functions = statefun.compat.StatefulFunctions()

    @functions.bind("example/hello")
    async def hello(context, message):
        response = await compute_greeting_async(message)
        context.reply(response)

    return functions


def assert_replied_to_caller(response: FromFunction, caller: typing.Any, name: str) -> None:
    (outgoing,) = response.invocation_result.outgoing_messages
    assert outgoing.target == caller
    assert outgoing.argument.typename == type_url(GreetResponse)
    assert GreetResponse.FromString(outgoing.argument.value) == GreetResponse(
        name=name, greeting=f"Hello {name}"
    )


def test_async_hello_replies_through_the_async_handler() -> None:
    handler = AsyncRequestReplyHandler(async_page_functions())
    caller = address("example/caller", "c1")
    request = to_function("example/hello", "Ann", [(caller, typed(GreetRequest(name="Ann")))])

    response = asyncio.run(handler(request))

    assert_replied_to_caller(from_function(response), caller, "Ann")
