"""The budget message the model sees (BATS format), and escaping of look-alike tags in
tool output so a web page cannot fake it.

It shows this budget's own limits, and then any limit outside it that is tighter: a
parent budget's (a sub-agent spends from it too) or a shared one kept in the ledger (per
user / tenant / everyone), labelled with whose it is. The one that will stop the run is
then always in sight.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from agent_budget.limits import Limit
from agent_budget.spend import ZERO, usd_text

if TYPE_CHECKING:
    from agent_budget.tracker import BudgetTracker


def budget_message(tracker: BudgetTracker) -> str:
    """The budget in the BATS format, e.g. ``<budget>Query Budget Used: 3, ...</budget>``."""
    b, s = tracker.limits, tracker.spent_now()
    elapsed = tracker.elapsed() if b.seconds is not None else 0.0
    items = []
    for rule in tracker.table.shown:  # written on every step: straight from the rules
        used = rule.used(s)
        n_left = max(rule.allowed - used, 0)
        items.append(f"{rule.label} Budget Used: {used}, {rule.label} Budget Remaining: {n_left}")
    usd_used = usd_text(s.usd)
    usd_left = "unlimited" if b.usd is None else usd_text(max(b.usd - s.usd, ZERO))
    if b.usd is not None:
        items.append(f"USD Used: {usd_used}, USD Remaining: {usd_left}")
    else:
        items.append(f"USD Used: {usd_used}")
    if s.unpriced:
        # Never let calls with no known price pass for free ones.
        names = ", ".join(sorted(s.unpriced))
        items.append(f"Unpriced Calls: {sum(s.unpriced.values())} ({names})")
    if s.local_calls:
        items.append(f"Local Model Calls: {s.local_calls} (not counted as model calls)")
    if b.seconds is not None:
        left = max(b.seconds - elapsed, 0.0)
        items.append(f"Seconds Used: {elapsed:.0f}, Seconds Remaining: {left:.0f}")
    if tracker.shared:
        rows = tracker.table.rows(s, None, elapsed)
        items += [_outside(r) for r in tighter_outside(tracker, rows)]
    # The regime is an exact fraction of every limit: worked out only where it is shown.
    regime = ""
    if b.downgrade is not None or b.warn_at or "{regime}" in (b.message_template or ""):
        regime = tracker.regime().value
    if b.downgrade is not None or b.warn_at:
        items.append(f"Budget Regime: {regime}")
    text = ", ".join(items)
    if b.message_template is None:
        return f"<budget>{text}</budget>"
    return b.message_template.format(
        items=text, regime=regime, usd_used=usd_used, usd_remaining=usd_left
    )


def tighter_outside(tracker: BudgetTracker, own: list[Limit]) -> list[Limit]:
    """Per limit name, the tightest limit outside this budget (parents', the ledger's),
    when it leaves less than this budget's own (or this budget has none of that name)."""
    mine = {r.name: r.remaining for r in own}
    best: dict[str, Limit] = {}
    for shared in tracker.shared:
        rows = getattr(shared, "limit_rows", None)
        if rows is None:
            continue
        for row in rows():
            held = best.get(row.name)
            if held is None or row.remaining < held.remaining:
                best[row.name] = row
    return [r for name, r in best.items() if name not in mine or r.remaining < mine[name]]


def _outside(r: Limit) -> str:
    left = usd_text(r.remaining) if r.name == "usd" else str(r.remaining)  # type: ignore[arg-type]
    return f"{r.label} Remaining ({r.scope}): {left}"


_BUDGET_TAG = re.compile(r"<\s*(/?)\s*budget\b([^>]*)>", re.IGNORECASE)


def escape_budget_tags(text: str) -> str:
    """Neutralise ``<budget>`` tags in tool output, so a web page cannot fake the budget."""
    return _BUDGET_TAG.sub(lambda m: f"&lt;{m.group(1)}budget{m.group(2)}&gt;", text)
