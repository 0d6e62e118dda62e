"""`BudgetedGraph`: the compiled graph `with_budget` returns. Each run it starts gets a
budget (`_setup.start_run`): the thread's saved spend continued, the callback handler that
charges model calls added to the run's config, and the spend kept when the run raises.
Also reading a thread's budget snapshot from any checkpointer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config, merge_configs
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from agent_budget._steps import adrive, drive
from agent_budget.budget import Budget
from agent_budget.errors import InvalidBudget
from agent_budget.integrations._private import CONFIG_KEY_CHECKPOINTER
from agent_budget.integrations._state import (
    RUN_KEY,
    SPEND_KEY,
    run_of,
)
from agent_budget.integrations._tool_charges import ToolChargeHandler
from agent_budget.integrations.callbacks import BudgetCallbackHandler, TokenCounter, with_handler
from agent_budget.integrations.threads import (
    acheckpoint_io,
    akeep_if_lagging,
    akeep_spend_after_error,
    checkpoint_io,
    keeps_spend,
    kept,
    newest_spend,
    saved_spend_steps,
)
from agent_budget.run import OWNER, Retry, WarningCallback
from agent_budget.snapshot import BudgetSnapshot
from agent_budget.tracker import Spend


@dataclass(frozen=True)
class _Setup:
    budget: Budget | None
    final_model: BaseChatModel | None
    retry: Retry | None
    token_counter: TokenCounter | None
    messages_key: str
    on_warning: WarningCallback | None = None
    composed: bool = False  # built by hand from the blocks: its finalize node has a model


class BudgetedGraph(CompiledStateGraph[Any, Any, Any, Any]):
    """A compiled graph whose every run gets a budget. Use it like any compiled graph."""

    _budget_setup: _Setup

    def __init__(self, *, _budget_setup: _Setup, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # called by Pregel.copy() / with_config()
        self._budget_setup = _budget_setup

    @property
    def budget(self) -> Budget | None:
        return self._budget_setup.budget

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        # `invoke` runs through here too. A run with a thread to keep its spend on gets a
        # wrapper (`kept`) that records the spend if it raises; any other gets LangGraph's
        # own iterator, with no frame of ours per chunk.
        config = self._with_run(input, config, saved=self._saved_spend(config))
        chunks = super().stream(input, config, **kwargs)
        if keeps_spend(self.checkpointer, config):
            return kept(chunks, self.checkpointer, config, _resuming(input))
        return chunks

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        config = self._with_run(input, config, saved=await self._asaved_spend(config))
        try:
            async for chunk in super().astream(input, config, **kwargs):
                yield chunk
        except Exception:
            await akeep_spend_after_error(self.checkpointer, config)
            raise
        await akeep_if_lagging(self.checkpointer, config, _resuming(input))

    def get_spend(self, config: RunnableConfig) -> Spend | None:
        """The spend a checkpointed thread has recorded (None if it has none)."""
        saved = self._saved_spend(config)
        return Spend.from_dict(dict(saved["spent"])) if saved else None

    def _with_run(
        self, input: Any, config: RunnableConfig | None, saved: BudgetSnapshot | None
    ) -> RunnableConfig:
        from agent_budget.integrations._setup import start_run

        # A graph's own config (`with_config`) counts, as it does for the run itself.
        conf = ensure_config(merge_configs(self.config, config) if self.config else config)
        configurable = dict(conf.get("configurable") or {})
        setup = self._budget_setup
        if isinstance(input, dict) and input.get(SPEND_KEY):
            saved = input[SPEND_KEY]
        resuming = _resuming(input)
        parent = run_of(conf) or OWNER.get()
        run, callbacks = start_run(
            setup.budget,
            conf,
            saved=saved,
            resuming=resuming,
            parent=parent,
            name=self.name,
            retry=setup.retry,
            on_warning=setup.on_warning,
        )
        if (
            run.tracker.budget.on_exhausted == "finalize"
            and setup.final_model is None
            and not setup.composed
        ):
            raise InvalidBudget(
                "on_exhausted='finalize' needs a final model: pass with_budget(..., final_model=)"
            )
        # Without a checkpointer nothing of the state outlives the run: the spend then
        # lives in the tracker alone, and no step pays for writing it to state.
        run.persist = self.checkpointer not in (None, True, False) or (
            self.checkpointer is not False and CONFIG_KEY_CHECKPOINTER in configurable
        )
        if parent is not None and setup.budget is None:
            # A child spending its parent's own limits: when it has to stop, so does the
            # parent (a supervisor would only hand the same spent budget to the next worker).
            run.parent = parent
        configurable[RUN_KEY] = run
        handler = BudgetCallbackHandler(
            run, token_counter=setup.token_counter, tools=ToolChargeHandler(run)
        )
        callbacks = with_handler(callbacks, handler)
        return RunnableConfig(**{**conf, "configurable": configurable, "callbacks": callbacks})

    def _saved_spend(self, config: RunnableConfig | None) -> BudgetSnapshot | None:
        return drive(saved_spend_steps(self.checkpointer, config), checkpoint_io)

    async def _asaved_spend(self, config: RunnableConfig | None) -> BudgetSnapshot | None:
        return await adrive(saved_spend_steps(self.checkpointer, config), acheckpoint_io)


def thread_snapshot(checkpointer: Any, thread_id: str) -> BudgetSnapshot | None:
    """The budget snapshot a checkpointed thread holds (spend, top-ups, sub-budget tree,
    events), read straight from any LangGraph checkpointer; None if it has none."""
    saved = checkpointer.get_tuple(RunnableConfig(configurable={"thread_id": thread_id}))
    return newest_spend(saved)


def _resuming(input: Any) -> bool:
    return input is None or isinstance(input, Command)
