"""Runs generated StateFun programs on whichever ``statefun`` this interpreter imports.

    python -I differential_runner.py CASES.pickle RESULTS.pickle

The differential test (test_upstream_differential.py) runs this same file
twice, under upstream apache-flink-statefun 3.3.0 and under this repository's
SDK, on the same pickled cases, and compares the results. It uses only API
both SDKs share, so each function body is literally the same code on both.

A case registers one function, whose body interprets a list of operations
per invocation (read, write, delete a state, decode the message as some
type, send, send later, cancel, send to egresses, raise, ...), and runs one
request through ``handle_sync`` or ``handle_async``. What the function
observed goes into a trace: every value it read (floats by their bits,
mutable values with whether two reads gave the same object), and the class
hierarchy of every exception an operation marked ``catch`` raised. The
result of a case is that trace plus the response bytes, or the class
hierarchy of the exception the handler raised.

Values in the cases are plain Python data; protobuf messages appear as
``("__pb__", message name, serialized bytes)`` and are rebuilt here.
"""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
import struct
import sys
import typing
from datetime import timedelta

from google.protobuf import message as protobuf_message
from google.protobuf.struct_pb2 import ListValue
from google.protobuf.wrappers_pb2 import Int32Value, StringValue

import statefun
from statefun import (
    BoolType,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
    kafka_egress_message,
    kinesis_egress_message,
    make_json_type,
    make_protobuf_type,
    message_builder,
    simple_type,
)

PROTOBUF_CLASSES: dict[str, typing.Any] = {
    "StringValue": StringValue,
    "ListValue": ListValue,
    "Int32Value": Int32Value,
}


def _sorted_json(value: typing.Any) -> bytes:
    return json.dumps(value, sort_keys=True).encode("utf-8")


def _utf8(value: str) -> bytes:
    return value.encode("utf-8")


def _utf8_decode(data: bytes) -> str:
    return data.decode("utf-8")


# The same keys as in the generator (test_upstream_differential.TYPENAMES).
TYPES: dict[str, typing.Any] = {
    "int": IntType,
    "long": LongType,
    "float": FloatType,
    "double": DoubleType,
    "bool": BoolType,
    "string": StringType,
    "json": make_json_type("test.types/json"),
    "sorted_json": simple_type(
        "test.types/sorted-json", serialize_fn=_sorted_json, deserialize_fn=json.loads
    ),
    "pb_string": make_protobuf_type(StringValue),
    "pb_list": make_protobuf_type(ListValue),
    "pb_int32": make_protobuf_type(Int32Value, namespace="test.types"),
    "utf8": simple_type("test.types/utf8", serialize_fn=_utf8, deserialize_fn=_utf8_decode),
    "byte_list": simple_type("test.types/byte-list", serialize_fn=bytes, deserialize_fn=list),
}

BUILTIN_KEYWORDS = {
    "int": "int_value",
    "long": "long_value",
    "float": "float_value",
    "double": "double_value",
    "bool": "bool_value",
    "string": "str_value",
}

IMMUTABLE = (type(None), bool, int, float, str, bytes)

USER_EXCEPTIONS: dict[str, type[Exception]] = {
    "ValueError": ValueError,
    "KeyError": KeyError,
    "RuntimeError": RuntimeError,
}


def build(recipe: typing.Any) -> typing.Any:
    """A fresh Python value from its recipe (protobuf messages rebuilt from their bytes)."""
    if type(recipe) is tuple and len(recipe) == 3 and recipe[0] == "__pb__":
        return PROTOBUF_CLASSES[recipe[1]].FromString(recipe[2])
    if type(recipe) is tuple and len(recipe) == 2 and recipe[0] == "__set__":
        return set(recipe[1])
    return copy.deepcopy(recipe)


def describe(value: typing.Any) -> typing.Any:
    """A comparable, picklable picture of a value: exact types, float bits, container order."""
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str or kind is bytes:
        return (kind.__name__, value)
    if kind is float:
        return ("float", struct.pack("<d", value))
    if kind is list or kind is tuple:
        return (kind.__name__, tuple(describe(item) for item in value))
    if kind is dict:
        return ("dict", tuple((describe(k), describe(v)) for k, v in value.items()))
    if isinstance(value, protobuf_message.Message):
        return ("protobuf", value.DESCRIPTOR.full_name, value.SerializeToString(deterministic=True))
    if isinstance(value, statefun.SdkAddress):
        return ("address", value.namespace, value.name, value.id, value.typename)
    return ("other", kind.__qualname__, repr(value))


def hierarchy(error: BaseException) -> tuple[str, ...]:
    return tuple(f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__)


def mutate(value: typing.Any) -> None:
    """Change a value in place, whatever its kind (immutable values are left alone)."""
    if isinstance(value, dict):
        value["mutated"] = 1
    elif isinstance(value, list):
        value.append(0)
    elif isinstance(value, StringValue):
        value.value += "!"
    elif isinstance(value, Int32Value):
        value.value = 0 if value.value else 1
    elif isinstance(value, ListValue):
        value.values.add().string_value = "mutated"


class HarnessError(BaseException):
    """A mistake of the test itself; not an Exception, so that nothing records it as a result."""


class LooksLikeAMessage:
    """Not a Message, but has its three attributes: upstream sent it like one."""

    def __init__(self, target_typename: str, target_id: typing.Any, typed_value: typing.Any):
        self.target_typename = target_typename
        self.target_id = target_id
        self.typed_value = typed_value


def builder_message(
    target: str, target_id: typing.Any, type_key: str, recipe: typing.Any
) -> Message:
    value = build(recipe)
    keyword = BUILTIN_KEYWORDS.get(type_key)
    if keyword is not None:
        return message_builder(target, target_id, **{keyword: value})
    return message_builder(target, target_id, value=value, value_type=TYPES[type_key])


class Program:
    """The body of one case's function: ``operations[i]`` for the i-th invocation."""

    def __init__(self, operations: list[list[tuple[typing.Any, ...]]]) -> None:
        self.operations = operations
        self.invocation = 0
        self.trace: list[typing.Any] = []

    def __call__(self, context: typing.Any, message: Message) -> None:
        operations = self.operations[min(self.invocation, len(self.operations) - 1)]
        self.trace.append(("invocation", self.invocation))
        self.invocation += 1
        for position, operation in enumerate(operations):
            catch, name, arguments = operation[0], operation[1], operation[2:]
            run = getattr(self, "op_" + name)
            if run.__code__.co_argcount != len(arguments) + 3:
                # The generator and this file disagree: a bug of the test, not a difference.
                raise HarnessError(f"operation {operation!r} does not fit {run.__name__}")
            try:
                run(context, message, *arguments)
            except Exception as error:
                if not catch:
                    raise
                self.trace.append(("raised", position, hierarchy(error)))

    def record(self, *entry: typing.Any) -> None:
        self.trace.append(entry)

    # states

    def op_read(self, context: typing.Any, message: Message, name: str) -> None:
        self.record("read", name, describe(getattr(context.storage, name)))

    def op_read_twice(self, context: typing.Any, message: Message, name: str) -> None:
        first, second = getattr(context.storage, name), getattr(context.storage, name)
        # Identity only means something for mutable values (fresh objects on every read).
        same = None if isinstance(first, IMMUTABLE) else first is second
        self.record("read_twice", name, describe(first), describe(second), same)

    def op_write(
        self, context: typing.Any, message: Message, name: str, recipe: typing.Any
    ) -> None:
        setattr(context.storage, name, build(recipe))

    def op_write_mutate_read(
        self, context: typing.Any, message: Message, name: str, recipe: typing.Any
    ) -> None:
        value = build(recipe)
        setattr(context.storage, name, value)
        mutate(value)
        self.record("write_mutate_read", name, describe(getattr(context.storage, name)))

    def op_read_mutate_read(self, context: typing.Any, message: Message, name: str) -> None:
        value = getattr(context.storage, name)
        mutate(value)
        self.record("read_mutate_read", name, describe(getattr(context.storage, name)))

    def op_delete(self, context: typing.Any, message: Message, name: str) -> None:
        delattr(context.storage, name)

    def op_write_none(self, context: typing.Any, message: Message, name: str) -> None:
        setattr(context.storage, name, None)

    def op_send_state(
        self, context: typing.Any, message: Message, name: str, type_key: str, target: str
    ) -> None:
        value = getattr(context.storage, name)
        if value is not None:
            context.send(message_builder(target, "state", value=value, value_type=TYPES[type_key]))

    # the message

    def op_as(self, context: typing.Any, message: Message, accessor: str) -> None:
        if accessor in TYPES:
            value = message.as_type(TYPES[accessor])
        else:
            value = getattr(message, accessor)()
        self.record("as", accessor, describe(value))

    def op_inspect(self, context: typing.Any, message: Message) -> None:
        self.record(
            "inspect",
            message.value_typename(),
            message.raw_value(),
            message.is_int(),
            message.is_long(),
            message.is_float(),
            message.is_double(),
            message.is_bool(),
            message.is_string(),
            tuple(message.is_type(tpe) for tpe in TYPES.values()),
            message.target_typename,
            message.target_id,
        )

    def op_where(self, context: typing.Any, message: Message) -> None:
        self.record("where", describe(context.address), describe(context.caller))

    # sending

    def op_send(
        self,
        context: typing.Any,
        message: Message,
        target: str,
        target_id: typing.Any,
        type_key: str,
        recipe: typing.Any,
    ) -> None:
        context.send(builder_message(target, target_id, type_key, recipe))

    def op_forward(self, context: typing.Any, message: Message, target: str) -> None:
        context.send(Message(target, "forwarded", message.typed_value))

    def op_send_lookalike(
        self,
        context: typing.Any,
        message: Message,
        target: str,
        target_id: typing.Any,
        typed_value: bool,
    ) -> None:
        value = message.typed_value if typed_value else "not a TypedValue"
        context.send(LooksLikeAMessage(target, target_id, value))

    def op_send_then_change(
        self, context: typing.Any, message: Message, target: str, raw: bytes
    ) -> None:
        # Upstream read the message when it built the response: later changes are sent.
        sent = message_builder(target, "changed", str_value="before")
        context.send(sent)
        sent.typed_value.value = raw
        sent.target_id = "changed-" + sent.target_id

    def op_send_after(
        self,
        context: typing.Any,
        message: Message,
        milliseconds: int,
        target: str,
        type_key: str,
        recipe: typing.Any,
        token: typing.Any,
    ) -> None:
        delayed = builder_message(target, "later", type_key, recipe)
        delay = timedelta(milliseconds=milliseconds)
        if token == "__default__":
            context.send_after(delay, delayed)
        else:
            context.send_after(delay, delayed, token)

    def op_cancel(self, context: typing.Any, message: Message, token: typing.Any) -> None:
        context.cancel_delayed_message(token)

    def op_kafka(
        self,
        context: typing.Any,
        message: Message,
        typename: str,
        topic: typing.Any,
        recipe: typing.Any,
        type_key: str | None,
        key: typing.Any,
    ) -> None:
        value_type = TYPES[type_key] if type_key else None
        context.send_egress(
            kafka_egress_message(typename, topic, build(recipe), value_type=value_type, key=key)
        )

    def op_kinesis(
        self,
        context: typing.Any,
        message: Message,
        typename: str,
        stream: typing.Any,
        recipe: typing.Any,
        partition_key: typing.Any,
        type_key: str | None,
        hash_key: typing.Any,
    ) -> None:
        value_type = TYPES[type_key] if type_key else None
        context.send_egress(
            kinesis_egress_message(
                typename,
                stream,
                build(recipe),
                partition_key,
                value_type=value_type,
                explicit_hash_key=hash_key,
            )
        )

    def op_egress(
        self,
        context: typing.Any,
        message: Message,
        typename: str,
        type_key: str,
        recipe: typing.Any,
    ) -> None:
        value_type = TYPES[type_key] if type_key else None
        context.send_egress(egress_message_builder(typename, build(recipe), value_type))

    def op_send_raw(self, context: typing.Any, message: Message, value: typing.Any) -> None:
        # Not a Message at all: upstream failed reading its attributes.
        context.send(value)

    def op_egress_raw(self, context: typing.Any, message: Message, value: typing.Any) -> None:
        context.send_egress(value)

    def op_raise(self, context: typing.Any, message: Message, name: str) -> None:
        raise USER_EXCEPTIONS[name](f"raised by the function ({name})")


def run_case(case: dict[str, typing.Any], loop: asyncio.AbstractEventLoop) -> dict[str, typing.Any]:
    program = Program(case["operations"])

    # Plain functions: upstream counted getfullargspec().args, which rejects methods and objects.
    def body(context: typing.Any, message: Message) -> None:
        program(context, message)

    async def async_body(context: typing.Any, message: Message) -> None:
        await asyncio.sleep(0)
        program(context, message)

    functions = StatefulFunctions()
    specs = [
        ValueSpec(
            name,
            TYPES[type_key],
            expire_after_call=timedelta(milliseconds=call) if call else None,
            expire_after_write=timedelta(milliseconds=write) if write else None,
        )
        for name, type_key, call, write in case["specs"]
    ]
    functions.register(case["typename"], async_body if case["async_function"] else body, specs)
    handler = RequestReplyHandler(functions)
    try:
        if case["entry"] == "sync":
            response = handler.handle_sync(case["request"])
        else:
            response = loop.run_until_complete(handler.handle_async(case["request"]))
        result: tuple[typing.Any, ...] = ("response", response)
    except Exception as error:
        result = ("error", hierarchy(error), str(error))
    return {"result": result, "trace": program.trace}


def main() -> None:
    cases_path, results_path = sys.argv[1], sys.argv[2]
    with open(cases_path, "rb") as handle:
        cases = pickle.load(handle)
    loop = asyncio.new_event_loop()
    results = [run_case(case, loop) for case in cases]
    loop.close()
    with open(results_path, "wb") as handle:
        pickle.dump({"module": statefun.__file__, "results": results}, handle)


if __name__ == "__main__":
    main()
