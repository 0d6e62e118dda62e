"""The verifier: is the candidate answer good enough, given the evidence and what is left?

One structured model call returns a `Verdict`: ``SUCCESS`` (answer), ``CONTINUE`` (dig
deeper along the same line) or ``PIVOT`` (change direction), with a short summary of the
trajectory so far. A reply that is not a valid Verdict (malformed JSON, an unknown decision,
a model that cannot do structured output) never stops the run: `decide` falls back to a
stated decision and records why, so the run log shows every verdict and where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphBubbleUp
from pydantic import BaseModel, Field

from agent_budget.agents.search.budgeting import Allowance
from agent_budget.errors import BudgetExceeded

Decision = Literal["SUCCESS", "CONTINUE", "PIVOT"]
"""What the verifier decides:

- ``SUCCESS``: the answer is supported by what was found; stop and give it.
- ``CONTINUE``: on the right track but not confirmed; search or read more along the same line.
- ``PIVOT``: the evidence points elsewhere or nothing useful was found; plan a new direction
  with what is left of the budget.
"""

EVIDENCE_CHARS = 1500
"""How much of the tool results the verifier reads (the most recent first)."""


class Verdict(BaseModel):
    """The verifier's structured reply."""

    decision: Decision
    summary: str = Field(
        max_length=200, description="one or two sentences: what was tried, what was found"
    )
    next_query: str = Field(
        default="", max_length=80, description="for CONTINUE or PIVOT: the search to run next"
    )


VERIFIER_PROMPT = (
    "You check a research agent's answer. Decide SUCCESS if the evidence supports the "
    "answer, CONTINUE if it is on the right track but needs one more search or page, "
    "PIVOT if the evidence points elsewhere or nothing relevant was found. Give a short "
    "summary of the trajectory and, unless SUCCESS, the next search query. Reply in JSON."
)


def fallback(allow: Allowance, error: str) -> dict[str, Any]:
    """The decision when the verifier's reply cannot be read: CONTINUE while the plan may
    still search or read (one more look is what the budget is for), else SUCCESS (give the
    answer there is). Recorded with ``fallback: True`` and the error."""
    decision: Decision = "CONTINUE" if allow.mode != "answer" else "SUCCESS"
    return {
        "decision": decision,
        "summary": "verifier reply unreadable; " + error[:200],
        "next_query": "",
        "fallback": True,
    }


def decide(
    model: Any,
    question: str,
    answer: str,
    messages: Sequence[AnyMessage],
    budget_text: str,
    allow: Allowance,
    config: RunnableConfig,
) -> dict[str, Any]:
    """Ask ``model`` for a `Verdict` on ``answer``; a plain dict with ``decision``,
    ``summary``, ``next_query`` and ``fallback`` (True when the reply could not be used)."""
    prompt = [
        SystemMessage(VERIFIER_PROMPT),
        HumanMessage(
            f"Question: {question}\nCandidate answer: {answer}\n"
            f"Evidence:\n{evidence(messages)}\n"
            f"Budget: {budget_text}\n{allow.describe()}"
        ),
    ]
    try:
        out = model.with_structured_output(Verdict, include_raw=True).invoke(prompt, config)
    except (BudgetExceeded, GraphBubbleUp):
        raise  # the budget's own way out (finalize / raise / interrupt) must go through
    except Exception as exc:  # a model without structured output, a provider error
        return fallback(allow, f"{type(exc).__name__}: {exc}")
    parsed = out.get("parsed") if isinstance(out, dict) else out
    if isinstance(parsed, dict):  # some providers hand back a dict
        try:
            parsed = Verdict.model_validate(parsed)
        except ValueError as exc:
            return fallback(allow, f"invalid verdict: {exc}")
    if not isinstance(parsed, Verdict):
        error = out.get("parsing_error") if isinstance(out, dict) else None
        return fallback(allow, f"malformed reply: {error or 'no verdict'}")
    return {**parsed.model_dump(), "fallback": False}


def evidence(messages: Sequence[AnyMessage]) -> str:
    """The latest tool results, newest first, up to `EVIDENCE_CHARS` (they are already
    escaped by the budget's tool guard: a page cannot forge a budget message here)."""
    parts: list[str] = []
    used = 0
    for m in reversed(messages):
        if not isinstance(m, ToolMessage):
            continue
        text = m.content if isinstance(m.content, str) else str(m.content)
        text = text.split("\n\n<budget>", 1)[0].strip()
        if not text:
            continue
        piece = f"[{m.name}] {text[: EVIDENCE_CHARS - used]}"
        parts.append(piece)
        used += len(piece)
        if used >= EVIDENCE_CHARS:
            break
    return "\n".join(parts) or "(nothing found yet)"
