"""``java.net.URI``'s parser, as far as the StateFun runtime depends on it.

The runtime turns every endpoint URL (after replacing ``{function.name}``) into a
``java.net.URI`` (``URI.create``), then needs a server authority from it: a host
name, IPv4 or IPv6 literal and an optional port. Java follows RFC 2396 with a few
deviations, and is stricter than Python's ``urllib``: ``{`` or a space anywhere is
an error, and a host such as ``my_service`` (underscores are common in container
names) is silently read as a *registry* authority with no host at all, which fails
only when the runtime first calls the function. This module mirrors those rules
so such URLs are refused before anything is deployed.
"""

from __future__ import annotations

import ipaddress
import string
import unicodedata
from dataclasses import dataclass

_ALPHA = frozenset(string.ascii_letters)
_DIGIT = frozenset(string.digits)
_ALPHANUM = _ALPHA | _DIGIT
_HEX = frozenset(string.hexdigits)
_MARK = frozenset("-_.!~*'()")
_UNRESERVED = _ALPHANUM | _MARK
_RESERVED = frozenset(";/?:@&=+$,[]")
_URIC = _RESERVED | _UNRESERVED  # and escapes
_PCHAR = _UNRESERVED | frozenset(":@&=+$,")  # and escapes
_PATH = _PCHAR | frozenset(";/")
_USERINFO = _UNRESERVED | frozenset(";:&=+$,")
_REG_NAME = _UNRESERVED | frozenset("$,;:@&=+")
_SERVER = _USERINFO | _ALPHANUM | frozenset("-.:@[]")
_SCHEME = _ALPHANUM | frozenset("+-.")
_SCOPE_ID = _ALPHANUM | frozenset("_.")


class UriSyntaxError(ValueError):
    """What ``URISyntaxException`` would say, with the zero-based index it points at."""

    def __init__(self, reason: str, index: int) -> None:
        super().__init__(f"{reason} at index {index}")
        self.reason = reason
        self.index = index


@dataclass(frozen=True)
class JavaUri:
    scheme: str | None
    authority: str | None
    user_info: str | None
    host: str | None  # None when the authority is not a server (java.net.URI's getHost())
    port: int  # -1 when absent
    path: str | None
    query: str | None
    fragment: str | None
    opaque: bool
    server_error: UriSyntaxError | None  # why the authority is not a server, if it is not


def _is_other(char: str) -> bool:
    """Java lets non-ASCII characters that are neither spaces nor controls stand as themselves."""
    return ord(char) > 128 and not (
        unicodedata.category(char) in ("Zs", "Zl", "Zp") or unicodedata.category(char) == "Cc"
    )


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.scheme: str | None = None
        self.authority: str | None = None
        self.user_info: str | None = None
        self.host: str | None = None
        self.port = -1
        self.path: str | None = None
        self.query: str | None = None
        self.fragment: str | None = None
        self.opaque = False
        self.server_error: UriSyntaxError | None = None

    def at(self, index: int, end: int, char: str) -> bool:
        return index < end and self.text[index] == char

    def scan_until(self, start: int, end: int, stops: str, wanted: str = "") -> int:
        """Index of the first ``wanted`` char before any ``stops`` char; -1 if none (Java's scan)."""
        index = start
        while index < end:
            char = self.text[index]
            if char in stops:
                return -1 if wanted else index
            if wanted and char in wanted:
                return index
            index += 1
        return -1 if wanted else end

    def scan_allowed(self, start: int, end: int, allowed: frozenset[str], escapes: bool) -> int:
        """The first index in [start, end) whose char is not allowed (escapes count as allowed)."""
        index = start
        while index < end:
            char = self.text[index]
            if char in allowed:
                index += 1
            elif escapes and char == "%":
                if index + 3 > end or not (
                    self.text[index + 1] in _HEX and self.text[index + 2] in _HEX
                ):
                    raise UriSyntaxError("Malformed escape pair", index)
                index += 3
            elif escapes and _is_other(char):
                index += 1
            else:
                return index
        return index

    def check(
        self, start: int, end: int, allowed: frozenset[str], escapes: bool, what: str
    ) -> None:
        stop = self.scan_allowed(start, end, allowed, escapes)
        if stop < end:
            raise UriSyntaxError(f"Illegal character in {what}", stop)

    def parse(self) -> int:
        text, n = self.text, self.n
        colon = self.scan_until(0, n, "/?#", ":")
        if colon >= 0:
            if colon == 0:
                raise UriSyntaxError("Expected scheme name", 0)
            if text[0] not in _ALPHA:
                raise UriSyntaxError("Illegal character in scheme name", 0)
            self.check(1, colon, _SCHEME, False, "scheme name")
            self.scheme = text[:colon]
            position = colon + 1
            if self.at(position, n, "/"):
                position = self.hierarchical(position, n)
            else:
                end = self.scan_until(position, n, "#")
                if end <= position:
                    raise UriSyntaxError("Expected scheme-specific part", position)
                self.check(position, end, _URIC, True, "opaque part")
                self.opaque = True
                position = end
        else:
            position = self.hierarchical(0, n)
        if self.at(position, n, "#"):
            self.check(position + 1, n, _URIC, True, "fragment")
            self.fragment = text[position + 1 :]
            position = n
        if position < n:
            raise UriSyntaxError("Expected end of URI", position)
        return position

    def hierarchical(self, start: int, n: int) -> int:
        position = start
        if self.at(position, n, "/") and self.at(position + 1, n, "/"):
            position += 2
            end = self.scan_until(position, n, "/?#")
            if end > position:
                position = self.authority_part(position, end)
            elif end >= n:
                raise UriSyntaxError("Expected authority", position)
        end = self.scan_until(position, n, "?#")
        self.check(position, end, _PATH, True, "path")
        self.path = self.text[position:end]
        position = end
        if self.at(position, n, "?"):
            position += 1
            end = self.scan_until(position, n, "#")
            self.check(position, end, _URIC, True, "query")
            self.query = self.text[position:end]
            position = end
        return position

    def authority_part(self, start: int, end: int) -> int:
        server_chars = self.scan_allowed(start, end, _SERVER | frozenset("%"), False) == end
        reg_chars = self.scan_allowed_safe(start, end, _REG_NAME) == end
        if reg_chars and not server_chars:
            self.authority = self.text[start:end]
            return end
        stop = start
        error: UriSyntaxError | None = None
        if server_chars:
            try:
                stop = self.server(start, end)
                if stop < end:
                    raise UriSyntaxError("Expected end of authority", stop)
                self.authority = self.text[start:end]
            except UriSyntaxError as exc:
                self.user_info, self.host, self.port = None, None, -1
                error, stop = exc, start
        if stop < end:
            if reg_chars:
                self.authority = self.text[start:end]
                self.server_error = error
            elif error is not None:
                raise error
            else:
                raise UriSyntaxError("Illegal character in authority", stop)
        return end

    def scan_allowed_safe(self, start: int, end: int, allowed: frozenset[str]) -> int:
        try:
            return self.scan_allowed(start, end, allowed, True)
        except UriSyntaxError as exc:
            return exc.index

    def server(self, start: int, end: int) -> int:
        text = self.text
        position = start
        at_sign = self.scan_until(position, end, "/?#", "@")
        if at_sign >= position:
            self.check(position, at_sign, _USERINFO, True, "user info")
            self.user_info = text[position:at_sign]
            position = at_sign + 1
        if self.at(position, end, "["):
            position += 1
            close = self.scan_until(position, end, "/?#", "]")
            if close > position:
                literal = text[position:close]
                address, _, scope = literal.partition("%")
                try:
                    ipaddress.IPv6Address(address)
                except ValueError:
                    raise UriSyntaxError("Malformed IPv6 address", position) from None
                if "%" in literal:
                    if not scope:
                        raise UriSyntaxError("scope id expected", close)
                    self.check(close - len(scope), close, _SCOPE_ID, False, "scope id")
                self.host = text[position - 1 : close + 1]
                position = close + 1
            else:
                raise UriSyntaxError("Expected closing bracket for IPv6 address", close)
        else:
            stop = self.ipv4(position, end)
            if stop <= position:
                stop = self.hostname(position, end)
            position = stop
        if self.at(position, end, ":"):
            position += 1
            stop = self.scan_until(position, end, "/")
            if stop > position:
                self.check(position, stop, _DIGIT, False, "port number")
                port = int(text[position:stop])
                if port > 2**31 - 1:
                    raise UriSyntaxError("Malformed port number", position)
                self.port = port
                position = stop
        if position < end:
            raise UriSyntaxError("Expected port number", position)
        return position

    def ipv4(self, start: int, end: int) -> int:
        text = self.text
        stop = start
        while stop < end and text[stop] in _DIGIT | {"."}:
            stop += 1
        candidate = text[start:stop]
        parts = candidate.split(".")
        if len(parts) != 4 or not all(p and len(p) <= 3 and int(p) <= 255 for p in parts):
            return -1
        if stop < end and text[stop] != ":":
            return -1
        self.host = candidate
        return stop

    def hostname(self, start: int, end: int) -> int:
        text = self.text
        position = start
        last_label = -1
        while position < end:
            label_end = position
            while label_end < end and text[label_end] in _ALPHANUM:
                label_end += 1
            if label_end <= position:
                break
            last_label = position
            position = label_end
            while label_end < end and text[label_end] in _ALPHANUM | {"-"}:
                label_end += 1
            if label_end > position:
                if text[label_end - 1] == "-":
                    raise UriSyntaxError("Illegal character in hostname", label_end - 1)
                position = label_end
            if not self.at(position, end, "."):
                break
            position += 1
        if position < end and not self.at(position, end, ":"):
            raise UriSyntaxError("Illegal character in hostname", position)
        if last_label < 0:
            raise UriSyntaxError("Expected hostname", start)
        if last_label > start and text[last_label] not in _ALPHA:
            raise UriSyntaxError("Illegal character in hostname", last_label)
        self.host = text[start:position]
        return position


def parse(text: str) -> JavaUri:
    """``URI.create(text)``: the parsed parts, or UriSyntaxError as Java would raise it."""
    parser = _Parser(text)
    parser.parse()
    return JavaUri(
        scheme=parser.scheme,
        authority=parser.authority,
        user_info=parser.user_info,
        host=parser.host,
        port=parser.port,
        path=parser.path,
        query=parser.query,
        fragment=parser.fragment,
        opaque=parser.opaque,
        server_error=parser.server_error,
    )
