"""Errors of the model layer. Each says what was asked, what was found, and what to do."""

from __future__ import annotations

from typing import Any

from agent_budget.errors import AgentBudgetError


class ModelError(AgentBudgetError):
    """Base class of the model layer's errors."""


class ModelNotAvailable(ModelError, LookupError):
    """A model named by the user cannot be found here (missing package, file or name)."""


class InvalidModelFile(ModelError, ValueError):
    """A model file exists but is not a loadable GGUF (truncated download, wrong file...)."""


class ContextOverflow(ModelError, ValueError):
    """A prompt plus its reserved output does not fit the model's context window."""

    def __init__(self, model: str, prompt_tokens: int, max_tokens: int, n_ctx: int) -> None:
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.n_ctx = n_ctx
        super().__init__(
            f"prompt for {model} is {prompt_tokens} tokens and {max_tokens} are reserved for the "
            f"answer, but its context window is {n_ctx} tokens. Shorten the conversation, lower "
            "max_tokens, load the model with a larger n_ctx, or use "
            "overflow='truncate' to drop the oldest messages."
        )


class ModelCallFailed(ModelError):
    """A remote model call failed after all its attempts (each attempt is still charged)."""

    def __init__(
        self,
        model: str,
        attempts: int,
        cause: BaseException,
        log: list[dict[str, Any]] | None = None,
    ) -> None:
        self.model = model
        self.attempts = attempts
        self.cause = cause
        self.log = log or []
        """One record per attempt: outcome, error, the tokens it is charged, seconds."""
        super().__init__(
            f"call to {model} failed after {attempts} attempt(s): "
            f"{type(cause).__name__}: {cause}. Check the endpoint and key, or raise max_retries."
        )

    @property
    def charged_tokens(self) -> tuple[int, int]:
        """(input, output) tokens the failed attempts are charged, for a budget handler."""
        return (
            sum(r.get("input_tokens", 0) for r in self.log),
            sum(r.get("output_tokens", 0) for r in self.log),
        )
