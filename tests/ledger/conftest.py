"""Ledger fixtures: a SQLite file per test, and a PostgreSQL schema per test (skipped, with
the reason in the test output, when no server answers on 127.0.0.1:5432)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # ledger_workers, for spawned processes

PG_CANDIDATES = (
    os.environ.get("AGENT_BUDGET_TEST_POSTGRES"),
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


@pytest.fixture(autouse=True)
def _no_ambient_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_BUDGET_LEDGER", raising=False)
    monkeypatch.delenv("AGENT_BUDGET_LEDGER_TTL", raising=False)


@pytest.fixture(scope="session")
def pg_server() -> str:
    psycopg = pytest.importorskip(
        "psycopg", reason="psycopg is not installed (pip install .[postgres])"
    )
    errors = []
    for url in filter(None, PG_CANDIDATES):
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return url
        except psycopg.Error as exc:
            errors.append(f"{url}: {str(exc).strip().splitlines()[-1]}")
    pytest.skip(
        "no PostgreSQL server reachable on 127.0.0.1:5432 (start it: pg_ctlcluster "
        "--skip-systemctl-redirect $(ls /etc/postgresql) main start): " + "; ".join(errors)
    )


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A ledger URL in a schema of its own, dropped afterwards (parallel runs never meet)."""
    import psycopg

    schema = f"ab_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    yield f"{pg_server}?schema={schema}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh ledger location on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "spend.db")
    return str(request.getfixturevalue("pg_url"))
