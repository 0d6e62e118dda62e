"""attach_ledger's configuration and context, and clear errors for every way a ledger can
be unusable (a run must refuse to spend rather than go unrecorded)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from agent_budget.budget import Budget
from agent_budget.errors import BudgetExceeded, InvalidBudget, LedgerUnavailable
from agent_budget.ledger import Ledger, attach_ledger, context_from_config
from agent_budget.ledger.sqlite import SQLiteLedger
from agent_budget.tracker import BudgetTracker, Charge

USER = {"configurable": {"user_id": "alice", "thread_id": "t1"}}


def test_no_ledger_configured_is_a_cheap_no_op() -> None:
    code = (
        "import sys\n"
        "from agent_budget.budget import Budget\n"
        "from agent_budget.tracker import BudgetTracker\n"
        "from agent_budget.ledger import attach_ledger\n"
        "t = BudgetTracker(Budget(usd=1))\n"
        "assert attach_ledger(t, {'configurable': {'user_id': 'u'}}) is None\n"
        "assert t.shared == []\n"
        "print(sorted(m for m in ('sqlite_utils', 'psycopg', 'matplotlib') if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_BUDGET_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_environment_names_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_BUDGET_LEDGER", str(tmp_path / "env.db"))
    tracker = BudgetTracker(Budget(prices={"search": "0.01"}))
    conf = {
        "configurable": {"thread_id": "t9"},
        "metadata": {"user_id": "u7", "tenant_id": 42},
        "run_id": "R",
    }
    binding = attach_ledger(tracker, conf)
    assert binding is not None and attach_ledger(tracker, conf) is binding  # once per tracker
    tracker.reserve(tracker.tool_charge("search")).commit()
    (row,) = Ledger.open(tmp_path / "env.db").rows()
    assert (row["run_id"], row["thread_id"], row["user_id"], row["tenant_id"]) == (
        "R",
        "t9",
        "u7",
        "42",
    )


def test_context_prefers_configurable_and_makes_a_run_id() -> None:
    ctx = context_from_config({"configurable": {"user_id": "a"}, "metadata": {"user_id": "b"}})
    assert ctx.user_id == "a" and ctx.run_id and ctx.thread_id is None


def test_shared_limits_need_a_ledger_and_an_id(tmp_path: Path) -> None:
    with pytest.raises(LedgerUnavailable, match=r"user-scoped limits.*AGENT_BUDGET_LEDGER"):
        attach_ledger(BudgetTracker(Budget(scope="user", usd=1)), USER)
    shared = Budget(ledger=str(tmp_path / "s.db"), shared=[{"scope": "tenant", "usd": 5}])
    with pytest.raises(InvalidBudget, match="needs the run's tenant"):
        attach_ledger(BudgetTracker(shared), USER)


def test_refusals_are_recorded_whichever_limit_refuses(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    budget = Budget(
        ledger=str(db), prices={"search": "0.01"}, tool_calls={"search": 3},
        shared=[{"scope": "user", "window": "1d", "usd": "0.02"}],
    )  # fmt: skip
    tracker = BudgetTracker(budget)
    binding = attach_ledger(tracker, USER)
    assert binding is not None
    for _ in range(2):
        tracker.reserve(tracker.tool_charge("search")).commit()
    with pytest.raises(BudgetExceeded, match=r"user\.usd"):
        tracker.reserve(tracker.tool_charge("search"))
    assert tracker.held.usd == 0  # the tracker's own hold was given back
    other = BudgetTracker(budget.model_copy(update={"shared": []}))
    attach_ledger(other, USER)
    for _ in range(3):
        other.reserve(other.tool_charge("search")).commit()
    with pytest.raises(BudgetExceeded, match=r"tool_calls\.search"):
        other.reserve(other.tool_charge("search"))
    refused = [r["detail"] for r in Ledger.open(db).rows() if r["outcome"] == "refused"]
    assert refused == ["user.usd", "thread budget"]
    (left,) = binding.remaining()
    assert left["usd_left"] == Decimal("0.00") and left["usd_used"] == Decimal("0.05")


def test_corrupt_ledger_file(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    db.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(LedgerUnavailable, match=r"not a usable SQLite database.*Move it aside"):
        Ledger.open(db)


def test_locked_ledger_file(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    ledger = SQLiteLedger(db, busy_timeout=0.2)
    tracker = BudgetTracker(Budget(prices={"search": "0.01"}))
    from agent_budget.ledger import ChargeContext, LedgerBudget

    tracker.shared.append(LedgerBudget(ledger, ChargeContext(user_id="a"), []))
    hog = sqlite3.connect(db, isolation_level=None)
    hog.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LedgerUnavailable, match=r"is locked: another process .* 0\.2s"):
            tracker.reserve(tracker.tool_charge("search"))
        assert tracker.held.usd == 0 and tracker.spent.usd == 0  # refused, nothing leaked
        with pytest.raises(LedgerUnavailable, match="is locked"):
            SQLiteLedger(tmp_path / "spend.db", busy_timeout=0.2).record(
                Charge("tool", "x"), ChargeContext()
            )
    finally:
        hog.execute("ROLLBACK")
        hog.close()
    tracker.reserve(tracker.tool_charge("search")).commit()  # and it recovers once free


def test_read_only_locations(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes through file modes; use a read-only filesystem
        with pytest.raises(LedgerUnavailable, match="cannot create the ledger's directory"):
            Ledger.open("/proc/agent-budget/spend.db")
    else:
        db = tmp_path / "spend.db"
        Ledger.open(db).close()
        db.chmod(0o444)
        with pytest.raises(LedgerUnavailable, match="cannot be written"):
            Ledger.open(db)
    with pytest.raises(LedgerUnavailable, match="is a directory"):
        Ledger.open(tmp_path)


def test_unreachable_database_url() -> None:
    url = "postgresql://agent:s3cret@127.0.0.1:1/ledger"
    with pytest.raises(LedgerUnavailable, match="cannot reach the ledger database") as exc:
        Ledger.open(url)
    assert "s3cret" not in str(exc.value) and "agent:***@127.0.0.1:1" in str(exc.value)
    with pytest.raises(InvalidBudget, match="ledger schema"):
        Ledger.open("postgresql://127.0.0.1:1/x?schema=bad-name;drop")


def test_budget_ledger_settings_are_validated() -> None:
    with pytest.raises(InvalidBudget, match="unknown ledger URL scheme 'mysql'"):
        Budget.from_dict({"ledger": "mysql://h/db"})
    with pytest.raises(InvalidBudget, match="window applies to scope 'user'"):
        Budget.from_dict({"usd": 1, "window": "1d"})
    with pytest.raises(
        InvalidBudget, match=r"shared\.0\.usdd: unknown setting; did you mean 'usd'"
    ):
        Budget.from_dict({"shared": [{"scope": "user", "usdd": 1}]})
    with pytest.raises(InvalidBudget, match="needs at least one of usd"):
        Budget.from_dict({"shared": [{"scope": "tenant", "window": "calendar-month"}]})
    with pytest.raises(InvalidBudget, match="'fortnight' is not a window"):
        Budget.from_dict({"scope": "user", "usd": 1, "window": "fortnight"})
    env = {
        "AGENT_BUDGET_SCOPE": "user",
        "AGENT_BUDGET_WINDOW": "Day",
        "AGENT_BUDGET_USD": "2",
        "AGENT_BUDGET_LEDGER": "x.db",  # where the ledger is, read by attach_ledger
        "AGENT_BUDGET_LEDGER_TTL": "60",
    }
    b = Budget.from_env(env)
    assert (b.scope, b.window, b.usd, b.ledger) == ("user", "calendar-day", Decimal(2), None)
