"""Every private LangGraph name agent-budget uses, in one module, each with the reason no
public API does the job. Before issue 11 `with_budget` used 12 private names across its
module (and copied the builder's internals); 7 are left, in the 4 uses below. The graph
itself is rebuilt through `StateGraph`'s public methods. Check these on each LangGraph
upgrade.
"""

from __future__ import annotations

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

__all__ = ["CONFIG_KEY_CHECKPOINTER", "RunnableCallable", "add_state_key", "tool_node_settings"]


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
