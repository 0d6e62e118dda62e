"""One way to name a model anywhere in agent-budget, with its price known to the tracker.

``local:smollm2-135m``, ``local:gemma3-270m``, ``local:/path/model.gguf`` -> `LocalChatModel`;
anything else is a LiteLLM model string (``openai/gpt-4.1-mini``, ``anthropic/claude-...``,
``openai/my-model`` + ``api_base``) -> `RemoteChatModel`. ``provider:model`` (LangChain's
spelling) is accepted as ``provider/model``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from agent_budget.budget import Budget, ModelPrice
from agent_budget.errors import UnknownPrice
from agent_budget.models.catalog import LOCAL_PREFIX, is_local, locate
from agent_budget.pricing import PriceBook, ResolvedPrice

PriceSpec = ModelPrice | Mapping[str, Any] | Sequence[Any] | None
"""USD per million tokens: a ``ModelPrice``, ``{"input": .., "output": ..}`` or a pair."""


def canonical_name(spec: str) -> str:
    """The name a model is priced and recorded under."""
    spec = spec.strip()
    if is_local(spec):
        rest = spec[len(LOCAL_PREFIX) :] if spec.startswith(LOCAL_PREFIX) else ""
        return LOCAL_PREFIX + (rest or "smollm2-135m")
    head, sep, tail = spec.partition(":")
    if sep and "/" not in head and tail and not tail.startswith("//"):
        return f"{head}/{tail}"
    return spec


def _price(price: PriceSpec) -> ModelPrice | None:
    if price is None or isinstance(price, ModelPrice):
        return price
    if isinstance(price, Mapping):
        return ModelPrice(**price)
    inp, out = price
    return ModelPrice(input=inp, output=out)


def resolve(
    spec: str | BaseChatModel,
    *,
    price: PriceSpec = None,
    api_base: str | None = None,
    api_key: str | None = None,
    budget: Budget | None = None,
    **kwargs: Any,
) -> BaseChatModel:
    """A chat model for ``spec``, its price registered or checked.

    A remote model whose price neither ``price``, ``budget`` nor LiteLLM's map knows raises
    `UnknownPrice` here, before any call is made. Extra keyword arguments go to the model
    (``max_tokens``, ``temperature``, ``n_ctx``, ``timeout``, ``max_retries``...).
    """
    if isinstance(spec, BaseChatModel):
        return spec
    name = canonical_name(spec)
    given = _price(price)
    if is_local(name):
        from agent_budget.models.local import LocalChatModel

        canonical, path = locate(name)
        return LocalChatModel(
            model_name=canonical,
            model_path=str(path),
            input_price=None if given is None else given.input,
            output_price=None if given is None else given.output,
            **kwargs,
        )
    if given is None:
        _check_price(name, budget, api_base)
    from agent_budget.models.remote import RemoteChatModel

    return RemoteChatModel(
        model=name,
        api_base=api_base,
        api_key=None if api_key is None else SecretStr(api_key),
        input_price=None if given is None else given.input,
        output_price=None if given is None else given.output,
        **kwargs,
    )


def _check_price(name: str, budget: Budget | None, api_base: str | None) -> None:
    book = PriceBook(budget or Budget())
    try:
        book.model_price(name)
    except UnknownPrice:
        if book.map_entry(name) is not None:  # a $0 placeholder: its own message says why
            raise
        where = f" served at {api_base}" if api_base else ""
        raise UnknownPrice(
            name,
            hint=(
                f"LiteLLM does not know the model{where} and no price was given. Pass one: "
                f"resolve({name!r}, price=(0.15, 0.60)) in USD per million input/output tokens "
                "(CLI: --price 0.15,0.60), or add it to Budget(model_prices=...)."
            ),
        ) from None


def model_price(spec: str, budget: Budget | None = None) -> ResolvedPrice:
    """The price the tracker will use for ``spec`` (local models: $0 unless registered)."""
    name = canonical_name(spec)
    if is_local(name):
        from agent_budget.pricing import register_own_price

        register_own_price(name, free_by_default=True)
    return PriceBook(budget or Budget()).model_price(name)


def cost_usd(spec: str, input_tokens: int, output_tokens: int) -> Decimal:
    return model_price(spec).cost(input_tokens, output_tokens)
