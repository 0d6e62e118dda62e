"""A problem compiled for search: held types as bits of an int, money as integer units.

Both planners search the same space. Types never disappear while a plan is made (only events
remove them, and the planner replans after events), so planning is delete-free: a state is the
set of held types, a useful call adds one new type, and any relaxed plan is a real plan.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from agent_budget.planners.problem import Problem, Tool

Number = int | float


@dataclass(frozen=True, slots=True)
class CompiledTool:
    index: int
    name: str
    tool: Tool
    inputs: tuple[int, ...]
    needs: int  # bit mask of the input types
    out: int  # output type index
    bit: int  # 1 << out
    nominal: int  # cost in integer money units (exact)
    weight: Number  # what the search minimises: nominal, or expected cost under failures


def money_scale(amounts: Iterable[Decimal]) -> int:
    """Decimal places needed so every amount is an integer number of units."""
    places = 0
    for amount in amounts:
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent < 0:
            places = max(places, -exponent)
    return places


class Space:
    """The relevant part of a problem: only tools that can help produce the goal and can be
    called from the start; only types those tools touch."""

    def __init__(self, problem: Problem, *, expected: bool = False) -> None:
        self.problem = problem
        self.goal_name = problem.goal
        self.places = money_scale(
            [tool.cost for tool in problem.tools]
            + ([problem.budget] if problem.budget is not None else [])
        )
        self.budget: int | None = None if problem.budget is None else self.to_units(problem.budget)
        self.max_steps = problem.max_steps
        start = set(problem.start)
        tools = _relevant(problem.tools, start, problem.goal)
        names = sorted(
            {problem.goal} | {t.output for t in tools} | {i for t in tools for i in t.inputs}
        )
        self.type_names: list[str] = names
        index = {name: i for i, name in enumerate(names)}
        self.goal = index[problem.goal]
        self.goal_bit = 1 << self.goal
        self.start = sum(1 << index[name] for name in start if name in index)
        self.tools: list[CompiledTool] = []
        for tool in sorted(tools, key=lambda t: t.name):
            nominal = self.to_units(tool.cost)
            weight: Number = nominal
            if expected and tool.failure_rate > 0:
                weight = nominal / (1.0 - tool.failure_rate)  # retried until it succeeds
            ids = tuple(sorted({index[name] for name in tool.inputs}))
            self.tools.append(
                CompiledTool(
                    index=len(self.tools),
                    name=tool.name,
                    tool=tool,
                    inputs=ids,
                    needs=sum(1 << i for i in ids),
                    out=index[tool.output],
                    bit=1 << index[tool.output],
                    nominal=nominal,
                    weight=weight,
                )
            )
        self.consumers: list[list[int]] = [[] for _ in names]
        for ct in self.tools:
            for i in ct.inputs:
                self.consumers[i].append(ct.index)
        self.nominal_costs: list[Number] = [ct.nominal for ct in self.tools]
        self.weights: list[Number] = [ct.weight for ct in self.tools]
        self.unit_costs: list[Number] = [1] * len(self.tools)
        self._cache: dict[tuple[int, int], Number | None] = {}

    # --- money ---------------------------------------------------------------------------

    def to_units(self, amount: Decimal) -> int:
        return int(amount.scaleb(self.places))

    def to_money(self, units: Number) -> Decimal:
        if isinstance(units, float):
            return Decimal(repr(units)).scaleb(-self.places)
        return Decimal(units).scaleb(-self.places)

    # --- moves ---------------------------------------------------------------------------

    def applicable(self, mask: int) -> list[CompiledTool]:
        """Calls that are valid and useful from `mask` (a call re-making a held type never is)."""
        return [ct for ct in self.tools if ct.needs & ~mask == 0 and not ct.bit & mask]

    def is_goal(self, mask: int) -> bool:
        return bool(mask & self.goal_bit)

    # --- lower bounds (admissible and consistent: h_max of the delete-free relaxation) -----

    def h_weight(self, mask: int) -> Number | None:
        return self._h_cached(mask, 0, self.weights)

    def h_nominal(self, mask: int) -> Number | None:
        return self._h_cached(mask, 1, self.nominal_costs)

    def h_steps(self, mask: int) -> Number | None:
        return self._h_cached(mask, 2, self.unit_costs)

    def _h_cached(self, mask: int, kind: int, costs: Sequence[Number]) -> Number | None:
        key = (mask, kind)
        if key not in self._cache:
            if len(self._cache) > 500_000:  # bound memory on huge searches
                self._cache.clear()
            self._cache[key] = self.relaxed(mask, costs, additive=False)[0]
        return self._cache[key]

    def relaxed(
        self, mask: int, costs: Sequence[Number], *, additive: bool
    ) -> tuple[Number | None, list[int]]:
        """Cheapest cost of the goal in the delete-free relaxation (Knuth's generalisation of
        Dijkstra). `additive=False` gives h_max (a lower bound); `additive=True` gives h_add
        and a relaxed plan: tool indices in a valid calling order, a real plan here."""
        if mask & self.goal_bit:
            return 0, []
        dist: dict[int, Number] = {}
        support: dict[int, int] = {}
        order: list[int] = []
        missing = [len(ct.inputs) for ct in self.tools]
        heap: list[tuple[Number, int, int]] = []
        held = [i for i in range(len(self.type_names)) if mask >> i & 1]
        for i in held:
            dist[i] = 0
        for i in held:
            for t in self.consumers[i]:
                missing[t] -= 1
        for ct in self.tools:
            if missing[ct.index] == 0 and ct.out not in dist:
                heapq.heappush(heap, (costs[ct.index], ct.index, ct.out))
        while heap:
            d, t, out = heapq.heappop(heap)
            if out in dist:
                continue
            dist[out] = d
            support[out] = t
            order.append(out)
            if out == self.goal:
                break
            for c in self.consumers[out]:
                missing[c] -= 1
                if missing[c] == 0:
                    consumer = self.tools[c]
                    if consumer.out in dist:
                        continue
                    base = sum(dist[i] for i in consumer.inputs) if additive else d
                    heapq.heappush(heap, (base + costs[c], c, consumer.out))
        if self.goal not in dist:
            return None, []
        if not additive:
            return dist[self.goal], []
        needed: set[int] = set()
        stack = [self.goal]
        while stack:
            typ = stack.pop()
            if typ in needed or mask >> typ & 1:
                continue
            needed.add(typ)
            stack.extend(self.tools[support[typ]].inputs)
        plan = [support[typ] for typ in order if typ in needed]
        return dist[self.goal], plan


def _relevant(tools: Sequence[Tool], start: set[str], goal: str) -> list[Tool]:
    """Tools that can matter: callable from the start (forward) and helping the goal (backward)."""
    current = [t for t in tools if t.output not in start]
    while True:
        reachable = set(start)
        changed = True
        while changed:
            changed = False
            for tool in current:
                if tool.output not in reachable and all(i in reachable for i in tool.inputs):
                    reachable.add(tool.output)
                    changed = True
        forward = [t for t in current if all(i in reachable for i in t.inputs)]
        wanted = {goal}
        changed = True
        while changed:
            changed = False
            for tool in forward:
                if tool.output in wanted:
                    for name in tool.inputs:
                        if name not in wanted:
                            wanted.add(name)
                            changed = True
        kept = [t for t in forward if t.output in wanted]
        if len(kept) == len(current):
            return kept
        current = kept
