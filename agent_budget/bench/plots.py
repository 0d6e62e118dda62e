"""The sweep's two pictures (matplotlib, imported only here):

- cost vs accuracy: one point per (configuration, budget), the Pareto frontier drawn and its
  points ringed;
- accuracy vs budget: one line per configuration.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

_MARKERS = "osD^vP*X"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _usd_ticks() -> Any:
    from matplotlib.ticker import FuncFormatter

    # Plain decimals: tiny per-task costs read better as 0.00003 than as 3e-5 x 1e-5.
    return FuncFormatter(lambda v, _pos: f"{float(v):.10f}".rstrip("0").rstrip(".") or "0")


def _colors(configs: list[str]) -> dict[str, Any]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return {c: cmap(i % 10) for i, c in enumerate(configs)}


def cost_vs_accuracy(summary: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    configs = summary["configs"]
    colors = _colors(configs)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, config in enumerate(configs):
        cells = [c for c in summary["cells"] if c["config"] == config]
        xs = [float(Decimal(c["mean_usd"])) for c in cells]
        ys = [c["accuracy"] for c in cells]
        ax.scatter(xs, ys, color=colors[config], marker=_MARKERS[i % len(_MARKERS)], s=50,
                   label=config, zorder=3)  # fmt: skip
        labels: dict[tuple[float, float], list[str]] = {}
        for c, x, y in zip(cells, xs, ys, strict=True):
            labels.setdefault((x, y), []).append(c["budget"])
        for (x, y), names in labels.items():  # budgets landing on one point share a label
            ax.annotate(", ".join(names), (x, y), textcoords="offset points",
                        xytext=(6, -11 - 9 * i), fontsize=7, color=colors[config])  # fmt: skip
    front = [c for c in summary["cells"] if c["on_frontier"]]
    front.sort(key=lambda c: Decimal(c["mean_usd"]))
    if front:
        xs = [float(Decimal(c["mean_usd"])) for c in front]
        ys = [c["accuracy"] for c in front]
        ax.step(xs, ys, where="post", color="#222", linewidth=1.2, alpha=0.7,
                label="Pareto frontier", zorder=2)  # fmt: skip
        ax.scatter(xs, ys, s=180, facecolors="none", edgecolors="#222", linewidths=1.4, zorder=4)
    ax.set_xlabel("mean cost per task (USD)")
    ax.xaxis.set_major_formatter(_usd_ticks())
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.12, 1.08)  # room for the labels under the zero-accuracy points
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{summary['sweep']}: cost vs accuracy", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def accuracy_vs_budget(summary: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    configs = summary["configs"]
    colors = _colors(configs)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    numeric = all(c["budget_usd"] is not None for c in summary["cells"])
    order = summary["budgets"]
    for i, config in enumerate(configs):
        cells = [c for c in summary["cells"] if c["config"] == config]
        cells.sort(key=lambda c: order.index(c["budget"]))
        xs: list[Any] = (
            [float(Decimal(c["budget_usd"])) for c in cells]
            if numeric
            else [order.index(c["budget"]) for c in cells]
        )
        ys = [c["accuracy"] for c in cells]
        ax.plot(xs, ys, marker=_MARKERS[i % len(_MARKERS)], color=colors[config], label=config)
    if numeric:
        ax.set_xscale("log")
        ax.set_xlabel("budget per task (USD, log scale)")
    else:
        ax.set_xticks(range(len(order)), order, rotation=20, fontsize=8)
        ax.set_xlabel("budget")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{summary['sweep']}: accuracy vs budget", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
