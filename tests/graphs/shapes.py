"""Agent graphs as people write them, after public LangGraph / LangChain material.

Each builder follows the structure of one public template, tutorial or course notebook
(state schema, nodes, edges, how tools are called) and differs only at the network edge:
chat models are `ScriptedChat`, web tools count their calls and return canned text. The
graphs are left as their authors wrote them; nothing in them knows about budgets.

- ``react_template``: langchain-ai/react-agent (dataclass state, ``input_schema``,
  ``context_schema``, async node, ``is_last_step``).
- ``data_enrichment``: langchain-ai/data-enrichment (no messages in the output schema,
  ``tool_choice="any"``, a structured-output ``reflect`` node).
- ``custom_state``: the LangGraph tutorial "customize state" (extra state keys, a tool
  that calls ``interrupt()`` and returns ``Command(update=...)``).
- ``structured_respond``: the how-to "ReAct agent with structured output" (a ``respond``
  node writes ``final_response`` with ``with_structured_output``).
- ``supervisor`` / ``supervisor_send``: the tutorial "agent supervisor" (handoff tools
  returning ``Command(graph=Command.PARENT)``; the variant that hands off with ``Send``).
- ``customer_support``: the tutorial "customer support bot", part 3 (``ToolNode`` in
  ``.with_fallbacks(..., exception_key="error")``, a callable-object assistant node, a
  node that calls a tool with ``tool.invoke``, ``interrupt_before`` sensitive tools).
- ``update_from_tools``: the how-to "update graph state from tools" (a tool returns
  ``Command(update=...)`` into a custom ``AgentState``).
- ``research_assistant``: LangChain Academy module 4 research assistant (no messages at
  the top level, an interview subgraph fanned out with ``Send``, nodes that call search
  tools with ``.invoke``, three writer nodes in parallel, a final assembling node).
- ``agentic_rag``: the LangGraph tutorial "build a custom RAG agent" (a retriever
  ``ToolNode`` whose way out is a router that grades the documents with a structured-output
  model call; a ``generate_answer`` node that answers from the retrieved context, then END).
- ``create_agent_project``: ``langchain.agents.create_agent`` with several middlewares
  (BudgetMiddleware in place of a hand-written limit) and ``response_format``.
"""

import operator
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from fakes import ScriptedChat
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    get_buffer_string,
)
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool, InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from langgraph.managed import IsLastStep
from langgraph.prebuilt import InjectedState, ToolNode, create_react_agent, tools_condition
from langgraph.runtime import Runtime
from langgraph.types import Command, Send, interrupt
from pydantic import BaseModel, Field

# --- the network edge ---------------------------------------------------------------------


class Bodies:
    """How many times each tool body ran (what a paid API would bill)."""

    def __init__(self) -> None:
        self.n: Counter[str] = Counter()
        self._lock = threading.Lock()

    def hit(self, name: str) -> None:
        with self._lock:
            self.n[name] += 1


@dataclass
class Built:
    graph: Any
    models: dict[str, ScriptedChat]
    bodies: Bodies


@dataclass
class Shape:
    name: str
    build: Callable[[bool], Built]  # loop=True: a model that never stops asking for tools
    inputs: dict[str, Any]
    tight: dict[str, Any]  # Budget fields that the looping run must run into
    answer_keys: tuple[str, ...]  # output keys that carry the answer
    config: dict[str, Any] = field(default_factory=dict)
    context: Any = None
    resume: Any = None  # what a person answers to the graph's interrupts
    is_async: bool = False
    middleware: bool = False  # budgeted by BudgetMiddleware, not with_budget
    held: Callable[[Built], None] | None = None  # extra assertions on the limits


MODEL_PRICES = {
    "fake-gpt": {"input": 1.0, "output": 2.0},
    "boss-model": {"input": 10.0, "output": 30.0},
    "worker-model": {"input": 0.5, "output": 1.0},
}


def search_tool(bodies: Bodies, name: str = "search") -> BaseTool:
    def run(query: str) -> str:
        bodies.hit(name)
        return f"results for {query}"

    return tool(name, description=f"{name}: look something up on the web.")(run)


# --- 1. react-agent template --------------------------------------------------------------


@dataclass
class ReactContext:
    system_prompt: str = "You are a helpful AI assistant. System time: {system_time}"
    model: str = "anthropic/claude-sonnet"


def react_template(loop: bool) -> Built:
    from dataclasses import dataclass as dc
    from dataclasses import field as dc_field

    bodies = Bodies()
    model = ScriptedChat(script=[[("search", {"query": "weather sf"})]], then_answer=not loop)
    TOOLS = [search_tool(bodies)]
    Context = ReactContext

    @dc
    class InputState:
        messages: Annotated[Sequence[AnyMessage], add_messages] = dc_field(default_factory=list)

    @dc
    class State(InputState):
        is_last_step: IsLastStep = dc_field(default=False)

    def load_chat_model(fully_specified_name: str) -> ScriptedChat:
        return model  # init_chat_model(...) in the template

    async def call_model(state: State, runtime: Runtime[Context]) -> dict[str, list[AIMessage]]:
        bound = load_chat_model(runtime.context.model).bind_tools(TOOLS)
        system_message = runtime.context.system_prompt.format(system_time="2026-01-01")
        response = await bound.ainvoke(
            [{"role": "system", "content": system_message}, *state.messages]
        )
        if state.is_last_step and response.tool_calls:
            return {
                "messages": [
                    AIMessage(
                        id=response.id,
                        content="Sorry, I could not find an answer to your question in the "
                        "specified number of steps.",
                    )
                ]
            }
        return {"messages": [response]}

    def route_model_output(state: State) -> Literal["__end__", "tools"]:
        last_message = state.messages[-1]
        if not isinstance(last_message, AIMessage):
            raise ValueError(f"Expected AIMessage, got {type(last_message).__name__}")
        return "tools" if last_message.tool_calls else "__end__"

    builder = StateGraph(State, input_schema=InputState, context_schema=Context)
    builder.add_node(call_model)
    builder.add_node("tools", ToolNode(TOOLS))
    builder.add_edge("__start__", "call_model")
    builder.add_conditional_edges("call_model", route_model_output)
    builder.add_edge("tools", "call_model")
    return Built(builder.compile(name="ReAct Agent"), {"model": model}, bodies)


# --- 2. data-enrichment template ----------------------------------------------------------


class InfoIsSatisfactory(BaseModel):
    """Validate whether the current extracted info is satisfactory and complete."""

    reason: list[str] = Field(description="Reasons why this is good or bad.")
    is_satisfactory: bool = Field(description="Whether the result is satisfactory.")
    improvement_instructions: str | None = Field(default=None, description="What to improve.")


EXTRACTION_SCHEMA = {
    "type": "object",
    "properties": {"founder": {"type": "string"}, "year": {"type": "integer"}},
    "required": ["founder"],
}
INFO = {"founder": "Ada", "year": 1843}


def data_enrichment(loop: bool) -> Built:
    from dataclasses import dataclass as dc
    from dataclasses import field as dc_field

    bodies = Bodies()
    script: list[Any] = [
        [("search", {"query": "who founded it"})],
        [("scrape_website", {"url": "https://example.com/about"})],
    ]
    if not loop:
        script.append([("Info", INFO)])
    model = ScriptedChat(
        script=script,
        structured={
            "InfoIsSatisfactory": {"reason": ["a", "b", "c"], "is_satisfactory": True},
            "FinalAnswer": {"info": INFO},  # a budgeted final answer for the `info` key
        },
    )
    search = search_tool(bodies)

    @tool
    def scrape_website(url: str) -> str:
        """Scrape and summarize content from a given URL."""
        bodies.hit("scrape_website")
        return f"page text of {url}"

    @dc(kw_only=True)
    class InputState:
        topic: str
        extraction_schema: dict[str, Any]
        info: dict[str, Any] | None = dc_field(default=None)

    @dc(kw_only=True)
    class State(InputState):
        messages: Annotated[list[BaseMessage], add_messages] = dc_field(default_factory=list)
        loop_step: Annotated[int, operator.add] = dc_field(default=0)

    @dc(kw_only=True)
    class OutputState:
        info: dict[str, Any]

    def init_model(config: RunnableConfig | None = None) -> ScriptedChat:
        return model

    async def call_agent_model(state: State, *, config: RunnableConfig) -> dict[str, Any]:
        info_tool = {
            "name": "Info",
            "description": "Call this when you have gathered all the relevant info",
            "parameters": state.extraction_schema,
        }
        p = f"Research {state.topic}; fill this schema: {state.extraction_schema}"
        messages = [HumanMessage(content=p), *state.messages]
        bound = init_model(config).bind_tools(
            [scrape_website, search, info_tool], tool_choice="any"
        )
        response = await bound.ainvoke(messages)
        info = None
        for tool_call in response.tool_calls:
            if tool_call["name"] == "Info":
                info = tool_call["args"]
                break
        if info is not None:
            response.tool_calls = [next(tc for tc in response.tool_calls if tc["name"] == "Info")]
        response_messages: list[BaseMessage] = [response]
        if not response.tool_calls:
            response_messages.append(
                HumanMessage(content="Please respond by calling one of the provided tools.")
            )
        return {"messages": response_messages, "info": info, "loop_step": 1}

    async def reflect(state: State, *, config: RunnableConfig) -> dict[str, Any]:
        last_message = state.messages[-1]
        if not isinstance(last_message, AIMessage):
            raise ValueError("reflect expects the last message to be an AI message")
        messages = [HumanMessage(content=f"Is this good? {state.info}"), *state.messages[:-1]]
        checker = init_model(config).with_structured_output(InfoIsSatisfactory)
        response = await checker.ainvoke(messages)
        assert isinstance(response, InfoIsSatisfactory)
        call_id = last_message.tool_calls[0]["id"]
        if response.is_satisfactory and state.info:
            return {
                "info": state.info,
                "messages": [
                    ToolMessage(
                        tool_call_id=call_id, content="\n".join(response.reason), name="Info"
                    )
                ],
            }
        return {
            "messages": [
                ToolMessage(
                    tool_call_id=call_id,
                    content=f"Unsatisfactory response:\n{response.improvement_instructions}",
                    name="Info",
                    status="error",
                )
            ]
        }

    def route_after_agent(
        state: State,
    ) -> Literal["reflect", "tools", "call_agent_model", "__end__"]:
        last_message = state.messages[-1]
        if not isinstance(last_message, AIMessage):
            return "call_agent_model"
        if last_message.tool_calls and last_message.tool_calls[0]["name"] == "Info":
            return "reflect"
        return "tools"

    def route_after_checker(
        state: State, config: RunnableConfig
    ) -> Literal["__end__", "call_agent_model"]:
        max_loops = (config.get("configurable") or {}).get("max_loops", 6)
        last_message = state.messages[-1]
        if state.loop_step < max_loops:
            if not state.info:
                return "call_agent_model"
            if isinstance(last_message, ToolMessage) and last_message.status == "error":
                return "call_agent_model"
            return "__end__"
        return "__end__"

    workflow = StateGraph(State, input_schema=InputState, output_schema=OutputState)
    workflow.add_node(call_agent_model)
    workflow.add_node(reflect)
    workflow.add_node("tools", ToolNode([search, scrape_website]))
    workflow.add_edge("__start__", "call_agent_model")
    workflow.add_conditional_edges("call_agent_model", route_after_agent)
    workflow.add_edge("tools", "call_agent_model")
    workflow.add_conditional_edges("reflect", route_after_checker)
    graph = workflow.compile()
    graph.name = "ResearchTopic"
    return Built(graph, {"model": model}, bodies)


# --- 3. custom state with human-in-the-loop -----------------------------------------------


def custom_state(loop: bool) -> Built:
    bodies = Bodies()
    model = ScriptedChat(
        script=[
            [("search", {"query": "LangGraph release date"})],
            [("human_assistance", {"name": "LangGraph", "birthday": "Jan 17, 2024"})],
            [("search", {"query": "LangGraph birthday"})],
        ],
        then_answer=not loop,
    )

    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]
        name: str
        birthday: str

    @tool
    def human_assistance(
        name: str, birthday: str, tool_call_id: Annotated[str, InjectedToolCallId]
    ) -> Command:  # type: ignore[type-arg]
        """Request assistance from a human."""
        bodies.hit("human_assistance")
        human_response = interrupt(
            {"question": "Is this correct?", "name": name, "birthday": birthday}
        )
        if str(human_response.get("correct", "")).lower().startswith("y"):
            verified_name, verified_birthday, response = name, birthday, "Correct"
        else:
            verified_name = human_response.get("name", name)
            verified_birthday = human_response.get("birthday", birthday)
            response = f"Made a correction: {human_response}"
        return Command(
            update={
                "name": verified_name,
                "birthday": verified_birthday,
                "messages": [ToolMessage(response, tool_call_id=tool_call_id)],
            }
        )

    tools = [search_tool(bodies), human_assistance]
    llm_with_tools = model.bind_tools(tools)

    def chatbot(state: State) -> dict[str, Any]:
        message = llm_with_tools.invoke(state["messages"])
        assert len(message.tool_calls) <= 1
        return {"messages": [message]}

    graph_builder = StateGraph(State)
    graph_builder.add_node("chatbot", chatbot)
    graph_builder.add_node("tools", ToolNode(tools=tools))
    graph_builder.add_conditional_edges("chatbot", tools_condition)
    graph_builder.add_edge("tools", "chatbot")
    graph_builder.add_edge(START, "chatbot")
    return Built(graph_builder.compile(checkpointer=InMemorySaver()), {"model": model}, bodies)


# --- 4. structured output through a respond node ------------------------------------------


class WeatherResponse(BaseModel):
    """Respond to the user in this format."""

    temperature: float = Field(description="The temperature in fahrenheit")
    wind_directon: str = Field(description="The direction of the wind in abbreviated form")
    wind_speed: float = Field(description="The speed of the wind in km/h")


WEATHER = {"temperature": 75.0, "wind_directon": "SE", "wind_speed": 3.0}


def structured_respond(loop: bool) -> Built:
    bodies = Bodies()
    model = ScriptedChat(
        script=[[("get_weather", {"city": "sf"})]],
        then_answer=not loop,
        structured={"WeatherResponse": WEATHER},
    )

    @tool
    def get_weather(city: Literal["nyc", "sf"]) -> str:
        """Use this to get weather information."""
        bodies.hit("get_weather")
        return "It's always sunny in sf" if city == "sf" else "It might be cloudy in nyc"

    class AgentState(MessagesState):
        final_response: WeatherResponse

    tools = [get_weather]
    model_with_tools = model.bind_tools(tools)
    model_with_structured_output = model.with_structured_output(WeatherResponse)

    def call_model(state: AgentState) -> dict[str, Any]:
        return {"messages": [model_with_tools.invoke(state["messages"])]}

    def respond(state: AgentState) -> dict[str, Any]:
        # The tutorial passes the last tool result, as a human message, to the formatter.
        response = model_with_structured_output.invoke(
            [HumanMessage(content=state["messages"][-2].content)]
        )
        return {"final_response": response}

    def should_continue(state: AgentState) -> str:
        last_message = state["messages"][-1]
        return "continue" if last_message.tool_calls else "respond"

    workflow = StateGraph(AgentState)
    workflow.add_node("agent", call_model)
    workflow.add_node("respond", respond)
    workflow.add_node("tools", ToolNode(tools))
    workflow.set_entry_point("agent")
    workflow.add_conditional_edges(
        "agent", should_continue, {"continue": "tools", "respond": "respond"}
    )
    workflow.add_edge("tools", "agent")
    workflow.add_edge("respond", END)
    return Built(workflow.compile(), {"model": model}, bodies)


# --- 5. agent supervisor with handoff tools (and the Send variant) ------------------------


def _workers(bodies: Bodies, loop: bool) -> tuple[Any, Any, ScriptedChat, ScriptedChat]:
    research_model = ScriptedChat(
        model_name="worker-model",
        script=[[("web_search", {"query": "NY state GDP 2024"})]],
        then_answer=not loop,
        answer="NY GDP is $2.3T",
    )
    math_model = ScriptedChat(
        model_name="worker-model",
        script=[[("add", {"a": 1, "b": 2})], [("multiply", {"a": 3, "b": 4})]],
        then_answer=True,
        answer="the result is 12",
    )
    web_search = search_tool(bodies, "web_search")

    @tool
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        bodies.hit("add")
        return a + b

    @tool
    def multiply(a: float, b: float) -> float:
        """Multiply two numbers."""
        bodies.hit("multiply")
        return a * b

    research_agent = create_react_agent(
        model=research_model,
        tools=[web_search],
        prompt="You are a research agent. Only do research tasks.",
        name="research_agent",
    )
    math_agent = create_react_agent(
        model=math_model,
        tools=[add, multiply],
        prompt="You are a math agent. Only do math tasks.",
        name="math_agent",
    )
    return research_agent, math_agent, research_model, math_model


def create_handoff_tool(*, agent_name: str, description: str | None = None) -> BaseTool:
    name = f"transfer_to_{agent_name}"

    @tool(name, description=description or f"Ask {agent_name} for help.")
    def handoff_tool(
        state: Annotated[MessagesState, InjectedState],
        tool_call_id: Annotated[str, InjectedToolCallId],
    ) -> Command:  # type: ignore[type-arg]
        tool_message = {
            "role": "tool",
            "content": f"Successfully transferred to {agent_name}",
            "name": name,
            "tool_call_id": tool_call_id,
        }
        return Command(
            goto=agent_name,
            update={**state, "messages": [*state["messages"], tool_message]},
            graph=Command.PARENT,
        )

    return handoff_tool


def supervisor(loop: bool, workers_loop: bool | None = None) -> Built:
    bodies = Bodies()
    research_agent, math_agent, research_model, math_model = _workers(
        bodies, loop if workers_loop is None else workers_loop
    )
    boss = ScriptedChat(
        model_name="boss-model",
        script=[[("transfer_to_research_agent", {})], [("transfer_to_math_agent", {})]],
        then_answer=not loop,
        answer="GDP share computed",
    )
    supervisor_agent = create_react_agent(
        model=boss,
        tools=[
            create_handoff_tool(agent_name="research_agent"),
            create_handoff_tool(agent_name="math_agent"),
        ],
        prompt="You are a supervisor managing two agents.",
        name="supervisor",
    )
    graph = (
        StateGraph(MessagesState)
        .add_node(supervisor_agent, destinations=("research_agent", "math_agent", END))
        .add_node(research_agent)
        .add_node(math_agent)
        .add_edge(START, "supervisor")
        .add_edge("research_agent", "supervisor")
        .add_edge("math_agent", "supervisor")
        .compile()
    )
    return Built(graph, {"boss": boss, "research": research_model, "math": math_model}, bodies)


def create_task_description_handoff_tool(
    *, agent_name: str, description: str | None = None
) -> BaseTool:
    name = f"transfer_to_{agent_name}"

    @tool(name, description=description or f"Ask {agent_name} for help.")
    def handoff_tool(
        task_description: Annotated[
            str, "Description of what the next agent should do, including all relevant context."
        ],
        state: Annotated[MessagesState, InjectedState],
    ) -> Command:  # type: ignore[type-arg]
        task_description_message = {"role": "user", "content": task_description}
        agent_input = {**state, "messages": [task_description_message]}
        return Command(goto=[Send(agent_name, agent_input)], graph=Command.PARENT)

    return handoff_tool


def supervisor_send(loop: bool) -> Built:
    bodies = Bodies()
    research_agent, math_agent, research_model, math_model = _workers(bodies, False)
    boss = ScriptedChat(
        model_name="boss-model",
        script=[
            [("transfer_to_research_agent", {"task_description": "find NY GDP"})],
            [("transfer_to_math_agent", {"task_description": "compute the share"})],
        ],
        then_answer=not loop,
        answer="GDP share computed",
    )
    supervisor_agent = create_react_agent(
        model=boss,
        tools=[
            create_task_description_handoff_tool(agent_name="research_agent"),
            create_task_description_handoff_tool(agent_name="math_agent"),
        ],
        prompt="You are a supervisor managing two agents.",
        name="supervisor",
    )
    graph = (
        StateGraph(MessagesState)
        .add_node(supervisor_agent, destinations=("research_agent", "math_agent"))
        .add_node(research_agent)
        .add_node(math_agent)
        .add_edge(START, "supervisor")
        .add_edge("research_agent", "supervisor")
        .add_edge("math_agent", "supervisor")
        .compile()
    )
    return Built(graph, {"boss": boss, "research": research_model, "math": math_model}, bodies)


# --- 6. customer support, part 3 ----------------------------------------------------------


def handle_tool_error(state: dict[str, Any]) -> dict[str, Any]:
    error = state.get("error")
    tool_calls = state["messages"][-1].tool_calls
    return {
        "messages": [
            ToolMessage(
                content=f"Error: {error!r}\n please fix your mistakes.", tool_call_id=tc["id"]
            )
            for tc in tool_calls
        ]
    }


def create_tool_node_with_fallback(tools: list[Any]) -> Any:
    return ToolNode(tools).with_fallbacks(
        [RunnableLambda(handle_tool_error)], exception_key="error"
    )


class Assistant:
    def __init__(self, runnable: Runnable[Any, Any]) -> None:
        self.runnable = runnable

    def __call__(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        while True:
            result = self.runnable.invoke(state)
            if not result.tool_calls and not result.content:
                messages = [*state["messages"], ("user", "Respond with a real output.")]
                state = {**state, "messages": messages}
            else:
                break
        return {"messages": result}


def customer_support(loop: bool) -> Built:
    bodies = Bodies()
    model = ScriptedChat(
        script=[
            [("search_flights", {"departure_airport": "CDG"})],
            [
                (
                    "update_ticket_to_new_flight",
                    {"ticket_no": "7240005432906569", "new_flight_id": 1},
                )
            ],
            [("search_flights", {"departure_airport": "ZRH"})],
        ],
        then_answer=not loop,
        answer="Your flight is changed.",
    )

    @tool
    def fetch_user_flight_information(config: RunnableConfig) -> list[dict[str, Any]]:
        """Fetch all tickets for the user along with flight information."""
        bodies.hit("fetch_user_flight_information")
        passenger_id = (config.get("configurable") or {}).get("passenger_id")
        return [{"ticket_no": "7240005432906569", "passenger_id": passenger_id}]

    @tool
    def search_flights(departure_airport: str) -> list[dict[str, Any]]:
        """Search for flights based on departure airport."""
        bodies.hit("search_flights")
        return [{"flight_id": 1, "departure_airport": departure_airport}]

    @tool
    def update_ticket_to_new_flight(ticket_no: str, new_flight_id: int) -> str:
        """Update the user's ticket to a new valid flight."""
        bodies.hit("update_ticket_to_new_flight")
        return "Ticket successfully updated to new flight."

    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]
        user_info: str

    assistant_prompt = ChatPromptTemplate.from_messages(
        [
            (
                "system",
                "You are a helpful customer support assistant for Swiss Airlines.\n"
                "Current user:\n<User>\n{user_info}\n</User>",
            ),
            ("placeholder", "{messages}"),
        ]
    )
    safe_tools = [search_flights]
    sensitive_tools = [update_ticket_to_new_flight]
    sensitive_tool_names = {t.name for t in sensitive_tools}
    assistant_runnable = assistant_prompt | model.bind_tools(safe_tools + sensitive_tools)

    def user_info(state: State) -> dict[str, Any]:
        return {"user_info": str(fetch_user_flight_information.invoke({}))}

    def route_tools(state: State) -> str:
        next_node = tools_condition(state)
        if next_node == END:
            return END
        ai_message = state["messages"][-1]
        first_tool_call = ai_message.tool_calls[0]
        return (
            "sensitive_tools" if first_tool_call["name"] in sensitive_tool_names else "safe_tools"
        )

    builder = StateGraph(State)
    builder.add_node("fetch_user_info", user_info)
    builder.add_edge(START, "fetch_user_info")
    builder.add_node("assistant", Assistant(assistant_runnable))
    builder.add_node("safe_tools", create_tool_node_with_fallback(safe_tools))
    builder.add_node("sensitive_tools", create_tool_node_with_fallback(sensitive_tools))
    builder.add_edge("fetch_user_info", "assistant")
    builder.add_conditional_edges("assistant", route_tools, ["safe_tools", "sensitive_tools", END])
    builder.add_edge("safe_tools", "assistant")
    builder.add_edge("sensitive_tools", "assistant")
    graph = builder.compile(checkpointer=InMemorySaver(), interrupt_before=["sensitive_tools"])
    return Built(graph, {"model": model}, bodies)


# --- 7. update graph state from tools -----------------------------------------------------


USER_INFO = {"user_123": {"name": "Bob Dylan", "location": "New York, NY"}}


def update_from_tools(loop: bool) -> Built:
    from langgraph.prebuilt.chat_agent_executor import AgentState

    bodies = Bodies()
    model = ScriptedChat(
        script=[[("lookup_user_info", {})], [("search", {"query": "weather for me"})]],
        then_answer=not loop,
    )

    class State(AgentState):  # type: ignore[misc]
        user_info: dict[str, Any]

    @tool
    def lookup_user_info(
        tool_call_id: Annotated[str, InjectedToolCallId], config: RunnableConfig
    ) -> Command:  # type: ignore[type-arg]
        """Use this to look up user information to better assist them with their questions."""
        bodies.hit("lookup_user_info")
        user_id = config["configurable"].get("user_id")
        return Command(
            update={
                "user_info": USER_INFO[user_id],
                "messages": [
                    ToolMessage(
                        "Successfully looked up user information", tool_call_id=tool_call_id
                    )
                ],
            }
        )

    def prompt(state: State) -> list[AnyMessage]:
        user_info = state.get("user_info")
        system = "You are a helpful assistant."
        if user_info:
            system += f"\nUser name is {user_info['name']}"
        return [SystemMessage(content=system), *state["messages"]]

    agent = create_react_agent(
        model, [lookup_user_info, search_tool(bodies)], prompt=prompt, state_schema=State
    )
    return Built(agent, {"model": model}, bodies)


# --- 8. research assistant (LangChain Academy, module 4) ----------------------------------


class Analyst(BaseModel):
    affiliation: str = Field(description="Primary affiliation of the analyst.")
    name: str = Field(description="Name of the analyst.")
    role: str = Field(description="Role of the analyst in the context of the topic.")
    description: str = Field(description="Focus, concerns, and motives.")

    @property
    def persona(self) -> str:
        return f"Name: {self.name}\nRole: {self.role}\nAffiliation: {self.affiliation}\n"


class Perspectives(BaseModel):
    analysts: list[Analyst] = Field(description="Analysts with their roles and affiliations.")


class SearchQuery(BaseModel):
    search_query: str | None = Field(None, description="Search query for retrieval.")


ANALYSTS = {
    "analysts": [
        {"affiliation": "Lab A", "name": "Ann", "role": "engineer", "description": "scale"},
        {"affiliation": "Lab B", "name": "Bo", "role": "economist", "description": "cost"},
    ]
}


def research_assistant(loop: bool) -> Built:
    bodies = Bodies()
    llm = ScriptedChat(
        structured={"Perspectives": ANALYSTS, "SearchQuery": {"search_query": "agent budgets"}},
        answer="text",
    )

    web_search = search_tool(bodies, "tavily_search")
    wiki_search = search_tool(bodies, "wikipedia")

    class GenerateAnalystsState(TypedDict):
        topic: str
        max_analysts: int
        human_analyst_feedback: str
        analysts: list[Analyst]

    class InterviewState(MessagesState):
        max_num_turns: int
        context: Annotated[list[str], operator.add]
        analyst: Analyst
        interview: str
        sections: list[str]

    class ResearchGraphState(TypedDict):
        topic: str
        max_analysts: int
        human_analyst_feedback: str
        analysts: list[Analyst]
        sections: Annotated[list[str], operator.add]
        introduction: str
        content: str
        conclusion: str
        final_report: str

    def create_analysts(state: GenerateAnalystsState) -> dict[str, Any]:
        structured_llm = llm.with_structured_output(Perspectives)
        analysts = structured_llm.invoke(
            [
                SystemMessage(
                    content=f"Create {state['max_analysts']} analysts on {state['topic']}"
                ),
                HumanMessage(content="Generate the set of analysts."),
            ]
        )
        return {"analysts": analysts.analysts}

    def human_feedback(state: GenerateAnalystsState) -> None:
        """No-op node that should be interrupted on."""

    def should_continue(state: GenerateAnalystsState) -> Any:
        if state.get("human_analyst_feedback", None):
            return "create_analysts"
        return END

    def generate_question(state: InterviewState) -> dict[str, Any]:
        analyst = state["analyst"]
        question = llm.invoke(
            [SystemMessage(content=f"You are an analyst. {analyst.persona}"), *state["messages"]]
        )
        return {"messages": [question]}

    def search_web(state: InterviewState) -> dict[str, Any]:
        structured_llm = llm.with_structured_output(SearchQuery)
        search_query = structured_llm.invoke(
            [SystemMessage(content="Write a search query."), *state["messages"]]
        )
        search_docs = web_search.invoke(search_query.search_query)
        return {"context": [f"<Document>{search_docs}</Document>"]}

    def search_wikipedia(state: InterviewState) -> dict[str, Any]:
        structured_llm = llm.with_structured_output(SearchQuery)
        search_query = structured_llm.invoke(
            [SystemMessage(content="Write a search query."), *state["messages"]]
        )
        search_docs = wiki_search.invoke({"query": search_query.search_query})
        return {"context": [f"<Document>{search_docs}</Document>"]}

    def generate_answer(state: InterviewState) -> dict[str, Any]:
        answer = llm.invoke(
            [SystemMessage(content=f"Answer using: {state['context']}"), *state["messages"]]
        )
        answer.name = "expert"
        return {"messages": [answer]}

    def save_interview(state: InterviewState) -> dict[str, Any]:
        return {"interview": get_buffer_string(state["messages"])}

    def route_messages(state: InterviewState, name: str = "expert") -> str:
        messages = state["messages"]
        max_num_turns = state.get("max_num_turns", 2)
        num_responses = len([m for m in messages if isinstance(m, AIMessage) and m.name == name])
        if num_responses >= max_num_turns:
            return "save_interview"
        return "ask_question"

    def write_section(state: InterviewState) -> dict[str, Any]:
        section = llm.invoke(
            [
                SystemMessage(content="Write a report section."),
                HumanMessage(content=f"Use this source: {state['context']}"),
            ]
        )
        return {"sections": [section.content]}

    interview_builder = StateGraph(InterviewState)
    interview_builder.add_node("ask_question", generate_question)
    interview_builder.add_node("search_web", search_web)
    interview_builder.add_node("search_wikipedia", search_wikipedia)
    interview_builder.add_node("answer_question", generate_answer)
    interview_builder.add_node("save_interview", save_interview)
    interview_builder.add_node("write_section", write_section)
    interview_builder.add_edge(START, "ask_question")
    interview_builder.add_edge("ask_question", "search_web")
    interview_builder.add_edge("ask_question", "search_wikipedia")
    interview_builder.add_edge("search_web", "answer_question")
    interview_builder.add_edge("search_wikipedia", "answer_question")
    interview_builder.add_conditional_edges(
        "answer_question", route_messages, ["ask_question", "save_interview"]
    )
    interview_builder.add_edge("save_interview", "write_section")
    interview_builder.add_edge("write_section", END)

    def initiate_all_interviews(state: ResearchGraphState) -> Any:
        if state.get("human_analyst_feedback"):
            return "create_analysts"
        topic = state["topic"]
        return [
            Send(
                "conduct_interview",
                {
                    "analyst": analyst,
                    "messages": [
                        HumanMessage(content=f"So you said you were writing about {topic}?")
                    ],
                    "max_num_turns": 2 if loop else 1,
                },
            )
            for analyst in state["analysts"]
        ]

    def write_report(state: ResearchGraphState) -> dict[str, Any]:
        sections = "\n\n".join(state["sections"])
        report = llm.invoke([SystemMessage(content=f"Write a report from {sections}")])
        return {"content": report.content}

    def write_introduction(state: ResearchGraphState) -> dict[str, Any]:
        intro = llm.invoke([SystemMessage(content="Write an introduction.")])
        return {"introduction": intro.content}

    def write_conclusion(state: ResearchGraphState) -> dict[str, Any]:
        conclusion = llm.invoke([SystemMessage(content="Write a conclusion.")])
        return {"conclusion": conclusion.content}

    def finalize_report(state: ResearchGraphState) -> dict[str, Any]:
        final_report = "\n\n---\n\n".join(
            [state["introduction"], state["content"], state["conclusion"]]
        )
        return {"final_report": final_report}

    builder = StateGraph(ResearchGraphState)
    builder.add_node("create_analysts", create_analysts)
    builder.add_node("human_feedback", human_feedback)
    builder.add_node("conduct_interview", interview_builder.compile())
    builder.add_node("write_report", write_report)
    builder.add_node("write_introduction", write_introduction)
    builder.add_node("write_conclusion", write_conclusion)
    builder.add_node("finalize_report", finalize_report)
    builder.add_edge(START, "create_analysts")
    builder.add_edge("create_analysts", "human_feedback")
    builder.add_conditional_edges(
        "human_feedback", initiate_all_interviews, ["create_analysts", "conduct_interview"]
    )
    builder.add_edge("conduct_interview", "write_report")
    builder.add_edge("conduct_interview", "write_introduction")
    builder.add_edge("conduct_interview", "write_conclusion")
    builder.add_edge(["write_conclusion", "write_report", "write_introduction"], "finalize_report")
    builder.add_edge("finalize_report", END)
    graph = builder.compile(interrupt_before=["human_feedback"], checkpointer=InMemorySaver())
    return Built(graph, {"llm": llm}, bodies)


# --- 10. agentic RAG (the LangGraph tutorial "build a custom RAG agent") ----------------


GENERATE_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces of "
    "retrieved context to answer the question. If you don't know the answer, just say that "
    "you don't know. Use three sentences maximum and keep the answer concise.\n"
    "Question: {question} \nContext: {context}"
)


class GradeDocuments(BaseModel):
    """Grade documents using a binary score for relevance check."""

    binary_score: str = Field(description="Relevance score: 'yes' if relevant, or 'no'")


def agentic_rag(loop: bool) -> Built:
    bodies = Bodies()
    response_model = ScriptedChat(
        script=[[("retrieve_blog_posts", {"query": "types of reward hacking"})]],
        then_answer=not loop,
        answer="Reward hacking: specification gaming and reward tampering.",
    )
    # The grader finds the documents relevant, unless the run loops: then it never does,
    # and the agent rewrites its question and retrieves again until a budget stops it.
    grader_model = ScriptedChat(
        structured={"GradeDocuments": {"binary_score": "no" if loop else "yes"}}
    )

    @tool
    def retrieve_blog_posts(query: str) -> str:
        """Search and return information about Lilian Weng blog posts."""
        bodies.hit("retrieve_blog_posts")
        return f"blog post passages about {query}"

    def generate_query_or_respond(state: MessagesState) -> dict[str, Any]:
        response = response_model.bind_tools([retrieve_blog_posts]).invoke(state["messages"])
        return {"messages": [response]}

    def grade_documents(state: MessagesState) -> Literal["generate_answer", "rewrite_question"]:
        question = state["messages"][0].content
        context = state["messages"][-1].content
        prompt = f"Grade the relevance of: {context}\nto the question: {question}"
        response = grader_model.with_structured_output(GradeDocuments).invoke(
            [{"role": "user", "content": prompt}]
        )
        return "generate_answer" if response.binary_score == "yes" else "rewrite_question"

    def rewrite_question(state: MessagesState) -> dict[str, Any]:
        question = state["messages"][0].content
        response = response_model.invoke(
            [{"role": "user", "content": f"Improve this question: {question}"}]
        )
        return {"messages": [{"role": "user", "content": response.content}]}

    def generate_answer(state: MessagesState) -> dict[str, Any]:
        question = state["messages"][0].content
        context = state["messages"][-1].content
        prompt = GENERATE_PROMPT.format(question=question, context=context)
        response = response_model.invoke([{"role": "user", "content": prompt}])
        return {"messages": [response]}

    workflow = StateGraph(MessagesState)
    workflow.add_node(generate_query_or_respond)
    workflow.add_node("retrieve", ToolNode([retrieve_blog_posts]))
    workflow.add_node(rewrite_question)
    workflow.add_node(generate_answer)
    workflow.add_edge(START, "generate_query_or_respond")
    workflow.add_conditional_edges(
        "generate_query_or_respond", tools_condition, {"tools": "retrieve", END: END}
    )
    workflow.add_conditional_edges("retrieve", grade_documents)
    workflow.add_edge("generate_answer", END)
    workflow.add_edge("rewrite_question", "generate_query_or_respond")
    graph = workflow.compile()
    return Built(graph, {"response": response_model, "grader": grader_model}, bodies)


# --- 9. a create_agent project with several middlewares -----------------------------------


class Answer(BaseModel):
    """The answer to give the user."""

    summary: str
    sources: int


def create_agent_project(loop: bool, budget: Any = None) -> Built:
    from langchain.agents import create_agent
    from langchain.agents.middleware import (
        ModelCallLimitMiddleware,
        SummarizationMiddleware,
        ToolRetryMiddleware,
    )
    from langchain.agents.structured_output import ToolStrategy

    from agent_budget import Budget
    from agent_budget.integrations.langchain import BudgetMiddleware

    bodies = Bodies()
    script: list[Any] = [[("search", {"query": "a"})], [("search", {"query": "b"})]]
    if not loop:
        script.append([("Answer", {"summary": "done", "sources": 2})])
    model = ScriptedChat(script=script, structured={"Answer": {"summary": "done", "sources": 2}})
    summarizer = ScriptedChat(answer="summary of the conversation")
    budget = budget or Budget(usd=10, model_prices=MODEL_PRICES, prices={"search": 0.01})
    agent = create_agent(
        model,
        [search_tool(bodies)],
        system_prompt="You are a research assistant.",
        middleware=[
            SummarizationMiddleware(model=summarizer, trigger=("tokens", 100_000)),
            ToolRetryMiddleware(max_retries=1),
            ModelCallLimitMiddleware(run_limit=50),
            BudgetMiddleware(budget),
        ],
        response_format=ToolStrategy(Answer),
        checkpointer=InMemorySaver(),
    )
    return Built(agent, {"model": model, "summarizer": summarizer}, bodies)


# --- the corpus ---------------------------------------------------------------------------


SHAPES: list[Shape] = [
    Shape(
        "react_template",
        react_template,
        {"messages": [("user", "What is the weather in SF?")]},
        {"tool_calls": {"search": 2}},
        ("messages",),
        is_async=True,
    ),
    Shape(
        "data_enrichment",
        data_enrichment,
        {"topic": "Analytical Engine", "extraction_schema": EXTRACTION_SCHEMA},
        {"tool_calls": {"scrape_website": 2}},
        ("info",),
        is_async=True,
    ),
    Shape(
        "custom_state",
        custom_state,
        {"messages": [("user", "When was LangGraph released?")]},
        {"tool_calls": {"search": 2}},
        ("messages",),
        resume={"correct": "yes"},
    ),
    Shape(
        "structured_respond",
        structured_respond,
        {"messages": [("user", "what's the weather in SF?")]},
        {"tool_calls": {"get_weather": 2}},
        ("messages", "final_response"),
    ),
    Shape(
        "supervisor",
        supervisor,
        {"messages": [("user", "find US and NY GDP in 2024, what % of US GDP was NY?")]},
        {"model_calls": 10},
        ("messages",),
    ),
    Shape(
        "supervisor_send",
        supervisor_send,
        {"messages": [("user", "find US and NY GDP in 2024, what % of US GDP was NY?")]},
        {"model_calls": 8},
        ("messages",),
    ),
    Shape(
        "customer_support",
        customer_support,
        {"messages": [("user", "Can I move my flight to an earlier one?")]},
        {"tool_calls": {"search_flights": 2}},
        ("messages",),
        config={"passenger_id": "3442 587242"},
        resume=None,
    ),
    Shape(
        "update_from_tools",
        update_from_tools,
        {"messages": [("user", "hi, what should i do this weekend?")]},
        {"tool_calls": {"search": 2}},
        ("messages",),
        config={"user_id": "user_123"},
    ),
    Shape(
        "research_assistant",
        research_assistant,
        {"topic": "agent budgets", "max_analysts": 2},
        {"model_calls": 14},
        ("final_report",),
        resume=None,
    ),
    Shape(
        "agentic_rag",
        agentic_rag,
        {"messages": [("user", "What does Lilian Weng say about types of reward hacking?")]},
        {"tool_calls": {"retrieve_blog_posts": 2}},
        ("messages",),
    ),
    Shape(
        "create_agent_project",
        create_agent_project,
        {"messages": [("user", "research this")]},
        {"tool_calls": {"search": 2}},
        ("messages", "structured_response"),
        middleware=True,
    ),
]

BY_NAME = {s.name: s for s in SHAPES}
