"""Run protoc (grpc_tools, in-process) and turn what it prints into diagnostics.

protoc's C++ core writes errors straight to file descriptor 2, so we redirect
that descriptor to a temporary file for the duration of the call and parse the
``path:line:col: message`` lines it leaves there.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

from .diagnostics import Diagnostic, GenerationError, Location

_PROTOC_LINE = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$")
_WARNING = re.compile(r"^(?:warning: |.*: warning: )")


@dataclass(frozen=True, eq=False)
class ProtoInput:
    """What both front ends hand to the generator: descriptors plus which files are ours."""

    files: tuple[descriptor_pb2.FileDescriptorProto, ...]
    to_generate: tuple[str, ...]
    # proto name (relative to its include root) -> the path the user knows it by
    display_paths: tuple[tuple[str, str], ...] = ()
    # protoc's _pb2.py/.pyi texts when the same protoc run already produced them
    python_outputs: tuple[tuple[str, str], ...] = ()

    def display_path(self, proto_name: str) -> str:
        return dict(self.display_paths).get(proto_name, proto_name)


def well_known_include() -> str:
    import grpc_tools

    return str(Path(grpc_tools.__file__).parent / "_proto")


@contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Capture fd 2 (where protoc's C++ writes) into the yielded list, lines only."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").splitlines())


def run_protoc(args: Sequence[str]) -> tuple[int, list[str]]:
    from grpc_tools import protoc

    with _captured_stderr() as lines:
        code = protoc.main(["grpc_tools.protoc", *args])
    return int(code), lines


def protoc_diagnostics(lines: Sequence[str]) -> list[Diagnostic]:
    """protoc's own messages in our ``path:line:col: error: message`` shape."""
    diagnostics: list[Diagnostic] = []
    for raw in lines:
        line = raw.strip()
        if not line or _WARNING.match(line):
            continue
        match = _PROTOC_LINE.match(line)
        if match:
            location = Location(match["path"], int(match["line"]), int(match["col"]))
            diagnostics.append(Diagnostic(location, match["message"].rstrip(".")))
            continue
        path, sep, message = line.partition(": ")
        if sep and (path.endswith(".proto") or "/" in path):
            diagnostics.append(Diagnostic(Location(path), message.rstrip(".")))
        else:
            diagnostics.append(Diagnostic(Location("protoc"), line.rstrip(".")))
    return diagnostics


def compile_protos(proto_files: Sequence[Path], include_roots: Sequence[Path]) -> ProtoInput:
    """Parse the user's .proto files into descriptors with source info (CLI mode)."""
    problems = [
        Diagnostic(Location(str(path)), "no such .proto file")
        for path in proto_files
        if not path.is_file()
    ]
    if problems:
        raise GenerationError(problems)
    names: list[str] = []
    display: list[tuple[str, str]] = []
    for path in proto_files:
        name = _proto_name(path, include_roots)
        if name is None:
            raise GenerationError(
                [Diagnostic(Location(str(path)), "this file is not under any include root (-I)")]
            )
        names.append(name)
        display.append((name, str(path)))
    with tempfile.TemporaryDirectory(prefix="statefun-codegen-") as tmp:
        out = Path(tmp) / "descriptors.pb"
        python_out = Path(tmp) / "python"
        python_out.mkdir()
        args = [f"-I{root}" for root in include_roots]
        args += [
            f"-I{well_known_include()}",
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            # one parse for both: protoc's Python output comes from the same run
            f"--python_out={python_out}",
            f"--pyi_out={python_out}",
            *[str(path) for path in proto_files],
        ]
        code, lines = run_protoc(args)
        _forward_warnings(lines)
        if code != 0:
            diagnostics = protoc_diagnostics(lines) or [
                Diagnostic(Location("protoc"), f"protoc failed with exit code {code}")
            ]
            raise GenerationError(diagnostics)
        descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
        from .pb2 import read_python_outputs

        python_outputs = read_python_outputs(python_out, names)
    return ProtoInput(
        files=tuple(descriptor_set.file),
        to_generate=tuple(names),
        display_paths=tuple(display),
        python_outputs=tuple(sorted(python_outputs.items())),
    )


def _forward_warnings(lines: Sequence[str]) -> None:
    for line in lines:
        if _WARNING.match(line.strip()):
            print(line, file=sys.stderr)


def _proto_name(path: Path, include_roots: Sequence[Path]) -> str | None:
    resolved = path.resolve()
    for root in include_roots:
        try:
            return resolved.relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return None
