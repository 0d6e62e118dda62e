"""How MinionS's local jobs should run on llama.cpp here: serial, threads, a process pool,
or batched decoding, measured side by side on the same jobs in one run.

The jobs are one MinionS round's: ``--jobs`` chunks of a needle document (the best-ranked
for the question), each read by the shipped SmolLM2 under the JSON-schema grammar, with
the protocol's own prompts and output cap. The variants are interleaved, ``--repeats``
times, so drifting load on the shared machine hits them alike:

- ``serial``: one model, ``--threads`` llama.cpp threads, one job after another (the default);
- ``threads``: the same model, ``concurrency=--workers`` (`run_jobs` on a thread pool);
- ``pool``: ``--workers`` processes, each with its own model at ``threads / workers``
  threads (the same total), model load and warm-up excluded and reported apart;
- ``serial-1t``: one model at one thread (what a pool worker gets, alone).

Batched decoding (several sequences in one ``llama_decode``) is not exposed by
llama-cpp-python's high-level API; its upper bound is estimated from the measured split of
a job's time between prompt evaluation and generation: batching can shorten only the
generation part (prompt evaluation is already batched).

    flock /tmp/agent-budget-bench.lock nice -n 5 python benchmarks/minions_concurrency.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "results"
MAX_TOKENS = 64
CHUNK = 2000


def make_jobs(n: int, doc_tokens: int, size: int = CHUNK) -> list[tuple[Any, Any]]:
    from agent_budget.delegation.chunking import chunk_text, rank_chunks, terms
    from agent_budget.delegation.corpus import NEEDLES, needle_document
    from agent_budget.delegation.schema import Task

    question = NEEDLES[0].question.question
    chunks = chunk_text(needle_document(doc_tokens), by="paragraphs", size=size, overlap=100)
    task = Task(task=question, advice="Look for a number next to the words 'access code'.")
    return [(c, task) for c in rank_chunks(chunks, terms(question), n)]


def local_model(threads: int) -> Any:
    from agent_budget.models.local import LocalChatModel

    return LocalChatModel(n_ctx=2048, max_tokens=MAX_TOKENS, n_threads=threads)


def run_in_process(model: Any, jobs: list[tuple[Any, Any]], concurrency: int) -> dict[str, Any]:
    """The jobs through the protocol's own `run_jobs` (budgeted calls, grammar, parsing)."""
    from agent_budget import Budget, BudgetTracker
    from agent_budget.delegation.calls import Caller
    from agent_budget.delegation.jobs import local_format, run_jobs

    caller = Caller(BudgetTracker(Budget()), local=model, remote=None)
    start = time.perf_counter()
    records = run_jobs(
        caller,
        jobs,
        round_no=1,
        max_tokens=MAX_TOKENS,
        fmt=local_format(),
        concurrency=concurrency,
    )
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        "tokens": sum(r.input_tokens + r.output_tokens for r in caller.records),
        "answers": [r.answer for r in records],
        "errors": sum(1 for r in records if r.error),
    }


# --- the process pool: one model per worker process -------------------------------------------

_worker: dict[str, Any] = {}


def _init(threads: int) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    _worker["model"] = local_model(threads)
    _worker["model"].loaded  # noqa: B018 - load now, not in the timed part


def _one(job: tuple[Any, Any]) -> tuple[str, int, int]:
    from agent_budget.delegation.jobs import job_messages, local_format

    chunk, task = job
    reply = _worker["model"].invoke(
        job_messages(chunk, task), max_tokens=MAX_TOKENS, response_format=local_format()
    )
    usage = reply.usage_metadata or {}
    return str(reply.content), int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))


def run_pool(pool: ProcessPoolExecutor, jobs: list[tuple[Any, Any]]) -> dict[str, Any]:
    from agent_budget.delegation.jobs import parse_local

    start = time.perf_counter()
    outs = list(pool.map(_one, jobs))
    wall = time.perf_counter() - start
    answers: list[str | None] = []
    errors = 0
    for text, _, _ in outs:
        try:
            answers.append(parse_local(text).answer)
        except ValueError:
            answers.append(None)
            errors += 1
    return {
        "wall": wall,
        "tokens": sum(i + o for _, i, o in outs),
        "answers": answers,
        "errors": errors,
    }


def decode_share(model: Any, jobs: list[tuple[Any, Any]]) -> dict[str, float]:
    """Each job with a 1-token cap (prompt evaluation) and then the full cap, prefix reuse
    off so both evaluate the whole prompt: what generation takes is the only part batched
    decoding could shorten. Paired per job, so drifting load hits both alike."""
    from agent_budget.delegation.jobs import job_messages, local_format

    fresh = model.model_copy(update={"reuse_prefix": False})  # the same loaded model
    prefill = full = 0.0
    out_tokens = 0
    for chunk, task in jobs:
        for cap in (1, MAX_TOKENS):
            start = time.perf_counter()
            reply = fresh.invoke(
                job_messages(chunk, task), max_tokens=cap, response_format=local_format()
            )
            took = time.perf_counter() - start
            if cap == 1:
                prefill += took
            else:
                full += took
                out_tokens += int((reply.usage_metadata or {}).get("output_tokens", 0))
    return {
        "prefill_s": round(prefill, 3),
        "full_s": round(full, 3),
        "decode_s": round(max(0.0, full - prefill), 3),
        "decode_fraction": round(max(0.0, full - prefill) / full, 3) if full else 0.0,
        "output_tokens": out_tokens,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads in all")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--doc-tokens", type=int, default=20_000)
    ap.add_argument("--chunk", type=int, default=CHUNK, help="characters a job reads")
    ap.add_argument("--variants", default="serial,threads,pool,serial-1t")
    ap.add_argument("--out", default=str(OUT / "minions_concurrency"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    jobs = make_jobs(args.jobs, args.doc_tokens, args.chunk)
    variants = args.variants.split(",")
    print(f"{len(jobs)} jobs, load {load_before}", flush=True)
    per_worker = max(1, args.threads // args.workers)

    # One process can hold one loaded model per (file, n_ctx): the 1-thread reference runs
    # in a worker process of its own.
    shared = local_model(args.threads)
    shared.loaded  # noqa: B018
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding llama.cpp
    t0 = time.perf_counter()
    pool = ProcessPoolExecutor(args.workers, ctx, initializer=_init, initargs=(per_worker,))
    list(pool.map(_one, jobs[: args.workers]))  # load + warm up every worker
    pool_startup = time.perf_counter() - t0
    print(f"pool of {args.workers} up and warm in {pool_startup:.1f}s", flush=True)
    single = None
    if "serial-1t" in variants:
        single = ProcessPoolExecutor(1, ctx, initializer=_init, initargs=(1,))
        list(single.map(_one, jobs[:1]))
    run_in_process(shared, jobs[:1], 1)  # warm the shared model the same way
    print("warm", flush=True)

    walls: dict[str, list[float]] = {v: [] for v in variants}
    answers: dict[str, list[Any]] = {}
    tokens: dict[str, int] = {}
    try:
        for rep in range(args.repeats):
            # A different variant goes first each repeat: the order is not what is measured.
            order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
            for variant in order:
                if variant == "serial":
                    got = run_in_process(shared, jobs, 1)
                elif variant == "threads":
                    got = run_in_process(shared, jobs, args.workers)
                elif variant == "pool":
                    got = run_pool(pool, jobs)
                else:
                    assert single is not None
                    got = run_pool(single, jobs)
                walls[variant].append(round(got["wall"], 3))
                answers[variant] = got["answers"]
                tokens[variant] = got["tokens"]
                line = f"rep {rep} {variant}: {got['wall']:.2f}s ({got['errors']} invalid)"
                print(line, flush=True)
        split = decode_share(shared, jobs)
    finally:
        pool.shutdown()
        if single is not None:
            single.shutdown()
    median = {k: statistics.median(v) for k, v in walls.items()}
    base = median["serial"]
    # Batched decoding's best case: B sequences decoded for the price of one, i.e. the
    # generation share of the serial time shrinks by (1 - 1/B); prompt evaluation stays.
    batched_best = base * (1 - split["decode_fraction"] * (1 - 1 / args.workers))
    summary = {
        "jobs": args.jobs,
        "repeats": args.repeats,
        "threads_total": args.threads,
        "workers": args.workers,
        "max_tokens": MAX_TOKENS,
        "chunk_chars": args.chunk,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "walls": walls,
        "median_wall": median,
        "speedup_vs_serial": {k: round(base / v, 3) for k, v in median.items()},
        "tokens": tokens,
        "pool_startup_s": round(pool_startup, 3),
        "split": split,
        "batched_decoding_best_case_wall": round(batched_best, 3),
        "batched_decoding_best_case_speedup": round(base / batched_best, 3),
        "same_answers": {k: v == answers["serial"] for k, v in answers.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(summary, indent=1))
    plot(summary, args.out + ".png")
    print(json.dumps({k: summary[k] for k in ("median_wall", "speedup_vs_serial", "split")}))


def plot(summary: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*list(summary["median_wall"]), "batched (best case)"]
    values = [*list(summary["median_wall"].values()), summary["batched_decoding_best_case_wall"]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bars = ax.bar(names, values, color=[f"C{i}" for i in range(len(names))])
    bars[-1].set_hatch("//")
    for bar, v in zip(bars, values, strict=True):
        ax.annotate(f"{summary['median_wall']['serial'] / v:.2f}x", (bar.get_x(), v * 1.01))
    ax.set_ylabel(f"seconds for {summary['jobs']} jobs (median of {summary['repeats']})")
    ax.set_title(
        f"MinionS local jobs on llama.cpp, {summary['threads_total']} threads in all, "
        f"load {summary['loadavg_before'][0]}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
