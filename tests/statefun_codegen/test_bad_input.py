"""A corpus of bad inputs: each gives its exact message and exit code, and the output is untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from statefun_codegen.cli import run

GOOD_PROTO = """syntax = "proto3";
package shop;
message GreetRequest { string name = 1; }
message Count { int64 n = 1; }
"""

GOOD_MANIFEST = """namespace: shop
endpoint: http://localhost:8000/statefun
functions:
  greeter:
    input: GreetRequest
    state:
      seen: Count
"""

# (case id, proto text or None for GOOD_PROTO, manifest text, expected stderr)
CASES = [
    (
        "proto-syntax-error",
        'syntax = "proto3";\npackage shop;\nmessage GreetRequest {\n  string = 1;\n}\n',
        GOOD_MANIFEST,
        "schema/shop.proto:4:10: error: Expected field name\n",
    ),
    (
        "unknown-message",
        None,
        GOOD_MANIFEST.replace("input: GreetRequest", "input: GreetRequets"),
        "schema/statefun.yaml:5:12: error: unknown type 'GreetRequets' in the input of function "
        "shop/greeter: not a message in the .proto files, a type declared under 'types', or a built-in "
        "(bool, int, long, float, double, string) (did you mean 'GreetRequest'?)\n",
    ),
    (
        "unknown-input-does-not-cascade-to-its-ingress",
        None,
        GOOD_MANIFEST.replace("input: GreetRequest", "input: GreetRequets")
        + "ingresses:\n  names:\n    kind: kafka\n    address: kafka:9092\n    topics:\n"
        + "      - topic: names\n        type: GreetRequest\n        targets: [greeter]\n",
        "schema/statefun.yaml:5:12: error: unknown type 'GreetRequets' in the input of function "
        "shop/greeter: not a message in the .proto files, a type declared under 'types', or a built-in "
        "(bool, int, long, float, double, string) (did you mean 'GreetRequest'?)\n",
    ),
    (
        "bad-typename",
        None,
        GOOD_MANIFEST + "types:\n  Count:\n    typename: no-slash\n",
        "schema/statefun.yaml:10:15: error: bad typename 'no-slash' for type 'Count': expected "
        "'<namespace>/<name>' made of letters, digits, '.', '_' and '-'\n",
    ),
    (
        "invalid-state-name",
        None,
        GOOD_MANIFEST.replace("seen: Count", "Seen: Count"),
        "schema/statefun.yaml:7:7: error: invalid state name 'Seen' in function shop/greeter: it must "
        "be lower case (the Python SDK's rule)\n",
    ),
    (
        "duplicate-key",
        None,
        GOOD_MANIFEST + "      seen: Count\n",
        "schema/statefun.yaml:8:7: error: duplicate key 'seen' (first given at line 7)\n",
    ),
    (
        "duplicate-function",
        None,
        GOOD_MANIFEST + "  shop/greeter:\n    input: Count\n",
        "schema/statefun.yaml:8:3: error: function shop/greeter is declared twice\n",
    ),
    (
        "bad-duration",
        None,
        GOOD_MANIFEST.replace(
            "seen: Count", "seen:\n        type: Count\n        expire_after_call: 5 parsecs"
        ),
        "schema/statefun.yaml:9:28: error: bad duration '5 parsecs' for expire_after_call: expected a "
        "positive number followed by ms, s, min, h or d, e.g. 30s\n",
    ),
    (
        "unknown-key-typo",
        None,
        GOOD_MANIFEST.replace("    input:", "    inputs:"),
        "schema/statefun.yaml:4:3: error: function 'greeter' needs 'input': the message type(s) it accepts\n"
        "schema/statefun.yaml:5:5: error: unknown key 'inputs' in function 'greeter' (did you mean 'input'?)\n",
    ),
    (
        "code-injection-in-a-name",
        None,
        GOOD_MANIFEST.replace("  greeter:", '  "greeter\\"); import os; (\\"":'),
        "schema/statefun.yaml:4:3: error: bad function name 'greeter\"); import os; (\"': it must start "
        "with a letter and contain only letters, digits, '_' and '-'\n",
    ),
    (
        "yaml-syntax-error",
        None,
        GOOD_MANIFEST + "  other: [unclosed\n",
        "schema/statefun.yaml:9:1: error: invalid YAML: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence that starts at line 8)\n",
    ),
    (
        "exactly-once-without-timeout",
        None,
        GOOD_MANIFEST
        + "egresses:\n  out:\n    kind: kafka\n    address: k:9092\n    delivery: exactly-once\n",
        "schema/statefun.yaml:10:5: error: egress 'out' is exactly-once, so it needs 'transaction_timeout' "
        "(e.g. 15min)\n",
    ),
    (
        "ingress-type-not-accepted",
        None,
        GOOD_MANIFEST
        + "ingresses:\n  in:\n    kind: kafka\n    address: k:9092\n    topics:\n"
        + "      - topic: t\n        type: Count\n        targets: [greeter]\n",
        "schema/statefun.yaml:15:19: error: topic 't' of ingress 'in' carries shop.Count, but function "
        "shop/greeter accepts only shop.GreetRequest\n",
    ),
    (
        "keyword-message-name",
        GOOD_PROTO + "message None { }\n",
        GOOD_MANIFEST,
        "schema/shop.proto:5:9: error: message name 'None' is a Python keyword, so the generated "
        "Python could not name it; rename it\n",
    ),
    (
        "no-functions",
        None,
        "namespace: shop\nendpoint: http://localhost:8000/statefun\nfunctions: {}\n",
        "schema/statefun.yaml:3:12: error: 'functions' must declare at least one function\n",
    ),
    (
        "bad-endpoint-scheme",
        None,
        GOOD_MANIFEST.replace("http://localhost", "ftp://localhost"),
        "schema/statefun.yaml:2:11: error: bad endpoint url 'ftp://localhost:8000/statefun': the scheme "
        "must be one of http, https, http+unix, https+unix\n",
    ),
]


def _snapshot(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "shop.proto").write_text(GOOD_PROTO)
    (tmp_path / "schema" / "statefun.yaml").write_text(GOOD_MANIFEST)
    assert run(["schema", "-o", "out", "-q"]) == 0  # a previous good generation
    (tmp_path / "out" / "greeter.py").write_text("# my handwritten body\n")
    return tmp_path


@pytest.mark.parametrize(
    ("case", "proto", "manifest", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_is_reported_and_nothing_changes(
    case: str,
    proto: str | None,
    manifest: str,
    expected: str,
    workspace: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if proto is not None:
        (workspace / "schema" / "shop.proto").write_text(proto)
    (workspace / "schema" / "statefun.yaml").write_text(manifest)
    before = _snapshot(workspace / "out")
    capsys.readouterr()
    assert run(["schema", "-o", "out"]) == 1
    captured = capsys.readouterr()
    assert captured.err == expected
    assert "Traceback" not in captured.err + captured.out
    assert _snapshot(workspace / "out") == before


def test_all_errors_are_reported_sorted(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = GOOD_MANIFEST.replace("input: GreetRequest", "input: Nope").replace(
        "seen: Count", "Seen: Count"
    )
    (workspace / "schema" / "statefun.yaml").write_text(manifest + "egress_typo: 1\n")
    capsys.readouterr()
    assert run(["schema", "-o", "out"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": error:")[0] for line in lines] == [
        "schema/statefun.yaml:5:12",
        "schema/statefun.yaml:7:7",
        "schema/statefun.yaml:8:1",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["schema", "-o", "out", "--module-yaml", "../escape.yaml"],
            "statefun-codegen: error: module_yaml '../escape.yaml' must be a relative path inside the output\n",
        ),
        (
            ["schema", "-o", "out", "--package", "not-an-identifier"],
            "statefun-codegen: error: package 'not-an-identifier' is not a Python identifier "
            "(ASCII letters, digits and '_', not starting with a digit, not a keyword)\n",
        ),
        (
            ["missing-dir", "-o", "out"],
            "statefun-codegen: error: missing-dir: no such file or directory\n",
        ),
        (
            ["schema"],
            "statefun-codegen: error: no output directory: pass --out or set 'out' in "
            "[tool.statefun-codegen]\n",
        ),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(workspace)
    capsys.readouterr()
    assert run(args) == 2
    assert capsys.readouterr().err == message
    assert _snapshot(workspace) == before


def test_unknown_pyproject_key_exits_2(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "pyproject.toml").write_text('[tool.statefun-codegen]\nouts = "out"\n')
    capsys.readouterr()
    assert run(["schema"]) == 2
    assert "unknown key 'outs' (did you mean 'out'?)" in capsys.readouterr().err


def test_a_proto_path_that_cannot_be_a_module_is_reported(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "schema" / "import").mkdir()
    (workspace / "schema" / "shop.proto").rename(workspace / "schema" / "import" / "shop.proto")
    before = _snapshot(workspace / "out")
    capsys.readouterr()
    assert run(["schema", "-o", "out"]) == 1
    assert capsys.readouterr().err == (
        "schema/import/shop.proto:2:1: error: 'import' in the path of import/shop.proto is a "
        "Python keyword, so its generated module could not be imported; rename the file or "
        "directory\n"
    )
    assert _snapshot(workspace / "out") == before


def test_a_hyphen_in_a_proto_file_name_becomes_an_underscore(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "schema" / "shop.proto").rename(workspace / "schema" / "my-shop.proto")
    assert run(["schema", "-o", "out", "-q"]) == 0
    assert (workspace / "out" / "generated" / "my_shop_pb2.py").exists()
    assert not (workspace / "out" / "generated" / "shop_pb2.py").exists()  # stale, ours: removed


def test_free_text_cannot_break_out_of_its_docstring(workspace: Path) -> None:
    payload = 'hi """ + __import__("os").system("touch pwned") + """ \\\\ end'
    manifest = GOOD_MANIFEST.replace(
        "    input: GreetRequest", f"    doc: '{payload}'\n    input: GreetRequest"
    )
    (workspace / "schema" / "statefun.yaml").write_text(manifest)
    assert run(["schema", "-o", "out", "-q"]) == 0
    module = workspace / "out" / "generated" / "functions" / "greeter.py"
    import ast

    tree = ast.parse(module.read_text())
    docstring = ast.get_docstring(tree)
    assert docstring is not None and payload in docstring
    assert not (workspace / "pwned").exists()
