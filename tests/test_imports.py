"""Import cost: `import agent_budget` and `agent-budget --help` stay light (lazy heavy parts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("litellm", "llama_cpp", "matplotlib", "langchain")
ROOT = Path(__file__).resolve().parent.parent


def loaded_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return the heavy modules it left in sys.modules."""
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        heavy = {HEAVY!r}
        print("\\n" + json.dumps(sorted(
            m for m in sys.modules if m.split(".")[0] in heavy
        )))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_BUDGET_")}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import agent_budget",
        "import agent_budget.cli",
        "from agent_budget import Budget, BudgetTracker, PriceBook, Regime, InvalidBudget",
        "from agent_budget.budget import Budget; Budget(usd=1, tool_calls={'a': 1})",
    ],
)
def test_imports_do_not_load_heavy_modules(code):
    assert loaded_after(code) == []


def test_help_does_not_load_heavy_modules():
    code = """
    from agent_budget.cli import app
    try:
        app(["--help"], prog_name="agent-budget")
    except SystemExit as exc:
        assert exc.code == 0, exc.code
    """
    assert loaded_after(code) == []


def test_check_does_not_load_heavy_modules(tmp_path: Path):
    p = tmp_path / "b.yaml"
    p.write_text("usd: 1\ntool_calls: {web_search: 2}\n")
    code = f"""
    from agent_budget.cli import app
    try:
        app(["check", {str(p)!r}], prog_name="agent-budget")
    except SystemExit as exc:
        assert exc.code == 0, exc.code
    """
    assert loaded_after(code) == []


def test_the_heavy_check_can_fail():
    # the probe itself must see a heavy import when there is one
    assert loaded_after("import langchain") == ["langchain"]


def test_console_script_help():
    exe = Path(sys.executable).parent / "agent-budget"
    if not exe.exists():
        pytest.skip("agent-budget console script not installed in this environment")
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "check" in proc.stdout and "agent-budget" in proc.stdout


def test_module_help():
    proc = subprocess.run(
        [sys.executable, "-m", "agent_budget.cli", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "check" in proc.stdout


def test_lazy_public_names_resolve():
    import agent_budget

    for name in agent_budget.__all__:
        assert getattr(agent_budget, name) is not None, name
    with pytest.raises(AttributeError):
        agent_budget.no_such_thing  # noqa: B018
