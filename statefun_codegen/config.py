"""Settings: ``[tool.statefun-codegen]`` in pyproject.toml, then flags (flags win).

Plugin mode takes the same keys from ``--statefun_opt=key=value,...``. Both are
strict: an unknown key is an error, never silently ignored.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .manifest import did_you_mean

CONFIG_KEYS = (
    "paths",
    "out",
    "manifest",
    "proto-path",
    "module-format",
    "package",
    "module-yaml",
    "stubs",
    "strict",
)
PLUGIN_KEYS = ("manifest", "module_format", "package", "module_yaml", "strict")


class ConfigError(Exception):
    """A usage or configuration problem: exit code 2."""


@dataclass
class Settings:
    paths: list[str] = field(default_factory=list)
    out: str | None = None
    manifest: str | None = None
    proto_path: list[str] = field(default_factory=list)
    module_format: str = "3.1"
    package: str = "generated"
    module_yaml: str = "module.yaml"
    stubs: bool = True
    strict: bool = False
    config_file: Path | None = None
    # config keys whose paths leave the project root: refused unless a flag overrides them
    outside_root: dict[str, str] = field(default_factory=dict)

    def check_inside_root(self) -> None:
        if self.outside_root:
            raise ConfigError("; ".join(self.outside_root[k] for k in sorted(self.outside_root)))


def find_pyproject(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib as toml
    else:  # Python 3.10 has no tomllib; tomli is the same parser
        try:
            toml = importlib.import_module("tomli")
        except ModuleNotFoundError:
            raise ConfigError(
                f"{path}: reading [tool.statefun-codegen] on Python 3.10 needs 'tomli'; "
                "install it or pass the settings as flags"
            ) from None
    try:
        with path.open("rb") as handle:
            data: dict[str, Any] = toml.load(handle)
    except (OSError, ValueError) as exc:  # TOMLDecodeError is a ValueError
        raise ConfigError(f"{path}: {exc}") from None
    return data


def load_settings(cwd: Path) -> Settings:
    """Defaults overlaid with pyproject.toml's table; paths there are relative to that file."""
    settings = Settings()
    pyproject = find_pyproject(cwd)
    if pyproject is None:
        return settings
    table = _load_toml(pyproject).get("tool", {}).get("statefun-codegen")
    if table is None:
        return settings
    where = f"{pyproject}: [tool.statefun-codegen]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    base = pyproject.parent

    def relative(key: str, value: str) -> str:
        path = Path(value)
        if not _inside(base / path, base):
            # a cloned repository's pyproject must not make the tool read or write elsewhere
            settings.outside_root[key] = (
                f"{where}: '{key}' = '{value}' leaves the project root {base}; refusing it "
                "(give it on the command line to use a path outside the project)"
            )
        return str(path if path.is_absolute() else _display(base / path, cwd))

    for key, value in table.items():
        if key not in CONFIG_KEYS:
            raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, CONFIG_KEYS)}")
        if key in ("paths", "proto-path"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: '{key}' must be a list of strings")
            setattr(settings, key.replace("-", "_"), [relative(key, v) for v in value])
        elif key in ("stubs", "strict"):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: '{key}' must be true or false")
            setattr(settings, key, value)
        else:
            if not isinstance(value, str):
                raise ConfigError(f"{where}: '{key}' must be a string")
            if key in ("out", "manifest"):
                value = relative(key, value)
            setattr(settings, key.replace("-", "_"), value)
    settings.config_file = pyproject
    return settings


def _inside(path: Path, root: Path) -> bool:
    """True if ``path`` (symlinks followed) is ``root`` or below it."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def _display(path: Path, cwd: Path) -> Path:
    try:
        return path.resolve().relative_to(cwd.resolve())
    except ValueError:
        return path


def parse_bool(text: str, key: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise ConfigError(f"plugin option '{key}' must be true or false, not '{text}'")


def parse_plugin_parameter(parameter: str) -> dict[str, str]:
    """``manifest=x.yaml,module_format=3.0`` -> a dict; unknown or malformed keys raise."""
    options: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in parameter.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not value:
            raise ConfigError(f"plugin option '{item}' must be key=value")
        if key not in PLUGIN_KEYS:
            raise ConfigError(
                f"unknown plugin option '{key}'{did_you_mean(key, PLUGIN_KEYS)}; "
                f"known: {', '.join(PLUGIN_KEYS)}"
            )
        if key in options:
            raise ConfigError(f"plugin option '{key}' is given twice")
        options[key] = value.strip()
    if "manifest" not in options:
        raise ConfigError("the plugin needs the manifest: --statefun_opt=manifest=PATH")
    return options
