"""Nested budgets: a child tracker spends from its parent through a `ParentLink`, and the
spend of a tree of budgets is read back as a `SpendTree`.

A child reserves on its own limits first, then on its parent's (which reserves on its
parent's, and so on), so a call must fit every ancestor, and parallel children share the
parent's lock: two sub-agents fanned out with ``Send`` can never together pass the parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from agent_budget.errors import InvalidBudget
from agent_budget.spend import Charge, Spend

if TYPE_CHECKING:
    from agent_budget.budget import Budget
    from agent_budget.limits import Limit
    from agent_budget.tracker import BudgetTracker, Reservation


def check_child(parent: Budget, child: Budget, name: str) -> None:
    """A child limit larger than the parent's is an error: it could never be used."""
    from agent_budget.budget import limit_pairs

    for field_name, mine, theirs in limit_pairs(parent, child):
        if mine is not None and theirs is not None and theirs > mine:
            raise InvalidBudget(
                f"child {name!r}.{field_name}: {theirs} is more than its parent's {mine}; "
                "a child spends from its parent and can never have more"
            )


class ParentLink:
    """The parent as a `SharedBudget` of its child. Charges reach the parent with the
    child's name in front of their node (``research/tools``), so the parent's per-node
    spend and the ledger's ``node`` column show the tree too."""

    def __init__(self, parent: BudgetTracker, child_name: str) -> None:
        self.parent = parent
        self.child_name = child_name

    def _tagged(self, charge: Charge) -> Charge:
        node = charge.meta.get("node")
        path = f"{self.child_name}/{node}" if node else self.child_name
        return replace(charge, meta={**charge.meta, "node": path})

    def reserve(self, charge: Charge) -> Reservation:
        return self.parent.reserve(self._tagged(charge))

    def fits(self, charge: Charge) -> bool:
        return self.parent.fits(charge)

    def limit_rows(self) -> list[Limit]:
        """The parent's limits (and those above it), labelled as the parent's: the child's
        budget message shows the ones tighter than its own."""
        label = f"parent {self.parent.name or 'budget'!r}"
        rows = [replace(r, scope=label) for r in self.parent.limit_rows() if r.name != "seconds"]
        for shared in self.parent.shared:
            above = getattr(shared, "limit_rows", None)
            if above is not None:
                rows += above()
        return rows

    def commit(self, handle: Reservation, actual: Charge) -> None:
        handle.commit(self._tagged(actual))

    def release(self, handle: Reservation) -> None:
        handle.release()


@dataclass
class SpendTree:
    """One budget in a tree: its total spend (children included) and its own share."""

    name: str
    spent: Spend
    own: Spend
    instances: int = 1  # runs of this sub-budget (a sub-agent called 3 times: 3)
    children: list[SpendTree] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spent": self.spent.to_dict(),
            "own": self.own.to_dict(),
            "instances": self.instances,
            "children": [c.to_dict() for c in self.children],
        }


def spend_tree(tracker: BudgetTracker) -> SpendTree:
    """The tree of ``tracker`` and its children, live and restored from earlier runs."""
    nodes = [_live(kid) for kid in tracker.children]
    nodes += [_restored(name, data) for name, data in tracker.restored_children.items()]
    children = _merge_by_name(nodes)
    below = sum((c.spent for c in children), Spend())
    name = tracker.name or "budget"
    return SpendTree(name, tracker.spent.copy(), tracker.spent - below, 1, children)


def children_state(tracker: BudgetTracker) -> dict[str, Any]:
    """The children's spend as plain data for a snapshot: ``{name: {spent, instances,
    children}}`` (a resumed thread keeps its tree)."""
    return {
        c.name: {"spent": c.spent.to_dict(), "instances": c.instances, "children": _state(c)}
        for c in spend_tree(tracker).children
    }


def _state(tree: SpendTree) -> dict[str, Any]:
    return {
        c.name: {"spent": c.spent.to_dict(), "instances": c.instances, "children": _state(c)}
        for c in tree.children
    }


def _live(kid: BudgetTracker) -> SpendTree:
    return spend_tree(kid)


def _restored(name: str, data: dict[str, Any]) -> SpendTree:
    children = [_restored(n, d) for n, d in (data.get("children") or {}).items()]
    spent = Spend.from_dict(data.get("spent") or {})
    below = sum((c.spent for c in children), Spend())
    return SpendTree(name, spent, spent - below, int(data.get("instances", 1)), children)


def _merge_by_name(nodes: list[SpendTree]) -> list[SpendTree]:
    groups: dict[str, list[SpendTree]] = {}
    for node in nodes:
        groups.setdefault(node.name, []).append(node)
    out = []
    for name, members in groups.items():
        if len(members) == 1:
            out.append(members[0])
            continue
        children = _merge_by_name([c for m in members for c in m.children])
        spent = sum((m.spent for m in members), Spend())
        own = sum((m.own for m in members), Spend())
        out.append(SpendTree(name, spent, own, sum(m.instances for m in members), children))
    return out
