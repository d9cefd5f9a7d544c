"""Shared fixtures for the generator tests: run the CLI in-process, snapshot trees."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from statefun_codegen import cli

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCHEMAS = HERE / "schemas"
GOLDEN = HERE / "golden"


def run_cli(*args: str) -> int:
    return cli.run(list(args))


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its bytes (to prove nothing changed)."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def generate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Generate ``schema`` (a dir under schemas/ or the repo's schemas/) into a fresh dir."""
    monkeypatch.chdir(tmp_path)  # no pyproject.toml above tmp: flags only

    def run(schema: str, *extra: str, out: str = "out") -> Path:
        source = REPO / "schemas" if schema == "greeter" else SCHEMAS / schema
        code = run_cli(str(source), "-o", str(tmp_path / out), "-q", *extra)
        assert code == 0
        return tmp_path / out

    return run
