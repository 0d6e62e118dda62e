"""LangChain messages for the run core's decisions: a refused call as a ToolMessage, the
budget message on a tool result, the final prompt and answer, and a step's results as
the stop policy reads them. Shared by `with_budget` and `BudgetMiddleware`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
    convert_to_messages,
)
from langgraph.types import Command

from agent_budget.errors import BudgetExceeded
from agent_budget.final import final_note, final_output_tokens, unpaid_text
from agent_budget.integrations.callbacks import estimate_prompt_tokens
from agent_budget.run import BudgetRun, ToolHooks
from agent_budget.stopping import StepResult, StopReason
from agent_budget.tracker import BudgetTracker, escape_budget_tags

REFUSED = "agent_budget"
"""`response_metadata` key on a ToolMessage for a call the budget refused."""


def refusal(call: Mapping[str, Any], exc: BudgetExceeded) -> ToolMessage:
    return ToolMessage(
        content=f"Not run: {exc}",
        name=call.get("name"),
        tool_call_id=call.get("id") or "",
        status="error",
        response_metadata={REFUSED: {"refused": exc.limit}},
    )


def tool_hooks(
    run: BudgetRun,
    *,
    annotate: bool,
    node: Callable[[], str | None],
    note_results: bool = True,
) -> ToolHooks[Any]:
    """How a ToolNode's results carry the run's decisions: escaped, with the budget
    message appended when ``annotate`` (it then costs no extra state write), and each
    outcome noted for the stop policy when ``note_results`` (an adapter that reads the
    step back from the next prompt does not need them). Built once per run and kind."""
    key = f"tool_hooks:{annotate}:{note_results}"
    hooks = run.cached.get(key)
    if hooks is None:
        hooks = run.cached[key] = _tool_hooks(run, annotate, node, note_results)
    return cast(ToolHooks[Any], hooks)


def _tool_hooks(
    run: BudgetRun, annotate: bool, node: Callable[[], str | None], note_results: bool
) -> ToolHooks[Any]:
    # Only the idle guard compares result texts: without it, a step result is its id,
    # name and refusal, and no text is copied per call.
    with_text = run.guards.idle_steps is not None

    def note(out: Any) -> Any:
        if note_results:
            for m in tool_messages(out):
                run.note_result(step_result(m, with_text))
        return out

    def shown(out: Any) -> Any:
        if annotate:
            text = run.tracker.message()
            out = map_tool_messages(out, lambda m: with_budget_text(m, text))
        return note(out)

    return ToolHooks(
        refuse=lambda call, exc: shown(refusal(call, exc)),
        finish=lambda out: shown(map_tool_messages(out, _escape_message)),
        failed=lambda out: (
            isinstance(out, ToolMessage)
            and out.status == "error"
            and REFUSED not in out.response_metadata
        ),
        node=node,
        replayed=note,
    )


def with_budget_text(message: ToolMessage, text: str) -> ToolMessage:
    """A copy of a tool result with the budget message appended (same id): the message
    before it, if any, is replaced, so a result shows the budget once and current. An
    empty ``text`` (a budget whose ``message_template`` is ``""``: the model must not see
    its budget) leaves the result as it is."""
    if not text:
        return message
    content = message.content
    if isinstance(content, str):
        base = content.split("\n\n<budget>", 1)[0] if "<budget>" in content else content
        new_content: Any = f"{base}\n\n{text}" if base else text
    else:
        new_content = [*content, {"type": "text", "text": text}]
    return message.model_copy(update={"content": new_content})


def last_tool_step(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    """The ToolMessages after the last AIMessage."""
    step: list[ToolMessage] = []
    for m in reversed(messages):
        if isinstance(m, ToolMessage):
            step.append(m)
        else:
            break
    return step


def step_result(m: ToolMessage, with_text: bool = True) -> StepResult:
    meta = m.response_metadata.get(REFUSED)
    refused = meta.get("refused") if meta else None
    text = _without_budget(m.content) if with_text else ""
    return StepResult(m.tool_call_id, m.name, text, refused)


def step_results(messages: Sequence[BaseMessage]) -> list[StepResult]:
    return [step_result(m) for m in last_tool_step(messages)]


def tool_messages(out: Any) -> list[ToolMessage]:
    if isinstance(out, ToolMessage):
        return [out]
    if isinstance(out, Command) and isinstance(out.update, dict):
        return [m for v in out.update.values() if isinstance(v, list) for _, m in _own_results(v)]
    return []


def map_tool_messages(out: Any, fn: Callable[[ToolMessage], ToolMessage]) -> Any:
    """Apply ``fn`` to a tool result: a ToolMessage, or those a ``Command`` writes.

    A handoff tool (``Command(graph=Command.PARENT, ...)``) writes the whole history with
    its result appended, often as a dict (``{"role": "tool", ...}``): only the tool
    messages after the last AIMessage are this call's, and dicts are read as messages, so
    the handoff result carries the budget and earlier results are not rewritten."""
    if isinstance(out, ToolMessage):
        return fn(out)
    if isinstance(out, Command) and isinstance(out.update, dict):
        update = {k: _map_list(v, fn) if isinstance(v, list) else v for k, v in out.update.items()}
        return Command(graph=out.graph, update=update, resume=out.resume, goto=out.goto)
    return out


def _map_list(items: list[Any], fn: Callable[[ToolMessage], ToolMessage]) -> list[Any]:
    out = list(items)
    for i, m in _own_results(items):
        out[i] = fn(m)
    return out


def _own_results(items: list[Any]) -> list[tuple[int, ToolMessage]]:
    """The tool results a tool's ``Command`` writes for its own call: those after the last
    AIMessage of the list (a handoff copies the history before its result)."""
    last_ai = max(
        (i for i, m in enumerate(items) if _role(m) == "ai"),
        default=-1,
    )
    found: list[tuple[int, ToolMessage]] = []
    for i in range(last_ai + 1, len(items)):
        m = items[i]
        if _role(m) == "tool" and isinstance(m, dict) and m.get("tool_call_id"):
            m = convert_to_messages([m])[0]
        if isinstance(m, ToolMessage):
            found.append((i, m))
    return found


def _role(m: Any) -> str | None:
    if isinstance(m, BaseMessage):
        return m.type
    if isinstance(m, dict):
        role = str(m.get("role") or m.get("type") or "")
        return "ai" if role == "assistant" else role
    return None


def _escape_message(out: ToolMessage) -> ToolMessage:
    content = out.content
    if isinstance(content, str):
        if "budget" not in content.lower():
            return out
        return out.model_copy(update={"content": escape_budget_tags(content)})
    fixed = [
        {**block, "text": escape_budget_tags(block["text"])}
        if isinstance(block, dict) and isinstance(block.get("text"), str)
        else escape_budget_tags(block)
        if isinstance(block, str)
        else block
        for block in content
    ]
    return out.model_copy(update={"content": fixed})


def _without_budget(content: Any) -> str:
    text = content if isinstance(content, str) else json.dumps(content, default=str)
    return text.split("\n\n<budget>", 1)[0]


# --- the final answer ---------------------------------------------------------------------


def final_prompt(
    tracker: BudgetTracker, messages: Sequence[BaseMessage], reason: StopReason | str
) -> list[BaseMessage]:
    note = HumanMessage(content=final_note(reason, tracker.message()))
    return [*_answered(messages), note]


def sized_final_model(
    tracker: BudgetTracker, model: BaseChatModel, prompt: Sequence[BaseMessage]
) -> BaseChatModel | None:
    """The final model with ``max_tokens`` cut to what is left, or None if even a short
    answer cannot be paid for."""
    declared = getattr(model, "max_tokens", None)
    n = final_output_tokens(
        tracker, model_name(model), estimate_prompt_tokens(prompt, {}), declared
    )
    if n is None:
        return None
    if n == (declared or tracker.budget.default_max_output_tokens):
        return model
    if "max_tokens" in type(model).model_fields:
        return model.model_copy(update={"max_tokens": n})
    return None


def unpaid_answer(tracker: BudgetTracker, reason: StopReason | str) -> AIMessage:
    return AIMessage(
        content=unpaid_text(reason, tracker.message()),
        response_metadata={REFUSED: {"final": "unpaid"}},
    )


def no_tool_calls(message: BaseMessage) -> AIMessage:
    """The final answer must end the run: drop any tool call a model made regardless."""
    if isinstance(message, AIMessage) and message.tool_calls:
        return message.model_copy(update={"tool_calls": [], "invalid_tool_calls": []})
    if isinstance(message, AIMessage):
        return message
    return AIMessage(content=message.content)


def refreshed(messages: Sequence[BaseMessage], tracker: BudgetTracker) -> ToolMessage | None:
    """The last tool result with the budget message as it is now (after a top-up), or
    None when the history does not end with a tool result."""
    step = last_tool_step(messages)
    return with_budget_text(step[0], tracker.message()) if step else None


def model_name(model: Any) -> str | None:
    try:
        params = model._get_ls_params()
        if params.get("ls_model_name"):
            return str(params["ls_model_name"])
    except Exception:  # not every model implements it; fall back to attributes
        pass
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def _answered(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The history with tool calls that never got a result answered as "not run", since
    chat APIs reject an assistant tool call without its tool message."""
    out = list(messages)
    if out and isinstance(out[-1], AIMessage) and out[-1].tool_calls:
        for call in out[-1].tool_calls:
            out.append(
                ToolMessage(
                    content="Not run: the budget is exhausted.", tool_call_id=call["id"] or ""
                )
            )
    return out
