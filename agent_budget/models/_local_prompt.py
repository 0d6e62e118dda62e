"""How a chat with tools is put to a small on-device model, and how its answer is read back.

Small models rarely follow a template's native tool syntax, so tool use is a JSON protocol
enforced by a grammar: the model must reply ``{"name": TOOL, "arguments": {...}}`` (a call)
or, when it may answer directly, ``{"answer": "..."}``. Past calls and tool results are
written into the conversation in the same words, so any chat template can render them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

ToolMode = Literal["none", "auto", "required"]


def text_of(content: Any) -> str:
    """Message content (a string or a list of content blocks) as plain text."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "\n".join(parts)


def to_chat(
    messages: Sequence[BaseMessage], tool_prompt: str | None = None
) -> list[dict[str, Any]]:
    """LangChain messages -> role/content dicts any chat template accepts.

    System messages are merged and put first; tool calls and results become ordinary
    assistant / user turns; consecutive turns of one role are merged (strict templates such
    as Gemma's require alternating roles).
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            system.append(text_of(m.content))
        elif isinstance(m, AIMessage):
            text = text_of(m.content)
            calls = [
                json.dumps({"name": c["name"], "arguments": c["args"]}, ensure_ascii=False)
                for c in m.tool_calls
            ]
            turns.append(
                {"role": "assistant", "content": "\n".join([t for t in [text] if t] + calls)}
            )
        elif isinstance(m, ToolMessage):
            name = m.name or "tool"
            turns.append({"role": "user", "content": f"Result of {name}: {text_of(m.content)}"})
        elif isinstance(m, HumanMessage):
            turns.append({"role": "user", "content": text_of(m.content)})
        else:  # ChatMessage and friends
            role = getattr(m, "role", "user")
            role = role if role in ("user", "assistant") else "user"
            turns.append({"role": role, "content": text_of(m.content)})
    if tool_prompt:
        system.append(tool_prompt)
    merged: list[dict[str, Any]] = []
    for turn in turns:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1]["content"] += "\n\n" + turn["content"]
        else:
            merged.append(dict(turn))
    if system:
        merged.insert(0, {"role": "system", "content": "\n\n".join(s for s in system if s)})
    return merged


def tool_prompt(tools: Sequence[dict[str, Any]], mode: ToolMode) -> str:
    lines = ["You can call these tools:"]
    for t in tools:
        fn = t["function"]
        props = fn.get("parameters", {}).get("properties", {})
        args = {k: v.get("type", "any") if isinstance(v, dict) else "any" for k, v in props.items()}
        desc = (fn.get("description") or "").strip().splitlines()
        lines.append(f"- {fn['name']}: {desc[0] if desc else ''} Arguments: {json.dumps(args)}")
    lines.append('To call a tool, reply with JSON: {"name": "<tool>", "arguments": {...}}.')
    if mode == "auto":
        lines.append(
            'If you can answer without a tool, reply with JSON: {"answer": "<your answer>"}.'
        )
    return "\n".join(lines)


def _arguments_schema(fn: dict[str, Any]) -> dict[str, Any]:
    params = dict(fn.get("parameters") or {})
    params.pop("$defs", None)
    params.pop("title", None)
    params.setdefault("type", "object")
    if not params.get("properties"):
        return {"type": "object", "properties": {}, "additionalProperties": False}
    return params


ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}
"""The answer form of a tool-mode reply (`tool_schema` offers it in mode auto)."""


def tool_schema(tools: Sequence[dict[str, Any]], mode: ToolMode) -> dict[str, Any]:
    """The JSON schema a reply must match: one tool call, or (mode auto) an answer."""
    options: list[dict[str, Any]] = []
    defs: dict[str, Any] = {}
    for t in tools:
        fn = t["function"]
        defs.update(fn.get("parameters", {}).get("$defs", {}))
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": fn["name"]}, "arguments": _arguments_schema(fn)},
                "required": ["name", "arguments"],
            }
        )
    if mode == "auto":
        options.append(ANSWER_SCHEMA)
    schema: dict[str, Any] = options[0] if len(options) == 1 else {"anyOf": options}
    if defs:
        schema = {**schema, "$defs": defs}
    return schema


def answer_text(text: str) -> str:
    """The answer of an answer-only reply; a reply cut short by max_tokens keeps what it said."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text.removeprefix('{"answer": "').removeprefix('{"answer":"')
    return str(data.get("answer", "")) if isinstance(data, dict) else text


def parse_tool_reply(text: str) -> AIMessage:
    """A grammar-constrained reply -> an AIMessage with a tool call, an answer, or (cut short by
    max_tokens) an invalid tool call that LangGraph reports instead of executing."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return AIMessage(
            content=text,
            invalid_tool_calls=[
                {
                    "type": "invalid_tool_call",
                    "name": None,
                    "args": text,
                    "id": new_call_id(),
                    "error": f"reply is not complete JSON ({exc}); raise max_tokens",
                }
            ],
        )
    if isinstance(data, dict) and "answer" in data and "name" not in data:
        return AIMessage(content=str(data["answer"]))
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return AIMessage(content=text)
    args = data.get("arguments")
    return AIMessage(
        content="",
        tool_calls=[
            {
                "type": "tool_call",
                "name": data["name"],
                "args": args if isinstance(args, dict) else {},
                "id": new_call_id(),
            }
        ],
    )


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def tool_rounds(messages: Sequence[BaseMessage]) -> list[tuple[str, str]]:
    """(name, canonical args) of each tool call made since the user's last message."""
    calls: list[tuple[str, str]] = []
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            break
        if isinstance(m, AIMessage):
            calls.extend((c["name"], json.dumps(c["args"], sort_keys=True)) for c in m.tool_calls)
    return calls


def normalize_tool_choice(
    tool_choice: Any, tools: Sequence[dict[str, Any]]
) -> tuple[ToolMode, list[dict[str, Any]]]:
    """OpenAI / LangChain tool_choice -> (mode, the tools the reply may call)."""
    if not tools or tool_choice in ("none", False):
        return "none", []
    if tool_choice in (None, "auto"):
        return "auto", list(tools)
    if tool_choice in ("any", "required", True):
        return "required", list(tools)
    name = tool_choice
    if isinstance(tool_choice, dict):
        name = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
    chosen = [t for t in tools if t["function"]["name"] == name]
    if not chosen:
        known = ", ".join(t["function"]["name"] for t in tools)
        raise ValueError(f"tool_choice names {name!r}, which is not a bound tool ({known}).")
    return "required", chosen
