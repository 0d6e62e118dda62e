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
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

FAKE_MODEL = "fake-gpt"
FAKE_PRICE = {"input": 1.0, "output": 2.0}  # USD per million tokens


Call = tuple[str, dict[str, Any]]
Turn = list[Call] | str

_IDS = itertools.count()  # tool call ids unique across every ScriptedChat of a test run


class FakeChat(BaseChatModel):
    """What every fake here shares: a priced model name, a declared ``max_tokens`` (as
    tracing reports it), usage metadata on every answer, and the prompts it was sent."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    model_name: str = FAKE_MODEL
    input_tokens: int = 100
    output_tokens: int = 20
    max_tokens: int | None = 50
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    lock: Any = Field(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "fake-chat"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_model_name"] = self.model_name
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        return params

    @property
    def model_calls(self) -> int:
        return len(self.seen)

    def _reply(self, content: str, calls: list[dict[str, Any]] | None = None) -> ChatResult:
        usage = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        msg = AIMessage(
            content=content,
            tool_calls=calls or [],
            usage_metadata=usage,  # type: ignore[arg-type]
            response_metadata={"model_name": self.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])


class ToolCallingFake(FakeChat):
    """Asks for `calls_per_turn` calls of `tool_name` on every turn while tools are bound,
    up to `max_tool_turns` turns; answers in plain text when no tools are bound."""

    tool_name: str = "search"
    calls_per_turn: int = 1
    max_tool_turns: int = 10_000
    same_args: bool = False  # ask for the very same call every turn (a looping model)
    turns: int = 0
    ids: Any = Field(default_factory=lambda: itertools.count())

    @property
    def _llm_type(self) -> str:
        return "tool-calling-fake"

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
        if kwargs.get("tools") and turn <= self.max_tool_turns:
            calls = [
                {
                    "name": self.tool_name,
                    "args": {"query": "same" if self.same_args else f"q{turn}-{i}"},
                    "id": f"call_{next(self.ids)}",
                }
                for i in range(self.calls_per_turn)
            ]
            return self._reply("", calls)
        return self._reply(f"final answer after {turn} turns")


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
        step = self.script[turn - 1] if turn <= len(self.script) else f"final answer {turn}"
        if isinstance(step, str) or not kwargs.get("tools"):
            return self._reply(step if isinstance(step, str) else f"final answer {turn}")
        calls = [
            {"name": name, "args": args, "id": f"call_{turn}_{i}"}
            for i, (name, args) in enumerate(step)
        ]
        return self._reply("", calls)


class ScriptedChat(FakeChat):
    """The graph corpus's model (``tests/graphs``). Each turn with tools bound plays the
    next entry of ``script`` (a list of tool calls, or a text answer); past the end of the
    script it keeps asking for its last tool turn (a model that will not stop on its own,
    so only a budget ends the run) unless ``then_answer`` is set. With no tools bound (the
    final call of a budgeted run) it answers in text. A structured-output call
    (``with_structured_output`` binds the schema as the only tool and forces it) for schema
    NAME takes the next entry of ``queued[NAME]``: a dict (the call's arguments) or a str (a
    reply in plain text, not the JSON asked for); once that queue is empty, it is answered
    with ``structured[NAME]``. ``structured_calls``: the schema of every such call."""

    script: list[Any] = Field(default_factory=list)  # list[Turn]
    then_answer: bool = False
    structured: dict[str, dict[str, Any]] = Field(default_factory=dict)
    queued: dict[str, list[dict[str, Any] | str]] = Field(default_factory=dict)
    structured_calls: list[str] = Field(default_factory=list)
    answer: str = "final answer"
    calls: list[dict[str, Any]] = Field(default_factory=list)  # kwargs of each call
    turn: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted-chat"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Any:
        schemas = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=schemas, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = [t["function"]["name"] for t in kwargs.get("tools") or ()]
        with self.lock:
            self.seen.append(list(messages))
            self.calls.append(kwargs)
            forced = kwargs.get("ls_structured_output_format") is not None or (
                kwargs.get("tool_choice") not in (None, "auto", "none") and len(tools) == 1
            )
            if tools and forced:
                self.structured_calls.append(tools[0])
            queue = self.queued.get(tools[0]) if tools and forced else None
            if queue:
                entry = queue.pop(0)
                turn: Turn = entry if isinstance(entry, str) else [(tools[0], entry)]
            elif tools and forced and tools[0] in self.structured:
                turn = [(tools[0], self.structured[tools[0]])]
            elif tools:
                turn = self._next_turn()
            else:
                turn = self.answer
        if isinstance(turn, str):
            return self._reply(turn)
        calls = [{"name": n, "args": a, "id": f"call_{next(_IDS)}"} for n, a in turn]
        return self._reply("", calls)

    def _next_turn(self) -> Turn:
        self.turn += 1
        if self.turn <= len(self.script):
            turn: Turn = self.script[self.turn - 1]
            return turn if isinstance(turn, str) else list(turn)
        if self.then_answer or not self.script:
            return self.answer
        last = next((t for t in reversed(self.script) if not isinstance(t, str)), None)
        if last is None:
            return self.answer
        return list(last)  # a looping model: the same calls again and again
