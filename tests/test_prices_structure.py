"""Prices with structure in the budget file (tiers, cache reads and writes), pinned price
maps, and the `agent-budget prices show | check` commands."""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm
from fakes import Counter, ToolCallingFake, make_search
from langgraph.prebuilt import create_react_agent
from test_prices_billing import STUB, litellm_bills, metadata, run_once
from typer.testing import CliRunner

from agent_budget import Budget, BudgetTracker, with_budget
from agent_budget.cli import app
from agent_budget.errors import InvalidBudget, UnknownPrice
from agent_budget.prices.litellm_map import to_decimal
from agent_budget.prices.schema import ModelPrice
from agent_budget.pricing import PriceBook, TokenUsage, register_model_price

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}

GEMINI_PRO = {  # gemini/gemini-2.5-pro in LiteLLM's map, USD per million tokens
    "input": 1.25,
    "output": 10,
    "cached_input": 0.125,
    "tiers": [{"above": "200k", "input": 2.5, "output": 15, "cached_input": 0.25}],
}
SONNET = {"input": 3, "output": 15, "cached_input": 0.3, "cache_write": 3.75, "cache_write_1h": 6}


def flat(text: str) -> str:
    """Output with rich's table borders and wrapping undone."""
    return re.sub(r"\s+", " ", re.sub(r"[│┃]", " ", text))


def usage_of(meta: dict[str, Any]) -> TokenUsage:
    return TokenUsage.from_usage_metadata(meta)


# --- the same structure in the budget file --------------------------------------------


@pytest.mark.parametrize(
    ("mine", "price", "theirs", "usage"),
    [
        ("my-gemini", GEMINI_PRO, "gemini/gemini-2.5-pro", metadata(300_000, 2_000)),
        ("my-gemini", GEMINI_PRO, "gemini/gemini-2.5-pro", metadata(100_000, 2_000)),
        (
            "my-gemini",
            GEMINI_PRO,
            "gemini/gemini-2.5-pro",
            metadata(260_000, 1_000, cache_read=60_000),
        ),
        ("my-sonnet", SONNET, "claude-sonnet-4-5", metadata(12_000, 800, cache_write=10_000)),
        (
            "my-sonnet",
            SONNET,
            "claude-sonnet-4-5",
            metadata(30_000, 1_000, cache_read=10_000, cache_write=15_000, cache_write_1h=5_000),
        ),
    ],
)
def test_a_budget_price_with_structure_costs_what_litellm_bills_for_the_same_numbers(
    mine: str, price: dict[str, Any], theirs: str, usage: dict[str, Any]
) -> None:
    book = PriceBook(Budget(model_prices={mine: price}))
    charged = book.model_cost(mine, usage_of(usage))
    assert book.model_price(mine).price_source == "budget"
    assert charged == litellm_bills(theirs, usage).normalize() or abs(
        charged - litellm_bills(theirs, usage)
    ) <= charged * Decimal("1e-12")


def test_budget_prices_keep_priority_over_litellm_and_are_reserved_at_their_tier() -> None:
    b = Budget(usd="0.5", model_prices={"gemini/gemini-2.5-pro": GEMINI_PRO})
    tracker = BudgetTracker(b)
    held = tracker.model_worst_case("gemini/gemini-2.5-pro", 300_000, 2_000)
    assert held.usd == Decimal("0.78") and held.price_source == "budget"
    assert not tracker.fits(held)
    assert tracker.fits(tracker.model_worst_case("gemini/gemini-2.5-pro", 150_000, 2_000))


def test_a_registered_price_can_have_tiers_too() -> None:
    name = f"tiered-{uuid.uuid4().hex[:6]}"
    register_model_price(name, input=1, output=2, tiers=[{"above": 1000, "input": 10}])
    book = PriceBook(Budget())
    assert book.model_cost(name, 1000, 0) == Decimal("0.001")
    assert book.model_cost(name, 1001, 1) == Decimal("0.01001") + Decimal("0.000002")
    assert book.model_price(name).price_source == "registered"


def test_missing_prices_fall_back_as_documented() -> None:
    p = ModelPrice(input=2, output=8)  # no cache or reasoning prices: billed as input/output
    assert p.cost(TokenUsage(1000, 100, cache_read=400, cache_write=100, reasoning=50)) == (
        Decimal("0.002") + Decimal("0.0008")
    )
    p = ModelPrice(input=2, output=8, cache_write=2.5, tiers=[{"above": 10, "input": 4}])
    assert p.rate("cache_write_1h", 5) == Decimal("0.0000025")  # as cache_write
    assert p.rate("output", 11) == Decimal("0.000008")  # a tier's missing price: the base one
    assert p.rate("input", 11) == Decimal("0.000004")


@pytest.mark.parametrize(
    ("price", "where", "says"),
    [
        (
            {
                "input": 1,
                "output": 1,
                "tiers": [{"above": 5, "input": 2}, {"above": 5, "input": 3}],
            },
            "model_prices.m",
            "strictly ascending",
        ),
        ({"input": 1, "output": 1, "tiers": [{"above": 5}]}, "model_prices.m.tiers.0", "no price"),
        ({"input": 1, "output": 1, "cach_write": 1}, "model_prices.m.cach_write", "cache_write"),
        (
            {"input": 1, "output": 1, "tiers": [{"above": 5, "inptu": 2}]},
            "model_prices.m.tiers.0.inptu",
            "'input'",
        ),
        ({"input": 1, "output": "1 EUR"}, "model_prices.m.output", "USD"),
        (
            {"input": 1, "output": 1, "tiers": [{"above": "lots", "input": 2}]},
            "tiers.0.above",
            "count",
        ),
    ],
)
def test_bad_structured_prices_are_invalid_budgets_naming_the_field(
    price: dict[str, Any], where: str, says: str
) -> None:
    with pytest.raises(InvalidBudget) as exc:
        Budget.from_dict({"model_prices": {"m": price}})
    assert where in str(exc.value) and says in str(exc.value)


# --- pinned price maps ----------------------------------------------------------------


def write_map(path: Path, **overrides: dict[str, Any]) -> Path:
    entries = {
        name: dict(litellm.model_cost[name])
        for name in ("gpt-4o-mini", "gemini/gemini-2.5-pro", "claude-sonnet-4-5")
    }
    for name, entry in overrides.items():
        entries[name.replace("__", "/")] = {**entries.get(name.replace("__", "/"), {}), **entry}
    path.write_text(json.dumps(entries))
    return path


def test_a_pinned_price_map_prices_the_run_and_each_charge_records_it(tmp_path: Path) -> None:
    pinned = write_map(
        tmp_path / "prices-2025-01.json",
        **{"gpt-4o-mini": {"input_cost_per_token": 3e-07, "output_cost_per_token": 1.2e-06}},
    )
    sha = hashlib.sha256(pinned.read_bytes()).hexdigest()[:12]
    tracker, seen, _, _ = run_once(
        "gpt-4o-mini", metadata(20_000, 1_000), Budget(usd=1, price_map=str(pinned))
    )
    assert tracker.spent.usd == Decimal("0.0072")  # the pinned price: twice the bundled one
    (charge,) = [c for c, _ in seen if c.kind == "model"]
    assert charge.price_source == f"pricemap:prices-2025-01.json@{sha}"
    # tiers and cache writes work the same from a pinned map (LiteLLM's cost function)
    book = PriceBook(Budget(price_map=str(pinned)))
    for model, usage in (
        ("gemini/gemini-2.5-pro", metadata(300_000, 2_000)),
        ("claude-sonnet-4-5", metadata(12_000, 800, cache_write=10_000)),
    ):
        assert book.model_cost(model, usage_of(usage)) == to_decimal(
            float(litellm_bills(model, usage))
        )


def test_a_model_missing_from_the_pinned_map_is_unknown(tmp_path: Path) -> None:
    pinned = write_map(tmp_path / "p.json")
    with pytest.raises(UnknownPrice) as exc:
        PriceBook(Budget(price_map=str(pinned))).model_price("gpt-4.1")
    assert "pinned price map" in str(exc.value) and str(pinned.name) in str(exc.value)


def test_a_zero_entry_in_a_pinned_map_is_unknown_too(tmp_path: Path) -> None:
    pinned = write_map(
        tmp_path / "p.json",
        **{"gpt-4o-mini": {"input_cost_per_token": 0, "output_cost_per_token": 0}},
    )
    with pytest.raises(UnknownPrice, match="pinned price map"):
        PriceBook(Budget(price_map=str(pinned))).model_price("gpt-4o-mini")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such price map file"),
        ("{not json", "not a JSON price map"),
        ("[1, 2]", "JSON object of model name"),
        ('{"m": {"input_cost_per_token": "cheap"}}', "m.input_cost_per_token: expected a number"),
        ('{"m": {"input_cost_per_token": -1}}', "must be >= 0"),
    ],
)
def test_a_bad_price_map_is_an_invalid_budget(
    tmp_path: Path, content: str | None, says: str
) -> None:
    path = tmp_path / "map.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InvalidBudget) as exc:
        Budget.from_dict({"price_map": str(path)})
    assert "price_map" in str(exc.value) and says in str(exc.value)


def test_a_relative_price_map_is_relative_to_the_budget_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    write_map(tmp_path / "conf" / "pinned.json")
    budget_file = tmp_path / "conf" / "budget.yaml"
    budget_file.write_text("usd: 1\nprice_map: pinned.json\n")
    budget = Budget.from_file(budget_file)
    assert budget.price_map == str(tmp_path / "conf" / "pinned.json")
    assert PriceBook(budget).model_price("gpt-4o-mini").price_source.startswith("pricemap:pinned")


def test_a_child_budget_prices_by_its_parents_pinned_map(tmp_path: Path) -> None:
    pinned = write_map(tmp_path / "p.json")
    child = Budget(usd=1, price_map=str(pinned), free_models=["x"]).child("sub", usd="0.5")
    assert child.price_map == str(pinned) and child.free_models == ["x"]


# --- usage details ----------------------------------------------------------------------


def test_usage_metadata_details_are_read_and_bad_ones_ignored() -> None:
    u = TokenUsage.from_usage_metadata(
        {
            "input_tokens": 100,
            "output_tokens": 50,
            "input_token_details": {"cache_read": 10, "cache_creation": 20, "audio": None},
            "output_token_details": {"reasoning": 30, "audio": -4},
        }
    )
    assert u == TokenUsage(100, 50, cache_read=10, cache_write=20, reasoning=30)
    assert u.details == {"cache_read": 10, "cache_write": 20, "reasoning": 30}
    with pytest.raises(ValueError, match=r"TokenUsage\.input_tokens"):
        TokenUsage(-1, 0)


def test_litellm_floats_become_the_decimals_they_stand_for() -> None:
    assert to_decimal(0.028750000000000005) == Decimal("0.02875")
    assert to_decimal(0.055499999999999994) == Decimal("0.0555")
    assert to_decimal(0.0) == 0 and to_decimal(None) == 0
    odd = 1_234_567 * 1.23456e-06
    assert abs(to_decimal(odd) - Decimal(repr(odd))) <= Decimal(repr(odd)) * Decimal("1e-12")


# --- the CLI ----------------------------------------------------------------------------


def test_prices_show_prints_tiers_cache_prices_and_their_sources() -> None:
    out = runner.invoke(app, ["prices", "show", "gemini/gemini-2.5-pro"], env=ENV)
    assert out.exit_code == 0, out.output
    text = flat(out.output)
    version = f"litellm@{__import__('importlib.metadata').metadata.version('litellm')}"
    assert version in text and "entry 'gemini/gemini-2.5-pro'" in text
    assert (
        "input (above 200k tokens) $2.5 per 1M tokens input_cost_per_token_above_200k_tokens"
        in text
    )
    assert "cache read $0.125 per 1M tokens cache_read_input_token_cost" in text
    assert "web search (low) $0.035 per query" in text
    out = runner.invoke(app, ["prices", "show", "claude-sonnet-4-5"], env=ENV)
    assert "cache write $3.75 per 1M tokens cache_creation_input_token_cost" in flat(out.output)
    assert "cache write (1h TTL) $6 per 1M tokens" in flat(out.output)


def test_prices_show_a_budget_price_with_tiers(tmp_path: Path) -> None:
    f = tmp_path / "b.yaml"
    f.write_text(
        "model_prices:\n  my-gemini: {input: 1.25, output: 10, "
        "tiers: [{above: 200k, input: 2.5, output: 15}]}\n"
    )
    out = runner.invoke(app, ["prices", "show", "my-gemini", "--budget", str(f)], env=ENV)
    assert out.exit_code == 0, out.output
    text = flat(out.output)
    assert (
        "input above 200,000 tokens $2.5 per 1M tokens model_prices['my-gemini'].tiers[0].input"
        in text
    )


def test_prices_show_a_zero_stub_says_why_it_is_refused() -> None:
    out = runner.invoke(app, ["prices", "show", STUB], env=ENV)
    assert out.exit_code == 2
    text = flat(out.output)
    assert "lists it at $0" in text and "free_models" in text and "model_prices" in text
    assert "[unpriced]" in text and "input $0 per 1M tokens input_cost_per_token" in text


def test_prices_check_lists_a_budget_files_models_without_a_real_price(tmp_path: Path) -> None:
    f = tmp_path / "b.yaml"
    f.write_text(
        f"model_prices: {{mine: {{input: 1, output: 2}}}}\nfree_models: [my-free]\n"
        f"price_aliases: {{ft: {STUB}}}\ndowngrade: {{model: gpt-4o-mini, at: LOW}}\n"
    )
    out = runner.invoke(app, ["prices", "check", "--budget", str(f), "--json"], env=ENV)
    assert out.exit_code == 1
    rows = {r["model"]: r for r in json.loads(out.output)}
    assert rows[STUB]["status"] == "zero" and rows["ft"]["status"] == "zero"
    assert rows["mine"]["status"] == "priced" and rows["my-free"]["status"] == "free"
    assert rows["gpt-4o-mini"]["status"] == "priced"
    assert rows["gpt-4o-mini"]["source"].startswith("litellm@")


def test_prices_check_reads_the_models_a_ledger_charged(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    lenient = Budget(usd=1, strict_prices=False, ledger=str(db))
    for model in (STUB, "gpt-4o-mini", "mystery-model-x"):
        fake = ToolCallingFake(model_name=model, max_tool_turns=0)
        agent = with_budget(create_react_agent(fake, [make_search(Counter())]), lenient)
        agent.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": model}})
    out = runner.invoke(app, ["prices", "check", "--ledger", str(db), "--json"], env=ENV)
    assert out.exit_code == 1, out.output
    rows = {r["model"]: r for r in json.loads(out.output)}
    assert rows[STUB]["status"] == "zero" and rows["mystery-model-x"]["status"] == "unknown"
    assert rows["gpt-4o-mini"]["status"] == "priced"
    assert "1 calls" in rows[STUB]["where"]

    ok_db = tmp_path / "ok.db"
    fake = ToolCallingFake(model_name="gpt-4o-mini", max_tool_turns=0)
    agent = with_budget(
        create_react_agent(fake, [make_search(Counter())]), Budget(ledger=str(ok_db))
    )
    agent.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "ok"}})
    out = runner.invoke(app, ["prices", "check", "--ledger", str(ok_db)], env=ENV)
    assert out.exit_code == 0 and "1 models, 0 without a real price" in flat(out.output)


def test_prices_check_needs_something_to_check() -> None:
    out = runner.invoke(app, ["prices", "check"], env=ENV)
    assert out.exit_code == 2 and "--budget" in flat(out.output)


def test_prices_pin_writes_a_map_a_budget_can_pin(tmp_path: Path) -> None:
    out = tmp_path / "pinned.json"
    res = runner.invoke(
        app, ["prices", "pin", str(out), "--model", "gemini/gemini-2.5-pro", "--model", "gpt-4o"]
    )
    assert res.exit_code == 0, res.output
    assert set(json.loads(out.read_text())) == {"gemini/gemini-2.5-pro", "gpt-4o"}
    book = PriceBook(Budget(price_map=str(out)))
    assert book.model_cost("gemini/gemini-2.5-pro", usage_of(metadata(300_000, 2_000))) == Decimal(
        "0.78"
    )
    res = runner.invoke(app, ["prices", "pin", str(tmp_path / "x.json"), "--model", STUB], env=ENV)
    assert res.exit_code == 2 and "no real price" in flat(res.output)


def test_resolving_a_zero_stub_model_says_why_before_any_call() -> None:
    from agent_budget.models import resolve

    with pytest.raises(UnknownPrice) as exc:
        resolve(f"anthropic/{STUB}")
    assert "lists it at $0" in str(exc.value) and "free_models" in str(exc.value)
    assert resolve(f"anthropic/{STUB}", budget=Budget(free_models=[f"anthropic/{STUB}"]))


def test_a_zero_stub_takes_the_fallback_price_and_free_models_follow_aliases() -> None:
    book = PriceBook(Budget(price_fallback={"input": 10, "output": 30}))
    assert book.model_price(STUB).price_source == "fallback"
    assert book.model_cost(STUB, 100_000, 10_000) == Decimal("1.3")
    book = PriceBook(Budget(price_aliases={"my-ft": STUB}, free_models=["my-ft"]))
    assert book.model_price("my-ft").price_source == "free"
    assert book.model_price("my-ft").worst_case(10**6, 10**6) == 0
