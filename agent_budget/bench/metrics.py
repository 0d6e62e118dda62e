"""Sweep metrics: accuracy, unified cost, cost-of-pass and the cost-quality Pareto frontier.

Cost-of-pass (Erol et al., "Cost-of-Pass: An Economic Framework for Evaluating Language
Models") is the expected cost of one correct answer: the mean cost of an attempt divided by
the probability that an attempt passes, i.e. total cost / number of passes. A configuration
that never passes has an infinite cost-of-pass (``Decimal("Infinity")``), not an error.

A cell is one (configuration, budget) pair, over all its seeds and tasks. The frontier is the
set of complete cells no other complete cell beats on both mean cost (lower) and accuracy
(higher), with at least one strictly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

INFINITY = Decimal("Infinity")


def cost_of_pass(total_usd: Decimal, passes: int) -> Decimal:
    """Expected cost of one correct answer: ``total_usd / passes``; infinite at 0 passes."""
    if passes < 0:
        raise ValueError(f"passes must be >= 0, got {passes}")
    return INFINITY if passes == 0 else Decimal(total_usd) / passes


def pareto_frontier(points: Sequence[tuple[str, Decimal | float, float]]) -> list[str]:
    """Names of the non-dominated ``(name, cost, accuracy)`` points, cheapest first. A point
    is dominated when another costs no more and scores no less, and is better in one."""
    frontier = []
    for name, cost, acc in points:
        dominated = any(
            c <= cost and a >= acc and (c < cost or a > acc)
            for other, c, a in points
            if other != name
        )
        if not dominated:
            frontier.append((cost, -acc, name))
    return [name for _, _, name in sorted(frontier)]


@dataclass
class Cell:
    config: str
    budget: str
    budget_usd: Decimal | None
    runs: int = 0
    passed: int = 0
    usd: Decimal = Decimal(0)
    judge_usd: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    tokens_by_model: dict[str, dict[str, int]] = field(default_factory=dict)
    tool_calls: dict[str, int] = field(default_factory=dict)
    overruns: int = 0
    errors: int = 0
    capped: int = 0
    refused: int = 0
    exhausted: int = 0
    on_frontier: bool = False

    @property
    def name(self) -> str:
        return f"{self.config}@{self.budget}"

    @property
    def complete(self) -> bool:
        """Every unit ran to its end (none cut or refused by the global cap)."""
        return self.capped == 0 and self.refused == 0

    @property
    def accuracy(self) -> float:
        return self.passed / self.runs if self.runs else 0.0

    @property
    def mean_usd(self) -> Decimal:
        return self.usd / self.runs if self.runs else Decimal(0)

    @property
    def cost_of_pass(self) -> Decimal:
        return cost_of_pass(self.usd, self.passed)

    def add(self, r: dict[str, Any]) -> None:
        self.runs += 1
        self.passed += bool(r["passed"])
        self.usd += Decimal(r["usd"])
        self.judge_usd += Decimal(r["judge_usd"])
        self.input_tokens += int(r["input_tokens"])
        self.output_tokens += int(r["output_tokens"])
        self.model_calls += int(r["model_calls"])
        for model, row in r["tokens_by_model"].items():
            mine = self.tokens_by_model.setdefault(model, {"input": 0, "output": 0, "calls": 0})
            for k in mine:
                mine[k] += int(row.get(k, 0))
        for tool, n in r["tool_calls"].items():
            self.tool_calls[tool] = self.tool_calls.get(tool, 0) + int(n)
        self.overruns += len(r["overruns"])
        status = r["status"]
        self.errors += status == "error"
        self.capped += status == "capped"
        self.refused += status == "refused"
        self.exhausted += status == "exhausted"

    def to_dict(self) -> dict[str, Any]:
        cop = self.cost_of_pass
        return {
            "config": self.config,
            "budget": self.budget,
            "budget_usd": None if self.budget_usd is None else str(self.budget_usd),
            "runs": self.runs,
            "passed": self.passed,
            "accuracy": round(self.accuracy, 6),
            "usd": str(self.usd),
            "mean_usd": str(_q(self.mean_usd)),
            "cost_of_pass": "inf" if cop.is_infinite() else str(_q(cop)),
            "judge_usd": str(self.judge_usd),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "model_calls": self.model_calls,
            "tokens_by_model": self.tokens_by_model,
            "tool_calls": dict(sorted(self.tool_calls.items())),
            "overruns": self.overruns,
            "errors": self.errors,
            "exhausted": self.exhausted,
            "capped": self.capped,
            "refused": self.refused,
            "complete": self.complete,
            "on_frontier": self.on_frontier,
        }


def _q(value: Decimal) -> Decimal:
    """Twelve decimals: exact for ledger amounts (billionths) divided by small counts."""
    return value.quantize(Decimal("1e-12")).normalize()


def cells(results: Iterable[dict[str, Any]], budget_usd: dict[str, Decimal | None]) -> list[Cell]:
    """Results grouped by (configuration, budget), in the sweep's order, frontier marked."""
    out: dict[tuple[str, str], Cell] = {}
    for r in results:
        key = (r["config"], r["budget"])
        if key not in out:
            out[key] = Cell(r["config"], r["budget"], budget_usd.get(r["budget"]))
        out[key].add(r)
    found = list(out.values())
    complete = [(c.name, c.mean_usd, c.accuracy) for c in found if c.complete and c.runs]
    on = set(pareto_frontier(complete))
    for c in found:
        c.on_frontier = c.name in on
    return found


def totals(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The whole sweep in one row: spend (agent and judge), runs by status, overruns."""
    usd = sum((Decimal(r["usd"]) for r in results), Decimal(0))
    judge = sum((Decimal(r["judge_usd"]) for r in results), Decimal(0))
    by_status: dict[str, int] = {}
    for r in results:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    return {
        "runs": len(results),
        "passed": sum(bool(r["passed"]) for r in results),
        "usd": str(usd),
        "judge_usd": str(judge),
        "by_status": dict(sorted(by_status.items())),
        "overruns": sum(len(r["overruns"]) for r in results),
    }
