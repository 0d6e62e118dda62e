"""The offline index: built from scratch (what CI runs), reused, rebuilt when stale or
corrupt, safe when two processes build it at once; BM25 ranking sanity."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agent_budget.tools.search import (
    IndexInfo,
    OfflineBackend,
    SearchToolError,
    ensure_index,
    offline_backend,
)
from agent_budget.tools.search.corpus import fingerprint
from agent_budget.tools.search.index import _prune_older, default_index_path, fts_query, read_meta


def test_index_builds_from_scratch_in_an_empty_cache(
    built_index: IndexInfo, search_cache: Path
) -> None:
    assert built_index.built_now
    assert built_index.path == default_index_path(built_index.fingerprint)
    assert built_index.path.is_relative_to(search_cache)
    assert built_index.documents > 2000  # pydoc topics + stdlib docstrings
    assert built_index.text_bytes > 1_500_000
    # No temporary or half-written file is left next to it.
    leftovers = [p.name for p in built_index.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    print(
        f"\noffline index: {built_index.documents} documents, "
        f"{built_index.text_bytes / 1e6:.2f} MB text, {built_index.file_bytes / 1e6:.2f} MB "
        f"file, built in {built_index.build_seconds:.1f} s"
    )


def test_second_use_reuses_the_cached_index(built_index: IndexInfo) -> None:
    mtime = built_index.path.stat().st_mtime_ns
    again = ensure_index(progress=False)
    assert again.path == built_index.path
    assert not again.built_now
    assert built_index.path.stat().st_mtime_ns == mtime


def test_a_stale_index_is_rebuilt(built_index: IndexInfo, tmp_path: Path) -> None:
    path = tmp_path / "Jane Doe #1?" / "index.sqlite"  # a path a sqlite URI must escape
    path.parent.mkdir()
    path.write_bytes(built_index.path.read_bytes())
    with sqlite3.connect(path) as conn:  # as if built by another Python / stdlib
        conn.execute("UPDATE meta SET value = 'old-python' WHERE key = 'fingerprint'")
    info = ensure_index(path, progress=False)
    assert info.built_now
    assert read_meta(path)["fingerprint"] == fingerprint()  # type: ignore[index]
    assert OfflineBackend(path, progress=False).search("binomial coefficient")


def test_a_new_default_index_drops_older_ones_of_the_same_python(tmp_path: Path) -> None:
    v = sys.version_info
    names = [
        f"pydocs-py{v.major}{v.minor}-old.sqlite",
        f"pydocs-py{v.major}{v.minor}-old.sqlite.lock",
        "pydocs-py39-other.sqlite",
        f"pydocs-py{v.major}{v.minor}-new.sqlite.lock",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    current = tmp_path / f"pydocs-py{v.major}{v.minor}-new.sqlite"
    current.write_bytes(b"x")
    _prune_older(current)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["pydocs-py39-other.sqlite", current.name, current.name + ".lock"]
    )


@pytest.mark.parametrize("damage", ["garbage", "truncated", "half-built"])
def test_a_corrupt_or_half_built_index_is_rebuilt(
    built_index: IndexInfo, tmp_path: Path, damage: str, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "index.sqlite"
    data = built_index.path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not a database" * 100)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_bytes(data)
        with sqlite3.connect(path) as conn:  # a build that died before it finished
            conn.execute("DELETE FROM meta WHERE key = 'complete'")
    assert read_meta(path) is None
    if damage != "half-built":
        return  # the cheap check is what decides; one full rebuild below covers the rest
    backend = offline_backend(path, progress=True)
    assert backend.info.built_now
    assert "Indexing Python docs for offline search" in capfd.readouterr().err
    assert backend.search("Mersenne Twister period")[0].url == "offline://stdlib/random"


def test_two_processes_building_at_once_leave_one_good_index(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "index.sqlite"
    code = (
        "import sys; from pathlib import Path;"
        "from agent_budget.tools.search import ensure_index;"
        "info = ensure_index(Path(sys.argv[1]), progress=False);"
        "print('built' if info.built_now else 'reused', info.documents)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sorted(o[0] for o in outs) == ["built", "reused"]  # the lock saved one build
    assert outs[0][1] == outs[1][1]
    assert read_meta(path) is not None
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Mersenne Twister period", "offline://stdlib/random"),
        (
            "topologically sort a graph of hashable nodes",
            "offline://stdlib/graphlib#TopologicalSorter",
        ),
        ("overlapping pairs iterator", "offline://stdlib/itertools#pairwise"),
        ("binomial coefficient", "offline://stdlib/math#comb"),
        ("imaginary literal", "offline://pydoc/topics/imaginary"),
        ("shell-escaped version of the string", "offline://stdlib/shlex#quote"),
    ],
)
def test_bm25_puts_the_right_document_first(
    backend: OfflineBackend, query: str, expected: str
) -> None:
    hits = backend.search(query, 5)
    assert hits[0].url == expected, [h.url for h in hits]
    assert all(h.score is not None for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)  # type: ignore[misc]


def test_search_returns_at_most_k_hits_with_snippets(backend: OfflineBackend) -> None:
    hits = backend.search("priority queue", 3)
    assert len(hits) == 3
    assert all(h.snippet and h.title and h.url.startswith("offline://") for h in hits)


@pytest.mark.parametrize(
    "query",
    ["AND OR NOT", "NEAR(a b)", 'title: "unclosed', "col:*", "a-b - c", "SELECT * FROM docs;"],
)
def test_fts_syntax_in_a_query_is_searched_as_words(backend: OfflineBackend, query: str) -> None:
    backend.search(query)  # no FTS5 syntax error reaches the caller
    assert all(part.startswith('"') for part in fts_query(query).split(" OR "))


@pytest.mark.parametrize("query", ["", "   ", "???", "!!! ...", "x" * 1001])
def test_a_query_with_nothing_to_search_is_a_clear_error(
    backend: OfflineBackend, query: str
) -> None:
    with pytest.raises(SearchToolError, match="query"):
        backend.search(query)


async def test_async_search_matches_sync(backend: OfflineBackend) -> None:
    sync = backend.search("binomial coefficient")
    assert await backend.asearch("binomial coefficient") == sync


def test_document_by_url(backend: OfflineBackend) -> None:
    doc = backend.document("offline://stdlib/heapq")
    assert doc is not None and "a[k] <= a[2*k+1]" in doc.body
    assert backend.document("offline://stdlib/no-such-module") is None
