"""Sans-IO steps: logic written once, free of sync or async, as a generator that yields
each call to make (``(args, kwargs)``), is sent its result or thrown its error, and returns
the outcome. `drive` runs it with a sync function, `adrive` with an async one, so a
behaviour that makes calls is not written twice (once per ``invoke`` / ``ainvoke``).

Used across layers (the graph guard and finalize node, the router, checkpoint reads), so
it lives at the bottom and imports nothing of the project.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar, cast

T = TypeVar("T")
Call = tuple[tuple[Any, ...], dict[str, Any]]
Steps = Generator[Call, Any, T]


def drive(steps: Steps[T], func: Callable[..., Any]) -> T:
    """Run ``steps``, making each call it asks for with ``func``. Steps left unfinished (an
    error outside a call) are closed, so their ``finally`` blocks run now."""
    try:
        done, value = advance(steps)
        while not done:
            done, value = advance(steps, *outcome(func, value))
        return cast(T, value)
    finally:
        steps.close()


async def adrive(steps: Steps[T], func: Callable[..., Awaitable[Any]]) -> T:
    """Run ``steps``, making each call it asks for with the async ``func``."""
    try:
        done, value = advance(steps)
        while not done:
            done, value = advance(steps, *await aoutcome(func, value))
        return cast(T, value)
    finally:
        steps.close()


def outcome(func: Callable[..., Any], call: Call) -> tuple[Any, BaseException | None]:
    try:
        return func(*call[0], **call[1]), None
    except BaseException as exc:
        return None, exc


async def aoutcome(
    func: Callable[..., Awaitable[Any]], call: Call
) -> tuple[Any, BaseException | None]:
    try:
        return await func(*call[0], **call[1]), None
    except BaseException as exc:
        return None, exc


def advance(
    steps: Steps[Any], out: Any = None, exc: BaseException | None = None
) -> tuple[bool, Any]:
    """Give the steps the outcome of the call they asked for: (False, the next call to
    make) or (True, what they return). Errors they do not handle propagate."""
    try:
        return False, steps.throw(exc) if exc is not None else steps.send(out)
    except StopIteration as stop:
        return True, stop.value


# Calls on an object passed in the step (``yield (obj, *args), kwargs``): the one name
# each driver needs when the steps choose the object (a model, a checkpointer) themselves.


def invoke(runnable: Any, *args: Any, **kwargs: Any) -> Any:
    return runnable.invoke(*args, **kwargs)


async def ainvoke(runnable: Any, *args: Any, **kwargs: Any) -> Any:
    return await runnable.ainvoke(*args, **kwargs)
