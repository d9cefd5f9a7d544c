"""The published pre-commit hooks: each entry is our console script and does what its id says."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

try:
    import tomllib
except ImportError:  # Python 3.10: the codegen extra brings tomli
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent.parent


def _hooks() -> dict[str, dict[str, object]]:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    return {hook["id"]: hook for hook in hooks}


def test_hooks_run_our_console_script_on_schema_changes_only() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    hooks = _hooks()
    assert set(hooks) == {"statefun-codegen", "statefun-codegen-check"}
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        assert shlex.split(str(hook["entry"]))[0] in scripts
        files = re.compile(str(hook["files"]))
        for changed in ("schemas/messages.proto", "schemas/statefun.yaml", "pyproject.toml"):
            assert files.search(changed), changed
        assert not files.search("examples/greeter/greeter.py")


def test_the_check_hook_passes_on_this_repository_and_fails_on_a_stale_file(
    tmp_path: Path,
) -> None:
    entry = shlex.split(str(_hooks()["statefun-codegen-check"]["entry"]))
    command = [str(Path(sys.executable).parent / entry[0]), *entry[1:]]

    fresh = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr

    project = tmp_path / "project"
    (project / "examples").mkdir(parents=True)
    (project / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    subprocess.run(["cp", "-r", str(REPO / "schemas"), str(project)], check=True)
    subprocess.run(
        ["cp", "-r", str(REPO / "examples/greeter"), str(project / "examples")], check=True
    )
    types_module = project / "examples/greeter/generated/types.py"
    types_module.write_text(types_module.read_text() + "\n# edited by hand\n")

    stale = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=120)
    assert stale.returncode == 1
    assert "examples/greeter/generated/types.py" in stale.stdout + stale.stderr
