"""Duration strings as Flink's ``TimeUtils.parseDuration`` reads them: ``<long>[ ]<unit>``."""

from __future__ import annotations

_UNIT_MILLIS: dict[str, float] = {}


def _register(millis: float, *labels: str) -> None:
    for label in labels:
        _UNIT_MILLIS[label] = millis


_register(86_400_000, "d", "day", "days")
_register(3_600_000, "h", "hour", "hours")
# "m" is what the StateFun docs use ("2m"); newer Flink TimeUtils accept it as minutes.
_register(60_000, "min", "m", "minute", "minutes")
_register(1_000, "s", "sec", "secs", "second", "seconds")
_register(1, "ms", "milli", "millis", "millisecond", "milliseconds")
_register(0.001, "µs", "micro", "micros", "microsecond", "microseconds")
_register(0.000001, "ns", "nano", "nanos", "nanosecond", "nanoseconds")

KNOWN_UNITS = ", ".join(sorted(_UNIT_MILLIS))


class DurationError(ValueError):
    """A duration that Flink's parser would reject; the message says why."""


def parse_duration_ms(raw: object) -> float:
    """Milliseconds of a module.yaml duration; a bare number means milliseconds, as in Flink."""
    if isinstance(raw, bool) or raw is None:
        raise DurationError(f"expected a duration such as '10s' or '2min', got {raw!r}")
    if isinstance(raw, int):
        if raw < 0:
            raise DurationError(f"a duration can not be negative, got {raw}")
        return float(raw)
    if not isinstance(raw, str):
        raise DurationError(f"expected a duration such as '10s' or '2min', got {raw!r}")
    text = raw.strip()
    digits_end = 0
    while digits_end < len(text) and text[digits_end].isdigit():
        digits_end += 1
    if digits_end == 0:
        raise DurationError(f"{raw!r} does not start with a number (e.g. '10s', '2min', '500ms')")
    amount = int(text[:digits_end])
    if amount >= 2**63:
        raise DurationError(f"{raw!r} does not fit in a long")
    unit = text[digits_end:].strip().lower()
    if not unit:
        return float(amount)
    if unit not in _UNIT_MILLIS:
        raise DurationError(
            f"{raw!r} has an unknown time unit {unit!r}; known units: {KNOWN_UNITS}"
        )
    return amount * _UNIT_MILLIS[unit]
