"""The limits table: one place that says whether a call fits, what is left, how much of
the tightest limit is left and which limit ends the run; and the budget message showing
the tightest limit outside a budget (a parent's)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from agent_budget import Budget, BudgetExceeded, BudgetTracker
from agent_budget.limits import LimitTable
from agent_budget.spend import Charge, Spend


def test_check_names_the_first_limit_a_charge_does_not_fit() -> None:
    table = LimitTable(Budget(usd=1, model_calls=2, tool_calls={"search": 1}))
    spent = Spend(usd=Decimal("0.5"), model_calls=2, tool_calls={"search": 1})
    with pytest.raises(BudgetExceeded) as exc:
        table.check(Charge("tool", "search", Decimal("0.1")), spent, Spend())
    assert exc.value.limit == "tool_calls.search"
    with pytest.raises(BudgetExceeded) as exc:
        table.check(Charge("model", "m", Decimal("0.6")), spent, Spend())
    assert exc.value.limit == "usd"
    with pytest.raises(BudgetExceeded) as exc:
        table.check(Charge("model", "m", Decimal("0.1")), spent, Spend())
    assert exc.value.limit == "model_calls"
    # The final answer is not held to call counts; money stays hard.
    table.check(Charge("model", "m", Decimal("0.1")), spent, Spend(), final=True)


def test_held_spend_counts_like_committed_spend() -> None:
    table = LimitTable(Budget(tool_calls={"search": 2}))
    held = Spend(tool_calls={"search": 2})
    with pytest.raises(BudgetExceeded, match=r"tool_calls\.search"):
        table.check(Charge("tool", "search"), Spend(), held)


def test_remaining_fraction_and_first_spent() -> None:
    table = LimitTable(Budget(usd=1, model_calls=4, tool_calls={"search": 3}))
    spent = Spend(usd=Decimal("0.25"), model_calls=3, tool_calls={"search": 1})
    assert table.remaining(spent) == {
        "usd": Decimal("0.75"),
        "model_calls": 1,
        "tool_calls.search": 2,
    }
    assert table.fraction_left(spent) == Fraction(1, 4)  # model calls are the tightest
    assert table.first_spent(spent) is None
    done = table.first_spent(Spend(model_calls=4))
    assert done is not None and done.limit == "model_calls"
    assert done.text == "model call budget spent (4 of 4)"


def test_a_child_sees_its_parents_tighter_limit_labelled() -> None:
    parent = BudgetTracker(Budget(model_calls=3, usd=1, name="top"))
    child = parent.child("research", usd="0.5")
    text = child.message()
    assert "USD Used: 0.0000, USD Remaining: 0.5000" in text
    assert "Model Call Remaining (parent 'top'): 3" in text
    assert "USD Remaining (parent" not in text  # the child's own $0.50 is tighter
