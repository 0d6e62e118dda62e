"""Middleware hooks that carry their own signature. `create_agent` wraps each ``wrap_*``
hook in LangSmith's ``traceable``, which calls ``inspect.signature`` on the hook on every
call, traced or not; for a bound method that rebuilds the signature each time (~50 Python
calls a hook, ~5% of a bare agent step). A stored ``__signature__`` is read back as is."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

WRAP_HOOKS = ("wrap_model_call", "awrap_model_call", "wrap_tool_call", "awrap_tool_call")


def presigned(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` as a plain function that carries its signature. The class keeps the
    methods, which is what `create_agent` checks."""

    hook: Callable[..., Any]
    if inspect.iscoroutinefunction(method):  # ``traceable`` picks its wrapper by this

        async def async_hook(*args: Any, **kwargs: Any) -> Any:
            return await method(*args, **kwargs)

        hook = async_hook
    else:

        def sync_hook(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        hook = sync_hook
    hook.__signature__ = inspect.signature(method)  # type: ignore[union-attr]
    hook.__name__ = hook.__qualname__ = method.__name__
    hook.__doc__ = method.__doc__
    return hook


def presign_hooks(middleware: Any) -> None:
    """Replace ``middleware``'s wrap hooks, on the instance, by presigned ones."""
    for hook in WRAP_HOOKS:
        setattr(middleware, hook, presigned(getattr(middleware, hook)))
