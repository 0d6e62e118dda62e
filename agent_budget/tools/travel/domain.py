"""The travel domain: six sub-tasks, their preference dimensions and the typed chain of each.

Written from the ideas of the CostBench paper (a trip planned through sub-tasks, each a chain
of typed atomic tools: decide a preference -> search candidates -> refinement steps ->
select; composite tools cover a contiguous part of a chain). Names, chains and data here are
this project's own.

Types are CamelCase names of the planning format. A sub-task ``S`` (prefix ``P``) has the
start types ``P<Dim>`` (one per preference dimension, the user's values) and the chain

    decide_P_preference(P<Dim>...)              -> PPreference
    search_P(PPreference, TimeInfo[, TravelLocation]) -> PCandidates
    <refinement k>(previous)                     -> PRefined<k>     (depth 0..4)
    select_P(last, PPreference)                  -> <final type>

and the trip's goal, ``TripPlan``, comes from ``assemble_trip`` over the final types.
"""

from __future__ import annotations

from dataclasses import dataclass

TIME_INFO = "TimeInfo"
GOAL = "TripPlan"
ASSEMBLE = "assemble_trip"
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class SubTask:
    """One part of a trip: its type prefix, preference dimensions and chain vocabulary."""

    name: str
    prefix: str
    final: str
    dims: dict[str, tuple[str, ...]]
    """Preference dimension -> allowed values (the first is the default)."""
    refinements: tuple[tuple[str, str], ...]
    """(tool verb, what it does) of each possible refinement step, in chain order."""
    needs_location: bool = True

    def dim_type(self, dim: str) -> str:
        return f"{self.prefix}{dim.title().replace('_', '')}"

    @property
    def start_types(self) -> tuple[str, ...]:
        return tuple(self.dim_type(d) for d in self.dims)

    @property
    def preference(self) -> str:
        return f"{self.prefix}Preference"

    @property
    def candidates(self) -> str:
        return f"{self.prefix}Candidates"

    def refined(self, k: int) -> str:
        return f"{self.prefix}Refined{k}"

    def chain_types(self, depth: int) -> list[str]:
        """The types the atomic chain produces, in order (the final type last)."""
        return [
            self.preference,
            self.candidates,
            *(self.refined(k) for k in range(1, depth + 1)),
            self.final,
        ]


SUBTASKS: tuple[SubTask, ...] = (
    SubTask(
        "location",
        "Location",
        "TravelLocation",
        {
            "category": ("historic", "beach", "mountain", "metropolitan"),
            "tier": ("mid-range", "budget", "luxury"),
        },
        (
            ("filter_season", "keep places whose best months include the trip's month"),
            ("filter_tier", "keep places of the wanted price tier"),
            ("rank_rating", "order by visitor rating"),
            ("check_safety", "drop places with a travel advisory"),
        ),
        needs_location=False,
    ),
    SubTask(
        "transport",
        "Transport",
        "TransportPlan",
        {"mode": ("any", "train", "flight", "bus"), "priority": ("cheapest", "fastest")},
        (
            ("filter_mode", "keep the wanted mode of travel"),
            ("filter_schedule", "keep departures in the trip's month"),
            ("rank_priority", "order by price or by duration"),
            ("check_seats", "drop sold-out departures"),
        ),
    ),
    SubTask(
        "accommodation",
        "Accommodation",
        "Accommodation",
        {"tier": ("mid-range", "budget", "luxury"), "style": ("hotel", "guesthouse", "apartment")},
        (
            ("filter_tier", "keep the wanted price tier"),
            ("filter_style", "keep the wanted kind of place"),
            ("rank_rating", "order by guest rating"),
            ("check_availability", "drop places booked out in the trip's month"),
        ),
    ),
    SubTask(
        "attraction",
        "Attraction",
        "AttractionPlan",
        {"interest": ("landmarks", "museums", "nature", "tours"), "pace": ("relaxed", "packed")},
        (
            ("filter_interest", "keep sights matching the interest"),
            ("filter_open", "keep sights open in the trip's month"),
            ("rank_rating", "order by visitor rating"),
            ("fit_pace", "keep as many sights as the pace allows"),
        ),
    ),
    SubTask(
        "dining",
        "Dining",
        "DiningPlan",
        {
            "diet": ("any", "vegetarian", "vegan", "seafood"),
            "tier": ("mid-range", "budget", "luxury"),
        },
        (
            ("filter_diet", "keep restaurants serving the diet"),
            ("filter_tier", "keep the wanted price tier"),
            ("rank_rating", "order by diner rating"),
            ("check_booking", "drop restaurants with no table"),
        ),
    ),
    SubTask(
        "shopping",
        "Shopping",
        "ShoppingPlan",
        {"interest": ("markets", "crafts", "fashion", "books")},
        (
            ("filter_interest", "keep shops matching the interest"),
            ("rank_rating", "order by shopper rating"),
            ("filter_open", "keep shops open on the trip's days"),
            ("check_distance", "keep shops near the other plans"),
        ),
    ),
)

BY_NAME: dict[str, SubTask] = {s.name: s for s in SUBTASKS}
REVIEW = "read_reviews"
"""The optional refinement every sub-task but location has: re-rank the final shortlist by
recent reviews. Not needed for the goal (it takes and gives the final type), so the planner
never picks it; the agent pays for it when the budget regime allows (see `agent`)."""
MAX_DEPTH = 4
FINAL_TYPES: dict[str, str] = {s.final: s.name for s in SUBTASKS}


def subtask_of_type(type_name: str) -> SubTask | None:
    """The sub-task a type belongs to (by prefix or final name), None for shared types."""
    if type_name in FINAL_TYPES:
        return BY_NAME[FINAL_TYPES[type_name]]
    for sub in SUBTASKS:
        if type_name.startswith(sub.prefix) and type_name != sub.final:
            return sub
    return None
