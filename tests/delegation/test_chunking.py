"""Chunking and chunk ranking: pure functions, checked exhaustively with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_budget.delegation.chunking import chunk_text, rank_chunks, terms
from agent_budget.delegation.corpus import NEEDLES, needle_document
from agent_budget.delegation.schema import JobPlan

TEXT = st.text(alphabet=st.sampled_from("ab \n\f."), max_size=400)


@settings(max_examples=150, deadline=None)
@given(TEXT, st.sampled_from(["chars", "paragraphs", "pages"]), st.integers(5, 60), st.data())
def test_chunks_are_bounded_and_cover_the_text(
    text: str, by: str, size: int, data: st.DataObject
) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    chunks = chunk_text(text, by=by, size=size, overlap=overlap)  # type: ignore[arg-type]
    assert all(0 < len(c.text) <= size for c in chunks)
    assert all(text[c.start : c.start + len(c.text)] == c.text for c in chunks)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.start + len(c.text)))
    # Every non-blank character is in some chunk (separators between units may be dropped).
    assert all(i in covered for i, ch in enumerate(text) if ch not in " \n\f")


def test_bad_chunking_arguments_name_the_problem() -> None:
    with pytest.raises(ValueError, match="overlap"):
        chunk_text("abc", size=10, overlap=10)
    with pytest.raises(ValueError, match="size"):
        chunk_text("abc", size=0)
    with pytest.raises(ValueError, match="chunk by 'lines'"):
        chunk_text("abc", by="lines")  # type: ignore[arg-type]
    assert chunk_text("  \n\n ") == []


def test_ranking_finds_the_planted_fact() -> None:
    doc = needle_document(20_000)
    chunks = chunk_text(doc, by="paragraphs", size=1500, overlap=100)
    for needle in NEEDLES:
        best = rank_chunks(chunks, terms(needle.question.question), 1)
        assert needle.sentence in best[0].text


def test_job_plan_rejects_what_is_not_a_plan() -> None:
    with pytest.raises(ValueError):
        JobPlan.model_validate({"tasks": []})
    with pytest.raises(ValueError):
        JobPlan.model_validate({"tasks": [{"task": "x", "code": "import os"}]})
