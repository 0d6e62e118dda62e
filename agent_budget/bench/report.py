"""What a sweep leaves behind: runs.json / runs.csv (every unit), summary.json / summary.md
(per configuration x budget, the frontier marked), two PNGs, and `compare` between sweeps."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from agent_budget.bench.config import SweepSpec, budget_points
from agent_budget.bench.metrics import Cell, cells, totals

SUMMARY = "summary.json"
CSV_FIELDS = (
    "key", "run_id", "config", "budget", "seed", "task", "status", "passed", "score", "usd",
    "judge_usd", "input_tokens", "output_tokens", "model_calls", "tool_calls",
    "tokens_by_model", "overruns", "stopped", "error", "detail", "answer", "seconds", "worker",
)  # fmt: skip
DETERMINISTIC_EXCLUDE = ("seconds", "worker")
"""Result fields that differ between two runs of the same sweep (timing, where it ran)."""


def summarize(spec: SweepSpec, results: Sequence[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    budget_usd = {p.label: p.usd for p in budget_points(spec)}
    found = cells(results, budget_usd)
    return {
        "sweep": spec.name,
        "tasks": spec.tasks,
        "configs": [c.name for c in spec.configs],
        "budgets": list(budget_usd),
        "seeds": spec.seeds,
        "global_cap_usd": None if spec.global_cap_usd is None else str(spec.global_cap_usd),
        "totals": totals(results),
        "cells": [c.to_dict() for c in found],
        "frontier": [c.name for c in found if c.on_frontier],
        **extra,
    }


def write_outputs(
    out: Path,
    spec: SweepSpec,
    results: Sequence[dict[str, Any]],
    *,
    plots: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """Write every report file into ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(spec, results, **extra)
    (out / "runs.json").write_text(json.dumps(list(results), indent=1, sort_keys=True) + "\n")
    (out / "runs.csv").write_text(to_csv(results))
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(markdown(summary))
    if plots:
        from agent_budget.bench.plots import accuracy_vs_budget, cost_vs_accuracy

        cost_vs_accuracy(summary, out / "cost_accuracy.png")
        accuracy_vs_budget(summary, out / "accuracy_budget.png")
    return summary


def to_csv(results: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in results:
        row = dict(r)
        for key in ("tool_calls", "tokens_by_model", "overruns"):
            row[key] = json.dumps(r.get(key), sort_keys=True)
        writer.writerow(row)
    return buf.getvalue()


def _usd(text: str) -> str:
    if text == "inf":
        return "∞"
    value = Decimal(text)
    if not value:
        return "$0"
    places = max(2, 2 - value.adjusted())  # three significant digits, never 1e-05
    return f"${value:.{places}f}"


def markdown(summary: dict[str, Any]) -> str:
    t = summary["totals"]
    lines = [
        f"# Sweep `{summary['sweep']}`",
        "",
        f"{t['runs']} runs, {t['passed']} passed; agent spend ${t['usd']}, judge ${t['judge_usd']}"
        + (f", global cap ${summary['global_cap_usd']}" if summary["global_cap_usd"] else "")
        + f"; budget overruns: **{t['overruns']}**; by status: "
        + ", ".join(f"{k} {v}" for k, v in t["by_status"].items()),
        "",
        "| configuration | budget | runs | accuracy | mean cost | cost-of-pass | tokens in/out "
        "| tool calls | overruns | frontier |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|:---:|",
    ]
    for c in summary["cells"]:
        tools = ", ".join(f"{k} {v}" for k, v in c["tool_calls"].items()) or "-"
        flags = "" if c["complete"] else f" ({c['capped'] + c['refused']} cut by cap)"
        lines.append(
            f"| {c['config']} | {c['budget']} | {c['runs']}{flags} | {c['accuracy']:.0%} "
            f"| {_usd(c['mean_usd'])} | {_usd(c['cost_of_pass'])} "
            f"| {c['input_tokens']}/{c['output_tokens']} | {tools} | {c['overruns']} "
            f"| {'★' if c['on_frontier'] else ''} |"
        )
    lines += [
        "",
        "Cost-of-pass: the expected agent cost of one correct answer (total / passes; ∞ when "
        "nothing passed). ★: on the cost-accuracy Pareto frontier.",
        "",
    ]
    by_model = [
        f"| {c['config']} | {c['budget']} | {model} | {row['calls']} | {row['input']} "
        f"| {row['output']} |"
        for c in summary["cells"]
        for model, row in c["tokens_by_model"].items()
    ]
    if by_model:
        lines += [
            "Tokens by model:",
            "",
            "| configuration | budget | model | calls | tokens in | tokens out |",
            "|---|---|---|---:|---:|---:|",
            *by_model,
            "",
        ]
    return "\n".join(lines)


def load_summary(path: str | Path) -> dict[str, Any]:
    """A sweep's summary from its output directory or its summary.json."""
    p = Path(path)
    file = p / SUMMARY if p.is_dir() else p
    if not file.is_file():
        raise FileNotFoundError(f"{path}: no {SUMMARY} (is it a sweep's output directory?)")
    data: dict[str, Any] = json.loads(file.read_text())
    return data


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (configuration, budget): accuracy, mean cost and cost-of-pass in A and in B, and
    the change; cells only one sweep has are listed with the other side empty."""
    left = {(c["config"], c["budget"]): c for c in a["cells"]}
    right = {(c["config"], c["budget"]): c for c in b["cells"]}
    rows = []
    for key in [*left, *(k for k in right if k not in left)]:
        x, y = left.get(key), right.get(key)
        row: dict[str, Any] = {"config": key[0], "budget": key[1]}
        for side, c in (("a", x), ("b", y)):
            row[f"accuracy_{side}"] = None if c is None else c["accuracy"]
            row[f"mean_usd_{side}"] = None if c is None else c["mean_usd"]
            row[f"cost_of_pass_{side}"] = None if c is None else c["cost_of_pass"]
            row[f"frontier_{side}"] = None if c is None else c["on_frontier"]
        if x is not None and y is not None:
            row["accuracy_change"] = round(y["accuracy"] - x["accuracy"], 6)
            row["mean_usd_change"] = (
                f"{(Decimal(y['mean_usd']) - Decimal(x['mean_usd'])).normalize():f}"
            )
        rows.append(row)
    return rows


def cell_table(summary: dict[str, Any]) -> Any:
    from rich.table import Table

    t = summary["totals"]
    table = Table(
        title=f"sweep {summary['sweep']}: {t['runs']} runs, agent ${t['usd']}, "
        f"judge ${t['judge_usd']}, overruns {t['overruns']}"
    )
    for col in ("config", "budget", "runs", "accuracy", "mean cost", "cost/pass",
                "tokens in/out", "tools", "overruns", "★"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("config", "budget") else "right")
    for c in summary["cells"]:
        table.add_row(
            c["config"], c["budget"],
            str(c["runs"]) + ("" if c["complete"] else " (cut)"),
            f"{c['accuracy']:.0%}", _usd(c["mean_usd"]), _usd(c["cost_of_pass"]),
            f"{c['input_tokens']}/{c['output_tokens']}",
            str(sum(c["tool_calls"].values())),
            str(c["overruns"]), "★" if c["on_frontier"] else "",
        )  # fmt: skip
    return table


def compare_table(rows: list[dict[str, Any]], a: str, b: str) -> Any:
    from rich.table import Table

    table = Table(title=f"A = {a}   B = {b}")
    for col in ("configuration", "budget", "accuracy A → B", "mean cost A → B",
                "cost-of-pass A → B", "frontier A/B"):  # fmt: skip
        table.add_column(col)

    def acc(v: Any) -> str:
        return "-" if v is None else f"{v:.0%}"

    def usd(v: Any) -> str:
        return "-" if v is None else _usd(v)

    def mark(v: Any) -> str:
        return "-" if v is None else ("★" if v else "·")

    for r in rows:
        change = r.get("accuracy_change")
        delta = "" if change is None else f" ({change:+.0%})"
        table.add_row(
            r["config"], r["budget"],
            f"{acc(r['accuracy_a'])} → {acc(r['accuracy_b'])}{delta}",
            f"{usd(r['mean_usd_a'])} → {usd(r['mean_usd_b'])}",
            f"{usd(r['cost_of_pass_a'])} → {usd(r['cost_of_pass_b'])}",
            f"{mark(r['frontier_a'])}/{mark(r['frontier_b'])}",
        )  # fmt: skip
    return table


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """A result without the fields that differ between identical runs (time, worker)."""
    return {k: v for k, v in result.items() if k not in DETERMINISTIC_EXCLUDE}


__all__ = ["Cell", "compare", "load_summary", "markdown", "summarize", "write_outputs"]
