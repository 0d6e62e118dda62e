"""A budget-aware research agent (BATS): web search and page reads, each priced, under a
Query, a URL and a USD budget it sees after every call. Offline by default: the docs that
ship with Python as the search index, the embedded on-device model, no key.

    python examples/web_search.py
    python examples/web_search.py "What is the default cutoff of difflib.get_close_matches?"
    python examples/web_search.py "Who maintains LangGraph?" \
        --model openai/gpt-4.1-mini --backend ddgs

The same as `agent-budget demo search` without the live display; below is what it does.
"""

from __future__ import annotations

import argparse
import sys

from agent_budget import BudgetTracker
from agent_budget.agents.search import build_bats_agent, research_budget
from agent_budget.agents.search.bench import tools_for
from agent_budget.demos.search import DEMO_QUESTION, DemoInputError, checked
from agent_budget.models import resolve

parser = argparse.ArgumentParser()
parser.add_argument("question", nargs="?", default=DEMO_QUESTION)
parser.add_argument("--model", default="local:smollm2-135m")
parser.add_argument("--backend", default="offline", help="offline | ddgs | tavily | searxng")
parser.add_argument("--queries", type=int, default=4, help="the Query budget")
parser.add_argument("--urls", type=int, default=2, help="the URL budget")
parser.add_argument("--usd", default="0.05", help="the USD budget")
args = parser.parse_args()
try:  # bad input ends here, before a model loads
    question, backend, usd = checked(args.question, args.backend, args.queries, args.urls, args.usd)
except DemoInputError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)

small = args.model.startswith("local:")  # the 135M model's context is short: fewer hits
tools = tools_for(backend, k=3, max_page_chars=1500) if small else tools_for(backend)
model = resolve(args.model, max_tokens=160, temperature=0, **({"n_ctx": 4096} if small else {}))
budget = research_budget(args.queries, args.urls, usd)  # web_search: $0.005, fetch_page: $0.001
tracker = BudgetTracker(budget)
agent = build_bats_agent(model, tools, budget)
state = agent.invoke(
    {"messages": [("user", question)]}, {"configurable": {"budget_tracker": tracker}}
)
for p in state["research"]["plans"]:
    print(f"plan ({p['regime']}, {p['mode']}): {p['queries']}")
for v in state["research"]["verdicts"]:
    print(f"verifier: {v['decision']} -> {v['acted']}: {v['summary']}")
print("answer:", state["messages"][-1].content)
print(tracker.message())
