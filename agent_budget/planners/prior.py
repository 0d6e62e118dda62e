"""Priors over actions for `cats`: a callable that scores candidate tools in a state.

A prior only steers the search (which calls it tries first and how much it explores them);
plans are still priced and checked against the budget by the planner, so a bad prior costs
search time, never a plan that overspends. `ChatModelPrior` asks any LangChain chat model.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agent_budget.planners.errors import PlanningWarning
from agent_budget.planners.problem import Tool

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


@dataclass(frozen=True)
class PriorContext:
    """What a prior sees: the goal, the types held, and the calls it may choose from."""

    goal: str
    held: tuple[str, ...]
    candidates: tuple[Tool, ...]
    spent: Decimal
    remaining_budget: Decimal | None


ActionPrior = Callable[[PriorContext], Mapping[str, float]]
"""Returns a non-negative score per candidate tool name; missing names score 0. Scores are
normalised by the planner, so only their ratios matter."""


_INSTRUCTIONS = (
    "You help an agent choose its next tool call. The agent holds some data types and must "
    "produce a goal type by calling tools; each tool turns its input types into one output "
    "type and costs money. Score every candidate tool by how likely it is to be the next step "
    "of the cheapest way to the goal. Reply with only a JSON object mapping tool names to "
    'scores between 0 and 1, e.g. {"search_flights": 0.8, "book_hotel": 0.1}.'
)


class ChatModelPrior:
    """An `ActionPrior` backed by a LangChain chat model (any `BaseChatModel`).

    One model call per new search state; a reply that cannot be parsed, or a model error,
    gives no preference (a warning), never a failed plan."""

    def __init__(
        self,
        model: BaseChatModel,
        *,
        instructions: str = _INSTRUCTIONS,
        max_candidates: int = 40,
    ) -> None:
        self.model = model
        self.instructions = instructions
        self.max_candidates = max_candidates
        self.calls = 0

    def describe(self, context: PriorContext) -> str:
        shown = sorted(context.candidates, key=lambda t: (t.cost, t.name))[: self.max_candidates]
        lines = [
            f"Goal type: {context.goal}",
            f"Held types: {', '.join(context.held) or '(none)'}",
            f"Spent so far: {context.spent}",
        ]
        if context.remaining_budget is not None:
            lines.append(f"Budget left: {context.remaining_budget}")
        lines.append("Candidate tools:")
        for tool in shown:
            failure = f", fails {tool.failure_rate:.0%} of calls" if tool.failure_rate else ""
            lines.append(
                f"- {tool.name}: needs [{', '.join(tool.inputs)}] -> makes {tool.output}, "
                f"costs {tool.cost}{failure}"
            )
        return "\n".join(lines)

    def __call__(self, context: PriorContext) -> dict[str, float]:
        from langchain_core.messages import HumanMessage, SystemMessage

        self.calls += 1
        try:
            reply = self.model.invoke(
                [SystemMessage(self.instructions), HumanMessage(self.describe(context))]
            )
        except Exception as exc:  # a prior is advice: its failure must not fail the plan
            warnings.warn(
                f"chat-model prior failed ({type(exc).__name__}: {exc}); searching without it",
                PlanningWarning,
                stacklevel=2,
            )
            return {}
        text = reply.text if isinstance(reply.text, str) else str(reply.content)
        names = [tool.name for tool in context.candidates]
        scores = parse_scores(text, names)
        if not scores:
            warnings.warn(
                f"chat-model prior reply named no candidate tool: {text[:80]!r}",
                PlanningWarning,
                stacklevel=2,
            )
        return scores


def parse_scores(text: str, names: list[str]) -> dict[str, float]:
    """Scores from a model's reply: a JSON object of scores, a JSON list ranking names, or,
    failing both, candidate names in the order they first appear in the text."""
    known = set(names)
    parsed = _first_json(text)
    if isinstance(parsed, Mapping):
        out: dict[str, float] = {}
        for key, value in parsed.items():
            if key in known and isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = max(float(value), 0.0)
        if out:
            return out
    ranked: list[str] = []
    if isinstance(parsed, list):
        ranked = [item for item in parsed if isinstance(item, str) and item in known]
    if not ranked:
        found = []
        for name in names:
            match = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)
            if match:
                found.append((match.start(), name))
        ranked = [name for _, name in sorted(found)]
    unique = list(dict.fromkeys(ranked))
    return {name: 1.0 / (rank + 1) for rank, name in enumerate(unique)}


def _first_json(text: str) -> Any:
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = text.find(opener), text.rfind(closer)
        if 0 <= start < end:
            try:
                return json.loads(text[start : end + 1])
            except json.JSONDecodeError:
                continue
    return None
