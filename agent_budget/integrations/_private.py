"""Every private LangGraph name agent-budget uses, in one module, each with the reason no
public API does the job. Before issue 11 `with_budget` used 12 private names across its
module (and copied the builder's internals); 7 are left, in the 5 uses below. The graph
itself is rebuilt through `StateGraph`'s public methods. Check these on each LangGraph
upgrade.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

# 2. Whether the run has a checkpointer. A subgraph run inherits its parent's checkpointer
#    through this config key and there is no public accessor; without it a budgeted
#    subgraph would write its spend to state on every step for nothing.
from langgraph._internal._constants import CONFIG_KEY_CHECKPOINTER

# 1. A node or route function without a tracing layer. `RunnableLambda` (public) records a
#    traced run per call and costs a measurable share of a step; LangGraph's own nodes and
#    routes are `RunnableCallable(..., trace=False)` for the same reason.
from langgraph._internal._runnable import RunnableCallable
from langgraph.graph import StateGraph
from langgraph.prebuilt import ToolNode

__all__ = [
    "CONFIG_KEY_CHECKPOINTER",
    "RunnableCallable",
    "add_state_key",
    "tool_node_settings",
    "with_tool_wrappers",
]


def tool_node_settings(node: ToolNode) -> tuple[Any, str, Callable[..., Any] | None, Any]:
    """3. What a `ToolNode` was built with: (handle_tool_errors, messages_key,
    wrap_tool_call, awrap_tool_call). ToolNode keeps them private and binds its tools when
    built, so a budgeted copy of a user's ToolNode must read them to behave the same."""
    return (
        node._handle_tool_errors,
        node._messages_key,
        node._wrap_tool_call,
        node._awrap_tool_call,
    )


def add_state_key(builder: StateGraph[Any, Any, Any, Any], schema: type[Any]) -> None:
    """4. Add the keys of ``schema`` to a graph's state. The graph's state schema is the
    user's; adding a node with ``input_schema=`` registers keys too, but then that node
    reads only those keys."""
    builder._add_schema(schema)


def with_tool_wrappers(
    node: ToolNode, wrap: Callable[..., Any], awrap: Callable[..., Any] | None
) -> ToolNode:
    """5. A copy of ``node`` whose calls go through ``wrap`` / ``awrap``, of the node's own
    class: a user's `ToolNode` subclass keeps its overrides, which a new `ToolNode` built
    from its tools would drop. The wrappers are private attributes, and RunnableCallable
    keeps the node's own bound methods, which a shallow copy leaves bound to the original."""
    guarded = copy.copy(node)
    guarded._wrap_tool_call = wrap
    guarded._awrap_tool_call = awrap
    guarded.func = _rebind(node.func, node, guarded)
    guarded.afunc = _rebind(node.afunc, node, guarded)
    return guarded


def _rebind(func: Any, old: Any, new: Any) -> Any:
    if getattr(func, "__self__", None) is old:
        return getattr(new, func.__name__)
    return func
