"""Running totals: they always equal a sum over the rows (any sequence of reserve / commit /
release / expire / prune across window edges), the v1 -> v2 migration keeps every number,
tampering is found and repaired, and a window the buckets cannot serve is refused."""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from typer.testing import CliRunner

from agent_budget.budget import Budget, SharedLimit
from agent_budget.cli import app
from agent_budget.errors import BudgetExceeded, InvalidBudget, LedgerUnavailable
from agent_budget.ledger import ChargeContext, Ledger, ScopedLimit, to_nanos
from agent_budget.ledger import sql as q
from agent_budget.ledger.schema import COLUMNS, V1_COLUMNS
from agent_budget.ledger.timeutil import US, now_us, window_start
from agent_budget.tracker import Charge

FIXTURES = Path(__file__).parent / "fixtures"
MINUTE, HOUR, DAY = 60 * US, 3600 * US, 86400 * US
WINDOWS = [None, "1m", "30m", "1h", "24h", "7d", "calendar-day", "calendar-month"]


def counted_now(ledger: Ledger, scope: str, key: str | None, window: str | None, now: int,
                *, exact: bool = False) -> tuple[int, int, int, int]:  # fmt: skip
    """What counts against a limit, summed over the rows themselves. ``exact``: from the
    window's true edge (the v1 semantics); else from where its buckets start."""
    start = window_start(window, now) if exact else q.bucket_ranges(window, now)[0]
    column = {"user": "user_id", "tenant": "tenant_id", "global": "''"}[scope]
    sql = ledger.sql.fmt(
        "SELECT COALESCE(SUM(usd_nanos), 0), COALESCE(SUM(input_tokens + output_tokens), 0), "
        "COALESCE(SUM(CASE WHEN kind = 'model' THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN kind = 'tool' THEN 1 ELSE 0 END), 0) FROM {charges} "
        f"WHERE ts >= ? AND {column} = ? AND (outcome IN ('ok', 'error') "
        "OR (outcome = 'held' AND expires_ts > ?))"
    )
    with ledger._autocommit() as run:
        row = run(sql, (start, "" if scope == "global" else key, now)).fetchone()
    return tuple(int(v) for v in row)  # type: ignore[return-value]


def slot(ledger: Ledger) -> int:
    """The totals slot this session writes (always 0 on SQLite)."""
    from agent_budget.ledger.schema import DIALECT_TOKENS

    with ledger._autocommit() as run:
        return int(run(f"SELECT {DIALECT_TOKENS[ledger.sql.dialect]['slot']}", ()).fetchone()[0])


def used_tuple(ledger: Ledger, scope: str, key: str | None, window: str | None, now: int) -> Any:
    u = ledger.used(ScopedLimit(scope, key, window, usd_nanos=1), now=now)
    return (u.usd_nanos, u.tokens, u.model_calls, u.tool_calls)


# --- the state machine ---------------------------------------------------------------------

USERS = ["ann", "ben", None]
TENANTS = ["acme", None]


class TotalsMachine(RuleBasedStateMachine):
    """Random reserve / commit / release / record / expire / prune and clock jumps across
    minute, hour and day edges; after every step the totals equal a sum over the rows."""

    location: str = ""

    @initialize()
    def open(self) -> None:
        location = self.location()  # type: ignore[operator]
        self.ledger = Ledger.open(location, reservation_ttl=90)
        # A second session writing the same ledger: on PostgreSQL it writes another slot of
        # every bucket (a hold reserved by one may be settled by the other).
        self.ledgers = [self.ledger]
        for _ in range(16):
            other = Ledger.open(location, reservation_ttl=90)
            if (
                other.sql.dialect == "sqlite"
                or len({slot(led) for led in (*self.ledgers, other)}) == 2
            ):
                self.ledgers.append(other)
                break
            other.close()
        for led in self.ledgers:
            led.sweep_every = None  # expiry is a rule of its own here
        self.now = 1_796_000_000 * US + 59 * MINUTE  # a minute before an hour's edge
        self.held: list[tuple[int, ChargeContext, Charge]] = []

    def teardown(self) -> None:
        if hasattr(self, "ledger"):
            if hasattr(self.ledger, "drop"):
                self.ledger.drop()
            for led in self.ledgers:
                led.close()

    def pick(self, which: int) -> Ledger:
        return self.ledgers[which % len(self.ledgers)]

    @rule(
        user=st.sampled_from(USERS),
        tenant=st.sampled_from(TENANTS),
        model=st.booleans(),
        cents=st.integers(0, 40),
        window=st.sampled_from(WINDOWS),
        cap=st.none() | st.integers(0, 100),
        which=st.integers(0, 1),
    )
    def reserve(self, user: str | None, tenant: str | None, model: bool, cents: int,
                window: str | None, cap: int | None, which: int) -> None:  # fmt: skip
        ctx = ChargeContext("r", "t", user, tenant)
        charge = (
            Charge("model", "m", Decimal(cents) / 100, 100 * cents, 10)
            if model
            else Charge("tool", "search", Decimal(cents) / 100)
        )
        limits = []
        if cap is not None:
            scope, key = ("user", user) if user else ("global", None)
            usd = to_nanos(Decimal(cap) / 100)
            limits.append(ScopedLimit(scope, key, window, usd_nanos=usd, model_calls=cap // 10))
        try:
            handle = self.pick(which).reserve(charge, ctx, limits, now=self.now)
        except BudgetExceeded:
            return
        self.held.append((handle, ctx, charge))

    @precondition(lambda self: self.held)
    @rule(
        i=st.integers(0, 100),
        factor=st.sampled_from(["0", "0.5", "1", "1.5"]),
        error=st.booleans(),
        which=st.integers(0, 1),
    )
    def commit(self, i: int, factor: str, error: bool, which: int) -> None:
        handle, ctx, c = self.held.pop(i % len(self.held))
        meta = {"outcome": "error"} if error else {}
        actual = Charge(c.kind, c.name, c.usd * Decimal(factor), c.input_tokens,
                        c.output_tokens // 2, meta=meta, price_source="test")  # fmt: skip
        self.pick(which).commit(handle, actual, ctx, now=self.now)

    @precondition(lambda self: self.held)
    @rule(i=st.integers(0, 100))
    def release(self, i: int) -> None:
        handle, _, _ = self.held.pop(i % len(self.held))
        self.ledger.release(handle)

    @rule(user=st.sampled_from(USERS), outcome=st.sampled_from(["ok", "error", "refused"]),
          cents=st.integers(0, 30), back=st.integers(0, 3 * DAY))  # fmt: skip
    def record(self, user: str | None, outcome: str, cents: int, back: int) -> None:
        ctx = ChargeContext("r", "t", user, "acme")
        self.ledger.record(Charge("tool", "fetch", Decimal(cents) / 100), ctx, outcome,
                           now=self.now - back)  # fmt: skip

    @rule(step=st.sampled_from(["1us", "minute-edge", "just-before-edge", "hour-edge",
                                "day-edge", "ttl", "17s"]))  # fmt: skip
    def advance(self, step: str) -> None:
        t = self.now
        self.now = {
            "1us": t + 1,
            "minute-edge": t - t % MINUTE + MINUTE,
            "just-before-edge": t - t % MINUTE + MINUTE - 1,
            "hour-edge": t - t % HOUR + HOUR,
            "day-edge": t - t % DAY + DAY,
            "ttl": t + 91 * US,
            "17s": t + 17 * US,
        }[step]

    @rule()
    def expire(self) -> None:
        self.ledger.expire(now=self.now)

    @rule(back=st.integers(0, 2 * DAY))
    def prune(self, back: int) -> None:
        from agent_budget.ledger import maintenance

        maintenance.prune(self.ledger, self.now - back, self.now)

    @invariant()
    def totals_equal_a_sum_over_the_rows(self) -> None:
        if not hasattr(self, "ledger"):
            return
        assert self.ledger.verify() == []
        for scope, key in [("user", "ann"), ("user", "ben"), ("tenant", "acme"), ("global", None)]:
            for window in WINDOWS:
                used = used_tuple(self.ledger, scope, key, window, self.now)
                assert used == counted_now(self.ledger, scope, key, window, self.now)
                exact = counted_now(self.ledger, scope, key, window, self.now, exact=True)
                assert all(u >= e for u, e in zip(used, exact, strict=True))  # never less


def test_totals_state_machine_sqlite(tmp_path_factory: pytest.TempPathFactory) -> None:
    class Machine(TotalsMachine):
        def location(self) -> str:  # type: ignore[override]
            return str(tmp_path_factory.mktemp("sm") / "spend.db")

    run_state_machine_as_test(Machine, settings=settings(
        max_examples=25, stateful_step_count=25, deadline=None,
        suppress_health_check=list(HealthCheck)))  # fmt: skip


@pytest.mark.postgres
def test_totals_state_machine_postgres(pg_server: str) -> None:
    class Machine(TotalsMachine):
        def location(self) -> str:  # type: ignore[override]
            return f"{pg_server}?schema=ab_sm_{uuid.uuid4().hex[:12]}"

    run_state_machine_as_test(Machine, settings=settings(
        max_examples=8, stateful_step_count=20, deadline=None,
        suppress_health_check=list(HealthCheck)))  # fmt: skip


# --- migration from schema version 1 ---------------------------------------------------------


def _check_migrated(ledger: Ledger, version: int = 1) -> None:
    expected = json.loads((FIXTURES / f"v{version}_expected.json").read_text())
    assert expected["version"] == version and ledger.schema_version() == q.SCHEMA_VERSION
    assert ledger.count() == expected["count"]
    rows = [
        {
            k: str(v) if isinstance(v, Decimal) else v
            for k, v in r.items()
            if k != "price_source" or version > 1
        }
        for r in ledger.rows()
    ]
    assert rows == expected["rows"]  # every row, id and timestamp as it was
    if version == 1:
        assert all(r["price_source"] is None for r in ledger.rows())
    now = expected["now"]
    for e in expected["used"]:
        got = used_tuple(ledger, e["scope"], e["key"], e["window"], now)
        want = (e["usd_nanos"], e["tokens"], e["model_calls"], e["tool_calls"])
        assert got == want, e
    assert ledger.verify() == []
    # and it keeps working: ids continue after the copied ones
    new = ledger.record(Charge("tool", "search", Decimal("0.01")), ChargeContext(user_id="x"))
    assert new > max(r["id"] for r in expected["rows"])


def test_v1_ledger_file_migrates_in_place_with_exact_totals(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    shutil.copy(FIXTURES / "v1_ledger.db", db)
    with Ledger.open(db) as ledger:
        _check_migrated(ledger)
    with Ledger.open(db) as again:  # migrated once
        assert again.schema_version() == q.SCHEMA_VERSION
        assert again.verify() == []
    conn = sqlite3.connect(db)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"charges", "totals", "ledger_meta", "results"}
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):  # v2's rules hold in SQLite too
        conn.execute("UPDATE charges SET usd_nanos = -1 WHERE id = (SELECT MIN(id) FROM charges)")
    conn.close()


def test_v2_ledger_file_migrates_to_slotted_totals_exactly(tmp_path: Path) -> None:
    """A ledger written by the last schema-2 release (totals without slots) opens, rebuilds
    its totals in the slotted table and reports every number it reported before."""
    db = tmp_path / "spend.db"
    shutil.copy(FIXTURES / "v2_ledger.db", db)
    with Ledger.open(db) as ledger:
        _check_migrated(ledger, version=2)
    conn = sqlite3.connect(db)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(totals)")]
    assert "slot" in columns
    conn.close()


V1_POSTGRES = """CREATE TABLE "{s}".charges (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ts BIGINT NOT NULL, settled_ts BIGINT,
    expires_ts BIGINT,
    outcome TEXT NOT NULL CHECK (outcome IN ('held','ok','error','refused','expired')),
    run_id TEXT, thread_id TEXT, user_id TEXT, tenant_id TEXT, node TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('model', 'tool')), name TEXT NOT NULL,
    input_tokens BIGINT NOT NULL DEFAULT 0, output_tokens BIGINT NOT NULL DEFAULT 0,
    usd_nanos BIGINT NOT NULL, reserved_nanos BIGINT,
    attempt INTEGER, call_key TEXT, worker TEXT, detail TEXT)"""


@pytest.mark.postgres
def test_v1_postgres_schema_migrates_in_place_with_exact_totals(pg_url: str) -> None:
    """The same rows in a version-1 PostgreSQL schema (its DDL as that release wrote it)."""
    import psycopg

    from agent_budget.ledger.postgres import split_schema

    url, schema = split_schema(pg_url)
    src = sqlite3.connect(f"file:{FIXTURES / 'v1_ledger.db'}?mode=ro", uri=True)
    rows = src.execute(f"SELECT id, {', '.join(V1_COLUMNS)} FROM charges ORDER BY id").fetchall()
    src.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(V1_POSTGRES.format(s=schema))
        conn.execute(f'CREATE TABLE "{schema}".ledger_meta (key TEXT PRIMARY KEY, value TEXT)')
        conn.execute(f"INSERT INTO \"{schema}\".ledger_meta VALUES ('schema_version', '1')")
        cols = ", ".join(V1_COLUMNS)
        with conn.cursor().copy(f'COPY "{schema}".charges (id, {cols}) FROM STDIN') as copy:
            for r in rows:
                copy.write_row(r)
    with Ledger.open(pg_url) as ledger:
        _check_migrated(ledger)


# --- bad input -------------------------------------------------------------------------------


def test_tampered_totals_are_found_and_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    ctx = ChargeContext("r", "t", "ann", "acme")
    with Ledger.open(db) as ledger:
        for _ in range(3):
            cent = Charge("tool", "s", Decimal("0.01"))
            ledger.commit(ledger.reserve(cent, ctx), cent, ctx)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE totals SET usd_nanos = usd_nanos - 5 WHERE scope = 'user' AND span = 0")
    conn.commit()
    conn.close()
    runner = CliRunner()
    out = runner.invoke(app, ["ledger", "verify", "--ledger", str(db)], env={"COLUMNS": "160"})
    assert out.exit_code == 1, out.output
    assert "1 totals differ" in out.output and "29999995" in out.output and "30000000" in out.output
    with Ledger.open(db) as ledger:  # a limit would have read the tampered total
        assert used_tuple(ledger, "user", "ann", None, now_us())[0] == 30_000_000 - 5
    out = runner.invoke(app, ["ledger", "verify", "--repair", "--ledger", str(db)])
    assert out.exit_code == 0 and "repaired" in out.output
    out = runner.invoke(app, ["ledger", "verify", "--ledger", str(db)], env={"COLUMNS": "300"})
    assert out.exit_code == 0 and "match its rows" in out.output
    with Ledger.open(db) as ledger:
        assert used_tuple(ledger, "user", "ann", None, now_us())[0] == 30_000_000


def test_a_window_the_buckets_cannot_serve_is_refused(location: str) -> None:
    with pytest.raises(InvalidBudget, match=r"shared\.0\.window.*whole number of minutes.*'2m'"):
        Budget.from_dict({"shared": [{"scope": "user", "window": "90s", "usd": 1}]})
    with pytest.raises(InvalidBudget, match=r"shared\.0\.window"):
        Budget.from_dict({"shared": [{"scope": "user", "window": "30s", "usd": 1}]})
    assert SharedLimit(scope="user", window="120s", usd=1).window == "120s"
    with Ledger.open(location) as ledger:
        bad = ScopedLimit("user", "ann", "45s", usd_nanos=10)
        ctx = ChargeContext(user_id="ann")
        with pytest.raises(InvalidBudget, match=r"user window='45s'.*whole number of minutes"):
            ledger.reserve(Charge("tool", "s", Decimal("0.01")), ctx, [bad])
        with pytest.raises(InvalidBudget, match=r"user window='fortnight'"):
            ledger.headroom([ScopedLimit("user", "ann", "fortnight", usd_nanos=10)])
        assert ledger.count() == 0


# --- headroom, statements, streaming ---------------------------------------------------------


def test_headroom_reads_without_reserving(location: str) -> None:
    ctx = ChargeContext("r", "t", "ann", "acme")
    specs = [
        SharedLimit(scope="user", window="1d", usd="0.10", model_calls=3),
        SharedLimit(scope="tenant", window="calendar-month", usd="0.05"),
    ]
    with Ledger.open(location) as ledger:
        ledger.record(Charge("tool", "s", Decimal("0.02")), ctx)
        ledger.reserve(Charge("model", "m", Decimal("0.01"), 10, 5), ctx)  # a live hold counts
        before = ledger.count()
        room = ledger.headroom(specs, ctx)
        assert ledger.count() == before  # nothing written
        user, tenant = room.limits
        assert (user.usd, user.model_calls, user.tokens) == (Decimal("0.07"), 2, None)
        assert tenant.usd == Decimal("0.02") and room.usd == Decimal("0.02")
        assert room.fits(Charge("tool", "s", Decimal("0.02")))
        assert not room.fits(Charge("tool", "s", Decimal("0.021")))
        with pytest.raises(InvalidBudget, match="needs the run's user"):
            ledger.headroom(specs, ChargeContext(tenant_id="acme"))


def test_sqlite_reserve_and_commit_are_one_statement_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger.open(tmp_path / "spend.db")
    statements: list[str] = []
    run = ledger._run  # type: ignore[attr-defined]

    def counting(sql: str, params: Any) -> Any:
        statements.append(sql)
        return run(sql, params)

    monkeypatch.setattr(ledger, "_run", counting)
    ctx = ChargeContext("r", "t", "ann", "acme")
    ledger.release(ledger.reserve(Charge("tool", "s", Decimal("0.01")), ctx))
    # the first reservation of a process also looked for expired holds (one indexed read)
    assert statements[1].startswith("SELECT 1 FROM charges WHERE outcome = 'held'")
    statements.clear()
    limits = [ScopedLimit("user", "ann", "24h", usd_nanos=10**9),
              ScopedLimit("tenant", "acme", "calendar-month", usd_nanos=10**9),
              ScopedLimit("global", None, "7d", usd_nanos=10**9)]  # fmt: skip
    h = ledger.reserve(Charge("tool", "s", Decimal("0.01")), ctx, limits)
    assert len(statements) == 1 and statements[0].startswith("INSERT INTO charges")
    statements.clear()
    ledger.commit(h, Charge("tool", "s", Decimal("0.01")), ctx)
    assert len(statements) == 1 and statements[0].startswith("UPDATE charges")
    ledger.close()


def test_rows_stream_in_pages_across_equal_timestamps(location: str) -> None:
    from agent_budget.ledger.report import write_export

    with Ledger.open(location) as ledger:
        now = now_us()
        ids = [
            ledger.record(Charge("tool", "s", Decimal(i) / 100), ChargeContext(), now=now - i % 3)
            for i in range(11)
        ]
        assert [r["id"] for r in ledger.rows(page=2)] == [r["id"] for r in ledger.rows()]
        assert sorted(r["id"] for r in ledger.rows(page=3)) == sorted(ids)
        import io

        buf = io.StringIO()
        assert write_export(ledger, "json", buf) == 11
        assert len(json.loads(buf.getvalue())) == 11
        assert list(COLUMNS)[-1] == "price_source"


def test_rows_changed_by_hand_move_their_totals(location: str) -> None:
    """The totals follow any write to the rows, not only the ledger's own statements."""
    ann = ChargeContext("r", "t", "ann", "acme")
    with Ledger.open(location) as ledger:
        ledger.reserve(Charge("model", "m", Decimal("0.02"), 100, 10), ann)
        ledger.record(Charge("tool", "s", Decimal("0.03")), ann)
        ledger.record(Charge("tool", "s", Decimal("0.05")), ChargeContext(user_id="ben"))
        with ledger._autocommit(write=True) as run:  # to another user, a day earlier
            shift = DAY + 2 * MINUTE  # past the window's edge minute too
            run(ledger.sql.fmt("UPDATE {charges} SET user_id = 'ben', ts = ts - ?"), (shift,))
        assert ledger.verify() == []
        now = now_us()
        assert used_tuple(ledger, "user", "ann", None, now) == (0, 0, 0, 0)
        assert used_tuple(ledger, "user", "ben", None, now)[0] == 100_000_000
        assert used_tuple(ledger, "user", "ben", "24h", now)[0] == 0  # all a day old now
        with ledger._autocommit(write=True) as run:
            run(ledger.sql.fmt("DELETE FROM {charges} WHERE kind = 'tool'"), ())
        assert ledger.verify() == []
        assert used_tuple(ledger, "global", None, None, now) == (20_000_000, 110, 1, 0)


def test_both_backends_enforce_the_same_rules_and_keep_the_price_source(location: str) -> None:
    ctx = ChargeContext("r", "t", "ann", "acme")
    with Ledger.open(location) as ledger:
        priced = Charge("model", "m", Decimal("0.01"), 10, 5, price_source="litellm:1.74")
        kept = ledger.reserve(priced, ctx)
        ledger.commit(kept, Charge("model", "m", Decimal("0.008"), 10, 4), ctx)  # no source
        moved = ledger.reserve(priced, ctx)
        ledger.commit(moved, Charge("model", "m", Decimal("0.009"), price_source="table:2"), ctx)
        sources = {r["id"]: r["price_source"] for r in ledger.rows()}
        assert sources == {kept: "litellm:1.74", moved: "table:2"}
        bad = [
            "UPDATE {charges} SET usd_nanos = -1",
            "UPDATE {charges} SET input_tokens = -5",
            "UPDATE {charges} SET outcome = 'maybe'",
            "UPDATE {charges} SET kind = 'agent'",
            "UPDATE {charges} SET outcome = 'held', expires_ts = NULL",
            "INSERT INTO {totals} (scope, key, span, bucket) VALUES ('team', 'x', 0, 0)",
            "INSERT INTO {totals} (scope, key, span, bucket) VALUES ('user', 'x', 7, 0)",
        ]
        for sql in bad:
            with (
                pytest.raises(LedgerUnavailable, match=r"(?i)check"),
                ledger._autocommit(write=True) as run,
            ):
                run(ledger.sql.fmt(sql), ())
        assert ledger.verify() == []
