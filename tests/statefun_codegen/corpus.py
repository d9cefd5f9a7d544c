"""The corpora of hostile inputs: how a case is laid out, set up, run and judged.

A case is one file, or one small directory, under ``bad/<group>/`` (or ``accepted/``)
with its expectation beside it in ``<case>.expect``:

* ``<case>.yaml``: a manifest, run against ``bad/base/shop.proto``;
* ``<case>.proto``: a schema file (its name kept), run with ``bad/base/statefun.yaml``;
* ``<case>/``: a schema directory; the base manifest or proto fills in what it lacks.

``<case>.expect`` holds ``exit: N``, optionally ``args: ...`` (extra command-line
arguments) and ``note: ...`` lines, then the diagnostics expected, in order, one per
line: ``<path>:<line>:<col>: <severity>: <fragment>``. An actual line matches when it
starts with the same location and severity and contains the fragment. The runner
generates into ``work/out`` after a good generation is already there, from
``work/``, so paths read ``schema/...``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.compiler import plugin_pb2

from statefun_codegen import cli, plugin
from statefun_codegen.diagnostics import GenerationError, format_all
from statefun_codegen.protoc_runner import compile_protos

HERE = Path(__file__).resolve().parent
BAD = HERE / "bad"
ACCEPTED = HERE / "accepted"
BASE = BAD / "base"
LOCATED = re.compile(
    r"^(?P<where>[^\n]+?:\d+:\d+): (?P<severity>error|warning|note): (?P<text>.*)$"
)
USAGE = re.compile(r"^statefun-codegen: (?:error|internal error[^:]*): ")


@dataclass(frozen=True)
class Expected:
    exit: int
    args: tuple[str, ...]
    lines: tuple[tuple[str, str, str], ...]  # (location, severity, fragment)
    # --adopt cases: the components a regeneration may change ("section id"), as warned
    differs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    name: str  # group/case
    source: Path  # the case file or directory
    expected: Expected


def parse_expect(path: Path) -> Expected:
    exit_code: int | None = None
    args: tuple[str, ...] = ()
    lines: list[tuple[str, str, str]] = []
    differs: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#") or line.startswith("note: "):
            continue
        if line.startswith("exit: "):
            exit_code = int(line[len("exit: ") :])
        elif line.startswith("args: "):
            args = tuple(shlex.split(line[len("args: ") :]))
        elif line.startswith("differs: "):
            differs.append(line[len("differs: ") :].strip())
        else:
            match = LOCATED.match(line) or re.match(
                r"^(?P<where>statefun-codegen): (?P<severity>error): (?P<text>.*)$", line
            )
            assert match, f"{path}: cannot read the expectation line {line!r}"
            lines.append((match["where"], match["severity"], match["text"]))
    assert exit_code is not None, f"{path}: no 'exit:' line"
    return Expected(exit_code, args, tuple(lines), tuple(differs))


def load_cases(root: Path) -> list[Case]:
    cases: list[Case] = []
    for expect in sorted(root.rglob("*.expect")):
        stem = expect.with_suffix("")
        candidates = [
            p for p in (stem.with_suffix(".yaml"), stem.with_suffix(".proto"), stem) if p.exists()
        ]
        assert (
            len(candidates) == 1
        ), f"{expect}: expected exactly one case beside it, found {candidates}"
        cases.append(
            Case(
                expect.relative_to(root).with_suffix("").as_posix(),
                candidates[0],
                parse_expect(expect),
            )
        )
    return cases


def set_up(case: Case, work: Path) -> Path:
    """Lay the case out in ``work/schema``; returns the schema directory."""
    schema = work / "schema"
    if schema.exists():
        shutil.rmtree(schema)
    schema.mkdir(parents=True)
    source = case.source
    if source.is_dir():
        shutil.copytree(source, schema, dirs_exist_ok=True, symlinks=True)
    elif source.suffix == ".yaml":
        shutil.copy(source, schema / "statefun.yaml")
    else:
        shutil.copy(source, schema / source.name)
    if not (schema / "statefun.yaml").exists():
        shutil.copy(BASE / "statefun.yaml", schema / "statefun.yaml")
    if not any(p.suffix == ".proto" for p in schema.rglob("*")):
        shutil.copy(BASE / "shop.proto", schema / "shop.proto")
    return schema


@dataclass
class Run:
    code: int
    out: str
    err: str
    diagnostics: list[str] = field(default_factory=list)


def run_cli(work: Path, *args: str) -> Run:
    previous = Path.cwd()
    os.chdir(work)
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(["schema", "-o", "out", "-q", *args])
    finally:
        os.chdir(previous)
    text = err.getvalue()
    return Run(code, out.getvalue(), text, [l for l in text.splitlines() if LOCATED.match(l)])


def check_lines(run: Run, expected: Expected, severity_override: str | None = None) -> list[str]:
    """Problems with ``run``'s output against ``expected`` (empty when it matches)."""
    problems = []
    if "Traceback" in run.err + run.out:
        problems.append("a traceback was printed")
    for line in run.err.splitlines():
        if not (LOCATED.match(line) or USAGE.match(line)):
            problems.append(f"an unlocated line on stderr: {line!r}")
    actual = [
        LOCATED.match(l) for l in run.err.splitlines() if LOCATED.match(l) and " note: " not in l
    ]
    actual_usage = [l for l in run.err.splitlines() if USAGE.match(l)]
    wanted = [
        (where, severity_override or severity, text) for where, severity, text in expected.lines
    ]
    got = [(m["where"], m["severity"], m["text"]) for m in actual if m]
    got += [("statefun-codegen", "error", l.split(": ", 2)[-1]) for l in actual_usage]
    if len(got) != len(wanted):
        problems.append(f"expected {len(wanted)} diagnostics, got {len(got)}:\n" + run.err)
    for (where, severity, text), (a_where, a_severity, a_text) in zip(wanted, got):
        if (where, severity) != (a_where, a_severity) or text not in a_text:
            problems.append(
                f"expected {where}: {severity}: ...{text}...\n     got {a_where}: {a_severity}: {a_text}"
            )
    return problems


@dataclass
class PluginRun:
    error: str
    files: dict[str, str]
    expected_error: str  # what the CLI said, as the plugin must say it


def plugin_run(work: Path, cli_run: Run, args: tuple[str, ...], strict: bool) -> PluginRun | None:
    """The plugin on the request protoc would send for the case; None when protoc refuses it.

    The plugin must say what the CLI said, but with paths as protoc names them
    (relative to the include root and protoc's working directory, here ``schema/``) and
    without protoc's own warnings, which protoc prints itself.
    """
    schema = work / "schema"
    previous = Path.cwd()
    os.chdir(work)
    try:
        protos = sorted(p.relative_to(work) for p in schema.rglob("*.proto"))
        with redirect_stderr(io.StringIO()):
            proto_input = compile_protos(protos, [Path("schema")])
    except GenerationError:
        return None
    finally:
        os.chdir(previous)
    parameter = ["manifest=statefun.yaml"]
    for index, arg in enumerate(args):
        if arg.startswith("--") and index + 1 < len(args) and not args[index + 1].startswith("--"):
            parameter.append(f"{arg[2:].replace('-', '_')}={args[index + 1]}")
    if strict:
        parameter.append("strict=true")
    request = plugin_pb2.CodeGeneratorRequest(
        file_to_generate=list(proto_input.to_generate),
        parameter=",".join(parameter),
        proto_file=list(proto_input.files),
    )
    os.chdir(schema)
    try:
        with redirect_stderr(io.StringIO()):
            response = plugin.respond(request)
    finally:
        os.chdir(previous)
    protoc_own = set(format_all(proto_input.warnings).splitlines())
    protoc_own |= {line.replace(": warning: ", ": error: ", 1) for line in protoc_own}
    expected = [
        line.removeprefix("schema/")
        for line in cli_run.err.splitlines()
        if line not in protoc_own and LOCATED.match(line)
    ]
    return PluginRun(
        response.error, {f.name: f.content for f in response.file}, "\n".join(expected)
    )


REPO = HERE.parent.parent


def run_mypy(targets: list[str], cwd: Path, work: Path) -> tuple[int, str]:
    """``mypy --strict`` (explicit package bases) over ``targets``: exit code and report."""
    config = work / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\nexplicit_package_bases = True\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(work / "mypy-cache"),
            *targets,
        ],
        cwd=cwd,
        env={"MYPYPATH": str(REPO), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result.returncode, result.stdout + result.stderr


def mypy_strict(packages: Mapping[str, Path], work: Path) -> str:
    """One ``mypy --strict`` run over generated output trees (all in one parent directory,
    each a package of its own); the report, with each tree's label, or "" when clean."""
    parent = next(iter(packages.values())).parent
    code, report = run_mypy(sorted(p.name for p in packages.values()), parent, work)
    if code == 0:
        return ""
    labels = {p.name: label for label, p in packages.items()}
    return "\n".join(
        f"{labels.get(line.split('/')[0], '?')}: {line}" for line in report.splitlines()
    )


_IMPORTER = r"""
import importlib, inspect, json, pkgutil, sys
from google.protobuf import descriptor_pool, descriptor_pb2
from google.protobuf import (any_pb2, api_pb2, duration_pb2, empty_pb2, field_mask_pb2,
    source_context_pb2, struct_pb2, timestamp_pb2, type_pb2, wrappers_pb2)
from statefun import StatefulFunctions
WELL_KNOWN = ("descriptor", "any", "source_context", "type", "api", "duration", "empty",
              "field_mask", "struct", "timestamp", "wrappers")
default_pool = descriptor_pool.Default()
failures = {}
packages = json.loads(sys.argv[1])
for name, package_name in packages.items():
    # each tree gets a descriptor pool of its own: trees reuse file names such as shop.proto
    pool = descriptor_pool.DescriptorPool()
    for wkt in WELL_KNOWN:  # in dependency order
        proto = descriptor_pb2.FileDescriptorProto()
        default_pool.FindFileByName(f"google/protobuf/{wkt}.proto").CopyToProto(proto)
        pool.Add(proto)
    descriptor_pool.Default = lambda pool=pool: pool
    try:
        package = importlib.import_module(f"{name}.{package_name}")
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
        functions = StatefulFunctions()
        handlers = list(inspect.signature(package.register_functions).parameters)[1:]
        package.register_functions(functions, **{p: (lambda ctx, message: None) for p in handlers})
    except Exception as exc:  # report every failure, not just the first
        failures[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(failures))
"""


def import_and_register(trees: Mapping[str, tuple[Path, str]]) -> dict[str, str]:
    """Import every module of each generated tree (label -> (tree, package name)) and register
    its functions, in one subprocess; label -> why, for the trees that failed."""
    parent = next(iter(trees.values()))[0].parent
    by_dir = {tree.name: label for label, (tree, _) in trees.items()}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _IMPORTER,
            json.dumps({tree.name: package for tree, package in trees.values()}),
        ],
        cwd=parent,
        env={"PYTHONPATH": f"{parent}:{REPO}", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        return {"(importer)": result.stderr}
    return {by_dir[k]: v for k, v in json.loads(result.stdout).items()}
