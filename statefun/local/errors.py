"""Errors the local runtime reports to users as one clear line, never as a traceback."""

from __future__ import annotations


class LocalRuntimeError(Exception):
    """Base of every error the CLI turns into a message and an exit code."""

    exit_code = 1


class ConfigError(LocalRuntimeError):
    """module.yaml (or a command-line option) describes something the runtime can not serve."""

    exit_code = 2


class FunctionCallError(LocalRuntimeError):
    """A remote function failed for good (4xx, or retries exhausted within the call timeout)."""


class ProtocolError(LocalRuntimeError):
    """A function replied with something the StateFun protocol does not allow."""
