"""``statefun-codegen --init DIR``: a new, working project, written all at once or not at all.

The project is a greeter (``schemas/messages.proto``, ``schemas/statefun.yaml``), its body,
its server, a pyproject.toml whose ``[tool.statefun-codegen]`` lets ``python -m
statefun_codegen`` run with no arguments, and a README. The templates under
``templates/init/`` only print; the names and paths are decided here. The same inputs give
the same bytes: nothing depends on the time, the tool's version or where DIR is.

Writing never leaves half a project: the files are staged in a temporary directory (beside
DIR when DIR does not exist yet, inside it when it is an existing empty directory) and moved
into place; on any failure what was moved is taken back and the stage removed.
"""

from __future__ import annotations

import importlib.machinery
import keyword
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from .naming import snake

# The function of the new project; its body module is named as the generator names it, so
# the body written here is the file the generator then leaves alone.
FUNCTION = "greeter"
BODY_MODULE = snake(FUNCTION)

# (path in the project, template); "{package}" is the project's package
_FILES = (
    ("README.md", "README.md.j2"),
    ("pyproject.toml", "pyproject.toml.j2"),
    ("schemas/messages.proto", "messages.proto.j2"),
    ("schemas/statefun.yaml", "statefun.yaml.j2"),
    ("{package}/__init__.py", "package_init.py.j2"),
    ("{package}/__main__.py", "main.py.j2"),
    (f"{{package}}/{BODY_MODULE}.py", "greeter.py.j2"),
)

_PACKAGE_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
# Top-level packages the project, the generator or the server import: `python -m` puts the
# project directory first on sys.path, so a package of the same name would replace them. (Any
# other installed package is refused too, but these are refused wherever --init runs.)
IMPORTED = frozenset(
    {
        "statefun",
        "statefun_codegen",
        "google",
        "grpc",
        "grpc_tools",
        "yaml",
        "jinja2",
        "markupsafe",
        "black",
        "tomli",
        "uvloop",
        "httptools",
        "aiohttp",
        "mypy",
    }
)


class ScaffoldError(Exception):
    """A bad name or target directory, or the project could not be written: exit code 2."""


@dataclass(frozen=True)
class ScaffoldFile:
    path: str  # relative, '/'-separated
    content: str


@dataclass(frozen=True)
class Project:
    package: str  # the Python package, proto package and StateFun namespace
    files: tuple[ScaffoldFile, ...]


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be the project's package (and proto package, and namespace)."""
    if not _PACKAGE_NAME.match(name):
        return (
            "is not a package name: use lowercase ASCII letters, digits and '_', "
            "starting with a letter"
        )
    if keyword.iskeyword(name):
        return "is a Python keyword, so no import statement could name the package"
    if name in IMPORTED:
        return f"would shadow the '{name}' package the project imports"
    if name in sys.stdlib_module_names:
        return f"would shadow the standard library module '{name}'"
    if _installed(name):
        return f"would shadow the installed package '{name}'"
    return None


def _installed(name: str) -> bool:
    """True if a module or regular package ``name`` is installed (the working directory aside)."""
    here = os.getcwd()
    path = [entry for entry in sys.path if entry and os.path.abspath(entry) != here]
    try:
        spec = importlib.machinery.PathFinder.find_spec(name, path)
    except (ImportError, ValueError, OSError):
        return False
    return spec is not None and spec.origin is not None  # a bare directory is no package


def package_name(directory: Path, name: str | None) -> str:
    """``name``, or one derived from DIR's basename (lowercased, ``-`` → ``_``); checked."""
    if name is not None:
        problem = name_problem(name)
        if problem:
            raise ScaffoldError(f"--name '{name}' {problem}")
        return name
    basename = Path(os.path.abspath(directory)).name
    derived = basename.lower().replace("-", "_")
    problem = name_problem(derived)
    if problem:
        raise ScaffoldError(
            f"the package name '{derived}' (from the directory name '{basename}') {problem}; "
            "choose one with --name NAME"
        )
    return derived


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("statefun_codegen", "templates/init"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def plan_project(directory: Path, name: str | None) -> Project:
    """The files of a new project in ``directory`` (nothing is read or written here)."""
    package = package_name(directory, name)
    context = {"name": package, "distribution": package.replace("_", "-")}
    environment = _environment()
    files = tuple(
        ScaffoldFile(path.format(package=package), environment.get_template(t).render(context))
        for path, t in _FILES
    )
    return Project(package, files)


def check_target(directory: Path) -> None:
    """Refuse a DIR that is a symbolic link, a file or a non-empty directory."""
    shown = directory.as_posix()
    if directory.is_symlink():
        raise ScaffoldError(
            f"{shown} is a symbolic link; --init writes only into a new or empty directory "
            "(give the path of the directory itself)"
        )
    if not directory.exists():
        return
    if not directory.is_dir():
        raise ScaffoldError(f"{shown} exists and is not a directory")
    try:
        entries = sorted(entry.name for entry in directory.iterdir())
    except OSError as exc:
        raise ScaffoldError(f"cannot read {shown}: {exc.strerror or exc}") from None
    if entries:
        raise ScaffoldError(
            f"{shown} is not empty (it holds {entries[0]!r}"
            f"{f' and {len(entries) - 1} more' if len(entries) > 1 else ''}); "
            "--init writes only into a new or empty directory"
        )


def _write_tree(root: Path, files: Sequence[ScaffoldFile]) -> None:
    for file in files:
        target = root.joinpath(*file.path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.content.encode("utf-8"))


def _missing_parents(directory: Path) -> list[Path]:
    """The ancestors of ``directory`` that do not exist, outermost first."""
    missing = [p for p in directory.parents if not (p.exists() or p.is_symlink())]
    return list(reversed(missing))


def write_project(directory: Path, files: Sequence[ScaffoldFile]) -> None:
    """Write ``files`` into ``directory`` (new or empty), all of them or none."""
    check_target(directory)
    directory = Path(os.path.abspath(directory))
    created: list[Path] = []
    try:
        for parent in _missing_parents(directory):
            parent.mkdir()
            created.append(parent)
        if directory.exists():
            _move_into(directory, files)
        else:
            _rename_into(directory, files)
    except BaseException as exc:
        for parent in reversed(created):  # only the directories made here, and only if empty
            try:
                parent.rmdir()
            except OSError:
                break
        if isinstance(exc, OSError):
            raise ScaffoldError(f"cannot write {directory.as_posix()}: {exc}") from None
        raise


def _rename_into(directory: Path, files: Sequence[ScaffoldFile]) -> None:
    """DIR does not exist: build it beside itself, then one rename makes it appear whole."""
    holder = Path(tempfile.mkdtemp(prefix=f".{directory.name}.init-", dir=directory.parent))
    try:
        stage = holder / "project"
        stage.mkdir()  # not the 0700 of mkdtemp: the permissions the user's umask gives
        _write_tree(stage, files)
        os.rename(stage, directory)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def _move_into(directory: Path, files: Sequence[ScaffoldFile]) -> None:
    """DIR is an existing empty directory: stage inside it, move each top-level entry up."""
    stage = Path(tempfile.mkdtemp(prefix=".statefun-init-", dir=directory))
    moved: list[str] = []
    try:
        _write_tree(stage, files)
        for entry in sorted({file.path.split("/")[0] for file in files}):
            target = directory / entry
            if target.exists() or target.is_symlink():
                raise FileExistsError(f"{target.as_posix()} appeared while writing")
            os.rename(stage / entry, target)
            moved.append(entry)
    except BaseException:
        for entry in reversed(moved):
            try:
                os.rename(directory / entry, stage / entry)
            except OSError:
                pass
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
