"""The ledger's records, limits, windows, expiry, queries and schema, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_budget.errors import BudgetExceeded, InvalidBudget, LedgerUnavailable
from agent_budget.ledger import ChargeContext, Ledger, ScopedLimit, from_nanos, to_nanos
from agent_budget.ledger import sql as q
from agent_budget.ledger.timeutil import US, now_us, to_us
from agent_budget.tracker import Charge

ALICE = ChargeContext(run_id="r1", thread_id="t1", user_id="alice", tenant_id="acme")
BOB = ChargeContext(run_id="r2", thread_id="t2", user_id="bob", tenant_id="acme")
CAROL = ChargeContext(run_id="r3", thread_id="t3", user_id="carol", tenant_id="other")
DAY = 86400 * US


def tool(usd: str, name: str = "search", **meta: object) -> Charge:
    return Charge("tool", name, Decimal(usd), meta=dict(meta))


def model(usd: str, inp: int = 100, out: int = 20, name: str = "gpt-x") -> Charge:
    return Charge("model", name, Decimal(usd), inp, out, meta={"node": "agent"})


def user_limit(usd: str, key: str = "alice", window: str | None = "1d", **kw: int) -> ScopedLimit:
    return ScopedLimit("user", key, window, usd_nanos=to_nanos(Decimal(usd), up=False), **kw)


@pytest.fixture
def ledger(location: str) -> Ledger:
    led = Ledger.open(location)
    yield led
    led.close()


def test_money_is_exact_integer_nanos() -> None:
    assert to_nanos(Decimal("0.01")) == 10_000_000
    assert to_nanos(Decimal("0.0000000001")) == 1  # sub-nano costs round up, never to $0
    assert from_nanos(10_000_000) == Decimal("0.01")
    assert sum(from_nanos(to_nanos(Decimal("0.1"))) for _ in range(10)) == Decimal("1")


def test_reserve_commit_release_roundtrip(ledger: Ledger) -> None:
    h = ledger.reserve(model("0.002"), ALICE)
    (held,) = [r for r in ledger.rows() if r["id"] == h]
    assert held["outcome"] == "held" and held["reserved_usd"] == Decimal("0.002")
    assert ledger.spend()[0]["held_usd"] == Decimal("0.002")
    ledger.commit(h, model("0.0011", 90, 10), ALICE)
    h2 = ledger.reserve(tool("0.01", tool_call_id="c1", attempt=2), ALICE)
    ledger.release(h2)  # not made: no row left
    h3 = ledger.reserve(tool("0.01", attempt=1), BOB)
    ledger.commit(h3, tool("0.01", outcome="error", attempt=1), BOB)
    rows = list(ledger.rows())
    assert [(r["outcome"], r["kind"], r["usd"]) for r in rows] == [
        ("ok", "model", Decimal("0.0011")),
        ("error", "tool", Decimal("0.01")),
    ]
    assert rows[0]["node"] == "agent" and rows[0]["input_tokens"] == 90
    assert rows[0]["run_id"] == "r1" and rows[0]["tenant_id"] == "acme"
    assert rows[1]["attempt"] == 1 and rows[1]["user_id"] == "bob"
    total = ledger.spend()[0]
    assert total["usd"] == Decimal("0.0111") and total["calls"] == 2 and total["errors"] == 1


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.decimals(min_value=0, max_value=5, places=9), min_size=1, max_size=12))
def test_sums_are_exact_for_any_amounts(ledger: Ledger, amounts: list[Decimal]) -> None:
    before = ledger.spend()[0]["usd"]
    for amount in amounts:
        ledger.commit(ledger.reserve(tool(str(amount)), CAROL), tool(str(amount)), CAROL)
    assert ledger.spend()[0]["usd"] - before == sum(amounts)


def test_a_call_must_fit_every_shared_limit(ledger: Ledger) -> None:
    limits = [
        user_limit("0.05"),
        ScopedLimit("tenant", "acme", "calendar-day", usd_nanos=to_nanos(Decimal("0.08"))),
        ScopedLimit("global", None, None, total_tool_calls=100),
    ]
    for _ in range(5):
        ledger.commit(ledger.reserve(tool("0.01"), ALICE, limits), tool("0.01"), ALICE)
    with pytest.raises(BudgetExceeded) as exc:
        ledger.reserve(tool("0.01"), ALICE, limits)
    assert exc.value.limit == "user.usd" and exc.value.remaining == 0
    assert "user 'alice' (1d)" in str(exc.value) and "0.05 of 0.05 used" in str(exc.value)
    bob_limits = [user_limit("0.05", key="bob"), limits[1]]
    for _ in range(3):
        ledger.commit(ledger.reserve(tool("0.01"), BOB, bob_limits), tool("0.01"), BOB)
    with pytest.raises(BudgetExceeded, match=r"tenant\.usd.*tenant 'acme'"):
        ledger.reserve(tool("0.01"), BOB, bob_limits)  # bob has room, acme does not
    other = [ScopedLimit("tenant", "other", "1d", usd_nanos=to_nanos(Decimal("1")))]
    ledger.reserve(tool("0.01"), CAROL, other)  # another tenant is not affected


def test_count_and_token_limits(ledger: Ledger) -> None:
    limits = [user_limit("10", total_tokens=250, model_calls=2, total_tool_calls=1)]
    ledger.reserve(model("0.001", 100, 20), ALICE, limits)  # a live reservation counts
    ledger.reserve(tool("0"), ALICE, limits)
    with pytest.raises(BudgetExceeded, match=r"user\.total_tool_calls"):
        ledger.reserve(tool("0"), ALICE, limits)
    with pytest.raises(BudgetExceeded, match=r"user\.total_tokens"):
        ledger.reserve(model("0.001", 100, 50), ALICE, limits)
    ledger.reserve(model("0.001", 100, 10), ALICE, limits)
    with pytest.raises(BudgetExceeded, match=r"user\.model_calls"):
        ledger.reserve(model("0.001", 1, 1), ALICE, limits)


def test_rolling_and_calendar_windows(ledger: Ledger) -> None:
    now = now_us()
    ledger.record(tool("0.04"), ALICE, now=now - 2 * DAY)  # outside 1d
    ledger.record(tool("0.04"), ALICE, now=now - DAY // 2)  # inside 1d
    with pytest.raises(BudgetExceeded):
        ledger.reserve(tool("0.02"), ALICE, [user_limit("0.05")], now=now)
    ledger.reserve(tool("0.02"), ALICE, [user_limit("0.11", window="7d")], now=now - 1)
    with pytest.raises(BudgetExceeded):
        ledger.reserve(tool("0.02"), ALICE, [user_limit("0.11", window=None)], now=now)
    midnight = to_us(
        datetime.fromtimestamp(now / US, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    )
    used = ledger.used(user_limit("1", window="calendar-day"), now=now)
    expected = sum(1 for t in (now - 2 * DAY, now - DAY // 2) if t >= midnight)
    assert used.tool_calls == expected + 1  # + today's live reservation


def test_expired_reservations_stop_counting_but_late_commits_still_count(location: str) -> None:
    ledger = Ledger.open(location, reservation_ttl=60)
    ledger.sweep_every = None  # the check alone must not count the stale hold
    now = now_us()
    stale = ledger.reserve(tool("0.04"), ALICE, [user_limit("0.05")], now=now - 61 * US)
    ledger.reserve(tool("0.04"), ALICE, [user_limit("0.05")], now=now)  # the stale hold is gone
    with pytest.raises(BudgetExceeded):
        ledger.reserve(tool("0.04"), ALICE, [user_limit("0.05")], now=now)
    assert ledger.expire(now=now) == 1
    assert ledger.expire(now=now) == 0
    ledger.commit(stale, tool("0.04"), ALICE)  # a slow call, not a dead one: the money counts
    assert ledger.spend()[0]["usd"] == Decimal("0.04")
    ledger.close()


def test_expired_holds_are_marked_by_later_reservations_without_a_command(
    location: str,
) -> None:
    ledger = Ledger.open(location, reservation_ttl=60)
    now = now_us()
    stale = ledger.reserve(tool("0.04"), ALICE, now=now - 61 * US)  # sweeps: nothing due yet
    live = ledger.reserve(tool("0.01"), ALICE, [user_limit("0.05")], now=now - 30 * US)
    assert {r["id"]: r["outcome"] for r in ledger.rows()} == {stale: "held", live: "held"}
    fresh = ledger.reserve(tool("0.04"), ALICE, [user_limit("0.05")], now=now)  # sweeps again
    outcomes = {r["id"]: r["outcome"] for r in ledger.rows()}
    assert outcomes == {stale: "expired", live: "held", fresh: "held"}
    assert ledger.verify() == []  # marked through the totals too
    ledger.close()


def test_spend_groups_and_filters(ledger: Ledger) -> None:
    now = now_us()
    day0 = now - 3 * DAY
    ledger.record(model("0.5", name="big"), ALICE, now=day0)
    ledger.record(model("0.25", name="small"), BOB, now=now - 10)
    ledger.record(tool("0.01", name="search"), BOB, now=now - 5)
    ledger.record(tool("0.01", name="search"), BOB, "refused", detail="user.usd", now=now - 4)
    by_user = ledger.spend(by="user")
    assert [(r["user"], r["usd"], r["calls"], r["refused"]) for r in by_user] == [
        ("alice", Decimal("0.50"), 1, 0),
        ("bob", Decimal("0.26"), 2, 1),
    ]
    assert [(r["model"], r["usd"]) for r in ledger.spend(by="model")] == [
        ("big", Decimal("0.50")),
        ("small", Decimal("0.25")),
    ]
    assert [(r["tool"], r["calls"], r["refused"]) for r in ledger.spend(by="tool")] == [
        ("search", 1, 1)
    ]
    days = ledger.spend(by="day")
    assert [d["day"] for d in days] == sorted(d["day"] for d in days) and len(days) == 2
    assert ledger.spend(by="user", since="1d")[0]["user"] == "bob"
    assert ledger.spend(since=datetime.now(UTC) - timedelta(days=1))[0]["usd"] == Decimal("0.26")
    assert ledger.spend(user="alice")[0]["usd"] == Decimal("0.50")
    assert ledger.spend(by=["tenant", "kind"])[0] == {
        "tenant": "acme", "kind": "model", "usd": Decimal("0.75"), "calls": 2,
        "input_tokens": 200, "output_tokens": 40, "errors": 0, "refused": 0,
        "held_usd": Decimal("0.00"),
    }  # fmt: skip
    assert ledger.spend(since="1h", until="30m") == [ledger.spend(since="1h", until="30m")[0]]
    with pytest.raises(ValueError, match="group by one of"):
        ledger.spend(by="colour")
    with pytest.raises(ValueError, match="since: 'last tuesday' is not a time"):
        ledger.spend(since="last tuesday")


def test_rows_and_prune(ledger: Ledger) -> None:
    now = now_us()
    ledger.record(tool("0.01"), ALICE, now=now - 40 * DAY)
    ledger.record(tool("0.02"), ALICE, now=now - 20 * DAY)
    stale = ledger.reserve(tool("0.03"), ALICE, now=now - 31 * DAY)  # long expired
    assert [r["usd"] for r in ledger.rows(since="30d")] == [Decimal("0.02")]
    removed = ledger.prune("30d")
    assert removed == 2  # the 40-day row and the long-expired 31-day reservation
    assert [r["usd"] for r in ledger.rows()] == [Decimal("0.02")]
    assert stale not in [r["id"] for r in ledger.rows()]
    fresh = ledger.reserve(tool("0.05"), ALICE)
    assert ledger.prune(datetime.now(UTC) + timedelta(days=1)) == 1  # the live hold is kept
    assert [r["id"] for r in ledger.rows()] == [fresh]


def test_schema_is_versioned_and_migrated_once(location: str) -> None:
    first = Ledger.open(location)
    assert first.schema_version() == q.SCHEMA_VERSION
    first.record(tool("0.01"), ALICE)
    first.close()
    again = Ledger.open(location)  # reopening does not re-create or lose anything
    assert again.schema_version() == q.SCHEMA_VERSION and again.count() == 1
    with again._autocommit() as run:
        run(again.sql["set_version"], ("99",))
    again.close()
    with pytest.raises(LedgerUnavailable, match="schema version 99, newer than"):
        Ledger.open(location)


def test_open_reads_the_reservation_ttl_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_BUDGET_LEDGER_TTL", "42")
    assert Ledger.open(tmp_path / "a.db").reservation_ttl == 42.0
    assert Ledger.open(tmp_path / "b.db", reservation_ttl=7).reservation_ttl == 7.0
    monkeypatch.setenv("AGENT_BUDGET_LEDGER_TTL", "soon")
    with pytest.raises(InvalidBudget, match="AGENT_BUDGET_LEDGER_TTL"):
        Ledger.open(tmp_path / "c.db")


def test_total_is_one_dict(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "t.db")
    ctx = ChargeContext(run_id="r1", user_id="alice")
    ledger.record(Charge("tool", "search", Decimal("0.01")), ctx)
    ledger.record(Charge("tool", "search", Decimal("0.02")), ChargeContext(user_id="bob"))
    assert ledger.total(user="alice")["usd"] == Decimal("0.01")
    assert ledger.total()["calls"] == 2


@pytest.mark.postgres
def test_postgres_waits_for_the_flush_by_default_and_can_opt_out(pg_url: str) -> None:
    """Every acknowledged charge survives a database-server crash unless the URL opts out."""
    with Ledger.open(pg_url) as ledger:
        assert ledger._conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"  # type: ignore[attr-defined]
    with Ledger.open(pg_url + "&synchronous_commit=off") as ledger:
        assert ledger._conn.execute("SHOW synchronous_commit").fetchone()[0] == "off"  # type: ignore[attr-defined]
    with pytest.raises(InvalidBudget, match="synchronous_commit='maybe': use on or off"):
        Ledger.open(pg_url + "&synchronous_commit=maybe")
