"""`agent-budget spend`: a thread's spend and sub-budget tree, from its checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent_budget.cli._common import console, print_error


def spend(
    thread: Annotated[str, typer.Argument(help="The thread_id of a checkpointed run")],
    checkpoints: Annotated[Path, typer.Option("--checkpoints", help="A SqliteSaver database file")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead")] = False,
) -> None:
    """A thread's spend and its tree of sub-budgets, from a SqliteSaver checkpoint file."""
    import json
    import sqlite3

    from agent_budget.budget import Budget
    from agent_budget.integrations.langgraph import thread_snapshot
    from agent_budget.render import spend_tree
    from agent_budget.tracker import BudgetTracker

    if not checkpoints.is_file():
        print_error(f"{checkpoints}: no such checkpoint file")
        raise typer.Exit(2)
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError:
        print_error("reading checkpoints needs langgraph-checkpoint-sqlite (pip install it)")
        raise typer.Exit(2) from None
    try:
        conn = sqlite3.connect(f"file:{checkpoints}?mode=ro", uri=True)
        snapshot = thread_snapshot(SqliteSaver(conn), thread)
    except sqlite3.DatabaseError as exc:
        print_error(f"{checkpoints}: not a readable SqliteSaver database ({exc})")
        raise typer.Exit(2) from None
    if snapshot is None:
        print_error(f"thread {thread!r} has no budget state in {checkpoints}")
        raise typer.Exit(1)
    tree = BudgetTracker.restore(Budget(name=thread), snapshot).tree()
    if as_json:
        console.print_json(json.dumps({**tree.to_dict(), "events": snapshot.get("events", [])}))
    else:
        console.print(spend_tree(tree))
