"""A throwaway venv holding upstream apache-flink-statefun 3.3.0 beside this interpreter's protobuf.

    python scripts/upstream_statefun.py     # sets it up if needed; prints its python

The differential test (tests/statefun/test_upstream_differential.py) and the
benchmarks under bench/ run upstream's SDK in this venv, next to ours, on the
same protobuf. Upstream pins ``protobuf<4`` although its code runs on current
protobuf, so it is installed with ``--no-deps`` and the venv gets the
protobuf version of the interpreter running this (the same wheel pip picks).

There is one venv per Python version and protobuf version, under
``.venv-upstream/`` at the repository root (git-ignored): the first call
creates it (a few seconds, needs PyPI), later calls only check a marker. A
file lock keeps concurrent callers from building it twice.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import venv

UPSTREAM_VERSION = "3.3.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, ".venv-upstream")
INSTALL_TIMEOUT = 300


class UpstreamUnavailable(RuntimeError):
    """Upstream's SDK could not be installed or does not import here; the message says why."""


def _protobuf_version() -> str:
    import google.protobuf

    return str(google.protobuf.__version__)


def venv_dir() -> str:
    """Where the venv for this interpreter and protobuf version lives."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return os.path.join(CACHE, f"py{python}-protobuf{_protobuf_version()}")


def upstream_python() -> str:
    """The python of the upstream venv, creating the venv first if needed."""
    directory = venv_dir()
    python = os.path.join(directory, "bin", "python")
    marker = os.path.join(directory, f".installed-{UPSTREAM_VERSION}")
    if os.path.exists(marker):
        return python
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(marker):
            return python
        shutil.rmtree(directory, ignore_errors=True)
        print(
            f"setting up {directory}: apache-flink-statefun=={UPSTREAM_VERSION} (--no-deps) and "
            f"protobuf=={_protobuf_version()} ...",
            file=sys.stderr,
        )
        venv.create(directory, with_pip=False, symlinks=True)
        # pip of this interpreter installs into the new venv: no ensurepip, no second download of pip.
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                python,
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                f"apache-flink-statefun=={UPSTREAM_VERSION}",
                f"protobuf=={_protobuf_version()}",
            ],
            "could not install apache-flink-statefun from PyPI",
        )
        _run(
            [python, "-I", "-c", "import statefun.request_reply_v3"],
            f"apache-flink-statefun {UPSTREAM_VERSION} does not import on protobuf "
            f"{_protobuf_version()}",
        )
        with open(marker, "w") as handle:
            handle.write("ok\n")
    return python


def _run(command: list[str], failure: str) -> None:
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UpstreamUnavailable(f"{failure}: {error}") from error
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).strip().splitlines()
        raise UpstreamUnavailable(f"{failure}: {' / '.join(output[-3:]) or 'no output'}")


if __name__ == "__main__":
    try:
        print(upstream_python())
    except UpstreamUnavailable as error:
        sys.exit(str(error))
