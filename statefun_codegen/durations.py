"""Durations as Flink's TimeUtils reads them (``<number><unit>``, a bare number is ms)."""

from __future__ import annotations

import re

_UNITS: dict[str, int] = {}
for _names, _millis in (
    (("d", "day", "days"), 86_400_000),
    (("h", "hour", "hours"), 3_600_000),
    (("min", "minute", "minutes"), 60_000),
    (("s", "sec", "secs", "second", "seconds"), 1_000),
    (("ms", "milli", "millis", "millisecond", "milliseconds"), 1),
):
    for _name in _names:
        _UNITS[_name] = _millis

_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$")

UNITS_HELP = "ms, s, min, h or d"


def parse_duration_millis(text: str) -> int | None:
    """Milliseconds for ``text``, or None when it is not a duration we accept."""
    match = _DURATION.match(text)
    if not match:
        return None
    unit = match.group(2) or "ms"
    if unit not in _UNITS:
        return None
    return int(match.group(1)) * _UNITS[unit]


def format_duration(millis: int) -> str:
    """The shortest exact spelling in units every StateFun version parses."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)):
        if millis and millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"
