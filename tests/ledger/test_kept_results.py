"""Finished tool results kept in the ledger (`agent_budget.ledger.results`): a step run by
one LangGraph task, interrupted and resumed in a new process, replays its finished calls
from the ledger on both backends; a result too large to keep runs and is charged again;
a version-3 ledger gains the table in place; old results go."""

from __future__ import annotations

import collections
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from langgraph.types import Command
from resume_child import run_phase

from agent_budget.ledger import ChargeContext, Ledger
from agent_budget.ledger import sql as q
from agent_budget.ledger.results import decode, encode, kept_keys, kept_result, prune_kept
from agent_budget.ledger.timeutil import US, now_us
from agent_budget.once import KeepResult
from agent_budget.tracker import Charge

TESTS = Path(__file__).parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


_phase = run_phase  # one phase of resume_child.py in a new process


def _resumed(where: Path, style: str, ledger: str) -> tuple[collections.Counter[str], ...]:
    """Start (interrupted by ``approve``), resume in a new process; bodies run and ok
    rows per tool call id."""
    assert _phase("start", where, style, ledger) == "interrupted"
    assert _phase("resume", where, style, ledger).startswith("final")
    runs = collections.Counter((where / "runs.txt").read_text().splitlines())
    with Ledger.open(ledger) as led:
        rows = list(led.rows())
    ok = collections.Counter(
        str(r["call_key"]).split(":", 1)[1].rsplit("#", 1)[0]
        for r in rows
        if r["kind"] == "tool" and r["outcome"] == "ok"
    )
    return runs, ok


def test_a_whole_step_resumed_in_a_new_process_replays_from_the_ledger(
    location: str, tmp_path: Path
) -> None:
    """The with_fallbacks scenario of test_found_bugs on SQLite and PostgreSQL."""
    runs, ok = _resumed(tmp_path, "fallbacks", location)
    assert runs == {"search:a": 1, "search:b": 1, "approve": 2}
    assert ok == {"call_1_0": 1, "call_1_1": 1, "call_1_2": 1}


def test_a_result_too_large_to_keep_runs_and_is_charged_again(tmp_path: Path) -> None:
    """Over `MAX_BYTES` the result is not kept: the old behaviour for that call, the search
    bodies run again on resume in a new process and are charged twice."""
    runs, ok = _resumed(tmp_path, "fallbacks_big", str(tmp_path / "spend.db"))
    assert runs == {"search:a": 2, "search:b": 2, "approve": 2}
    assert ok == {"call_1_0": 2, "call_1_1": 2, "call_1_2": 1}


# --- the store itself ----------------------------------------------------------------------


def _commit_kept(led: Ledger, key: str, out: object, *, now: int | None = None) -> int:
    ctx = ChargeContext("run-1", "thread-1")
    charge = Charge("tool", "search", Decimal("0.01"), key=key, meta={"attempt": 1})
    handle = led.reserve(charge, ctx, now=now)
    body = encode(out)
    assert body is not None
    led.commit(handle, charge, ctx, keep=KeepResult("run-1", body), now=now)
    return handle


def test_a_kept_result_reads_back_with_its_charge(location: str) -> None:
    msg = ToolMessage("found a", tool_call_id="call_1", name="search", artifact={"n": 1})
    with Ledger.open(location) as led:
        _commit_kept(led, "run-1:call_1#1", msg)
        assert kept_keys(led, "run-1") == {"run-1:call_1#1"}
        assert kept_keys(led, "run-2") == frozenset()
        kept = kept_result(led, "run-1", "run-1:call_1#1")
        assert kept is not None and kept.out == msg
        assert (kept.charge.name, kept.charge.usd, kept.charge.key) == (
            "search",
            Decimal("0.01"),
            "run-1:call_1#1",
        )
        # an error commit keeps nothing, even when asked to
        ctx = ChargeContext("run-1")
        bad = Charge("tool", "search", Decimal("0.01"), key="run-1:call_2#1",
                     meta={"outcome": "error"})  # fmt: skip
        h = led.reserve(bad, ctx)
        led.commit(h, bad, ctx, keep=KeepResult("run-1", encode(msg) or ""))
        assert kept_result(led, "run-1", "run-1:call_2#1") is None


def test_what_cannot_be_kept_is_not() -> None:
    assert encode(Command(update={"x": 1})) is None  # not a LangChain message
    assert encode("plain text") is None
    assert encode(ToolMessage("x" * (300 * 1024), tool_call_id="c")) is None  # over 256 KB
    msg = ToolMessage("ok", tool_call_id="c", artifact=object())  # not JSON
    assert encode(msg) is None
    small = ToolMessage("ok", tool_call_id="c")
    assert decode(encode(small) or "") == small


def test_old_results_are_swept_and_pruned(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    now = now_us()
    with Ledger.open(db) as led:
        led.sweep_every = None
        old = now - int(8 * 86400 * US)  # older than `keep_results` (7 days)
        _commit_kept(led, "run-1:old#1", ToolMessage("old", tool_call_id="old"), now=old)
        _commit_kept(led, "run-1:new#1", ToolMessage("new", tool_call_id="new"), now=now)
        assert kept_keys(led, "run-1") == {"run-1:old#1", "run-1:new#1"}
    with Ledger.open(db) as led:  # a process's first reservation sweeps
        led.reserve(Charge("tool", "search"), ChargeContext("run-2"))
        assert kept_keys(led, "run-1") == {"run-1:new#1"}
        assert prune_kept(led, now - int(led.keep_results * US)) == 0
        led.prune(before=(now + US) / US)  # every settled charge: their results go with them
        assert kept_keys(led, "run-1") == frozenset()


# --- migration from schema version 3 -------------------------------------------------------


def test_v3_ledger_file_gains_the_results_table_in_place(tmp_path: Path) -> None:
    """A ledger written by the last schema-3 release (`build_v1_ledger.py v3`) opens as
    version 4 with every row, total and id as it was, and keeps results from then on."""
    import json

    db = tmp_path / "spend.db"
    db.write_bytes((FIXTURES / "v3_ledger.db").read_bytes())
    expected = json.loads((FIXTURES / "v3_expected.json").read_text())
    with Ledger.open(db) as led:
        assert led.schema_version() == q.SCHEMA_VERSION == 4
        assert led.count() == expected["count"]
        rows = [{k: str(v) if isinstance(v, Decimal) else v for k, v in r.items()}
                for r in led.rows()]  # fmt: skip
        assert rows == expected["rows"]
        assert led.verify() == []
        handle = _commit_kept(led, "run-1:c#1", ToolMessage("x", tool_call_id="c"))
        assert handle > max(r["id"] for r in expected["rows"])
        assert kept_keys(led, "run-1") == {"run-1:c#1"}
    conn = sqlite3.connect(db)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert tables == {"charges", "totals", "ledger_meta", "results"}


@pytest.mark.postgres
def test_v3_postgres_schema_gains_the_results_table_and_the_new_settle(pg_url: str) -> None:
    """A version-3 PostgreSQL schema (today's, with the results table dropped, version 3
    and schema 3's two-argument-shorter ``settle``): opening it migrates in place."""
    import psycopg

    from agent_budget.ledger.postgres import _SETTLE_TYPES, split_schema

    url, schema = split_schema(pg_url)
    ctx = ChargeContext("run-0")
    with Ledger.open(pg_url) as led:
        for _ in range(3):
            led.record(Charge("tool", "search", Decimal("0.01")), ctx)
    args = ", ".join(f"a{i} {t}" for i, t in enumerate(_SETTLE_TYPES))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP TABLE "{schema}".results')
        conn.execute(f'DROP FUNCTION "{schema}".settle')
        conn.execute(f'CREATE FUNCTION "{schema}".settle({args}) RETURNS VOID '
                     "LANGUAGE sql AS 'SELECT 1'")  # fmt: skip
        conn.execute(f"UPDATE \"{schema}\".ledger_meta SET value = '3'")
    with Ledger.open(pg_url) as led:
        assert led.schema_version() == 4 and led.count() == 3 and led.verify() == []
        _commit_kept(led, "run-1:c#1", ToolMessage("x", tool_call_id="c"))
        assert kept_keys(led, "run-1") == {"run-1:c#1"}
    with psycopg.connect(url, autocommit=True) as conn:
        n = conn.execute(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace "
            "WHERE s.nspname = %s AND p.proname = 'settle'",
            (schema,),
        ).fetchone()
    assert n is not None and n[0] == 1  # schema 3's settle is gone, not left as an overload


# --- the run core ---------------------------------------------------------------------------


def test_a_sub_agent_replays_through_its_parents_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child run's charges reach the ledger through its parent (`ParentLink`): its results
    are kept there too, and a new process (a fresh in-memory table) replays them."""
    from agent_budget import Budget
    from agent_budget import run as run_core
    from agent_budget.ledger import attach_ledger
    from agent_budget.once import Flights
    from agent_budget.run import BudgetRun, ToolHooks
    from agent_budget.tracker import BudgetTracker

    budget = Budget(usd=1, prices={"search": "0.01"}, ledger=str(tmp_path / "spend.db"))
    call = {"id": "c1", "name": "search", "args": {"q": "a"}}
    hooks: ToolHooks[object] = ToolHooks(refuse=lambda c, e: e, finish=lambda out: out)
    bodies: list[str] = []

    def search() -> ToolMessage:
        bodies.append("search")
        return ToolMessage("found a", tool_call_id="c1", name="search")

    def child_run() -> BudgetRun:
        parent = BudgetTracker(budget)
        attach_ledger(parent, {"configurable": {"thread_id": "t"}}, run_id="p")
        kid = parent.child("kid", budget.child("kid"), reuse=True)
        return BudgetRun(kid, run_id="p:call_9#1/kid")

    for _process in range(2):
        monkeypatch.setattr(run_core, "FLIGHTS", Flights())  # what a new process starts with
        run = child_run()
        out = run.guard_tool_call(call, search, hooks)
        assert isinstance(out, ToolMessage) and out.content == "found a"
        assert run.tracker.spent.usd == Decimal("0.01")  # on the books, replayed or not
    assert bodies == ["search"]
    with Ledger.open(tmp_path / "spend.db") as led:
        ok = [r for r in led.rows() if r["kind"] == "tool" and r["outcome"] == "ok"]
    assert [r["call_key"] for r in ok] == ["p:call_9#1/kid:c1#1"]
