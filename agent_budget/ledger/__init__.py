"""The spend ledger: a durable row per charge, budgets shared by a user's / a tenant's runs
across worker processes and hosts, and the queries behind ``agent-budget report``.

>>> from agent_budget.ledger import Ledger
>>> Ledger.open("spend.db").spend(by="user", since="7d")
>>> Ledger.open("spend.db").headroom([SharedLimit(scope="user", window="1d", usd=2)], ctx)

Importing this package is cheap; the SQLite and PostgreSQL backends (sqlite-utils, psycopg)
are imported only when a ledger is opened.
"""

from agent_budget.ledger.attach import (
    ENV_LEDGER,
    LedgerBudget,
    attach_ledger,
    context_from_config,
    ledger_location,
    open_ledger,
)
from agent_budget.ledger.base import (
    ChargeContext,
    Headroom,
    Ledger,
    LimitHeadroom,
    ScopedLimit,
    from_nanos,
    to_nanos,
)

__all__ = [
    "ENV_LEDGER",
    "ChargeContext",
    "Headroom",
    "Ledger",
    "LedgerBudget",
    "LimitHeadroom",
    "ScopedLimit",
    "attach_ledger",
    "context_from_config",
    "from_nanos",
    "ledger_location",
    "open_ledger",
    "to_nanos",
]
