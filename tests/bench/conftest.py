"""Sweeps for the harness tests: a fast one (planner problems, no model) and the embedded-model
one (router questions on SmolLM2, marked local_model)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # bench_specs, tiny_tasks (pool workers too)


@pytest.fixture(autouse=True)
def _no_ambient_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_BUDGET_LEDGER", raising=False)


@pytest.fixture
def pg_ledger() -> Any:
    """A PostgreSQL ledger URL in a schema of its own, dropped afterwards (skipped, with the
    reason, when no server answers on 127.0.0.1:5432)."""
    import os
    import uuid

    psycopg = pytest.importorskip("psycopg")
    server = (
        os.environ.get("AGENT_BUDGET_TEST_POSTGRES") or "postgresql://postgres@127.0.0.1:5432/test"
    )
    try:
        psycopg.connect(server, connect_timeout=2).close()
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL server at {server}: {exc}")
    schema = f"ab_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    yield f"{server}?schema={schema}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
