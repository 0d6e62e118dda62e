"""Random planning problems of a chosen size, for tests, benchmarks and `plan --generate`.

Types are numbered; a tool makes a higher-numbered type from a few lower-numbered ones
(mostly near it, so plans are chains of several calls), and some tools jump far ahead
(composites, priced near the sum of the steps they skip, sometimes cheaper, sometimes
dearer). A backbone (one tool per type, made from types below it) keeps every type
reachable. A few tools point backwards, making cycles.
"""

from __future__ import annotations

import random
from decimal import Decimal

from agent_budget.planners.problem import Problem, Tool


def generate_problem(
    n_tools: int,
    *,
    seed: int = 0,
    n_start: int = 3,
    failure_rate: float = 0.0,
    budget: Decimal | None = None,
    max_steps: int | None = None,
) -> Problem:
    """A problem with `n_tools` tools and about n_tools / 4 types. With `failure_rate` > 0,
    tools get failure rates up to it, cheap ones more often (the trap a failure-blind
    planner falls into)."""
    if n_tools < 2:
        raise ValueError("n_tools must be >= 2")
    if not 0.0 <= failure_rate < 1.0:
        raise ValueError("failure_rate must be in [0, 1)")
    rng = random.Random(seed)
    made = max(2, n_tools // 4)
    n_types = n_start + made
    names = [f"T{i:03d}" for i in range(n_types)]
    goal = n_types - 1
    tools: list[Tool] = []

    def price(span: int) -> Decimal:
        # Longer jumps cost about what the steps they skip would: composites.
        base = sum(rng.uniform(0.5, 6.0) for _ in range(max(1, span)))
        return Decimal(str(round(base * rng.uniform(0.7, 1.3), 2)))

    def add(inputs: list[int], out: int, cost: Decimal) -> None:
        rate = 0.0
        if failure_rate > 0 and rng.random() < (0.6 if cost < 3 else 0.3):
            rate = round(rng.uniform(0.0, failure_rate), 2)
        tools.append(
            Tool(
                name=f"tool_{len(tools):03d}",
                inputs=tuple(names[i] for i in sorted(set(inputs))),
                output=names[out],
                cost=cost,
                failure_rate=rate,
            )
        )

    # The backbone: every type gets one tool from types below it, so all are reachable.
    for out in range(n_start, n_types):
        low = max(0, out - 5)
        add([rng.randrange(low, out) for _ in range(rng.choice((1, 2, 3)))], out, price(1))
    while len(tools) < n_tools:
        roll = rng.random()
        out = rng.randrange(n_start, n_types)
        if roll < 0.05:  # a backward tool: cycles
            out = rng.randrange(n_start, max(n_start + 1, n_types - 1))
            inputs = [rng.randrange(out, n_types)]
            add(inputs, out, price(1))
            continue
        window = max(1, min(out, 6 if roll < 0.85 else out))
        low = out - window
        inputs = [rng.randrange(low, out) for _ in range(rng.choice((1, 2, 3, 3)))]
        span = out - min(inputs)
        add(inputs, out, price(span if roll >= 0.85 else 1))
    return Problem(
        start=tuple(names[:n_start]),
        goal=names[goal],
        budget=budget,
        max_steps=max_steps,
        tools=tuple(tools),
    )
