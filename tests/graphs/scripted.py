"""A scripted chat model: the network edge of the graph corpus, and nothing more.

Each turn with tools bound plays the next entry of ``script`` (a list of tool calls, or a
text answer); past the end of the script the model keeps asking for its last tool turn
(a model that will not stop on its own, so only a budget ends the run) unless
``then_answer`` is set. With no tools bound (the final call of a budgeted run) it answers
in text. A structured-output call (``with_structured_output`` binds the schema as the
only tool and forces it) is answered with ``structured[schema name]``.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

Call = tuple[str, dict[str, Any]]
Turn = list[Call] | str

_IDS = itertools.count()  # tool call ids unique across every model of a test run


class ScriptedChat(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    model_name: str = "fake-gpt"
    script: list[Any] = Field(default_factory=list)  # list[Turn]
    then_answer: bool = False
    structured: dict[str, dict[str, Any]] = Field(default_factory=dict)
    answer: str = "final answer"
    input_tokens: int = 100
    output_tokens: int = 20
    max_tokens: int | None = 50
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    calls: list[dict[str, Any]] = Field(default_factory=list)  # kwargs of each call
    turn: int = 0
    lock: Any = Field(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_model_name"] = self.model_name
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        return params

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> Any:
        schemas = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=schemas, **kwargs)

    @property
    def model_calls(self) -> int:
        return len(self.seen)

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
            if tools and forced and tools[0] in self.structured:
                turn: Turn = [(tools[0], self.structured[tools[0]])]
            elif tools:
                turn = self._next_turn()
            else:
                turn = self.answer
        usage = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        meta = {"model_name": self.model_name}
        if isinstance(turn, str):
            msg = AIMessage(content=turn, usage_metadata=usage, response_metadata=meta)
        else:
            calls = [{"name": n, "args": a, "id": f"call_{next(_IDS)}"} for n, a in turn]
            msg = AIMessage(
                content="", tool_calls=calls, usage_metadata=usage, response_metadata=meta
            )
        return ChatResult(generations=[ChatGeneration(message=msg)])

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


def text_of(message: BaseMessage) -> str:
    content = message.content
    return content if isinstance(content, str) else json.dumps(content)
