"""`BudgetRun`: one run's budget logic, shared by every integration and free of any
framework. It answers, for `with_budget`, `BudgetMiddleware` and the planner node alike:

- may this tool call be paid for (reserve, run, commit; retries each charged; exactly once
  when a node runs again: `agent_budget.once`);
- must the run stop, and why (`StopReason`; the policy is in `agent_budget.stopping`);
- what a person resuming an interrupt asked for (a top-up, or finalize).

The integrations adapt it: they turn a refusal into a ToolMessage, the stop into a graph
route or a final model call.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import CancelledError, Future
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar, cast

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)
from tenacity.stop import stop_base

from agent_budget.errors import BudgetExceeded
from agent_budget.once import FLIGHTS, RESULT, Flight, KeptResults, call_key
from agent_budget.stopping import Guards, StepResult, StopReason, all_refused
from agent_budget.tracker import BudgetTracker, Reservation

R = TypeVar("R")

OWNER: ContextVar[BudgetRun | None] = ContextVar("agent_budget_owner", default=None)
"""The budget run paying for the code running now: set around a budgeted node, a tool
body and a model call a middleware pays for. A sub-agent started there finds its parent
here, and a callback handler of an ancestor budget skips calls this run already charges
it for (through the child's `ParentLink`)."""

CALL: ContextVar[str | None] = ContextVar("agent_budget_call", default=None)
"""The idempotency key of the tool call whose body is running: a sub-agent started in it
takes its run id from it, so its own keys are stable across resumes and its own."""

WarningCallback = Callable[[float, str], None]
EventSink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Retry:
    """Retry policy for tool calls. Each attempt is reserved and charged on its own; retries
    stop as soon as the budget cannot pay for another attempt."""

    attempts: int = 1
    on: tuple[type[BaseException], ...] = (Exception,)
    error_messages: bool = True  # also retry a ToolMessage with status="error"
    wait_initial: float = 0.2
    wait_max: float = 5.0


@dataclass(frozen=True)
class ToolHooks(Generic[R]):
    """How an integration represents a tool call's outcome."""

    refuse: Callable[[Mapping[str, Any], BudgetExceeded], R]
    finish: Callable[[R], R]  # a result that was paid for, before it is returned
    failed: Callable[[R], bool] = lambda out: False  # an error result worth a retry
    node: Callable[[], str | None] = lambda: None  # the graph node running the call
    replayed: Callable[[R], R] = lambda out: out  # a finished result met again


class BudgetRun:
    """One run's (or one interrupted run's, across its resumes) budget logic."""

    def __init__(
        self,
        tracker: BudgetTracker,
        *,
        retry: Retry | None = None,
        run_id: str | None = None,
        on_warning: WarningCallback | None = None,
        emit: EventSink | None = None,
    ) -> None:
        self.tracker = tracker
        self.retry = retry or Retry()
        self.run_id = run_id or uuid.uuid4().hex  # prefix of every idempotency key
        self.on_warning = on_warning
        self.emit = emit or (lambda event: None)
        if tracker.budget.warn_at:
            tracker.add_warning_listener(self._warned, key="run")
        self.stop: StopReason | None = None  # set when the run must finalize
        self.persist = True  # write the spend to graph state (a checkpointer keeps it)
        self.downgraded = False
        guards = tracker.budget.guards
        self.guards = Guards(guards.repeat_calls, guards.idle_steps)
        self._failed: dict[str, int] = {}  # failed attempts per tool call id
        self._step: list[StepResult] = []  # results since the stop policy last looked
        self._step_lock = threading.Lock()
        self.resume_to: list[str] | None = None  # where a topped-up run goes on
        self.final_done = False  # the run's one final answer is written
        self.decided = False  # on_exhausted was applied already (a node's refusal)
        self.parent: BudgetRun | None = None  # a child on its parent's own limits
        self.cached: dict[str, Any] = {}  # what an adapter builds once per run (its hooks)
        self.results = KeptResults(self.run_id, tracker)  # finished results in the ledger

    # --- soft limits --------------------------------------------------------------------

    def _warned(self, tracker: BudgetTracker, threshold: float, text: str) -> None:
        if self.on_warning is not None:
            self.on_warning(threshold, text)
        self.emit({"agent_budget": "warning", "threshold": threshold, "message": text})

    def downgrade_now(self, model: str | None) -> bool:
        """Whether model calls should go to the budget's cheaper model now; records the
        switch (once per run) with its reason."""
        rule = self.tracker.budget.downgrade
        if rule is None:
            return False
        left = self.tracker.fraction_left()
        if not rule.active(left):
            return False
        if not self.downgraded:
            self.downgraded = True
            reason = f"regime {self.tracker.regime().value}: {left:.0%} of the budget left"
            event = self.tracker.record_event(
                "downgrade", to=rule.model, model=model, reason=reason
            )
            self.emit({"agent_budget": "downgrade", **event})
        return True

    # --- tool calls ---------------------------------------------------------------------

    def guard_tool_call(
        self, call: Mapping[str, Any], execute: Callable[[], R], hooks: ToolHooks[R]
    ) -> R:
        """Run ``execute`` if the budget can pay for it, charging every attempt."""
        if self.retry.attempts <= 1:
            return self._attempt(call, execute, hooks, 1)
        counter = iter(range(1, self.retry.attempts + 1))
        retrying = Retrying(**self._retry_kwargs(call, hooks))
        return retrying(lambda: self._attempt(call, execute, hooks, next(counter)))

    async def aguard_tool_call(
        self, call: Mapping[str, Any], execute: Callable[[], Awaitable[R]], hooks: ToolHooks[R]
    ) -> R:
        if self.retry.attempts <= 1:
            return await self._aattempt(call, execute, hooks, 1)
        counter = iter(range(1, self.retry.attempts + 1))
        retrying = AsyncRetrying(**self._retry_kwargs(call, hooks))
        return await retrying(lambda: self._aattempt(call, execute, hooks, next(counter)))

    # A sync/async pair on purpose: on every tool call a step generator (`agent_budget._steps`)
    # would add ~10 Python calls. What they share is written once, in `_begin` and `_end`.
    def _attempt(
        self, call: Mapping[str, Any], execute: Callable[[], R], hooks: ToolHooks[R], n: int
    ) -> R:
        while True:
            step = self._begin(call, n, hooks)
            if isinstance(step, _Ready):
                return cast(R, step.out)
            if isinstance(step, _Wait):
                try:
                    return hooks.replayed(cast(R, self._replayed(step.fut.result())))
                except CancelledError:
                    continue  # the run it waited for did not complete: make the call
            token, key = OWNER.set(self), CALL.set(step.key)
            try:
                out = execute()
            except BaseException as exc:
                return cast(R, self._end(call, step, None, exc, hooks))
            finally:
                OWNER.reset(token)
                CALL.reset(key)
            return cast(R, self._end(call, step, out, None, hooks))

    async def _aattempt(
        self,
        call: Mapping[str, Any],
        execute: Callable[[], Awaitable[R]],
        hooks: ToolHooks[R],
        n: int,
    ) -> R:
        while True:
            step = self._begin(call, n, hooks)
            if isinstance(step, _Ready):
                return cast(R, step.out)
            if isinstance(step, _Wait):
                try:
                    done = await asyncio.wrap_future(step.fut)
                    return hooks.replayed(cast(R, self._replayed(done)))
                except (CancelledError, asyncio.CancelledError):
                    if not step.fut.cancelled():
                        raise  # this task itself is being cancelled
                    continue
            token, key = OWNER.set(self), CALL.set(step.key)
            try:
                out = await execute()
            except BaseException as exc:
                return cast(R, self._end(call, step, None, exc, hooks))
            finally:
                OWNER.reset(token)
                CALL.reset(key)
            return cast(R, self._end(call, step, out, None, hooks))

    def _begin(self, call: Mapping[str, Any], n: int, hooks: ToolHooks[R]) -> _Step:
        """Claim attempt ``n`` of a call: run it (`_Go`), wait for or reuse the run of it
        already made under the same key (`_Wait`), or return a refusal (`_Ready`)."""
        cid = str(call.get("id") or "")
        attempt = n + self._failed.get(cid, 0)  # after a failed attempt, a rerun is a new one
        key = call_key(self.run_id, cid, attempt)
        first, fut = FLIGHTS.claim(key)
        if not first:
            return _Wait(FLIGHTS.future(fut))
        kept = self.results.kept(key)
        if kept is not None:  # finished in another process: replay, not run, not charged
            self.tracker.adopt(kept.charge)
            out = hooks.finish(kept.out)
            FLIGHTS.land(key, fut, _Done(out, kept.charge))
            return _Ready(out)
        name = str(call["name"])
        tripped = self.guards.count_call(name, call.get("args"))
        try:
            if tripped is not None:
                limit = self.tracker.budget.guards.repeat_calls or 0
                raise BudgetExceeded(tripped.limit, 1, 0, limit, limit, detail=tripped.text)
            charge = self.tracker.tool_charge(
                name, key=key, tool_call_id=cid, attempt=attempt, node=hooks.node()
            )
            return _Go(self.tracker.reserve(charge), key, fut)
        except BudgetExceeded as exc:
            FLIGHTS.drop(key, fut)
            return _Ready(hooks.refuse(call, exc))

    def _end(
        self,
        call: Mapping[str, Any],
        step: _Go,
        out: Any,
        exc: BaseException | None,
        hooks: ToolHooks[Any],
    ) -> Any:
        """Settle a call; what the tool node returns for it."""
        if exc is None:
            keep = self.results.keep(out)
            if keep is None:
                charge = step.res.commit()
            else:  # the ledger keeps the result in the commit's transaction
                held = step.res.charge
                charge = step.res.commit(replace(held, meta={**held.meta, RESULT: keep}))
                charge = replace(charge, meta=held.meta)
            out = hooks.finish(out)
            FLIGHTS.land(step.key, step.fut, _Done(out, charge))
            return out
        if isinstance(exc, BudgetExceeded):
            # The tool itself asked for more than is left (a model call inside it, a
            # sub-agent): it did not finish, so it is not charged, and the run goes on to
            # decide (finalize / raise / interrupt) like any other refusal.
            step.res.release()
            FLIGHTS.drop(step.key, step.fut)
            return hooks.refuse(call, exc)
        if settle_after_error(step.res, exc):
            cid = str(call.get("id") or "")
            self._failed[cid] = self._failed.get(cid, 0) + 1
            FLIGHTS.fail(step.key, step.fut, exc)
        else:
            FLIGHTS.drop(step.key, step.fut)
        raise exc

    def _replayed(self, done: _Done) -> Any:
        """A finished call met again (its node ran again): its result, its spend on this
        run's books if they were restored from a checkpoint written before it finished."""
        self.tracker.adopt(done.charge)
        return done.out

    def _retry_kwargs(self, call: Mapping[str, Any], hooks: ToolHooks[Any]) -> dict[str, Any]:
        t = self.tracker
        return retry_kwargs(
            self.retry, lambda: t.fits(t.tool_charge(str(call["name"]))), hooks.failed
        )

    # --- when to stop -------------------------------------------------------------------

    def note_result(self, result: StepResult) -> None:
        """A tool result of the current step, for the stop policy (`take_step`)."""
        with self._step_lock:
            self._step.append(result)

    def take_step(self) -> list[StepResult]:
        """The results noted since the last call: a tool node that ran a whole step reads
        them here instead of re-reading the history from graph state."""
        with self._step_lock:
            step, self._step = self._step, []
        return step

    def stop_reason(self, step: Sequence[StepResult]) -> StopReason | None:
        """Why the run must stop: a guard tripped, a global limit is spent, or every tool
        call of the last step was refused."""
        reason = self.guards.tripped or self.tracker.first_spent() or self.guards.idle(step)
        return reason or all_refused(step)

    def exceeded(self, reason: StopReason | str) -> BudgetExceeded:
        """The error for ``on_exhausted="raise"``, naming the limit that ended the run."""
        limit = reason.limit if isinstance(reason, StopReason) else "budget"
        left = self.tracker.remaining().get(limit, 0)
        return BudgetExceeded(limit, "another call", max(left, 0), detail=str(reason))

    def interrupt_payload(self, reason: StopReason | str) -> dict[str, Any]:
        return {
            "type": "agent_budget.exhausted",
            "reason": str(reason),
            "limit": reason.limit if isinstance(reason, StopReason) else "budget",
            "budget": self.tracker.message(),
            "remaining": {k: str(v) for k, v in self.tracker.remaining().items()},
            "resume_with": "a dict of limits to add (e.g. {'usd': 0.5}), or 'finalize'",
        }

    def apply_resume(self, value: Any) -> bool:
        """Apply a person's answer to an interrupt. True: topped up, go on; False: finalize."""
        if isinstance(value, dict) and value:
            self.tracker.top_up(**value)
            self.guards.reset()
            self.stop = None
            return True
        return False


@dataclass(frozen=True, slots=True)
class _Done:
    out: Any
    charge: Any


@dataclass(frozen=True, slots=True)
class _Go:
    res: Reservation
    key: str
    fut: Flight


@dataclass(frozen=True, slots=True)
class _Wait:
    fut: Future[Any]


@dataclass(frozen=True, slots=True)
class _Ready:
    out: Any


_Step = _Go | _Wait | _Ready


def retry_kwargs(
    policy: Retry, can_pay: Callable[[], bool], failed: Callable[[Any], bool]
) -> dict[str, Any]:
    """tenacity settings: retry what ``policy`` names, never a budget refusal, and stop
    as soon as the budget cannot pay for another attempt."""

    class unaffordable(stop_base):
        def __call__(self, retry_state: RetryCallState) -> bool:
            return not can_pay()

    def retryable_exc(exc: BaseException) -> bool:
        return isinstance(exc, policy.on) and not isinstance(exc, BudgetExceeded)

    def retryable_result(out: Any) -> bool:
        return policy.error_messages and failed(out)

    return {
        "stop": stop_after_attempt(policy.attempts) | unaffordable(),
        "retry": retry_if_exception(retryable_exc) | retry_if_result(retryable_result),
        "wait": wait_exponential(multiplier=policy.wait_initial, max=policy.wait_max),
        "retry_error_callback": lambda state: state.outcome.result(),  # the last outcome
        "reraise": True,
    }


def settle_after_error(res: Reservation, exc: BaseException) -> bool:
    """Settle a call that raised; True if it was charged. A tool that raised was still
    called (and a paid API usually bills it); an interrupt or cancellation means the call
    did not complete and runs again on resume."""
    if is_control_flow(exc):
        res.release()
        return False
    res.commit(replace(res.charge, meta={**res.charge.meta, "outcome": "error"}))
    return True


def is_control_flow(exc: BaseException) -> bool:
    """An interrupt, a handoff, a cancellation: not a failure of the call. LangGraph's
    `GraphBubbleUp` is matched by name, so this module does not import LangGraph."""
    if isinstance(exc, KeyboardInterrupt | SystemExit | asyncio.CancelledError):
        return True
    return any(c.__name__ == "GraphBubbleUp" for c in type(exc).__mro__)
