"""What `BudgetRouter` puts on a reply: the `RouteDecision` (where the call went and why),
as ``response_metadata["router"]`` of a whole reply or of the last chunk of a streamed one."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessageChunk

Tier = Literal["cheap", "expensive"]


@dataclass(frozen=True)
class RouteDecision:
    """Where one call went and why."""

    model: str
    tier: Tier
    escalated: bool
    reason: str
    difficulty: float | None
    confidence: float | None
    regime: str | None
    at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class HoldLast:
    """Streams a reply one chunk behind, so the last chunk can carry the route decision."""

    def __init__(self, decision: RouteDecision) -> None:
        self.decision = decision
        self.last: BaseMessageChunk | None = None

    def push(self, chunk: BaseMessageChunk) -> list[AIMessageChunk]:
        out = [] if self.last is None else [as_ai_chunk(self.last)]
        self.last = chunk
        return out

    def end(self) -> list[AIMessageChunk]:
        return [] if self.last is None else [as_ai_chunk(tag(self.last, self.decision))]


def tag(message: Any, decision: RouteDecision) -> Any:
    message.response_metadata = {**message.response_metadata, "router": decision.as_dict()}
    return message


def whole(message: AIMessage) -> AIMessageChunk:
    return AIMessageChunk(
        content=message.content,
        id=message.id,
        tool_call_chunks=[
            {
                "type": "tool_call_chunk",
                "name": c["name"],
                "args": _json(c["args"]),
                "id": c["id"],
                "index": i,
            }
            for i, c in enumerate(message.tool_calls)
        ],
        usage_metadata=message.usage_metadata,
        response_metadata=message.response_metadata,
        chunk_position="last",
    )


def as_ai_chunk(chunk: BaseMessageChunk) -> AIMessageChunk:
    if isinstance(chunk, AIMessageChunk):
        return chunk
    return AIMessageChunk(content=chunk.content, response_metadata=chunk.response_metadata)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
