"""Every snippet of the StateFun 2.x Python pages, as printed, on every way of serving it.

The snippets are the files of ``seed_snippets/`` (see its README). Each runs
with ``from statefun import StatefulFunctions`` through

* ``RequestReplyHandler(functions)(bytes)``, one batch per message and all
  messages of an instance in one batch;
* ``RequestReplyHandler.handle_sync`` and ``.handle_async``;
* ``await AsyncRequestReplyHandler(functions)(bytes)``;
* a real HTTP server: the snippet's own Flask or aiohttp app, else the page's
  Flask snippet (``p002_flask.py``) serving the snippet's registry;
* ``statefun.local``, the embedded runtime, calling that server,

and must produce what the page implies: the output it prints, the messages,
delayed messages and egress in the ``FromFunction`` responses, the state the
runtime ends up holding, and the states the runtime was asked to register
(none of the snippets declares its state; 2.x did that in module.yaml).
"""

from __future__ import annotations

import asyncio
import pathlib
import types
import typing
from dataclasses import dataclass, field

import pytest
from compat_support import (
    ANY_STATE_TYPENAME,
    Admin,
    CountMessage,
    GreetRequest,
    GreetResponse,
    Response,
    SNIPPETS,
    SeenCount,
    User,
    any_state,
    load_snippet,
    packed,
    to_function,
    typed,
)
from runtime_support import (
    Call,
    Effects,
    MiniRuntime,
    describe,
    effects_of,
    IN_PROCESS,
    KAFKA_RECORD,
    Delivery,
    http_call,
    in_process_call,
    kafka_records,
    run_local,
    serve_aiohttp,
    serve_wsgi,
)

from statefun import AsyncRequestReplyHandler, Context, Message, RequestReplyHandler
from statefun.kafka_egress_pb2 import KafkaProducerRecord
from statefun.request_reply_pb2 import FromFunction, TypedValue

HERE = pathlib.Path(__file__).resolve().parent
SEEDS = HERE.parents[1].parent / "shared" / "seeds"
# The walkthrough's Kafka ingress routes GreetRequests with this typeUrl (seed 003's module.yaml).
GREET_REQUEST_URL = "com.googleapis/example.GreetRequest"
STARTER = "example/starter"


# -- what each snippet is fed and what the page implies ---------------------------------------


@dataclass(frozen=True)
class Scenario:
    snippet: str
    deliveries: tuple[Delivery, ...]
    # Other snippets the page's example needs (the caller sends to the page's hello).
    companions: tuple[str, ...] = ()
    # Ingress messages carry no caller; snippets that reply need one: the test's starter
    # function forwards each delivery to this function and prints what comes back.
    starter_target: str | None = None
    prints: tuple[str, ...] = ()
    effects: Effects = field(default_factory=Effects)
    # The run ends with a delayed message pending (the embedded runtime would wait for it).
    leaves_timer: bool = False


SETH = User(user_id="user1", name="Seth")


def seth_to(typename: str) -> Delivery:
    return Delivery(typename, "user1", typed(SETH))


def greet_request(name: str) -> Delivery:
    return Delivery("example/greeter", name, typed(GreetRequest(name=name), GREET_REQUEST_URL))


def any_state_text(message: typing.Any) -> str:
    return describe(
        TypedValue(
            typename=ANY_STATE_TYPENAME, has_value=True, value=packed(message).SerializeToString()
        )
    )


def kafka_greeting(name: str, greeting: str) -> str:
    record = KafkaProducerRecord(
        topic="greetings",
        key=name,
        value_bytes=GreetResponse(name=name, greeting=greeting).SerializeToString(),
    )
    value = TypedValue(typename=KAFKA_RECORD, has_value=True, value=record.SerializeToString())
    return f"example/greets <- {describe(value)}"


WALKTHROUGH_NAMES = ("Ann", "Bob", "Ann", "Ann", "Ann")
COUNTED_GREETINGS = sorted(
    kafka_greeting(name, greeting)
    for name, greeting in [
        ("Ann", "Welcome Ann"),
        ("Bob", "Welcome Bob"),
        ("Ann", "Nice to see you again Ann"),
        ("Ann", "Third time is a charm Ann"),
        ("Ann", "Nice to see you at the 4-nth time Ann!"),
    ]
)
COUNTED_STATE = {
    "example/greeter/Ann": {"seen_count": any_state_text(SeenCount(seen=4))},
    "example/greeter/Bob": {"seen_count": any_state_text(SeenCount(seen=1))},
}
SEEN_COUNT_ASKED = {"example/greeter": [f"seen_count: {ANY_STATE_TYPENAME}"]}

SCENARIOS = [
    Scenario("p002_hello", (seth_to("example/hello"),), prints=("Hello Seth",)),
    Scenario(
        "p002_type_hints",
        (
            seth_to("example/hello"),
            seth_to("example/goodbye"),
            Delivery("example/goodbye", "root", typed(Admin(name="root"))),
        ),
        prints=("Goodbye Admin", "Goodbye user", "Hello Seth"),
    ),
    *(
        Scenario(
            caller,
            (Delivery("example/caller", "c1", typed(Admin(name="go"))),),
            companions=("p002_hello",),
            prints=("Hello Seth",),
            effects=Effects(messages=[f"example/hello/user1 <- {describe(SETH)}"]),
        )
        for caller in ("p002_caller", "p002_caller_registered")
    ),
    Scenario(
        "p002_delayed",
        (seth_to(STARTER),),
        starter_target="example/delay",
        effects=Effects(
            messages=[f"example/delay/user1 <- {describe(SETH)}"],
            delayed=[
                f"{STARTER}/user1 after 1800000 ms <- "
                f"{describe(Response(message='hello from the past'))}"
            ],
        ),
        leaves_timer=True,
    ),
    Scenario(
        "p002_count_greeter",
        (seth_to("example/count"),) * 3,
        prints=("Hello Seth", "Hello again!", "Third time's the charm"),
        effects=Effects(
            state={"example/count/user1": {"count": any_state_text(CountMessage(value=3))}},
            registered={"example/count": [f"count: {ANY_STATE_TYPENAME}"]},
            incomplete=1,
        ),
    ),
    Scenario(
        "p002_delete_state",
        (seth_to("example/forget"),),
        effects=Effects(
            deleted=["example/forget/user1 count"],
            registered={"example/forget": [f"count: {ANY_STATE_TYPENAME}"]},
            incomplete=1,
        ),
    ),
    Scenario(
        "p002_async",
        (Delivery(STARTER, "Ann", typed(GreetRequest(name="Ann"))),),
        starter_target="example/hello",
        prints=(f"starter got {describe(GreetResponse(name='Ann', greeting='Hello Ann'))}",),
        effects=Effects(
            messages=sorted(
                [
                    f"example/hello/Ann <- {describe(GreetRequest(name='Ann'))}",
                    f"{STARTER}/Ann <- {describe(GreetResponse(name='Ann', greeting='Hello Ann'))}",
                ]
            )
        ),
    ),
    Scenario("p003_skeleton", (greet_request("Ann"),)),
    Scenario("p003_typed_skeleton", (greet_request("Ann"),)),
    Scenario(
        "p003_kafka_greeter",
        (greet_request("Ann"), greet_request("Bob")),
        effects=Effects(
            egress=sorted([kafka_greeting("Ann", "Hello Ann"), kafka_greeting("Bob", "Hello Bob")])
        ),
    ),
    *(
        Scenario(
            walkthrough,
            tuple(greet_request(name) for name in WALKTHROUGH_NAMES),
            effects=Effects(
                egress=COUNTED_GREETINGS,
                state=COUNTED_STATE,
                registered=SEEN_COUNT_ASKED,
                incomplete=1,
            ),
        )
        for walkthrough in ("p003_stateful_greeter", "p003_full_application")
    ),
    Scenario(
        "p003_serving",
        (Delivery("walkthrough/greeter", "Ann", typed(GreetRequest(name="Ann"))),),
    ),
]


def test_every_snippet_has_a_scenario() -> None:
    corpus = {path.stem for path in SNIPPETS.glob("p00*.py")} - {"p002_flask"}
    assert corpus == {scenario.snippet for scenario in SCENARIOS}


# -- the registry a scenario runs -------------------------------------------------------------


def starter_function(target: str) -> typing.Callable[[Context, Message], None]:
    """Forwards an ingress message to ``target`` (so it has a caller); prints what comes back."""

    def starter(context: Context, message: Message) -> None:
        if context.caller is None:
            context.send(Message(target, context.address.id, message.typed_value))
        else:
            print(f"starter got {describe(message.typed_value)}")

    return starter


def prepared(scenario: Scenario) -> types.ModuleType:
    """The snippet's module, its registry completed with the companions and the starter."""
    module = load_snippet(scenario.snippet)
    for companion in scenario.companions:
        other = load_snippet(companion).functions
        for typename in other.typenames():
            module.functions.register(typename, other.for_typename(typename).fun)
    if scenario.starter_target is not None:
        module.functions.register(STARTER, starter_function(scenario.starter_target))
    return module


def run_mini_runtime(
    scenario: Scenario, functions: typing.Any, call: Call, batched: bool
) -> Effects:
    runtime = MiniRuntime(call, set(functions.typenames()))
    if batched:
        instances: dict[tuple[str, str], list[TypedValue]] = {}
        for delivery in scenario.deliveries:
            instances.setdefault((delivery.typename, delivery.id), []).append(delivery.value)
        for (typename, id), values in instances.items():
            runtime.send(typename, id, values)
    else:
        for delivery in scenario.deliveries:
            runtime.send(delivery.typename, delivery.id, [delivery.value])
    return effects_of(runtime.exchanges)


def assert_observed(
    scenario: Scenario, effects: Effects, printed: str, concurrent: bool = False
) -> None:
    """``concurrent``: the runtime calls several instances at once, so each first call of an
    instance may come before the state was registered and be answered incomplete too."""
    if concurrent and scenario.effects.incomplete:
        instances = len({(d.typename, d.id) for d in scenario.deliveries})
        assert scenario.effects.incomplete <= effects.incomplete <= instances
        effects.incomplete = scenario.effects.incomplete
    assert effects == scenario.effects
    assert sorted(printed.splitlines()) == sorted(scenario.prints)


@pytest.mark.parametrize("driver", IN_PROCESS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.snippet for s in SCENARIOS])
def test_in_process(scenario: Scenario, driver: str, capsys: pytest.CaptureFixture[str]) -> None:
    functions = prepared(scenario).functions
    loop = asyncio.new_event_loop()
    try:
        call = in_process_call(functions, driver, loop)
        effects = run_mini_runtime(scenario, functions, call, batched="batched" in driver)
    finally:
        loop.close()

    assert_observed(scenario, effects, capsys.readouterr().out)


def serve(module: types.ModuleType) -> typing.ContextManager[typing.Any]:
    """The snippet's own app, else the page's Flask snippet serving its registry."""
    app = getattr(module, "app", None)
    if app is None:
        app = load_snippet("p002_flask", functions=module.functions).app
    if hasattr(app, "wsgi_app"):
        return serve_wsgi(app)
    return serve_aiohttp(app)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.snippet for s in SCENARIOS])
def test_over_http(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("flask")
    pytest.importorskip("aiohttp")
    module = prepared(scenario)
    with serve(module) as served:
        effects = run_mini_runtime(scenario, module.functions, http_call(served.url), False)

    assert_observed(scenario, effects, capsys.readouterr().out)


# -- statefun.local ---------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.snippet for s in SCENARIOS])
def test_through_statefun_local(
    scenario: Scenario, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for needed in ("statefun.local", "yaml", "aiohttp", "flask"):  # the `local` extra, the apps
        pytest.importorskip(needed)
    module = prepared(scenario)
    # A run that ends waiting for a delayed message stops once each delivery's calls (the
    # starter's and the snippet's) were answered.
    stop = 2 * len(scenario.deliveries) if scenario.leaves_timer else None
    with serve(module) as served:
        written = run_local(scenario.deliveries, served, tmp_path, stop)
        exchanges = served.recorded.exchanges

    assert_observed(scenario, effects_of(exchanges), capsys.readouterr().out, concurrent=True)
    # What reached the Kafka egress file is what the functions' responses carried.
    assert sorted(written) == sorted(
        (record.topic, record.key, record.value_bytes) for record in kafka_records(exchanges)
    )


# -- the snippets are the pages' code ---------------------------------------------------------

# The page each snippet is copied from (001 prints most of 002's code too; 002 is checked).
PAGES = {"p002": "002_*.txt", "p003": "003_*.txt"}
PAGE_CODE = "# --- page code ---"
PAGE_BUG = "# page bug: "


def page_lines(text: str) -> list[str]:
    """A page's lines without the table borders seed 002 is rendered with, stripped, non-blank."""
    lines = []
    for line in text.splitlines():
        if line.startswith("|"):
            line = line[1:]
            if line.endswith("|"):
                line = line[:-1]
        line = line.strip()
        if line:
            lines.append(line)
    return lines


def printed_regions(snippet: str) -> list[list[str]]:
    """The snippet's page code, region by region, with each fixed line put back as printed."""
    regions: list[list[str]] = []
    printed_instead: str | None = None
    for raw in (SNIPPETS / f"{snippet}.py").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line == PAGE_CODE:
            regions.append([])
            continue
        if not regions or not line:
            continue
        if line.startswith(PAGE_BUG):
            printed_instead = line[len(PAGE_BUG) :]
            continue
        if printed_instead is not None:
            assert "# fixed: " in line, f"{snippet}: a '{PAGE_BUG}' line must precede the fix"
            if printed_instead != "(missing)":
                regions[-1].append(printed_instead)
            printed_instead = None
            continue
        assert "# fixed" not in line, f"{snippet}: the fix {line!r} does not say what was printed"
        regions[-1].append(line)
    return regions


def contains(lines: list[str], region: list[str]) -> bool:
    return any(lines[start : start + len(region)] == region for start in range(len(lines)))


@pytest.mark.parametrize(
    "scenario", SCENARIOS + [Scenario("p002_flask", ())], ids=lambda s: s.snippet
)
def test_the_snippet_is_the_pages_code(scenario: Scenario) -> None:
    (page,) = SEEDS.glob(PAGES[scenario.snippet[:4]]) if SEEDS.is_dir() else (None,)
    if page is None:
        pytest.skip(f"the seed pages are not at {SEEDS}")
    lines = page_lines(page.read_text(encoding="utf-8"))
    regions = printed_regions(scenario.snippet)

    assert regions and all(regions)
    for region in regions:
        assert contains(lines, region), f"{scenario.snippet}: not on the page: {region}"


# -- where the pages' code fails, it fails as the user's code would ---------------------------


def test_the_count_greeters_fourth_greeting_is_the_pages_own_type_error() -> None:
    # generate_message adds str and int from the fourth time on. The runtime already holds the
    # count (registered before, e.g. before a restart): the function takes it without a round
    # trip, and the user's TypeError reaches the web framework unchanged.
    functions = load_snippet("p002_count_greeter").functions
    request = to_function(
        "example/count",
        "user1",
        [(None, typed(SETH))],
        state={"count": any_state(CountMessage(value=3))},
    )

    with pytest.raises(TypeError, match="can only concatenate str"):
        RequestReplyHandler(functions)(request)


def test_goodbye_refuses_a_message_outside_its_union() -> None:
    functions = load_snippet("p002_type_hints").functions
    request = to_function("example/goodbye", "x", [(None, typed(CountMessage(value=3)))])

    with pytest.raises(ValueError) as raised:
        RequestReplyHandler(functions)(request)

    assert str(raised.value) == (
        "Unknown message type type.googleapis.com/example.Count: the function example/goodbye "
        "accepts only example.User, example.Admin (from the type hint of its message parameter)"
    )


def test_replies_to_an_ingress_message_have_no_caller() -> None:
    # As in 3.x, the caller of an ingress message is None (2.x docs: "May be None").
    delayed = load_snippet("p002_delayed").functions
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'typename'"):
        RequestReplyHandler(delayed)(to_function("example/delay", "d1", [(None, typed(SETH))]))

    replying = AsyncRequestReplyHandler(load_snippet("p002_async").functions)
    request = to_function("example/hello", "Ann", [(None, typed(GreetRequest(name="Ann")))])
    with pytest.raises(ValueError, match="came from an ingress, so there is no caller to reply"):
        asyncio.run(replying(request))
