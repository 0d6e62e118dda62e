"""Benchmark the on-device model: load time, prefill and decode tokens/s, what the same
prompts would cost on a cloud model, and what deterministic prefix reuse costs.

Determinism (see agent_budget/models/_loader.py) evaluates prompts in aligned blocks and
reuses a cached prefix in whole blocks only. Measured here, side by side in one run: prefill
speed per block size (llama.cpp's n_batch), and turn 2 of a two-turn chat with a long system
prompt, answered with aligned reuse vs. from an empty cache.

    python benchmarks/local_model.py          # local:smollm2-135m vs gpt-4.1-mini prices
    python benchmarks/local_model.py --model local:/m.gguf --cloud anthropic/claude-3-5-haiku-latest

Writes benchmarks/results/local_model.json and local_model.png. Absolute times on shared
machines are noise; the ratios (decode vs prefill speed, local vs cloud cost) are the result.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from agent_budget.models import LocalChatModel, model_price, resolve
from agent_budget.models._loader import PREFIX_BLOCK, load

RESULTS = Path(__file__).parent / "results"
PROMPT_WORDS = "The quick brown fox jumps over the lazy dog while the budget keeps count. "


def _timed_completion(lm: Any, tokens: list[int], max_tokens: int) -> tuple[float, int]:
    """Seconds and generated tokens for one completion from an empty KV cache."""
    eos = lm.llama.token_eos()
    with lm.lock:
        lm.begin(tokens, reuse=False)  # no prefix reuse: every run pays its full prefill
        start = time.perf_counter()
        out = lm.llama.create_completion(
            prompt=tokens, max_tokens=max_tokens, temperature=0.0, logit_bias={eos: -1e9}
        )
        seconds = time.perf_counter() - start
    return seconds, int(out["usage"]["completion_tokens"])


SYSTEM = "You are a careful travel agent who plans trips within a budget. " * 45


def _chat_turns(lm: Any) -> tuple[list[int], list[int]]:
    """Prompt tokens of turn 1 and turn 2 of one conversation (turn 2 continues turn 1)."""
    first = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Plan a day."}]
    second = [
        *first,
        {"role": "assistant", "content": "Morning: museum. Afternoon: park. Evening: dinner."},
        {"role": "user", "content": "Make it cheaper."},
    ]
    return lm.render(first), lm.render(second)


def _turn_two(lm: Any, turns: tuple[list[int], list[int]], reuse: bool) -> tuple[float, int]:
    """Seconds to answer turn 2 right after turn 1, and how many prompt tokens were reused."""
    first, second = turns
    with lm.lock:
        lm.begin(first, reuse=False)
        lm.llama.create_completion(prompt=first, max_tokens=8, temperature=0.0)
        lm.end(first)
        start = time.perf_counter()
        reused = lm.begin(second, reuse=reuse)
        lm.llama.create_completion(prompt=second, max_tokens=8, temperature=0.0)
        lm.end(second)
        return time.perf_counter() - start, reused


def _blocks(path: Path, n_ctx: int, reps: int, progress: Progress) -> dict[str, Any]:
    """Per block size: prefill tok/s of a 1024-token prompt; turn 2 with and without reuse."""
    out: dict[str, Any] = {}
    sizes = [32, 64, 128, 256, 512]
    task = progress.add_task("block sizes", total=len(sizes) * reps * 3)
    for block in sizes:
        lm = load(path, n_ctx, n_batch=block)
        prompt = lm.llama.tokenize((PROMPT_WORDS * 200).encode(), add_bos=True)[:1024]
        _timed_completion(lm, prompt[:8], 1)
        turns = _chat_turns(lm)
        pre, warm, cold = [], [], []
        reused = 0
        for _ in range(reps):
            pre.append(_timed_completion(lm, prompt, 1)[0])
            progress.advance(task)
            seconds, reused = _turn_two(lm, turns, reuse=True)
            warm.append(seconds)
            progress.advance(task)
            cold.append(_turn_two(lm, turns, reuse=False)[0])
            progress.advance(task)
        out[str(block)] = {
            "prefill_tokens_per_second_1024": round(len(prompt) / statistics.median(pre), 1),
            "turn2_prompt_tokens": len(turns[1]),
            "turn2_reused_tokens": reused,
            "turn2_seconds_reuse": round(statistics.median(warm), 4),
            "turn2_seconds_no_reuse": round(statistics.median(cold), 4),
            "turn2_speedup_from_reuse": round(statistics.median(cold) / statistics.median(warm), 2),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="local:smollm2-135m")
    ap.add_argument("--cloud", default="openai/gpt-4.1-mini", help="model whose price to compare")
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    console = Console()

    model = resolve(args.model, n_ctx=args.n_ctx)
    assert isinstance(model, LocalChatModel)
    start = time.perf_counter()
    lm = load(Path(model.model_path or ""), args.n_ctx)
    load_seconds = time.perf_counter() - start

    lengths = [32, 128, 512, 1536]
    prefill: dict[int, float] = {}
    decode: list[float] = []
    # One untimed run first: llama.cpp sizes its compute buffers on the first evaluation.
    _timed_completion(lm, lm.llama.tokenize(b"warm up", add_bos=True), 2)
    with Progress(console=console) as progress:
        task = progress.add_task("prefill", total=len(lengths) * args.reps)
        for n in lengths:
            text_tokens = lm.llama.tokenize((PROMPT_WORDS * 200).encode(), add_bos=True)[:n]
            runs = []
            for _ in range(args.reps):
                seconds, _ = _timed_completion(lm, text_tokens, 1)
                runs.append(seconds)
                progress.advance(task)
            prefill[n] = n / statistics.median(runs)
        blocks = _blocks(Path(model.model_path or ""), args.n_ctx, args.reps, progress)
        task = progress.add_task("decode", total=args.reps)
        tokens = lm.llama.tokenize(b"Tell me a story about a fox.", add_bos=True)
        for _ in range(args.reps):
            one, _ = _timed_completion(lm, tokens, 1)
            many, produced = _timed_completion(lm, tokens, args.decode_tokens)
            decode.append((produced - 1) / max(many - one, 1e-9))
            progress.advance(task)

        # The same chat prompts, answered locally, priced as the local model and the cloud one.
        task = progress.add_task("price", total=5)
        prompts = [
            "What is the capital of France?",
            "Summarise: budgets make agents spend on purpose.",
            "List three fruits.",
            "Translate 'good morning' to Spanish.",
            "Write a haiku about the sea.",
        ]
        inp = out = 0
        chat = model.model_copy(update={"max_tokens": 48})
        for p in prompts:
            usage = chat.invoke(p).usage_metadata or {"input_tokens": 0, "output_tokens": 0}
            inp += usage["input_tokens"]
            out += usage["output_tokens"]
            progress.advance(task)

    local_usd = model_price(model.model_name).cost(inp, out)
    cloud_usd = model_price(args.cloud).cost(inp, out)
    decode_tps = statistics.median(decode)
    result: dict[str, Any] = {
        "model": model.model_name,
        "gguf": str(lm.path),
        "n_ctx": args.n_ctx,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "load_seconds": round(load_seconds, 4),
        "prefill_tokens_per_second": {str(k): round(v, 1) for k, v in prefill.items()},
        "decode_tokens_per_second": round(decode_tps, 1),
        "prefill_to_decode_ratio_at_512": round(prefill[512] / decode_tps, 2),
        "prefix_block_in_use": PREFIX_BLOCK,
        "by_block": blocks,
        "chat_prompts": len(prompts),
        "chat_tokens": {"input": inp, "output": out},
        "cost_usd": {"local": str(local_usd), args.cloud: str(cloud_usd)},
        "cloud_cost_per_1000_such_prompts_usd": str(
            (cloud_usd * 1000 / len(prompts)).quantize(Decimal("0.0001"))
        ),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "local_model.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(result, args.out / "local_model.png")

    table = Table(title=f"{model.model_name} on {platform.machine()}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("load time", f"{load_seconds:.2f} s")
    for k, v in prefill.items():
        table.add_row(f"prefill, {k}-token prompt", f"{v:,.0f} tok/s")
    table.add_row("decode", f"{decode_tps:,.1f} tok/s")
    for b, row in blocks.items():
        table.add_row(
            f"block {b}: prefill 1024 tok / turn 2 reuse vs none",
            f"{row['prefill_tokens_per_second_1024']:,.0f} tok/s / "
            f"{row['turn2_seconds_reuse']:.3f} s vs {row['turn2_seconds_no_reuse']:.3f} s "
            f"({row['turn2_reused_tokens']} of {row['turn2_prompt_tokens']} reused)",
        )
    table.add_row(f"{len(prompts)} prompts ({inp}+{out} tokens), local", f"${local_usd}")
    table.add_row(f"same tokens on {args.cloud}", f"${cloud_usd}")
    console.print(table)
    return 0


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4))
    pre = result["prefill_tokens_per_second"]
    a.bar(list(pre), list(pre.values()), color="#4c72b0", label="prefill")
    a.axhline(result["decode_tokens_per_second"], color="#dd8452", label="decode")
    a.set_xlabel("prompt tokens")
    a.set_ylabel("tokens / second")
    a.set_title(f"{result['model']} (load {result['load_seconds']} s)")
    a.legend()
    costs = {k: float(v) for k, v in result["cost_usd"].items()}
    b.bar(list(costs), list(costs.values()), color=["#55a868", "#c44e52"])
    b.set_ylabel("USD")
    b.set_title(f"{result['chat_prompts']} chat prompts, same tokens")
    blocks = result["by_block"]
    xs = list(blocks)
    width = 0.4
    pos = range(len(xs))
    c.bar(
        [i - width / 2 for i in pos],
        [blocks[x]["turn2_seconds_reuse"] for x in xs],
        width,
        label="turn 2, aligned reuse",
        color="#55a868",
    )
    c.bar(
        [i + width / 2 for i in pos],
        [blocks[x]["turn2_seconds_no_reuse"] for x in xs],
        width,
        label="turn 2, no reuse",
        color="#c44e52",
    )
    c.set_xticks(list(pos), [f"block {x}" for x in xs])
    c.set_ylabel("seconds")
    c.set_title(f"two-turn chat ({blocks[xs[0]]['turn2_prompt_tokens']}-token turn 2)")
    c.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    raise SystemExit(main())
