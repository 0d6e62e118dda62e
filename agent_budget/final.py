"""The final answer when the budget runs out: what the model is told, and how long an
answer what is left can still pay for. Framework-free; integrations build the messages."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent_budget.stopping import StopReason
    from agent_budget.tracker import BudgetTracker

MIN_FINAL_TOKENS = 16
"""Below this, an answer is not worth paying for: the run answers without a model call."""


def final_note(reason: StopReason | str, budget_text: str) -> str:
    return (
        f"The budget is exhausted: {reason}. {budget_text}\n"
        "Do not call any tool. Using only the information above, give your best "
        "final answer now, and say briefly what you could not check."
    )


def unpaid_text(reason: StopReason | str, budget_text: str) -> str:
    return (
        f"I have to stop: {reason}, and what is left cannot pay for a final answer. {budget_text}"
    )


def final_output_tokens(
    tracker: BudgetTracker, model: str | None, prompt_tokens: int, declared: int | None
) -> int | None:
    """How many output tokens the final answer may use: the declared ``max_tokens`` (or
    the budget's default) if it fits, else what the money and token limits still pay for;
    None if that is under `MIN_FINAL_TOKENS` or does not fit the parents / ledger."""
    t = tracker
    want = declared or t.budget.default_max_output_tokens
    if t.fits(t.model_worst_case(model, prompt_tokens, want), final=True):
        return want
    price = t.prices.model_price(model)
    b, s = t.limits, t.spent
    caps: list[float] = [want]
    if b.usd is not None and price.output_per_token > 0:
        left = b.usd - s.usd - t.held.usd - price.input_per_token * prompt_tokens
        caps.append(math.floor(left / price.output_per_token))
    if b.tokens.output is not None:
        caps.append(b.tokens.output - s.output_tokens)
    if b.tokens.total is not None:
        caps.append(b.tokens.total - s.total_tokens - prompt_tokens)
    n = int(min(caps))
    if n < MIN_FINAL_TOKENS or not t.fits(t.model_worst_case(model, prompt_tokens, n), final=True):
        return None
    return n
