"""Positions in .proto text for the errors protoc reports without one, or vaguely.

protoc puts every reserved-range or extension-range error at the first range of
the message, and path-level problems at no position at all. When protoc fails it
gives us no descriptors (no SourceCodeInfo), so this small tokenizer reads the
text itself: enough of the grammar to find a declaration, a block, a field's
number, a range or a reserved name. Columns count as protoc counts them (a tab
advances to the next multiple of 8), so its positions and ours agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""(?P<space>[ \t\r\f\v]+)
      | (?P<newline>\n)
      | (?P<line_comment>//[^\n]*)
      | (?P<block_comment>/\*.*?(?:\*/|\Z))
      | (?P<string>"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>[0-9][0-9A-Za-z_.]*)
      | (?P<symbol>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_BLOCK_KEYWORDS = ("message", "enum", "extend", "service", "oneof")
FIELD_MAX = 536_870_911
ENUM_MAX = 2_147_483_647


@dataclass(frozen=True)
class Token:
    kind: str  # ident, number, string, symbol
    text: str
    line: int  # one-based
    column: int  # one-based, tabs to multiples of 8 as protoc counts

    @property
    def position(self) -> tuple[int, int]:
        return (self.line, self.column)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    line, column = 1, 0  # column zero-based while scanning
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "symbol"
        value = match.group()
        if kind in ("ident", "number", "string", "symbol"):
            tokens.append(Token(kind, value, line, column + 1))
        for char in value:  # advance exactly as protoc's tokenizer does
            if char == "\n":
                line, column = line + 1, 0
            elif char == "\t":
                column += 8 - column % 8
            else:
                column += 1
    return tokens


def declaration(text: str) -> tuple[int, int] | None:
    """Where a file says what it is: its package name, else its syntax/edition line."""
    tokens = tokenize(text)
    first: tuple[int, int] | None = None
    depth = 0
    for index, token in enumerate(tokens):
        if token.text == "{":
            depth += 1
        elif token.text == "}":
            depth -= 1
        elif depth == 0 and token.kind == "ident" and index + 1 < len(tokens):
            if token.text == "package" and tokens[index + 1].kind == "ident":
                return tokens[index + 1].position
            if token.text in ("syntax", "edition") and first is None:
                first = token.position
    return first


@dataclass(frozen=True)
class Block:
    """A message or enum body: its own statements (oneof bodies included), not nested blocks'."""

    kind: str
    statements: tuple[tuple[Token, ...], ...]

    def field_number(self, name: str) -> tuple[int, int] | None:
        """The number of field (or enum value) ``name``: ``... name = 7``."""
        for statement in self.statements:
            if not statement or statement[0].text in ("option", "reserved", "extensions"):
                continue
            for index in range(len(statement) - 2):
                if statement[index].text == name and statement[index + 1].text == "=":
                    number = statement[index + 2]
                    if number.text == "-" and index + 3 < len(statement):
                        return number.position
                    return number.position
        return None

    def _ranges(self) -> list[tuple[int, int, Token]]:
        limit = ENUM_MAX if self.kind == "enum" else FIELD_MAX
        found: list[tuple[int, int, Token]] = []
        for statement in self.statements:
            if not statement or statement[0].text not in ("reserved", "extensions"):
                continue
            items = list(statement[1:])
            index = 0
            while index < len(items):
                token = items[index]
                if token.text == "[":  # extension range options: the rest is not ranges
                    break
                negative = token.text == "-" and index + 1 < len(items)
                start_token = token
                if negative:
                    index += 1
                    token = items[index]
                low = _int(token.text, negative)
                if low is None:
                    index += 1
                    continue
                high = low
                if index + 2 < len(items) and items[index + 1].text == "to":
                    end = items[index + 2]
                    step = 3
                    end_negative = end.text == "-" and index + 3 < len(items)
                    if end_negative:
                        end = items[index + 3]
                        step = 4
                    high_value = limit if end.text == "max" else _int(end.text, end_negative)
                    high = high_value if high_value is not None else low
                    index += step
                else:
                    index += 1
                found.append((low, high, start_token))
        return found

    def later_range(
        self, first: tuple[int, int], second: tuple[int, int]
    ) -> tuple[int, int] | None:
        """Of two overlapping ranges, the one declared later (the one that is in the way)."""
        positions = [
            token.position
            for low, high, token in self._ranges()
            if (low, high) in (first, second) or (low, min(high, FIELD_MAX)) in (first, second)
        ]
        return max(positions) if positions else None

    def reserved_name(self, name: str, occurrence: int) -> tuple[int, int] | None:
        seen = 0
        for statement in self.statements:
            if not statement or statement[0].text != "reserved":
                continue
            for token in statement[1:]:
                if token.kind == "string" and token.text[1:-1] == name:
                    seen += 1
                    if seen == occurrence:
                        return token.position
        return None


def _int(text: str, negative: bool) -> int | None:
    try:
        value = int(text, 0) if not text.startswith("0") or text == "0" else int(text, 8)
    except ValueError:
        return None
    return -value if negative else value


@dataclass
class _Open:
    kind: str
    start: tuple[int, int]
    statements: list[list[Token]]
    current: list[Token]
    named: bool  # False for the braces of an option value


def block_at(text: str, line: int, column: int) -> Block | None:
    """The innermost message or enum whose text (keyword to closing brace) holds the position."""
    tokens = tokenize(text)
    stack: list[_Open] = []
    best: Block | None = None
    best_start: tuple[int, int] = (0, 0)
    position = (line, column)
    pending: tuple[str, tuple[int, int]] | None = None
    top_statement: list[Token] = []
    for index, token in enumerate(tokens):
        owner = _statement_owner(stack)
        if token.kind == "ident" and token.text in _BLOCK_KEYWORDS or token.text == "group":
            if index + 1 < len(tokens) and tokens[index + 1].kind == "ident":
                pending = (token.text if token.text != "group" else "message", token.position)
        if token.text == "{":
            if pending is not None:
                stack.append(_Open(pending[0], pending[1], [], [], True))
                pending = None
            else:
                stack.append(_Open("value", token.position, [], [], False))
            continue
        if token.text == "}" and stack:
            closed = stack.pop()
            if closed.current:
                closed.statements.append(closed.current)
            if closed.kind == "oneof" and stack:
                parent = stack[-1]
                parent.statements.extend(closed.statements)
            if (
                closed.named
                and closed.kind in ("message", "enum")
                and closed.start <= position <= token.position
                and closed.start >= best_start
            ):
                best = Block(closed.kind, tuple(tuple(s) for s in closed.statements))
                best_start = closed.start
            parent_owner = _statement_owner(stack)
            if parent_owner is not None:
                # a nested block ends the statement that opened it
                parent_owner.current = []
            continue
        if owner is None:
            top_statement.append(token)
            if token.text == ";":
                top_statement = []
            continue
        owner.current.append(token)
        if token.text == ";":
            owner.statements.append(owner.current)
            owner.current = []
    return best


def _statement_owner(stack: list[_Open]) -> _Open | None:
    """The block whose statements the next token belongs to (option-value braces are skipped)."""
    for open_block in reversed(stack):
        if open_block.named:
            return open_block
    return None
