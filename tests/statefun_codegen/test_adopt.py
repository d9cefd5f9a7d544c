"""``statefun-codegen --adopt``: module.yaml in every format the runtime reads -> a manifest
that regenerates the same module.

The corpus lives in ``adopt/``: ``modules/<case>.yaml`` (a module.yaml of our own, in the
3.1+, 3.0, 2.0 or 1.0 format), ``modules/<case>.expect`` (the exit code and every located
diagnostic, in order, in the module.yaml or in the adopted ``statefun.yaml``, plus ``differs: <section> <id>`` for each component the adopted
manifest cannot reproduce, each one warned about), ``adopted/<case>.yaml`` (the manifest,
a reviewed golden) and ``protos/`` (the messages the types resolve against). Every case
that adopts is regenerated, its TODOs filled in, and the runtime's view of the new
module.yaml compared with the original's.
"""

from __future__ import annotations

import io
import os
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from statefun_codegen import cli
from statefun_codegen.module_rules import differing_parts, read_module_yaml, runtime_view

from .corpus import Run, check_lines, parse_expect

HERE = Path(__file__).resolve().parent
ADOPT = HERE / "adopt"
MODULES = ADOPT / "modules"
ADOPTED = ADOPT / "adopted"
PROTOS = ADOPT / "protos"
REPO = HERE.parent.parent
UPDATE = os.environ.get("STATEFUN_CODEGEN_UPDATE_GOLDENS") == "1"
CASES = sorted(p.stem for p in MODULES.glob("*.expect"))


def run(cwd: Path, *args: str) -> Run:
    previous = Path.cwd()
    os.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(list(args))
    finally:
        os.chdir(previous)
    return Run(code, out.getvalue(), err.getvalue())


def regenerate(manifest: Path, protos: Path, out: Path, module_format: str) -> str:
    """Fill in the TODOs (module.yaml never depends on them), generate, return module.yaml."""
    schema = out.parent / f"{out.name}-schema"
    shutil.copytree(protos, schema)
    filled = (
        manifest.read_text(encoding="utf-8")
        .replace("url: TODO\n", "url: http://localhost:8000/statefun\n")
        .replace(": TODO\n", ": string\n")
    )
    (schema / "statefun.yaml").write_text(filled, encoding="utf-8")
    result = run(out.parent, str(schema), "-o", str(out), "-q", "--module-format", module_format)
    assert result.code == 0, result.err
    return (out / "module.yaml").read_text(encoding="utf-8")


def differences(original: str, regenerated: str) -> set[str]:
    before = runtime_view(read_module_yaml(original, "original"))
    after = runtime_view(read_module_yaml(regenerated, "regenerated"))
    return {
        f"{section} {key or ''}".strip() for section, key, _, _ in differing_parts(before, after)
    }


@pytest.mark.parametrize("case", CASES)
def test_adopt_case(case: str, tmp_path: Path) -> None:
    expected = parse_expect(MODULES / f"{case}.expect")
    manifest = tmp_path / "statefun.yaml"
    shutil.copy(MODULES / f"{case}.yaml", tmp_path)  # paths in diagnostics read as in .expect
    result = run(
        tmp_path, "--adopt", f"{case}.yaml", "-I", str(PROTOS), "-q", "-m", "statefun.yaml"
    )
    problems = check_lines(result, expected)
    assert result.code == expected.exit, result.err
    assert not problems, "\n".join(problems)
    golden = ADOPTED / f"{case}.yaml"
    if result.code != 0:
        assert not manifest.exists(), "a refused module.yaml must write nothing"
        assert not golden.exists()
        return
    text = manifest.read_text(encoding="utf-8")
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"the adopted manifest differs from {golden}"
    original = (MODULES / f"{case}.yaml").read_text(encoding="utf-8")
    module_format = read_module_yaml(original, case).format
    module_format = "2.0" if module_format == "1.0" else module_format
    if any("regenerating from the adopted manifest fails" in line for *_, line in expected.lines):
        schema = tmp_path / "schema"
        shutil.copytree(PROTOS, schema)
        shutil.copy(manifest, schema / "statefun.yaml")
        refused = run(tmp_path, "schema", "-o", "out", "-q", "--module-format", module_format)
        assert refused.code == 1 and "schema/statefun.yaml:" in refused.err
        return
    regenerated = regenerate(manifest, PROTOS, tmp_path / "out", module_format)
    assert differences(original, regenerated) == set(expected.differs)


def test_m_writes_a_file_as_any_other_with_the_umask_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        result = run(
            MODULES,
            "--adopt",
            "v31-shop.yaml",
            "-I",
            str(PROTOS),
            "-q",
            "-m",
            str(tmp_path / "m.yaml"),
        )
    finally:
        os.umask(previous)
    assert result.code == 0, result.err
    assert (tmp_path / "m.yaml").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.yaml"]  # no staged copy left


def test_stdout_without_m_is_the_same_manifest_and_deterministic(tmp_path: Path) -> None:
    first = run(MODULES, "--adopt", "v31-shop.yaml", "-I", str(PROTOS), "-q")
    second = run(MODULES, "--adopt", "v31-shop.yaml", "-I", str(PROTOS), "-q")
    assert first.code == 0 and first.err == ""
    assert first.out == second.out == (ADOPTED / "v31-shop.yaml").read_text(encoding="utf-8")


def test_the_greeter_round_trip_is_byte_identical(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    shutil.copy(REPO / "schemas" / "messages.proto", schema)
    result = run(
        REPO,
        "--adopt",
        "examples/greeter/module.yaml",
        "-I",
        "schemas",
        "-m",
        str(schema / "statefun.yaml"),
    )
    assert result.code == 0, result.err
    assert "warning" not in result.err
    generated = run(tmp_path, "schema", "-o", "out", "-q")
    assert generated.code == 0, generated.err
    original = (REPO / "examples" / "greeter" / "module.yaml").read_bytes()
    assert (tmp_path / "out" / "module.yaml").read_bytes() == original


@pytest.mark.parametrize("module_format", ["3.1", "3.0", "2.0"])
@pytest.mark.parametrize("schema", ["rich", "features"])
def test_our_own_module_yaml_round_trips_byte_for_byte(
    schema: str, module_format: str, tmp_path: Path
) -> None:
    """What the generator writes, in each format it writes, adopts back to itself."""
    source = HERE / "schemas" / schema
    first = run(tmp_path, str(source), "-o", "first", "-q", "--module-format", module_format)
    if first.code != 0:  # 2.0 cannot serve a namespace: list the functions instead
        assert module_format == "2.0" and "names each function on its own" in first.err, first.err
        listed = tmp_path / "listed"
        shutil.copytree(source, listed)
        manifest_text = (listed / "statefun.yaml").read_text(encoding="utf-8")
        (listed / "statefun.yaml").write_text(
            manifest_text.replace('  functions: "*"\n', "", 1), encoding="utf-8"
        )
        source = listed
        first = run(tmp_path, str(source), "-o", "first", "-q", "--module-format", module_format)
        assert first.code == 0, first.err
    protos = tmp_path / "protos"
    shutil.copytree(source, protos, ignore=shutil.ignore_patterns("statefun.yaml"))
    manifest = tmp_path / "adopted.yaml"
    adopted = run(
        tmp_path, "--adopt", "first/module.yaml", "-I", str(protos), "-q", "-m", str(manifest)
    )
    assert adopted.code == 0 and "warning" not in adopted.err, adopted.err
    original = (tmp_path / "first" / "module.yaml").read_text(encoding="utf-8")
    regenerated = regenerate(manifest, protos, tmp_path / "second", module_format)
    body = original.split("\n", 1)[1]  # the header names the manifest file
    assert regenerated.split("\n", 1)[1] == body


def test_strict_turns_warnings_into_errors_and_writes_nothing(tmp_path: Path) -> None:
    manifest = tmp_path / "statefun.yaml"
    result = run(
        MODULES, "--adopt", "v31-types.yaml", "-I", str(PROTOS), "--strict", "-m", str(manifest)
    )
    assert result.code == 1
    assert "v31-types.yaml:22:7: error: message 'billing.Payment' is not in" in result.err
    assert not manifest.exists()


def test_refuses_to_overwrite_a_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "statefun.yaml"
    manifest.write_text("namespace: mine\n", encoding="utf-8")
    result = run(MODULES, "--adopt", "v31-shop.yaml", "-I", str(PROTOS), "-m", str(manifest))
    assert result.code == 2
    assert "already exists" in result.err and str(manifest) in result.err
    assert manifest.read_text(encoding="utf-8") == "namespace: mine\n"
    link = tmp_path / "link.yaml"
    link.symlink_to(tmp_path / "elsewhere.yaml")
    result = run(MODULES, "--adopt", "v31-shop.yaml", "-I", str(PROTOS), "-m", str(link))
    assert result.code == 2 and not (tmp_path / "elsewhere.yaml").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--adopt", "missing.yaml"], "missing.yaml"),
        (["--adopt", "v31-shop.yaml", "-I", "no-such-dir"], "no-such-dir"),
        (["--adopt", "v31-shop.yaml", "--check"], "--check"),
        (["--adopt", "v31-shop.yaml", "-m", "/nonexistent-dir/statefun.yaml"], "cannot write"),
    ],
)
def test_usage_problems_exit_2_without_a_traceback(args: list[str], message: str) -> None:
    result = run(MODULES, *args)
    assert result.code == 2, result.err
    assert message in result.err and "Traceback" not in result.err


def test_a_message_missing_from_the_protos_is_said_where_it_is_used() -> None:
    result = run(MODULES, "--adopt", "v31-shop.yaml", "-q")  # no -I: nothing resolves
    assert result.code == 0
    assert (
        "v31-shop.yaml:24:7: warning: message 'shop.AddToCart' is not in the .proto" in result.err
    )
    assert "  AddToCart:\n    json: type.googleapis.com/shop.AddToCart\n" in result.out


def test_stdin_and_the_projects_own_protos_from_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--adopt -`` reads module.yaml from stdin; without PATHS or -I the protos are the ones
    [tool.statefun-codegen] names, as generation finds them."""
    project = tmp_path / "project"
    shutil.copytree(PROTOS, project / "protos")
    (project / "pyproject.toml").write_text(
        '[tool.statefun-codegen]\npaths = ["protos"]\nout = "app"\n', encoding="utf-8"
    )
    monkeypatch.setattr(
        "sys.stdin", io.TextIOWrapper(io.BytesIO((MODULES / "v31-shop.yaml").read_bytes()))
    )
    result = run(project, "--adopt", "-", "-q")
    assert result.code == 0 and result.err == "", result.err
    assert result.out.split("\n", 1)[1] == (ADOPTED / "v31-shop.yaml").read_text().split("\n", 1)[1]
