"""One call to LiteLLM, as `RemoteChatModel` makes it: its attempts (each retried by
tenacity, each charged), what they cost, and the message or stream chunks they make.
Sync and async calls share all of it; they differ only in the call they retry."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from tenacity import RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from agent_budget.models.errors import ModelCallFailed
from agent_budget.prices.usage import usage_details
from agent_budget.pricing import import_litellm

if TYPE_CHECKING:
    from agent_budget.models.remote import RemoteChatModel

_RETRYABLE = (
    "RateLimitError",
    "Timeout",
    "APIConnectionError",
    "ServiceUnavailableError",
    "InternalServerError",
)


class Attempts:
    """The attempts of one call: what each cost, and the message metadata they add up to."""

    def __init__(self, model: RemoteChatModel, req: dict[str, Any]) -> None:
        self.model = model
        self.req = req
        self.records: list[dict[str, Any]] = []
        self._started = 0.0
        self.started = 0
        self._prompt_tokens: int | None = None
        self.acc = _StreamAccumulator()

    def attempt(self, call: Callable[..., Any]) -> Callable[[], Any]:
        """One attempt, for tenacity to retry: ``litellm.completion`` or ``acompletion``."""

        def attempt() -> Any:
            self.start()
            return call(**self.req)

        return attempt

    def aattempt(self, call: Callable[..., Any]) -> Callable[[], Any]:
        """One async attempt: tenacity awaits only a coroutine function's result."""

        async def attempt() -> Any:
            self.start()
            return await call(**self.req)

        return attempt

    def retry_args(self) -> dict[str, Any]:
        """tenacity settings: retry what LiteLLM calls transient, recording each failure."""

        def record_failure(state: RetryCallState) -> None:
            if state.outcome is not None and state.outcome.failed:
                self.failed(state.outcome.exception())

        model = self.model
        return {
            "stop": stop_after_attempt(model.max_retries + 1),
            "wait": _backoff(model.retry_initial_wait, model.retry_max_wait),
            "retry": retry_if_exception(_retryable),
            "after": record_failure,
            "reraise": True,
        }

    @contextmanager
    def errors(self) -> Iterator[None]:
        """The last error, as `ModelCallFailed` listing every attempt."""
        try:
            yield
        except BaseException as exc:
            raise self.final_error(exc) from exc

    def read(self, raw: Any) -> list[ChatGenerationChunk]:
        """The chunk a raw stream event makes (none for a usage-only or empty event)."""
        chunk = self.acc.chunk(raw)
        return [] if chunk is None else [chunk]

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
            inp, out, estimated = self.prompt_tokens(), count_tokens(self.model, message), True
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

    def last_chunk(self) -> ChatGenerationChunk:
        acc = self.acc
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


def count_tokens(model: RemoteChatModel, message: AIMessage) -> int:
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


def _retryable(exc: BaseException) -> bool:
    litellm = import_litellm()
    kinds = tuple(getattr(litellm, n) for n in _RETRYABLE if hasattr(litellm, n))
    return isinstance(exc, kinds)
