"""``python -m agent_budget.cli``: the `agent-budget` command."""

from agent_budget.cli import main

main()
