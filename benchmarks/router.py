"""Router benchmark: questions with known answers, answered by always-cheap, always-expensive
and BudgetRouter (hybrid and cascade); cost through the real budget callback.

    python benchmarks/router.py                                   # offline stand-ins
    python benchmarks/router.py --cheap local:smollm2-135m --expensive openai/gpt-4.1-mini

Offline, both tiers are the shipped SmolLM2-135M: the cheap tier answers plainly at $0, the
expensive stand-in answers with a few-shot prompt and is priced as --price-as (a cloud model).
Its accuracy numbers test the harness, not model quality; pass real model names (with keys
set) for a quality comparison. Writes benchmarks/results/router.json and router.png.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatResult
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agent_budget.bench.sets import QUESTIONS  # the known-answer set, shared with bench
from agent_budget.budget import Budget
from agent_budget.integrations.callbacks import BudgetCallbackHandler
from agent_budget.models import BudgetRouter, LocalChatModel, model_price, resolve
from agent_budget.pricing import register_model_price
from agent_budget.tracker import BudgetTracker

RESULTS = Path(__file__).parent / "results"

FEW_SHOT = [
    SystemMessage("Answer with the single word or number that answers the question."),
    HumanMessage("What is the capital of Portugal?"),
    AIMessage("Lisbon"),
    HumanMessage("What is 3 + 5?"),
    AIMessage("8"),
]


class FewShotLocal(LocalChatModel):
    """The offline 'expensive' stand-in: the same GGUF behind a few-shot prompt."""

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return super()._generate([*FEW_SHOT, *messages], stop, run_manager, **kwargs)


def correct(reply: str, answers: list[str]) -> bool:
    text = reply.lower()
    return any(a in text for a in answers)


def run(name: str, model: BaseChatModel, progress: Progress) -> dict[str, Any]:
    tracker = BudgetTracker(Budget())
    callbacks = [BudgetCallbackHandler(tracker)]
    right = 0
    task = progress.add_task(name, total=len(QUESTIONS))
    for question, answers in QUESTIONS:
        reply = model.invoke(question, {"callbacks": callbacks})
        right += correct(str(reply.content), answers)
        progress.advance(task)
    out: dict[str, Any] = {
        "accuracy": right / len(QUESTIONS),
        "cost_usd": tracker.spent.usd,
        "model_calls": tracker.spent.model_calls,
        "tokens": {"input": tracker.spent.input_tokens, "output": tracker.spent.output_tokens},
    }
    if isinstance(model, BudgetRouter):
        out["fraction_to_expensive"] = model.escalation_rate
        out["escalated_after_cheap"] = sum(d.escalated for d in model.decisions)
        out["reasons"] = [d.reason for d in model.decisions]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cheap", default="local:smollm2-135m")
    ap.add_argument("--expensive", default=None, help="a real model; default: offline stand-in")
    ap.add_argument(
        "--price-as",
        default="openai/gpt-4.1-mini",
        help="cloud model whose price the offline stand-in is charged",
    )
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    console = Console()

    cheap = resolve(args.cheap, max_tokens=args.max_tokens)
    if args.expensive:
        expensive = resolve(args.expensive, max_tokens=args.max_tokens)
        expensive_name = args.expensive
    else:
        cloud = model_price(args.price_as)
        name = f"standin/few-shot-smollm2-priced-as-{args.price_as.replace('/', '-')}"
        register_model_price(
            name, input=cloud.input_per_token * 1_000_000, output=cloud.output_per_token * 1_000_000
        )
        assert isinstance(cheap, LocalChatModel)
        expensive = FewShotLocal(
            model_name=name,
            model_path=cheap.model_path,
            max_tokens=args.max_tokens,
            n_ctx=cheap.n_ctx,
            input_price=cloud.input_per_token * 1_000_000,
            output_price=cloud.output_per_token * 1_000_000,
        )
        expensive_name = name

    results: dict[str, Any] = {}
    with Progress(console=console) as progress:
        results["always_cheap"] = run("always cheap", cheap, progress)
        results["always_expensive"] = run("always expensive", expensive, progress)
        for strategy in ("hybrid", "cascade"):
            router = BudgetRouter(cheap=cheap, expensive=expensive, strategy=strategy)
            results[f"router_{strategy}"] = run(f"router ({strategy})", router, progress)

    base_cost = results["always_expensive"]["cost_usd"]
    base_acc = results["always_expensive"]["accuracy"]
    for r in results.values():
        r["cost_vs_always_expensive"] = (
            round(float(r["cost_usd"] / base_cost), 4) if base_cost else None
        )
        r["accuracy_minus_always_expensive"] = round(r["accuracy"] - base_acc, 4)
        r["cost_usd"] = str(r["cost_usd"])
    report = {
        "cheap": args.cheap,
        "expensive": expensive_name,
        "offline_stand_in": args.expensive is None,
        "questions": len(QUESTIONS),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "router.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    _plot(report, args.out / "router.png")

    table = Table(title=f"{len(QUESTIONS)} questions: {args.cheap} vs {expensive_name}")
    for col in ("mode", "accuracy", "cost USD", "cost / always-expensive", "to expensive"):
        table.add_column(col, justify="right" if col != "mode" else "left")
    for mode, r in results.items():
        ratio = r["cost_vs_always_expensive"]
        table.add_row(
            mode,
            f"{r['accuracy']:.0%}",
            r["cost_usd"],
            "-" if ratio is None else f"{ratio:.2f}",
            f"{r.get('fraction_to_expensive', 1.0 if mode == 'always_expensive' else 0.0):.0%}",
        )
    console.print(table)
    return 0


def _plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(report["results"])
    acc = [report["results"][m]["accuracy"] for m in modes]
    cost = [float(Decimal(report["results"][m]["cost_usd"])) for m in modes]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.bar(modes, acc, color="#4c72b0")
    a.set_ylim(0, 1)
    a.set_title("accuracy")
    b.bar(modes, cost, color="#c44e52")
    b.set_title("cost (USD)")
    for ax in (a, b):
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle(
        f"{report['cheap']} vs {report['expensive']}"
        + (" (offline stand-in)" if report["offline_stand_in"] else ""),
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    raise SystemExit(main())
