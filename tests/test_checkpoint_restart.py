"""Spend survives a restart: a SqliteSaver thread reloaded by a new process keeps its spend."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import json, sqlite3, sys
    sys.path.insert(0, {tests!r})
    from fakes import FAKE_MODEL, FAKE_PRICE, Counter, ToolCallingFake, make_search
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.prebuilt import create_react_agent
    from agent_budget import Budget, with_budget

    conn = sqlite3.connect({db!r}, check_same_thread=False)
    counter, model = Counter(), ToolCallingFake(max_tool_turns=3)
    agent = with_budget(
        create_react_agent(model, [make_search(counter)], checkpointer=SqliteSaver(conn)),
        Budget(tool_calls={{"search": 5}}, prices={{"search": "0.01"}},
               model_prices={{FAKE_MODEL: FAKE_PRICE}}),
    )
    cfg = {{"configurable": {{"thread_id": "restart"}}, "recursion_limit": 100}}
    agent.invoke({{"messages": [("user", "hello")]}}, cfg)
    spend = agent.get_spend(cfg)
    print(json.dumps({{"ran": counter.n, "calls": spend.tool_calls, "usd": str(spend.usd)}}))
    """
)


def run_process(db: Path) -> dict[str, object]:
    code = SCRIPT.format(tests=str(Path(__file__).parent), db=str(db))
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_new_process_continues_the_thread_spend(tmp_path: Path) -> None:
    db = tmp_path / "checkpoints.sqlite"
    first = run_process(db)
    assert first["ran"] == 3 and first["calls"] == {"search": 3}
    second = run_process(db)
    assert second["ran"] == 2  # 5 allowed over the thread, 3 already spent before the restart
    assert second["calls"] == {"search": 5}
    assert float(str(second["usd"])) > float(str(first["usd"]))
