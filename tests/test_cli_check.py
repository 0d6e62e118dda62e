"""`agent-budget check budget.yaml`: a table for a good file, exit 2 and the field for a bad one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_budget.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def check(path: Path):
    return runner.invoke(app, ["check", str(path)], env=ENV)


def flat(text: str) -> str:
    """Output with rich's wrapping undone (error lines wrap at the terminal width)."""
    return re.sub(r"\s+", " ", text)


GOOD_YAML = """\
usd: 0.50
tokens: {input: 200k, output: 20000}
tool_calls: {web_search: 10, fetch_page: 5}
prices: {web_search: 0.001, fetch_page: 0.001}
model_prices: {my-local: {input: 0, output: 0}}
reserve_usd: 0.05
seconds: 5m
on_exhausted: raise
"""


def test_good_yaml_prints_a_table(tmp_path: Path):
    p = tmp_path / "budget.yaml"
    p.write_text(GOOD_YAML)
    result = check(p)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert tmp_path.name in out  # the title (rich wraps it to the width of the table)
    for row in [
        ("usd", "0.5", "USD"),
        ("tokens.input", "200,000", "tokens"),
        ("tokens.output", "20,000", "tokens"),
        ("tool_calls.web_search", "10", "calls"),
        ("tool_calls.fetch_page", "5", "calls"),
        ("seconds", "300", "s wall clock"),
        ("prices.web_search", "0.001", "USD per call"),
        ("model_prices.my-local", "0 / 0", "USD per 1M tokens in / out"),
        ("reserve_usd", "0.05", "USD held for the final answer"),
        ("on_exhausted", "raise", ""),
        ("scope", "thread", ""),
    ]:
        line = next((ln for ln in out.splitlines() if f" {row[0]} " in ln), None)
        assert line is not None, f"no row for {row[0]}:\n{out}"
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        assert cells == [c for c in row if c], line


def test_toml_with_budget_table_and_json(tmp_path: Path):
    t = tmp_path / "budget.toml"
    t.write_text('[budget]\nusd = "$1.25"\nmodel_calls = 7\n')
    result = check(t)
    assert result.exit_code == 0, result.output
    assert "1.25" in result.stdout and "model_calls" in result.stdout
    j = tmp_path / "budget.json"
    j.write_text(json.dumps({"total_tool_calls": 4}))
    result = check(j)
    assert result.exit_code == 0 and "total_tool_calls" in result.stdout


def test_empty_budget_says_it_has_no_limits(tmp_path: Path):
    p = tmp_path / "empty.yaml"
    p.write_text("{}\n")
    result = check(p)
    assert result.exit_code == 0
    assert "(no limits)" in result.stdout and "only records spend" in result.stdout


def test_user_text_is_not_rich_markup(tmp_path: Path):
    p = tmp_path / "[red]budget.yaml"
    p.write_text('tool_calls: {"[b]search": 2}\n')
    result = check(p)
    assert result.exit_code == 0, result.output
    assert "[red]budget.yaml" in result.stdout
    assert "tool_calls.[b]search" in result.stdout


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("neg.yaml", "usd: -1\n", ["usd", ">= 0"]),
        ("eur.yaml", "usd: 5 EUR\n", ["usd", "not an amount in USD"]),
        ("cents.yaml", "usd: 50 cents\n", ["usd", "cents"]),
        ("tok.yaml", "tokens: {output: 5 usd}\n", ["tokens.output", "not a count"]),
        (
            "typo.yaml",
            "tool_calls: {web_serch: 3}\nprices: {web_search: 0.001}\n",
            ["tool_calls.web_serch", "did you mean 'web_search'"],
        ),
        ("key.yaml", "tool_call: {web_search: 1}\n", ["tool_call", "did you mean 'tool_calls'"]),
        ("reserve.yaml", "usd: 0.1\nreserve_usd: 0.2\n", ["reserve_usd", "larger than usd"]),
        ("tmpl.yaml", "message_template: '{nope}'\n", ["message_template"]),
        ("syntax.yaml", "usd: [1, 2\n", ["cannot parse YAML"]),
        ("list.yaml", "- 1\n", ["expected a mapping"]),
        ("bad.toml", "usd = = 1\n", ["cannot parse TOML"]),
        ("bad.json", "{usd: 1", ["cannot parse JSON"]),
        ("budget.ini", "usd=1\n", ["unknown budget file type", ".yaml, .toml or .json"]),
    ],
)
def test_bad_file_exits_2_with_a_clear_message(tmp_path: Path, name, text, words):
    p = tmp_path / name
    p.write_text(text)
    result = check(p)
    assert result.exit_code == 2, result.output
    err = flat(result.stderr)
    assert str(p) in err.replace(" ", "") or name in err
    for w in words:
        assert w in err, err
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_missing_file_exits_2(tmp_path: Path):
    result = check(tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "no such budget file" in flat(result.stderr)


def test_binary_file_exits_2(tmp_path: Path):
    p = tmp_path / "budget.yaml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    result = check(p)
    assert result.exit_code == 2 and "cannot read" in flat(result.stderr)


def test_error_text_is_not_rich_markup(tmp_path: Path):
    p = tmp_path / "budget.yaml"
    p.write_text('usd: 1\n"[/red]oops": 2\n')
    result = check(p)
    assert result.exit_code == 2
    assert "[/red]oops" in result.stderr


def test_check_needs_a_path():
    result = runner.invoke(app, ["check"], env=ENV)
    assert result.exit_code == 2
