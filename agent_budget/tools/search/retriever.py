"""Any LangChain retriever as a search backend, whose hits ``fetch_page`` can open.

A hit's URL is the document's ``url`` or ``source`` metadata when that is a web URL (fetched
from the web like any other result); otherwise a stable ``retriever://<name>/<id>``: the
document's id (``Document.id`` or ``metadata["id"]``), else a hash of its text and metadata,
so the same document has the same URL whatever the query and its rank. The backend keeps
the documents it handed out (the most recent `KEEP`), and `OfflineFetcher(backend)` opens
a ``retriever://`` URL from them in full, with no network: the search shows an extract, the
fetch the whole text.

    backend = RetrieverBackend(vector_store.as_retriever(), name="notes")
    tools = search_tools(backend, OfflineFetcher(backend))
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

from agent_budget.tools.search.base import SearchHit, check_k, check_query, snippet
from agent_budget.tools.search.corpus import Document

KEEP = 10_000  # documents remembered for fetch_page; the oldest are forgotten first


class RetrieverBackend:
    """Any LangChain `BaseRetriever` as a search backend (``name``: the URLs' host part)."""

    scheme = "retriever"

    def __init__(self, retriever: Any, *, name: str = "retriever", keep: int = KEEP) -> None:
        self.retriever = retriever
        self.name = name
        self.keep = keep
        self._docs: OrderedDict[str, Document] = OrderedDict()
        self._lock = threading.Lock()  # parallel searches run in threads

    def url_of(self, doc: Any) -> str:
        meta = getattr(doc, "metadata", None) or {}
        for key in ("url", "source"):
            value = meta.get(key)
            if isinstance(value, str) and re.match(r"https?://\S", value, re.IGNORECASE):
                return value
        ident = getattr(doc, "id", None) or meta.get("id")
        if not ident:
            data = json.dumps([getattr(doc, "page_content", ""), meta], sort_keys=True, default=str)
            ident = hashlib.sha256(data.encode()).hexdigest()[:16]
        return f"retriever://{quote(self.name, safe='')}/{quote(str(ident), safe='')}"

    def _hits(self, docs: Any, k: int) -> list[SearchHit]:
        hits = []
        for d in list(docs)[:k]:
            meta = getattr(d, "metadata", None) or {}
            url = self.url_of(d)
            title = str(meta.get("title") or meta.get("source") or url)
            text = str(getattr(d, "page_content", ""))
            if url.startswith("retriever://"):
                self._remember(Document(url, title, text))
            score = meta.get("score")
            hits.append(
                SearchHit(
                    title,
                    url,
                    snippet(text),
                    float(score) if isinstance(score, int | float) else None,
                )
            )
        return hits

    def _remember(self, doc: Document) -> None:
        with self._lock:
            self._docs[doc.url] = doc
            self._docs.move_to_end(doc.url)
            while len(self._docs) > self.keep:
                self._docs.popitem(last=False)

    def document(self, url: str) -> Document | None:
        """The whole text of a ``retriever://`` URL that a search returned, or None."""
        with self._lock:
            return self._docs.get(url)

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        q, k = check_query(query), check_k(k)
        return self._hits(self.retriever.invoke(q), k)

    async def asearch(self, query: str, k: int = 5) -> list[SearchHit]:
        q, k = check_query(query), check_k(k)
        return self._hits(await self.retriever.ainvoke(q), k)
