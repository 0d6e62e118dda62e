"""Units of a budget file: USD, counts, durations, ledger windows and locations, each parsed
strictly (other currencies, fractional calls, unknown units are errors). Plain pydantic."""

from __future__ import annotations

import math
import os
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

_MONEY_RE = re.compile(r"^\s*\$?\s*([-+]?[0-9_]*\.?[0-9_]+(?:[eE][-+]?\d+)?)\s*(usd|\$)?\s*$", re.I)
_COUNT_RE = re.compile(r"^\s*([-+]?[0-9_]*\.?[0-9_]+)\s*([kKmM]?)\s*$")
_SECONDS_RE = re.compile(r"^\s*([-+]?[0-9_]*\.?[0-9_]+)\s*(ms|s|sec|m|min|h|hr)?\s*$", re.I)
_SECONDS_UNIT = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}
_WINDOW_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$", re.I)
CALENDAR_WINDOWS = ("calendar-day", "calendar-week", "calendar-month")


def _money(value: Any) -> Any:
    """USD as an exact Decimal. Accepts 0.5, "0.50", "$0.50", "0.50 USD"; refuses other units."""
    if value is None or isinstance(value, Decimal):
        return _finite_nonneg(value) if isinstance(value, Decimal) else value
    if isinstance(value, bool):
        raise ValueError("expected an amount in USD, got a boolean")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a finite amount in USD, got {value}")
        return _finite_nonneg(Decimal(str(value)))
    if isinstance(value, str):
        m = _MONEY_RE.match(value)
        if not m:
            raise ValueError(
                f"{value!r} is not an amount in USD; write 0.5, '0.50' or '$0.50' "
                "(other currencies and units such as cents are not accepted)"
            )
        return _finite_nonneg(_decimal(m.group(1), value))
    raise ValueError(f"expected an amount in USD, got {type(value).__name__}")


def _decimal(digits: str, shown: str) -> Decimal:
    # The patterns let "_" alone through; Decimal("") raises InvalidOperation, which is not
    # a ValueError, so pydantic would not turn it into a validation error naming the field.
    try:
        return Decimal(digits.replace("_", ""))
    except InvalidOperation:
        raise ValueError(f"{shown!r} is not a number") from None


def _finite_nonneg(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"must be a finite amount, got {value}")
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


def _count(value: Any) -> Any:
    """A whole number of tokens or calls. Accepts 200000, "200_000", "200k", "1.5M"."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got a boolean")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"expected a whole number, got {value}")
        value = int(value)
    if isinstance(value, str):
        m = _COUNT_RE.match(value)
        if not m:
            raise ValueError(
                f"{value!r} is not a count; write 200000, '200_000' or '200k' "
                "(no currency or units)"
            )
        scaled = _decimal(m.group(1), value) * {"": 1, "k": 1000, "m": 10**6}[m.group(2).lower()]
        if scaled != scaled.to_integral():
            raise ValueError(f"{value!r} is not a whole number")
        value = int(scaled)
    if not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


def _seconds(value: Any) -> Any:
    """Wall-clock seconds. Accepts 90, 90.5, "90s", "5m", "1h", "500ms"."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a duration, got a boolean")
    if isinstance(value, str):
        m = _SECONDS_RE.match(value)
        if not m:
            raise ValueError(f"{value!r} is not a duration; write 90, '90s', '5m' or '1h'")
        value = float(m.group(1).replace("_", "")) * _SECONDS_UNIT[(m.group(2) or "s").lower()]
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected a finite number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return float(value)


def _window(value: Any) -> Any:
    """A ledger window: rolling ("24h", "1d", "7d", "30m") or calendar ("calendar-day",
    "calendar-week", "calendar-month", in UTC; "day" is short for "calendar-day")."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a window such as '1d', '24h' or 'calendar-day', got {value!r}")
    text = value.strip().lower()
    if text in {"day", "week", "month"}:
        text = f"calendar-{text}"
    if text in CALENDAR_WINDOWS:
        return text
    m = _WINDOW_RE.match(text)
    if not m or int(m.group(1)) == 0:
        raise ValueError(
            f"{value!r} is not a window; write a rolling one ('24h', '1d', '7d', '30m') or "
            "'calendar-day' / 'calendar-week' / 'calendar-month' (UTC)"
        )
    n, unit = int(m.group(1)), m.group(2).lower()
    if unit == "s" and n % 60:
        raise ValueError(
            f"{value!r}: the spend ledger keeps shared-limit totals per minute, so a rolling "
            f"window must be a whole number of minutes; write '{-(-n // 60)}m'"
        )
    return f"{n}{unit}"


def _ledger(value: Any) -> Any:
    """Where spend is recorded: a SQLite file path or a ``postgresql://`` URL."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a SQLite file path or a postgresql:// URL")
    value = value.strip()
    if "://" in value:
        scheme = value.split("://", 1)[0].lower()
        if scheme not in {"postgresql", "postgres", "sqlite"}:
            raise ValueError(
                f"unknown ledger URL scheme {scheme!r}; use a file path, sqlite:///path or "
                "postgresql://user@host:5432/dbname"
            )
    return value


Money = Annotated[Decimal, BeforeValidator(_money)]
Count = Annotated[int, BeforeValidator(_count)]
Seconds = Annotated[float, BeforeValidator(_seconds)]
Window = Annotated[str, BeforeValidator(_window)]
LedgerLocation = Annotated[str, BeforeValidator(_ledger)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
