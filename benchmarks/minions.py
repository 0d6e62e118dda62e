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

    python benchmarks/minions.py --sizes 20000,50000 --questions 2
"""

from __future__ import annotations

import argparse
import json
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
    ap.add_argument("--pydoc", type=int, default=1, help="pydoc questions")
    ap.add_argument("--remote", default=None, help="a LiteLLM model name: a real run")
    ap.add_argument("--price-as", default="openai/gpt-4.1-mini")
    ap.add_argument("--budget-usd", default="0.05")
    ap.add_argument("--port", type=int, default=18766)
    ap.add_argument("--out", default=str(OUT / "minions"))
    args = ap.parse_args()
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
    local = LocalChatModel(n_ctx=4096, max_tokens=64, n_threads=1)
    ms = MinionS(
        local=local,
        remote=remote,
        max_rounds=2,
        max_jobs=2,
        max_chunk=2000,
        local_max_tokens=64,
        remote_max_tokens=256,
        remote_json=remote_json,
    )  # type: ignore[arg-type]
    mn = Minion(
        local=local,
        remote=remote,
        max_rounds=2,
        local_max_tokens=64,
        remote_max_tokens=200,
        remote_json=remote_json,
    )  # type: ignore[arg-type]
    cases: list[tuple[str, int, str, Any]] = []
    for size in [int(s) for s in args.sizes.split(",") if s]:
        doc = needle_document(size)
        for needle in NEEDLES[: args.questions]:
            cases.append((f"needle-{size}", size, doc, needle.question))
    pydoc = pydoc_document(50_000)
    for q in PYDOC_QUESTIONS[: args.pydoc]:
        cases.append(("pydoc-50000", 50_000, pydoc, q))
    rows: list[dict[str, Any]] = []
    try:
        with Progress() as progress:
            task = progress.add_task("minions benchmark", total=len(cases) * len(MODES))
            for name, _size, doc, q in cases:
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
                    }
                    if mode == "remote_only" and not args.remote:
                        tokens = remote_only_tokens(doc_tokens, q.question)
                        row.update(
                            remote_tokens=tokens + 16,
                            local_tokens=0,
                            local_seconds=0.0,
                            remote_usd=float(price.cost(tokens, 16)),
                            correct=None,
                            chosen="remote_only",
                            counted_not_sent=True,
                            overrun=False,
                        )
                    else:
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
                        row.update(
                            remote_tokens=r.remote_input_tokens + r.remote_output_tokens,
                            remote_usd=float(r.remote_usd),
                            local_tokens=r.local_tokens,
                            local_seconds=r.local_seconds,
                            correct=q.correct(r.answer),
                            answer=r.answer,
                            chosen=r.protocol,
                            reason=r.reason,
                            cut_short=r.cut_short,
                            stop=r.stop_reason,
                            overrun=bool(tracker.spent.usd > budget.usd or tracker.held.usd),
                        )
                    rows.append(row)
                    progress.advance(task)
    finally:
        if server is not None:
            server.terminate()
    summary = summarize(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(
        json.dumps(
            {
                "price_as": args.price_as,
                "remote": args.remote or "llama_cpp.server smollm2 (offline)",
                "rows": rows,
                "summary": summary,
            },
            indent=1,
            default=str,
        )
    )
    plot(summary, args.out + ".png", args.price_as)
    print(table(summary, args.price_as))


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for mode in MODES:
        mine = [r for r in rows if r["mode"] == mode]
        graded = [r for r in mine if r.get("correct") is not None]
        out.append(
            {
                "mode": mode,
                "runs": len(mine),
                "remote_tokens": sum(r["remote_tokens"] for r in mine) / max(1, len(mine)),
                "remote_usd": sum(r["remote_usd"] for r in mine) / max(1, len(mine)),
                "local_tokens": sum(r["local_tokens"] for r in mine) / max(1, len(mine)),
                "local_seconds": sum(r["local_seconds"] for r in mine) / max(1, len(mine)),
                "accuracy": None
                if not graded
                else sum(bool(r["correct"]) for r in graded) / len(graded),
                "overruns": sum(bool(r.get("overrun")) for r in mine),
            }
        )
    return out


def table(summary: list[dict[str, Any]], price_as: str) -> str:
    lines = [
        f"| mode | remote tokens | remote USD ({price_as}) | local tokens | local s | accuracy | overruns |",  # noqa: E501
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        acc = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.0%}"
        lines.append(
            f"| {s['mode']} | {s['remote_tokens']:.0f} | ${s['remote_usd']:.5f} | "
            f"{s['local_tokens']:.0f} | {s['local_seconds']:.1f} | {acc} | {s['overruns']} |"
        )
    return "\n".join(lines)


def plot(summary: list[dict[str, Any]], path: str, price_as: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    modes = [s["mode"] for s in summary]
    ax[0].bar(modes, [s["remote_tokens"] for s in summary])
    ax[0].set_yscale("log")
    ax[0].set_title("remote tokens per question (log)")
    ax[1].bar(modes, [s["remote_usd"] for s in summary])
    ax[1].set_title(f"remote USD per question at {price_as}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
