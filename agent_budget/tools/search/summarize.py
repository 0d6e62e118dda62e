"""Minions-style page summaries: the free on-device model reads a long page chunk by chunk,
so the cloud model reads a short summary instead of the whole page.

The chunks come from the delegation layer's `chunk_text` (paragraph-packed, with overlap);
each chunk gets one short local-model call; the notes are joined in page order. Under
`with_budget` those local calls are seen and priced like any other model call (local models
cost $0 but are counted).
"""

from __future__ import annotations

from typing import Any

from agent_budget.delegation import chunk_text
from agent_budget.tools.search.tools import Summarizer

PROMPT = (
    "Below is part {part} of {parts} of the page {url}. Write the facts it states that a "
    "reader researching this page would need (names, numbers, definitions), in at most "
    "three short sentences. Do not add anything that is not in the text.\n\n{chunk}"
)


def local_summarizer(
    model: Any = "local:smollm2-135m",
    *,
    chunk_chars: int = 1500,
    max_chunks: int = 6,
    max_tokens: int = 96,
) -> Summarizer:
    """A `Summarizer` over a chat model (a name for `agent_budget.models.resolve`, or a
    LangChain chat model). At most ``max_chunks`` chunks are read, spread evenly over the
    page, so one huge page costs a bounded number of local calls."""
    if max_chunks < 1:
        raise ValueError(f"max_chunks must be at least 1, got {max_chunks}")
    llm: Any = None

    def summarize(text: str, url: str) -> str:
        nonlocal llm
        if llm is None:
            if isinstance(model, str):
                from agent_budget.models import resolve

                llm = resolve(model)
            else:
                llm = model
        chunks = chunk_text(text, size=chunk_chars, overlap=min(150, chunk_chars // 10))
        if len(chunks) > max_chunks:
            step = len(chunks) / max_chunks
            chunks = [chunks[int(i * step)] for i in range(max_chunks)]
        notes = []
        for i, chunk in enumerate(chunks, 1):
            prompt = PROMPT.format(part=i, parts=len(chunks), url=url, chunk=chunk.text)
            reply = llm.invoke(prompt, max_tokens=max_tokens)
            note = " ".join(str(reply.content).split())
            if note:
                notes.append(f"- {note}")
        return "\n".join(notes)

    return summarize
