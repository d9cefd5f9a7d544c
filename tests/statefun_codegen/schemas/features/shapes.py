"""The user's own TypedDict for the Reminder JSON type (typeddict: .shapes:ReminderDict)."""

from __future__ import annotations

from typing import TypedDict


class ReminderDict(TypedDict):
    customer: str
    sent: int
