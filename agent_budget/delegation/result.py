"""What a delegation run returns: the answer, whether it was cut short and why, and every
call it made with its tokens, dollars and seconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from agent_budget.delegation.calls import CallRecord

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
