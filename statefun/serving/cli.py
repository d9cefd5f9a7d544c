"""``statefun-serve`` (and ``python -m statefun.serving``): serve functions over HTTP.

    statefun-serve [--host H] [--port P] [--path /statefun] [--workers N]
                   [--max-request-bytes B] module:attr

``attr`` is a ``StatefulFunctions``, a ``RequestReplyHandler`` (anything with
``handle_async``), or a function of no arguments returning either. The current
directory is importable, as with uvicorn. Bad targets, options and ports are
reported in one line on stderr (exit status 1, or 2 for usage errors).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import re
import sys
import traceback
import typing

from statefun.serving import DEFAULT_MAX_REQUEST_BYTES, DEFAULT_PATH
from statefun.serving.supervisor import EXIT_WORKER_START

__all__ = ["main", "load_target", "TargetError"]

PROG = "statefun-serve"
EXIT_TARGET = 1

logger = logging.getLogger("statefun.serving")


class TargetError(Exception):
    """``module:attr`` does not name something statefun-serve can serve."""


def _where(error: BaseException) -> str:
    if isinstance(error, SyntaxError) and error.filename:
        return f"{error.filename}:{error.lineno}:{error.offset}"
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not frame.filename.startswith("<frozen ")
    ]
    if not frames:
        return ""
    return f"{frames[-1].filename}:{frames[-1].lineno}"


def _failure(what: str, error: BaseException) -> TargetError:
    where = _where(error)
    detail = f"{type(error).__name__}: {error}"
    return TargetError(f"{what}: {detail}" + (f" (at {where})" if where else ""))


def _import(module_name: str) -> typing.Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise TargetError(
                f"cannot import module {module_name!r}: no module named {missing!r} "
                f"(looked in the current directory {os.getcwd()} and on sys.path)"
            ) from None
        raise _failure(f"importing {module_name!r} failed", error) from None
    except Exception as error:  # noqa: BLE001 - the user's module failed: say where, in one line
        raise _failure(f"importing {module_name!r} failed", error) from None


def _as_handler(value: typing.Any, spec: str, *, call: bool = True) -> typing.Any:
    from statefun import RequestReplyHandler, StatefulFunctions

    if isinstance(value, StatefulFunctions):
        return RequestReplyHandler(value)
    if callable(getattr(value, "handle_async", None)):
        return value
    expected = "a StatefulFunctions, a RequestReplyHandler, or a function returning one"
    if call and callable(value):
        if inspect.iscoroutinefunction(value):
            raise TargetError(f"{spec} is an async function; {expected} (a plain function)")
        try:
            made = value()
        except Exception as error:  # noqa: BLE001 - the user's factory failed
            raise _failure(f"calling {spec}() failed", error) from None
        if inspect.iscoroutine(made):
            made.close()
            raise TargetError(f"{spec}() returned a coroutine; expected {expected}")
        try:
            return _as_handler(made, f"{spec}()", call=False)
        except TargetError:
            raise TargetError(
                f"{spec}() returned {type(made).__name__}; expected a StatefulFunctions or a "
                "RequestReplyHandler"
            ) from None
    raise TargetError(f"{spec} is {type(value).__name__}; expected {expected}")


def load_target(spec: str) -> typing.Any:
    """The handler ``module:attr`` names, importing ``module`` with the current directory on sys.path."""
    module_name, colon, attr = spec.partition(":")
    if (
        not colon
        or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module_name)
        or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", attr)
    ):
        raise TargetError(f"{spec!r} is not module:attribute (for example myapp.functions:handler)")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    value = _import(module_name)
    for depth, name in enumerate(attr.split(".")):
        owner = ".".join([module_name + ":" + attr.split(".")[0]] + attr.split(".")[1:depth])
        try:
            value = getattr(value, name)
        except AttributeError:
            where = f"module {module_name!r}" if depth == 0 else owner
            raise TargetError(f"{where} has no attribute {name!r}") from None
        except Exception as error:  # noqa: BLE001 - a property or module __getattr__ failed
            raise _failure(f"reading {spec} failed", error) from None
    return _as_handler(value, spec)


_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?|b)?", re.IGNORECASE)


def _size(text: str) -> int:
    matched = _SIZE.fullmatch(text.strip())
    if matched is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (bytes, or e.g. 64KiB, 32MiB)")
    unit = (matched.group(2) or "b").lower()[:1]
    return int(matched.group(1)) * {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


def _positive(kind: typing.Callable[[str], typing.Any]) -> typing.Callable[[str], typing.Any]:
    def parse(text: str) -> typing.Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve StateFun functions over HTTP/1.1 (uvloop + httptools where installed).",
    )
    parser.add_argument(
        "target",
        metavar="module:attr",
        help="a StatefulFunctions, a RequestReplyHandler, or a function returning one",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port (8000; 0: any free port)")
    parser.add_argument(
        "--path", default=DEFAULT_PATH, help=f"path of the functions ({DEFAULT_PATH})"
    )
    parser.add_argument("--health-path", default="/health", help="GET health check path (/health)")
    parser.add_argument(
        "--workers", type=_positive(int), default=1, help="worker processes on the port (1)"
    )
    parser.add_argument(
        "--max-request-bytes",
        type=_size,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help="larger bodies get 413 (32MiB, the runtime's own limit)",
    )
    parser.add_argument(
        "--header-timeout", type=_positive(float), default=10.0, help="seconds for a request head"
    )
    parser.add_argument(
        "--body-timeout", type=_positive(float), default=30.0, help="seconds for a request body"
    )
    parser.add_argument(
        "--keep-alive-timeout",
        type=_positive(float),
        default=75.0,
        help="seconds an idle connection stays open",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=_positive(float),
        default=30.0,
        help="seconds to let requests in flight finish on SIGTERM/SIGINT",
    )
    parser.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto")
    parser.add_argument("--http", choices=["auto", "httptools", "python"], default="auto")
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="info"
    )
    # Internal: one request, one task (to measure what the inline first step saves).
    parser.add_argument(
        "--dispatch", choices=["inline", "task"], default="inline", help=argparse.SUPPRESS
    )
    # Internal: run as a worker of the supervisor with this pid (binds with SO_REUSEPORT).
    parser.add_argument("--worker-of", type=int, help=argparse.SUPPRESS)
    return parser


def _fail(message: str, status: int = EXIT_TARGET) -> typing.NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    from statefun.serving import server, supervisor

    arguments = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(arguments)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(process)d %(levelname)s %(message)s",
    )
    try:
        config = server.ServerConfig(
            host=args.host,
            port=args.port,
            path=args.path,
            health_path=args.health_path,
            max_request_bytes=args.max_request_bytes,
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            keep_alive_timeout=args.keep_alive_timeout,
            graceful_timeout=args.graceful_timeout,
            loop=args.loop,
            http=args.http,
            inline=args.dispatch == "inline",
        )
        loop_name, _ = server.choose_loop(config.loop)
        parser_name = server.choose_parser(config.http, config.max_head_bytes).name
    except ImportError as error:
        parser.error(
            f"{error.name or error} is not installed (pip install 'statefun-typed[serve]')"
        )
    except ValueError as error:
        parser.error(str(error))
    worker = args.worker_of is not None
    try:
        handler = load_target(args.target)
    except TargetError as error:
        _fail(str(error), EXIT_WORKER_START if worker else EXIT_TARGET)
    shown_path = config.path.replace("{", "{{").replace("}", "}}")  # `where` is formatted later
    where = f"http://{config.host}:{{port}}{shown_path}"
    stack = f"{loop_name} + {parser_name}"
    if args.workers > 1 and not worker:
        try:
            supervisor.supervise(arguments, args.workers, config, where, stack)
        except supervisor.SupervisorError as error:
            _fail(str(error))
        return
    try:
        sock = server.bind_socket(
            config.host, config.port, reuse_port=worker, backlog=config.backlog
        )
    except OSError as error:
        _fail(
            f"cannot listen on {config.host}:{config.port}: {error.strerror or error}",
            EXIT_WORKER_START if worker else EXIT_TARGET,
        )
    port = sock.getsockname()[1]
    if worker:
        logger.info("worker listening (%s)", stack)
    else:
        logger.info(
            "serving %s on %s (health: %s; %s)",
            args.target,
            where.format(port=port),
            config.health_path,
            stack,
        )
    server.run(handler, config, sock=sock, parent_pid=args.worker_of)
    logger.info("stopped" if not worker else "worker stopped")
