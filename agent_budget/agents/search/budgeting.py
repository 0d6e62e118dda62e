"""The research budget in BATS terms, and what a plan may spend of it.

- `research_budget`: a `Budget` whose ``web_search`` calls are the *Query budget* and whose
  ``fetch_page`` calls are the *URL budget* (those are the labels the budget message shows),
  plus USD, with a price per call of each tool.
- `allowance`: how many searches and page reads the next plan may spend, from what is left
  and the budget regime (breadth while the budget is HIGH, depth as it runs LOW, no tools
  at CRITICAL), always keeping some queries back for the verifier's follow-ups.

Tool prices (USD per call), chosen to look like common APIs (documented in the README):
$0.005 a search (Brave / Bing-style web search APIs list about $5 per 1,000 queries) and
$0.001 a page read (page-extraction APIs list about $1 per 1,000 pages).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from agent_budget.budget import Budget

SEARCH_TOOL: Final = "web_search"
FETCH_TOOL: Final = "fetch_page"
TOOL_LABELS: Final = {SEARCH_TOOL: "Query", FETCH_TOOL: "URL"}
TOOL_PRICES: Final = {SEARCH_TOOL: Decimal("0.005"), FETCH_TOOL: Decimal("0.001")}

Mode = Literal["breadth", "depth", "answer"]
"""What a plan does with what it may spend:

- ``breadth``: several different queries at once, then read the best pages;
- ``depth``: one focused query, then read one page closely;
- ``answer``: nothing left to spend (or the budget is CRITICAL): answer from what is known.
"""

# (queries, urls) a plan may spend at most, per regime; a plan also never takes more than
# half of what is left (rounded up), so a CONTINUE or PIVOT still has something to spend.
_CAPS: Final[dict[str, tuple[int, int]]] = {
    "HIGH": (3, 2),
    "MEDIUM": (2, 1),
    "LOW": (1, 1),
    "CRITICAL": (0, 0),
}
_UNLIMITED: Final = 1_000_000


def research_budget(
    queries: int | None,
    urls: int | None,
    usd: float | Decimal | str | None = None,
    *,
    steps: int | None = None,
    prices: Mapping[str, Decimal | float | str] | None = None,
    show: bool = True,
    **fields: Any,
) -> Budget:
    """A Budget with a Query budget of ``queries`` searches, a URL budget of ``urls`` page
    reads, ``usd`` in all (None: unlimited), and ``steps`` model calls at most (the fixed
    step limit of the ReAct baseline). ``show=False`` keeps the limits but hides the budget
    message from the model (the plain ReAct baseline). Other Budget ``fields`` pass through."""
    tool_calls = {
        name: n for name, n in ((SEARCH_TOOL, queries), (FETCH_TOOL, urls)) if n is not None
    }
    data: dict[str, Any] = {
        "usd": usd,
        "tool_calls": tool_calls,
        "model_calls": steps,
        "prices": dict(prices if prices is not None else TOOL_PRICES),
        "tool_labels": dict(TOOL_LABELS),
        **fields,
    }
    if not show:
        data["message_template"] = ""
    return Budget.from_dict(data, source="research budget")


@dataclass(frozen=True)
class Allowance:
    """What the next plan may spend, and why."""

    regime: str
    queries_left: int | None
    """Searches left in the Query budget (None: no Query budget)."""
    urls_left: int | None
    queries: int
    """Searches this plan may make now."""
    urls: int
    """Pages this plan may read after them."""
    mode: Mode

    def describe(self) -> str:
        left = ", ".join(
            f"{label} budget left: {'unlimited' if n is None else n}"
            for label, n in (("Query", self.queries_left), ("URL", self.urls_left))
        )
        if self.mode == "answer":
            return f"Regime {self.regime} ({left}): no searches now; answer from what you know."
        return (
            f"Regime {self.regime} ({left}): {self.mode} - up to {self.queries} "
            f"search{'es' if self.queries != 1 else ''} now, then read up to {self.urls} "
            f"page{'s' if self.urls != 1 else ''}."
        )


def allowance(remaining: Mapping[str, Any], regime: str) -> Allowance:
    """The next plan's allowance from a tracker's ``remaining()`` and ``regime()``."""
    q_left = _left(remaining, SEARCH_TOOL)
    u_left = _left(remaining, FETCH_TOOL)
    cap_q, cap_u = _CAPS.get(regime, _CAPS["LOW"])
    q = min(cap_q, _half_up(q_left))
    u = min(cap_u, _half_up(u_left))
    usd = remaining.get("usd")
    if usd is not None and Decimal(str(usd)) < TOOL_PRICES[SEARCH_TOOL]:
        q = 0  # not even one search is paid for: searching would only be refused
    if usd is not None and Decimal(str(usd)) < TOOL_PRICES[FETCH_TOOL]:
        u = 0
    mode: Mode = "breadth" if q > 1 else ("depth" if q + u > 0 else "answer")
    return Allowance(regime, q_left, u_left, q, u, mode)


def _left(remaining: Mapping[str, Any], tool: str) -> int | None:
    value = remaining.get(f"tool_calls.{tool}")
    return None if value is None else max(int(value), 0)


def _half_up(n: int | None) -> int:
    return _UNLIMITED if n is None else math.ceil(n / 2)
