"""The final answer of a budgeted graph, written where the graph's own output goes.

A graph's answer is not always the last chat message. The structured-output tutorial puts
it in ``final_response`` (a pydantic model), the data-enrichment template's output schema
is ``{"info": dict}``, a write-then-polish pipeline has no messages at all and answers in
``report``. So the finalize step looks at the graph's output schema once, at wrap time,
and at the end of a run makes **one** model call (without tools) that fills what the run
did not reach:

- a graph with a messages key gets the answer as one more AIMessage (after a "not run"
  ToolMessage for each tool call left without a result, so the history stays valid);
- output keys still empty whose type is a pydantic model, a TypedDict or a dict are
  filled with structured output (``with_structured_output``; one call for all of them);
- in a graph without a messages key, output keys still empty whose type is ``str`` get
  the answer's text; if even a short answer cannot be paid for, they get the reason the
  run stopped (structured keys are then left empty: nothing is made up).

When the graph has an answer node ahead of where the run stopped (`AnswerPath`: a
``respond`` node, ``polish``), the run goes on through it after this call; if it calls a
model, its call is the run's final pass and writes the structured keys, so this call is an
ordinary one (held to every limit) and leaves those keys to it.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, create_model

from agent_budget._steps import Steps
from agent_budget.errors import BudgetExceeded
from agent_budget.integrations._answer_path import AnswerPath
from agent_budget.integrations._messages import (
    REFUSED,
    final_prompt,
    no_tool_calls,
    sized_final_model,
    unpaid_answer,
)
from agent_budget.integrations.callbacks import FINAL_CALL_METADATA
from agent_budget.run import BudgetRun
from agent_budget.stopping import StopReason

Kind = Literal["text", "structured"]

FINAL_CONFIG: RunnableConfig = {
    "metadata": {FINAL_CALL_METADATA: True},
    "tags": ["agent_budget:final"],
}
_HANDED_CONFIG: RunnableConfig = {"tags": ["agent_budget:final"]}  # an answer node follows
_DIGEST_CHARS = 2_000
_EMPTY: tuple[Any, ...] = (None, "", [], {})


@dataclass(frozen=True)
class Slot:
    key: str
    kind: Kind
    type_: Any


@dataclass(frozen=True)
class AnswerPlan:
    """Where a graph's final answer goes: its messages key (if its state has one) and the
    output keys an answer can fill."""

    messages_key: str | None
    slots: tuple[Slot, ...]
    order: tuple[str, ...] = ()  # the state's keys as declared: a pipeline's order
    path: AnswerPath | None = None  # the graph's answer nodes

    @classmethod
    def of(
        cls, builder: Any, messages_key: str, skip: set[str], tool_nodes: set[str] | None = None
    ) -> AnswerPlan:
        has_messages = messages_key in builder.channels
        schema = builder.output_schema
        channels = builder.schemas.get(schema) or {}
        try:
            hints = typing.get_type_hints(schema, include_extras=True)
        except Exception:  # a schema whose annotations do not resolve: messages only
            hints = {}
        slots = []
        for key, hint in hints.items():
            if key in skip or key == messages_key or key not in channels:
                continue
            if key in builder.managed:
                continue
            base = _unwrap(hint)
            kind = _kind(base)
            if kind is not None:
                slots.append(Slot(key, kind, base))
        try:
            order = tuple(typing.get_type_hints(builder.state_schema))
        except Exception:
            order = tuple(builder.channels)
        path = AnswerPath.of(builder, tool_nodes or set())
        return cls(messages_key if has_messages else None, tuple(slots), order, path)

    @property
    def text_keys(self) -> list[str]:
        """The ``str`` output keys a final answer may go into (a state without messages)."""
        return [] if self.messages_key else [s.key for s in self.slots if s.kind == "text"]

    def answer_text(self, update: dict[str, Any]) -> str | None:
        """The final answer's text in a finalize ``update``."""
        for key in self.text_keys:
            if isinstance(update.get(key), str):
                return str(update[key])
        return None

    def unreached(self, state: Any) -> set[str]:
        """Keys declared after every key that holds a value: the part of a pipeline the
        run did not reach (keys before it that are still empty, such as a feedback field
        a person fills in, are not the answer's to fill)."""
        filled = [i for i, k in enumerate(self.order) if _get(state, k) not in _EMPTY]
        last = max(filled, default=-1)
        return set(self.order[last + 1 :])


def _unwrap(hint: Any) -> Any:
    """``Annotated[X, ...]``, ``X | None``, ``NotRequired[X]`` -> ``X``."""
    while True:
        origin = get_origin(hint)
        if origin is typing.Annotated:
            hint = get_args(hint)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(hint) if a is not type(None)]
            if len(args) != 1:
                return hint
            hint = args[0]
        elif origin in (typing.NotRequired, typing.Required):
            hint = get_args(hint)[0]
        else:
            return hint


def _is_class(hint: Any) -> bool:
    return isinstance(hint, type) and (issubclass(hint, BaseModel) or typing.is_typeddict(hint))


def _kind(hint: Any) -> Kind | None:
    if hint is str:
        return "text"
    if _is_class(hint):
        return "structured"
    if hint is dict or get_origin(hint) is dict:
        return "structured"
    return None


def _get(state: Any, key: str) -> Any:
    if isinstance(state, dict):
        return state.get(key)
    return getattr(state, key, None)


def _digest(state: Any) -> list[BaseMessage]:
    """A state without messages, as the prompt of the final call."""
    items = state.items() if isinstance(state, dict) else vars(state).items()
    lines = [
        f"{k}: {str(v)[:_DIGEST_CHARS]}"
        for k, v in items
        if v not in _EMPTY and not k.startswith("agent_budget")
    ]
    return [HumanMessage(content="The work so far:\n" + "\n".join(lines))]


def dangling_tool_results(messages: list[BaseMessage]) -> list[ToolMessage]:
    """A "not run" result for each tool call of the last AIMessage that has none (a node
    refused mid-step): chat APIs reject a tool call without its result."""
    answered: set[str] = set()
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            answered.add(m.tool_call_id)
            continue
        if isinstance(m, AIMessage) and m.tool_calls:
            return [
                ToolMessage(
                    content="Not run: the budget is exhausted.",
                    name=c["name"],
                    tool_call_id=c["id"] or "",
                    status="error",
                    response_metadata={REFUSED: {"refused": "budget"}},
                )
                for c in m.tool_calls
                if (c["id"] or "") not in answered
            ]
        return []
    return []


class _Final:
    """One finalize: what is asked for, and how the answer maps back onto state."""

    def __init__(
        self,
        run: BudgetRun,
        model: BaseChatModel | None,
        state: Any,
        plan: AnswerPlan,
        reason: StopReason,
        handed: bool = False,
    ) -> None:
        self.run, self.final_model, self.plan, self.reason = run, model, plan, reason
        self.config = _HANDED_CONFIG if handed else FINAL_CONFIG
        self.messages: list[BaseMessage] = (
            list(_get(state, plan.messages_key) or []) if plan.messages_key else []
        )
        empty = [s for s in plan.slots if _get(state, s.key) in _EMPTY]
        # An answer node that calls a model writes the structured keys itself.
        self.structured = [] if handed else [s for s in empty if s.kind == "structured"]
        unreached = plan.unreached(state)
        self.texts = (
            []
            if plan.messages_key
            else [s for s in empty if s.kind == "text" and s.key in unreached]
        )
        history = self.messages if plan.messages_key else _digest(state)
        self.prompt = final_prompt(run.tracker, history, reason)
        self.schema: Any = None
        if len(self.structured) == 1 and not self.texts and _is_class(self.structured[0].type_):
            self.schema = self.structured[0].type_
        elif self.structured:
            fields: dict[str, Any] = {s.key: (s.type_, ...) for s in self.structured}
            fields.update({s.key: (str, ...) for s in self.texts})
            self.schema = create_model("FinalAnswer", **fields)

    def model(self) -> Any:
        final = self.final_model
        sized = sized_final_model(self.run.tracker, final, self.prompt) if final else None
        # (Sized with the final answer's allowance even when handed on: the call is then
        # an ordinary one, which its reservation holds to every limit.)
        if sized is None or self.schema is None:
            return sized
        return sized.with_structured_output(self.schema)

    def update(self, result: Any) -> dict[str, Any]:
        """The state update for the model's ``result`` (None: nothing could be paid)."""
        values: dict[str, Any] = {}
        if result is None:
            answer = unpaid_answer(self.run.tracker, self.reason)
            values = {s.key: _text(answer) for s in self.texts}
        elif self.schema is None:
            answer = no_tool_calls(result)
            values = {s.key: _text(answer) for s in self.texts}
        else:
            if len(self.structured) == 1 and self.schema is self.structured[0].type_:
                values = {self.structured[0].key: result}
            else:
                data = result.model_dump() if isinstance(result, BaseModel) else dict(result)
                values = {k: data.get(k) for k in (s.key for s in self.structured + self.texts)}
            answer = AIMessage(
                content=json.dumps(values, default=_jsonable),
                response_metadata={REFUSED: {"final": "structured"}},
            )
        if self.plan.messages_key:
            values[self.plan.messages_key] = [*dangling_tool_results(self.messages), answer]
        return values


def final_steps(
    run: BudgetRun,
    model: BaseChatModel | None,
    state: Any,
    plan: AnswerPlan,
    reason: StopReason,
    handed: bool = False,
) -> Steps[dict[str, Any]]:
    """The one final call of a run (without tools), as a state update; ``handed``: an
    answer node that calls a model runs after it and has the final pass. Sans-IO (see
    `agent_budget._steps`): it yields the call ``((model, prompt, config), {})`` to make
    with ``invoke`` or ``ainvoke``."""
    final = _Final(run, model, state, plan, reason, handed)
    chosen = final.model()
    if chosen is None:
        return final.update(None)
    try:
        return final.update((yield (chosen, final.prompt, final.config), {}))
    except BudgetExceeded:
        return final.update(None)


def _text(message: BaseMessage) -> str:
    content = message.content
    return content if isinstance(content, str) else json.dumps(content, default=str)


def _jsonable(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else str(value)
