"""CATS specifics: determinism, priors (incl. a LangChain chat model), infeasibility, failures."""

from __future__ import annotations

import warnings
from decimal import Decimal

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from planner_helpers import problem, replay, tool

from agent_budget.planners import (
    ChatModelPrior,
    PlanningWarning,
    PriorContext,
    cats_plan,
    exact_plan,
)
from agent_budget.planners.generate import generate_problem
from agent_budget.planners.prior import parse_scores


def test_same_seed_same_plan_and_same_search() -> None:
    p = generate_problem(200, seed=3)
    a = cats_plan(p, seed=7, simulations=150, certify=False)
    b = cats_plan(p, seed=7, simulations=150, certify=False)
    assert a.steps == b.steps
    assert (a.stats["simulations"], a.stats["nodes"]) == (b.stats["simulations"], b.stats["nodes"])
    replay(p, a)


def test_mcts_alone_finds_the_optimum_on_small_problems() -> None:
    hits = 0
    for seed in range(10):
        p = generate_problem(24, seed=seed)
        hits += cats_plan(p, certify=False).cost == exact_plan(p).cost
    assert hits >= 9


def test_certify_proves_or_improves() -> None:
    p = generate_problem(128, seed=0)
    mcts = cats_plan(p, simulations=30, certify=False)
    full = cats_plan(p, simulations=30)
    assert full.proven_optimal
    assert full.cost == exact_plan(p).cost
    assert full.cost is not None and mcts.cost is not None and full.cost <= mcts.cost
    assert full.stats["mcts_cost"] == mcts.cost


def test_early_infeasibility_runs_no_simulation() -> None:
    p = problem(["A"], "G", [tool("a", ["A"], "B", 5), tool("g", ["B"], "G", 5)], budget=9)
    r = cats_plan(p)
    assert r.status == "infeasible" and r.stats["simulations"] == 0
    assert r.reason == "cheapest plan costs 10 > budget 9"


def test_infeasible_found_by_search_not_by_the_bound() -> None:
    # h_max says 6 <= budget 7, but any real plan needs both branches: 12.
    p = problem(
        ["S"],
        "G",
        [tool("x", ["S"], "X", 6), tool("y", ["S"], "Y", 6), tool("g", ["X", "Y"], "G", 0)],
        budget=7,
    )
    r = cats_plan(p)
    assert r.status == "infeasible" and r.proven_optimal
    assert r.reason == "cheapest plan costs 12 > budget 7"


def test_failure_rates_use_expected_cost_and_budget_bounds_nominal() -> None:
    p = problem(
        ["A"], "G", [tool("flaky", ["A"], "G", 1, failure_rate=0.75), tool("steady", ["A"], "G", 3)]
    )
    r = cats_plan(p, certify=False)
    assert r.steps == ("steady",) and r.expected_cost == Decimal(3)
    tight = cats_plan(p.model_copy(update={"budget": Decimal(2)}))
    assert tight.steps == ("flaky",)  # expected 4 but the only plan whose price fits 2
    assert tight.expected_cost == Decimal(4)


class RecordingPrior:
    def __init__(self, favourite: str) -> None:
        self.favourite = favourite
        self.contexts: list[PriorContext] = []

    def __call__(self, context: PriorContext) -> dict[str, float]:
        self.contexts.append(context)
        return {self.favourite: 1.0}


def test_prior_is_asked_per_state_and_cannot_break_the_budget() -> None:
    p = problem(
        ["A"],
        "G",
        [
            tool("cheap", ["A"], "G", 1),
            tool("dear", ["A"], "G", 50),
            tool("detour", ["A"], "B", 1),
            tool("b_g", ["B"], "G", 1),
        ],
        budget=10,
    )
    prior = RecordingPrior("dear")  # a misleading prior
    r = cats_plan(p, prior=prior, certify=False)
    assert r.steps == ("cheap",)
    assert prior.contexts and prior.contexts[0].goal == "G"
    assert prior.contexts[0].held == ("A",)
    assert {t.name for t in prior.contexts[0].candidates} == {
        "cheap",
        "detour",
    }  # dear: over budget
    assert prior.contexts[0].remaining_budget == Decimal(10)


def test_chat_model_prior_with_a_fake_chat_model() -> None:
    model = GenericFakeChatModel(
        messages=iter([AIMessage(content='Sure: {"detour": 0.9, "cheap": 0.1, "bogus": 5}')] * 10)
    )
    prior = ChatModelPrior(model)
    p = problem(
        ["A"],
        "G",
        [tool("cheap", ["A"], "G", 3), tool("detour", ["A"], "B", 1), tool("b_g", ["B"], "G", 1)],
    )
    context = PriorContext("G", ("A",), tuple(p.tools[:2]), Decimal(0), None)
    assert prior(context) == {"detour": 0.9, "cheap": 0.1}
    assert "detour: needs [A] -> makes B, costs 1" in prior.describe(context)
    r = cats_plan(p, prior=prior, certify=False)
    assert r.steps == ("detour", "b_g") and r.cost == Decimal(2)
    assert prior.calls >= 2


def test_chat_model_prior_failure_is_a_warning_not_an_error() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage(content="no idea, sorry")]))
    prior = ChatModelPrior(model)
    p = problem(["A"], "G", [tool("g", ["A"], "G", 1)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = cats_plan(p, prior=prior, certify=False)  # 2nd call: the fake model is exhausted
    assert r.steps == ("g",)
    assert any(issubclass(w.category, PlanningWarning) for w in caught)


@pytest.mark.parametrize(
    ("text", "scores"),
    [
        ('{"a": 2, "b": 0}', {"a": 2.0, "b": 0.0}),
        ('```json\n["b", "a"]\n```', {"b": 1.0, "a": 0.5}),
        ("I would call b first, then a.", {"b": 1.0, "a": 0.5}),
        ("call ab", {}),
        ('{"a": "high"}', {"a": 1.0}),  # no usable scores: falls back to mentions
    ],
)
def test_parse_scores(text: str, scores: dict[str, float]) -> None:
    assert parse_scores(text, ["a", "b"]) == scores


def test_large_problem_within_a_simulation_budget() -> None:
    p = generate_problem(400, seed=2)
    r = cats_plan(p, simulations=120, certify=False, time_limit=20)
    assert r.ok and r.stats["simulations"] == 120
    replay(p, r)
