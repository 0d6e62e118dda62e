"""The graph corpus, each shape run bare and budgeted.

For every shape: the bare graph answers (so the shape itself is sound); budgeted with room
to spare it gives the same output keys and answer and shows the model its budget after
every tool result; budgeted tightly with a model that never stops asking for tools, the
limit holds and the run ends the way ``on_exhausted`` says, with the answer where the
graph's output puts it and a chat history an API accepts; both streaming modes work; the
spend is on the checkpointed thread.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from harness import budget, build, config, model_calls, prompts_after_tools, run, stream
from history import assert_valid_history
from pydantic import BaseModel
from shapes import BY_NAME, SHAPES, Built, Shape

from agent_budget import BudgetExceeded, get_spend

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@functools.cache
def bare(name: str) -> tuple[dict[str, Any], dict[str, int]]:
    shape = BY_NAME[name]
    built = build(shape, loop=False, b=None, wrap=False)
    out = run(shape, built)
    return out, dict(built.bodies.n)


def keys(out: Any) -> set[str]:
    return {k for k in out if not k.startswith("__")}


def answer(out: dict[str, Any], key: str) -> Any:
    value = out.get(key)
    if key == "messages":
        return value[-1].content if value else None
    return value


def limit_held(shape: Shape, built: Built) -> None:
    for tool_name, n in (shape.tight.get("tool_calls") or {}).items():
        assert built.bodies.n[tool_name] <= n, f"{tool_name} ran {built.bodies.n[tool_name]}"
    if "model_calls" in shape.tight:
        # One final call may pass a call-count limit (the README's promise): one per run.
        assert model_calls(built) <= shape.tight["model_calls"] + 1


def budget_after_every_tool_result(built: Built) -> None:
    seen = [m for model in built.models.values() for m in prompts_after_tools(model)]
    missing = [m.content for m in seen if "<budget>" not in str(m.content)]
    assert not missing, f"tool results shown without the budget: {missing}"


SHAPE = pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])


@SHAPE
def test_bare_graph_answers(shape: Shape) -> None:
    out, _ = bare(shape.name)
    for key in shape.answer_keys:
        assert answer(out, key), f"{shape.name}: no {key}"
    assert_valid_history(out)


@SHAPE
def test_budgeted_with_room_is_the_same_graph(shape: Shape) -> None:
    expected, bodies = bare(shape.name)
    built = build(shape, loop=False, b=budget(usd=100))
    out = run(shape, built)
    assert keys(out) == keys(expected)
    for key in shape.answer_keys:
        assert answer(out, key) == answer(expected, key)
    assert dict(built.bodies.n) == bodies
    budget_after_every_tool_result(built)
    assert_valid_history(out)


@SHAPE
def test_finalize_holds_the_limit_and_answers_where_the_graph_does(shape: Shape) -> None:
    expected, _ = bare(shape.name)
    built = build(shape, loop=True, b=budget(**shape.tight))
    out = run(shape, built)
    limit_held(shape, built)
    assert keys(out) == keys(expected)
    for key in shape.answer_keys:
        value = answer(out, key)
        assert value, f"{shape.name}: the final answer did not reach {key!r}"
        if isinstance(answer(expected, key), BaseModel):
            assert type(value) is type(answer(expected, key))
    budget_after_every_tool_result(built)
    assert_valid_history(out)


def checkpointed(shape: Shape, b: Any) -> Built:
    """The shape budgeted, with a checkpointer if its authors compiled it without one."""
    built = build(shape, loop=True, b=b)
    if built.graph.checkpointer is not None:
        return built
    from langgraph.checkpoint.memory import InMemorySaver

    from agent_budget import with_budget

    raw = shape.build(True)
    compiled = raw.graph.builder.compile(checkpointer=InMemorySaver())
    return Built(with_budget(compiled, b), raw.models, raw.bodies)


def spend_matches(built: Built, shape: Shape, cfg: dict[str, Any]) -> None:
    spend = get_spend(built.graph, cfg)
    assert spend is not None
    for tool_name in shape.tight.get("tool_calls") or {}:
        assert spend.tool_calls.get(tool_name, 0) == built.bodies.n[tool_name]
    assert spend.model_calls == model_calls(built)


@SHAPE
def test_raise_holds_the_limit_and_keeps_the_spend(shape: Shape) -> None:
    built = checkpointed(shape, budget(**shape.tight, on_exhausted="raise"))
    cfg = config(shape)
    with pytest.raises(BudgetExceeded):
        run(shape, built, cfg)
    limit_held(shape, built)
    spend_matches(built, shape, cfg)  # what the run paid before it raised is on the thread


@SHAPE
def test_streams_updates_and_messages(shape: Shape) -> None:
    built = build(shape, loop=True, b=budget(**shape.tight))
    chunks = stream(shape, built, ["updates", "messages"])
    modes = {mode for mode, _ in chunks}
    assert modes == {"updates", "messages"}
    limit_held(shape, built)
    updates = [c for mode, c in chunks if mode == "updates"]
    written = {k for u in updates for v in u.values() if isinstance(v, dict) for k in v}
    for key in shape.answer_keys:
        assert key in written, f"{shape.name}: no update wrote {key!r}"


@SHAPE
def test_spend_is_on_the_checkpointed_thread(shape: Shape) -> None:
    built = checkpointed(shape, budget(**shape.tight))
    cfg = config(shape)
    run(shape, built, cfg)
    spend_matches(built, shape, cfg)
