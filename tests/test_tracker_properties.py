"""Property tests: concurrent priced calls never commit more than any limit.

Each call reserves its worst case, then commits an actual cost <= that worst case or
releases. Calls run from several threads and as asyncio tasks that hold their reservation
across an await, so reservations overlap. Afterwards committed spend is within every
limit, nothing is held, and the totals are exact.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_budget.budget import Budget
from agent_budget.errors import BudgetExceeded
from agent_budget.tracker import BudgetTracker, Charge

TOOLS = ("web_search", "fetch_page", "calc")
WORKERS = 6
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_pool = ThreadPoolExecutor(max_workers=WORKERS)


@dataclass(frozen=True)
class Call:
    kind: str
    name: str
    usd: Decimal
    inp: int
    out: int
    outcome: str  # "commit" (worst case) | "partial" (actual <= worst) | "release"
    tenths: int  # the partial actual, in tenths of the worst case
    final: bool

    def worst(self) -> Charge:
        if self.kind == "tool":
            return Charge("tool", self.name, self.usd)
        return Charge("model", "m", self.usd, self.inp, self.out)

    def actual(self) -> Charge | None:
        if self.outcome == "release":
            return None
        if self.outcome == "commit":
            return self.worst()
        k = self.tenths
        usd = (self.usd * k / 10).quantize(Decimal("0.00001"))
        if self.kind == "tool":
            return Charge("tool", self.name, min(usd, self.usd))
        return Charge("model", "m", min(usd, self.usd), self.inp * k // 10, self.out * k // 10)


money = st.decimals(min_value=0, max_value=Decimal("0.05"), places=4)
calls = st.builds(
    Call,
    kind=st.sampled_from(["tool", "model"]),
    name=st.sampled_from(TOOLS),
    usd=money,
    inp=st.integers(0, 400),
    out=st.integers(0, 200),
    outcome=st.sampled_from(["commit", "commit", "partial", "release"]),
    tenths=st.integers(0, 10),
    final=st.sampled_from([False, False, False, True]),
)


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


@st.composite
def budgets(draw: st.DrawFn) -> Budget:
    usd = draw(optional(st.decimals(min_value=0, max_value=Decimal("0.3"), places=4)))
    reserve = Decimal(0)
    if usd is not None:
        reserve = draw(
            st.sampled_from([Decimal(0), usd / 4]).map(lambda d: d.quantize(Decimal("0.0001")))
        )
    return Budget(
        usd=usd,
        reserve_usd=reserve,
        tokens={
            "input": draw(optional(st.integers(0, 3000))),
            "output": draw(optional(st.integers(0, 1500))),
            "total": draw(optional(st.integers(0, 4000))),
        },
        tool_calls=draw(
            st.dictionaries(st.sampled_from(TOOLS), st.integers(0, 6), max_size=len(TOOLS))
        ),
        total_tool_calls=draw(optional(st.integers(0, 12))),
        model_calls=draw(optional(st.integers(0, 10))),
    )


class Record:
    """What the calls themselves saw, kept apart from the tracker's own totals."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.committed: list[tuple[Call, Charge]] = []
        self.reserved = 0
        self.refused = 0

    def add(self, call: Call, actual: Charge | None, reserved: bool) -> None:
        with self.lock:
            if reserved:
                self.reserved += 1
                if actual is not None:
                    self.committed.append((call, actual))
            else:
                self.refused += 1


def run_call(tracker: BudgetTracker, call: Call, record: Record) -> None:
    try:
        res = tracker.reserve(call.worst(), final=call.final)
    except BudgetExceeded:
        record.add(call, None, reserved=False)
        return
    time.sleep(0)  # let other threads reserve while this one holds
    actual = call.actual()
    if actual is None:
        res.release()
    else:
        res.commit(actual)
    record.add(call, actual, reserved=True)


async def run_call_async(tracker: BudgetTracker, call: Call, record: Record) -> None:
    try:
        res = tracker.reserve(call.worst(), final=call.final)
    except BudgetExceeded:
        record.add(call, None, reserved=False)
        return
    await asyncio.sleep(0)  # the "call" is in flight: every other task runs meanwhile
    actual = call.actual()
    if actual is None:
        res.release()
    else:
        res.commit(actual)
    record.add(call, actual, reserved=True)


def run_threads(tracker: BudgetTracker, batch: list[Call]) -> Record:
    record = Record()
    list(_pool.map(lambda c: run_call(tracker, c, record), batch))
    return record


def run_tasks(tracker: BudgetTracker, batch: list[Call]) -> Record:
    record = Record()

    async def main() -> None:
        await asyncio.gather(*(run_call_async(tracker, c, record) for c in batch))

    asyncio.run(main())
    return record


def check_invariants(tracker: BudgetTracker, budget: Budget, record: Record, n: int) -> None:
    s = tracker.spent
    # nothing left held
    assert tracker.held.usd == 0
    assert tracker.held.input_tokens == tracker.held.output_tokens == 0
    assert tracker.held.model_calls == 0
    assert all(v == 0 for v in tracker.held.tool_calls.values())
    # exact totals: the tracker's sums equal the sums of what was committed
    actuals = [a for _, a in record.committed]
    assert s.usd == sum((a.usd for a in actuals), Decimal(0))
    assert s.input_tokens == sum(a.input_tokens for a in actuals)
    assert s.output_tokens == sum(a.output_tokens for a in actuals)
    assert s.model_calls == sum(1 for a in actuals if a.kind == "model")
    for t in TOOLS:
        assert s.tool_calls.get(t, 0) == sum(1 for a in actuals if a.name == t)
    assert tracker.seq == len(actuals)
    assert record.reserved + record.refused == n
    # never more than any limit
    if budget.usd is not None:
        assert s.usd <= budget.usd
        normal = sum((a.usd for c, a in record.committed if not c.final), Decimal(0))
        assert normal <= budget.usd - budget.reserve_usd
    for limit, used in (
        (budget.tokens.input, s.input_tokens),
        (budget.tokens.output, s.output_tokens),
        (budget.tokens.total, s.total_tokens),
        (budget.total_tool_calls, s.total_tool_calls),
    ):
        if limit is not None:
            assert used <= limit
    if budget.model_calls is not None:
        normal_model_calls = sum(
            1 for c, a in record.committed if a.kind == "model" and not c.final
        )
        assert normal_model_calls <= budget.model_calls
    for tool, limit in budget.tool_calls.items():
        assert s.tool_calls.get(tool, 0) <= limit
    assert tracker.remaining().get("usd", Decimal(0)) >= 0


@SETTINGS
@given(budget=budgets(), batch=st.lists(calls, min_size=1, max_size=40))
def test_concurrent_threads_never_exceed_a_limit(budget: Budget, batch: list[Call]):
    tracker = BudgetTracker(budget)
    record = run_threads(tracker, batch)
    check_invariants(tracker, budget, record, len(batch))


@SETTINGS
@given(budget=budgets(), batch=st.lists(calls, min_size=1, max_size=40))
def test_concurrent_tasks_never_exceed_a_limit(budget: Budget, batch: list[Call]):
    tracker = BudgetTracker(budget)
    record = run_tasks(tracker, batch)
    check_invariants(tracker, budget, record, len(batch))


# --- equal costs: exactly the maximum the limits allow gets through ---------------------


@st.composite
def equal_cost_case(draw: st.DrawFn) -> tuple[Budget, Charge, int, int]:
    kind = draw(st.sampled_from(["tool", "model"]))
    cost = draw(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.01"), places=4))
    n = draw(st.integers(1, 60))
    fit_usd = draw(optional(st.integers(0, 40)))
    # a limit of k calls' worth plus a sliver that cannot pay for one more
    slack = draw(st.decimals(min_value=0, max_value=cost, places=5).filter(lambda d: d < cost))
    usd = None if fit_usd is None else cost * fit_usd + slack
    expected = [n] + ([] if fit_usd is None else [fit_usd])
    if kind == "tool":
        per_tool = draw(optional(st.integers(0, 40)))
        total = draw(optional(st.integers(0, 40)))
        expected += [x for x in (per_tool, total) if x is not None]
        budget = Budget(
            usd=usd,
            tool_calls={} if per_tool is None else {"web_search": per_tool},
            total_tool_calls=total,
        )
        charge = Charge("tool", "web_search", cost)
    else:
        out = draw(st.integers(1, 50))
        out_limit = draw(optional(st.integers(0, 2000)))
        calls_limit = draw(optional(st.integers(0, 40)))
        if out_limit is not None:
            expected.append(out_limit // out)
        if calls_limit is not None:
            expected.append(calls_limit)
        budget = Budget(usd=usd, tokens={"output": out_limit}, model_calls=calls_limit)
        charge = Charge("model", "m", cost, 10, out)
    return budget, charge, n, min(expected)


def held_nothing(tracker: BudgetTracker) -> bool:
    h = tracker.held
    return h.usd == 0 and h.total_tokens == 0 and h.model_calls == 0 and h.total_tool_calls == 0


@SETTINGS
@given(case=equal_cost_case())
def test_equal_costs_threads_get_exactly_the_maximum(case):
    budget, charge, n, expected = case
    tracker = BudgetTracker(budget)
    workers = min(WORKERS, n)
    start = threading.Barrier(workers)
    ok: list[int] = []

    def call(i: int) -> None:
        if i < workers:
            start.wait(timeout=10)  # the first wave reserves together
        try:
            res = tracker.reserve(charge)
        except BudgetExceeded:
            return
        time.sleep(0)
        res.commit()
        ok.append(i)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(call, range(n)))
    assert len(ok) == expected
    assert tracker.spent.usd == charge.usd * expected
    assert held_nothing(tracker)


@SETTINGS
@given(case=equal_cost_case())
def test_equal_costs_tasks_get_exactly_the_maximum(case):
    budget, charge, n, expected = case
    tracker = BudgetTracker(budget)
    ok: list[int] = []

    async def call(i: int) -> None:
        try:
            res = tracker.reserve(charge)
        except BudgetExceeded:
            return
        await asyncio.sleep(0)
        res.commit()
        ok.append(i)

    async def main() -> None:
        await asyncio.gather(*(call(i) for i in range(n)))

    asyncio.run(main())
    assert len(ok) == expected
    assert tracker.spent.usd == charge.usd * expected
    assert held_nothing(tracker)


@pytest.mark.parametrize("runner", [run_threads, run_tasks])
def test_all_held_at_once_still_refuses_past_the_limit(runner):
    """Every call holds its reservation while the others try: 3 fit, 7 are refused."""
    budget = Budget(usd="0.03", tool_calls={"web_search": 100})
    batch = [Call("tool", "web_search", Decimal("0.01"), 0, 0, "commit", 10, False)] * 10
    tracker = BudgetTracker(budget)
    record = runner(tracker, batch)
    assert (record.reserved, record.refused) == (3, 7)
    assert tracker.spent.usd == Decimal("0.03")
