"""``statefun-codegen --init DIR``: a new project that generates with no arguments, type-checks
strictly, serves its function for real; refusals write nothing; the bytes never vary."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pool, message_factory

from statefun import kafka_egress_pb2
from statefun import request_reply_pb2 as rr
from statefun_codegen import scaffold
from statefun_codegen.cli import run
from statefun_codegen.protoc_runner import compile_protos

from .conftest import REPO

NAME = "hello_world"
INIT_FILES = [
    "README.md",
    f"{NAME}/__init__.py",
    f"{NAME}/__main__.py",
    f"{NAME}/greeter.py",
    "pyproject.toml",
    "schemas/messages.proto",
    "schemas/statefun.yaml",
]


def _listing(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (links not followed): a file's hash, "dir" or the link target."""
    entries: dict[str, str] = {}
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(current) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                entries[relative] = f"-> {os.readlink(path)}"
            elif path.is_dir():
                entries[relative] = "dir"
            else:
                entries[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@dataclass(frozen=True)
class Project:
    directory: Path
    init_stderr: str
    written: dict[str, str]  # what --init wrote, before the generator ran
    generate_stderr: str


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One project for the module: --init hello-world, then the generator with no arguments."""
    parent = tmp_path_factory.mktemp("init")
    directory = parent / "hello-world"  # the package name comes from it: '-' becomes '_'
    init = _python("-m", "statefun_codegen", "--init", "hello-world", cwd=parent)
    assert init.returncode == 0, init.stderr
    written = _listing(directory)
    generate = _python("-m", "statefun_codegen", cwd=directory)
    assert generate.returncode == 0, generate.stderr
    return Project(directory, init.stderr, written, generate.stderr)


def test_init_writes_the_project_and_says_what_to_do_next(project: Project) -> None:
    files = sorted(k for k, v in project.written.items() if v != "dir")
    assert files == INIT_FILES
    assert f"created the project {NAME} in hello-world" in project.init_stderr
    for step in ("cd hello-world", "python -m statefun_codegen", f"python -m {NAME}"):
        assert step in project.init_stderr
    assert "raise NotImplementedError" not in (project.directory / NAME / "greeter.py").read_text()


def test_the_generator_with_no_arguments_generates_and_leaves_the_init_files_alone(
    project: Project,
) -> None:
    after = _listing(project.directory)
    assert {k: after[k] for k in project.written} == project.written  # the body is untouched
    new = sorted(k for k, v in after.items() if k not in project.written and v != "dir")
    assert new == [
        f"{NAME}/generated/__init__.py",
        f"{NAME}/generated/functions/__init__.py",
        f"{NAME}/generated/functions/greeter.py",
        f"{NAME}/generated/messages_pb2.py",
        f"{NAME}/generated/messages_pb2.pyi",
        f"{NAME}/generated/types.py",
        f"{NAME}/module.yaml",
    ]
    assert f"7 file(s) written in {NAME}" in project.generate_stderr


def test_check_in_the_fresh_project_finds_nothing_to_change(project: Project) -> None:
    check = _python("-m", "statefun_codegen", "--check", cwd=project.directory)
    assert check.returncode == 0, check.stderr


def test_the_generated_package_body_and_server_pass_mypy_strict(
    project: Project, tmp_path: Path
) -> None:
    # the project's own [tool.mypy] (files = the package), with --strict spelled out as well
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache")],
        cwd=project.directory,
        env={"MYPYPATH": str(REPO), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues found in 8 source files" in result.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def messages(project: Project) -> Callable[[str], Any]:
    """The project's message classes, from its own .proto, in a private descriptor pool (the
    default pool already holds the greeter example's messages.proto)."""
    schemas = project.directory / "schemas"
    pool = descriptor_pool.DescriptorPool()
    for file in compile_protos([schemas / "messages.proto"], [schemas]).files:
        pool.Add(file)

    def message(name: str) -> Any:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{NAME}.{name}"))

    return message


@pytest.fixture
def server(project: Project) -> Iterator[str]:
    """``python -m hello_world`` on a free port (PORT); the endpoint's URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", NAME],
        cwd=project.directory,
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/statefun"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the project's server did not come up"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def _invoke(url: str, name: str, argument: bytes, seen: bytes | None) -> rr.FromFunction:
    request = rr.ToFunction()
    invocation = request.invocation
    invocation.target.namespace, invocation.target.type, invocation.target.id = (
        NAME,
        "greeter",
        name,
    )
    state = invocation.state.add(state_name="seen_count")
    if seen is not None:
        state.state_value.typename = f"type.googleapis.com/{NAME}.SeenCount"
        state.state_value.has_value, state.state_value.value = True, seen
    entry = invocation.invocations.add().argument
    entry.typename, entry.has_value = f"type.googleapis.com/{NAME}.GreetRequest", True
    entry.value = argument
    post = urllib.request.Request(url, data=request.SerializeToString(), method="POST")
    with urllib.request.urlopen(post, timeout=10) as response:
        assert response.headers["Content-Type"] == "application/octet-stream"
        return rr.FromFunction.FromString(response.read())


def test_the_served_project_counts_and_greets(server: str, messages: Callable[[str], Any]) -> None:
    greet_request, greet_response, seen_count = (
        messages(n) for n in ("GreetRequest", "GreetResponse", "SeenCount")
    )
    argument = greet_request(name="Ann").SerializeToString()
    greetings = []
    seen: bytes | None = None
    for expected_seen in (1, 2):
        result = _invoke(server, "Ann", argument, seen).invocation_result
        (mutation,) = result.state_mutations
        assert mutation.state_name == "seen_count"
        assert mutation.mutation_type == rr.FromFunction.PersistedValueMutation.MODIFY
        assert mutation.state_value.typename == f"type.googleapis.com/{NAME}.SeenCount"
        assert seen_count.FromString(mutation.state_value.value).seen == expected_seen
        seen = mutation.state_value.value
        (egress,) = result.outgoing_egresses
        assert (egress.egress_namespace, egress.egress_type) == (NAME, "greetings")
        record = kafka_egress_pb2.KafkaProducerRecord.FromString(egress.argument.value)
        assert (record.topic, record.key) == ("greetings", "Ann")
        greetings.append(greet_response.FromString(record.value_bytes).greeting)
    assert greetings == ["Hello Ann!", "Hello again Ann, visit number 2."]


# Refusals: exit 2, a message naming the problem, nothing written.


def _refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], *words: str
) -> None:
    before = _listing(tmp_path)
    assert run(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("statefun-codegen: error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err
    assert "Traceback" not in err
    assert _listing(tmp_path) == before


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_non_empty_directory_is_refused(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_tmp / "proj").mkdir()
    (in_tmp / "proj" / ".git").mkdir()
    _refused(in_tmp, capsys, ["--init", "proj"], "proj is not empty", "'.git'")


def test_a_file_is_refused(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_tmp / "proj").write_text("a file\n")
    _refused(in_tmp, capsys, ["--init", "proj"], "proj exists and is not a directory")


@pytest.mark.parametrize("target", ["empty", "missing"])
def test_a_symlink_is_refused_even_to_an_empty_directory(
    target: str, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if target == "empty":
        (in_tmp / target).mkdir()
    (in_tmp / "proj").symlink_to(target)
    _refused(in_tmp, capsys, ["--init", "proj"], "proj is a symbolic link")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--init", "proj", "--name", "class"], ["--name 'class'", "keyword"]),
        (["--init", "proj", "--name", "1abc"], ["--name '1abc'", "not a package name"]),
        (["--init", "proj", "--name", "My-App"], ["--name 'My-App'", "lowercase"]),
        (["--init", "proj", "--name", "statefun"], ["'statefun'", "shadow"]),
        (["--init", "proj", "--name", "google"], ["'google'", "shadow"]),
        (["--init", "proj", "--name", "json"], ["standard library module 'json'"]),
        (["--init", "proj", "--name", "pytest"], ["installed package 'pytest'"]),
        (["--init", "class"], ["'class' (from the directory name 'class')", "--name NAME"]),
        (["--init", "sub/1abc"], ["'1abc' (from the directory name '1abc')"]),
        (["--init", "statefun-codegen"], ["'statefun_codegen'", "shadow"]),
        (["--init", "proj", "--check"], ["--init takes no --check"]),
        (["--init", "proj", "schemas", "-o", "x"], ["--init takes no PATHS, --out"]),
        (["--name", "proj"], ["--name goes with --init DIR"]),
    ],
)
def test_bad_names_and_options_are_refused(
    args: list[str], words: list[str], in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(in_tmp, capsys, args, *words)


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_write_leaves_nothing(
    existing: bool,
    in_tmp: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last move into place fails: what was moved is taken back, made parents removed."""
    target = "proj" if existing else "new/parents/proj"
    if existing:
        (in_tmp / "proj").mkdir()
    real_rename = os.rename
    fail_at = 4 if existing else 1  # into proj/: README.md, hello, pyproject.toml, schemas
    calls: list[object] = []

    def rename(source: str | Path, destination: str | Path) -> None:
        calls.append(destination)
        if len(calls) == fail_at:
            raise OSError(28, "No space left on device")
        real_rename(source, destination)

    monkeypatch.setattr(os, "rename", rename)
    _refused(in_tmp, capsys, ["--init", target, "--name", "hello"], "cannot write", "No space")
    assert len(calls) == (fail_at + 3 if existing else 1)  # the three moved were moved back


def test_the_same_inputs_give_the_same_bytes(in_tmp: Path) -> None:
    """A new directory, a new one under missing parents, an existing empty one, given as '.'."""
    (in_tmp / "c" / "proj").mkdir(parents=True)
    assert run(["--init", "a/proj", "-q"]) == 0
    assert run(["--init", str(in_tmp / "b" / "deeper" / "proj"), "-q"]) == 0
    os.chdir(in_tmp / "c" / "proj")
    assert run(["--init", ".", "-q"]) == 0
    trees = [_listing(p) for p in (in_tmp / "a/proj", in_tmp / "b/deeper/proj", in_tmp / "c/proj")]
    assert trees[0] == trees[1] == trees[2]
    assert sorted(k for k, v in trees[0].items() if v != "dir") == [
        f.replace(NAME, "proj") for f in INIT_FILES
    ]
    # no staging directory left behind, and the permissions of a plain mkdir (not mkdtemp's 0700)
    assert sorted(p.name for p in (in_tmp / "a").iterdir()) == ["proj"]
    (in_tmp / "plain").mkdir()
    mode = (in_tmp / "plain").stat().st_mode
    assert (in_tmp / "a" / "proj").stat().st_mode == mode
    assert (in_tmp / "c" / "proj" / "proj").stat().st_mode == mode


def test_a_name_is_derived_from_the_directory_or_given() -> None:
    def package(directory: str, name: str | None = None) -> str:
        return scaffold.plan_project(Path(directory), name).package

    assert package("My-Counter") == "my_counter"
    assert package("/x/y/shop_2") == "shop_2"
    assert package("anything", "orders") == "orders"
    plan = scaffold.plan_project(Path("orders"), None)
    manifest = next(f.content for f in plan.files if f.path == "schemas/statefun.yaml")
    assert "namespace: orders\n" in manifest
    proto = next(f.content for f in plan.files if f.path == "schemas/messages.proto")
    assert "package orders;\n" in proto
