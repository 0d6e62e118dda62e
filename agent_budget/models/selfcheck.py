"""Probe the on-device model in a child process, so a native crash cannot take the caller down.

A llama.cpp build with instructions the CPU refuses dies with SIGILL, not an exception: in the
test run or the demo it would kill the whole process. `probe()` runs one real completion on a
prompt of a few hundred tokens (long enough to reach the batched matmul kernels) in a
subprocess and reports how that went.

``AGENT_BUDGET_PROBE_SIGNAL=SIGILL`` makes the child kill itself with that signal after loading
the model: a deliberately broken build, for testing what callers do with one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from agent_budget.models.portability import REBUILD_HINT

PROBE_WORDS = "The budget tracker counts every call the agent makes and what it costs. "


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str
    returncode: int


def probe(model: str = "local:smollm2-135m", *, timeout: float = 300.0) -> ProbeResult:
    """Load `model` and complete a ~300-token prompt in a child process."""
    cmd = [sys.executable, "-m", "agent_budget.models.selfcheck", model]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"the local model probe did not finish in {timeout:.0f} s", -1)
    if done.returncode == 0:
        return ProbeResult(True, done.stdout.strip(), 0)
    tail = (done.stderr or done.stdout).strip()[-1500:]
    if done.returncode < 0:
        sig = signal.Signals(-done.returncode).name
        why = (
            "the CPU refused an instruction the llama.cpp build uses (AMX or AVX-512 compiled "
            "by a native build)"
            if sig == "SIGILL"
            else "llama.cpp crashed"
        )
        return ProbeResult(
            False,
            f"the on-device model ({model}) died with {sig} in a probe completion: {why}. "
            f"{REBUILD_HINT}\n{tail}",
            done.returncode,
        )
    return ProbeResult(
        False, f"the on-device model ({model}) failed to run:\n{tail}", done.returncode
    )


def _child(model_name: str) -> int:
    from agent_budget.models import resolve

    model = resolve(model_name, n_ctx=1024)
    lm = model.loaded  # type: ignore[attr-defined]
    sig = os.environ.get("AGENT_BUDGET_PROBE_SIGNAL")
    if sig:
        os.kill(os.getpid(), signal.Signals[sig])
    tokens = lm.llama.tokenize((PROBE_WORDS * 30).encode(), add_bos=True)[:300]
    with lm.lock:
        lm.llama.reset()
        out = lm.llama.create_completion(prompt=tokens, max_tokens=4, temperature=0.0)
    print(f"ok: {len(tokens)} prompt tokens, {out['usage']['completion_tokens']} generated")
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1] if len(sys.argv) > 1 else "local:smollm2-135m"))
