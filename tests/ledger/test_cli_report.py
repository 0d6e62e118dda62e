"""`agent-budget report` and `agent-budget ledger export|prune`."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_budget.cli import app
from agent_budget.ledger import ChargeContext, Ledger
from agent_budget.ledger.timeutil import US, now_us
from agent_budget.tracker import Charge

runner = CliRunner()
DAY = 86400 * US


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "spend.db"
    ledger = Ledger.open(path)
    now = now_us()
    for i, (user, kind, name, usd) in enumerate(
        [
            ("alice", "model", "gpt-x", "0.0123"),
            ("alice", "tool", "search", "0.01"),
            ("bob", "model", "gpt-y", "0.5"),
            ("bob", "tool", "fetch", "0.001"),
        ]
    ):
        charge = Charge(
            kind, name, Decimal(usd), 10 if kind == "model" else 0, 5 if kind == "model" else 0
        )  # type: ignore[arg-type]
        ledger.record(
            charge, ChargeContext(f"run{i % 2}", "t", user, "acme"), now=now - i * 3600 * US
        )
    ledger.record(
        Charge("tool", "search", Decimal("0.01")), ChargeContext(user_id="bob"), "refused"
    )
    ledger.record(
        Charge("tool", "search", Decimal("9")), ChargeContext(user_id="old"), now=now - 30 * DAY
    )
    ledger.close()
    return str(path)


def test_report_table(db: str) -> None:
    out = runner.invoke(app, ["report", "--ledger", db, "--by", "user"], env={"COLUMNS": "140"})
    assert out.exit_code == 0, out.output
    assert "Spend by user" in out.output and "bob" in out.output and "0.501" in out.output
    assert "old" not in out.output  # 30 days ago is outside the default --since 7d
    assert "0.5233" in out.output  # the exact total


def test_report_json_and_csv(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_BUDGET_LEDGER", db)
    out = runner.invoke(app, ["report", "--by", "model", "--format", "json", "--since", "all"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [(r["model"], r["usd"]) for r in data["rows"]] == [
        ("gpt-y", "0.50"),
        ("gpt-x", "0.0123"),
    ]
    assert data["total"]["usd"] == "0.5123" and data["by"] == "model"
    out = runner.invoke(app, ["report", "--by", "tool", "--format", "csv", "--since", "all"])
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert {r["tool"]: (r["usd"], r["refused"]) for r in rows} == {
        "search": ("9.01", "1"),
        "fetch": ("0.001", "0"),
    }


def test_report_plot(db: str, tmp_path: Path) -> None:
    png = tmp_path / "spend.png"
    out = runner.invoke(app, ["report", "--ledger", db, "--by", "user", "--plot", str(png)])
    assert out.exit_code == 0, out.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_and_prune(db: str, tmp_path: Path) -> None:
    out = runner.invoke(app, ["ledger", "export", "--ledger", db, "--format", "json"])
    rows = json.loads(out.output)
    assert len(rows) == 6 and {r["outcome"] for r in rows} == {"ok", "refused"}
    target = tmp_path / "rows.csv"
    out = runner.invoke(
        app, ["ledger", "export", "--ledger", db, "-o", str(target), "--since", "7d"]
    )
    assert out.exit_code == 0 and len(target.read_text().splitlines()) == 1 + 5
    out = runner.invoke(app, ["ledger", "prune", "--ledger", db, "--before", "7d", "--yes"])
    assert out.exit_code == 0 and "deleted 1 rows" in out.output
    assert Ledger.open(db).count() == 5


def test_clear_errors(tmp_path: Path) -> None:
    out = runner.invoke(app, ["report"], env={"AGENT_BUDGET_LEDGER": ""})
    assert out.exit_code == 2 and "no ledger" in out.output
    out = runner.invoke(app, ["report", "--ledger", str(tmp_path / "missing.db")])
    assert out.exit_code == 1 and "no ledger at" in out.output
    bad = tmp_path / "bad.db"
    bad.write_text("not a database" * 100)
    out = runner.invoke(app, ["report", "--ledger", str(bad)])
    assert out.exit_code == 1 and "not a usable SQLite database" in out.output
    good = tmp_path / "good.db"
    Ledger.open(good).close()
    out = runner.invoke(app, ["report", "--ledger", str(good), "--by", "colour"])
    assert out.exit_code == 2 and "--by 'colour'" in out.output
    out = runner.invoke(app, ["report", "--ledger", str(good), "--since", "last week"])
    assert out.exit_code == 2 and "is not a time" in out.output
    out = runner.invoke(app, ["ledger", "prune", "--ledger", str(good), "--before", "soon", "-y"])
    assert out.exit_code == 2 and "before: 'soon' is not a time" in out.output
