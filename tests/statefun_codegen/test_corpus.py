"""Every case of the hostile-input corpora: its exit code, its located diagnostics, nothing
changed when refused, the same words from the protoc plugin; and every generated case
type-checked (``mypy --strict``, one run for all), imported, and its module.yaml loaded
with the runtime's rules."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from statefun_codegen.module_rules import read_module_yaml

from .corpus import (
    ACCEPTED,
    BAD,
    BASE,
    Case,
    check_lines,
    import_and_register,
    load_cases,
    mypy_strict,
    plugin_run,
    run_cli,
    set_up,
)

BAD_CASES = load_cases(BAD)
ACCEPTED_CASES = load_cases(ACCEPTED)
CASES = [*BAD_CASES, *(Case("accepted/" + c.name, c.source, c.expected) for c in ACCEPTED_CASES)]
GENERATING = [c for c in CASES if c.expected.exit == 0]
# options the plugin takes too; the corpus compares the plugin only where it can say the same
PLUGIN_OPTIONS = {"--module-format", "--package", "--module-yaml"}


def _snapshot(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_the_corpus_is_large_enough() -> None:
    refused = [c for c in BAD_CASES if c.expected.exit != 0]
    warned = [c for c in BAD_CASES if c.expected.exit == 0]
    assert len(BAD_CASES) >= 150, len(BAD_CASES)
    assert len(refused) >= 120 and len(warned) >= 10
    assert len(ACCEPTED_CASES) >= 10


@pytest.fixture(scope="session")
def good_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A good generation of the base schema, copied under every case before it runs."""
    work = tmp_path_factory.mktemp("good")
    shutil.copytree(BASE, work / "schema")
    run = run_cli(work)
    assert run.code == 0, run.err
    return work / "out"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, tmp_path: Path, good_output: Path) -> None:
    expected = case.expected
    shutil.copytree(good_output, tmp_path / "out", symlinks=True)
    set_up(case, tmp_path)
    before = _snapshot(tmp_path / "out")
    run = run_cli(tmp_path, *expected.args)
    assert run.code == expected.exit, run.err
    assert not check_lines(run, expected), "\n".join(check_lines(run, expected))
    if expected.exit != 0:
        assert _snapshot(tmp_path / "out") == before, "a refused generation changed the output"
    warned = any(severity == "warning" for _, severity, _ in expected.lines)
    if expected.exit == 0 and warned:
        after = _snapshot(tmp_path / "out")
        strict = run_cli(tmp_path, *expected.args, "--strict")
        assert strict.code == 1, strict.err
        assert not check_lines(strict, expected, "error"), strict.err
        assert _snapshot(tmp_path / "out") == after
    if expected.exit == 2 or not {a for a in expected.args if a.startswith("-")} <= PLUGIN_OPTIONS:
        return
    for strict_mode in (False, True) if warned else (False,):
        plugin = plugin_run(tmp_path, run, expected.args, strict_mode)
        if plugin is None:  # protoc itself refuses the schema: the plugin is never called
            assert expected.exit == 1
            return
        # protoc prints its own warnings itself, and --strict cannot reach them in a plugin
        if expected.exit == 1 or (strict_mode and plugin.expected_error):
            wanted = plugin.expected_error
            if strict_mode:
                wanted = wanted.replace(": warning: ", ": error: ")
            assert plugin.error == wanted
            assert not plugin.files
        else:
            assert plugin.error == ""
            args = expected.args
            package = args[args.index("--package") + 1] if "--package" in args else "generated"
            owned = {
                p.relative_to(tmp_path / "out").as_posix(): p.read_text()
                for p in (tmp_path / "out").rglob("*")
                if p.is_file()
                and p.relative_to(tmp_path / "out").parts[0] in (package, "module.yaml")
            }
            assert plugin.files == {k: v for k, v in owned.items() if k in plugin.files}
            assert set(plugin.files) == set(owned)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every generating case, built into its own package: ``root/case_N`` (for one mypy run)."""
    root = tmp_path_factory.mktemp("corpus-out")
    outputs: dict[str, Path] = {}
    for index, case in enumerate(GENERATING):
        work = root / f"work_{index}"
        set_up(case, work)
        run = run_cli(work, *case.expected.args)
        assert run.code == 0, f"{case.name}: {run.err}"
        target = root / "packages" / f"case_{index}"
        shutil.move(str(work / "out"), str(target))
        outputs[case.name] = target
    return outputs


def _package_of(case_name: str) -> str:
    args = next(c for c in GENERATING if c.name == case_name).expected.args
    return args[args.index("--package") + 1] if "--package" in args else "generated"


def test_every_generated_case_passes_mypy_strict(
    generated: dict[str, Path], tmp_path: Path
) -> None:
    problems = mypy_strict(generated, tmp_path)
    assert not problems, problems


def test_every_generated_case_imports_and_registers(generated: dict[str, Path]) -> None:
    failures = import_and_register(
        {name: (out, _package_of(name)) for name, out in generated.items()}
    )
    assert not failures, "\n".join(f"{name}: {why}" for name, why in failures.items())


def test_every_generated_module_yaml_loads_in_the_runtime(generated: dict[str, Path]) -> None:
    for name, out in generated.items():
        case = next(c for c in GENERATING if c.name == name)
        args = case.expected.args
        module_format = (
            args[args.index("--module-format") + 1] if "--module-format" in args else "3.1"
        )
        module_yaml = (
            args[args.index("--module-yaml") + 1] if "--module-yaml" in args else "module.yaml"
        )
        result = read_module_yaml((out / module_yaml).read_bytes(), module_yaml)
        assert result.format == module_format, name
        assert not result.diagnostics, (name, [d.format() for d in result.diagnostics])
