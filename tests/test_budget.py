"""Budget: loaders, value parsing, and errors that name the field."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import pytest

from agent_budget.budget import Budget, ModelPrice, TokenLimits
from agent_budget.errors import AgentBudgetError, InvalidBudget

FULL = {
    "usd": 0.5,
    "tokens": {"input": 200000, "output": 20000},
    "tool_calls": {"web_search": 10, "fetch_page": 5},
    "prices": {"web_search": 0.001, "fetch_page": 0.001},
    "on_exhausted": "raise",
}


def check_full(b: Budget) -> None:
    assert b.usd == Decimal("0.5")
    assert b.tokens == TokenLimits(input=200_000, output=20_000)
    assert b.tool_calls == {"web_search": 10, "fetch_page": 5}
    assert b.prices == {"web_search": Decimal("0.001"), "fetch_page": Decimal("0.001")}
    assert b.on_exhausted == "raise"


def invalid(fn, *args, **kwargs) -> str:
    with pytest.raises(InvalidBudget) as info:
        fn(*args, **kwargs)
    return str(info.value)


# --- defaults and plain construction ---------------------------------------------------


def test_defaults_are_unlimited():
    b = Budget()
    assert b.usd is None
    assert b.tokens == TokenLimits()
    assert b.tool_calls == {} and b.total_tool_calls is None
    assert b.model_calls is None and b.seconds is None
    assert b.on_exhausted == "finalize" and b.scope == "thread"
    assert b.default_tool_price == 0 and b.reserve_usd == 0
    assert b.default_max_output_tokens == 1024


def test_budget_is_frozen():
    b = Budget(usd=1)
    with pytest.raises(Exception):  # noqa: B017 (pydantic's ValidationError for frozen models)
        b.usd = Decimal(2)  # type: ignore[misc]


def test_invalid_budget_is_a_value_error_and_an_agent_budget_error():
    assert issubclass(InvalidBudget, ValueError)
    assert issubclass(InvalidBudget, AgentBudgetError)


# --- loaders ---------------------------------------------------------------------------


def test_from_dict():
    check_full(Budget.from_dict(FULL))


def test_from_dict_budget_wrapper():
    check_full(Budget.from_dict({"budget": FULL}))


def test_from_dict_rejects_non_mapping():
    msg = invalid(Budget.from_dict, [1, 2])  # type: ignore[arg-type]
    assert "expected a mapping" in msg


def test_from_yaml(tmp_path: Path):
    p = tmp_path / "budget.yaml"
    p.write_text(
        "# budget.yaml\n"
        "usd: 0.50\n"
        "tokens: {input: 200000, output: 20000}\n"
        "tool_calls: {web_search: 10, fetch_page: 5}\n"
        "prices: {web_search: 0.001, fetch_page: 0.001}\n"
        "on_exhausted: raise\n"
    )
    check_full(Budget.from_file(p))
    # .yml works too, as does a budget: section
    q = tmp_path / "b.yml"
    q.write_text("budget:\n  usd: '$0.50'\n  model_calls: 3\n")
    b = Budget.from_file(q)
    assert b.usd == Decimal("0.50") and b.model_calls == 3


def test_empty_yaml_is_an_unlimited_budget(tmp_path: Path):
    p = tmp_path / "empty.yaml"
    p.write_text("# nothing\n")
    assert Budget.from_file(p) == Budget()


def test_from_toml(tmp_path: Path):
    p = tmp_path / "budget.toml"
    p.write_text(
        'usd = 0.5\non_exhausted = "raise"\n'
        "[tokens]\ninput = 200000\noutput = 20000\n"
        "[tool_calls]\nweb_search = 10\nfetch_page = 5\n"
        "[prices]\nweb_search = 0.001\nfetch_page = 0.001\n"
    )
    check_full(Budget.from_file(p))


def test_from_toml_budget_table(tmp_path: Path):
    p = tmp_path / "pyproject-like.toml"
    p.write_text(
        '[budget]\nusd = "0.50"\non_exhausted = "raise"\n'
        '[budget.tokens]\ninput = "200k"\noutput = 20_000\n'
        "[budget.tool_calls]\nweb_search = 10\nfetch_page = 5\n"
        "[budget.prices]\nweb_search = 0.001\nfetch_page = 0.001\n"
    )
    check_full(Budget.from_file(p))


def test_from_json(tmp_path: Path):
    p = tmp_path / "budget.json"
    p.write_text(json.dumps(FULL))
    check_full(Budget.from_file(p))


def test_load_accepts_budget_dict_and_path(tmp_path: Path):
    b = Budget(usd=1)
    assert Budget.load(b) is b
    assert Budget.load({"usd": 1}) == b
    p = tmp_path / "b.json"
    p.write_text('{"usd": 1}')
    assert Budget.load(p) == b
    assert Budget.load(str(p)) == b
    assert "expected a Budget" in invalid(Budget.load, 42)  # type: ignore[arg-type]


def test_from_config():
    cfg = {"configurable": {"thread_id": "t", "budget": {"usd": 0.25, "model_calls": 4}}}
    b = Budget.from_config(cfg)
    assert b is not None and b.usd == Decimal("0.25") and b.model_calls == 4
    assert Budget.from_config({"configurable": {"budget": Budget(usd=1)}}) == Budget(usd=1)
    assert Budget.from_config({"configurable": {"thread_id": "t"}}) is None
    assert Budget.from_config({}) is None
    assert Budget.from_config(None) is None
    msg = invalid(Budget.from_config, {"configurable": {"budget": {"usd": -1}}})
    assert "usd" in msg


def test_from_env():
    env = {
        "AGENT_BUDGET_USD": "0.50",
        "AGENT_BUDGET_TOKENS__OUTPUT": "20k",
        "AGENT_BUDGET_TOOL_CALLS__WEB_SEARCH": "10",
        "AGENT_BUDGET_PRICES": '{"web_search": 0.001}',
        "AGENT_BUDGET_ON_EXHAUSTED": "raise",
        "AGENT_BUDGET_SECONDS": "5m",
        "AGENT_BUDGET_LEDGER": "/tmp/ignored-by-the-budget.db",
        "AGENT_BUDGET_CACHE_DIR": "/tmp/the-search-index-cache",  # other settings, not limits
        "AGENT_BUDGET_ALLOW_PRIVATE_URLS": "1",
        "PATH": "/usr/bin",
        "OTHER_USD": "x",
    }
    b = Budget.from_env(env)
    assert b.usd == Decimal("0.50")
    assert b.tokens.output == 20_000
    assert b.tool_calls == {"web_search": 10}
    assert b.prices == {"web_search": Decimal("0.001")}
    assert b.on_exhausted == "raise"
    assert b.seconds == 300.0


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch):
    for key in [k for k in __import__("os").environ if k.startswith("AGENT_BUDGET_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AGENT_BUDGET_MODEL_CALLS", "7")
    assert Budget.from_env().model_calls == 7


def test_from_env_file_with_overrides(tmp_path: Path):
    p = tmp_path / "budget.yaml"
    p.write_text(
        "usd: 0.5\ntool_calls: {web_search: 10, fetch_page: 5}\n"
        "prices: {web_search: 0.001}\ntokens: {input: 1000}\n"
    )
    env = {
        "AGENT_BUDGET_FILE": str(p),
        "AGENT_BUDGET_USD": "2",
        "AGENT_BUDGET_TOOL_CALLS__WEB_SEARCH": "3",
        "AGENT_BUDGET_TOKENS__OUTPUT": "500",
    }
    b = Budget.from_env(env)
    assert b.usd == Decimal(2)
    assert b.tool_calls == {"web_search": 3, "fetch_page": 5}
    assert b.tokens == TokenLimits(input=1000, output=500)
    assert b.prices == {"web_search": Decimal("0.001")}


def test_from_env_unknown_variable_suggests():
    msg = invalid(Budget.from_env, {"AGENT_BUDGET_USDD": "1"})
    assert "AGENT_BUDGET_USDD" in msg and "AGENT_BUDGET_USD" in msg
    assert "did you mean" in msg
    msg = invalid(Budget.from_env, {"AGENT_BUDGET_TOOL_CALL__X": "1"})
    assert "AGENT_BUDGET_TOOL_CALLS" in msg


def test_from_env_bad_value_names_the_variable_field():
    msg = invalid(Budget.from_env, {"AGENT_BUDGET_TOKENS__OUTPUT": "5 usd"})
    assert "environment.tokens.output" in msg


def test_from_env_missing_file():
    msg = invalid(Budget.from_env, {"AGENT_BUDGET_FILE": "/nonexistent/budget.yaml"})
    assert "no such budget file" in msg


# --- parsing of amounts, counts and durations ------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (0.5, "0.5"),
        ("0.50", "0.50"),
        ("$0.50", "0.50"),
        ("0.50 USD", "0.50"),
        ("0.5usd", "0.5"),
        (" $ 1_000 ", "1000"),
        (3, "3"),
        (Decimal("0.123456789"), "0.123456789"),
        ("1e-3", "0.001"),
    ],
)
def test_money_parsing(given, expected):
    assert Budget(usd=given).usd == Decimal(expected)


@pytest.mark.parametrize(
    ("given", "expected"),
    [(200000, 200000), ("200_000", 200000), ("200k", 200000), ("1.5M", 1_500_000), (5.0, 5)],
)
def test_count_parsing(given, expected):
    assert Budget(tokens={"output": given}).tokens.output == expected
    assert Budget(model_calls=given).model_calls == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [(90, 90.0), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0), ("500ms", 0.5), ("2 min", 120.0)],
)
def test_seconds_parsing(given, expected):
    assert Budget(seconds=given).seconds == expected


def test_float_amounts_are_exact_decimals():
    b = Budget(usd=0.1, prices={"a": 0.1, "b": 0.2})
    assert b.prices["a"] + b.prices["b"] == Decimal("0.3")
    assert b.usd == Decimal("0.1")
    assert isinstance(b.usd, Decimal)
    p = ModelPrice(input=0.15, output=0.6)
    assert p.input_per_token == Decimal("0.00000015")
    assert p.output_per_token * 1_000_000 == Decimal("0.6")


# --- bad values: InvalidBudget naming the field ----------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"usd": -1}, "budget.usd", ">= 0"),
        ({"usd": float("nan")}, "budget.usd", "finite"),
        ({"usd": float("inf")}, "budget.usd", "finite"),
        ({"usd": "nan"}, "budget.usd", "not an amount"),
        ({"usd": "inf"}, "budget.usd", "not an amount"),
        ({"usd": Decimal("NaN")}, "budget.usd", "finite"),
        ({"usd": "5 EUR"}, "budget.usd", "not an amount in USD"),
        ({"usd": "50 cents"}, "budget.usd", "cents"),
        ({"usd": True}, "budget.usd", "boolean"),
        ({"usd": "_"}, "budget.usd", "not a number"),
        ({"prices": {"web_search": -0.001}}, "budget.prices.web_search", ">= 0"),
        ({"tokens": {"output": "5 usd"}}, "budget.tokens.output", "not a count"),
        ({"tokens": {"input": -5}}, "budget.tokens.input", ">= 0"),
        ({"tokens": {"total": 1.5}}, "budget.tokens.total", "whole number"),
        ({"tokens": {"total": "1.5"}}, "budget.tokens.total", "whole number"),
        ({"tokens": {"total": float("nan")}}, "budget.tokens.total", "whole number"),
        ({"model_calls": "_"}, "budget.model_calls", "not a number"),
        ({"tool_calls": {"web_search": -1}}, "budget.tool_calls.web_search", ">= 0"),
        ({"seconds": -1}, "budget.seconds", ">= 0"),
        ({"seconds": float("inf")}, "budget.seconds", "finite"),
        ({"seconds": "5 parsecs"}, "budget.seconds", "not a duration"),
        ({"on_exhausted": "explode"}, "budget.on_exhausted", "finalize"),
        (
            {"model_prices": {"m": {"input": -1, "output": 1}}},
            "budget.model_prices.m.input",
            ">= 0",
        ),
    ],
)
def test_bad_values_name_the_field(data, field, words):
    msg = invalid(Budget.from_dict, data)
    assert field in msg, msg
    assert words in msg, msg


def test_money_error_says_what_to_write():
    msg = invalid(Budget.from_dict, {"usd": "5 EUR"})
    assert "'$0.50'" in msg and "5 EUR" in msg
    assert msg.count("5 EUR") == 1  # the value is not repeated as "(got '5 EUR')"


def test_typo_in_tool_limit_close_to_a_priced_tool():
    msg = invalid(
        Budget.from_dict, {"tool_calls": {"web_serch": 3}, "prices": {"web_search": 0.001}}
    )
    assert "tool_calls.web_serch" in msg and "did you mean 'web_search'" in msg


def test_typo_in_tool_limit_close_to_a_labelled_tool():
    msg = invalid(
        Budget.from_dict, {"tool_calls": {"fetch_pgae": 3}, "tool_labels": {"fetch_page": "URL"}}
    )
    assert "did you mean 'fetch_page'" in msg


def test_unrelated_unpriced_tool_limit_is_fine():
    b = Budget.from_dict({"tool_calls": {"calculator": 3}, "prices": {"web_search": 0.001}})
    assert b.tool_calls == {"calculator": 3}


def test_unknown_top_level_key_suggests():
    msg = invalid(Budget.from_dict, {"tool_call": {"web_search": 1}})
    assert "budget.tool_call" in msg and "unknown setting" in msg
    assert "did you mean 'tool_calls'" in msg


def test_unknown_nested_key_suggests():
    msg = invalid(Budget.from_dict, {"tokens": {"outptu": 5}})
    assert "budget.tokens.outptu" in msg and "did you mean 'output'" in msg


def test_unknown_key_without_close_match():
    msg = invalid(Budget.from_dict, {"zzzz": 1})
    assert "budget.zzzz: unknown setting" in msg and "did you mean" not in msg


def test_several_errors_are_all_reported():
    msg = invalid(Budget.from_dict, {"usd": -1, "model_calls": "x"})
    assert "budget.usd" in msg and "budget.model_calls" in msg


def test_reserve_larger_than_usd():
    msg = invalid(Budget.from_dict, {"usd": 0.1, "reserve_usd": 0.2})
    assert "reserve_usd" in msg and "larger than usd" in msg
    assert Budget(usd=0.1, reserve_usd=0.1).reserve_usd == Decimal("0.1")
    assert Budget(reserve_usd=0.1).usd is None  # no USD limit: nothing to hold back from


@pytest.mark.parametrize("template", ["{nope}", "{0}", "{items.nope}", "{items[0]}", "{"])
def test_bad_message_template(template):
    msg = invalid(Budget.from_dict, {"message_template": template})
    assert "message_template" in msg and "{items}" in msg


def test_good_message_template():
    t = "[{regime}] {items} ({usd_used} of {usd_remaining})"
    assert Budget(message_template=t).message_template == t


# --- files -----------------------------------------------------------------------------


def test_unparseable_yaml(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("usd: [1, 2\ntools: {")
    msg = invalid(Budget.from_file, p)
    assert str(p) in msg and "cannot parse YAML" in msg


def test_unparseable_toml_and_json(tmp_path: Path):
    t = tmp_path / "bad.toml"
    t.write_text("usd = = 1")
    assert "cannot parse TOML" in invalid(Budget.from_file, t)
    j = tmp_path / "bad.json"
    j.write_text("{usd: 1")
    assert "cannot parse JSON" in invalid(Budget.from_file, j)


def test_yaml_that_is_not_a_mapping(tmp_path: Path):
    p = tmp_path / "list.yaml"
    p.write_text("- usd: 1\n")
    assert "expected a mapping" in invalid(Budget.from_file, p)


def test_missing_file(tmp_path: Path):
    msg = invalid(Budget.from_file, tmp_path / "nope.yaml")
    assert "nope.yaml" in msg and "no such budget file" in msg
    assert "no such budget file" in invalid(Budget.from_file, tmp_path)  # a directory


def test_wrong_extension(tmp_path: Path):
    p = tmp_path / "budget.ini"
    p.write_text("usd=1")
    msg = invalid(Budget.from_file, p)
    assert "'.ini'" in msg and ".yaml, .toml or .json" in msg


def test_binary_file_is_invalid_not_a_crash(tmp_path: Path):
    p = tmp_path / "budget.yaml"
    p.write_bytes(b"\xff\xfe\x00\x01")
    assert "cannot read" in invalid(Budget.from_file, p)


def test_bad_value_in_file_names_file_and_field(tmp_path: Path):
    p = tmp_path / "budget.yaml"
    p.write_text("usd: 5 EUR\n")
    msg = invalid(Budget.from_file, p)
    assert f"{p}.usd" in msg


# --- top-ups ---------------------------------------------------------------------------


def test_topped_up_adds_to_set_limits():
    b = Budget(
        usd="0.1",
        tokens={"output": 100},
        tool_calls={"web_search": 2},
        total_tool_calls=3,
        model_calls=4,
        seconds=60,
        prices={"web_search": 0.001},
    )
    t = b.topped_up(
        usd="0.2",
        tokens={"output": 50},
        tool_calls={"web_search": 5},
        total_tool_calls=1,
        model_calls=2,
        seconds="1m",
    )
    assert t.usd == Decimal("0.3")  # exact, not 0.30000000000000004
    assert t.tokens.output == 150
    assert t.tool_calls == {"web_search": 7}
    assert t.total_tool_calls == 4 and t.model_calls == 6 and t.seconds == 120
    assert t.prices == b.prices
    assert b.usd == Decimal("0.1")  # the original is unchanged


def test_topped_up_keeps_unlimited_unlimited():
    b = Budget(usd=1, tool_calls={"web_search": 2})
    t = b.topped_up(model_calls=5, tokens={"input": 10}, tool_calls={"other": 3})
    assert t.model_calls is None and t.tokens.input is None
    assert t.tool_calls == {"web_search": 2}
    assert t.usd == Decimal(1)


def test_topped_up_leaves_unmentioned_limits_alone():
    b = Budget(usd=1, model_calls=3)
    assert b.topped_up(usd=0.5) == Budget(usd=1.5, model_calls=3)
    assert b.topped_up() == b


def test_topped_up_rejects_bad_values():
    b = Budget(usd=1)
    assert "top-up.usd" in invalid(b.topped_up, usd=-1)
    assert "top-up.usdd" in invalid(b.topped_up, usdd=1)


def test_topped_up_decimals_stay_exact():
    b = Budget(usd=0)
    for _ in range(10):
        b = b.topped_up(usd=0.1)
    assert b.usd == Decimal("1.0")
    assert math.isclose(float(b.usd), 1.0)
