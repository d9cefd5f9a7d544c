"""The protoc plugin front end: same files as the CLI, errors through protoc, strict options."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from statefun_codegen.cli import run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RICH = HERE / "schemas" / "rich"
PLUGIN = Path(sys.executable).parent / "protoc-gen-statefun"


def _protoc(out: Path, *options: str, schema: Path = RICH) -> subprocess.CompletedProcess[str]:
    protos = sorted(p.relative_to(schema).as_posix() for p in schema.rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{schema}",
            f"--plugin=protoc-gen-statefun={PLUGIN}",
            f"--statefun_out={out}",
            *[f"--statefun_opt={o}" for o in options],
            *protos,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=schema,
    )


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("module_format", ["3.1", "2.0"])
def test_plugin_and_cli_give_equal_files(
    module_format: str, generate: Callable[..., Path], tmp_path: Path
) -> None:
    cli_out = generate("rich", "--no-stubs", "--module-format", module_format, out="cli")
    result = _protoc(
        tmp_path / "plugin", "manifest=statefun.yaml", f"module_format={module_format}"
    )
    assert result.returncode == 0, result.stderr
    assert _files(tmp_path / "plugin") == _files(cli_out)


def test_a_manifest_error_goes_through_protoc_and_nothing_is_written(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "a.proto").write_text('syntax = "proto3";\npackage p;\nmessage GreetRequest {}\n')
    (schema / "m.yaml").write_text(
        "namespace: p\nendpoint: http://x/\nfunctions:\n  f:\n    input: GreetReqest\n"
    )
    result = _protoc(tmp_path / "out", "manifest=m.yaml", schema=schema)
    assert result.returncode == 1
    assert result.stderr == (
        "--statefun_out: m.yaml:5:12: error: unknown type 'GreetReqest' in the input of function p/f: not a message "
        "in the .proto files, a type declared under 'types', or a built-in (bool, int, long, float, double, "
        "string) (did you mean 'GreetRequest'?)\n"
    )
    assert _files(tmp_path / "out") == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["manifest=statefun.yaml", "modul_format=3.0"],
            "unknown plugin option 'modul_format' (did you mean 'module_format'?)",
        ),
        (["module_format=3.0"], "the plugin needs the manifest: --statefun_opt=manifest=PATH"),
        (["manifest=statefun.yaml", "module_format=9"], "unknown module.yaml format '9'"),
    ],
)
def test_plugin_options_are_strict(options: list[str], message: str, tmp_path: Path) -> None:
    result = _protoc(tmp_path / "out", *options)
    assert result.returncode == 1
    assert message in result.stderr
    assert _files(tmp_path / "out") == {}


def test_proto3_optional_and_editions_are_declared() -> None:
    from google.protobuf.compiler import plugin_pb2

    from statefun_codegen.plugin import respond

    response = respond(plugin_pb2.CodeGeneratorRequest(parameter="manifest=/nonexistent.yaml"))
    assert response.supported_features == 3
    assert (response.minimum_edition, response.maximum_edition) == (998, 1001)
    assert "cannot read the manifest" in response.error


def test_an_editions_file_works_in_both_front_ends(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "e.proto").write_text(
        'edition = "2023";\npackage ed;\n// An editions message.\n'
        "message Req {\n  string name = 1;\n  int32 n = 2 [features.field_presence = IMPLICIT];\n}\n"
    )
    (schema / "m.yaml").write_text(
        "namespace: ed\nendpoint: http://localhost:8000/x\nfunctions:\n  f:\n    input: Req\n"
    )
    result = _protoc(tmp_path / "plugin", "manifest=m.yaml", schema=schema)
    assert result.returncode == 0, result.stderr

    assert (
        run(
            [
                str(schema),
                "-o",
                str(tmp_path / "cli"),
                "-m",
                str(schema / "m.yaml"),
                "-q",
                "--no-stubs",
            ]
        )
        == 0
    )
    assert _files(tmp_path / "plugin") == _files(tmp_path / "cli")
    assert '"""An editions message."""' in (tmp_path / "cli/generated/e_pb2.pyi").read_text()


def test_hostile_schemas_say_the_same_through_protoc(tmp_path: Path) -> None:
    """A name Python cannot carry: the CLI's exact message, through protoc, nothing written."""
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "k.proto").write_text(
        'syntax = "proto3";\npackage k;\nmessage M {\n  string SerializeToString = 1;\n}\n'
    )
    (schema / "m.yaml").write_text(
        "namespace: k\nendpoint: http://localhost:8000/x\nfunctions:\n  f:\n    input: M\n"
    )
    message = (
        "k.proto:4:10: error: field 'SerializeToString' of message k.M would replace the "
        "protobuf message's own 'SerializeToString', breaking the generated class; rename it"
    )
    result = _protoc(tmp_path / "out", "manifest=m.yaml", schema=schema)
    assert result.returncode == 1
    assert result.stderr == f"--statefun_out: {message}\n"
    assert _files(tmp_path / "out") == {}
    cli_err = tmp_path / "cli"
    previous = os.getcwd()
    os.chdir(schema)
    try:
        buffer = io.StringIO()
        with contextlib.redirect_stderr(buffer):
            assert run([".", "-o", str(cli_err), "-m", "m.yaml", "-q"]) == 1
    finally:
        os.chdir(previous)
    assert buffer.getvalue() == message + "\n"


def test_warnings_pass_through_protoc_and_strict_refuses_them(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "w.proto").write_text('syntax = "proto3";\npackage w;\nmessage Ping {}\n')
    (schema / "m.yaml").write_text(
        "namespace: w\nendpoint: http://localhost:8000/x\nfunctions:\n  f:\n    input: Ping\n"
        "    state:\n      seen:\n        type: long\n        expire_after_call: 900\n"
    )
    warning = "m.yaml:9:28: warning: '900' for expire_after_call has no unit"
    result = _protoc(tmp_path / "out", "manifest=m.yaml", schema=schema)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(warning)
    assert (tmp_path / "out" / "module.yaml").is_file()
    strict = _protoc(tmp_path / "strict", "manifest=m.yaml", "strict=true", schema=schema)
    assert strict.returncode == 1
    assert strict.stderr.startswith("--statefun_out: " + warning.replace("warning", "error"))
    assert _files(tmp_path / "strict") == {}
