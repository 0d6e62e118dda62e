"""Local-remote delegation benchmark: remote_only vs minion vs minions vs auto.

Long-document questions with known answers, built offline: needle documents (CPython's
documentation with planted facts) of --sizes tokens, and questions over the documentation
itself (``pydoc_data.topics``). Per mode: remote tokens, remote USD at a named cloud price,
local tokens and seconds, accuracy, budget overruns. Writes JSON + PNG under
benchmarks/results/.

Offline, the remote is a ``python -m llama_cpp.server`` on 127.0.0.1 serving the shipped
SmolLM2, billed at --price-as (default openai/gpt-4.1-mini): tokens and dollars are real
measurements of the protocol, accuracy is what a 135M model manages. ``--remote
openai/gpt-4.1-mini`` (with a key) runs it for real.

Each run writes one part (``--tag``) under results/minions_parts/, so the sizes can be
split over several runs of the shared benchmark lock; ``--merge`` joins the parts into
results/minions.json and minions.png (per size: remote tokens and USD, and how many times
fewer than remote_only). Local seconds depend on the machine's load; the token counts and
dollars do not.

    python benchmarks/minions.py --sizes 20000,50000,100000 --pydoc 0 --tag part-a
    python benchmarks/minions.py --sizes 200000 --pydoc 2 --tag part-b
    python benchmarks/minions.py --merge
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.progress import Progress

from agent_budget import Budget, BudgetTracker
from agent_budget.delegation import MinionS, delegate
from agent_budget.delegation.corpus import NEEDLES, PYDOC_QUESTIONS, needle_document, pydoc_document
from agent_budget.delegation.minion import Minion
from agent_budget.models import model_price, resolve
from agent_budget.models.catalog import locate
from agent_budget.models.local import LocalChatModel

MODES = ("remote_only", "minion", "minions", "auto")
OUT = Path(__file__).parent / "results"


def start_server(port: int) -> subprocess.Popen[bytes]:
    path = locate("local:smollm2-135m")[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(path),
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "1",
            "--verbose",
            "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not start")


def remote_only_tokens(doc_tokens: int, question: str) -> int:
    """What remote_only sends: the whole document. Offline the stand-in's 2k window cannot
    take it, so its tokens are counted, not sent (the USD is priced the same way)."""
    return doc_tokens + len(question) // 4 + 30


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="20000,50000,100000,200000")
    ap.add_argument("--questions", type=int, default=1, help="needle questions per size")
    ap.add_argument("--pydoc", type=int, default=1, help="questions over the documentation")
    ap.add_argument(
        "--pydoc-tokens", type=int, default=0, help="cut the documentation (0: all of it)"
    )
    ap.add_argument("--remote", default=None, help="a LiteLLM model name: a real run")
    ap.add_argument("--price-as", default="openai/gpt-4.1-mini")
    ap.add_argument("--budget-usd", default="0.05")
    ap.add_argument("--port", type=int, default=18766)
    ap.add_argument("--local-ctx", type=int, default=4096, help="the local model's window")
    ap.add_argument("--remote-max-tokens", type=int, default=256)
    ap.add_argument(
        "--auto",
        choices=("run", "choose"),
        default="run",
        help="run: auto runs the protocol it picks; choose: auto records its pick and reason, "
        "and when it picks minions, that mode's run stands for it (marked reused)",
    )
    ap.add_argument("--tag", default="all", help="this run's part (several parts, one merge)")
    ap.add_argument("--merge", action="store_true", help="merge the parts into JSON + PNG")
    ap.add_argument("--out", default=str(OUT / "minions"))
    args = ap.parse_args()
    parts = Path(args.out + "_parts")
    if args.merge:
        merge(parts, args.out, args.price_as)
        return
    rows = run(args)
    parts.mkdir(parents=True, exist_ok=True)
    (parts / f"{args.tag}.json").write_text(
        json.dumps(
            {
                "price_as": args.price_as,
                "remote": args.remote or "llama_cpp.server smollm2 (offline)",
                "budget_usd": args.budget_usd,
                "rows": rows,
            },
            indent=1,
            default=str,
        )
    )
    print(table(summarize(rows), args.price_as))


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    price = model_price(args.price_as)
    per_m = (price.input_per_token * 1_000_000, price.output_per_token * 1_000_000)
    server = None
    if args.remote:
        remote = resolve(args.remote)
        remote_json = "json_schema"
    else:
        server = start_server(args.port)
        remote = resolve(
            "openai/smollm2", api_base=f"http://127.0.0.1:{args.port}/v1", price=per_m, timeout=900
        )
        remote_json = "json_object"
    local = LocalChatModel(n_ctx=args.local_ctx, max_tokens=64, n_threads=1)
    ms = MinionS(
        local=local,
        remote=remote,
        max_rounds=2,
        max_jobs=2,
        max_chunk=2000,
        local_max_tokens=64,
        remote_max_tokens=args.remote_max_tokens,
        remote_json=remote_json,
    )  # type: ignore[arg-type]
    mn = Minion(
        local=local,
        remote=remote,
        max_rounds=2,
        local_max_tokens=64,
        remote_max_tokens=args.remote_max_tokens,
        remote_json=remote_json,
    )  # type: ignore[arg-type]
    cases: list[tuple[str, str, Any]] = []
    for size in [int(s) for s in args.sizes.split(",") if s]:
        doc = needle_document(size)
        for needle in NEEDLES[: args.questions]:
            cases.append((f"needle-{size // 1000}k", doc, needle.question))
    if args.pydoc:
        pydoc = pydoc_document(args.pydoc_tokens or None)
        for q in PYDOC_QUESTIONS[: args.pydoc]:
            cases.append(("pydoc", pydoc, q))
    rows: list[dict[str, Any]] = []
    load = os.getloadavg()
    try:
        with Progress() as progress:
            task = progress.add_task("minions benchmark", total=len(cases) * len(MODES))
            for name, doc, q in cases:
                doc_tokens = local.loaded.count_tokens(doc)
                for mode in MODES:  # interleaved: every mode on the same case in turn
                    progress.update(task, description=f"{name} {mode}")
                    budget = Budget(usd=Decimal(args.budget_usd))
                    tracker = BudgetTracker(budget)
                    row: dict[str, Any] = {
                        "case": name,
                        "doc_tokens": doc_tokens,
                        "mode": mode,
                        "question": q.question,
                        "loadavg_1m": round(os.getloadavg()[0], 2),
                    }
                    if mode == "remote_only" and not args.remote:
                        row.update(remote_only_counted(tracker, remote, doc_tokens, q.question))
                    elif mode == "auto" and args.auto == "choose":
                        row.update(auto_chosen(rows[-1], q.question, doc, local, remote, tracker))
                    else:
                        start = time.perf_counter()
                        r = delegate(
                            q.question,
                            [doc],
                            local=local,
                            remote=remote,
                            mode=mode,  # type: ignore[arg-type]
                            tracker=tracker,
                            minion=mn,
                            minions=ms,
                        )
                        remote_calls = [c for c in r.calls if c.role == "remote"]
                        row.update(
                            remote_tokens=r.remote_input_tokens + r.remote_output_tokens,
                            remote_input_tokens=r.remote_input_tokens,
                            remote_usd=float(r.remote_usd),
                            remote_calls=sum(1 for c in remote_calls if c.outcome != "refused"),
                            local_tokens=r.local_tokens,
                            local_calls=sum(1 for c in r.calls if c.role == "local"),
                            local_seconds=r.local_seconds,
                            wall_seconds=round(time.perf_counter() - start, 2),
                            correct=q.correct(r.answer),
                            answer=r.answer,
                            chosen=r.protocol,
                            reason=r.reason,
                            rounds=len(r.rounds),
                            cut_short=r.cut_short,
                            stop=r.stop_reason,
                            overrun=bool(tracker.spent.usd > budget.usd or tracker.held.usd),
                        )
                    rows.append(row)
                    progress.advance(task)
    finally:
        if server is not None:
            server.terminate()
    print(f"load average at start: {load}")
    return rows


def remote_only_counted(
    tracker: BudgetTracker, remote: Any, doc_tokens: int, question: str
) -> dict[str, Any]:
    """remote_only offline: the stand-in's window cannot take the document, so its tokens
    are counted and priced, not sent; the budget is asked whether it would pay the call."""
    from agent_budget.delegation.calls import model_name

    tokens = remote_only_tokens(doc_tokens, question)
    worst = tracker.model_worst_case(model_name(remote), tokens, 256, node="round-1/remote")
    price = tracker.prices.model_price(model_name(remote))
    return {
        "remote_tokens": tokens + 16,
        "remote_input_tokens": tokens,
        "remote_usd": float(price.cost(tokens, 16)),
        "remote_calls": 1,
        "local_tokens": 0,
        "local_calls": 0,
        "local_seconds": 0.0,
        "correct": None,
        "chosen": "remote_only",
        "counted_not_sent": True,
        "budget_pays": tracker.fits(worst),
        "overrun": False,
    }


def auto_chosen(
    minions_row: dict[str, Any],
    question: str,
    doc: str,
    local: Any,
    remote: Any,
    tracker: BudgetTracker,
) -> dict[str, Any]:
    """auto's pick and reason, from `choose` on the same budget; when it picks minions (the
    mode run just before, with the same settings), that run's numbers stand for it."""
    from agent_budget.delegation import choose

    mode, reason = choose(question, [doc], local, remote, tracker)
    if mode != "minions" or minions_row["mode"] != "minions":
        raise SystemExit(f"auto chose {mode}: run it with --auto run")
    keep = {k: v for k, v in minions_row.items() if k not in ("mode", "loadavg_1m")}
    return {**keep, "chosen": mode, "reason": reason, "reused_from": "minions"}


def merge(parts: Path, out: str, price_as: str) -> None:
    rows: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    for part in sorted(parts.glob("*.json")):
        data = json.loads(part.read_text())
        rows += [{**r, "part": part.stem} for r in data["rows"]]
        meta = {k: v for k, v in data.items() if k != "rows"}
    summary = summarize(rows)
    by_case = per_case(rows)
    Path(out + ".json").write_text(
        json.dumps({**meta, "by_case": by_case, "summary": summary, "rows": rows}, indent=1)
    )
    plot(by_case, summary, out + ".png", price_as)
    print(table(summary, price_as))
    print()
    print(case_table(by_case))


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    values = [float(r[key]) for r in rows if r.get(key) is not None]
    return sum(values) / len(values) if values else 0.0


def per_case(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (case, mode): means over the case's questions, with ratios to remote_only."""
    out = []
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case]
        base = [r for r in mine if r["mode"] == "remote_only"]
        base_tokens = _mean(base, "remote_tokens") or 1.0
        base_usd = _mean(base, "remote_usd") or 1.0
        for mode in MODES:
            m = [r for r in mine if r["mode"] == mode]
            if not m:
                continue
            graded = [r for r in m if r.get("correct") is not None]
            out.append(
                {
                    "case": case,
                    "doc_tokens": m[0]["doc_tokens"],
                    "mode": mode,
                    "questions": len(m),
                    "remote_tokens": _mean(m, "remote_tokens"),
                    "remote_usd": _mean(m, "remote_usd"),
                    "tokens_x_fewer": round(base_tokens / max(1.0, _mean(m, "remote_tokens")), 1),
                    "usd_x_less": round(base_usd / max(1e-12, _mean(m, "remote_usd")), 1),
                    "local_tokens": _mean(m, "local_tokens"),
                    "local_seconds": _mean(m, "local_seconds"),
                    "correct": (
                        f"{sum(bool(r['correct']) for r in graded)}/{len(graded)}"
                        if graded
                        else "n/a"
                    ),
                    "chosen": sorted({r["chosen"] for r in m}),
                    "cut_short": sum(bool(r.get("cut_short")) for r in m),
                    "budget_pays": all(r.get("budget_pays", True) for r in m),
                    "overruns": sum(bool(r.get("overrun")) for r in m),
                    "loadavg_1m": _mean(m, "loadavg_1m"),
                }
            )
    return out


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for mode in MODES:
        mine = [r for r in rows if r["mode"] == mode]
        graded = [r for r in mine if r.get("correct") is not None]
        out.append(
            {
                "mode": mode,
                "runs": len(mine),
                "remote_tokens": _mean(mine, "remote_tokens"),
                "remote_usd": _mean(mine, "remote_usd"),
                "local_tokens": _mean(mine, "local_tokens"),
                "local_seconds": _mean(mine, "local_seconds"),
                "accuracy": (
                    None if not graded else sum(bool(r["correct"]) for r in graded) / len(graded)
                ),
                "correct": sum(bool(r["correct"]) for r in graded),
                "graded": len(graded),
                "overruns": sum(bool(r.get("overrun")) for r in mine),
            }
        )
    return out


def table(summary: list[dict[str, Any]], price_as: str) -> str:
    lines = [
        f"| mode | runs | remote tokens | remote USD ({price_as}) | local tokens | local s | correct | overruns |",  # noqa: E501
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        acc = "n/a" if s["accuracy"] is None else f"{s['correct']}/{s['graded']}"
        lines.append(
            f"| {s['mode']} | {s['runs']} | {s['remote_tokens']:,.0f} | ${s['remote_usd']:.5f} | "
            f"{s['local_tokens']:,.0f} | {s['local_seconds']:.1f} | {acc} | {s['overruns']} |"
        )
    return "\n".join(lines)


def case_table(by_case: list[dict[str, Any]]) -> str:
    lines = [
        "| case | doc tokens | mode | remote tokens | x fewer | remote USD | x less | local tokens | local s | correct | overruns |",  # noqa: E501
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in by_case:
        lines.append(
            f"| {c['case']} | {c['doc_tokens']:,} | {c['mode']} | {c['remote_tokens']:,.0f} | "
            f"{c['tokens_x_fewer']} | ${c['remote_usd']:.5f} | {c['usd_x_less']} | "
            f"{c['local_tokens']:,.0f} | {c['local_seconds']:.0f} | {c['correct']} | "
            f"{c['overruns']} |"
        )
    return "\n".join(lines)


def plot(
    by_case: list[dict[str, Any]], summary: list[dict[str, Any]], path: str, price_as: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    needles = [c for c in by_case if c["case"].startswith("needle")]
    for mode in MODES:
        pts = sorted((c["doc_tokens"], c["remote_tokens"]) for c in needles if c["mode"] == mode)
        if pts:
            xs, ys = zip(*pts, strict=True)
            style = "--" if mode == "auto" else "-"  # auto picked minions: the lines overlap
            ax[0].plot(xs, ys, style, marker="o", label=mode)
    ax[0].set_xscale("log")
    ax[0].set_yscale("log")
    ax[0].set_xlabel("document tokens (needle documents)")
    ax[0].set_title("remote tokens per question (log-log)")
    ax[0].legend()
    modes = [s["mode"] for s in summary]
    ax[1].bar(modes, [s["remote_usd"] for s in summary])
    ax[1].set_yscale("log")
    ax[1].set_title(f"mean remote USD per question at {price_as} (log)")
    for i, s in enumerate(summary):
        acc = "n/a" if s["accuracy"] is None else f"{s['correct']}/{s['graded']} right"
        ax[1].annotate(acc, (i, s["remote_usd"]), ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
