"""Answer a question over a ~50k-token document: the on-device model reads it, the cloud
model plans and synthesizes, within a budget.

    python examples/minions_long_document.py                          # offline stand-in
    python examples/minions_long_document.py --remote openai/gpt-4.1-mini   # real cloud

Offline, the "cloud" model is the shipped SmolLM2 served by llama_cpp.server on 127.0.0.1,
billed at gpt-4.1-mini's price: the numbers are real, the answer is what a 135M model gives.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

from agent_budget import Budget, BudgetTracker
from agent_budget.delegation import MinionS, delegate
from agent_budget.delegation.corpus import NEEDLES, needle_document
from agent_budget.models import model_price, resolve
from agent_budget.models.local import LocalChatModel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--remote", default=None)
    ap.add_argument("--usd", default="0.01")
    args = ap.parse_args()
    server = None
    if args.remote:
        remote, remote_json = resolve(args.remote), "json_schema"
    else:
        from minions import start_server  # benchmarks/minions.py

        server = start_server(18767)
        p = model_price("openai/gpt-4.1-mini")
        remote = resolve(
            "openai/smollm2",
            api_base="http://127.0.0.1:18767/v1",
            price=(p.input_per_token * 1_000_000, p.output_per_token * 1_000_000),
            timeout=900,
        )
        remote_json = "json_object"
    try:
        local = LocalChatModel(n_ctx=4096, max_tokens=64, n_threads=1)
        document = needle_document(50_000)
        question = NEEDLES[0].question.question
        tracker = BudgetTracker(Budget(usd=Decimal(args.usd), name="example"))
        protocol = MinionS(
            local=local,
            remote=remote,
            max_rounds=2,
            max_jobs=2,
            max_chunk=2000,
            remote_json=remote_json,  # type: ignore[arg-type]
        )
        result = delegate(
            question,
            [document],
            local=local,
            remote=remote,
            mode="auto",
            tracker=tracker,
            minions=protocol,
        )
        print("question:", question)
        print("chose:", result.protocol, "-", result.reason)
        print(result.summary())
        print("spent:", tracker.spent.usd, "of", tracker.budget.usd)
        # Cloud calls count against model_calls; the on-device jobs are counted apart.
        print("cloud calls:", tracker.spent.model_calls, "local calls:", tracker.spent.local_calls)
        for node, spend in sorted(tracker.by_node.items()):
            print(f"  {node}: {spend.input_tokens}+{spend.output_tokens} tokens ${spend.usd}")
    finally:
        if server is not None:
            server.terminate()


if __name__ == "__main__":
    main()
