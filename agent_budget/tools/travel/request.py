"""From a user's words to trip preferences: what the request says outright, and the schema
the model fills (grammar-constrained JSON) for what it does not.

A 135M on-device model reading a request is a coin toss, so values the request names in so
many words ("vegetarian", "in May", "mid-range hotel") are read here and win; the model
fills only the dimensions the request leaves open. A larger model (``--model``) gets the
same schema and the same rule.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from agent_budget.tools.travel.domain import BY_NAME, MONTHS, SUBTASKS

OUT_OF_SCOPE = {
    "car rental": "renting a car",
    "rent a car": "renting a car",
    "visa": "visas",
    "insurance": "travel insurance",
    "cruise": "cruises",
    "moon": "trips off this planet",
    "mars": "trips off this planet",
    "space": "trips off this planet",
    "yacht": "yacht charters",
}
_SYNONYMS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("location", "category"): {
        "historic": ("historic", "history", "old town", "medieval"),
        "beach": ("beach", "seaside", "coast"),
        "mountain": ("mountain", "alps", "hiking", "ski"),
        "metropolitan": ("metropolitan", "big city", "metropolis"),
    },
    ("location", "tier"): {
        "budget": ("budget prices", "cheap city", "budget city"),
        "luxury": ("luxury prices", "luxury city", "upscale city"),
        "mid-range": ("mid-range prices",),
    },
    ("transport", "mode"): {
        "train": ("train", "rail"),
        "flight": ("flight", "fly", "plane"),
        "bus": ("bus", "coach"),
    },
    ("transport", "priority"): {"fastest": ("fastest", "quickest"), "cheapest": ("cheapest",)},
    ("accommodation", "tier"): {
        tier: tuple(f"{tier} {style}" for style in ("hotel", "guesthouse", "apartment", "stay"))
        for tier in ("budget", "mid-range", "luxury")
    },
    ("accommodation", "style"): {
        "hotel": ("hotel",),
        "guesthouse": ("guesthouse", "guest house", "b&b"),
        "apartment": ("apartment", "flat"),
    },
    ("attraction", "interest"): {
        "museums": ("museum",),
        "nature": ("nature", "parks", "gardens"),
        "landmarks": ("landmark", "sights"),
        "tours": ("tour",),
    },
    ("attraction", "pace"): {"relaxed": ("relaxed", "slow"), "packed": ("packed", "busy")},
    ("dining", "diet"): {
        "vegetarian": ("vegetarian", "veggie"),
        "vegan": ("vegan",),
        "seafood": ("seafood", "fish"),
    },
    ("dining", "tier"): {
        "budget": ("budget restaurants", "cheap eats", "cheap food"),
        "mid-range": ("mid-range restaurants",),
        "luxury": ("luxury restaurants", "fine dining"),
    },
    ("shopping", "interest"): {
        "markets": ("market",),
        "crafts": ("craft",),
        "fashion": ("fashion", "clothes"),
        "books": ("book",),
    },
}


class UnsatisfiableRequest(ValueError):
    """The request asks for something the travel tools cannot do, or nothing at all."""


def _contains(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![a-z]){re.escape(phrase)}", text) is not None


def read_request(text: str) -> dict[str, Any]:
    """What the request states outright: ``{"prefs": {sub: {dim: value}}, "month", "days",
    "budget"}`` (only what it names). Raises `UnsatisfiableRequest` for an empty request or
    one asking for something no travel tool does."""
    low = " ".join(text.lower().split())
    if not low:
        raise UnsatisfiableRequest(
            "the request is empty: say where and when, e.g. '3 days in a historic city in May, "
            "mid-range hotel, vegetarian food, $40 of tool spend'"
        )
    for phrase, what in OUT_OF_SCOPE.items():
        if _contains(low, phrase):
            raise UnsatisfiableRequest(
                f"the request asks for {what} ({phrase!r}); the travel tools cover "
                f"{', '.join(s.name for s in SUBTASKS)} and nothing else"
            )
    prefs: dict[str, dict[str, str]] = {}
    for (sub, dim), values in _SYNONYMS.items():
        for value, phrases in values.items():
            if any(_contains(low, p) for p in phrases):
                prefs.setdefault(sub, {}).setdefault(dim, value)
    out: dict[str, Any] = {"prefs": prefs}
    for month in MONTHS:
        if _contains(low, month.lower()):
            out["month"] = month
            break
    days = re.search(r"(\d+)\s*(?:days?|nights?)", low)
    if days:
        n = int(days.group(1))
        if not 1 <= n <= 14:
            raise UnsatisfiableRequest(f"the tools plan trips of 1 to 14 days, not {n}")
        out["days"] = n
    money = re.search(r"\$\s*(\d+(?:\.\d+)?)", low)
    if money:
        out["budget"] = Decimal(money.group(1))
    return out


def preference_schema(
    subtasks: tuple[str, ...] | None = None, stated: dict[str, Any] | None = None
) -> type[BaseModel] | None:
    """The JSON the model fills: one enum per preference dimension of ``subtasks`` (default:
    all), plus month and days, leaving out what ``stated`` (`read_request`) already holds,
    since it would win anyway; None when nothing is left open. Every field asked for is
    output tokens the budget pays for (and, on a small local model, grammar-constrained
    decoding time)."""
    said = stated or {"prefs": {}}
    fields: dict[str, Any] = {}
    if "month" not in said:
        fields["month"] = (Literal[MONTHS], Field(description="month of the trip"))
    if "days" not in said:
        fields["days"] = (int, Field(ge=1, le=14, description="length of the trip in days"))
    for sub in SUBTASKS:
        if subtasks is not None and sub.name not in subtasks:
            continue
        for dim, allowed in sub.dims.items():
            if dim in said["prefs"].get(sub.name, {}):
                continue
            choice = Literal[allowed]  # type: ignore[valid-type]  # enum values from data
            fields[f"{sub.name}_{dim}"] = (choice, Field(description=f"{sub.name} {dim}"))
    return create_model("TripPreferences", **fields) if fields else None


def merge(
    stated: dict[str, Any], proposed: BaseModel | None, subtasks: tuple[str, ...]
) -> dict[str, Any]:
    """Preferences for ``subtasks``: what the request states, else the model's proposal,
    else each dimension's default. Also month and days."""
    data = proposed.model_dump() if proposed is not None else {}
    prefs: dict[str, dict[str, str]] = {}
    source: dict[str, str] = {}
    for name in subtasks:
        sub = BY_NAME[name]
        prefs[name] = {}
        for dim, allowed in sub.dims.items():
            said = stated["prefs"].get(name, {}).get(dim)
            guess = data.get(f"{name}_{dim}")
            if said is not None:
                prefs[name][dim], source[f"{name}.{dim}"] = said, "request"
            elif guess in allowed:
                prefs[name][dim], source[f"{name}.{dim}"] = guess, "model"
            else:
                prefs[name][dim], source[f"{name}.{dim}"] = allowed[0], "default"
    month = stated.get("month") or data.get("month") or "May"
    days = stated.get("days") or data.get("days") or 3
    return {"prefs": prefs, "month": month, "days": int(days), "source": source}
