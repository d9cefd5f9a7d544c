"""Differential test: thousands of seeded random programs and requests, upstream 3.3.0 against ours.

Upstream apache-flink-statefun 3.3.0 is installed with ``--no-deps`` into a
throwaway venv beside this interpreter's protobuf (scripts/upstream_statefun.py;
cached in .venv-upstream/, git-ignored). The cases (differential_cases.py)
are generated here, pickled, and run by differential_runner.py under each SDK
in its own interpreter: the same function bodies, the same requests.

For every case the response bytes must be identical, or both must raise,
ours an instance of upstream's exception class; and what the function saw
(values read, in-place changes, exceptions it caught) must be the same.
Upstream's identity of immutable values (fresh ``int``/``str`` objects on
every read) is the one thing not compared. Without network access to PyPI
the test is skipped, saying why.

    STATEFUN_DIFFERENTIAL_SEED=7 STATEFUN_DIFFERENTIAL_CASES=50000 \
        .venv/bin/python -m pytest -q tests/statefun/test_upstream_differential.py
"""

from __future__ import annotations

import collections
import importlib.util
import os
import pickle
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from differential_cases import generate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RUNNER = HERE / "differential_runner.py"
# Fixed, so that a failure can be reproduced; STATEFUN_DIFFERENTIAL_SEED (and _CASES) explore others.
SEED = int(os.environ.get("STATEFUN_DIFFERENTIAL_SEED", "20240603"))
CASES = int(os.environ.get("STATEFUN_DIFFERENTIAL_CASES", "4000"))
RUN_TIMEOUT = 300


def _upstream_python() -> str:
    spec = importlib.util.spec_from_file_location(
        "upstream_statefun", ROOT / "scripts" / "upstream_statefun.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return typing.cast(str, module.upstream_python())
    except module.UpstreamUnavailable as error:
        pytest.skip(
            f"upstream apache-flink-statefun {module.UPSTREAM_VERSION} unavailable: {error}"
        )


def _run_both(cases_path: Path, upstream: str, tmp: Path) -> tuple[dict[str, typing.Any], ...]:
    runs = {}
    for label, python in (("upstream", upstream), ("ours", sys.executable)):
        output = tmp / f"{label}.pickle"
        # -I: the upstream interpreter must not find this repository's statefun.
        process = subprocess.Popen(
            [python, "-I", str(RUNNER), str(cases_path), str(output)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        runs[label] = (process, output)
    results = []
    for label, (process, output) in runs.items():
        _, stderr = process.communicate(timeout=RUN_TIMEOUT)
        assert process.returncode == 0, f"{label} runner failed:\n{stderr.decode()[-3000:]}"
        with open(output, "rb") as handle:
            results.append(pickle.load(handle))
    return tuple(results)


def _same_exception(upstream: tuple[str, ...], ours: tuple[str, ...]) -> bool:
    """Ours is an instance of upstream's class (class hierarchies as qualified names)."""
    return upstream[0] in ours


def _same_trace(upstream: list[typing.Any], ours: list[typing.Any]) -> bool:
    if len(upstream) != len(ours):
        return False
    for theirs, mine in zip(upstream, ours):
        if theirs[0] == "raised":
            if mine[0] != "raised" or theirs[1] != mine[1]:
                return False
            if not _same_exception(theirs[2], mine[2]):
                return False
        elif theirs != mine:
            return False
    return True


def _difference(upstream: dict[str, typing.Any], ours: dict[str, typing.Any]) -> str | None:
    theirs, mine = upstream["result"], ours["result"]
    if theirs[0] != mine[0]:
        return f"upstream {theirs[0]} {theirs[1:]!r:.300}, ours {mine[0]} {mine[1:]!r:.300}"
    if theirs[0] == "response" and theirs[1] != mine[1]:
        return f"responses differ: upstream {theirs[1].hex()}, ours {mine[1].hex()}"
    if theirs[0] == "error" and not _same_exception(theirs[1], mine[1]):
        return f"upstream raised {theirs[1][0]} ({theirs[2]}), ours {mine[1][0]} ({mine[2]})"
    if not _same_trace(upstream["trace"], ours["trace"]):
        return f"traces differ:\n  upstream {upstream['trace']!r:.1500}\n  ours     {ours['trace']!r:.1500}"
    return None


def test_ours_computes_what_upstream_computes(tmp_path: Path) -> None:
    upstream_python = _upstream_python()
    cases = generate(SEED, CASES)
    cases_path = tmp_path / "cases.pickle"
    with open(cases_path, "wb") as handle:
        pickle.dump(cases, handle)
    upstream, ours = _run_both(cases_path, upstream_python, tmp_path)
    assert ".venv-upstream" in upstream["module"], upstream["module"]
    assert Path(ours["module"]).parent == ROOT / "statefun", ours["module"]

    differences = []
    for index, (theirs, mine) in enumerate(zip(upstream["results"], ours["results"])):
        difference = _difference(theirs, mine)
        if difference is not None:
            case = cases[index]
            differences.append(
                f"case {index} (seed {SEED}): {difference}\n  specs {case['specs']}\n"
                f"  operations {case['operations']!r:.2000}\n  request {case['request']!r:.500}"
            )
    assert not differences, (
        f"{len(differences)} of {len(cases)} cases differ from upstream; the first:\n\n"
        + "\n\n".join(differences[:3])
    )

    # The run must have covered what it is for, or passing proves nothing.
    outcomes = collections.Counter(result["result"][0] for result in ours["results"])
    errors = collections.Counter(
        result["result"][1][0] for result in ours["results"] if result["result"][0] == "error"
    )
    traced = collections.Counter(
        entry[0] for result in ours["results"] for entry in result["trace"]
    )
    fresh_reads = sum(
        1
        for result in upstream["results"]
        for entry in result["trace"]
        if entry[0] == "read_twice" and entry[4] is False
    )
    assert outcomes["response"] > CASES / 2 and outcomes["error"] > CASES / 20, outcomes
    for expected in (
        "statefun.errors.MalformedRequestError",
        "statefun.errors.FunctionNotFoundError",
    ):
        assert errors[expected] > 0, errors
    for entry in ("read", "read_twice", "write_mutate_read", "read_mutate_read", "as", "raised"):
        assert traced[entry] > 50, traced
    assert fresh_reads > 20
