"""The documented buf recipe (docs/buf.gen.yaml) run through a real buf: same files as the CLI.

`make test` installs buf from the npm registry into .tools/ when npm is on the machine; without
buf on PATH or in .tools/ this test is skipped, and says so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RICH = HERE / "schemas" / "rich"


def _buf() -> str | None:
    local = REPO / ".tools" / "node_modules" / ".bin" / "buf"
    return str(local) if local.exists() else shutil.which("buf")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _recipe(out: str, manifest: str) -> str:
    """docs/buf.gen.yaml with this interpreter, this output directory and this manifest."""
    recipe = yaml.safe_load((REPO / "docs" / "buf.gen.yaml").read_text())
    (plugin,) = recipe["plugins"]
    assert plugin["strategy"] == "all"
    plugin["local"] = [sys.executable, *plugin["local"][1:]]
    plugin["out"] = out
    plugin["opt"] = [
        f"manifest={manifest}" if o.startswith("manifest=") else o for o in plugin["opt"]
    ]
    return yaml.safe_dump(recipe, sort_keys=False)


def test_buf_generate_with_the_documented_recipe_equals_the_cli(
    generate: Callable[..., Path], tmp_path: Path
) -> None:
    buf = _buf()
    if buf is None:
        pytest.skip("buf is not installed (make test installs it with npm when npm is present)")
    workspace = tmp_path / "workspace"
    shutil.copytree(RICH, workspace / "schemas")
    (workspace / "buf.yaml").write_text("version: v2\nmodules:\n  - path: schemas\n")
    (workspace / "buf.gen.yaml").write_text(_recipe("gen", "schemas/statefun.yaml"))

    result = subprocess.run(
        [buf, "generate"], cwd=workspace, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    cli_out = generate("rich", "--no-stubs", out="cli")
    assert _files(workspace / "gen") == _files(cli_out)


def test_buf_reports_a_manifest_error_and_writes_nothing(tmp_path: Path) -> None:
    buf = _buf()
    if buf is None:
        pytest.skip("buf is not installed (make test installs it with npm when npm is present)")
    workspace = tmp_path / "workspace"
    shutil.copytree(RICH, workspace / "schemas")
    manifest = workspace / "schemas" / "statefun.yaml"
    manifest.write_text(manifest.read_text().replace("namespace:", "namespcae:", 1))
    (workspace / "buf.yaml").write_text("version: v2\nmodules:\n  - path: schemas\n")
    (workspace / "buf.gen.yaml").write_text(_recipe("gen", "schemas/statefun.yaml"))

    result = subprocess.run(
        [buf, "generate"], cwd=workspace, capture_output=True, text=True, timeout=120
    )

    assert result.returncode != 0
    assert "schemas/statefun.yaml:" in result.stderr and "namespcae" in result.stderr
    assert not (workspace / "gen").exists()
