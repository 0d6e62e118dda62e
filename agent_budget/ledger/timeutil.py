"""Ledger time: integer microseconds since the Unix epoch, UTC. Windows and ``--since``."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta

US = 1_000_000
_UNIT_US = {"s": US, "m": 60 * US, "h": 3600 * US, "d": 86400 * US, "w": 7 * 86400 * US}
_RELATIVE = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$", re.I)


def now_us() -> int:
    return time.time_ns() // 1000


def to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


def from_us(ts: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(ts))


def iso(ts: int | None) -> str | None:
    return None if ts is None else from_us(ts).isoformat().replace("+00:00", "Z")


def window_start(window: str | None, now: int) -> int:
    """The first microsecond a window covers at ``now`` (a `Budget` window, validated)."""
    if window is None:
        return 0
    if window.startswith("calendar-"):
        day = from_us(now).date()
        if window == "calendar-week":
            day -= timedelta(days=day.weekday())  # Monday
        elif window == "calendar-month":
            day = day.replace(day=1)
        return to_us(datetime(day.year, day.month, day.day, tzinfo=UTC))
    m = _RELATIVE.match(window)
    if not m:
        raise ValueError(f"{window!r} is not a ledger window")
    return now - int(m.group(1)) * _UNIT_US[m.group(2).lower()]


def parse_moment(value: str | datetime | date | int | float | None, now: int, *, what: str) -> int:
    """A point in time from what a person types: ``"7d"`` / ``"12h"`` (that long ago),
    ``"2025-01-31"`` or an ISO timestamp (UTC unless it says otherwise), a datetime or
    date, or epoch seconds."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return to_us(value)
    if isinstance(value, date):
        return to_us(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * US)
    if isinstance(value, str):
        m = _RELATIVE.match(value)
        if m:
            return now - int(m.group(1)) * _UNIT_US[m.group(2).lower()]
        text = value.strip()
        if text.lower() in {"today", "now"}:
            return window_start("calendar-day", now) if text.lower() == "today" else now
        try:
            return to_us(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(
        f"{what}: {value!r} is not a time; write a duration ago ('7d', '12h', '30m'), "
        "a date ('2025-01-31') or an ISO timestamp ('2025-01-31T12:00:00Z')"
    )
