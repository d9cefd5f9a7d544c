"""Instructions per request of the benchmark greeter, counted by valgrind (callgrind).

    .venv/bin/python bench/sdk_instructions.py [--requests 2000] [--baseline DIR]

Wall-clock figures on a shared machine move by 10 % between runs; the number
of instructions the CPU executes for a request does not (about 0.3 %). This
runs the greeter of bench/sdk_handler.py through ``handle_async`` under
``valgrind --tool=callgrind`` for upstream 3.3.0, this repository's statefun
and optionally an earlier statefun (``--baseline DIR``, as in sdk_handler.py),
once with ``--requests`` requests and once with none, and prints the
difference per request, for batches of 1 and of 50 invocations.

Instructions are not time: protobuf's C code and the interpreter loop run at
different instructions per cycle, so upstream (more protobuf objects) is
relatively faster than its count suggests. Use it to compare two versions of
this SDK; use sdk_handler.py for the ratios against upstream. Needs valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 1200


def worker(requests: int, batch_size: int) -> None:
    sys.path.insert(0, HERE)
    import sdk_handler

    handler = sdk_handler.build_handler()
    request = sdk_handler.build_request(batch_size)
    loop = asyncio.new_event_loop()

    async def run(count: int) -> None:
        for _ in range(count):
            await handler.handle_async(request)

    loop.run_until_complete(run(20))  # warm up: imports, caches, specialization
    loop.run_until_complete(run(requests))


def instructions(python: str, requests: int, batch_size: int, statefun_path: str | None) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, "-I"]
    command += [os.path.abspath(__file__), "--worker", str(requests), str(batch_size)]
    if statefun_path:
        command += ["--statefun-path", statefun_path]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=True)
    match = re.search(r"Collected : (\d+)", completed.stderr)
    if match is None:
        raise RuntimeError(
            f"no instruction count in valgrind's output:\n{completed.stderr[-2000:]}"
        )
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests of one invocation")
    parser.add_argument("--baseline", metavar="DIR", help="also count the statefun package in DIR")
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--statefun-path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.statefun_path:
            sys.path.insert(0, args.statefun_path)
        worker(*args.worker)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
    from upstream_statefun import upstream_python

    subjects = [("upstream 3.3.0", upstream_python(), None)]
    if args.baseline:
        subjects.append(("before", sys.executable, os.path.abspath(args.baseline)))
    subjects.append(("ours", sys.executable, None))
    print(f"{'subject':<16}{'batch':>6}{'instructions/request':>24}")
    for batch_size in (1, 50):
        requests = max(20, args.requests // batch_size)
        for label, python, path in subjects:
            total = instructions(python, requests, batch_size, path)
            idle = instructions(python, 0, batch_size, path)
            print(f"{label:<16}{batch_size:>6}{(total - idle) / requests:>24,.0f}")


if __name__ == "__main__":
    main()
