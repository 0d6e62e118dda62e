"""Fixtures for the search tools: one offline index built from scratch per test session (in a
temporary directory, as CI builds it), and the stand-in HTTP server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from search_standin import StandIn

from agent_budget.tools.search import IndexInfo, OfflineBackend, OfflineFetcher, ensure_index


@pytest.fixture(scope="session")
def search_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The user cache dir pointed at a fresh temporary directory for the whole session, so
    no test reads or writes ~/.cache."""
    path = tmp_path_factory.mktemp("agent-budget-cache")
    old = os.environ.get("AGENT_BUDGET_CACHE_DIR")
    os.environ["AGENT_BUDGET_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("AGENT_BUDGET_CACHE_DIR", None)
    else:
        os.environ["AGENT_BUDGET_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def built_index(search_cache: Path) -> IndexInfo:
    """The offline index, built from scratch at its default place in the empty cache."""
    return ensure_index(progress=False)


@pytest.fixture(scope="session")
def backend(built_index: IndexInfo) -> OfflineBackend:
    return OfflineBackend(built_index.path, progress=False)


@pytest.fixture(scope="session")
def fetcher(backend: OfflineBackend) -> OfflineFetcher:
    return OfflineFetcher(backend)


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as server:
        yield server
