"""What pricing by LiteLLM's cost function changes, and what it costs per call.

1. The bill: for the usage shapes of issue 18 (flat, cache read, cache write, above a tier,
   reasoning priced apart), the USD charged now (LiteLLM's cost function) against what two
   flat per-token prices times two token counts give (how agent-budget priced before).
2. The overhead: microseconds per charge and per reservation for a flat Decimal multiply, a
   structured budget price, and LiteLLM-priced models, measured interleaved in one run (the
   ratios mean something on a shared machine; the absolute times do not).

    python benchmarks/prices.py [--repeats 5] [--calls 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agent_budget import Budget
from agent_budget.prices.litellm_map import bundled_entry, litellm_version
from agent_budget.pricing import PriceBook, TokenUsage

RESULTS = Path(__file__).parent / "results"

CASES: list[tuple[str, str, TokenUsage]] = [
    ("gpt-4o-mini", "flat", TokenUsage(20_000, 1_000)),
    ("gpt-4o", "cache read", TokenUsage(10_000, 1_000, cache_read=5_000)),
    ("gemini/gemini-2.5-pro", "above 200k", TokenUsage(300_000, 2_000)),
    ("gemini/gemini-2.5-pro", "below 200k", TokenUsage(100_000, 2_000)),
    ("claude-sonnet-4-5", "cache write", TokenUsage(12_000, 800, cache_write=10_000)),
    ("gpt-5.4", "above 272k", TokenUsage(300_000, 2_000)),
    ("dashscope/qwen-flash", "tiered_pricing", TokenUsage(300_000, 1_000)),
    ("dashscope/qwen-turbo", "reasoning", TokenUsage(1_000, 5_000, reasoning=4_000)),
]


def flat_charge(model: str, usage: TokenUsage) -> Decimal | None:
    """None: the entry has no flat prices (a `tiered_pricing` table), so the old lookup
    found no price at all."""
    entry = bundled_entry(model)
    assert entry is not None
    if entry.rate("input_cost_per_token") is None:
        return None
    cached = entry.rate("cache_read_input_token_cost")
    inp = entry.rate("input_cost_per_token") or Decimal(0)
    out = entry.rate("output_cost_per_token") or Decimal(0)
    read = usage.cache_read if cached is not None else 0
    return inp * (usage.input_tokens - read) + (cached or 0) * read + out * usage.output_tokens


def bills(book: PriceBook) -> list[dict[str, Any]]:
    rows = []
    for model, shape, usage in CASES:
        now, before = book.model_cost(model, usage), flat_charge(model, usage)
        rows.append(
            {
                "model": model,
                "shape": shape,
                "charged": str(now),
                "flat_prices": None if before is None else str(before),
                "flat_over_bill": None if before is None else float(before / now),
            }
        )
    return rows


def overhead(book: PriceBook, repeats: int, calls: int) -> dict[str, float]:
    usage = TokenUsage(10_000, 1_000, cache_read=2_000)
    rate_in, rate_out = Decimal("0.0000025"), Decimal("0.00001")
    kinds: dict[str, Any] = {
        "flat Decimal multiply": lambda: rate_in * 10_000 + rate_out * 1_000,
        "budget price (tiers)": lambda: book.model_price("mine").cost_of(usage),
        "gpt-4o charge": lambda: book.model_price("gpt-4o").cost_of(usage),
        "gpt-4o reservation": lambda: book.model_price("gpt-4o").worst_case(10_000, 1_000),
        "claude-sonnet-4-5 reservation": lambda: book.model_price("claude-sonnet-4-5").worst_case(
            10_000, 1_000
        ),
        "gemini-2.5-pro charge": lambda: book.model_price("gemini/gemini-2.5-pro").cost_of(usage),
    }
    for fn in kinds.values():
        fn()  # warm the caches (map lookups, LiteLLM's import)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    with Progress(transient=True) as progress:
        task = progress.add_task("timing", total=repeats * len(kinds))
        for _ in range(repeats):
            for name, fn in kinds.items():  # interleaved: each round times every kind
                start = time.perf_counter()
                for _ in range(calls):
                    fn()
                times[name].append((time.perf_counter() - start) / calls * 1e6)
                progress.advance(task)
    return {k: statistics.median(v) for k, v in times.items()}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['model']}\n{r['shape']}" for r in rows]
    charged = [float(r["charged"]) for r in rows]
    flat = [float(r["flat_prices"] or 0) for r in rows]  # no flat price: drawn as 0
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.bar([i - 0.2 for i in x], flat, width=0.4, label="two flat prices x two counts (before)")
    ax.bar([i + 0.2 for i in x], charged, width=0.4, label="LiteLLM's cost function (now)")
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.set_ylabel("USD for one call")
    ax.set_title(f"What one call is charged (LiteLLM {litellm_version()} price map)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    console = Console()
    book = PriceBook(
        Budget(
            model_prices={
                "mine": {"input": 2.5, "output": 10, "tiers": [{"above": "200k", "input": 5}]}
            }
        )
    )
    rows = bills(book)
    table = Table(title="one call: charged now vs flat prices")
    for col in ("model", "shape", "charged (USD)", "flat prices (USD)", "flat / bill"):
        table.add_column(col)
    for r in rows:
        ratio = "-" if r["flat_over_bill"] is None else f"{r['flat_over_bill']:.3f}"
        table.add_row(r["model"], r["shape"], r["charged"], r["flat_prices"] or "no price", ratio)
    console.print(table)
    times = overhead(book, args.repeats, args.calls)
    base = times["flat Decimal multiply"]
    table = Table(title="pricing overhead (median of interleaved rounds)")
    for col in ("what", "us per call", "x flat multiply"):
        table.add_column(col)
    for name, us in times.items():
        table.add_row(name, f"{us:.1f}", f"{us / base:.0f}")
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    out = {"litellm": litellm_version(), "bills": rows, "overhead_us": times}
    (RESULTS / "prices.json").write_text(json.dumps(out, indent=1) + "\n")
    plot(rows, RESULTS / "prices.png")
    console.print(f"wrote {RESULTS / 'prices.json'} and {RESULTS / 'prices.png'}")


if __name__ == "__main__":
    main()
