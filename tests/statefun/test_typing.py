"""The public API's types as a user's type checker sees them (mypy --strict on a small program)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

PROGRAM = textwrap.dedent("""
    from google.protobuf.wrappers_pb2 import StringValue
    from statefun import (
        Context, IntType, Message, StatefulFunctions, StringType, ValueSpec, make_json_type,
        make_protobuf_type, simple_type,
    )

    functions = StatefulFunctions()
    Point = simple_type("ex/point", lambda p: f"{p[0]},{p[1]}".encode(), lambda b: (1, 2))
    counter = ValueSpec("counter", IntType)

    @functions.bind("ex/fn", [counter])
    def fn(context: Context, message: Message) -> None:
        reveal_type(message.as_int())
        reveal_type(message.as_string())
        reveal_type(message.as_type(make_protobuf_type(StringValue)))
        reveal_type(message.as_type(Point))
        reveal_type(counter)
        reveal_type(context.caller)
        reveal_type(context.storage.counter)
        reveal_type(make_json_type("ex/doc"))

    reveal_type(fn)
    """)

EXPECTED = [
    "int | None",
    "str | None",
    "google.protobuf.wrappers_pb2.StringValue | None",
    "tuple[int, int] | None",
    "statefun.core.ValueSpec[int]",
    "statefun.core.SdkAddress | None",
    "Any",
    "statefun.core.Type[Any]",
    "def (context: statefun.context.Context, message: statefun.messages.Message)",
]


def normalize(revealed: str) -> str:
    # Older mypy versions spell these Union[X, None], builtins.int and Tuple[...].
    revealed = revealed.replace("builtins.", "").replace("Tuple[", "tuple[")
    match = re.fullmatch(r"Union\[(.+), None\]", revealed)
    return f"{match.group(1)} | None" if match else revealed


def test_public_api_types_under_mypy_strict(tmp_path: Path) -> None:
    program = tmp_path / "user_program.py"
    program.write_text(PROGRAM)
    stdout, stderr, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(program)]
    )
    revealed = [
        normalize(line.split('Revealed type is "', 1)[1].rstrip('"'))
        for line in stdout.splitlines()
        if "Revealed type is" in line
    ]
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert errors == [], stdout
    assert [r.split(" -> ")[0] for r in revealed] == EXPECTED, stdout
