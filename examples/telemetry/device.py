"""The body of the StateFun function ``telemetry/device`` (one instance per device id).

statefun-codegen created this file once; it is handwritten from here on and the
generator never touches it again.

Per device it keeps the device's configuration (a JSON value from the ``device-configs``
topic) and the window of readings it is filling (running statistics, so the state stays
small whatever the window size). Every reading

* is checked against the configured thresholds: one outside them is an ``Alert`` for the
  device's ``alerting`` function, which decides whether it is written out;
* joins the window; a full window (``window_size`` readings) becomes a ``Rollup`` on the
  ``rollups`` topic and a new window starts;
* re-arms the silence timer: the pending ``SilenceCheck`` is cancelled and a new one sent to
  this device, delayed by the silence timeout. Only a device that stays quiet for that long
  gets its check delivered, and raises a ``SILENT`` alert.
"""

from __future__ import annotations

from datetime import timedelta

from .generated import Alert, DeviceContext, Reading, Rollup, SilenceCheck, Window, telemetry_pb2
from .generated.types import DeviceConfig

DEFAULT_WINDOW_SIZE = 10
"""Readings per rollup for a device whose configuration does not say."""


async def device(
    ctx: DeviceContext,
    message: Reading | DeviceConfig | SilenceCheck,
) -> None:
    if isinstance(message, Reading):
        on_reading(ctx, message)
    elif isinstance(message, SilenceCheck):
        on_silence(ctx, message)
    else:
        # A new configuration applies from the next reading on; a window being filled keeps
        # its readings and closes once it holds the new window_size.
        ctx.storage.config = message


def on_reading(ctx: DeviceContext, reading: Reading) -> None:
    device_id = ctx.address.id
    config = ctx.storage.config
    if config is not None:
        alert = threshold_alert(device_id, config, reading)
        if alert is not None:
            ctx.send_alerting(device_id, alert)

    window = add_to_window(ctx.storage.window or Window(), reading)
    size = config.get("window_size", DEFAULT_WINDOW_SIZE) if config else DEFAULT_WINDOW_SIZE
    if window.count >= size:
        ctx.send_events_rollups(rollup(device_id, window))
        del ctx.storage.window
    else:
        ctx.storage.window = window

    # Re-arm: at most one silence check is pending per device, the one of its latest reading.
    ctx.cancel_send_after_device()  # the manifest's token, written there only
    check = SilenceCheck(last_reading=reading)
    timeout_ms = config.get("silence_timeout_ms") if config else None
    if timeout_ms is None:
        ctx.send_after_device(device_id, check)  # the manifest's default delay
    else:
        ctx.send_after_device(device_id, check, delay=timedelta(milliseconds=timeout_ms))


def on_silence(ctx: DeviceContext, check: SilenceCheck) -> None:
    # Any later reading would have cancelled this check, so the device has been quiet for
    # its whole silence timeout.
    config = ctx.storage.config
    last = check.last_reading
    alert = Alert(
        device_id=ctx.address.id,
        device_name=config["name"] if config else "",
        kind=telemetry_pb2.SILENT,
        value=last.value,
        timestamp_ms=last.timestamp_ms,
    )
    ctx.send_alerting(ctx.address.id, alert)


def threshold_alert(device_id: str, config: DeviceConfig, reading: Reading) -> Alert | None:
    """The alert ``reading`` raises under ``config``'s thresholds, if any."""
    thresholds = config["thresholds"]
    if "max" in thresholds and reading.value > thresholds["max"]:
        kind, threshold = telemetry_pb2.ABOVE_MAX, thresholds["max"]
    elif "min" in thresholds and reading.value < thresholds["min"]:
        kind, threshold = telemetry_pb2.BELOW_MIN, thresholds["min"]
    else:
        return None
    return Alert(
        device_id=device_id,
        device_name=config["name"],
        kind=kind,
        value=reading.value,
        threshold=threshold,
        timestamp_ms=reading.timestamp_ms,
    )


def add_to_window(window: Window, reading: Reading) -> Window:
    if window.count == 0:
        window.min = window.max = reading.value
        window.start_ms = reading.timestamp_ms
    else:
        window.min = min(window.min, reading.value)
        window.max = max(window.max, reading.value)
    window.count += 1
    window.sum += reading.value
    window.end_ms = reading.timestamp_ms
    return window


def rollup(device_id: str, window: Window) -> Rollup:
    return Rollup(
        device_id=device_id,
        window_start_ms=window.start_ms,
        window_end_ms=window.end_ms,
        count=window.count,
        min=window.min,
        max=window.max,
        mean=window.sum / window.count,
    )
