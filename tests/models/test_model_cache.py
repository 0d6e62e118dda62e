"""The SQLite response cache: a repeated call costs $0 and is recorded as a hit."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from agent_budget.budget import Budget
from agent_budget.integrations.callbacks import BudgetCallbackHandler
from agent_budget.models import RemoteChatModel, ResponseCache
from agent_budget.tracker import BudgetTracker


def _model(cache: ResponseCache, reply: str = "Paris.") -> RemoteChatModel:
    return RemoteChatModel(
        model="openai/gpt-4.1-mini",
        max_tokens=20,
        model_kwargs={"mock_response": reply},
        cache=cache,
    )


def test_repeated_call_is_free_and_recorded(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.db")
    tracker = BudgetTracker(Budget(usd=1))
    cb = {"callbacks": [BudgetCallbackHandler(tracker)]}
    model = _model(cache)
    first = model.invoke("Capital of France?", cb)
    spent = tracker.spent.usd
    assert spent > 0 and not first.response_metadata.get("cache_hit")
    second = model.invoke("Capital of France?", cb)
    assert second.content == first.content
    assert second.response_metadata["cache_hit"] is True
    assert second.response_metadata["cached_usage"] == first.usage_metadata
    assert second.usage_metadata["input_tokens"] == 0  # type: ignore[index]
    assert tracker.spent.usd == spent and tracker.spent.model_calls == 2
    stats = cache.stats()
    assert stats["entries"] == 1 and stats["hits"] == 1
    assert stats["models"][0]["model"] == "openai/gpt-4.1-mini"


def test_key_covers_messages_and_params(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.db")
    _model(cache).invoke("Capital of France?")
    other_params = RemoteChatModel(
        model="openai/gpt-4.1-mini", max_tokens=21, model_kwargs={"mock_response": "x"}, cache=cache
    )
    assert other_params.invoke("Capital of France?").content == "x"  # miss: max_tokens differs
    assert _model(cache, "y").invoke("Capital of Spain?").content == "y"  # miss: messages differ
    assert cache.stats()["hits"] == 0


def test_cache_persists_across_processes_and_clears(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    _model(ResponseCache(path)).invoke("Hi")
    again = ResponseCache(path)
    hit = _model(again, "different").invoke("Hi")
    assert hit.content == "Paris." and hit.response_metadata["cache_hit"]
    again.clear()
    assert again.stats() == {"entries": 0, "hits": 0, "models": []}
    assert Decimal(0) == Decimal(again.stats()["hits"])
