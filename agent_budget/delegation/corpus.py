"""Long-document questions with known answers, built offline: for tests, benchmarks and a
quick check of a model pair (no download, no key).

- `needle_document`: filler text (CPython's own documentation, ``pydoc_data.topics``, which
  ships with the interpreter) of about N tokens with facts planted at known places.
- `pydoc_questions`: questions whose answers are sentences of that documentation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

CHARS_PER_TOKEN = 4  # English prose in BPE tokenizers: used to size documents, not to bill


@dataclass(frozen=True)
class Question:
    question: str
    answers: tuple[str, ...]
    """Accepted answers: a reply is right when it contains any of them (case-insensitive)."""

    def correct(self, reply: str | None) -> bool:
        text = (reply or "").lower()
        return any(a.lower() in text for a in self.answers)


@dataclass(frozen=True)
class Needle:
    sentence: str
    question: Question


NEEDLES = (
    Needle(
        "The access code for the north vault is 7391.",
        Question("What is the access code for the north vault?", ("7391",)),
    ),
    Needle(
        "The lighthouse keeper's cat is named Biscotti.",
        Question("What is the name of the lighthouse keeper's cat?", ("biscotti",)),
    ),
    Needle(
        "The Orion project budget was approved at 48 million kroner.",
        Question("At what amount was the Orion project budget approved?", ("48 million",)),
    ),
)

PYDOC_QUESTIONS = (
    Question(
        "What does the pass statement do when it is executed?",
        ("nothing happens", "null operation"),
    ),
    Question("What are assert statements a convenient way to do?", ("debugging assertions",)),
    Question("What kind of functions do lambda expressions create?", ("anonymous",)),
    Question(
        "In which loops may break occur syntactically nested?",
        ("for or while", "for and while", 'for" or "while'),
    ),
    Question(
        "To which variables does the nonlocal statement make the listed identifiers refer?",
        ("previously bound", "enclosing scope"),
    ),
)


def documentation_text() -> str:
    """CPython's documentation topics, joined in a fixed order (~465k characters)."""
    from pydoc_data.topics import topics

    return "\n\n".join(f"{topics[k]}" for k in sorted(topics))


def needle_document(tokens: int, needles: tuple[Needle, ...] = NEEDLES, seed: int = 0) -> str:
    """About ``tokens`` tokens of documentation text with each needle's sentence planted as
    its own paragraph at a random place (fixed by ``seed``)."""
    base = documentation_text()
    want = tokens * CHARS_PER_TOKEN
    text = (base * (want // len(base) + 1))[:want]
    paragraphs = text.split("\n\n")
    rng = random.Random(seed)
    for needle in needles:
        paragraphs.insert(rng.randrange(1, len(paragraphs)), needle.sentence)
    return "\n\n".join(paragraphs)


def pydoc_document(tokens: int | None = None) -> str:
    """The documentation itself, cut to about ``tokens`` tokens (whole when None); the
    sections the `PYDOC_QUESTIONS` are about come first, so every cut keeps them."""
    from pydoc_data.topics import topics

    first = ["pass", "assert", "lambda", "break", "nonlocal"]
    order = first + [k for k in sorted(topics) if k not in first]
    text = "\n\n".join(topics[k] for k in order)
    return text if tokens is None else text[: tokens * CHARS_PER_TOKEN]
