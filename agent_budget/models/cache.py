"""An exact-match response cache in SQLite: a repeated call costs $0 and says it was a hit.

It plugs into LangChain's own cache slot (``LocalChatModel(cache=ResponseCache(path))``, or
``set_llm_cache``), whose key is the serialized messages plus the model's parameters (model
name, max_tokens, temperature, bound tools, response_format...). A hit comes back with zero
``usage_metadata`` (so the budget charges $0) and ``response_metadata["cache_hit"] = True``;
the tokens the original call used are kept as ``response_metadata["cached_usage"]``.
Streaming calls bypass LangChain's cache.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.messages import message_to_dict, messages_from_dict
from langchain_core.outputs import ChatGeneration, Generation


class ResponseCache(BaseCache):
    """SQLite (through sqlite-utils) exact-match cache of chat replies, with a hit log."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        import sqlite_utils

        self.path = str(path)
        conn = sqlite3.connect(self.path, check_same_thread=False)
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.Lock()
        with self._lock:
            if "responses" not in self.db.table_names():
                self.db.table("responses").create(
                    {
                        "key": str,
                        "model": str,
                        "generations": str,
                        "input_tokens": int,
                        "output_tokens": int,
                        "created_at": float,
                    },
                    pk="key",
                )
            if "hits" not in self.db.table_names():
                self.db.table("hits").create(
                    {
                        "key": str,
                        "model": str,
                        "input_tokens": int,
                        "output_tokens": int,
                        "at": float,
                    }
                )

    @staticmethod
    def key(prompt: str, llm_string: str) -> str:
        return hashlib.sha256(f"{llm_string}\x00{prompt}".encode()).hexdigest()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        key = self.key(prompt, llm_string)
        with self._lock:
            rows = list(self.db.query("select * from responses where key = ?", [key]))
            if not rows:
                return None
            row = rows[0]
            self.db.table("hits").insert(
                {
                    "key": key,
                    "model": row["model"],
                    "input_tokens": row["input_tokens"],
                    "output_tokens": row["output_tokens"],
                    "at": time.time(),
                }
            )
        return [_as_hit(g) for g in _load(row["generations"])]

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        chat = [g for g in return_val if isinstance(g, ChatGeneration)]
        if not chat or len(chat) != len(return_val):
            return
        usage = chat[0].message.usage_metadata or {}  # type: ignore[attr-defined]
        meta = chat[0].message.response_metadata or {}
        if meta.get("cache_hit"):
            return
        with self._lock:
            self.db.table("responses").upsert(
                {
                    "key": self.key(prompt, llm_string),
                    "model": meta.get("model_name", ""),
                    "generations": _dump(chat),
                    "input_tokens": int(usage.get("input_tokens", 0)),
                    "output_tokens": int(usage.get("output_tokens", 0)),
                    "created_at": time.time(),
                },
                pk="key",
            )

    def clear(self, **kwargs: Any) -> None:
        with self._lock:
            self.db.table("responses").delete_where()
            self.db.table("hits").delete_where()

    def stats(self) -> dict[str, Any]:
        """Entries, hits, and the tokens the hits did not spend, per model."""
        with self._lock:
            entries = self.db.table("responses").count
            per_model = list(
                self.db.query(
                    "select model, count(*) as hits, sum(input_tokens) as input_tokens_saved, "
                    "sum(output_tokens) as output_tokens_saved from hits group by model"
                )
            )
        return {"entries": entries, "hits": sum(r["hits"] for r in per_model), "models": per_model}


def _dump(generations: Sequence[ChatGeneration]) -> str:
    return json.dumps(
        [{"message": message_to_dict(g.message), "info": g.generation_info} for g in generations]
    )


def _load(text: str) -> list[ChatGeneration]:
    items = json.loads(text)
    messages = messages_from_dict([i["message"] for i in items])
    return [
        ChatGeneration(message=m, generation_info=i["info"])
        for m, i in zip(messages, items, strict=True)
    ]


def _as_hit(gen: Generation) -> Generation:
    if not isinstance(gen, ChatGeneration):
        return gen
    msg = gen.message
    usage = getattr(msg, "usage_metadata", None)
    update: dict[str, Any] = {
        "response_metadata": {**msg.response_metadata, "cache_hit": True, "cached_usage": usage},
    }
    if usage is not None or hasattr(msg, "usage_metadata"):
        update["usage_metadata"] = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    return ChatGeneration(
        message=msg.model_copy(update=update), generation_info=gen.generation_info
    )
