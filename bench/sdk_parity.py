"""Byte-for-byte parity with upstream apache-flink-statefun 3.3.0 over many scenarios.

    .venv/bin/python bench/sdk_parity.py

Runs the same functions and requests through upstream 3.3.0 (the venv that
``scripts/upstream_statefun.py`` sets up under ``.venv-upstream``) and through this
repository's ``statefun``, and compares the response bytes. The scenarios use
only behaviour both SDKs share (not, e.g., the typename checks this SDK adds).
Exits non-zero on any difference. Not part of the test suite: it needs the
upstream wheel from PyPI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from datetime import timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
SUBPROCESS_TIMEOUT = 300

Scenario = tuple[str, typing.Any, list[typing.Any], bytes]


def build_request(
    typename: str,
    id: str,
    arguments: list[tuple[bytes, typing.Any]],
    state: dict[str, tuple[typing.Any, typing.Any] | None],
    caller: tuple[str, str, str] | None = None,
) -> bytes:
    from statefun.request_reply_pb2 import ToFunction
    from statefun.utils import to_typed_value

    request = ToFunction()
    batch = request.invocation
    batch.target.namespace, batch.target.type = typename.rsplit("/", 1)
    batch.target.id = id
    for name, value in state.items():
        persisted = batch.state.add()
        persisted.state_name = name
        if value is not None:
            persisted.state_value.CopyFrom(to_typed_value(value[1], value[0]))
    for value, tpe in arguments:
        invocation = batch.invocations.add()
        invocation.argument.CopyFrom(to_typed_value(tpe, value))
        if caller is not None:
            invocation.caller.namespace, invocation.caller.type, invocation.caller.id = caller
    return request.SerializeToString()


def scenarios() -> list[Scenario]:
    """(name, function, specs, request) for each case, written against the shared API."""
    from google.protobuf.wrappers_pb2 import StringValue

    from statefun import (
        BoolType,
        DoubleType,
        FloatType,
        IntType,
        LongType,
        Message,
        StringType,
        ValueSpec,
        egress_message_builder,
        kafka_egress_message,
        kinesis_egress_message,
        make_json_type,
        make_protobuf_type,
        message_builder,
    )

    Doc = make_json_type("ex/doc")
    Wrapped = make_protobuf_type(StringValue)
    name = "ä-user-" + "x" * 130  # non-ASCII and a two-byte length
    cases: list[Scenario] = []

    def greet(context: typing.Any, message: typing.Any) -> None:
        who = message.as_string()
        seen = context.storage.seen or 0
        context.storage.seen = seen + 1
        context.send(
            message_builder(
                target_typename="ex/inbox", target_id=who, str_value=f"hi {who} #{seen}"
            )
        )
        context.send_egress(
            kafka_egress_message(typename="ex/kafka", topic="t", key=who, value=f"hi {who}")
        )

    cases.append(
        (
            "greeter batch",
            greet,
            [ValueSpec("seen", IntType)],
            build_request(
                "ex/fn", "a", [("bob", StringType), (name, StringType)], {"seen": (41, IntType)}
            ),
        )
    )
    cases.append(
        (
            "missing states with expirations",
            lambda c, m: None,
            [
                ValueSpec("a", IntType),
                ValueSpec("b", StringType, expire_after_call=timedelta(seconds=5)),
                ValueSpec("c", Doc, expire_after_write=timedelta(minutes=3, milliseconds=7)),
                ValueSpec("d", BoolType, expire_after_call=timedelta(microseconds=900)),
            ],
            build_request("ex/fn", "a", [("x", StringType)], {"a": None}),
        )
    )

    def delete(context: typing.Any, message: typing.Any) -> None:
        del context.storage.a
        del context.storage.b

    cases.append(
        (
            "deletes, present and absent",
            delete,
            [ValueSpec("a", IntType), ValueSpec("b", StringType)],
            build_request("ex/fn", "a", [("x", StringType)], {"a": (3, IntType), "b": None}),
        )
    )
    cases.append(
        (
            "no effect",
            lambda c, m: c.storage.a,
            [ValueSpec("a", IntType)],
            build_request(
                "ex/fn", "a", [("x", StringType), ("y", StringType)], {"a": (3, IntType)}
            ),
        )
    )
    cases.append(
        (
            "empty batch",
            lambda c, m: None,
            [],
            build_request("ex/fn", "a", [], {}),
        )
    )

    def delays(context: typing.Any, message: typing.Any) -> None:
        context.send_after(
            timedelta(hours=1), message_builder(target_typename="ex/a", target_id="1", int_value=1)
        )
        context.send_after(
            timedelta(0),
            message_builder(target_typename="ex/a", target_id="2", long_value=-5),
            "tok",
        )
        context.cancel_delayed_message("old-token")
        context.send_after(
            timedelta(milliseconds=1.7),
            message_builder(target_typename="ex/b", target_id=name, bool_value=False),
            "",
        )

    cases.append(
        ("delays and cancellations", delays, [], build_request("ex/fn", "a", [(1, IntType)], {}))
    )

    def values(context: typing.Any, message: typing.Any) -> None:
        for keyword, value in [
            ("int_value", 0),
            ("int_value", -(2**31)),
            ("long_value", 2**63 - 1),
            ("bool_value", True),
            ("float_value", 0.1),
            ("double_value", -0.0),
            ("double_value", 1e300),
            ("str_value", ""),
            ("str_value", "€" * 50),
        ]:
            context.send(message_builder(target_typename="ex/v", target_id="1", **{keyword: value}))
        context.send(
            message_builder(
                target_typename="ex/v", target_id="2", value={"k": ["ü", 1]}, value_type=Doc
            )
        )
        context.send(
            message_builder(
                target_typename="ex/v",
                target_id="3",
                value=StringValue(value="w"),
                value_type=Wrapped,
            )
        )
        context.send(
            Message(target_typename="ex/forward", target_id="4", typed_value=message.typed_value)
        )

    cases.append(
        ("built-in and custom values", values, [], build_request("ex/fn", "a", [(7, IntType)], {}))
    )

    def state_values(context: typing.Any, message: typing.Any) -> None:
        context.storage.b = ""
        context.storage.a = 0
        context.storage.d = {"list": [1, 2]}
        context.storage.c = 2.5

    cases.append(
        (
            "state zero values in declaration order",
            state_values,
            [
                ValueSpec("a", IntType),
                ValueSpec("b", StringType),
                ValueSpec("c", DoubleType),
                ValueSpec("d", Doc),
                ValueSpec("e", LongType),
            ],
            build_request(
                "ex/fn",
                "a",
                [("x", StringType)],
                {
                    "d": None,
                    "c": None,
                    "b": (".", StringType),
                    "a": (1, IntType),
                    "e": (9, LongType),
                },
            ),
        )
    )

    def egresses(context: typing.Any, message: typing.Any) -> None:
        context.send_egress(kafka_egress_message(typename="ex/kafka", topic="t", value=b"\x00\x01"))
        context.send_egress(kafka_egress_message(typename="ex/kafka", topic="t", value=3, key=""))
        context.send_egress(
            kafka_egress_message(typename="ex/kafka", topic="t", value=0.5, value_type=FloatType)
        )
        context.send_egress(
            kinesis_egress_message(
                typename="ex/kin", stream="s", value="v", partition_key="p", explicit_hash_key="h"
            )
        )
        context.send_egress(
            kinesis_egress_message(typename="ex/kin", stream="s", value=b"", partition_key="")
        )
        context.send_egress(
            egress_message_builder(target_typename="ex/custom", value={"a": 1}, value_type=Doc)
        )

    cases.append(
        ("egress records", egresses, [], build_request("ex/fn", "a", [("x", StringType)], {}))
    )

    async def reply(context: typing.Any, message: typing.Any) -> None:
        caller = context.caller
        context.send(
            message_builder(target_typename=caller.typename, target_id=caller.id, str_value="back")
        )

    cases.append(
        (
            "async reply to caller",
            reply,
            [],
            build_request("ex/fn", "a", [("x", StringType)], {}, caller=("ex", "caller", "c-1")),
        )
    )
    return cases


def run_scenarios() -> dict[str, str]:
    from statefun import RequestReplyHandler, StatefulFunctions

    results = {}
    for name, fun, specs, request in scenarios():
        functions = StatefulFunctions()
        functions.register("ex/fn", fun, specs)
        results[name] = RequestReplyHandler(functions).handle_sync(request).hex()
    return results


def main() -> None:
    if "--worker" in sys.argv:
        import statefun

        print(json.dumps({"module": statefun.__file__, "results": run_scenarios()}))
        return
    sys.path.insert(0, HERE)
    from sdk_handler import upstream_python

    def run(python: str) -> dict[str, typing.Any]:
        completed = subprocess.run(
            [python, "-I", os.path.abspath(__file__), "--worker"],
            check=True,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )
        return typing.cast(dict[str, typing.Any], json.loads(completed.stdout))

    upstream = run(upstream_python())
    ours = run(sys.executable)
    assert ".venv-upstream" in upstream["module"], upstream["module"]
    differing = 0
    for name, expected in upstream["results"].items():
        got = ours["results"][name]
        same = got == expected
        differing += not same
        print(
            f"{'same' if same else 'DIFFERENT':9}  {len(bytes.fromhex(expected)):5} bytes  {name}"
        )
        if not same:
            print(f"    upstream: {expected}\n    ours:     {got}")
    print(
        f"{len(upstream['results']) - differing} of {len(upstream['results'])} scenarios byte-identical to upstream 3.3.0"
    )
    if differing:
        sys.exit(1)


if __name__ == "__main__":
    main()
