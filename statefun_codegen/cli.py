"""``statefun-codegen`` / ``python -m statefun_codegen``: generate, check or diff.

Exit codes as black and ruff use them: 0 done (or nothing to change), 1 user
errors in the input or ``--check``/``--diff`` found changes, 2 usage,
configuration or I/O problems, 123 an internal error.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import __name__ as _package
from .config import ConfigError, Settings, find_pyproject, load_settings
from .diagnostics import GenerationError, InternalError, format_all
from .generate import Options, check_options, generate
from .model import FORMATS
from .adopt import adopt_module_yaml
from .protoc_runner import ProtoInput, compile_protos
from .scaffold import ScaffoldError, plan_project, write_project
from .writer import UnsafeOutput, apply, plan, unified_diff, write_new_file

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 123
VERSION = "0.1"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="statefun-codegen",
        description=(
            "Generate typed Python (protobuf modules, StateFun types, typed function "
            "contexts) and module.yaml from .proto files and a function manifest."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="*",
        help=".proto files or directories (searched recursively; a directory is also an include root)",
    )
    parser.add_argument("-o", "--out", help="output directory (the functions' Python package)")
    parser.add_argument(
        "-m", "--manifest", help="the function manifest (default: <first dir>/statefun.yaml)"
    )
    parser.add_argument(
        "-I", "--proto-path", action="append", default=None, help="extra include root (repeatable)"
    )
    parser.add_argument("--module-format", choices=FORMATS, help="module.yaml format (default 3.1)")
    parser.add_argument("--package", help="name of the generated subpackage (default 'generated')")
    parser.add_argument(
        "--module-yaml", help="module.yaml path inside the output (default module.yaml)"
    )
    parser.add_argument(
        "--no-stubs", action="store_true", help="do not create missing function-body files"
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any file would change"
    )
    parser.add_argument("--diff", action="store_true", help="write nothing; print a unified diff")
    parser.add_argument(
        "--watch", action="store_true", help="regenerate whenever an input changes (Ctrl-C stops)"
    )
    parser.add_argument(
        "--strict", action="store_true", help="treat warnings as errors (exit 1, nothing written)"
    )
    parser.add_argument(
        "--adopt",
        metavar="MODULE_YAML",
        help="print the manifest of an existing module.yaml (message types resolved against "
        "the .proto files of PATHS and -I; with -m, write it there instead)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors and warnings")
    parser.add_argument(
        "--init", metavar="DIR", help="create a new project in DIR (new or empty), then stop"
    )
    parser.add_argument("--name", help="with --init: the package name (default: from DIR's name)")
    parser.add_argument("--version", action="version", version=f"statefun-codegen {VERSION}")
    return parser


def _merge(settings: Settings, args: argparse.Namespace) -> Settings:
    if args.paths:
        settings.paths = list(args.paths)
        # a manifest from the config belongs to the config's paths, not to these
        settings.manifest = None
        settings.outside_root.pop("paths", None)
        settings.outside_root.pop("manifest", None)
    for name in ("out", "manifest", "module_format", "package", "module_yaml"):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
            settings.outside_root.pop(name, None)
    if args.proto_path:
        settings.proto_path = list(args.proto_path)
        settings.outside_root.pop("proto-path", None)
    if args.no_stubs:
        settings.stubs = False
    if args.strict:
        settings.strict = True
    return settings


def _inputs(settings: Settings) -> tuple[list[Path], list[Path], Path, Path]:
    if not settings.paths:
        raise ConfigError("no .proto files or directories given (pass PATHS or set 'paths')")
    protos: list[Path] = []
    roots: list[Path] = [Path(p) for p in settings.proto_path]
    for raw in settings.paths:
        path = Path(raw)
        if path.is_dir():
            roots.append(path)
            protos.extend(sorted(path.rglob("*.proto")))
        elif path.is_file() and path.suffix == ".proto":
            protos.append(path)
        elif not path.exists():
            raise ConfigError(f"{raw}: no such file or directory")
        else:
            raise ConfigError(f"{raw}: not a .proto file or a directory")
    for proto in protos:
        if not any(_inside(proto, root) for root in roots):
            roots.append(proto.parent)
    if not protos:
        raise ConfigError(f"no .proto files found in {', '.join(settings.paths)}")
    if settings.manifest is None:
        first_dir = next((Path(p) for p in settings.paths if Path(p).is_dir()), None)
        candidate = first_dir / "statefun.yaml" if first_dir else None
        if candidate is None or not candidate.is_file():
            raise ConfigError(
                "no manifest: pass --manifest or put statefun.yaml in the schema directory"
            )
        settings.manifest = str(candidate)
    manifest = Path(settings.manifest)
    if not manifest.is_file():
        raise ConfigError(f"{manifest}: no such manifest file")
    if settings.out is None:
        raise ConfigError("no output directory: pass --out or set 'out' in [tool.statefun-codegen]")
    unique_roots = list(dict.fromkeys(roots))
    return sorted(set(protos)), unique_roots, manifest, Path(settings.out)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.init is not None or args.name is not None:
        return _init(args)
    if args.adopt is not None:
        return _adopt(args)
    if args.watch:
        if args.check or args.diff:
            print(
                "statefun-codegen: error: --watch writes; it cannot go with --check or --diff",
                file=sys.stderr,
            )
            return EXIT_USAGE
        return _watch(args)
    return _run_once(args)


def _init(args: argparse.Namespace) -> int:
    """``--init DIR [--name NAME]``: write a new project (all of it or nothing)."""
    others = [k for k, v in vars(args).items() if v and k not in ("init", "name", "quiet")]
    if args.init is None or others:
        flags = ", ".join("PATHS" if k == "paths" else f"--{k.replace('_', '-')}" for k in others)
        problem = f"--init takes no {flags}" if others else "--name goes with --init DIR"
        print(f"statefun-codegen: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    directory = Path(args.init)
    try:
        project = plan_project(directory, args.name)
        write_project(directory, project.files)
    except ScaffoldError as exc:
        print(f"statefun-codegen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.quiet:
        where = directory.as_posix()
        cd = f"  cd {where}\n" if Path.cwd().resolve() != directory.resolve() else ""
        print(
            f"statefun-codegen: created the project {project.package} in {where}; next:\n{cd}"
            "  python -m statefun_codegen   # generate the typed code and module.yaml\n"
            f"  python -m {project.package}   # serve the functions on http://127.0.0.1:8000/statefun",
            file=sys.stderr,
        )
    return EXIT_OK


def _input_stamps(args: argparse.Namespace) -> tuple[tuple[str, float, int], ...]:
    """What --watch compares: every input file's path, mtime and size."""
    paths: set[Path] = set()
    pyproject = find_pyproject(Path.cwd())
    if pyproject is not None:
        paths.add(pyproject)
    try:
        settings = _merge(load_settings(Path.cwd()), args)
        protos, _, manifest, _ = _inputs(settings)
        paths.update(protos)
        paths.add(manifest)
    except (ConfigError, OSError):
        pass  # reported by the next generation; keep watching what exists
    stamps = []
    for path in sorted(paths):
        try:
            stat = path.stat()
        except OSError:
            continue
        stamps.append((str(path), stat.st_mtime, stat.st_size))
    return tuple(stamps)


def _watch(args: argparse.Namespace, interval: float = 0.3) -> int:
    """Regenerate whenever a .proto, the manifest or pyproject.toml changes (Ctrl-C stops)."""
    last: tuple[tuple[str, float, int], ...] | None = None
    try:
        while True:
            stamps = _input_stamps(args)
            if stamps != last:
                last = stamps
                _run_once(args)
                print("statefun-codegen: watching for changes (Ctrl-C stops)", file=sys.stderr)
            time.sleep(interval)
    except KeyboardInterrupt:
        return EXIT_OK


def _run_once(args: argparse.Namespace) -> int:
    try:
        settings = _merge(load_settings(Path.cwd()), args)
        settings.check_inside_root()
        options = Options(
            module_format=settings.module_format,
            package=settings.package,
            module_yaml=settings.module_yaml,
            stubs=settings.stubs,
            strict=settings.strict,
        )
        problems = check_options(options)
        if problems:
            raise ConfigError("; ".join(problems))
        protos, roots, manifest, out_dir = _inputs(settings)
        manifest_text = manifest.read_bytes()  # decoded by the YAML reader, which locates bad bytes
    except ConfigError as exc:
        print(f"statefun-codegen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"statefun-codegen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        proto_input = compile_protos(protos, roots)
        generated = generate(proto_input, manifest_text, manifest.as_posix(), options)
    except GenerationError as exc:
        sys.stderr.write(exc.format())
        return EXIT_ERRORS
    except InternalError as exc:
        print(f"{_package}: internal error, please report it: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    files = generated.files
    sys.stderr.write(format_all(generated.warnings))
    owned = [options.package, options.module_yaml]
    try:
        the_plan = plan(out_dir, files, owned)
    except UnsafeOutput as exc:
        print(f"statefun-codegen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if the_plan.foreign:
        for relative in the_plan.foreign:
            print(
                f"{(out_dir / relative).as_posix()}:1:1: error: this file was not generated by "
                "statefun-codegen (no @generated marker); move it away, or delete it to let "
                "the generator write it",
                file=sys.stderr,
            )
        return EXIT_ERRORS
    if args.check or args.diff:
        if args.diff:
            sys.stdout.write(unified_diff(the_plan))
        if args.check and not args.quiet:
            for file in the_plan.writes:
                print(
                    f"would {'create' if not (out_dir / file.path).exists() else 'update'} "
                    f"{(out_dir / file.path).as_posix()}",
                    file=sys.stderr,
                )
            for relative in the_plan.stale:
                print(f"stale generated file {(out_dir / relative).as_posix()}", file=sys.stderr)
        return EXIT_ERRORS if the_plan.changed else EXIT_OK
    try:
        apply(the_plan)
    except UnsafeOutput as exc:
        print(f"statefun-codegen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"statefun-codegen: error: cannot write {out_dir}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.quiet:
        removed = f", removed {len(the_plan.stale)} stale" if the_plan.stale else ""
        print(
            f"statefun-codegen: {len(the_plan.writes)} file(s) written{removed} in {out_dir.as_posix()} "
            f"({len(files) - len(the_plan.writes)} unchanged)",
            file=sys.stderr,
        )
    return EXIT_OK


def _adopt(args: argparse.Namespace) -> int:
    """--adopt MODULE_YAML [PATHS] [-I DIR ...] [-m FILE]: describe a deployment as a manifest."""
    conflicting = [
        flag
        for flag, on in (
            ("--check", args.check),
            ("--diff", args.diff),
            ("--watch", args.watch),
            ("-o", args.out is not None),
        )
        if on
    ]
    if conflicting:
        print(
            f"statefun-codegen: error: --adopt writes a manifest; it cannot go with "
            f"{', '.join(conflicting)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    source = Path(args.adopt) if args.adopt != "-" else Path("<stdin>")
    target = Path(args.manifest) if args.manifest else None
    try:
        data = sys.stdin.buffer.read() if args.adopt == "-" else source.read_bytes()
        include = list(args.proto_path or [])
        given = list(args.paths)
        if not include and not given:  # the project's own protos, as generation finds them
            settings = load_settings(Path.cwd())
            settings.check_inside_root()
            include, given = list(settings.proto_path), list(settings.paths)
        roots = [Path(p) for p in include]
        protos: list[Path] = []
        for raw in [*include, *given]:
            path = Path(raw)
            if path.is_dir():
                roots.append(path)
                protos.extend(sorted(path.rglob("*.proto")))
            elif path.is_file() and path.suffix == ".proto":
                protos.append(path)
                if not any(_inside(path, root) for root in roots):
                    roots.append(path.parent)
            else:
                raise ConfigError(f"{raw}: not a .proto file or a directory")
        if target is not None and (target.exists() or target.is_symlink()):
            raise ConfigError(f"{target}: already exists; --adopt does not overwrite a manifest")
    except ConfigError as exc:
        print(f"statefun-codegen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(
            f"statefun-codegen: error: cannot read {exc.filename or source}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    manifest_path = target.as_posix() if target is not None else "statefun.yaml"
    try:
        proto_input = (
            compile_protos(sorted(set(protos)), list(dict.fromkeys(roots)))
            if protos
            else ProtoInput((), ())
        )
        adoption = adopt_module_yaml(data, source.as_posix(), proto_input, manifest_path)
    except GenerationError as exc:
        sys.stderr.write(exc.format())
        return EXIT_ERRORS
    except InternalError as exc:
        print(f"{_package}: internal error, please report it: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    diagnostics = adoption.diagnostics
    if args.strict:
        diagnostics = tuple(d.as_error() for d in diagnostics)
    sys.stderr.write(format_all(diagnostics))
    if args.strict and diagnostics:
        return EXIT_ERRORS
    if target is None:
        sys.stdout.write(adoption.text)
    else:
        try:
            write_new_file(target, adoption.text)
        except OSError as exc:
            print(f"statefun-codegen: error: cannot write {target}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if not args.quiet:
        todo = f", fill in its {adoption.todos} TODO(s)" if adoption.todos else ""
        written = f"wrote {target.as_posix()}" if target is not None else "adopted"
        again = (
            "" if adoption.module_format == "3.1" else f" --module-format {adoption.module_format}"
        )
        print(
            f"statefun-codegen: {written} from {source.as_posix()}{todo}; generate with "
            f"statefun-codegen <protos> --manifest {manifest_path}{again}",
            file=sys.stderr,
        )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except KeyboardInterrupt:
        return 130
    except Exception:  # an internal bug: say so clearly, keep the traceback for a report
        print(f"{_package}: internal error, please report it:", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL
