"""Checking, before anything starts, that every function endpoint accepts connections."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

from statefun.local.config import FunctionEndpoint, ModuleConfig
from statefun.local.errors import ConfigError


def host_and_port(endpoint: FunctionEndpoint) -> tuple[str, int]:
    url = urlsplit(endpoint.url_path_template.replace("{function.name}", "x"))
    assert url.hostname is not None  # config validation guarantees a host
    return url.hostname, url.port or (443 if url.scheme == "https" else 80)


def _path_of(endpoint: FunctionEndpoint) -> str:
    url = urlsplit(endpoint.url_path_template)
    return url.path + (f"?{url.query}" if url.query else "")


async def _reachable(host: str, port: int, timeout_s: float) -> str | None:
    """None when a TCP connection succeeds, else why it did not."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=timeout_s)
    except asyncio.TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except socket.gaierror as error:
        return f"the host {host!r} is not known here ({error.strerror or error})"
    except OSError as error:
        return error.strerror or str(error)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return None


async def check_endpoints(config: ModuleConfig, wait_s: float) -> None:
    """Raise ConfigError naming the endpoint's document if it stays unreachable for wait_s."""
    for endpoint in config.endpoints:
        host, port = host_and_port(endpoint)
        deadline = time.monotonic() + wait_s
        while True:
            problem = await _reachable(host, port, min(endpoint.connect_timeout_s, 2.0))
            if problem is None:
                break
            if time.monotonic() >= deadline:
                where = endpoint.overridden_by or f"{endpoint.where}, key 'spec.urlPathTemplate'"
                hint = "start the functions server first, or pass --wait-for-endpoints SECONDS"
                if problem.startswith("the host"):
                    hint = (
                        "a docker or kubernetes service name? point the endpoint at the functions "
                        "server with --endpoint PATTERN=URL (e.g. "
                        f"'{endpoint.functions}=http://127.0.0.1:{port}{_path_of(endpoint)}')"
                    )
                raise ConfigError(
                    f"{where}: endpoint {endpoint.url_path_template} is unreachable "
                    f"({host}:{port}: {problem}); {hint}"
                )
            await asyncio.sleep(0.1)
