"""``statefun-serve --workers N``: N worker processes on one port, restarted when they die.

The supervisor binds the port itself first, with SO_REUSEPORT and without
listening: a port already taken fails here, once, with a one-line error; port 0
is resolved to one port for every worker; and the port stays reserved while a
worker restarts. Each worker is ``python -m statefun.serving`` with the same
arguments, binding the same port with SO_REUSEPORT, so the kernel spreads new
connections over the workers' listening sockets (the supervisor's socket does
not listen and gets none).

A worker that exits is started again: at once if it had run for a while,
otherwise after a delay that doubles up to 10 s, so a crash loop does not spin.
A worker that could not start at all (its target no longer imports, the port
cannot be bound) stops the supervisor. SIGTERM/SIGINT are passed on to the
workers as SIGTERM, which drain; the supervisor waits for them (SIGKILL after
``graceful_timeout`` plus a margin). Workers run in their own process group,
so a terminal's Ctrl-C reaches them once, through the supervisor; a worker
whose supervisor disappears drains and exits by itself.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import typing
from dataclasses import dataclass

from statefun.serving.server import ServerConfig, bind_socket

__all__ = ["SupervisorError", "supervise"]

logger = logging.getLogger("statefun.serving")

POLL_SECONDS = 0.05
QUICK_EXIT_SECONDS = 5.0
MAX_RESTART_DELAY = 10.0
KILL_MARGIN_SECONDS = 5.0
EXIT_WORKER_START = 3


class SupervisorError(Exception):
    """The workers could not be started."""


@dataclass
class _Worker:
    number: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick_exits: int = 0
    restart_at: float = 0.0


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def supervise(
    arguments: list[str], workers: int, config: ServerConfig, where: str, stack: str
) -> None:
    """Run ``workers`` copies of ``statefun-serve arguments`` on one port until SIGTERM/SIGINT."""
    if not hasattr(__import__("socket"), "SO_REUSEPORT"):
        raise SupervisorError("--workers needs SO_REUSEPORT, which this platform lacks")
    try:
        reserved = bind_socket(config.host, config.port, reuse_port=True, backlog=None)
    except OSError as error:
        raise SupervisorError(
            f"cannot listen on {config.host}:{config.port}: {error.strerror or error}"
        ) from None
    port = reserved.getsockname()[1]
    command = [sys.executable, "-m", "statefun.serving", *arguments]
    command += ["--port", str(port), "--workers", "1", "--worker-of", str(os.getpid())]
    stopping: list[int] = []

    def stop(signum: int, frame: typing.Any) -> None:
        stopping.append(signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    pool = [_Worker(number) for number in range(1, workers + 1)]
    logger.info(
        "serving on %s with %d workers (health: %s; %s)",
        where.format(port=port),
        workers,
        config.health_path,
        stack,
    )
    try:
        _run(pool, command, stopping)
    finally:
        _stop_all(pool, config.graceful_timeout + KILL_MARGIN_SECONDS)
        reserved.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    logger.info("stopped")


def _start(worker: _Worker, command: list[str]) -> None:
    worker.process = subprocess.Popen(command, start_new_session=True)
    worker.started = time.monotonic()
    logger.info("worker %d started (pid %d)", worker.number, worker.process.pid)


def _run(pool: list[_Worker], command: list[str], stopping: list[int]) -> None:
    for worker in pool:
        _start(worker, command)
    while not stopping:
        time.sleep(POLL_SECONDS)
        now = time.monotonic()
        for worker in pool:
            process = worker.process
            if process is None:
                if now >= worker.restart_at and not stopping:
                    _start(worker, command)
                continue
            code = process.poll()
            if code is None:
                continue
            worker.process = None
            if code == EXIT_WORKER_START:
                raise SupervisorError(
                    f"worker {worker.number} (pid {process.pid}) could not start; stopping"
                )
            if now - worker.started < QUICK_EXIT_SECONDS:
                worker.quick_exits += 1
            else:
                worker.quick_exits = 0
            delay = (
                0.0
                if not worker.quick_exits
                else min(MAX_RESTART_DELAY, 0.25 * 2**worker.quick_exits)
            )
            worker.restart_at = now + delay
            logger.warning(
                "worker %d (pid %d) %s; restarting it%s",
                worker.number,
                process.pid,
                _exit_text(code),
                f" in {delay:.1f} s" if delay else "",
            )


def _stop_all(pool: list[_Worker], timeout: float) -> None:
    running = [worker.process for worker in pool if worker.process is not None]
    for process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("worker pid %d did not stop in time; killing it", process.pid)
            process.kill()
            process.wait()
