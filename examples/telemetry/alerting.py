"""The body of the StateFun function ``telemetry/alerting`` (one instance per device id).

statefun-codegen created this file once; it is handwritten from here on and the
generator never touches it again.

A sensor stuck above its threshold would raise an alert with every reading. This function
writes the first alert of each kind to the ``alerts`` topic, then holds back alerts of that
kind for ``REPEAT_AFTER_MS`` of the device's own time (the readings' timestamps, so a replay
decides the same), and the next alert it writes says how many it held back.
"""

from __future__ import annotations

from .generated import Alert, AlertHistory, AlertingContext, telemetry_pb2

REPEAT_AFTER_MS = 60_000
"""How long after an alert the next one of its kind is held back."""


async def alerting(ctx: AlertingContext, alert: Alert) -> None:
    history = ctx.storage.history or AlertHistory()
    kind = telemetry_pb2.AlertKind.Name(alert.kind)
    last = history.last_written_ms.get(kind)
    if last is not None and alert.timestamp_ms - last < REPEAT_AFTER_MS:
        history.suppressed[kind] += 1
    else:
        written = Alert()
        written.CopyFrom(alert)
        written.suppressed = history.suppressed.pop(kind, 0)
        ctx.send_events_alerts(written)
        history.last_written_ms[kind] = alert.timestamp_ms
    ctx.storage.history = history
