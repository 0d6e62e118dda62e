"""One phase of a budgeted run, in a process of its own (`test_found_bugs`): ``start``
runs until a tool interrupts, ``resume`` resumes it in a new process. The checkpoint is a
SQLite file (`SqliteSaver`), the spend a SQLite ledger; each tool body appends its name to
``runs.txt``, so the test can count the bodies that ran across both processes.

    python resume_child.py start|resume DIR toolnode|fallbacks|fallbacks_big [LEDGER]

``fallbacks_big``: as ``fallbacks``, with search results too large for the ledger to keep
(over `agent_budget.ledger.results.MAX_BYTES`, lowered to 1 KB here so the prompt stays
within the budget). LEDGER: a ledger location (default DIR/spend.db).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

from fakes import FAKE_MODEL, FAKE_PRICE, ScriptedFake
from langchain_core.messages import AnyMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt

from agent_budget import Budget, with_budget
from agent_budget.ledger import results


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def main(phase: str, where: Path, style: str, ledger: str | None = None) -> None:
    runs = where / "runs.txt"
    pad = ""
    if style == "fallbacks_big":
        results.MAX_BYTES = 1024
        pad = "x" * 2048

    @tool
    def search(query: str) -> str:
        """Search the web."""
        with runs.open("a") as f:
            f.write(f"search:{query}\n")
        return f"found {query}{pad}"

    @tool
    def approve(what: str) -> str:
        """Ask a person to approve."""
        with runs.open("a") as f:
            f.write("approve\n")
        return f"approved: {interrupt({'approve': what})}"

    calls = [("search", {"query": "a"}), ("search", {"query": "b"}), ("approve", {"what": "x"})]
    # The model's one tool step happens before the interrupt; after it, it answers.
    model = ScriptedFake(script=[calls] if phase == "start" else ["final answer"])
    bound = model.bind_tools([search, approve])
    tools: Any = ToolNode([search, approve])
    if style.startswith("fallbacks"):  # one task runs the whole step, as written
        tools = tools.with_fallbacks(
            [ToolNode([search, approve])], exceptions_to_handle=(ValueError,)
        )

    g = StateGraph(State)
    g.add_node("llm", lambda state: {"messages": [bound.invoke(state["messages"])]})
    g.add_node("tools", tools)
    g.add_edge(START, "llm")
    g.add_conditional_edges("llm", tools_condition)
    g.add_edge("tools", "llm")
    saver = SqliteSaver(sqlite3.connect(where / "checkpoints.db", check_same_thread=False))
    budget = Budget(
        usd="0.05",
        prices={"search": "0.01", "approve": "0"},
        model_prices={FAKE_MODEL: FAKE_PRICE},
        ledger=ledger or str(where / "spend.db"),
    )
    agent = with_budget(g.compile(checkpointer=saver), budget)
    cfg: dict[str, Any] = {"configurable": {"thread_id": "resume-in-a-new-process"}}
    start = {"messages": [("user", "go")]}
    out = agent.invoke(start if phase == "start" else Command(resume="yes"), cfg)
    print("interrupted" if "__interrupt__" in out else out["messages"][-1].content)


def run_phase(phase: str, where: Path, style: str, *ledger: str) -> str:
    """Run one phase of this scenario in a new Python process; its last line of output."""
    import os
    import subprocess

    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": f"{tests.parent}{os.pathsep}{tests}"}
    env.pop("AGENT_BUDGET_LEDGER", None)
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), phase, str(where), style, *ledger],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], *sys.argv[4:5])
