"""`RemoteChatModel`: any model LiteLLM can call (cloud providers, OpenAI-compatible servers).

Rate limits and timeouts are retried with tenacity, and every attempt is charged: a provider
may bill a prompt it processed before timing out, so by default each failed attempt costs its
prompt tokens. The attempts are listed in ``response_metadata["attempts"]`` and included in
``usage_metadata``, which is what the budget callback commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    convert_to_openai_messages,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, SecretStr
from tenacity import (
    AsyncRetrying,
    Retrying,
)

from agent_budget.budget import Budget
from agent_budget.errors import UnknownPrice
from agent_budget.models._litellm_call import Attempts
from agent_budget.prices.usage import TokenUsage
from agent_budget.pricing import PriceBook, import_litellm, register_own_price

FailedAttemptCharge = Literal["prompt", "none"]
"""What a failed attempt (rate limit, timeout) is charged.

- ``"prompt"``: its prompt tokens, as if the provider processed the prompt (the default: a
  timed-out request may well have been billed, and a budget should not assume otherwise).
- ``"none"``: nothing (for providers known not to bill refused requests).
"""


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
        register_own_price(self.model, self.input_price, self.output_price)

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
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        *,
        stream: bool = False,
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
        if stream:  # usage comes on the last chunk only when asked for
            req.update(stream=True, stream_options={"include_usage": True})
        return {k: v for k, v in req.items() if v is not None}

    # ---- sync / async calls: the same `Attempts`, a different call to retry ----------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = Attempts(self, self._request(messages, stop, kwargs))
        with call.errors():
            response = Retrying(**call.retry_args())(call.attempt(import_litellm().completion))
        return call.result(response)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = Attempts(self, self._request(messages, stop, kwargs))
        with call.errors():
            retrying = AsyncRetrying(**call.retry_args())
            response: Any = await retrying(call.aattempt(import_litellm().acompletion))
        return call.result(response)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = Attempts(self, self._request(messages, stop, kwargs, stream=True))
        with call.errors():
            stream = Retrying(**call.retry_args())(call.attempt(import_litellm().completion))
        for raw in stream:
            for chunk in call.read(raw):
                if run_manager:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        yield call.last_chunk()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = Attempts(self, self._request(messages, stop, kwargs, stream=True))
        with call.errors():
            retrying = AsyncRetrying(**call.retry_args())
            stream: Any = await retrying(call.aattempt(import_litellm().acompletion))
        async for raw in stream:
            for chunk in call.read(raw):
                if run_manager:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        yield call.last_chunk()

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
