"""Property: for any schema and manifest, the generator writes strict-clean, importable code
and a module.yaml the runtime loads, or refuses with located errors and writes nothing.

Hypothesis draws identifiers (Python keywords, soft keywords, builtins, the names protobuf's
modules and messages define, random ones), file paths (digits, dashes, dots, keyword
directories), schemas (proto2/proto3, nested types, enums, maps, repeated fields,
extensions) and manifests (functions, states, sends, names that collide once escaped).
The run is bounded: a fixed number of examples, derandomized so CI sees the same ones
(set STATEFUN_HYPOTHESIS_EXPLORE=1 to draw new ones), and every generating example is
checked at the end with one mypy run and one import subprocess.
"""

from __future__ import annotations

import itertools
import keyword
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statefun_codegen.module_rules import read_module_yaml

from .corpus import LOCATED, import_and_register, mypy_strict, run_cli

EXPLORE = os.environ.get("STATEFUN_HYPOTHESIS_EXPLORE") == "1"
EXAMPLES = int(os.environ.get("STATEFUN_HYPOTHESIS_EXAMPLES", "40"))

HOSTILE_NAMES = sorted(
    {
        *keyword.kwlist,
        *keyword.softkwlist,
        "str",
        "bytes",
        "int",
        "float",
        "bool",
        "list",
        "type",
        "object",
        "self",
        "self_",
        "cls",
        "DESCRIPTOR",
        "_descriptor",
        "_message",
        "_sym_db",
        "_globals",
        "_builder",
        "_Optional",
        "_ClassVar",
        "SerializeToString",
        "HasField",
        "Extensions",
        "ByteSize",
        "__init__",
        "__debug__",
        "_fields",
        "A_FIELD_NUMBER",
        "generated",
        "functions",
        "types",
        "register",
        "Context",
        "Message",
        "Any",
        "Final",
    }
)
_plain = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True)
# mostly ordinary names (first: the simplest examples are ordinary ones), so that many
# examples generate and the hostile names meet real code
identifiers = st.one_of(*[_plain] * 9, st.sampled_from(HOSTILE_NAMES))
SCALARS = ("string", "bytes", "int32", "int64", "uint32", "sint64", "double", "float", "bool")
_plain_part = st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True)
path_parts = st.one_of(
    *[_plain_part] * 4,
    st.sampled_from(["import", "class", "match", "2024", "my-api", "v1.beta", "a_b", "x"]),
)


@dataclass
class Drawn:
    files: dict[str, str]
    manifest: str


def fresh(taken: set[str], names: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A name not yet used in a scope (protobuf scopes messages, enums and their values alike)."""
    return names.filter(lambda name: name.lower() not in {t.lower() for t in taken})


@st.composite
def enum_block(
    draw: st.DrawFn, name: str, indent: str, taken: set[str], names: st.SearchStrategy[str]
) -> str:
    values: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        value = draw(fresh(taken, names))
        taken.add(value)  # enum values are siblings of their enum (C++ scoping)
        values.append(value)
    body = "".join(f"{indent}  {value} = {number};\n" for number, value in enumerate(values))
    return f"{indent}enum {name} {{\n{body}{indent}}}\n"


@st.composite
def message_block(
    draw: st.DrawFn,
    name: str,
    indent: str,
    syntax: str,
    types: list[str],
    depth: int,
    names: st.SearchStrategy[str],
) -> tuple[str, bool]:
    """A message, and whether it declares an extension range."""
    lines = [f"{indent}message {name} {{\n"]
    scope: set[str] = {name}
    if depth < 2 and draw(st.booleans()):
        nested = draw(fresh(scope, names))
        scope.add(nested)
        lines.append(draw(message_block(nested, indent + "  ", syntax, types, depth + 1, names))[0])
    if draw(st.integers(0, 3)) == 0:
        enum_name = draw(fresh(scope, names))
        scope.add(enum_name)
        lines.append(draw(enum_block(enum_name, indent + "  ", scope, names)))
    for number in range(1, draw(st.integers(0, 5)) + 1):
        field = draw(fresh(scope, names))
        scope.add(field)
        kind = draw(st.sampled_from(("scalar", "scalar", "repeated", "map", "message")))
        scalar = draw(st.sampled_from(SCALARS))
        label = "optional " if syntax == "proto2" else ""
        if kind == "repeated":
            text = f"repeated {scalar} {field}"
        elif kind == "map":
            text = f"map<string, {scalar}> {field}"
        elif kind == "message" and types:
            text = f"{label}{draw(st.sampled_from(types))} {field}"
        else:
            text = f"{label}{scalar} {field}"
        lines.append(f"{indent}  {text} = {number};\n")
    extensible = syntax == "proto2" and draw(st.booleans())
    if extensible:
        lines.append(f"{indent}  extensions 1000 to 1999;\n")
    lines.append(f"{indent}}}\n")
    return "".join(lines), extensible


@st.composite
def schemas(draw: st.DrawFn) -> Drawn:
    files: dict[str, str] = {}
    messages: list[str] = []
    # half the examples keep to ordinary names, so that the shapes of schemas are exercised
    # through to mypy and import, not only refused for one hostile name
    names = identifiers if draw(st.booleans()) else _plain
    parts_of = path_parts if names is identifiers else _plain_part
    for index in range(draw(st.integers(1, 2))):
        syntax = draw(st.sampled_from(("proto3", "proto2")))
        package = f"hyp{index}"
        parts = draw(st.lists(parts_of, max_size=2))
        path = "/".join([*parts, draw(parts_of) + ".proto"])
        if path in files:
            continue
        body = [f'syntax = "{syntax}";\n', f"package {package};\n"]
        body += [f'import "{p}";\n' for p in files]  # so any earlier message may be used
        taken: set[str] = set()
        local: list[str] = []
        extensible: list[str] = []
        for _ in range(draw(st.integers(1, 3))):
            name = draw(fresh(taken, names))
            taken.add(name)
            text, can_extend = draw(message_block(name, "", syntax, local + messages, 0, names))
            body.append(text)
            local.append(name)
            if can_extend:
                extensible.append(name)
        if draw(st.booleans()):
            enum_name = draw(fresh(taken, names))
            taken.add(enum_name)
            body.append(draw(enum_block(enum_name, "", taken, names)))
        if extensible and draw(st.booleans()):
            extension = draw(fresh(taken, names))
            body.append(f"extend {extensible[0]} {{\n  optional string {extension} = 1000;\n}}\n")
        files[path] = "".join(body)
        messages += [f"{package}.{n}" for n in local]
    functions = draw(
        st.lists(
            st.sampled_from(
                [
                    "greeter",
                    "class",
                    "generated",
                    "functions",
                    "order-tracker",
                    "order_tracker",
                    "Context",
                    "list",
                    "register-greeter",
                    "a1",
                    "x-y-z",
                    "none",
                ]
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    types = [*messages, "string", "long", "bool"]
    manifest = ["namespace: hyp", "endpoint: http://localhost:8000/statefun", "functions:"]
    inputs: list[str] = []
    for function in functions:
        manifest.append(f"  {function}:")
        inputs.append(draw(st.sampled_from(types)))
        manifest.append(f"    input: {inputs[-1]}")
        states = draw(
            st.lists(
                st.sampled_from(
                    ["seen", "list", "list_", "_state", "self", "match", "type", "_x", "x", "count"]
                ),
                max_size=3,
                unique=True,
            )
        )
        if states:
            manifest.append("    state:")
            manifest += [f"      {s}: {draw(st.sampled_from(types))}" for s in states]
        others = [f for f in functions if f != function]
        if others and draw(st.booleans()):
            manifest.append(f"    sends: [{draw(st.sampled_from(others))}]")
    if draw(st.booleans()):  # YAML 1.1's readings, and names Kafka refuses, in a topic
        topic = draw(st.sampled_from(["orders", "on", "0755", "1.10", "yes", "1:30", "a b", "~"]))
        manifest += [
            "ingresses:",
            "  source:",
            "    kind: kafka",
            "    address: kafka:9092",
            "    topics:",
            f"      - topic: {topic}",
            f"        type: {inputs[0]}",
            f"        targets: [{functions[0]}]",
        ]
    return Drawn(files, "\n".join(manifest) + "\n")


def test_any_schema_gives_strict_importable_code_or_located_errors(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("properties")
    generated: dict[str, Path] = {}
    refused = 0
    counter = itertools.count()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not EXPLORE,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(schemas())
    def property(drawn: Drawn) -> None:
        nonlocal refused
        work = root / f"work_{next(counter)}"
        schema = work / "schema"
        for path, text in drawn.files.items():
            (schema / path).parent.mkdir(parents=True, exist_ok=True)
            (schema / path).write_text(text)
        (schema / "statefun.yaml").write_text(drawn.manifest)
        result = run_cli(work)
        assert result.code in (0, 1), result.err
        assert "Traceback" not in result.err
        if result.code == 1:
            lines = result.err.splitlines()
            assert lines and all(LOCATED.match(line) for line in lines), result.err
            assert any(": error: " in line for line in lines)
            assert not (work / "out").exists(), "a refused generation wrote files"
            if os.environ.get("STATEFUN_HYPOTHESIS_REPORT"):
                with open(os.environ["STATEFUN_HYPOTHESIS_REPORT"] + ".refused", "a") as log:
                    log.write(lines[0] + "\n")
            refused += 1
            return
        module = read_module_yaml((work / "out" / "module.yaml").read_bytes(), "module.yaml")
        assert not module.diagnostics, [d.format() for d in module.diagnostics]
        target = root / "packages" / f"case_{len(generated)}"
        target.parent.mkdir(exist_ok=True)
        shutil.move(str(work / "out"), str(target))
        generated[f"example {len(generated)}: {drawn!r}"] = target  # the label reports it

    property()
    # both outcomes must be exercised, or the strategies have drifted
    assert generated and refused, (len(generated), refused)
    print(f"property: {len(generated)} generated, {refused} refused")
    problems = mypy_strict(generated, root)
    if problems and os.environ.get("STATEFUN_HYPOTHESIS_REPORT"):
        Path(os.environ["STATEFUN_HYPOTHESIS_REPORT"]).write_text(problems)
    assert not problems, problems
    failures = import_and_register(
        {label: (tree, "generated") for label, tree in generated.items()}
    )
    assert not failures, "\n".join(f"{label}\n  -> {why}" for label, why in failures.items())
