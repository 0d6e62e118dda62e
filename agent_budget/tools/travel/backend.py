"""Where the travel tools get their records: a backend interface and the offline catalog.

`TravelBackend` is what every travel tool calls: ``search`` (candidates for a sub-task),
``refine`` (one refinement step over candidates) and ``select`` (the shortlist). Put a real
API behind any of them by subclassing `OfflineBackend` and overriding that method; the tools,
their prices and the planner do not change.

`OfflineBackend` answers from a catalog generated deterministically from a seed (cities,
transport, hotels, sights, restaurants, shops with attributes), so a record does or does not
match a preference, and the same seed gives the same trip on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Protocol

from agent_budget.tools.travel.domain import BY_NAME, MONTHS

Record = dict[str, Any]
SHORTLIST = 3

CITIES: tuple[tuple[str, str, str], ...] = (
    ("Kyoto", "historic", "mid-range"),
    ("Prague", "historic", "budget"),
    ("Florence", "historic", "luxury"),
    ("Porto", "historic", "budget"),
    ("Seville", "historic", "mid-range"),
    ("Dubrovnik", "beach", "luxury"),
    ("Nice", "beach", "luxury"),
    ("Split", "beach", "mid-range"),
    ("Valencia", "beach", "budget"),
    ("Innsbruck", "mountain", "mid-range"),
    ("Chamonix", "mountain", "luxury"),
    ("Zakopane", "mountain", "budget"),
    ("Berlin", "metropolitan", "mid-range"),
    ("Tokyo", "metropolitan", "luxury"),
    ("Lisbon", "metropolitan", "budget"),
    ("Vienna", "metropolitan", "mid-range"),
)
_TIERS = ("budget", "mid-range", "luxury")
_NAME_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "accommodation": (
        ("Casa", "Villa", "Hotel", "Residence", "Maison", "House"),
        ("Verde", "Aurora", "Central", "Belvedere", "Sora", "Mirador", "Linden", "Harbour"),
    ),
    "attraction": (
        ("Old", "Royal", "National", "Grand", "Hidden", "Upper"),
        (
            "Castle",
            "Museum",
            "Gardens",
            "Cathedral",
            "Market Hall",
            "Lookout",
            "Quarter",
            "Gallery",
        ),
    ),
    "dining": (
        ("Trattoria", "Bistro", "Taverna", "Kitchen", "Garden", "Cantina"),
        ("Olive", "Saffron", "Lantern", "Fig", "Basil", "Anchor", "Clover", "Ember"),
    ),
    "shopping": (
        ("Corner", "Artisan", "Old Town", "Riverside", "Station", "Little"),
        ("Books", "Market", "Atelier", "Crafts", "Boutique", "Bazaar", "Workshop", "Arcade"),
    ),
}
_STYLES = ("hotel", "guesthouse", "apartment")
_INTERESTS = {
    "attraction": ("landmarks", "museums", "nature", "tours"),
    "shopping": ("markets", "crafts", "fashion", "books"),
}
_DIETS = ("vegetarian", "vegan", "seafood")
_MODES = ("train", "flight", "bus")


def _months(rng: random.Random, n: int) -> list[str]:
    start = rng.randrange(12)
    return [MONTHS[(start + i) % 12] for i in range(n)]


@cache
def catalog(seed: int = 7) -> dict[str, list[Record]]:
    """The offline catalog: records per sub-task (``location`` holds the cities; the others
    carry a ``city``). Deterministic in ``seed``."""
    rng = random.Random(seed)
    out: dict[str, list[Record]] = {name: [] for name in BY_NAME}
    for name, category, tier in CITIES:
        out["location"].append(
            {
                "id": f"city-{name.lower()}",
                "name": name,
                "category": category,
                "tier": tier,
                "rating": round(rng.uniform(3.6, 4.9), 1),
                "best_months": _months(rng, rng.randint(5, 9)),
                "advisory": rng.random() < 0.08,
            }
        )
        for mode in _MODES:
            for k in range(2):
                out["transport"].append(
                    {
                        "id": f"tr-{name.lower()}-{mode}-{k}",
                        "name": f"{mode.title()} to {name} ({'early' if k == 0 else 'late'})",
                        "city": name,
                        "mode": mode,
                        "price": round(rng.uniform(30, 400) * (1.6 if mode == "flight" else 1)),
                        "hours": round(
                            rng.uniform(1, 4) if mode == "flight" else rng.uniform(3, 14), 1
                        ),
                        "months": _months(rng, rng.randint(8, 12)),
                        "sold_out": rng.random() < 0.1,
                        "rating": round(rng.uniform(3.2, 4.8), 1),
                    }
                )
        for sub in ("accommodation", "attraction", "dining", "shopping"):
            first, second = _NAME_PARTS[sub]
            names = rng.sample([f"{a} {b}" for a in first for b in second], 7)
            for k, label in enumerate(names):
                rec: Record = {
                    "id": f"{sub[:3]}-{name.lower()}-{k}",
                    "name": label,
                    "city": name,
                    "rating": round(rng.uniform(3.0, 4.9), 1),
                    "tier": rng.choice(_TIERS),
                    "months": _months(rng, rng.randint(7, 12)),
                }
                if sub == "accommodation":
                    rec["style"] = rng.choice(_STYLES)
                    rec["price"] = {"budget": 60, "mid-range": 120, "luxury": 320}[
                        rec["tier"]
                    ] + rng.randrange(-20, 40)
                elif sub == "dining":
                    rec["diets"] = sorted(d for d in _DIETS if rng.random() < 0.45)
                elif sub in _INTERESTS:
                    rec["kind"] = rng.choice(_INTERESTS[sub])
                    rec["minutes"] = rng.choice((45, 60, 90, 120, 180))
                out[sub].append(rec)
    return out


class TravelBackend(Protocol):
    """What the travel tools call. ``prefs`` maps a sub-task's dimensions to the user's values
    (``{"tier": "mid-range", "style": "hotel"}``); ``month`` is the trip's month."""

    def search(
        self, subtask: str, prefs: Mapping[str, str], month: str, city: str | None
    ) -> list[Record]: ...

    def refine(
        self, subtask: str, step: str, records: Sequence[Record], prefs: Mapping[str, str],
        month: str,
    ) -> list[Record]: ...  # fmt: skip

    def select(
        self, subtask: str, records: Sequence[Record], prefs: Mapping[str, str]
    ) -> list[Record]: ...


def _match(sub: str, rec: Record, prefs: Mapping[str, str]) -> int:
    """How many of the user's preferences a record meets (for ordering and selection)."""
    score = 0
    for dim, want in prefs.items():
        if want in ("any", "") or dim == "priority" or dim == "pace":
            continue
        if dim == "diet":
            score += want in rec.get("diets", ())
        elif dim in ("interest",):
            score += rec.get("kind") == want
        elif dim == "category":
            score += rec.get("category") == want
        else:
            score += rec.get(dim) == want
    return score


class OfflineBackend:
    """The deterministic catalog behind every travel tool. Filters are soft: a step that
    would leave nothing keeps what it was given (and says so), so a chain always ends in a
    shortlist; `select` puts the best matches first."""

    def __init__(self, seed: int = 7) -> None:
        self.records = catalog(seed)

    def search(
        self, subtask: str, prefs: Mapping[str, str], month: str, city: str | None
    ) -> list[Record]:
        pool = self.records[subtask]
        if subtask == "location":
            want = prefs.get("category")
            found = [r for r in pool if want in (None, "any") or r["category"] == want]
            return found or list(pool)
        return [r for r in pool if city is None or r["city"] == city]

    def refine(
        self, subtask: str, step: str, records: Sequence[Record], prefs: Mapping[str, str],
        month: str,
    ) -> list[Record]:  # fmt: skip
        recs = list(records)
        kept: list[Record]
        if step == "read_reviews":  # the optional refinement: recent reviews reorder a list
            return sorted(recs, key=lambda r: (-r.get("rating", 0), r["id"]))
        if step.startswith("rank_"):
            if step == "rank_priority" and prefs.get("priority") == "fastest":
                return sorted(recs, key=lambda r: (r.get("hours", 0), r["id"]))
            if step == "rank_priority":
                return sorted(recs, key=lambda r: (r.get("price", 0), r["id"]))
            return sorted(recs, key=lambda r: (-r.get("rating", 0), r["id"]))
        if step == "filter_season":
            kept = [r for r in recs if month in r.get("best_months", MONTHS)]
        elif step in ("filter_schedule", "filter_open", "check_availability"):
            kept = [r for r in recs if month in r.get("months", MONTHS)]
        elif step == "check_safety":
            kept = [r for r in recs if not r.get("advisory")]
        elif step == "check_seats":
            kept = [r for r in recs if not r.get("sold_out")]
        elif step == "fit_pace":
            kept = recs[: 3 if prefs.get("pace") == "relaxed" else 6]
        elif step in ("check_booking", "check_distance"):
            kept = [r for r in recs if r.get("rating", 0) >= 3.4]
        else:
            dim = step.removeprefix("filter_")
            kept = [r for r in recs if _match(subtask, r, {dim: prefs.get(dim, "any")}) == 1]
            if prefs.get(dim, "any") == "any":
                kept = recs
        return kept or recs

    def select(
        self, subtask: str, records: Sequence[Record], prefs: Mapping[str, str]
    ) -> list[Record]:
        # Stable: the refinement order breaks ties, so a ranked list stays ranked.
        order = sorted(enumerate(records), key=lambda ir: (-_match(subtask, ir[1], prefs), ir[0]))
        return [r for _, r in order[:SHORTLIST]]


def describe(subtask: str, rec: Record) -> str:
    """One line a person (or a small model) can read."""
    if subtask == "location":
        return f"{rec['name']} ({rec['category']}, {rec['tier']}, rated {rec['rating']})"
    if subtask == "transport":
        return f"{rec['name']}: ${rec['price']}, {rec['hours']} h"
    if subtask == "accommodation":
        return (
            f"{rec['name']} ({rec['style']}, {rec['tier']}, ${rec['price']}/night, {rec['rating']})"
        )
    if subtask == "dining":
        diets = ", ".join(rec["diets"]) or "no special diets"
        return f"{rec['name']} ({rec['tier']}; {diets}; {rec['rating']})"
    return f"{rec['name']} ({rec.get('kind', '')}, rated {rec['rating']})"
