"""Finding the `ToolNode` in a node the way users write it, and putting a guard on it.

Tutorials rarely add a bare ``ToolNode``: the customer-support tutorial wraps it in
``.with_fallbacks([...], exception_key="error")``, others pipe it into a post-processing
step or subclass it. Each of these is a tool node to budget, not a model node. (Tools a
plain function node calls itself, with ``tool.invoke`` or an inner ``ToolNode``, are
charged by `ToolChargeHandler` instead.)
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableSequence
from langchain_core.runnables.fallbacks import RunnableWithFallbacks
from langgraph.prebuilt import ToolNode


def tool_node_in(runnable: Any) -> ToolNode | None:
    """The ToolNode a graph node runs: itself (or a subclass), the primary runnable of
    ``.with_fallbacks``, or a step of a ``RunnableSequence``; None for anything else."""
    if isinstance(runnable, ToolNode):
        return runnable
    if isinstance(runnable, RunnableWithFallbacks):
        return tool_node_in(runnable.runnable)
    if isinstance(runnable, RunnableSequence):
        found = [node for step in runnable.steps if (node := tool_node_in(step)) is not None]
        return found[0] if len(found) == 1 else None
    return None


def replace_tool_node(runnable: Any, guarded: ToolNode) -> Any:
    """``runnable`` with its ToolNode (see `tool_node_in`) swapped for ``guarded``."""
    if isinstance(runnable, ToolNode):
        return guarded
    if isinstance(runnable, RunnableWithFallbacks):
        return runnable.model_copy(
            update={"runnable": replace_tool_node(runnable.runnable, guarded)}
        )
    if isinstance(runnable, RunnableSequence):
        steps = [
            replace_tool_node(step, guarded) if tool_node_in(step) is not None else step
            for step in runnable.steps
        ]
        return RunnableSequence(*steps, name=runnable.name)
    raise TypeError(f"no ToolNode in {type(runnable).__name__}")
