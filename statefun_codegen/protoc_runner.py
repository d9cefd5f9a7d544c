"""Load the schema: run protoc (grpc_tools, in-process) and turn what it prints into diagnostics.

This is the first stage of the pipeline and imports nothing from the later ones.
protoc's C++ core writes errors straight to file descriptor 2, so we redirect
that descriptor to a temporary file for the duration of the call and parse the
``path:line:col: message`` lines it leaves there. Where protoc gives no position,
or a vague one (reserved ranges, path-level problems), ``proto_locate`` derives it
from the .proto text.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

from . import proto_locate
from .diagnostics import Diagnostic, GenerationError, Location

_PROTOC_LINE = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$")
# absl's log prefix: "W0000 00:00:1796236884.106625    7779 parser.cc:659] message"
_ABSL_LOG = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] (?P<message>.*)$")
_ABSL_BANNER = "All log messages before absl::InitializeLog() is called"
_NO_SYNTAX = re.compile(
    r"No (?:edition or )?syntax specified for the proto file: (?P<path>\S+?\.proto)"
)
_CONTINUATION = re.compile(r"^(?:Suggested field numbers for |Note that )")
_NOT_FOUND = re.compile(r"^(?P<path>.+): File not found$")
_JSON_CONFLICT = re.compile(r"JSON name of field .* conflicts with")


@dataclass(frozen=True, eq=False)
class ProtoInput:
    """What both front ends hand to the generator: descriptors plus which files are ours."""

    files: tuple[descriptor_pb2.FileDescriptorProto, ...]
    to_generate: tuple[str, ...]
    # proto name (relative to its include root) -> the path the user knows it by
    display_paths: tuple[tuple[str, str], ...] = ()
    # protoc's _pb2.py/.pyi texts, from the same protoc run as the descriptors
    python_outputs: tuple[tuple[str, str], ...] = ()
    # what protoc warned about (located, in our format)
    warnings: tuple[Diagnostic, ...] = ()

    def display_path(self, proto_name: str) -> str:
        return dict(self.display_paths).get(proto_name, proto_name)


def module_parts(proto_name: str) -> list[str]:
    """The dotted module path protoc gives ``proto_name``'s ``_pb2``, as a list of parts.

    protoc strips ``.proto``, turns ``-`` into ``_`` and treats both ``/`` and ``.`` as
    package separators: ``my.api/v1-x.proto`` becomes ``my.api.v1_x_pb2``.
    """
    stem = proto_name[: -len(".proto")] if proto_name.endswith(".proto") else proto_name
    parts = stem.replace("-", "_").replace("/", ".").split(".")
    parts[-1] += "_pb2"
    return parts


def module_path(proto_name: str) -> str:
    """``acme/common/money.proto`` -> ``acme/common/money_pb2`` (where protoc writes it)."""
    return "/".join(module_parts(proto_name))


def same_module(names: Sequence[str]) -> list[tuple[str, str, str]]:
    """(file, earlier file, module) for files protoc would write to one module.

    protoc itself refuses such a run ("Tried to write the same file twice") without
    saying which .proto files collide; file systems that ignore case collide too.
    """
    seen: dict[str, str] = {}
    clashes: list[tuple[str, str, str]] = []
    for name in names:
        module = ".".join(module_parts(name))
        other = seen.get(module.lower())
        if other is not None and other != name:  # the same name twice: protoc's "shadowed"
            clashes.append((name, other, module))
        else:
            seen[module.lower()] = name
    return clashes


def _same_module_error(clash: tuple[str, str, str], location: Location) -> Diagnostic:
    name, other, module = clash
    return Diagnostic(
        location,
        f"{name} and {other} would both become the Python module {module} (protoc's naming "
        "turns '-' into '_' and '.' into a package level; file systems may ignore case); "
        "rename one",
    )


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


SourceReader = Callable[[str], "str | None"]


def protoc_diagnostics(
    lines: Sequence[str], read_source: SourceReader, display: Mapping[str, str] | None = None
) -> list[Diagnostic]:
    """protoc's messages in our ``path:line:col: severity: message`` shape, each located.

    ``read_source`` gives the text of a .proto by the path protoc prints (or None), so
    positions protoc leaves out or gets vague can be derived from the file itself.
    """
    diagnostics: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()
    for raw in lines:
        line = raw.strip()
        if not line or _ABSL_BANNER in line:
            continue
        absl = _ABSL_LOG.match(line)
        if absl:  # a duplicate of a located warning, or the "no syntax" notice
            no_syntax = _NO_SYNTAX.search(absl["message"])
            if no_syntax:  # absl names the file as protoc knows it, not as the user does
                path = (display or {}).get(no_syntax["path"], no_syntax["path"])
                diagnostics.append(
                    Diagnostic(
                        _file_location(path, read_source),
                        "the file has no 'syntax' or 'edition' line, so protoc reads it as "
                        'proto2; start it with syntax = "proto3"; (or the syntax you mean)',
                        "warning",
                    )
                )
            continue
        located = _PROTOC_LINE.match(line)
        if located:
            path, message = located["path"], located["message"]
            location = Location(path, int(located["line"]), int(located["col"]))
        else:
            path, sep, message = line.partition(": ")
            if not sep or not (path.endswith(".proto") or "/" in path):
                diagnostics.append(Diagnostic(Location("protoc", 1, 1), line.rstrip(".")))
                continue
            location = _file_location(path, read_source)
        severity = "error"
        if message.startswith("warning: "):
            severity, message = "warning", message[len("warning: ") :]
            if _JSON_CONFLICT.search(message):
                continue  # stubs reports it as the error it is: the runtime refuses the module
        message = message.rstrip(".")
        if _CONTINUATION.match(message) and diagnostics:  # protoc's own hint to the last one
            previous = diagnostics.pop()
            diagnostics.append(previous.with_hint(message))
            continue
        text = read_source(path) if located else None
        if text is not None:
            location = _refine(location, message, text)
        key = (location.format(), message)
        if key in seen:
            continue
        seen.add(key)
        diagnostics.append(Diagnostic(location, message, severity))
    return _drop_redundant_not_found(diagnostics)


def _file_location(path: str, read_source: SourceReader) -> Location:
    """A problem with a whole file points at its package declaration (or its first line)."""
    text = read_source(path)
    if text is not None:
        found = proto_locate.declaration(text)
        if found is not None:
            return Location(path, *found)
    return Location(path, 1, 1)


_REFINERS: tuple[
    tuple[re.Pattern[str], Callable[[proto_locate.Block, re.Match[str]], tuple[int, int] | None]],
    ...,
] = (
    (
        re.compile(r'^Field "(?P<name>\w+)" uses reserved number \d+$'),
        lambda block, m: block.field_number(m["name"]),
    ),
    (
        re.compile(r'^Enum value "(?P<name>\w+)" uses reserved number -?\d+$'),
        lambda block, m: block.field_number(m["name"]),
    ),
    (
        re.compile(
            r"^(?:Reserved|Extension) range (?P<low>-?\d+) to (?P<high>-?\d+) overlaps with "
            r"(?:already-defined|reserved|extension) range (?P<low2>-?\d+) to (?P<high2>-?\d+)$"
        ),
        lambda block, m: block.later_range(
            (int(m["low"]), int(m["high"])), (int(m["low2"]), int(m["high2"]))
        ),
    ),
    (
        re.compile(r'^Field name "(?P<name>\w+)" is reserved multiple times$'),
        lambda block, m: block.reserved_name(m["name"], occurrence=2),
    ),
    (
        re.compile(r'^Enum value "(?P<name>\w+)" is reserved multiple times$'),
        lambda block, m: block.reserved_name(m["name"], occurrence=2),
    ),
)


def _refine(location: Location, message: str, text: str) -> Location:
    """protoc points errors about reserved and extension ranges at the message, not the culprit."""
    for pattern, find in _REFINERS:
        match = pattern.match(message)
        if match is None:
            continue
        block = proto_locate.block_at(text, location.line, location.column)
        if block is None:
            return location
        found = find(block, match)
        return Location(location.path, *found) if found else location
    return location


def _drop_redundant_not_found(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """ "x.proto: File not found" repeats what 'Import "x.proto" was not found' says, located."""
    imports = " ".join(d.message for d in diagnostics if d.message.startswith("Import "))
    kept = []
    for diagnostic in diagnostics:
        missing = _NOT_FOUND.match(f"{diagnostic.location.path}: {diagnostic.message}")
        if missing and f'"{missing["path"]}"' in imports:
            continue
        kept.append(diagnostic)
    return kept


def _disk_reader(include_roots: Sequence[Path]) -> SourceReader:
    def read(path: str) -> str | None:
        candidates = [Path(path), *(root / path for root in include_roots)]
        for candidate in candidates:
            try:
                return candidate.read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
        return None

    return read


def compile_protos(proto_files: Sequence[Path], include_roots: Sequence[Path]) -> ProtoInput:
    """Parse the user's .proto files into descriptors with source info (CLI mode)."""
    problems = [
        Diagnostic(Location(str(path), 1, 1), "no such .proto file")
        for path in proto_files
        if not path.is_file()
    ]
    if problems:
        raise GenerationError(problems)
    read_source = _disk_reader(include_roots)
    names: list[str] = []
    display: list[tuple[str, str]] = []
    for path in proto_files:
        name = _proto_name(path, include_roots)
        if name is None:
            raise GenerationError(
                [
                    Diagnostic(
                        _file_location(str(path), read_source),
                        "this file is not under any include root (-I)",
                    )
                ]
            )
        names.append(name)
        display.append((name, str(path)))
    shown = dict(display)
    clashes = same_module(names)
    if clashes:
        raise GenerationError(
            [_same_module_error(c, _file_location(shown[c[0]], read_source)) for c in clashes]
        )
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
        diagnostics = protoc_diagnostics(lines, read_source, dict(display))
        if code != 0:
            if not any(d.severity == "error" for d in diagnostics):
                diagnostics.append(
                    Diagnostic(Location("protoc", 1, 1), f"protoc failed with exit code {code}")
                )
            raise GenerationError(diagnostics)
        descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
        python_outputs = read_python_outputs(python_out, names)
    return ProtoInput(
        files=tuple(descriptor_set.file),
        to_generate=tuple(names),
        display_paths=tuple(display),
        python_outputs=tuple(sorted(python_outputs.items())),
        warnings=tuple(diagnostics),
    )


def from_descriptors(
    files: Sequence[descriptor_pb2.FileDescriptorProto], to_generate: Sequence[str]
) -> ProtoInput:
    """Plugin mode: the request's descriptors, plus protoc's own Python output for them."""
    clashes = same_module(to_generate)
    if clashes:
        by_name = {file.name: file for file in files}
        problems = []
        for clash in clashes:
            package = [
                location.span
                for location in by_name[clash[0]].source_code_info.location
                if list(location.path) == [2]
            ]
            line, column = (package[0][0] + 1, package[0][1] + 1) if package else (1, 1)
            problems.append(_same_module_error(clash, Location(clash[0], line, column)))
        raise GenerationError(problems)
    return ProtoInput(
        files=tuple(files),
        to_generate=tuple(to_generate),
        python_outputs=tuple(sorted(protoc_python_outputs(files, to_generate).items())),
    )


def protoc_python_outputs(
    files: Sequence[descriptor_pb2.FileDescriptorProto], to_generate: Sequence[str]
) -> dict[str, str]:
    """protoc's own ``_pb2.py``/``.pyi`` for descriptors (plugin mode: no sources on disk)."""
    descriptor_set = descriptor_pb2.FileDescriptorSet(file=list(files))
    for file in descriptor_set.file:
        explicit = _explicit_json_name_paths(file)
        _drop_default_json_names(file.message_type, file.extension, (4,), (7,), explicit)
        file.ClearField("source_code_info")  # protoc's Python output never embeds it
    with tempfile.TemporaryDirectory(prefix="statefun-codegen-") as tmp:
        root = Path(tmp)
        (root / "in.pb").write_bytes(descriptor_set.SerializeToString())
        out = root / "out"
        out.mkdir()
        code, lines = run_protoc(
            [
                f"--descriptor_set_in={root / 'in.pb'}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                *to_generate,
            ]
        )
        if code != 0:
            raise GenerationError(
                [d for d in protoc_diagnostics(lines, lambda _: None) if d.severity == "error"]
                or [Diagnostic(Location("protoc", 1, 1), f"protoc failed with exit code {code}")]
            )
        return read_python_outputs(out, to_generate)


def _explicit_json_name_paths(
    file: descriptor_pb2.FileDescriptorProto,
) -> set[tuple[int, ...]] | None:
    """Paths of fields whose .proto sets ``json_name`` itself (None: no source info to tell)."""
    if not file.HasField("source_code_info"):
        return None
    return {
        tuple(location.path[:-1])
        for location in file.source_code_info.location
        if len(location.path) >= 3 and location.path[-1] == 10 and location.path[-3] in (2, 6, 7)
    }


def default_json_name(name: str) -> str:
    """protoc's JSON name for a field: underscores dropped, the letter after each capitalised."""
    parts = name.split("_")
    return parts[0] + "".join(part[:1].upper() + part[1:] for part in parts[1:])


def _drop_default_json_names(
    messages: Iterable[descriptor_pb2.DescriptorProto],
    extensions: Iterable[descriptor_pb2.FieldDescriptorProto],
    message_path: tuple[int, ...],
    extension_path: tuple[int, ...],
    explicit: set[tuple[int, ...]] | None,
) -> None:
    """Make descriptors look as protoc's parser leaves them for ``--python_out``.

    Requests and descriptor sets carry every field's computed ``json_name``; a
    module generated straight from the .proto embeds it only when the .proto sets
    it. Dropping the computed ones makes plugin output equal to CLI output; the
    source info says which ones the .proto set (even to the default spelling).
    """

    def clear(field: descriptor_pb2.FieldDescriptorProto, path: tuple[int, ...]) -> None:
        keep = path in explicit if explicit is not None else False
        if not keep and (explicit is not None or field.json_name == default_json_name(field.name)):
            field.ClearField("json_name")

    for index, field in enumerate(extensions):
        clear(field, (*extension_path, index))
    for index, message in enumerate(messages):
        path = (*message_path, index)
        for field_index, field in enumerate(message.field):
            clear(field, (*path, 2, field_index))
        _drop_default_json_names(
            message.nested_type, message.extension, (*path, 3), (*path, 6), explicit
        )


def read_python_outputs(out: Path, to_generate: Sequence[str]) -> dict[str, str]:
    raw: dict[str, str] = {}
    for name in to_generate:
        base = module_path(name)
        for suffix in (".py", ".pyi"):
            raw[base + suffix] = (out / (base + suffix)).read_text(encoding="utf-8")
    return raw


def _proto_name(path: Path, include_roots: Sequence[Path]) -> str | None:
    resolved = path.resolve()
    for root in include_roots:
        try:
            return resolved.relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return None
