"""Why a run stops (`StopReason`, the one type for it) and what it does then
(`OnExhausted`): the stop policy every integration shares, free of any framework.

A run stops when a global limit is used up, when every tool call of the last step was
refused (the model keeps asking for what the budget will not pay), or when a guard trips
(the same call over and over, steps that bring nothing new).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

StopKind = Literal["limit", "refused", "guard", "budget"]
"""- ``limit``: a global limit is used up;
- ``refused``: every tool call of the last step was refused;
- ``guard``: a loop or idle guard tripped;
- ``budget``: a call was refused while running (the error names the limit)."""

OnExhausted = Literal["finalize", "raise", "interrupt"]
"""- ``finalize``: one last model call, without tools, answers with what the run has;
- ``raise``: `BudgetExceeded` naming the limit ends the run;
- ``interrupt``: LangGraph ``interrupt()``; resume with a dict of limits to add (a
  top-up, and the run goes on) or anything else (finalize)."""


@dataclass(frozen=True, slots=True)
class StopReason:
    """Why the run must stop: the limit behind it and a sentence for people and models."""

    limit: str
    text: str
    kind: StopKind = "limit"

    def __str__(self) -> str:
        return self.text


class StepResult(NamedTuple):
    """What the stop policy needs to know of one tool result of the last step."""

    id: str | None
    name: str | None
    text: str  # the result without the budget message
    refused: str | None  # the limit that refused it, if the budget did


class Guards:
    """The loop guard (the same call N times) and the idle guard (N steps in a row that
    brought no new result). One per run; a top-up resets them."""

    def __init__(self, repeat_calls: int | None, idle_steps: int | None) -> None:
        self.repeat_calls = repeat_calls
        self.idle_steps = idle_steps
        self.tripped: StopReason | None = None
        self._lock = threading.Lock()
        self._repeats: dict[str, int] = {}
        self._seen: set[int] = set()
        self._idle = 0
        self._last_step: str | None = None

    def count_call(self, name: str, args: Mapping[str, Any] | None) -> StopReason | None:
        """Count a call about to be paid for; the reason to refuse it if it is one too many."""
        if self.repeat_calls is None:
            return None
        key = name + json.dumps(args, sort_keys=True, default=str)
        with self._lock:
            seen = self._repeats.get(key, 0)
            if seen >= self.repeat_calls:
                text = f"loop guard: {name} was called {seen} times with the same arguments"
                self.tripped = StopReason("guards.repeat_calls", text, "guard")
                return self.tripped
            self._repeats[key] = seen + 1
        return None

    def idle(self, step: Sequence[StepResult]) -> StopReason | None:
        if self.idle_steps is None or not step or step[0].id == self._last_step:
            return None
        self._last_step = step[0].id
        results = {hash((r.name, r.text)) for r in step}
        self._idle = self._idle + 1 if results <= self._seen else 0
        self._seen |= results
        if self._idle >= self.idle_steps:
            text = f"idle guard: {self._idle} steps in a row brought no new tool results"
            self.tripped = StopReason("guards.idle_steps", text, "guard")
        return self.tripped

    def reset(self) -> None:
        with self._lock:
            self.tripped, self._idle = None, 0
            self._repeats.clear()


def all_refused(step: Sequence[StepResult]) -> StopReason | None:
    """Every call of the last step was refused: asking again would be refused again."""
    refused = [r.refused for r in step if r.refused]
    if not step or len(refused) != len(step):
        return None
    names = ", ".join(sorted(set(refused)))
    return StopReason(
        refused[0], f"budget refused every tool call of the last step ({names})", "refused"
    )
