"""Seeded random cases for the differential test against upstream (see differential_runner.py).

Everything here is built with protobuf and the standard library only, never
with either SDK: a case is a function's state specs, its program (the
operations each invocation runs) and one request, as plain data.

The values lean on the edges where SDKs differ: float32 narrowing and
overflow, -0.0, NaN payloads, ints at and past the 32/64-bit ranges, bools
and floats given to int fields, JSON with non-string keys, tuples, NaN and
lone surrogates, long and non-ASCII strings, protobuf messages changed in
place; states missing, extra, repeated, absent, of another type or corrupt;
batches of 1 to 20 invocations; bodies that are not requests at all.
"""

from __future__ import annotations

import json
import random
import struct
import typing

from google.protobuf.struct_pb2 import ListValue
from google.protobuf.wrappers_pb2 import Int32Value, StringValue

from statefun import types_pb2
from statefun.request_reply_pb2 import ToFunction, TypedValue

TYPENAMES = {
    "int": "io.statefun.types/int",
    "long": "io.statefun.types/long",
    "float": "io.statefun.types/float",
    "double": "io.statefun.types/double",
    "bool": "io.statefun.types/bool",
    "string": "io.statefun.types/string",
    "json": "test.types/json",
    "sorted_json": "test.types/sorted-json",
    "pb_string": "type.googleapis.com/google.protobuf.StringValue",
    "pb_list": "type.googleapis.com/google.protobuf.ListValue",
    "pb_int32": "test.types/google.protobuf.Int32Value",
    "utf8": "test.types/utf8",
    "byte_list": "test.types/byte-list",
}
TYPE_KEYS = list(TYPENAMES)
BUILTINS = ["int", "long", "float", "double", "bool", "string"]
ACCESSORS = ["as_int", "as_long", "as_float", "as_double", "as_bool", "as_string"]

FUNCTION = "test.fn/f"
TARGETS = ["test.fn/inbox", "test.other/x", "a.b.c/d/e"]
EGRESSES = ["test.io/kafka", "test.io/kinesis", "test/out"]


def _bits(value: int) -> float:
    result: float = struct.unpack("<d", struct.pack("<Q", value))[0]
    return result


FLOATS = [
    0.0,
    -0.0,
    0.1,
    -2.5,
    1.0e39,
    -1.0e39,
    3.4028234663852886e38,  # float32 max
    3.4028235677973366e38,  # just past it: rounds to infinity
    1.0e-45,
    1.0e-46,
    5.0e-324,
    float("inf"),
    float("-inf"),
    float("nan"),
    _bits(0x7FF0000000000001),  # signalling NaN
    _bits(0xFFF8000000000123),  # negative NaN with a payload
    _bits(0x7FF4000000000000),
    16777217.0,
    1.0e308,
]
INTS = [
    0,
    1,
    -1,
    7,
    2**31 - 1,
    -(2**31),
    2**31,
    -(2**31) - 1,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**63) - 1,
    10**30,
]
STRINGS = [
    "",
    "a",
    "hello",
    "é",
    "日本語",
    "😀 emoji",
    "\x00nul",
    "x" * 127,
    "y" * 128,
    "z" * 300,
    "\ud800",
    "a\udcff",
]
# Values of the wrong Python type for every built-in type.
ODD = [True, False, 1.5, "7", b"raw", b"\xff", [1], 2**64]


def _pb(message: typing.Any) -> tuple[str, str, bytes]:
    return ("__pb__", type(message).__name__, message.SerializeToString())


def _list(items: list[typing.Any]) -> ListValue:
    # A list, not a Struct: map entries serialize in an order protobuf does not fix.
    message = ListValue()
    message.extend(items)
    return message


def _json_values(rng: random.Random) -> typing.Any:
    choices: list[typing.Any] = [
        {"b": 1, "a": 2},
        {1: (2, 3)},
        {1.5: "x", True: None, None: 0, 2: [1, (2, 3)]},
        [1, "two", 3.0, None, True],
        ("tuple", ["nested", ("deeper",)]),
        "日本語",
        rng.choice(FLOATS),
        rng.choice(INTS),
        {"f": rng.choice(FLOATS), "s": rng.choice(STRINGS)},
        {"deep": {"deeper": {"deepest": [rng.randint(-5, 5)]}}},
        ("__set__", (1, 2)),
        {(1, 2): 1},
        {1: "a", "b": 2},
        b"bytes",
        "\ud800",
        True,
        0,
    ]
    return rng.choice(choices)


def value_recipe(rng: random.Random, type_key: str) -> typing.Any:
    """A value to assign to a state or send, usually storable, sometimes not."""
    if type_key in ("int", "long"):
        return rng.choice(INTS + ODD[:4] + [rng.randint(-1000, 1000)])
    if type_key in ("float", "double"):
        return rng.choice(FLOATS + INTS[:8] + [True, "7", 10**400, rng.uniform(-1e6, 1e6)])
    if type_key == "bool":
        return rng.choice([True, False, True, 0, 1, 2, -(2**63), 2**64, 1.5, "x"])
    if type_key in ("string", "utf8"):
        return rng.choice(STRINGS + ["abc" * rng.randint(1, 60), b"raw", b"\xff", 5])
    if type_key in ("json", "sorted_json"):
        return _json_values(rng)
    if type_key == "pb_string":
        return _pb(StringValue(value=rng.choice(STRINGS[:10])))
    if type_key == "pb_list":
        return _pb(_list([rng.choice(FLOATS[:5]), rng.choice(STRINGS[:7]), True]))
    if type_key == "pb_int32":
        return _pb(Int32Value(value=rng.choice([0, 1, -(2**31), 2**31 - 1])))
    if type_key == "byte_list":
        return rng.choice([[0, 1, 255], [], [256], ["a"], b"\x01\x02", [rng.randint(0, 255)] * 3])
    raise AssertionError(type_key)


_WRAPPERS = {
    "int": types_pb2.IntWrapper,
    "long": types_pb2.LongWrapper,
    "float": types_pb2.FloatWrapper,
    "double": types_pb2.DoubleWrapper,
    "bool": types_pb2.BooleanWrapper,
    "string": types_pb2.StringWrapper,
}
_PB_CLASSES = {"StringValue": StringValue, "ListValue": ListValue, "Int32Value": Int32Value}


def encode(type_key: str, recipe: typing.Any) -> bytes:
    """What the type's serializer makes of the value (any exception if it cannot)."""
    if type(recipe) is tuple and recipe and recipe[0] == "__pb__":
        payload: bytes = _PB_CLASSES[recipe[1]].FromString(recipe[2]).SerializeToString()
        return payload
    if type_key in _WRAPPERS:
        wrapper: typing.Any = _WRAPPERS[type_key]()
        wrapper.value = recipe
        data: bytes = wrapper.SerializeToString()
        return data
    if type_key == "json":
        return json.dumps(recipe, ensure_ascii=False).encode("utf-8")
    if type_key == "sorted_json":
        return json.dumps(recipe, sort_keys=True).encode("utf-8")
    if type_key == "utf8":
        return typing.cast(str, recipe).encode("utf-8")
    if type_key == "byte_list":
        return bytes(recipe)
    raise TypeError(f"{recipe!r} is not a {type_key}")


def stored_bytes(rng: random.Random, type_key: str) -> bytes:
    """The bytes of a storable value of the type (some attempts are not storable: retry)."""
    for _ in range(50):
        try:
            return encode(type_key, value_recipe(rng, type_key))
        except Exception:  # noqa: BLE001 - not storable, pick another
            continue
    raise AssertionError(f"no storable value for {type_key}")


def corrupt_bytes(rng: random.Random) -> bytes:
    return rng.choice(
        [
            b"\xff",
            b"\x0a\x05hi",
            b"\x0a\x01\xff",
            b"\x0d\x01",
            b'{"a":',
            b"\xff\xfe\x00",
            b"\x09" + b"\x00" * 7,
            rng.randbytes(rng.randint(1, 8)),
        ]
    )


def payload(rng: random.Random) -> tuple[str, bool, bytes]:
    """An invocation argument: (typename, has_value, value) of any type, or garbage."""
    roll = rng.random()
    type_key = rng.choice(TYPE_KEYS)
    if roll < 0.08:
        return (TYPENAMES[type_key], False, b"")
    if roll < 0.18:
        return (
            rng.choice([TYPENAMES[type_key], "test.types/unknown", ""]),
            True,
            corrupt_bytes(rng),
        )
    if roll < 0.3:
        # The bytes of one type under the typename of another.
        return (TYPENAMES[rng.choice(TYPE_KEYS)], True, stored_bytes(rng, type_key))
    return (TYPENAMES[type_key], True, stored_bytes(rng, type_key))


def state_value(rng: random.Random, type_key: str) -> tuple[str, bool, bytes] | None:
    """A state as the runtime attaches it: None for no value at all, else a TypedValue."""
    roll = rng.random()
    if roll < 0.15:
        return None
    if roll < 0.22:
        return (TYPENAMES[type_key], False, b"")
    if roll < 0.28:
        return (TYPENAMES[rng.choice(TYPE_KEYS)], True, stored_bytes(rng, type_key))
    if roll < 0.34:
        return (TYPENAMES[type_key], True, corrupt_bytes(rng))
    return (TYPENAMES[type_key], True, stored_bytes(rng, type_key))


def build_request(
    rng: random.Random,
    specs: list[tuple[str, str, int, int]],
    invocations: int,
) -> bytes:
    request = ToFunction()
    batch = request.invocation
    target = rng.random()
    namespace, name = FUNCTION.split("/")
    if target < 0.03:
        namespace, name = "test.fn", "unknown"
    elif target < 0.04:
        namespace = ""
    elif target < 0.05:
        name = ""
    batch.target.namespace, batch.target.type = namespace, name
    if target < 0.06 and target >= 0.05:
        pass  # no id at all
    elif rng.random() < 0.97:
        batch.target.id = rng.choice(["id-1", "日本", "x" * 200, "a/b"])
    states = [(name, key) for name, key, _, _ in specs]
    if rng.random() < 0.3:
        rng.shuffle(states)
    if rng.random() < 0.15 and states:
        states.pop(rng.randrange(len(states)))  # missing: the response asks for it
    if rng.random() < 0.15:
        states.append(("extra_state", rng.choice(TYPE_KEYS)))
    if rng.random() < 0.1 and states:
        states.append(rng.choice(states))  # repeated: the last one counts
    for state_name, type_key in states:
        persisted = batch.state.add(state_name=state_name)
        value = state_value(rng, type_key)
        if value is not None:
            typename, has_value, data = value
            persisted.state_value.CopyFrom(
                TypedValue(typename=typename, has_value=has_value, value=data)
            )
    for _ in range(invocations):
        typename, has_value, data = payload(rng)
        invocation = batch.invocations.add(
            argument=TypedValue(typename=typename, has_value=has_value, value=data)
        )
        if rng.random() < 0.5:
            invocation.caller.namespace, invocation.caller.type = "test.caller", "c"
            invocation.caller.id = rng.choice(["1", "caller-id", ""])
    body = request.SerializeToString()
    damage = rng.random()
    if damage < 0.01:
        return b""
    if damage < 0.02:
        return body[: rng.randrange(max(1, len(body)))]
    if damage < 0.03:
        return rng.randbytes(rng.randint(1, 30))
    if damage < 0.035:
        return ToFunction().SerializeToString() + b"\x08\x01"
    return body


def operation(
    rng: random.Random, specs: list[tuple[str, str, int, int]], response_failures: bool
) -> tuple[typing.Any, ...]:
    """One operation of a function body; ``catch``: record its exception and go on."""
    catch = rng.random() < 0.88
    names = [name for name, _, _, _ in specs]
    types = {name: key for name, key, _, _ in specs}
    state = rng.choice(names) if names else "undeclared"
    if rng.random() < 0.05:
        state = "undeclared"
    type_key = types.get(state, rng.choice(TYPE_KEYS))
    roll = rng.random()
    if roll < 0.14:
        return (catch, "read", state)
    if roll < 0.2:
        return (catch, "read_twice", state)
    if roll < 0.34:
        return (catch, "write", state, value_recipe(rng, type_key))
    if roll < 0.4:
        return (catch, "write_mutate_read", state, value_recipe(rng, type_key))
    if roll < 0.45:
        return (catch, "read_mutate_read", state)
    if roll < 0.5:
        return (catch, "delete", state)
    if roll < 0.51:
        return (catch, "write_none", state)
    if roll < 0.55:
        return (catch, "send_state", state, type_key, rng.choice(TARGETS))
    if roll < 0.64:
        return (catch, "as", rng.choice(ACCESSORS + TYPE_KEYS))
    if roll < 0.67:
        return (catch, "inspect")
    if roll < 0.69:
        return (catch, "where")
    if roll < 0.76:
        send_type = rng.choice(TYPE_KEYS)
        target_id: typing.Any = rng.choice(["1", "日本", "x" * 130])
        if response_failures and rng.random() < 0.1:
            target_id = rng.choice([5, b"bytes-id", None])
        return (
            catch,
            "send",
            rng.choice(TARGETS),
            target_id,
            send_type,
            value_recipe(rng, send_type),
        )
    if roll < 0.78:
        return (catch, "forward", rng.choice(TARGETS))
    if roll < 0.79:
        target_id = (
            rng.choice(["1", b"bytes-id"]) if not response_failures else rng.choice([1, "1"])
        )
        typed_value = not response_failures or rng.random() < 0.8
        return (catch, "send_lookalike", rng.choice(TARGETS), target_id, typed_value)
    if roll < 0.8:
        return (catch, "send_then_change", rng.choice(TARGETS), rng.choice([b"", b"\x0a\x01x"]))
    if roll < 0.85:
        send_type = rng.choice(BUILTINS)
        token = rng.choice(["__default__", "", "token", None, "日本", b"bytes-token"])
        return (
            catch,
            "send_after",
            rng.choice([0, 1, 1500, 2**40, -5]),
            rng.choice(TARGETS),
            send_type,
            value_recipe(rng, send_type),
            token,
        )
    if roll < 0.87:
        return (catch, "cancel", rng.choice(["token", "日本", b"bytes-token"]))
    if roll < 0.92:
        value_type = rng.choice([None, None, "string", "json", "int"])
        recipe = (
            value_recipe(rng, value_type)
            if value_type
            else rng.choice(["text", b"raw", 7, 2**31, 1.5, True, [1], None, "\ud800"])
        )
        return (
            catch,
            "kafka",
            EGRESSES[0],
            rng.choice(["topic", "", b"byte-topic"]),
            recipe,
            value_type,
            rng.choice([None, "", "key", b"byte-key", 5] if response_failures else [None, "key"]),
        )
    if roll < 0.95:
        value_type = rng.choice([None, None, "utf8"])
        recipe = rng.choice(["text", b"raw", 7, None]) if value_type is None else "text"
        return (
            catch,
            "kinesis",
            EGRESSES[1],
            rng.choice(["stream", ""]),
            recipe,
            rng.choice(["pk", None, ""]),
            value_type,
            rng.choice([None, "", "hash"]),
        )
    if roll < 0.98:
        egress_type = rng.choice(TYPE_KEYS)
        return (catch, "egress", rng.choice(EGRESSES), egress_type, value_recipe(rng, egress_type))
    return (rng.random() < 0.3, "raise", rng.choice(["ValueError", "KeyError", "RuntimeError"]))


# Misuse that upstream only noticed while building the response, after every invocation ran;
# this SDK refuses it at the call (docs/sdk.md). A case ends with at most one of them,
# uncaught, so that both fail with the same exception.
def late_failure(rng: random.Random) -> tuple[typing.Any, ...]:
    roll = rng.random()
    if roll < 0.35:
        target = rng.choice(["noslash", "/x", "x/", 5])
        return (False, "send", target, "1", "int", 1)
    if roll < 0.5:
        return (False, "send_after", 10, "test.fn/inbox", "int", 1, rng.choice([5, 1.5]))
    if roll < 0.65:
        return (False, "cancel", rng.choice([5, None]))
    if roll < 0.8:
        return (False, "send_raw", rng.choice(["text", 5, None]))
    if roll < 0.9:
        return (False, "egress_raw", rng.choice(["text", None]))
    return (False, "kafka", "noslash", "topic", "v", None, None)


def generate(seed: int, count: int) -> list[dict[str, typing.Any]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        specs: list[tuple[str, str, int, int]] = []
        for index in range(rng.randint(0, 4)):
            expiry = rng.random()
            call = rng.choice([1, 1500, 60000]) if expiry < 0.2 else 0
            write = rng.choice([2, 5000]) if 0.2 <= expiry < 0.35 else 0
            specs.append((f"s{index}", rng.choice(TYPE_KEYS), call, write))
        invocations = rng.choice([1, 1, 1, 2, 3, 5, rng.randint(1, 20)])
        ends_badly = rng.random() < 0.1
        programs = [
            [operation(rng, specs, not ends_badly) for _ in range(rng.randint(0, 8))]
            for _ in range(rng.randint(1, invocations))
        ]
        if ends_badly:
            # The program of the last invocation (the last list serves every later one).
            if len(programs) < invocations:
                programs.extend(programs[-1:] * (invocations - len(programs)))
            programs[-1] = [*programs[-1], late_failure(rng)]
        request = build_request(rng, specs, invocations)
        if rng.random() < 0.003:
            request = request.hex()  # type: ignore[assignment]  # a str body
        cases.append(
            {
                "specs": specs,
                "operations": programs,
                "typename": FUNCTION,
                "request": request,
                "async_function": rng.random() < 0.3,
                "entry": rng.choice(["sync", "async"]),
            }
        )
    return cases
