"""Reading module.yaml documents while remembering where every key sits, for precise errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import yaml

from statefun.local.durations import DurationError, parse_duration_ms
from statefun.local.errors import ConfigError

PathPart = str | int
Path = tuple[PathPart, ...]


def format_path(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "<document>"


@dataclass
class YamlDocument:
    """One YAML document of a module file, with line numbers (1-based) for each key path."""

    file: str
    index: int  # 1-based, as a person counts documents
    data: object
    lines: dict[Path, int]

    def line_of(self, path: Path) -> int:
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)

    def error(self, path: Path, message: str) -> ConfigError:
        return ConfigError(
            f"{self.file}:{self.line_of(path)}: document {self.index}, "
            f"key '{format_path(path)}': {message}"
        )


def _record_lines(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                _record_lines(value_node, path + (str(key_node.value),), lines)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _record_lines(item, path + (position,), lines)


def load_documents(file: str) -> list[YamlDocument]:
    """All documents of a YAML file (null documents included, as ``data=None``)."""
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise ConfigError(f"{file}: can not read module file: {error.strerror or error}") from None
    loader = yaml.SafeLoader(text)
    documents: list[YamlDocument] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            lines: dict[Path, int] = {}
            if node is not None:
                _record_lines(node, (), lines)
                data = loader.construct_document(node)
            else:
                data = None
            documents.append(YamlDocument(file, len(documents) + 1, data, lines))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(
            f"{where}: document {len(documents) + 1}: not valid YAML: {problem}"
        ) from None
    finally:
        loader.dispose()
    return documents


@dataclass
class Section:
    """A mapping inside a document; typed accessors raise ConfigError naming file/doc/key."""

    doc: YamlDocument
    path: Path
    data: dict[str, object]
    used: set[str] = field(default_factory=set)

    @staticmethod
    def of(doc: YamlDocument, path: Path, value: object) -> "Section":
        if not isinstance(value, dict):
            raise doc.error(path, f"expected a mapping, got {_describe(value)}")
        return Section(doc, path, value)

    def error(self, key: PathPart, message: str) -> ConfigError:
        return self.doc.error(self.path + (key,), message)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, required: bool) -> object:
        self.used.add(key)
        value = self.data.get(key)
        if value is None and required:
            raise self.doc.error(self.path + (key,), "required key is missing")
        return value

    def string(self, key: str, required: bool = True, default: str = "") -> str:
        value = self.raw(key, required)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {_describe(value)}")
        return value

    def integer(self, key: str, default: int, minimum: int = 1) -> int:
        value = self.raw(key, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {_describe(value)}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def duration_ms(self, key: str, default_ms: float, allow_zero: bool = False) -> float:
        value = self.raw(key, False)
        if value is None:
            return default_ms
        try:
            millis = parse_duration_ms(value)
        except DurationError as error:
            raise self.error(key, f"bad duration: {error}") from None
        if millis <= 0 and not allow_zero:
            raise self.error(key, "a timeout must be greater than zero")
        return millis

    def section(self, key: str, required: bool = False) -> "Section | None":
        value = self.raw(key, required)
        if value is None:
            return None
        return Section.of(self.doc, self.path + (key,), value)

    def sections(self, key: str, required: bool = True) -> Iterator["Section"]:
        value = self.raw(key, required)
        if value is None:
            return
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {_describe(value)}")
        if required and not value:
            raise self.error(key, "the list must not be empty")
        for position, item in enumerate(value):
            yield Section.of(self.doc, self.path + (key, position), item)

    def strings(self, key: str) -> list[str]:
        value = self.raw(key, True)
        if not isinstance(value, list) or not value:
            raise self.error(key, f"expected a non-empty list of names, got {_describe(value)}")
        result: list[str] = []
        for position, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.doc.error(
                    self.path + (key, position), f"expected a string, got {_describe(item)}"
                )
            result.append(item)
        return result

    def unknown_keys(self, known: set[str]) -> list[str]:
        return sorted(str(key) for key in self.data if str(key) not in known)


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
