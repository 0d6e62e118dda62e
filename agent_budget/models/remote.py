"""`RemoteChatModel`: any model LiteLLM can call (cloud providers, OpenAI-compatible servers).

Rate limits and timeouts are retried with tenacity, and every attempt is charged: a provider
may bill a prompt it processed before timing out, so by default each failed attempt costs its
prompt tokens. The attempts are listed in ``response_metadata["attempts"]`` and included in
``usage_metadata``, which is what the budget callback commits.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    convert_to_openai_messages,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, SecretStr
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from agent_budget.budget import Budget
from agent_budget.errors import UnknownPrice
from agent_budget.models.errors import ModelCallFailed
from agent_budget.prices.usage import TokenUsage, usage_details
from agent_budget.pricing import PriceBook, import_litellm, register_model_price

FailedAttemptCharge = Literal["prompt", "none"]
"""What a failed attempt (rate limit, timeout) is charged.

- ``"prompt"``: its prompt tokens, as if the provider processed the prompt (the default: a
  timed-out request may well have been billed, and a budget should not assume otherwise).
- ``"none"``: nothing (for providers known not to bill refused requests).
"""

_RETRYABLE = (
    "RateLimitError",
    "Timeout",
    "APIConnectionError",
    "ServiceUnavailableError",
    "InternalServerError",
)


class RemoteChatModel(BaseChatModel):
    """A chat model called through LiteLLM, e.g. ``RemoteChatModel(model="openai/gpt-4.1-mini")``
    or ``RemoteChatModel(model="openai/my-model", api_base="http://127.0.0.1:8000/v1")``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str
    """LiteLLM model string (``provider/name``): also the tracker's price key."""
    api_base: str | None = None
    api_key: SecretStr | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    stop: list[str] | None = None
    timeout: float = 60.0
    """Seconds per attempt."""
    max_retries: int = 3
    """Retries after the first attempt, on rate limits, timeouts and connection errors."""
    retry_initial_wait: float = 1.0
    """Seconds before the first retry (doubling after, plus up to as much random jitter)."""
    retry_max_wait: float = 30.0
    charge_failed_attempts: FailedAttemptCharge = "prompt"
    input_price: Decimal | None = None
    """USD per million prompt tokens; registered under `model` (wins over LiteLLM's map)."""
    output_price: Decimal | None = None
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra arguments for litellm.completion (e.g. ``{"mock_response": "hi"}`` in tests)."""

    def model_post_init(self, context: Any, /) -> None:
        if self.input_price is not None or self.output_price is not None:
            register_model_price(
                self.model, input=self.input_price or 0, output=self.output_price or 0
            )

    @property
    def _llm_type(self) -> str:
        return "agent-budget-litellm"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "api_base": self.api_base,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            **{k: v for k, v in self.model_kwargs.items() if k != "mock_response"},
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider=self.model.split("/", 1)[0] if "/" in self.model else "litellm",
            ls_model_name=self.model,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice in ("any", True):
            tool_choice = "required"
        elif isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "required"):
            tool_choice = {"type": "function", "function": {"name": tool_choice}}
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    # ---- request -----------------------------------------------------------------------

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        req: dict[str, Any] = {
            "model": self.model,
            "messages": convert_to_openai_messages(messages),
            "api_base": self.api_base,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stop": stop or self.stop,
            "timeout": self.timeout,
            # tenacity does the retrying, so it can charge and record each attempt.
            "num_retries": 0,
            "max_retries": 0,
            **self.model_kwargs,
        }
        if self.api_key is not None:
            req["api_key"] = self.api_key.get_secret_value()
        elif self.api_base is not None:
            req["api_key"] = "no-key"  # local OpenAI-compatible servers accept any key
        for key in (
            "tools",
            "tool_choice",
            "response_format",
            "max_tokens",
            "temperature",
            "top_p",
            "seed",
            "parallel_tool_calls",
        ):
            if key in kwargs:
                req[key] = kwargs[key]
        return {k: v for k, v in req.items() if v is not None}

    def _retryable(self, exc: BaseException) -> bool:
        litellm = import_litellm()
        kinds = tuple(getattr(litellm, n) for n in _RETRYABLE if hasattr(litellm, n))
        return isinstance(exc, kinds)

    def _retry_args(self, attempts: _Attempts) -> dict[str, Any]:
        def record_failure(state: RetryCallState) -> None:
            if state.outcome is not None and state.outcome.failed:
                attempts.failed(state.outcome.exception())

        return {
            "stop": stop_after_attempt(self.max_retries + 1),
            "wait": _backoff(self.retry_initial_wait, self.retry_max_wait),
            "retry": retry_if_exception(self._retryable),
            "after": record_failure,
            "reraise": True,
        }

    # ---- sync / async calls ---------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        litellm = import_litellm()
        req = self._request(messages, stop, kwargs)
        attempts = _Attempts(self, req)
        try:
            for attempt in Retrying(**self._retry_args(attempts)):
                with attempt:
                    attempts.start()
                    response = litellm.completion(**req)
        except BaseException as exc:
            raise attempts.final_error(exc) from exc
        return attempts.result(response)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        litellm = import_litellm()
        req = self._request(messages, stop, kwargs)
        attempts = _Attempts(self, req)
        try:
            async for attempt in AsyncRetrying(**self._retry_args(attempts)):
                with attempt:
                    attempts.start()
                    response = await litellm.acompletion(**req)
        except BaseException as exc:
            raise attempts.final_error(exc) from exc
        return attempts.result(response)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        litellm = import_litellm()
        req = {
            **self._request(messages, stop, kwargs),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        attempts = _Attempts(self, req)
        try:
            for attempt in Retrying(**self._retry_args(attempts)):
                with attempt:
                    attempts.start()
                    stream = litellm.completion(**req)
        except BaseException as exc:
            raise attempts.final_error(exc) from exc
        acc = _StreamAccumulator()
        for raw in stream:
            chunk = acc.chunk(raw)
            if chunk is not None:
                if run_manager and isinstance(chunk.message.content, str):
                    run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
                yield chunk
        yield attempts.last_chunk(acc)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        litellm = import_litellm()
        req = {
            **self._request(messages, stop, kwargs),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        attempts = _Attempts(self, req)
        try:
            async for attempt in AsyncRetrying(**self._retry_args(attempts)):
                with attempt:
                    attempts.start()
                    stream = await litellm.acompletion(**req)
        except BaseException as exc:
            raise attempts.final_error(exc) from exc
        acc = _StreamAccumulator()
        async for raw in stream:
            chunk = acc.chunk(raw)
            if chunk is not None:
                if run_manager and isinstance(chunk.message.content, str):
                    await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
                yield chunk
        yield attempts.last_chunk(acc)

    # ---- prices ---------------------------------------------------------------------------

    def cost_usd(self, input_tokens: int, output_tokens: int) -> Decimal | None:
        """What the tracker will charge for these tokens (None if the price is unknown)."""
        try:
            return PriceBook(Budget()).model_cost(self.model, input_tokens, output_tokens)
        except UnknownPrice:
            return None

    def usage_cost(self, usage: Any, service_tier: str | None = None) -> Decimal | None:
        """What the tracker will charge for a reply's ``usage_metadata``, details included."""
        try:
            used = TokenUsage.from_usage_metadata(usage, service_tier=service_tier)
            return PriceBook(Budget()).model_cost(self.model, used)
        except UnknownPrice:
            return None


class _Attempts:
    """The attempts of one call: what each cost, and the message metadata they add up to."""

    def __init__(self, model: RemoteChatModel, req: dict[str, Any]) -> None:
        self.model = model
        self.req = req
        self.records: list[dict[str, Any]] = []
        self._started = 0.0
        self.started = 0
        self._prompt_tokens: int | None = None

    def prompt_tokens(self) -> int:
        if self._prompt_tokens is None:
            litellm = import_litellm()
            try:
                self._prompt_tokens = int(
                    litellm.token_counter(model=self.model.model, messages=self.req["messages"])
                )
            except Exception:  # unknown tokenizer: fall back to ~4 characters per token
                self._prompt_tokens = len(json.dumps(self.req["messages"])) // 4 + 1
        return self._prompt_tokens

    def start(self) -> None:
        self.started += 1
        self._started = time.perf_counter()

    def failed(self, exc: BaseException | None) -> None:
        charged = self.model.charge_failed_attempts == "prompt"
        self.records.append(
            {
                "attempt": len(self.records) + 1,
                "outcome": _outcome(exc),
                "error": f"{type(exc).__name__}: {exc}"[:300],
                "input_tokens": self.prompt_tokens() if charged else 0,
                "output_tokens": 0,
                "seconds": round(time.perf_counter() - self._started, 4),
            }
        )

    def final_error(self, exc: BaseException) -> BaseException:
        if not isinstance(exc, Exception):
            return exc
        if len(self.records) < self.started:  # not retryable, so tenacity did not record it
            self.failed(exc)
        return ModelCallFailed(self.model.model, len(self.records), exc, self.records)

    def _succeeded(self, inp: int, out: int, estimated: bool) -> dict[str, Any]:
        self.records.append(
            {
                "attempt": len(self.records) + 1,
                "outcome": "ok",
                "input_tokens": inp,
                "output_tokens": out,
                "seconds": round(time.perf_counter() - self._started, 4),
            }
        )
        inp_total = sum(r["input_tokens"] for r in self.records)
        out_total = sum(r["output_tokens"] for r in self.records)
        cost = self.model.cost_usd(inp_total, out_total)
        meta: dict[str, Any] = {
            "model_name": self.model.model,
            "model_provider": "litellm",
            "attempts": self.records,
            "n_attempts": len(self.records),
            "cost_usd": None if cost is None else str(cost),
            "usage": UsageMetadata(
                input_tokens=inp_total, output_tokens=out_total, total_tokens=inp_total + out_total
            ),
        }
        if estimated:
            meta["usage_estimated"] = True
        return meta

    def result(self, response: Any) -> ChatResult:
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        message = _to_message(choice.message)
        if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
            inp, out, estimated = int(usage.prompt_tokens), int(usage.completion_tokens or 0), False
        else:
            inp, out, estimated = self.prompt_tokens(), _count(self.model, message), True
        meta = self._succeeded(inp, out, estimated)
        message.usage_metadata = meta.pop("usage")
        meta["finish_reason"] = choice.finish_reason
        details = usage_details(usage)
        tier = getattr(response, "service_tier", None)
        if details or tier:  # cache, reasoning, audio, service tier: each priced apart
            message.usage_metadata = {**message.usage_metadata, **details}  # type: ignore[assignment]
            if tier:
                meta["service_tier"] = tier
            cost = self.model.usage_cost(message.usage_metadata or {}, tier)
            meta["cost_usd"] = None if cost is None else str(cost)
        hidden = getattr(response, "_hidden_params", {}) or {}
        if hidden.get("response_cost") is not None:
            meta["litellm_cost_usd"] = hidden["response_cost"]
        message.response_metadata = meta
        return ChatResult(generations=[ChatGeneration(message=message)])

    def last_chunk(self, acc: _StreamAccumulator) -> ChatGenerationChunk:
        if acc.usage is not None:
            inp, out, estimated = acc.usage[0], acc.usage[1], False
        else:
            inp, out, estimated = self.prompt_tokens(), _count_text(self.model, acc.text), True
        meta = self._succeeded(inp, out, estimated)
        usage = meta.pop("usage")
        meta["finish_reason"] = acc.finish_reason
        details = usage_details(acc.raw_usage)
        if details or acc.service_tier:  # as in `result`: each priced apart
            usage = {**usage, **details}
            if acc.service_tier:
                meta["service_tier"] = acc.service_tier
            cost = self.model.usage_cost(usage, acc.service_tier)
            meta["cost_usd"] = None if cost is None else str(cost)
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="", usage_metadata=usage, response_metadata=meta, chunk_position="last"
            )
        )


class _StreamAccumulator:
    def __init__(self) -> None:
        self.text = ""
        self.usage: tuple[int, int] | None = None
        self.raw_usage: Any = None
        self.service_tier: str | None = None
        self.finish_reason: str | None = None

    def chunk(self, raw: Any) -> ChatGenerationChunk | None:
        usage = getattr(raw, "usage", None)
        if usage is not None and getattr(usage, "prompt_tokens", None):
            self.usage = (int(usage.prompt_tokens), int(usage.completion_tokens or 0))
            self.raw_usage = usage
        self.service_tier = getattr(raw, "service_tier", None) or self.service_tier
        if not raw.choices:
            return None
        choice = raw.choices[0]
        self.finish_reason = choice.finish_reason or self.finish_reason
        delta = choice.delta
        content = getattr(delta, "content", None) or ""
        calls = [
            {
                "type": "tool_call_chunk",
                "name": tc.function.name if tc.function else None,
                "args": tc.function.arguments if tc.function else None,
                "id": tc.id,
                "index": tc.index,
            }
            for tc in (getattr(delta, "tool_calls", None) or [])
        ]
        if not content and not calls:
            return None
        self.text += content
        return ChatGenerationChunk(
            message=AIMessageChunk(content=content, tool_call_chunks=calls)  # type: ignore[arg-type]
        )


def _to_message(msg: Any) -> AIMessage:
    tool_calls: list[Any] = []
    invalid: list[Any] = []
    for tc in getattr(msg, "tool_calls", None) or []:
        raw = tc.function.arguments or "{}"
        try:
            args = json.loads(raw)
            tool_calls.append(
                {"type": "tool_call", "name": tc.function.name, "args": args, "id": tc.id}
            )
        except json.JSONDecodeError as exc:
            invalid.append(
                {
                    "type": "invalid_tool_call",
                    "name": tc.function.name,
                    "args": raw,
                    "id": tc.id,
                    "error": str(exc),
                }
            )
    return AIMessage(content=msg.content or "", tool_calls=tool_calls, invalid_tool_calls=invalid)


def _count(model: RemoteChatModel, message: AIMessage) -> int:
    text = message.text + "".join(json.dumps(c["args"]) for c in message.tool_calls)
    return _count_text(model, text)


def _count_text(model: RemoteChatModel, text: str) -> int:
    litellm = import_litellm()
    try:
        return int(litellm.token_counter(model=model.model, text=text))
    except Exception:
        return len(text) // 4 + 1


def _backoff(first: float, longest: float) -> Any:
    # tenacity 9.2 renamed `initial` to `multiplier`; pyproject allows older versions too.
    if "multiplier" in inspect.signature(wait_exponential_jitter).parameters:
        return wait_exponential_jitter(multiplier=first, max=longest, jitter=first)
    return wait_exponential_jitter(initial=first, max=longest, jitter=first)


def _outcome(exc: BaseException | None) -> str:
    name = type(exc).__name__
    if "RateLimit" in name:
        return "rate_limited"
    if "Timeout" in name:
        return "timeout"
    if "Connection" in name:
        return "connection_error"
    return "error"
