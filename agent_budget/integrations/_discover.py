"""Finding things in a user's graph: its chat model (for the final answer) and its tools
(to catch a mistyped tool limit before the run, not after the money is spent)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableBinding, RunnableSequence
from langchain_core.runnables.fallbacks import RunnableWithFallbacks

from agent_budget.budget import Budget, misspelled
from agent_budget.errors import InvalidBudget, UnknownPrice

_MAX_DEPTH = 7


def find_chat_model(roots: Iterable[Any]) -> BaseChatModel | None:
    """The first chat model reachable from the nodes: through bound runnables, sequences,
    and the closures and globals of node functions (where `create_react_agent` and most
    hand-written nodes keep their model). Tools bound to it are left behind on purpose."""
    seen: set[int] = set()
    for root in roots:
        found = _search(root, seen, 0)
        if found is not None:
            return found
    return None


def _search(obj: Any, seen: set[int], depth: int) -> BaseChatModel | None:
    if obj is None or id(obj) in seen or depth > _MAX_DEPTH:
        return None
    seen.add(id(obj))
    if isinstance(obj, BaseChatModel):
        return obj
    children: list[Any] = []
    if isinstance(obj, RunnableBinding):
        children.append(obj.bound)
    elif isinstance(obj, RunnableSequence):
        children.extend(obj.steps)
    elif isinstance(obj, RunnableWithFallbacks):
        children.extend([obj.runnable, *obj.fallbacks])
    elif isinstance(obj, functools.partial):
        children.extend([obj.func, *obj.args, *obj.keywords.values()])
    builder = _attr(obj, "builder")  # a compiled subgraph: look in its nodes
    if builder is not None and isinstance(_attr(builder, "nodes"), dict):
        children.extend(spec.runnable for spec in builder.nodes.values())
    for attr in ("func", "afunc", "bound", "model", "llm"):
        value = _attr(obj, attr)
        if value is not None:
            children.append(value)
    code = _attr(obj, "__code__")
    if code is not None:
        children.extend(c.cell_contents for c in (obj.__closure__ or ()) if _filled(c))
        globs = _attr(obj, "__globals__") or {}
        children.extend(globs[n] for n in code.co_names if n in globs)
    elif _is_plain_object(obj):
        # A callable object used as a node (the customer-support tutorial's `Assistant`
        # keeps its `prompt | model` in `self.runnable`): look at what it holds.
        children.extend(_attr(obj, "__dict__").values())
    for child in children:
        found = _search(child, seen, depth + 1)
        if found is not None:
            return found
    return None


def _attr(obj: Any, name: str) -> Any:
    """``obj.name`` without running a class's ``__getattr__``: some forward to other objects
    and raise whatever those raise (`RunnableWithFallbacks` can raise NameError)."""
    try:
        return object.__getattribute__(obj, name)
    except Exception:  # a property of a user's object may raise anything
        return None


def _is_plain_object(obj: Any) -> bool:
    """A user's callable object (not a function, class or runnable we already look into)."""
    return (
        callable(obj)
        and not isinstance(obj, type | functools.partial | Runnable)
        and isinstance(_attr(obj, "__dict__"), dict)
    )


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def check_tool_names(budget: Budget, tools: set[str]) -> None:
    """A limit on a tool the agent does not have is almost always a typo. (Prices are not
    checked: one price list often serves several agents and their sub-agents.)"""
    if not tools:
        return
    listed = ", ".join(sorted(tools))
    for name, close in misspelled(budget.tool_calls, tools, cutoff=0.6):
        if close:
            raise InvalidBudget(
                f"budget.tool_calls.{name}: the agent has no tool {name!r}; "
                f"did you mean {close!r}? (its tools: {listed})"
            )
        warnings.warn(
            f"budget.tool_calls.{name}: the agent has no tool of that name (its tools: {listed})",
            stacklevel=3,
        )


def resolve_model(
    spec: str, budget: Budget, models: dict[str, BaseChatModel] | None
) -> BaseChatModel:
    """A model named by a budget (the downgrade target), its price checked now: a model
    with no price fails here, naming the field, not mid-run."""
    from agent_budget.integrations._messages import model_name
    from agent_budget.pricing import PriceBook

    model = (models or {}).get(spec)
    if model is None:
        from agent_budget.models import resolve

        try:
            model = resolve(spec, budget=budget)
        except UnknownPrice as exc:
            raise InvalidBudget(f"budget.downgrade.model: {exc}") from None
    try:
        PriceBook(budget).model_price(model_name(model) or spec)
    except UnknownPrice as exc:
        raise InvalidBudget(f"budget.downgrade.model: {exc}") from None
    return model
