"""What a user's CI checks of each generated example: the checked-in code is what the
generator writes now, and the bodies, servers and generated package pass ``mypy --strict``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.statefun_codegen.corpus import run_mypy

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = ("shop", "telemetry")


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_checked_in_generated_code_is_current(example: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "statefun_codegen",
            f"examples/{example}/schemas",
            "-o",
            f"examples/{example}",
            "--check",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_examples_pass_mypy_strict(tmp_path: Path) -> None:
    code, report = run_mypy([f"examples/{e}" for e in EXAMPLES], REPO, tmp_path)
    assert code == 0, report
    assert "no issues found" in report
