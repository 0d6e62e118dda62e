"""The offline question set holds on this interpreter: every answer is in its source
document, every bridge in its first source, and BM25 finds each one-hop source."""

from __future__ import annotations

import pytest

from agent_budget.tools.search import OfflineBackend
from agent_budget.tools.search.questions import SearchQuestion, load_questions, normalize

QUESTIONS = load_questions()


def test_the_set_has_enough_questions_and_two_hop_ones() -> None:
    assert len(QUESTIONS) >= 40
    assert len(load_questions("two-hop")) >= 10
    assert len({q.id for q in QUESTIONS}) == len(QUESTIONS)
    dev, test = load_questions("dev"), load_questions("test")
    assert len(dev) + len(test) == len(QUESTIONS) and not {q.id for q in dev} & {q.id for q in test}
    assert all(q.bridge for q in load_questions("two-hop"))
    assert all(len(set(q.sources)) == 2 for q in load_questions("two-hop"))
    with pytest.raises(ValueError, match="unknown split"):
        load_questions("train")


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q.id)
def test_answer_and_bridge_are_in_the_source_documents(
    backend: OfflineBackend, q: SearchQuestion
) -> None:
    docs = [backend.document(url) for url in q.sources]
    assert all(d is not None for d in docs), f"missing source of {q.id}: {q.sources}"
    answer_doc = normalize(docs[-1].body)  # type: ignore[union-attr]
    assert any(normalize(a) in answer_doc for a in q.answers), q.answers
    if q.bridge:
        assert normalize(q.bridge) in normalize(docs[0].body)  # type: ignore[union-attr]
        # Two hops means the question does not already name the answer's document.
        assert not any(normalize(a) in normalize(q.question) for a in q.answers)


def test_bm25_finds_the_source_of_one_hop_questions(backend: OfflineBackend) -> None:
    """Recall@5 with the question text itself as the query (no hand-picked keywords)."""
    one_hop = load_questions("one-hop")
    found = [
        q.id for q in one_hop if q.sources[0] in [h.url for h in backend.search(q.question, 5)]
    ]
    recall = len(found) / len(one_hop)
    print(f"\nrecall@5 (one-hop, question as query): {len(found)}/{len(one_hop)} = {recall:.2f}")
    assert recall >= 0.9, sorted({q.id for q in one_hop} - set(found))


@pytest.mark.parametrize(
    ("reply", "ok"),
    [
        ("The default width is 70.", True),
        ("width=70", True),
        ("It is 170 columns", False),
        ("seventy", False),
        (None, False),
        ("", False),
    ],
)
def test_correct_matches_whole_answers_only(reply: str | None, ok: bool) -> None:
    q = next(q for q in QUESTIONS if q.id == "textwrap-width")
    assert q.correct(reply) is ok


def test_correct_ignores_case_quotes_and_spacing() -> None:
    q = next(q for q in QUESTIONS if q.id == "seqmatcher-ratio")
    assert q.correct("ratio() returns `2.0*M / T`")
    assert q.correct("it computes 2.0*m/t")
    pdb = next(q for q in QUESTIONS if q.id == "pdb-prompt")
    assert pdb.correct('The prompt is "(Pdb)".')
