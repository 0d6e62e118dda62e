"""`delegate`: answer a question over documents with the protocol that fits the budget.

It runs on a child of the current budget (the tracker passed in, else the `with_budget` or
`BudgetMiddleware` run this code executes in, else a budget of its own), so its spend shows
in the caller's spend tree under ``name`` and its calls in the ledger as
``name/round-N/job-M``. Every choice is recorded with its reason (a tracker event too).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from langchain_core.language_models import BaseChatModel

from agent_budget.budget import Budget
from agent_budget.delegation.calls import Caller, estimate_tokens
from agent_budget.delegation.minion import Minion, local_only, local_window_chars, remote_only
from agent_budget.delegation.minions import MinionS
from agent_budget.delegation.result import DelegationResult, Mode
from agent_budget.tracker import BudgetTracker

SHORT_CONTEXT_TOKENS = 4000
"""``auto``: a context up to this many tokens goes to the remote model whole when the budget
can pay for it (splitting it would cost more round trips than it saves)."""

MODES: tuple[str, ...] = ("remote_only", "local_only", "minion", "minions", "auto")


def _model(spec: BaseChatModel | str | None, **kwargs: Any) -> BaseChatModel | None:
    if spec is None or isinstance(spec, BaseChatModel):
        return spec
    from agent_budget.models import resolve

    return resolve(spec, **kwargs)


def budget_tracker(
    tracker: BudgetTracker | None, budget: Budget | None, name: str
) -> BudgetTracker:
    """A child of ``tracker`` (or of the enclosing budgeted run) limited by ``budget``; with
    neither, a tracker of ``budget`` (unlimited if None) of its own."""
    if tracker is None:
        try:
            from agent_budget.integrations.langgraph import current_tracker

            tracker = current_tracker()
        except ImportError:  # pragma: no cover - langgraph is a dependency
            tracker = None
    if tracker is None:
        own = BudgetTracker(budget or Budget(name=name))
        own.name = name
        return own
    return tracker.child(name, budget)


def choose(
    question: str,
    documents: Sequence[str],
    local: BaseChatModel | None,
    remote: BaseChatModel | None,
    tracker: BudgetTracker,
    minions: MinionS | None = None,
) -> tuple[Mode, str]:
    """``auto``'s pick and why: by the context's length and what is left of the budget."""
    chars = sum(len(d) for d in documents)
    tokens = estimate_tokens(chars, 2)
    if remote is None:
        return "local_only", "no remote model given"
    if local is None:
        return "remote_only", "no local model given"
    caller = Caller(tracker, local=local, remote=remote)
    whole = caller.worst_case("remote", tokens + estimate_tokens(len(question), 0), 256, "probe")
    left = tracker.remaining_usd()
    left_text = "unlimited" if left is None else f"${left:.6f}"
    if tokens <= SHORT_CONTEXT_TOKENS and tracker.fits(whole):
        return "remote_only", (
            f"short context (~{tokens} tokens <= {SHORT_CONTEXT_TOKENS}): the remote reads it "
            f"whole for at most ${whole.usd:.6f} ({left_text} left)"
        )
    ms = minions or MinionS(local=local, remote=remote)
    first = ms.round_worst_case(caller, question, "", 1)
    round_usd = sum((c.usd for c in first), Decimal(0))
    both = first[0].__class__(
        "model",
        first[0].name,
        round_usd,
        sum(c.input_tokens for c in first),
        sum(c.output_tokens for c in first),
    )
    if not tracker.fits(both):
        return "local_only", (
            f"the budget ({left_text} left) cannot pay one remote round "
            f"(up to ${round_usd:.6f}): the local model answers alone"
        )
    window = local_window_chars(local, 96)
    if chars <= window:
        return "minion", (
            f"the context (~{tokens} tokens) fits the local window: the local model holds it "
            "and the remote asks questions"
        )
    return "minions", (
        f"the context (~{tokens} tokens) is over the local window (~{window // 3} tokens): "
        f"split into local jobs; a round costs up to ${round_usd:.6f} ({left_text} left)"
    )


def delegate(
    question: str,
    documents: str | Sequence[str],
    *,
    local: BaseChatModel | str | None = "local:smollm2-135m",
    remote: BaseChatModel | str | None = None,
    mode: Mode = "auto",
    budget: Budget | None = None,
    tracker: BudgetTracker | None = None,
    name: str = "minions",
    minion: Minion | None = None,
    minions: MinionS | None = None,
) -> DelegationResult:
    """Answer ``question`` over ``documents``; ``mode`` picks who reads them (see `Mode`).

    ``budget`` limits this delegation as a child of the current budget; ``tracker`` gives
    the parent explicitly. Models are chat models or names for `models.resolve`.
    """
    if mode not in MODES:
        raise ValueError(f"delegate mode {mode!r}: use one of {', '.join(MODES)}")
    docs = [documents] if isinstance(documents, str) else list(documents)
    local_model = _model(local, n_ctx=8192) if isinstance(local, str) else local
    remote_model = _model(remote)
    run_tracker = budget_tracker(tracker, budget, name)
    if mode == "auto":
        mode, reason = choose(question, docs, local_model, remote_model, run_tracker, minions)
    else:
        reason = f"delegate={mode} was asked for"
    run_tracker.record_event("delegation", mode=mode, reason=reason)
    if mode in ("local_only", "minion", "minions") and local_model is None:
        raise ValueError(f"delegate={mode} needs a local model")
    if mode in ("remote_only", "minion", "minions") and remote_model is None:
        raise ValueError(f"delegate={mode} needs a remote model")
    if mode == "remote_only":
        assert remote_model is not None
        return remote_only(question, docs, remote_model, run_tracker, reason=reason)
    assert local_model is not None
    if mode == "local_only":
        return local_only(question, docs, local_model, run_tracker, reason=reason)
    assert remote_model is not None
    if mode == "minion":
        m = minion or Minion(local=local_model, remote=remote_model)
        return m.run(question, docs, run_tracker, reason=reason)
    ms = minions or MinionS(local=local_model, remote=remote_model)
    return ms.run(question, docs, run_tracker, reason=reason)
