"""The BATS research agent as a LangGraph graph.

    START -> plan --(searches)--> tools -> agent --(tool calls)--> tools
               ^                              |
               |                              +--(an answer)--> verify --SUCCESS--> END
               +-------------- PIVOT ---------------------------------+
                                          agent <--- CONTINUE --------+

- ``plan`` (model, structured): reads the budget (the tracker's remaining Query / URL / USD
  and its regime) and asks the model for as many different searches as the budget affords
  now (`allowance`: breadth while HIGH, depth when LOW, none at CRITICAL); the searches go
  out as one step of parallel ``web_search`` calls. After a PIVOT it plans again, told
  what failed and what is left.
- ``tools``: a plain `ToolNode`; `with_budget` guards each call (a Query budget of N allows
  N searches, parallel ones included) and appends the budget message to every result.
- ``agent`` (model with tools): reads results, fetches pages or searches more, or answers.
  Its system prompt carries the plan and the verifier's last feedback.
- ``verify`` (model, structured): SUCCESS / CONTINUE / PIVOT with a trajectory summary
  (`verify.decide`); acted on: answer, dig deeper, or plan a new direction. With nothing
  left to spend (or after ``max_rounds`` verdicts) it answers without asking.

Everything the agent decided is kept in the ``research`` state key (plans, verdicts).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Final, TypedDict

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from pydantic import Field, create_model

from agent_budget.agents.search.budgeting import SEARCH_TOOL, Allowance, allowance
from agent_budget.agents.search.verify import decide
from agent_budget.errors import BudgetExceeded
from agent_budget.integrations.langgraph import current_tracker

RESEARCH_KEY: Final = "research"
MAX_ROUNDS: Final = 3

AGENT_PROMPT = (
    "You are a research assistant with two tools: web_search(query) finds pages, "
    "fetch_page(url) reads one. Answer the question in one short sentence, naming the "
    "fact asked for, as soon as the results support it."
)
BUDGET_NOTE = "Each call costs money and counts against a budget shown after every result."


def agent_prompt() -> str:
    """The agent's system prompt; it mentions the budget only when the run shows it (a
    budget whose message is hidden, as the plain ReAct baseline's, is not talked about)."""
    tracker = current_tracker()
    if tracker is None or tracker.limits.message_template == "":
        return AGENT_PROMPT
    return f"{AGENT_PROMPT} {BUDGET_NOTE}"


PLAN_PROMPT = (
    "Plan web searches for the question. Write short keyword queries, each looking for "
    "the fact from a different angle. Reply in JSON."
)


class ResearchState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    research: dict[str, Any]
    """question, plans (each: regime, mode, queries, urls, pivot, error), verdicts (each:
    decision, summary, next_query, fallback, acted), rounds."""


def bats_graph(
    model: Any, tools: Sequence[BaseTool], *, max_rounds: int = MAX_ROUNDS
) -> StateGraph[Any, Any, Any, Any]:
    """The agent's graph (not yet budgeted: see `build_bats_agent`). ``tools`` are
    ``[web_search, fetch_page]`` (`agent_budget.tools.search.search_tools`)."""
    by_name = {t.name: t for t in tools}
    search_arg = _first_arg(by_name.get(SEARCH_TOOL), "query")
    with_tools = model.bind_tools(list(tools))

    def plan(state: ResearchState, config: RunnableConfig) -> dict[str, Any]:
        research = _research(state)
        allow = _allowance()
        last = (research["verdicts"] or [{}])[-1]
        pivot = last.get("decision") == "PIVOT"
        done = [q for p in research["plans"] for q in p["queries"]]
        queries: list[str] = []
        error = None
        if allow.queries > 0:
            made = _plan_call(model, research["question"], allow, done, last, config)
            if isinstance(made, str):
                error = made
            else:
                queries = [q for q in made.queries if q.strip()]
        # A plan the model could not give, or one that repeats itself: search what the
        # verifier asked for, or the question itself.
        # The first plan's first search is the question itself (the offline engine and
        # the real ones rank documents by its words): one search is always on topic,
        # however far a small model's own queries drift. Later plans search what the
        # verifier asked for when the model gives nothing new.
        anchor = [] if research["plans"] else [research["question"]]
        queries = _fresh([*anchor, *queries], done)
        if not queries:
            queries = _fresh([last.get("next_query") or "", research["question"]], done)
        queries = queries[: allow.queries]
        record = {
            "regime": allow.regime,
            "mode": allow.mode,
            "queries": queries,
            "urls": allow.urls,
            "pivot": pivot,
            "error": error,
        }
        research["plans"] = [*research["plans"], record]
        text = f"Plan: {allow.describe()}"
        if queries:
            text += " Searching: " + "; ".join(queries) + "."
        calls = [
            {"name": SEARCH_TOOL, "args": {search_arg: q}, "id": f"plan_{uuid.uuid4().hex[:12]}"}
            for q in queries
        ]
        return {RESEARCH_KEY: research, "messages": [AIMessage(text, tool_calls=calls)]}

    def agent(state: ResearchState, config: RunnableConfig) -> dict[str, Any]:
        research = _research(state)
        allow = _allowance()
        system = SystemMessage(f"{agent_prompt()}\n{_guidance(research, allow)}")
        prompt: list[BaseMessage] = [system, *state.get("messages", [])]
        runner = with_tools if allow.mode != "answer" else model
        reply = runner.invoke(prompt, config)
        return {RESEARCH_KEY: research, "messages": [reply]}

    def verify(state: ResearchState, config: RunnableConfig) -> dict[str, Any]:
        research = _research(state)
        messages = state.get("messages", [])
        answer = _text(messages[-1]) if messages else ""
        allow = _allowance()
        tracker = current_tracker()
        rounds = len(research["verdicts"]) + 1
        if allow.mode == "answer" or rounds > max_rounds:
            why = "nothing left to search or read" if allow.mode == "answer" else "round limit"
            verdict: dict[str, Any] = {
                "decision": "SUCCESS",
                "summary": f"not asked: {why}; answering",
                "next_query": "",
                "fallback": False,
                "asked": False,
            }
        else:
            budget_text = tracker.message() if tracker is not None else "(no budget)"
            verdict = decide(
                model, research["question"], answer, messages, budget_text, allow, config
            )
            verdict["asked"] = True
        acted = {"SUCCESS": "answer", "CONTINUE": "dig deeper", "PIVOT": "change direction"}
        verdict["acted"] = acted[verdict["decision"]]
        verdict["regime"] = allow.regime
        research["verdicts"] = [*research["verdicts"], verdict]
        update: dict[str, Any] = {RESEARCH_KEY: research}
        if verdict["decision"] != "SUCCESS":
            hint = f" Next search: {verdict['next_query']}." if verdict["next_query"] else ""
            how = (
                "Dig deeper: search or read one more source, then answer."
                if verdict["decision"] == "CONTINUE"
                else "Change direction: the next plan tries another angle."
            )
            note = f"Verifier: {verdict['decision']}. {verdict['summary']} {how}{hint}"
            update["messages"] = [HumanMessage(note)]
        return update

    def after_plan(state: ResearchState) -> str:
        last = state["messages"][-1]
        return "tools" if getattr(last, "tool_calls", None) else "agent"

    def after_agent(state: ResearchState) -> str:
        last = state["messages"][-1]
        return "tools" if getattr(last, "tool_calls", None) else "verify"

    def after_verify(state: ResearchState) -> str:
        decision = state[RESEARCH_KEY]["verdicts"][-1]["decision"]
        return {"SUCCESS": END, "CONTINUE": "agent", "PIVOT": "plan"}[decision]

    graph = StateGraph(ResearchState)
    graph.add_node("plan", plan)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(list(tools), handle_tool_errors=True))
    graph.add_node("verify", verify)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", after_plan, ["tools", "agent"])
    graph.add_edge("tools", "agent")
    graph.add_conditional_edges("agent", after_agent, ["tools", "verify"])
    graph.add_conditional_edges("verify", after_verify, [END, "agent", "plan"])
    return graph


def build_bats_agent(
    model: Any,
    tools: Sequence[BaseTool],
    budget: Any,
    *,
    max_rounds: int = MAX_ROUNDS,
    checkpointer: Any = None,
) -> Any:
    """The BATS agent under `with_budget` (``budget``: e.g. `research_budget(...)`)."""
    from agent_budget.integrations.langgraph import with_budget

    graph = bats_graph(model, tools, max_rounds=max_rounds)
    compiled = graph.compile(checkpointer=checkpointer) if checkpointer is not None else graph
    return with_budget(compiled, budget, final_model=model)


def _allowance() -> Allowance:
    tracker = current_tracker()
    if tracker is None:
        return allowance({}, "HIGH")
    return allowance(tracker.remaining(), tracker.regime().value)


def _plan_call(
    model: Any,
    question: str,
    allow: Allowance,
    done: list[str],
    last: dict[str, Any],
    config: RunnableConfig,
) -> Any:
    """The model's plan (a ``SearchPlan``), or an error text when it gave none."""
    # Queries only: what to spend is decided from the budget above (`allowance`), and a
    # free-text "approach" field cost the 135M model most of its output on noise.
    schema = create_model(
        "SearchPlan",
        queries=(
            list[Annotated[str, Field(max_length=80)]],
            Field(min_length=1, max_length=allow.queries),
        ),
    )
    tracker = current_tracker()
    budget_text = tracker.message() if tracker is not None else ""
    told = f"Question: {question}\nBudget: {budget_text}\n{allow.describe()}\n"
    told += f"Write {allow.queries} search quer{'ies' if allow.queries > 1 else 'y'}."
    if done:
        told += f"\nAlready searched: {'; '.join(done)}."
    if last.get("decision") == "PIVOT":
        told += f"\nThat direction failed: {last.get('summary', '')}. Try another angle."
    prompt = [SystemMessage(PLAN_PROMPT), HumanMessage(told)]
    try:
        return model.with_structured_output(schema).invoke(prompt, config)
    except (BudgetExceeded, GraphBubbleUp):
        raise
    except Exception as exc:  # no plan from this model: the caller falls back, recorded
        return f"{type(exc).__name__}: {str(exc)[:200]}"


def _guidance(research: dict[str, Any], allow: Allowance) -> str:
    plan = (research["plans"] or [{}])[-1]
    lines = [f"Budget now: {allow.describe()}"]
    if plan.get("queries"):
        lines.append(f"Your plan searched: {'; '.join(plan['queries'])}.")
    if allow.urls > 0:
        lines.append(f"Read up to {allow.urls} of the most promising pages with fetch_page.")
    if allow.mode == "answer":
        lines.append("Do not call tools: answer now from the results above.")
    return "\n".join(lines)


def _research(state: ResearchState) -> dict[str, Any]:
    research = dict(state.get(RESEARCH_KEY) or {})
    research.setdefault("question", _first_user_text(state.get("messages", [])))
    research.setdefault("plans", [])
    research.setdefault("verdicts", [])
    return research


def _fresh(queries: list[str], done: list[str]) -> list[str]:
    seen = {q.strip().lower() for q in done}
    out = []
    for q in queries:
        key = q.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(q.strip())
    return out


def _first_arg(tool: BaseTool | None, default: str) -> str:
    args = list(getattr(tool, "args", {}) or {})
    return args[0] if args else default


def _first_user_text(messages: Sequence[Any]) -> str:
    for m in messages:
        if getattr(m, "type", None) == "human":
            return _text(m)
    return ""


def _text(message: Any) -> str:
    content = getattr(message, "content", "")
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
