"""What a delegation run returns: the answer, whether it was cut short and why, and every
call it made with its tokens, dollars and seconds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from agent_budget.delegation.calls import Caller, CallRecord

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agent_budget.tracker import BudgetTracker, Charge, Reservation

Mode = Literal["remote_only", "local_only", "minion", "minions", "auto"]
"""Who reads the documents.

- ``"remote_only"``: the cloud model reads everything (one call): best quality, full price.
- ``"local_only"``: the on-device model reads everything; nothing is paid to the cloud.
- ``"minion"``: the local model holds the context and chats with the remote model, which
  never sees it (needs the context to fit the local window, else the most relevant part).
- ``"minions"``: the remote model plans jobs, the local model runs them chunk by chunk, the
  remote model synthesizes, round after round while the budget pays.
- ``"auto"``: one of the above, by context length and what is left of the budget; the
  reason is recorded.
"""

StopReason = Literal[
    "answered", "max_rounds", "budget", "remote_error", "empty_input", "no_remote_answer"
]


@dataclass
class JobRecord:
    round: int
    job: int
    task: str
    chunk: str
    answer: str | None = None
    explanation: str = ""
    citation: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RoundRecord:
    round: int
    plan: dict[str, Any] | None = None
    jobs: list[JobRecord] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "plan": self.plan,
            "jobs": [j.to_dict() for j in self.jobs],
            "decision": self.decision,
            "errors": list(self.errors),
        }


@dataclass
class DelegationResult:
    """The outcome of `delegate` (or a protocol's ``run``)."""

    question: str
    answer: str | None
    protocol: str
    reason: str
    """Why this protocol was used (``auto`` says what it weighed)."""
    stop_reason: StopReason = "answered"
    cut_short: bool = False
    """True when the protocol wanted another round (or call) the budget could not pay, or a
    remote call failed mid-round: ``answer`` is then the best one so far."""
    rounds: list[RoundRecord] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    document_chars: int = 0

    def _sum(self, role: str, attr: str) -> Any:
        values = [getattr(c, attr) for c in self.calls if c.role == role]
        return sum(values, Decimal(0) if attr == "usd" else 0)

    @property
    def remote_input_tokens(self) -> int:
        return int(self._sum("remote", "input_tokens"))

    @property
    def remote_output_tokens(self) -> int:
        return int(self._sum("remote", "output_tokens"))

    @property
    def remote_usd(self) -> Decimal:
        return Decimal(self._sum("remote", "usd"))

    @property
    def local_tokens(self) -> int:
        return int(self._sum("local", "input_tokens") + self._sum("local", "output_tokens"))

    @property
    def local_seconds(self) -> float:
        return round(float(self._sum("local", "seconds")), 3)

    def hold(self, caller: Caller, charges: list[Charge], what: str) -> list[Reservation] | None:
        """Reserve ``what``'s remote calls (a round, a turn) all or none; when the budget
        cannot pay them, the run is cut short here and says which step did not start."""
        held = caller.reserve(charges)
        if held is None:
            self.cut_short, self.stop_reason = True, "budget"
            self.errors.append(f"{what} not started: the budget cannot pay for it")
        return held

    def finish(self) -> DelegationResult:
        """Gather the rounds' and the jobs' errors into ``errors`` (once, at the end)."""
        self.errors.extend(e for rec in self.rounds for e in rec.errors)
        self.errors.extend(j.error for rec in self.rounds for j in rec.jobs if j.error)
        return self

    def summary(self) -> str:
        """One line an agent can read: the answer and how it was reached."""
        note = f" (cut short: {self.stop_reason})" if self.cut_short else ""
        answer = self.answer if self.answer is not None else "no answer found"
        return (
            f"{answer}{note} [{self.protocol}, {len(self.rounds)} round(s), remote "
            f"{self.remote_input_tokens + self.remote_output_tokens} tokens "
            f"${self.remote_usd:.6f}, local {self.local_tokens} tokens {self.local_seconds:.1f}s]"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "protocol": self.protocol,
            "reason": self.reason,
            "stop_reason": self.stop_reason,
            "cut_short": self.cut_short,
            "rounds": [r.to_dict() for r in self.rounds],
            "calls": [c.to_dict() for c in self.calls],
            "errors": list(self.errors),
            "remote_input_tokens": self.remote_input_tokens,
            "remote_output_tokens": self.remote_output_tokens,
            "remote_usd": str(self.remote_usd),
            "local_tokens": self.local_tokens,
            "local_seconds": self.local_seconds,
        }


def begin(
    protocol: str,
    reason: str,
    question: str,
    documents: Sequence[str],
    tracker: BudgetTracker,
    *,
    local: BaseChatModel | None,
    remote: BaseChatModel | None,
) -> tuple[Caller, DelegationResult, bool]:
    """A protocol run's caller and result, the result recording every call; the flag is
    False (and the result says why) when there is nothing to do: an empty question or no
    text in the documents."""
    caller = Caller(tracker, local=local, remote=remote)
    result = DelegationResult(question, None, protocol, reason)
    result.calls = caller.records
    result.document_chars = sum(len(d) for d in documents)
    if question.strip() and any(d.strip() for d in documents):
        return caller, result, True
    result.stop_reason = "empty_input"
    result.errors.append("empty question" if not question.strip() else "empty document")
    return caller, result, False
