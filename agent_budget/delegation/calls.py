"""Budgeted model calls for the delegation protocols.

Each call is reserved on the protocol's tracker at its worst case before it is made (the
prompt counted high, plus the declared ``max_tokens``) and committed at what the model
reports. Charges carry their place in the protocol as their node (``round-2/job-5``), so the
parent's spend tree and the ledger show where the money went. While a call runs, a budget
callback inherited from an enclosing agent run skips it: it is paid for here already.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from agent_budget.errors import BudgetExceeded
from agent_budget.run import BudgetRun
from agent_budget.spend import LOCAL_CALL
from agent_budget.tracker import BudgetTracker, Charge, Reservation

Role = Literal["remote", "local"]


@dataclass
class CallRecord:
    """One model call (or refusal) of a protocol run."""

    role: Role
    node: str
    model: str
    outcome: str  # ok | error | refused | invalid
    input_tokens: int = 0
    output_tokens: int = 0
    usd: Decimal = Decimal(0)
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["usd"] = str(self.usd)
        return out


@dataclass
class Reply:
    text: str | None
    record: CallRecord
    parsed: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


def model_name(model: BaseChatModel) -> str:
    """The name a chat model is priced under (what the budget callback would use)."""
    params: dict[str, Any] = dict(model._get_ls_params())
    name = params.get("ls_model_name")
    for attr in ("model_name", "model", "model_id"):
        if name:
            break
        name = getattr(model, attr, None)
    return str(name or type(model).__name__)


def marks(role: Role, node: str) -> dict[str, Any]:
    """A call's `Charge.meta`: its place in the protocol, and for the on-device model the
    mark that counts it in ``local_calls``, not against a limit on (cloud) model calls."""
    meta: dict[str, Any] = {"node": node, "role": role}
    if role == "local":
        meta[LOCAL_CALL] = True
    return meta


def estimate_tokens(chars: int, n_messages: int) -> int:
    """A high estimate of a prompt's tokens from its characters, the one the budget callback
    uses (3 characters a token, 4 tokens a message): a reservation stays a worst case."""
    return math.ceil(chars / 3) + 4 * n_messages


def prompt_tokens(messages: Sequence[BaseMessage], extra: Any = None) -> int:
    chars = sum(len(str(m.content)) for m in messages)
    if extra is not None:
        chars += len(json.dumps(extra))
    return estimate_tokens(chars, len(messages))


class Caller:
    """Makes one protocol run's calls through ``tracker`` and keeps their records."""

    def __init__(
        self,
        tracker: BudgetTracker,
        *,
        local: BaseChatModel | None,
        remote: BaseChatModel | None,
    ) -> None:
        self.tracker = tracker
        self.local = local
        self.remote = remote
        self.records: list[CallRecord] = []
        self._owner: BudgetRun | None = None

    def model(self, role: Role) -> BaseChatModel:
        model = self.local if role == "local" else self.remote
        if model is None:
            raise ValueError(f"this protocol needs a {role} model")
        return model

    def worst_case(self, role: Role, prompt: int, max_tokens: int, node: str) -> Charge:
        return self.tracker.model_worst_case(
            model_name(self.model(role)), prompt, max_tokens, **marks(role, node)
        )

    def reserve(self, charges: list[Charge]) -> list[Reservation] | None:
        """Hold all of ``charges`` or none (None: the budget cannot pay them)."""
        try:
            return self.tracker.reserve_all(charges)
        except BudgetExceeded as exc:
            for c in charges:
                self.records.append(
                    CallRecord(
                        c.meta.get("role", "remote"),
                        c.meta.get("node", ""),
                        c.name,
                        "refused",
                        error=str(exc),
                    )
                )
            return None

    def call(
        self,
        role: Role,
        messages: list[BaseMessage],
        *,
        node: str,
        max_tokens: int,
        response_format: dict[str, Any] | None = None,
        held: Reservation | None = None,
    ) -> Reply:
        """Call ``role``'s model, paid from ``held`` if given (else reserved here). A call the
        budget refuses, or that fails, comes back with ``text=None`` and its record."""
        from agent_budget.run import OWNER

        model = self.model(role)
        name = model_name(model)
        if held is None:
            prompt = prompt_tokens(messages, response_format)
            reserved = self.reserve([self.worst_case(role, prompt, max_tokens, node)])
            if reserved is None:
                return Reply(None, self.records[-1])
            held = reserved[0]
        kwargs: dict[str, Any] = {"max_tokens": max_tokens}
        if response_format is not None:
            kwargs["response_format"] = response_format
        # This call is charged here, on the protocol's (child) tracker: a budget callback
        # handler of an enclosing run sees OWNER below it and does not charge it again.
        if self._owner is None:
            self._owner = BudgetRun(self.tracker)
        token = OWNER.set(self._owner)
        start = time.perf_counter()
        try:
            message = model.invoke(messages, **kwargs)
        except Exception as exc:
            seconds = time.perf_counter() - start
            charge = self._failed_charge(name, exc, held.charge, node, role)
            held.commit(charge)
            record = CallRecord(
                role,
                node,
                name,
                "error",
                charge.input_tokens,
                0,
                charge.usd,
                seconds,
                f"{type(exc).__name__}: {exc}"[:300],
            )
            self.records.append(record)
            return Reply(None, record)
        finally:
            OWNER.reset(token)
        seconds = time.perf_counter() - start
        usage: dict[str, Any] = dict(getattr(message, "usage_metadata", None) or {})
        if usage:
            charge = self.tracker.model_charge(
                name,
                int(usage.get("input_tokens", 0)),
                int(usage.get("output_tokens", 0)),
                seconds=round(seconds, 4),
                **marks(role, node),
            )
        else:  # no usage reported: charge what was reserved rather than guess lower
            charge = held.charge
        held.commit(charge)
        record = CallRecord(
            role, node, name, "ok", charge.input_tokens, charge.output_tokens, charge.usd, seconds
        )
        self.records.append(record)
        text = message.content if isinstance(message.content, str) else str(message.content)
        return Reply(text, record, meta=dict(message.response_metadata or {}))

    def _failed_charge(
        self, name: str, exc: Exception, reserved: Charge, node: str, role: Role
    ) -> Charge:
        """A failed call may have been billed for its prompt (a timeout after the provider
        read it): charge the attempts' prompt tokens when the model layer reports them, else
        the reserved prompt. Never more than was reserved."""
        attempts = getattr(exc, "log", None)
        if isinstance(attempts, list) and attempts:
            tokens = sum(int(a.get("input_tokens", 0)) for a in attempts if isinstance(a, dict))
        else:
            tokens = reserved.input_tokens
        tokens = min(tokens, reserved.input_tokens)
        return self.tracker.model_charge(name, tokens, 0, outcome="error", **marks(role, node))

    # --- totals -------------------------------------------------------------------------

    def totals(self, role: Role) -> dict[str, Any]:
        mine = [r for r in self.records if r.role == role]
        return {
            "calls": sum(1 for r in mine if r.outcome != "refused"),
            "input_tokens": sum(r.input_tokens for r in mine),
            "output_tokens": sum(r.output_tokens for r in mine),
            "usd": sum((r.usd for r in mine), Decimal(0)),
            "seconds": round(sum(r.seconds for r in mine), 3),
        }
