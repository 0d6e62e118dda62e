"""What a chat API accepts as history, checked over a graph's final state.

OpenAI-style endpoints reject (HTTP 400) a tool message that does not answer a tool call
of the assistant message before it, and an assistant message with tool calls that is not
followed by one tool message per call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage


def history_errors(messages: Sequence[BaseMessage]) -> list[str]:
    errors: list[str] = []
    open_calls: set[str] = set()
    answered: set[str] = set()
    for i, m in enumerate(messages):
        if isinstance(m, ToolMessage):
            if m.tool_call_id not in open_calls:
                errors.append(
                    f"message {i}: ToolMessage {m.tool_call_id!r} answers no tool call of the "
                    "AIMessage before it"
                )
            elif m.tool_call_id in answered:
                errors.append(f"message {i}: tool call {m.tool_call_id!r} answered twice")
            answered.add(m.tool_call_id)
            continue
        missing = open_calls - answered
        if missing:
            errors.append(f"message {i}: tool calls {sorted(missing)} have no ToolMessage")
        open_calls, answered = set(), set()
        if isinstance(m, AIMessage):
            open_calls = {c["id"] or "" for c in m.tool_calls}
    missing = open_calls - answered
    # A history may end on an AIMessage whose calls are still to run (an interrupt before
    # the tool node); a finished run must not.
    if missing:
        errors.append(f"end: tool calls {sorted(missing)} have no ToolMessage")
    return errors


def assert_valid_history(state: Any, key: str = "messages") -> None:
    messages = state.get(key) if isinstance(state, dict) else getattr(state, key, None)
    if not messages:
        return
    errors = history_errors(messages)
    assert not errors, "invalid chat history:\n" + "\n".join(errors)
