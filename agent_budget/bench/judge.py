"""An LLM judge: a model grades each answer, on a budget of its own.

The judge's calls are charged to their own `BudgetTracker` and recorded in the sweep's ledger
under the run id ``<run>/judge``: its cost is reported apart from the agent's (cost-of-pass
counts the agent alone) and still counts against the sweep's global cap.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agent_budget.bench.tasks import Judge, Score, Scorer, Task

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agent_budget.tracker import BudgetTracker

PROMPT = """You grade answers. Reply with one word: PASS if the answer is correct, FAIL if not.

Question: {question}
Reference answer: {expected}
Answer to grade: {answer}

Grade:"""

_VERDICT = re.compile(r"\b(PASS|FAIL)\b", re.IGNORECASE)


def judge_scorer(prompt: str = PROMPT) -> Scorer:
    """A scorer that asks the run's judge; a reply without PASS / FAIL counts as FAIL."""

    def score(task: Task, answer: str, judge: Judge | None = None) -> Score:
        if judge is None:
            raise RuntimeError("the judge scorer needs a judge (the runner provides one)")
        reply = judge.ask(prompt.format(question=task.input, expected=task.expected, answer=answer))
        found = _VERDICT.search(reply)
        ok = bool(found) and found.group(1).upper() == "PASS"  # type: ignore[union-attr]
        return Score(ok, float(ok), f"judge: {reply.strip()[:80]!r}")

    return score


class ModelJudge:
    """`Judge` over a chat model whose every call goes on ``tracker`` (own budget)."""

    def __init__(self, model: BaseChatModel, tracker: BudgetTracker) -> None:
        self.model = model
        self.tracker = tracker

    def ask(self, prompt: str) -> str:
        from agent_budget.errors import BudgetExceeded
        from agent_budget.integrations.callbacks import BudgetCallbackHandler

        handler = BudgetCallbackHandler(self.tracker)
        try:
            reply = self.model.invoke(prompt, {"callbacks": [handler]})
        except BudgetExceeded as exc:
            return f"(judge refused by its budget: {exc.limit})"
        content: Any = reply.content
        return content if isinstance(content, str) else str(content)

    @property
    def usd(self) -> Decimal:
        return self.tracker.spent.usd
