"""The ledger's history axis: reserve+commit latency for a user who already has 0, 10k, 100k
and 1M committed charges inside a 30-day window, and how many round trips (PostgreSQL) /
statements (SQLite) a reserve and a commit take. Used by ``benchmarks/ledger.py``.

Run on its own with an older agent-budget first on the path, it measures that release the
same way and writes ``results/ledger_history_before.json`` (the "before" lines of the plot):

    git archive 499251c agent_budget | tar -x -C /tmp/v1
    PYTHONPATH=/tmp/v1 python benchmarks/ledger_history.py --before
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
USER = "hist-user"
WINDOW_DAYS = 30
US = 1_000_000
V1_COLUMNS = (
    "ts", "settled_ts", "expires_ts", "outcome", "run_id", "thread_id", "user_id", "tenant_id",
    "node", "kind", "name", "input_tokens", "output_tokens", "usd_nanos", "reserved_nanos",
    "attempt", "call_key", "worker", "detail",
)  # fmt: skip
SCHEMA = 3  # the schema this branch writes (agent_budget.ledger.sql.SCHEMA_VERSION)
LABELS = {0: "0", 10_000: "10k", 100_000: "100k", 300_000: "300k", 1_000_000: "1M"}


def history_rows(n: int, now: int) -> Iterator[tuple[Any, ...]]:
    """``n`` committed $0.001 tool charges of one user, evenly over the last 29 days."""
    span = (WINDOW_DAYS - 1) * 86400 * US
    for i in range(n):
        ts = now - 60 * US - (i * span) // n
        yield (ts, ts, None, "ok", f"run{i % 1000}", None, USER, "acme", None, "tool",
               "search", 0, 0, 1_000_000, None, 1, None, "seed", None, None)  # fmt: skip


def seed(ledger: Any, n: int, tick: Callable[[int], None]) -> None:
    """Write the history fast: the ledger's bulk load (executemany / COPY, totals in one
    pass) when it has one, else plain executemany / COPY into a version-1 table."""
    if n == 0:
        return
    now = time.time_ns() // 1000

    def counted() -> Iterator[tuple[Any, ...]]:
        for i, row in enumerate(history_rows(n, now), 1):
            if i % 10_000 == 0:
                tick(10_000)
            yield row

    if hasattr(ledger, "bulk_insert"):
        ledger.bulk_insert(counted(), batch=250_000)
        return
    rows = [r[:-1] for r in counted()]  # version 1 has no price_source
    cols = ", ".join(V1_COLUMNS)
    with ledger._transaction([]) as run:
        if ledger.sql.dialect == "postgres":
            with ledger._conn.cursor().copy(f"COPY {ledger.sql.charges} ({cols}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            run(f"ANALYZE {ledger.sql.charges}", ())
        else:
            ledger._conn.executemany(
                f"INSERT INTO charges ({cols}) VALUES ({', '.join('?' * 19)})", rows
            )


def one_call(ledger: Any) -> Callable[[], float]:
    """A timed reserve+commit of one $0.001 tool charge under the user's 30-day limit."""
    from agent_budget.ledger import ChargeContext, ScopedLimit
    from agent_budget.tracker import Charge

    ctx = ChargeContext("bench", None, USER, "acme")
    limits = [ScopedLimit("user", USER, f"{WINDOW_DAYS}d", usd_nanos=10**18)]
    charge = Charge("tool", "search", Decimal("0.001"))

    def call() -> float:
        t0 = time.perf_counter()
        handle = ledger.reserve(charge, ctx, limits)
        ledger.commit(handle, charge, ctx)
        return time.perf_counter() - t0

    return call


def latencies(ledgers: dict[tuple[str, int], Any], samples: int, tick: Callable[[], None]
              ) -> dict[str, dict[str, float]]:  # fmt: skip
    """Median ms per (backend, history), every ledger measured in the same rounds of 10."""
    calls = {key: one_call(led) for key, led in ledgers.items()}
    for call in calls.values():  # warm up: prepared statements, caches
        for _ in range(20):
            call()
    times: dict[tuple[str, int], list[float]] = {key: [] for key in calls}
    for _ in range(max(1, samples // 10)):
        for key, call in calls.items():
            times[key].extend(call() for _ in range(10))
        tick()
    out: dict[str, dict[str, float]] = {}
    for (backend, n), ts in times.items():
        out.setdefault(backend, {})[str(n)] = round(statistics.median(ts) * 1000, 3)
    return out


def round_trips(ledger: Any, limits_n: int = 1) -> dict[str, int]:
    """Round trips (PostgreSQL: requests answered by ReadyForQuery, from libpq's protocol
    trace) or statements (SQLite: calls into the driver) of one reserve and one commit."""
    from agent_budget.ledger import ChargeContext, ScopedLimit
    from agent_budget.tracker import Charge

    ctx = ChargeContext("rt", None, USER, "acme")
    limits = [
        ScopedLimit("user", USER, "30d", usd_nanos=10**18),
        ScopedLimit("tenant", "acme", "calendar-month", usd_nanos=10**18),
        ScopedLimit("global", None, "24h", usd_nanos=10**18),
    ][:limits_n]
    charge = Charge("tool", "search", Decimal("0.001"))
    out = {}
    for name in ("reserve", "commit"):
        if ledger.sql.dialect == "postgres":
            path = Path(tempfile.mkstemp(suffix=".trace")[1])
            with path.open("w") as fh:
                import psycopg

                ledger._conn.pgconn.trace(fh.fileno())
                ledger._conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
                if name == "reserve":
                    handle = ledger.reserve(charge, ctx, limits)
                else:
                    ledger.commit(handle, charge, ctx)
                ledger._conn.pgconn.untrace()
            out[name] = sum("ReadyForQuery" in line for line in path.read_text().splitlines())
            path.unlink()
        else:
            real = ledger._conn
            proxy = _Counting(real)
            ledger._conn = proxy  # BEGIN / COMMIT count too: they are statements
            try:
                if name == "reserve":
                    handle = ledger.reserve(charge, ctx, limits)
                else:
                    ledger.commit(handle, charge, ctx)
            finally:
                ledger._conn = real
            out[name] = proxy.count
    return out


class _Counting:
    """A sqlite3 connection that counts the statements sent to it."""

    def __init__(self, conn: Any) -> None:
        self._real, self.count = conn, 0

    def execute(self, sql: str, *params: Any) -> Any:
        self.count += 1
        return self._real.execute(sql, *params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def plot_history(results: dict[str, Any], before: dict[str, Any] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    sizes = sorted({int(n) for rows in results.values() for n in rows})
    xs = {
        n: i
        for i, n in enumerate(
            sorted(
                {
                    *sizes,
                    *(
                        int(n)
                        for rows in (before or {}).get("latency_ms", {}).values()
                        for n in rows
                    ),
                }
            )
        )
    }
    colors = {"sqlite": "#1f77b4", "postgres": "#ff7f0e", "postgres (durable)": "#2ca02c"}
    for backend, rows in results.items():
        pts = sorted((int(n), v) for n, v in rows.items())
        ax.plot(
            [xs[n] for n, _ in pts],
            [v for _, v in pts],
            marker="o",
            color=colors.get(backend),
            label=f"{backend}, schema {SCHEMA} (running totals)",
        )
    for backend, rows in (before or {}).get("latency_ms", {}).items():
        pts = sorted((int(n), v) for n, v in rows.items())
        ax.plot(
            [xs[n] for n, _ in pts],
            [v for _, v in pts],
            marker="x",
            linestyle="--",
            color=colors.get(backend),
            alpha=0.6,
            label=f"{backend}, schema 1 (row scan)",
        )
    ax.set_xticks(list(xs.values()), [LABELS.get(n, f"{n:,}") for n in xs])
    ax.set_yscale("log")
    ax.set_xlabel("committed charges already in the user's 30-day window")
    ax.set_ylabel("reserve+commit, median ms (log)")
    ax.set_title("Shared-limit check cost vs ledger history")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _before() -> None:  # pragma: no cover - a manual measurement of an older release
    from rich.console import Console
    from rich.progress import Progress

    parser = argparse.ArgumentParser()
    parser.add_argument("--before", action="store_true", required=True)
    parser.add_argument("--history", default="0,10000,100000")
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from ledger import find_postgres, throughput

    import agent_budget
    from agent_budget.ledger import Ledger

    sizes = [int(x) for x in args.history.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="ledger-before-"))
    pg = find_postgres()
    ledgers: dict[tuple[str, int], Any] = {}
    with Progress(console=Console(stderr=True)) as progress:
        task = progress.add_task("seeding", total=(2 if pg else 1) * sum(sizes))
        for n in sizes:
            ledgers[("sqlite", n)] = Ledger.open(tmp / f"h{n}.db")
            seed(ledgers[("sqlite", n)], n, lambda k: progress.advance(task, k))
            if pg:
                url = f"{pg}?schema=ab_before_{os.getpid()}_{n}"
                ledgers[("postgres (durable)", n)] = Ledger.open(url)  # that release's only mode
                seed(ledgers[("postgres (durable)", n)], n, lambda k: progress.advance(task, k))
                # The same schema through a session that does not wait for WAL flushes.
                ledgers[("postgres", n)] = Ledger.open(url + "&options=-csynchronous_commit%3Doff")
        lat = progress.add_task("latency", total=max(1, args.samples // 10))
        result = {
            "code": agent_budget.__file__,
            "latency_ms": latencies(ledgers, args.samples, lambda: progress.advance(lat)),
            "round_trips": {
                b: round_trips(ledgers[(b, 0)]) for b in ("sqlite", "postgres") if (b, 0) in ledgers
            },
        }
    tput: dict[str, dict[str, float]] = {}
    for backend, loc in (("sqlite", str(tmp / "tput.db")),
                         ("postgres (durable)", f"{pg}?schema=ab_before_tput_{os.getpid()}"),
                         ("postgres", f"{pg}?schema=ab_before_tput_{os.getpid()}"
                                      "&options=-csynchronous_commit%3Doff")):  # fmt: skip
        if backend != "sqlite" and not pg:
            continue
        tput[backend] = {str(p): round(throughput(loc, p, 2.0), 1) for p in (1, 8)}
    result["throughput"] = tput
    if pg:
        Ledger.open(f"{pg}?schema=ab_before_tput_{os.getpid()}").drop()
    for (backend, _), led in ledgers.items():
        if backend == "postgres (durable)":
            with led._autocommit() as run:
                run(f'DROP SCHEMA IF EXISTS "{led.schema}" CASCADE', ())
    out = RESULTS / "ledger_history_before.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    _before()
