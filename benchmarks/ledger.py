"""What the spend ledger costs, all in one run: reserve+commit latency against a user's
30-day limit with 0, 10k, 100k and 1M committed charges already in the window (the history
axis: a check reads running totals, so it should not grow), round trips per reserve and
commit, reserve+commit throughput with 1, 2, 4 and 8 worker processes sharing one user
budget (SQLite and PostgreSQL), and the time it adds per agent step against the in-memory
tracker.

History: each (backend, size) ledger is seeded in bulk first (rich progress), then all of
them are measured in the same rounds of 10 calls, so drift hits every point alike; the
number that matters is each point's ratio to the empty ledger of its backend.

Throughput: each worker is a fresh interpreter (spawn) that reserves and commits $0.0001
charges against one shared user limit for ``--seconds``; every reserve is a real
cross-process atomic check (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory lock).
Per-step overhead: the same with_budget(create_react_agent(...)) tool loop (fake model, no
sleep) runs interleaved without a ledger, with SQLite and with PostgreSQL, and the medians
are compared; a step is one charged model or tool call. On these shared machines the
ratios mean something and the absolute times do not.

    python benchmarks/ledger.py [--history 0,10000,100000,1000000] [--samples 200]
                                [--seconds 2] [--repeats 7] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ledger_history as lh
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

RESULTS = Path(__file__).parent / "results"
PROCS = (1, 2, 4, 8)
PG_CANDIDATES = (
    os.environ.get("AGENT_BUDGET_TEST_POSTGRES"),
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


# --- throughput -------------------------------------------------------------------------


def _worker(location: str, seconds: float, barrier: Any) -> int:
    from agent_budget.budget import Budget
    from agent_budget.ledger import attach_ledger
    from agent_budget.tracker import BudgetTracker

    budget = Budget(
        ledger=location,
        prices={"call": "0.0001"},
        shared=[{"scope": "user", "window": "1d", "usd": 1_000_000}],
    )
    tracker = BudgetTracker(budget)
    attach_ledger(tracker, {"configurable": {"user_id": "bench-user"}})
    barrier.wait()
    done, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        tracker.reserve(tracker.tool_charge("call")).commit()
        done += 1
    return done


def throughput(location: str, procs: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(procs)
    with ctx.Pool(procs) as pool:
        jobs = [pool.apply_async(_worker, (location, seconds, barrier)) for _ in range(procs)]
        total = sum(job.get(timeout=300) for job in jobs)
    return total / seconds


# --- per-step overhead -------------------------------------------------------------------


def _graph(steps: int, budget: Any) -> Any:
    from fakes import FAKE_MODEL, FAKE_PRICE, ToolCallingFake
    from langchain_core.tools import tool
    from langgraph.prebuilt import create_react_agent

    from agent_budget.budget import Budget
    from agent_budget.integrations.langgraph import with_budget

    @tool
    def search(query: str) -> str:
        """Search (instant)."""
        return "ok"

    base = {"prices": {"search": "0.001"}, "model_prices": {FAKE_MODEL: FAKE_PRICE}, **budget}
    model = ToolCallingFake(max_tool_turns=steps)
    return with_budget(create_react_agent(model, [search]), Budget(**base)), model


def timed_run(graph_and_model: Any, user: str, steps: int) -> float:
    graph, model = graph_and_model
    model.turns = 0  # the fake counts turns over its lifetime: each run gets `steps` tool turns
    conf = {
        "configurable": {"thread_id": uuid.uuid4().hex, "user_id": user},
        "recursion_limit": 1000,
    }
    t0 = time.perf_counter()
    graph.invoke({"messages": [("user", "go")]}, conf)
    elapsed = time.perf_counter() - t0
    assert model.turns == steps + 1, f"expected {steps + 1} model calls, got {model.turns}"
    return elapsed / (2 * steps + 1)  # steps tool calls, steps+1 model calls


def overhead(
    variants: dict[str, dict[str, Any]], steps: int, repeats: int, tick: Callable[[], None]
) -> dict[str, Any]:
    graphs = {name: _graph(steps, budget) for name, budget in variants.items()}
    users = ["alice", "bob", "carol", "dave"]
    for g in graphs.values():  # warm up: imports, ledger connections, prepared statements
        timed_run(g, users[0], steps)
    per_step: dict[str, list[float]] = {name: [] for name in graphs}
    for i in range(repeats):
        for name, g in graphs.items():  # interleaved, so drift hits every variant alike
            per_step[name].append(timed_run(g, users[i % len(users)], steps))
        tick()
    base = statistics.median(per_step["memory"])
    out: dict[str, Any] = {}
    for name, samples in per_step.items():
        med = statistics.median(samples)
        out[name] = {
            "median_us_per_step": round(med * 1e6, 1),
            "ratio_vs_memory": round(med / base, 3),
            "added_us_per_step": round((med - base) * 1e6, 1),
        }
    return out


# --- main --------------------------------------------------------------------------------


def replay_week(ledger: Any, runs: list[list[dict[str, Any]]]) -> None:
    import random
    from decimal import Decimal

    from agent_budget.ledger import ChargeContext
    from agent_budget.ledger.timeutil import US, now_us
    from agent_budget.tracker import Charge

    rng = random.Random(7)
    now = now_us()
    users = {"alice": 9, "bob": 4, "carol": 2, "dave": 1}  # runs per day, roughly
    for day in range(7):
        for user, per_day in users.items():
            for _ in range(rng.randint(0, 2 * per_day)):
                start = now - (6 - day) * 86400 * US - rng.randint(0, 86000) * US
                run = uuid.uuid4().hex
                for i, row in enumerate(rng.choice(runs)):
                    charge = Charge(row["kind"], row["name"], Decimal(row["usd"]),
                                    row["input_tokens"], row["output_tokens"])  # fmt: skip
                    ledger.record(charge, ChargeContext(run, run, user, "acme"), now=start + i)


def history_ledgers(
    tmp: Path, pg: str | None, schema: str, sizes: list[int], progress: Progress
) -> dict[tuple[str, int], Any]:
    """One seeded ledger per (backend, history size); "postgres" is a session that does not
    wait for WAL flushes (the ``synchronous_commit=off`` opt-out), "postgres (durable)" a
    second session on the same ledger that does (the default)."""
    from agent_budget.ledger import Ledger

    out: dict[tuple[str, int], Any] = {}
    total = sum(sizes) * (2 if pg else 1)
    task = progress.add_task("seeding history", total=max(total, 1))
    for n in sizes:
        progress.update(task, description=f"seeding sqlite {n:,}")
        out[("sqlite", n)] = Ledger.open(tmp / f"history_{n}.db")
        lh.seed(out[("sqlite", n)], n, lambda k: progress.advance(task, k))
        if pg:
            progress.update(task, description=f"seeding postgres {n:,}")
            url = f"{pg}?schema={schema}_h{n}"
            out[("postgres", n)] = Ledger.open(url + "&synchronous_commit=off")
            lh.seed(out[("postgres", n)], n, lambda k: progress.advance(task, k))
            out[("postgres (durable)", n)] = Ledger.open(url + "&synchronous_commit=on")
    return out


def find_postgres() -> str | None:
    try:
        import psycopg
    except ImportError:
        return None
    for url in filter(None, PG_CANDIDATES):
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return url
        except psycopg.Error:
            continue
    return None


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for backend, rows in results["throughput"].items():
        xs = [int(p) for p in rows]
        left.plot(xs, [rows[p] for p in rows], marker="o", label=backend)
    left.set_xscale("log", base=2)
    left.set_xticks(list(PROCS), [str(p) for p in PROCS])
    left.set_xlabel("worker processes sharing one user budget")
    left.set_ylabel("reserve+commit per second (all workers)")
    left.set_title("Ledger throughput")
    left.grid(alpha=0.3)
    left.legend()
    names = list(results["overhead"])
    ratios = [results["overhead"][n]["ratio_vs_memory"] for n in names]
    bars = right.bar(names, ratios, color=["#999", "#1f77b4", "#ff7f0e"][: len(names)])
    for bar, n in zip(bars, names, strict=True):
        added = results["overhead"][n]["added_us_per_step"]
        right.annotate(f"+{added:.0f} µs/step" if n != "memory" else "baseline",
                       (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                       ha="center", va="bottom", fontsize="small")  # fmt: skip
    right.set_ylabel("time per agent step / in-memory tracker")
    right.set_title(
        f"Per-step cost in a with_budget agent ({results['params']['steps']} tool turns)"
    )
    right.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per throughput point")
    parser.add_argument("--repeats", type=int, default=7, help="agent runs per variant")
    parser.add_argument("--steps", type=int, default=20, help="tool turns per agent run")
    parser.add_argument(
        "--history",
        default="0,10000,100000,1000000",
        help="committed rows already in the window, comma-separated",
    )
    parser.add_argument("--samples", type=int, default=200, help="calls per history point")
    args = parser.parse_args()
    sizes = [int(x) for x in args.history.split(",")]
    console = Console()
    RESULTS.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    pg = find_postgres()
    schema = f"ab_bench_{os.getpid()}"
    backends = {"sqlite": str(tmp / "throughput.db")}
    if pg:
        backends["postgres"] = f"{pg}?schema={schema}&synchronous_commit=off"
        backends["postgres (durable)"] = f"{pg}?schema={schema}_durable&synchronous_commit=on"
    else:
        console.print("[yellow]no PostgreSQL server on 127.0.0.1:5432: PostgreSQL skipped[/yellow]")

    variants: dict[str, dict[str, Any]] = {"memory": {}}
    shared = [{"scope": "user", "window": "1d", "usd": 1_000_000}]
    variants["sqlite"] = {"ledger": str(tmp / "agent.db"), "shared": shared}
    if pg:
        # the default session settings (durable), as a user gets them
        variants["postgres"] = {"ledger": f"{pg}?schema={schema}_agent", "shared": shared}

    results: dict[str, Any] = {
        "params": {"seconds": args.seconds, "repeats": args.repeats, "steps": args.steps,
                   "cpus": os.cpu_count()},
        "load_avg_1m": {"start": os.getloadavg()[0]},
        "throughput": {},
    }  # fmt: skip
    from agent_budget.ledger import Ledger

    with Progress(console=console) as progress:
        ledgers = history_ledgers(tmp, pg, schema, sizes, progress)
        task0 = progress.add_task("history latency", total=max(1, args.samples // 10))
        results["history_ms"] = lh.latencies(ledgers, args.samples, lambda: progress.advance(task0))
        results["history_ratio"] = {
            b: {n: round(v / rows[str(sizes[0])], 2) for n, v in rows.items()}
            for b, rows in results["history_ms"].items()
        }
        results["round_trips"] = {
            f"{b}, {k} limit{'s' if k > 1 else ''}": lh.round_trips(ledgers[(b, sizes[0])], k)
            for b in ("sqlite", "postgres") if (b, sizes[0]) in ledgers for k in (1, 3)
        }  # fmt: skip
        for (b, _), led in ledgers.items():
            if b == "postgres":
                led.drop()
            led.close()
        task = progress.add_task("throughput", total=len(backends) * len(PROCS))
        for backend, location in backends.items():
            results["throughput"][backend] = {}
            for procs in PROCS:
                progress.update(task, description=f"throughput {backend} x{procs}")
                rate = throughput(location, procs, args.seconds)
                results["throughput"][backend][str(procs)] = round(rate, 1)
                progress.advance(task)
        task2 = progress.add_task("per-step overhead", total=args.repeats)
        results["overhead"] = overhead(
            variants, args.steps, args.repeats, lambda: progress.advance(task2)
        )

    from agent_budget.ledger.report import write_plot

    # The report screenshot for the README: the benchmark's real agent runs, replayed over a
    # week for four users (a seeded schedule), so the chart has days to stack.
    with Ledger.open(variants["sqlite"]["ledger"]) as led:
        runs: dict[str, list[Any]] = {}
        for row in led.rows():
            runs.setdefault(row["run_id"], []).append(row)
    week = Ledger.open(tmp / "week.db")
    replay_week(week, list(runs.values()))
    write_plot(week, "user", RESULTS / "ledger_report.png", since="7d")
    week.close()
    if pg:
        for s in (schema, f"{schema}_durable", f"{schema}_agent"):
            Ledger.open(f"{pg}?schema={s}").drop()  # type: ignore[attr-defined]

    results["load_avg_1m"]["end"] = os.getloadavg()[0]
    before_path = RESULTS / "ledger_history_before.json"
    before = json.loads(before_path.read_text()) if before_path.exists() else None
    if before:
        results["before_schema_1"] = before
    (RESULTS / "ledger.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, RESULTS / "ledger.png")
    lh.plot_history(results["history_ms"], before, RESULTS / "ledger_history.png")

    table = Table(title=f"reserve+commit median ms, {args.samples} calls per point "
                  "(x = ratio to the empty ledger)")  # fmt: skip
    table.add_column("backend")
    for n in sizes:
        table.add_column(f"{n:,} rows", justify="right")
    for backend, rows in results["history_ms"].items():
        ratio = results["history_ratio"][backend]
        table.add_row(backend, *(f"{rows[str(n)]:.3f} ({ratio[str(n)]:.2f}x)" for n in sizes))
    console.print(table)
    table = Table(title="round trips (PostgreSQL) / statements (SQLite) per call")
    for col in ("backend, limits", "reserve", "commit"):
        table.add_column(col)
    for name, rt in results["round_trips"].items():
        table.add_row(name, str(rt["reserve"]), str(rt["commit"]))
    if before:
        for name, rt in before["round_trips"].items():
            table.add_row(f"{name}, 1 limit (schema 1)", str(rt["reserve"]), str(rt["commit"]))
    console.print(table)

    table = Table(title="reserve+commit per second (all workers together)")
    table.add_column("backend")
    for p in PROCS:
        table.add_column(f"{p} proc", justify="right")
    for backend, rows in results["throughput"].items():
        table.add_row(backend, *(f"{rows[str(p)]:,.0f}" for p in PROCS))
    console.print(table)
    table = Table(title=f"per agent step ({args.steps} tool turns, median of {args.repeats})")
    for col in ("variant", "µs/step", "x memory", "added µs/step"):
        table.add_column(col, justify="right")
    for name, row in results["overhead"].items():
        table.add_row(name, f"{row['median_us_per_step']:.0f}", f"{row['ratio_vs_memory']:.2f}",
                      f"{row['added_us_per_step']:.0f}")  # fmt: skip
    console.print(table)
    console.print(f"wrote {RESULTS / 'ledger.json'}, {RESULTS / 'ledger.png'}, "
                  f"{RESULTS / 'ledger_history.png'}, {RESULTS / 'ledger_report.png'}")  # fmt: skip


if __name__ == "__main__":
    main()
