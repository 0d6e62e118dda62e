"""Splitting documents into chunks a small local model can read, and picking the chunks a
job should read.

Chunks are cut by characters, paragraphs (blank lines) or pages (form feeds, else
``--- page`` markers), ``size`` characters at most, with ``overlap`` characters repeated
from the end of one chunk at the start of the next so a fact cut in two is whole in one.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

ChunkBy = Literal["chars", "paragraphs", "pages"]
"""How a document is cut.

- ``"chars"``: every ``size`` characters (minus the overlap).
- ``"paragraphs"``: whole paragraphs (split at blank lines) packed up to ``size``; a paragraph
  longer than ``size`` is cut by characters.
- ``"pages"``: whole pages (split at form feeds ``\\f``), packed up to ``size`` like paragraphs.
"""

_PAGE = re.compile(r"\f")
_PARAGRAPH = re.compile(r"\n\s*\n")
_WORD = re.compile(r"[a-z0-9][a-z0-9_\-]*", re.IGNORECASE)
_STOP = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
    }
)


@dataclass(frozen=True)
class Chunk:
    """A piece of one document: ``doc`` and ``index`` say where it came from."""

    doc: int
    index: int
    start: int
    text: str

    @property
    def label(self) -> str:
        return f"doc{self.doc}-chunk{self.index}"


def chunk_text(
    text: str, *, by: ChunkBy = "paragraphs", size: int = 4000, overlap: int = 200, doc: int = 0
) -> list[Chunk]:
    """Cut ``text`` into chunks of at most ``size`` characters (``overlap`` < ``size``)."""
    if size <= 0:
        raise ValueError(f"chunk size must be positive, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be in [0, size={size}), got {overlap}")
    if not text.strip():
        return []
    if by == "chars":
        pieces = _by_chars(text, 0, size, overlap)
    elif by in ("paragraphs", "pages"):
        pieces = _packed(text, _PAGE if by == "pages" else _PARAGRAPH, size, overlap)
    else:
        raise ValueError(f"chunk by {by!r}: use 'chars', 'paragraphs' or 'pages'")
    return [Chunk(doc, i, start, piece) for i, (start, piece) in enumerate(pieces)]


def _by_chars(text: str, offset: int, size: int, overlap: int) -> list[tuple[int, str]]:
    step = size - overlap
    out = []
    for start in range(0, len(text), step):
        out.append((offset + start, text[start : start + size]))
        if start + size >= len(text):
            break
    return out


def _packed(text: str, sep: re.Pattern[str], size: int, overlap: int) -> list[tuple[int, str]]:
    units: list[tuple[int, str]] = []
    pos = 0
    for match in [*sep.finditer(text), None]:
        end = match.start() if match else len(text)
        if text[pos:end].strip():
            units.append((pos, text[pos:end]))
        pos = match.end() if match else len(text)
    out: list[tuple[int, str]] = []
    start, end = -1, -1
    for u_start, unit in units:
        if len(unit) > size:
            if start >= 0:
                out.append((start, text[start:end]))
                start = -1
            out.extend(_by_chars(unit, u_start, size, overlap))
            continue
        u_end = u_start + len(unit)
        if start >= 0 and u_end - start <= size:
            end = u_end
            continue
        if start >= 0:
            out.append((start, text[start:end]))
            # Begin the next chunk up to `overlap` characters before this unit.
            start = (
                max(start, u_start - overlap) if u_end - (u_start - overlap) <= size else u_start
            )
        else:
            start = u_start
        end = u_end
    if start >= 0:
        out.append((start, text[start:end]))
    return out


def terms(text: str) -> list[str]:
    """Lower-case words of ``text`` that carry meaning (no stop words, no single letters)."""
    return [
        w
        for w in (m.group().lower() for m in _WORD.finditer(text))
        if len(w) > 1 and w not in _STOP
    ]


def rank_chunks(chunks: list[Chunk], query_terms: list[str], limit: int) -> list[Chunk]:
    """The ``limit`` chunks that mention the query terms most (rarer terms weigh more), in
    document order. Chunks that mention none come last, in document order."""
    if limit >= len(chunks):
        return list(chunks)
    wanted = {t.lower() for t in query_terms if t}
    counts = [Counter(w for w in terms(c.text) if w in wanted) for c in chunks]
    spread = Counter(t for c in counts for t in c)
    n = len(chunks)

    def score(i: int) -> float:
        return sum(min(k, 3) * (1 + n / (1 + spread[t])) for t, k in counts[i].items())

    best = sorted(range(n), key=lambda i: (-score(i), i))[:limit]
    return [chunks[i] for i in sorted(best)]
