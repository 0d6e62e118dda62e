"""agent-budget."""
