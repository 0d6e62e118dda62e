"""A LangChain retriever as the search backend: each hit has a URL (its web source, else a
stable ``retriever://`` id) and fetch_page opens a ``retriever://`` hit in full. Real
retrievers: an `InMemoryVectorStore` over a deterministic embedding, and a keyword one."""

from __future__ import annotations

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import InMemoryVectorStore
from search_standin import Reply, StandIn

from agent_budget.tools.search import (
    HttpFetcher,
    OfflineFetcher,
    RetrieverBackend,
    SearchToolError,
    offline_fetcher,
    search_tools,
)

LONG = "Heaps keep the smallest item first. " + "A heap is a binary tree. " * 40


class KeywordRetriever(BaseRetriever):
    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        words = set(query.lower().split())
        return [d for d in self.docs if words & set(d.page_content.lower().split())]


def notes() -> KeywordRetriever:
    return KeywordRetriever(
        docs=[
            Document(
                "heaps keep the smallest item first",
                metadata={"source": "https://a.example/heap", "title": "Heaps"},
            ),
            Document("queues are first in first out", metadata={"url": "https://b.example/q"}),
            Document(LONG, metadata={"source": "notes/heaps.md"}),
            Document("a note about heaps and queues with no address"),
        ]
    )


async def test_a_langchain_retriever_is_a_backend() -> None:
    backend = RetrieverBackend(notes(), name="notes")
    hits = backend.search("heaps", k=5)
    assert [h.title for h in hits] == ["Heaps", "notes/heaps.md", hits[2].url]
    assert hits[0].url == "https://a.example/heap"  # a web source stays a web URL
    assert all(h.url.startswith("retriever://notes/") for h in hits[1:])
    assert len(hits[1].snippet) <= 400 < len(LONG)
    assert await backend.asearch("queues") == backend.search("queues")
    with pytest.raises(SearchToolError, match="empty query"):
        backend.search("  ")


def test_retriever_urls_are_stable_across_queries_and_ranks() -> None:
    backend = RetrieverBackend(notes(), name="notes")
    by_heaps = {h.snippet: h.url for h in backend.search("heaps")}
    by_queues = {h.snippet: h.url for h in backend.search("queues")}
    shared = "a note about heaps and queues with no address"
    # The note is hit 3 for "heaps" and hit 2 for "queues": one URL either way.
    assert by_heaps[shared] == by_queues[shared]
    assert len(set(by_heaps.values())) == len(by_heaps)  # and distinct documents differ
    assert (
        RetrieverBackend(notes(), name="notes").search("heaps")[1].url == list(by_heaps.values())[1]
    )  # the same in a new backend (a hash of the document, not a counter)


def test_fetch_page_opens_a_retriever_hit_in_full() -> None:
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=32))
    ids = store.add_documents(
        [
            Document(LONG, metadata={"source": "notes/heaps.md"}),
            Document("Queues are first in, first out.", metadata={"title": "Queues"}),
        ]
    )
    backend = RetrieverBackend(store.as_retriever(search_kwargs={"k": 2}), name="kb")
    search, fetch = search_tools(backend, offline_fetcher(backend=backend), max_page_chars=5000)
    listing = search.invoke({"query": "heap"})
    assert f"retriever://kb/{ids[0]}" in listing and f"retriever://kb/{ids[1]}" in listing
    page = fetch.invoke({"url": f"retriever://kb/{ids[0]}"})
    assert "Title: notes/heaps.md" in page and LONG.strip() in page  # all of it, not the extract
    assert "Title: Queues" in fetch.invoke({"url": f"retriever://kb/{ids[1]}"})
    call = {
        "name": "fetch_page",
        "args": {"url": "retriever://kb/nope"},
        "id": "c",
        "type": "tool_call",
    }
    msg = fetch.invoke(call)
    assert msg.status == "error" and "no retriever document at retriever://kb/nope" in msg.content


async def test_retriever_pages_open_async_and_web_sources_go_to_http(standin: StandIn) -> None:
    standin.routes["/heap"] = lambda r: Reply(200, b"the full page on the web", "text/plain")
    retriever = KeywordRetriever(
        docs=[
            Document("heaps an extract", metadata={"source": standin.url + "/heap"}),
            Document("heaps a local note"),
        ]
    )
    backend = RetrieverBackend(retriever)
    fetcher = OfflineFetcher(backend, HttpFetcher(allow_private=True))
    local, web = sorted((await backend.asearch("heaps")), key=lambda h: h.url.startswith("http"))
    assert (await fetcher.afetch(local.url)).text == "heaps a local note"
    assert (await fetcher.afetch(web.url)).text == "the full page on the web"
    # The web source is a web URL, so the address guard applies to it like to any other.
    with pytest.raises(SearchToolError, match="loopback"):
        OfflineFetcher(backend, HttpFetcher(allow_private=False)).fetch(web.url)


def test_the_backend_remembers_a_bounded_number_of_documents() -> None:
    retriever = KeywordRetriever(docs=[Document(f"note {i} heaps") for i in range(5)])
    backend = RetrieverBackend(retriever, keep=3)
    urls = [h.url for h in backend.search("heaps", k=5)]
    assert [backend.document(u) is not None for u in urls] == [False, False, True, True, True]
