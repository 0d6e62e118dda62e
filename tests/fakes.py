"""Fakes at the network edge only: a chat model that behaves like a tool-calling provider
(usage metadata, model name, bind_tools) without a network. Everything else is real."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from pydantic import ConfigDict, Field

FAKE_MODEL = "fake-gpt"
FAKE_PRICE = {"input": 1.0, "output": 2.0}  # USD per million tokens


class ToolCallingFake(BaseChatModel):
    """Asks for `calls_per_turn` calls of `tool_name` on every turn while tools are bound,
    up to `max_tool_turns` turns; answers in plain text when no tools are bound."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    model_name: str = FAKE_MODEL
    tool_name: str = "search"
    calls_per_turn: int = 1
    max_tool_turns: int = 10_000
    input_tokens: int = 100
    output_tokens: int = 20
    max_tokens: int | None = 50
    same_args: bool = False  # ask for the very same call every turn (a looping model)
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    turns: int = 0
    lock: Any = Field(default_factory=threading.Lock)
    ids: Any = Field(default_factory=lambda: itertools.count())

    @property
    def _llm_type(self) -> str:
        return "tool-calling-fake"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_model_name"] = self.model_name
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        return params

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self.bind(tools=[getattr(t, "name", str(t)) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self.lock:
            self.seen.append(list(messages))
            self.turns += 1
            turn = self.turns
        usage = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        meta = {"model_name": self.model_name}
        if kwargs.get("tools") and turn <= self.max_tool_turns:
            calls = [
                {
                    "name": self.tool_name,
                    "args": {"query": "same" if self.same_args else f"q{turn}-{i}"},
                    "id": f"call_{next(self.ids)}",
                }
                for i in range(self.calls_per_turn)
            ]
            msg = AIMessage(
                content="", tool_calls=calls, usage_metadata=usage, response_metadata=meta
            )
        else:
            msg = AIMessage(
                content=f"final answer after {turn} turns",
                usage_metadata=usage,
                response_metadata=meta,
            )
        return ChatResult(generations=[ChatGeneration(message=msg)])


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()

    def hit(self) -> int:
        with self.lock:
            self.n += 1
            return self.n


def make_search(counter: Counter, text: str = "result") -> Any:
    @tool
    def search(query: str) -> str:
        """Search the web."""
        counter.hit()
        return f"{text} for {query}"

    return search


class ScriptedFake(ToolCallingFake):
    """Answers turn N with ``script[N]``: a list of tool calls ``[(name, args), ...]`` or a
    final text; after the script, plain text. Tools bound or not, it follows the script."""

    script: list[Any] = Field(default_factory=list)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self.lock:
            self.seen.append(list(messages))
            self.turns += 1
            turn = self.turns
        usage = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        meta = {"model_name": self.model_name}
        step = self.script[turn - 1] if turn <= len(self.script) else f"final answer {turn}"
        if isinstance(step, str) or not kwargs.get("tools"):
            text = step if isinstance(step, str) else f"final answer {turn}"
            msg = AIMessage(content=text, usage_metadata=usage, response_metadata=meta)
        else:
            calls = [
                {"name": name, "args": args, "id": f"call_{turn}_{i}"}
                for i, (name, args) in enumerate(step)
            ]
            msg = AIMessage(
                content="", tool_calls=calls, usage_metadata=usage, response_metadata=meta
            )
        return ChatResult(generations=[ChatGeneration(message=msg)])
