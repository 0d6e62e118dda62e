"""One llama.cpp completion for `LocalChatModel`: the prompt fitted to the context window
(its overflow policy), the sampling settings, the call itself (whole or streamed, holding the
loaded model's lock), and the reply's metadata (usage, seconds of compute, confidence).

The chat model (`models.local`) decides what to ask (tool call or answer, when to force an
answer); this module only asks llama.cpp and reports what it cost.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.messages.ai import UsageMetadata

from agent_budget.models import _local_prompt as lp
from agent_budget.models._grammar import ConfidenceProbe, grammar_for
from agent_budget.models._loader import LoadedModel
from agent_budget.models.errors import ContextOverflow

if TYPE_CHECKING:
    from agent_budget.models.local import LocalChatModel


def _fit_prompt(
    model: LocalChatModel,
    lm: LoadedModel,
    messages: list[BaseMessage],
    kwargs: dict[str, Any],
    tool_prompt: str | None,
) -> tuple[list[int], int | None, int]:
    """Prompt tokens that fit the window with the reserved output, per the overflow policy."""
    max_tokens = kwargs.get("max_tokens", model.max_tokens)
    reserve = max_tokens if max_tokens and max_tokens > 0 else 1
    kept = list(messages)
    dropped = 0
    while True:
        tokens = lm.render(lp.to_chat(kept, tool_prompt))
        if len(tokens) + reserve <= lm.n_ctx:
            return tokens, max_tokens, dropped
        droppable = [i for i, m in enumerate(kept[:-1]) if not isinstance(m, SystemMessage)]
        if model.overflow == "error" or not droppable:
            raise ContextOverflow(model.model_name, len(tokens), reserve, lm.n_ctx)
        del kept[droppable[0]]
        dropped += 1


def _sampling(
    model: LocalChatModel, stop: list[str] | None, kwargs: dict[str, Any], lm: LoadedModel
) -> dict[str, Any]:
    stops = list(lm.stop) + list(stop or model.stop or [])
    return {
        "temperature": kwargs.get("temperature", model.temperature),
        "top_p": kwargs.get("top_p", model.top_p),
        "repeat_penalty": kwargs.get("repeat_penalty", model.repeat_penalty),
        "seed": kwargs.get("seed", model.seed),
        "stop": stops,
    }


def complete(
    model: LocalChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None,
    kwargs: dict[str, Any],
    tool_prompt: str | None,
    schema_json: str | None,
) -> tuple[str, dict[str, Any]]:
    """One whole completion: its text and ``response_metadata`` (with ``usage``)."""
    lm = model.loaded
    llama_cpp_grammar = grammar_for(
        schema_json, kwargs.get("response_format", model.response_format), kwargs.get("grammar")
    )
    with lm.lock:
        start = time.perf_counter()
        tokens, max_tokens, dropped = _fit_prompt(model, lm, messages, kwargs, tool_prompt)
        probe = ConfidenceProbe() if model.report_confidence else None
        reused = lm.begin(tokens, reuse=model.reuse_prefix)
        out = lm.llama.create_completion(
            prompt=tokens,
            max_tokens=max_tokens if max_tokens else -1,
            grammar=llama_cpp_grammar,
            logits_processor=probe.as_list() if probe else None,
            **_sampling(model, stop, kwargs, lm),
        )
        lm.end(tokens)
        seconds = time.perf_counter() - start
    choice = out["choices"][0]
    usage = out["usage"]
    meta = _metadata(
        model, usage["prompt_tokens"], usage["completion_tokens"], seconds, choice["finish_reason"]
    )
    meta["reused_prompt_tokens"] = reused
    if probe is not None:
        meta.update(probe.summary())
    if dropped:
        meta["truncated_messages"] = dropped
    return choice["text"], meta


def complete_stream(
    model: LocalChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None,
    kwargs: dict[str, Any],
    meta: dict[str, Any],
) -> Iterator[str]:
    """One streamed completion: its text pieces; ``meta`` is filled in at the end."""
    lm = model.loaded
    llama_cpp_grammar = grammar_for(
        None, kwargs.get("response_format", model.response_format), kwargs.get("grammar")
    )
    # Counting sampled tokens in the probe gives the exact output size while streaming.
    probe = ConfidenceProbe()
    finish: str | None = None
    with lm.lock:
        start = time.perf_counter()
        tokens, max_tokens, dropped = _fit_prompt(model, lm, messages, kwargs, None)
        reused = lm.begin(tokens, reuse=model.reuse_prefix)
        stream = lm.llama.create_completion(
            prompt=tokens,
            max_tokens=max_tokens if max_tokens else -1,
            grammar=llama_cpp_grammar,
            logits_processor=probe.as_list(),
            stream=True,
            **_sampling(model, stop, kwargs, lm),
        )
        for part in stream:
            choice = part["choices"][0]
            finish = choice.get("finish_reason") or finish
            if choice["text"]:
                yield choice["text"]
        lm.end(tokens)
        seconds = time.perf_counter() - start
    meta.update(_metadata(model, len(tokens), probe.tokens, seconds, finish))
    meta["reused_prompt_tokens"] = reused
    if model.report_confidence:
        meta.update(probe.summary())
    if dropped:
        meta["truncated_messages"] = dropped


def _metadata(
    model: LocalChatModel,
    prompt_tokens: int,
    output_tokens: int,
    seconds: float,
    finish: str | None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "model_name": model.model_name,
        "model_provider": "llama.cpp",
        "finish_reason": finish or "stop",
        "compute_seconds": round(seconds, 6),
        "usage": UsageMetadata(
            input_tokens=prompt_tokens,
            output_tokens=output_tokens,
            total_tokens=prompt_tokens + output_tokens,
        ),
    }
    if model.usd_per_compute_second is not None:
        meta["compute_usd"] = str(model.usd_per_compute_second * Decimal(str(seconds)))
    return meta


def add_usage(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    a, b = first["usage"], second["usage"]
    merged = dict(second)
    merged["usage"] = UsageMetadata(
        input_tokens=a["input_tokens"] + b["input_tokens"],
        output_tokens=a["output_tokens"] + b["output_tokens"],
        total_tokens=a["total_tokens"] + b["total_tokens"],
    )
    merged["compute_seconds"] = round(first["compute_seconds"] + second["compute_seconds"], 6)
    merged["generations"] = 2
    return merged
