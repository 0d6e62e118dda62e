"""The harness's errors: part of the one hierarchy (`AgentBudgetError`)."""

from __future__ import annotations

from agent_budget.errors import AgentBudgetError


class InvalidSweep(AgentBudgetError, ValueError):
    """A sweep cannot start: bad configuration, task file, model, factory or cap. Raised
    before anything is spent; the message names the file / field / line at fault."""


class SweepMismatch(InvalidSweep):
    """The output directory holds results of a different sweep: resuming would mix them."""


class SweepInterrupted(AgentBudgetError):
    """The sweep stopped before its end; what finished is saved and a rerun resumes."""
