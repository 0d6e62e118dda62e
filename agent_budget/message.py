"""The budget message the model sees (BATS format), and escaping of look-alike tags in
tool output so a web page cannot fake it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from agent_budget.spend import ZERO, usd_text

if TYPE_CHECKING:
    from agent_budget.tracker import BudgetTracker


def budget_message(tracker: BudgetTracker) -> str:
    """The budget in the BATS format, e.g. ``<budget>Query Budget Used: 3, ...</budget>``."""
    b, s = tracker.limits, tracker.spent_now()
    items: list[str] = []
    for tool, per_tool in b.tool_calls.items():
        label = b.tool_labels.get(tool, tool)
        used = s.tool_calls.get(tool, 0)
        items.append(
            f"{label} Budget Used: {used}, {label} Budget Remaining: {max(per_tool - used, 0)}"
        )
    for label, limit, used in (
        ("Tool Call", b.total_tool_calls, s.total_tool_calls),
        ("Model Call", b.model_calls, s.model_calls),
        ("Input Token", b.tokens.input, s.input_tokens),
        ("Output Token", b.tokens.output, s.output_tokens),
        ("Token", b.tokens.total, s.total_tokens),
    ):
        if limit is not None:
            items.append(
                f"{label} Budget Used: {used}, {label} Budget Remaining: {max(limit - used, 0)}"
            )
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
    if b.seconds is not None:
        left = max(b.seconds - tracker.elapsed(), 0.0)
        items.append(f"Seconds Used: {tracker.elapsed():.0f}, Seconds Remaining: {left:.0f}")
    if b.downgrade is not None or b.warn_at:
        items.append(f"Budget Regime: {tracker.regime().value}")
    text = ", ".join(items)
    template = b.message_template or "<budget>{items}</budget>"
    return template.format(
        items=text, regime=tracker.regime().value, usd_used=usd_used, usd_remaining=usd_left
    )


_BUDGET_TAG = re.compile(r"<\s*(/?)\s*budget\b([^>]*)>", re.IGNORECASE)


def escape_budget_tags(text: str) -> str:
    """Neutralise ``<budget>`` tags in tool output, so a web page cannot fake the budget."""
    return _BUDGET_TAG.sub(lambda m: f"&lt;{m.group(1)}budget{m.group(2)}&gt;", text)
