"""The offline question set: questions with known answers over the offline corpus.

Each question's answer is a fact stated in one specific document (``sources``, offline
URLs); a two-hop question needs two documents: the first identifies something (its
``bridge`` text is in ``sources[0]``) and the last states the answer. The tests check on
this interpreter that every answer is in its source and every source is in the index;
the set was checked on CPython 3.11, 3.12 and 3.13 (removed modules such as distutils are
not used).

``split``: ``"dev"`` | ``"test"`` (a fixed half each, for tuning prompts on one and
reporting on the other), or ``"one-hop"`` | ``"two-hop"``; None: all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

SPLITS = ("dev", "test", "one-hop", "two-hop")


def normalize(text: str) -> str:
    """Lower case, quotes and backticks dropped, runs of white space as one space."""
    text = text.lower().replace("`", "").replace("\u2019", "'").replace('"', "")
    return " ".join(text.split())


@dataclass(frozen=True)
class SearchQuestion:
    id: str
    question: str
    answers: tuple[str, ...]
    hops: int
    sources: tuple[str, ...]
    bridge: str | None = None
    split: str = "test"

    def correct(self, reply: str | None) -> bool:
        """True when the reply contains one of the accepted answers as a whole word or
        phrase (case, quotes and spacing ignored): "70" matches "width 70" but not "170"."""
        if not reply:
            return False
        text = normalize(reply)
        for answer in self.answers:
            a = normalize(answer)
            left = r"(?<![\w])" if a[:1].isalnum() else ""
            right = r"(?![\w])" if a[-1:].isalnum() else ""
            if re.search(left + re.escape(a) + right, text):
                return True
        return False


@cache
def _all() -> tuple[SearchQuestion, ...]:
    raw = json.loads(
        resources.files("agent_budget.tools.search").joinpath("questions.json").read_text()
    )
    out = []
    for i, q in enumerate(raw):
        out.append(
            SearchQuestion(
                id=q["id"],
                question=q["question"],
                answers=tuple(q["answers"]),
                hops=int(q["hops"]),
                sources=tuple(q["sources"]),
                bridge=q.get("bridge"),
                split="dev" if i % 2 else "test",
            )
        )
    return tuple(out)


def load_questions(split: str | None = None) -> list[SearchQuestion]:
    if split is None:
        return list(_all())
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {', '.join(SPLITS)} or None")
    if split in ("one-hop", "two-hop"):
        hops = 1 if split == "one-hop" else 2
        return [q for q in _all() if q.hops == hops]
    return [q for q in _all() if q.split == split]
