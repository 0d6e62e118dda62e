"""What the models exchange: declarative job plans, local outputs and the remote's decisions.

Every shape here is plain JSON validated with pydantic. A plan is data the protocol reads
(which tasks, how to chunk, which words to look for), never code to run. Each has a JSON
schema the model is held to: the local model through a llama.cpp grammar, the remote one
through ``response_format`` (OpenAI-style strict ``json_schema``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent_budget.delegation.chunking import ChunkBy


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Task(_Strict):
    """One instruction every selected chunk is read with."""

    task: str = Field(min_length=1, max_length=500)
    """What the local model should do with its chunk, e.g. "Find the vault's access code"."""
    advice: str = Field(default="", max_length=500)
    """How to go about it, e.g. "It is a number after the words 'access code'"."""
    keywords: list[str] = Field(default_factory=list, max_length=12)
    """Words the chunks worth reading likely contain: chunks are ranked by them."""


class ChunkPlan(_Strict):
    by: ChunkBy = "paragraphs"
    size: int = Field(default=4000, gt=0)
    """Characters per chunk."""
    overlap: int = Field(default=200, ge=0)


class JobPlan(_Strict):
    """The remote's plan for one round: tasks x chosen chunks = jobs for the local model."""

    tasks: list[Task] = Field(min_length=1, max_length=8)
    chunking: ChunkPlan = Field(default_factory=ChunkPlan)

    @field_validator("tasks")
    @classmethod
    def _distinct(cls, tasks: list[Task]) -> list[Task]:
        if len({t.task.strip().lower() for t in tasks}) != len(tasks):
            raise ValueError("tasks must be distinct")
        return tasks


class LocalOutput(_Strict):
    """What the local model returns for one job."""

    explanation: str
    citation: str
    """Words copied from the chunk that support the answer."""
    answer: str | None
    """None when the chunk does not answer the task."""


class Decision(_Strict):
    """The remote's verdict after reading a round's outputs."""

    decision: Literal["answer", "another_round"]
    answer: str
    """The best answer so far (also kept when asking for another round)."""
    feedback: str
    """What is missing, for the next round's plan."""


class MinionTurn(_Strict):
    """The remote's turn in a Minion chat: a question for the local model, or the answer."""

    message: str
    """The next question for the local model (ignored when ``final_answer`` is set)."""
    final_answer: str | None


def loads(text: str) -> Any:
    """JSON as models write it: raw newlines inside strings are accepted (llama.cpp's JSON
    grammar allows them). Raises ValueError (naming the place) when it is not JSON."""
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at character {exc.pos}: {text[:120]!r}") from None


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema in the strict form OpenAI's ``json_schema`` mode accepts (every
    property required, no extra properties, no defaults): llama.cpp's grammar builder reads it
    too. Limits the models need not see (lengths) are checked by pydantic afterwards."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return fix(defs[node["$ref"].split("/")[-1]])
            out = {
                k: fix(v)
                for k, v in node.items()
                if k not in ("default", "title", "maxLength", "minLength", "maxItems", "minItems")
                and not k.startswith("exclusive")
            }
            if out.get("type") == "object" and "properties" in out:
                out["required"] = list(out["properties"])
                out["additionalProperties"] = False
            return out
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    return dict(fix(schema))


RemoteJson = Literal["json_schema", "json_object", "none"]
"""How the remote model is held to a reply's JSON schema.

- ``"json_schema"``: OpenAI's structured outputs (``response_format`` type ``json_schema``),
  which most cloud providers accept through LiteLLM.
- ``"json_object"``: ``{"type": "json_object", "schema": ...}``, the form
  ``llama_cpp.server`` (and some OpenAI-compatible servers) turn into a grammar.
- ``"none"``: the schema is only described in the prompt; the reply is validated after.
"""


def response_format(
    model: type[BaseModel], kind: RemoteJson = "json_schema"
) -> dict[str, Any] | None:
    if kind == "none":
        return None
    if kind == "json_object":
        return {"type": "json_object", "schema": strict_schema(model)}
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "schema": strict_schema(model), "strict": True},
    }
