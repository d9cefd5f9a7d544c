"""Durations as Flink's ``TimeUtils.parseDuration`` reads them, and the limits they meet.

``<digits><optional spaces><unit>``, the unit matched case-insensitively, a bare
number meaning milliseconds. The manifest accepts the units every StateFun
version reads (``ms`` ... ``d``); ``flink_duration_nanos`` reads everything the
runtime does (``µs``, ``ns`` too), for module.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

JAVA_INT_MAX = 2**31 - 1
JAVA_LONG_MAX = 2**63 - 1
TIMEDELTA_MAX_MILLIS = timedelta.max // timedelta(milliseconds=1)

_MILLIS: dict[str, int] = {}
_names: tuple[str, ...]
for _names, _millis in (
    (("d", "day", "days"), 86_400_000),
    (("h", "hour", "hours"), 3_600_000),
    (("min", "minute", "minutes"), 60_000),
    (("s", "sec", "secs", "second", "seconds"), 1_000),
    (("ms", "milli", "millis", "millisecond", "milliseconds"), 1),
):
    for _name in _names:
        _MILLIS[_name] = _millis

_NANOS: dict[str, int] = {name: millis * 1_000_000 for name, millis in _MILLIS.items()}
for _names, _nanos in (
    (("µs", "μs", "micro", "micros", "microsecond", "microseconds"), 1_000),
    (("ns", "nano", "nanos", "nanosecond", "nanoseconds"), 1),
):
    for _name in _names:
        _NANOS[_name] = _nanos

# Java's String.trim() drops every char <= ' '; the digits are ASCII only
_DURATION = re.compile(r"^[\x00- ]*([0-9]+)[\x00- ]*(\S*?)[\x00- ]*$", re.ASCII)

UNITS_HELP = "ms, s, min, h or d"


@dataclass(frozen=True)
class ParsedDuration:
    number: int  # the digits as written (the runtime parses them as a Java long)
    millis: int
    bare: bool  # no unit: milliseconds


def parse_duration(text: str) -> ParsedDuration | None:
    """The manifest's durations; None when ``text`` is not one we accept."""
    match = _DURATION.match(text)
    if not match:
        return None
    unit = match.group(2).lower()
    size = _MILLIS.get(unit or "ms")
    if size is None:
        return None
    number = int(match.group(1))
    return ParsedDuration(number, number * size, not unit)


def parse_duration_millis(text: str) -> int | None:
    parsed = parse_duration(text)
    return parsed.millis if parsed is not None else None


def flink_duration_nanos(text: str) -> tuple[int | None, str]:
    """Nanoseconds as ``TimeUtils.parseDuration`` reads ``text``, or None and why not."""
    match = _DURATION.match(text)
    if not match:
        return None, "it must start with a number (digits 0-9)"
    number = int(match.group(1))
    if number > JAVA_LONG_MAX:
        return None, "the number does not fit in a 64-bit long"
    label = match.group(2).lower()
    if label == "m":
        return None, "the unit 'm' is not read by every Flink version; write 'min'"
    size = _NANOS.get(label or "ms")
    if size is None:
        return None, f"'{label}' is not a unit Flink knows (d, h, min, s, ms, µs, ns)"
    nanos = number * size
    if nanos // 1_000_000 > JAVA_LONG_MAX:
        return None, "it does not fit in a Java Duration's milliseconds"
    return nanos, ""


def format_duration(millis: int) -> str:
    """The shortest exact spelling in units every StateFun version parses."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)):
        if millis and millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"
