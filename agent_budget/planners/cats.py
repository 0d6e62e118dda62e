"""CATS: cost-augmented Monte Carlo tree search over priced tools.

How it works (and what it does and does not promise):

- A tree node is a partial plan (the types it holds, the cost spent, the calls made). Its value
  is the cost spent plus an estimate of the cost still needed, from a rollout: a randomised
  relaxed plan (h_add supporters, costs jittered). The relaxation is delete-free like the real
  problem, so every rollout is a real, complete plan; the cheapest one that fits is kept.
- Selection is PUCT: normalised value (cheaper is better) plus exploration weighted by a prior.
  The prior favours "helpful" calls (those that start the node's rollout plan) and, if given,
  an `ActionPrior` (e.g. `ChatModelPrior`), asked once per new state.
- Expansion is pruned by feasibility: a child whose cost + admissible lower bound (h_max)
  exceeds the budget, or whose steps + lower bound exceed `max_steps`, or that cannot beat
  the best plan found so far, is never created. A root that fails this is infeasible at once.
- Tool failures: the search minimises expected paid cost (a call failing with rate p is paid
  and retried, so costs cost / (1 - p)); the budget bounds the nominal cost.
- Progressive widening keeps hundreds of tools affordable: a node grows children as visited.
- `certify=True` (default) then runs the exact A* with the best MCTS cost as a bound, within
  `certify_expansions`: on small and medium problems this proves the MCTS plan optimal or
  replaces it with the optimum, which is how `cats` matches `exact` on deterministic problems.
  On big problems certification gives up and the MCTS plan is returned (`proven_optimal`
  False); `stats["mcts_cost"]` always holds what MCTS alone found.

Deterministic for a seed when the simulation budget (not `time_limit`) ends the search.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from agent_budget.planners.errors import PlannerGaveUp
from agent_budget.planners.exact import (
    Limits,
    expected_cost,
    infeasible_reason,
    plan_cost,
    search,
)
from agent_budget.planners.prior import ActionPrior, PriorContext
from agent_budget.planners.problem import Problem
from agent_budget.planners.result import PlanResult
from agent_budget.planners.space import CompiledTool, Number, Space

_Key = tuple[Number, int, tuple[str, ...]]


@dataclass(eq=False)
class _Node:
    mask: int
    g_weight: Number
    g_nominal: int
    steps: int
    path: tuple[int, ...]
    lower: Number  # g_weight + h_max: no plan through this node is cheaper
    prior: float = 1.0
    visits: int = 0
    feasible_visits: int = 0
    value_sum: float = 0.0
    dead: bool = False
    children: list[_Node] = field(default_factory=list)
    untried: list[tuple[float, CompiledTool]] | None = None  # None until first visited


class _Search:
    def __init__(
        self,
        space: Space,
        rng: random.Random,
        prior: ActionPrior | None,
        exploration: float,
        rollout_noise: float,
        max_prior_calls: int,
    ) -> None:
        self.space = space
        self.rng = rng
        self.prior = prior
        self.exploration = exploration
        self.rollout_noise = rollout_noise
        self.prior_calls_left = max_prior_calls
        self.prior_cache: dict[int, dict[str, float]] = {}
        self.best: tuple[_Key, tuple[int, ...]] | None = None
        self.lo = math.inf
        self.hi = -math.inf
        self.nodes = 0

    # --- bounds and plans -------------------------------------------------------------

    def lower_bound(self, mask: int, g_weight: Number, g_nominal: int, steps: int) -> Number | None:
        """g + h_max, or None when no plan through this state can fit (feasibility pruning)."""
        space = self.space
        h = space.h_weight(mask)
        if h is None:
            return None
        if space.budget is not None:
            hn = space.h_nominal(mask)
            if hn is None or g_nominal + hn > space.budget:
                return None
        if space.max_steps is not None:
            hs = space.h_steps(mask)
            if hs is None or steps + hs > space.max_steps:
                return None
        lower = g_weight + h
        if self.best is not None and lower > self.best[0][0]:
            return None
        return lower

    def offer(self, path: tuple[int, ...]) -> Number:
        """Record a complete plan; returns its weight. Keeps the best by (cost, calls, names)."""
        tools = self.space.tools
        weight: Number = sum(tools[i].weight for i in path)
        key: _Key = (weight, len(path), tuple(tools[i].name for i in path))
        if self.best is None or key < self.best[0]:
            self.best = (key, path)
        return weight

    def rollout(self, node: _Node) -> tuple[Number | None, list[int]]:
        """Cost-to-go estimate by a randomised relaxed plan; None if it breaks a limit."""
        space = self.space
        noise = self.rollout_noise if self.rng.random() < 0.5 else 0.0
        costs: Sequence[Number] = space.weights
        if noise:
            costs = [w * (1.0 + noise * (2.0 * self.rng.random() - 1.0)) for w in space.weights]
        _, plan = space.relaxed(node.mask, costs, additive=True)
        if not plan and not space.is_goal(node.mask):
            return None, []
        nominal = node.g_nominal + sum(space.tools[i].nominal for i in plan)
        if space.budget is not None and nominal > space.budget:
            return None, plan
        if space.max_steps is not None and node.steps + len(plan) > space.max_steps:
            return None, plan
        return self.offer(node.path + tuple(plan)), plan

    # --- tree -------------------------------------------------------------------------

    def candidates(self, node: _Node, helpful: set[int]) -> list[tuple[float, CompiledTool]]:
        space = self.space
        moves = [  # cheap pre-filter, so a prior (maybe an LLM) is never shown unaffordable calls
            ct
            for ct in space.applicable(node.mask)
            if (space.budget is None or node.g_nominal + ct.nominal <= space.budget)
            and (space.max_steps is None or node.steps < space.max_steps)
        ]
        external = self.ask_prior(node, moves) if moves else {}
        scored = []
        for ct in moves:
            p = 1.0 if ct.index in helpful else 0.25
            if external:
                p *= 0.1 + external.get(ct.name, 0.0)
            scored.append((p, ct))
        total = sum(p for p, _ in scored) or 1.0
        scored = [(p / total, ct) for p, ct in scored]
        # Tried in order: most likely first, then cheapest, then by name (reproducible).
        scored.sort(key=lambda item: (-item[0], item[1].weight, item[1].name))
        return scored

    def ask_prior(self, node: _Node, moves: list[CompiledTool]) -> dict[str, float]:
        if self.prior is None:
            return {}
        if node.mask in self.prior_cache:
            return self.prior_cache[node.mask]
        if self.prior_calls_left <= 0:
            return {}
        self.prior_calls_left -= 1
        space = self.space
        held = tuple(n for i, n in enumerate(space.type_names) if node.mask >> i & 1)
        spent = space.to_money(node.g_nominal)
        remaining = None if space.problem.budget is None else space.problem.budget - spent
        context = PriorContext(
            space.goal_name, held, tuple(ct.tool for ct in moves), spent, remaining
        )
        raw = dict(self.prior(context))
        top = max((v for v in raw.values() if v > 0), default=0.0)
        scores = {k: v / top for k, v in raw.items() if v > 0} if top else {}
        self.prior_cache[node.mask] = scores
        return scores

    def widen_limit(self, node: _Node) -> int:
        return max(1, math.ceil(2.0 * math.sqrt(node.visits + 1)))

    def select(self, node: _Node) -> _Node | None:
        best_child, best_score = None, -math.inf
        scale = self.exploration * math.sqrt(node.visits + 1)
        for child in node.children:
            if child.dead:
                continue
            if self.best is not None and child.lower > self.best[0][0]:
                child.dead = True  # bound pruning: it cannot beat the best plan found
                continue
            score = self.q(child) + scale * child.prior / (1 + child.visits)
            if score > best_score:
                best_child, best_score = child, score
        return best_child

    def q(self, node: _Node) -> float:
        if node.feasible_visits == 0:
            return 0.0
        mean = node.value_sum / node.feasible_visits
        span = self.hi - self.lo
        norm = 1.0 if span <= 0 else (self.hi - mean) / span
        return norm * node.feasible_visits / node.visits

    def expand(self, node: _Node) -> _Node | None:
        assert node.untried is not None
        while node.untried:
            p, ct = node.untried.pop(0)
            mask = node.mask | ct.bit
            g_w, g_n, steps = node.g_weight + ct.weight, node.g_nominal + ct.nominal, node.steps + 1
            lower = self.lower_bound(mask, g_w, g_n, steps)
            if lower is None:
                continue
            child = _Node(mask, g_w, g_n, steps, (*node.path, ct.index), lower, prior=p)
            node.children.append(child)
            self.nodes += 1
            return child
        return None

    def simulate(self) -> None:
        node, trail = self.root, [self.root]
        while True:
            if node.untried is None:
                break  # first visit: evaluate it
            if node.untried and len(node.children) < self.widen_limit(node):
                child = self.expand(node)
                if child is not None:
                    node = child
                    trail.append(node)
                    break
            nxt = self.select(node)
            if nxt is None:
                if not node.untried:
                    node.dead = True
                    self.backup(trail, None)
                    return
                child = self.expand(node)  # every child pruned: widen instead
                if child is None:
                    node.dead = True
                    self.backup(trail, None)
                    return
                nxt = child
            node = nxt
            trail.append(node)
        value = self.evaluate(node)
        self.backup(trail, value)

    def evaluate(self, node: _Node) -> Number | None:
        if self.space.is_goal(node.mask):
            node.untried, node.dead = [], True  # nothing below a finished plan
            return self.offer(node.path)
        value, plan = self.rollout(node)
        helpful = {i for i in plan if self.space.tools[i].needs & ~node.mask == 0}
        node.untried = self.candidates(node, helpful)
        if not node.untried:
            node.dead = True
        return value

    def backup(self, trail: list[_Node], value: Number | None) -> None:
        if value is not None:
            self.lo, self.hi = min(self.lo, float(value)), max(self.hi, float(value))
        for node in trail:
            node.visits += 1
            if value is not None:
                node.feasible_visits += 1
                node.value_sum += float(value)
        for node in reversed(trail[1:]):  # a node with only dead children is dead
            if not node.dead and node.untried == [] and all(c.dead for c in node.children):
                node.dead = True
        root = trail[0]
        if root.untried == [] and all(c.dead for c in root.children):
            root.dead = True

    def run(self, simulations: int, deadline: float) -> int:
        lower = self.lower_bound(self.space.start, 0, 0, 0)
        if lower is None:
            self.root = _Node(self.space.start, 0, 0, 0, (), 0, dead=True)
            return 0
        self.root = _Node(self.space.start, 0, 0, 0, (), lower)
        done = 0
        while done < simulations and not self.root.dead:
            if done % 16 == 0 and time.perf_counter() > deadline:
                break
            self.simulate()
            done += 1
        return done


def cats_plan(
    problem: Problem,
    *,
    seed: int = 0,
    simulations: int = 400,
    time_limit: float = 10.0,
    prior: ActionPrior | None = None,
    max_prior_calls: int = 64,
    exploration: float = 1.0,
    rollout_noise: float = 0.3,
    certify: bool = True,
    certify_expansions: int = 20_000,
) -> PlanResult:
    """Plan with CATS. See the module docstring for what each knob trades."""
    began = time.perf_counter()
    expected = any(tool.failure_rate > 0 for tool in problem.tools)
    space = Space(problem, expected=expected)
    if space.is_goal(space.start):
        return PlanResult(
            "ok", (), Decimal(0), method="cats", expected_cost=Decimal(0), proven_optimal=True
        )
    engine = _Search(space, random.Random(seed), prior, exploration, rollout_noise, max_prior_calls)
    done = engine.run(simulations, began + time_limit)
    stats: dict[str, object] = {"simulations": done, "nodes": engine.nodes}
    exhausted = engine.root.dead
    reason_limits = Limits(max_expansions=certify_expansions, time_limit=max(1.0, time_limit / 4))
    if engine.best is not None:
        stats["mcts_cost"] = plan_cost(space, engine.best[1])
    proven = exhausted
    if certify and not exhausted:
        bound = engine.best[0][0] if engine.best is not None else None
        if isinstance(bound, float):
            bound *= 1 + 1e-9  # float sums differ in the last bits with order
        left = max(time_limit / 4, began + time_limit - time.perf_counter())
        try:
            outcome = search(
                space,
                bound=bound,
                limits=Limits(max_expansions=certify_expansions, time_limit=left),
            )
        except PlannerGaveUp as exc:
            stats["certify"] = f"gave up after {exc.expanded} expansions"
        else:
            proven = True
            stats["certify"] = f"complete after {outcome.expanded} expansions"
            if outcome.path is not None:
                engine.offer(outcome.path)
    stats["seconds"] = time.perf_counter() - began
    if engine.best is None:
        if proven:
            reason = infeasible_reason(space, reason_limits)
        else:
            reason = (
                f"cats found no plan within budget {problem.budget} in {done} simulations "
                "and could not prove that none exists (raise simulations or certify_expansions)"
            )
        return PlanResult(
            "infeasible", reason=reason, method="cats", proven_optimal=proven, stats=stats
        )
    path = engine.best[1]
    return PlanResult(
        "ok",
        tuple(space.tools[i].name for i in path),
        plan_cost(space, path),
        method="cats",
        expected_cost=expected_cost(space, path),
        proven_optimal=proven,
        stats=stats,
    )
