"""Fixtures for delegation: the shipped local model, a real llama.cpp server as the cloud
stand-in (priced as a named cloud model), and a scripted OpenAI-compatible endpoint for the
failure cases. Nothing reaches the network."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location(
    "models_conftest", Path(__file__).parent.parent / "models" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_models)

llama_server = _models.llama_server  # a real `python -m llama_cpp.server` on 127.0.0.1
smollm2_path = _models.smollm2_path

DOC = (
    "Shipping notes for the spring season.\n\n"
    "The access code for the north vault is 7391.\n\n"
    "Deliveries arrive on Tuesdays."
)
"""A tiny document with one planted fact: each case costs a few short local jobs."""
DECISION = json.dumps({"decision": "answer", "answer": "7391", "feedback": ""})

CLOUD_PRICE = "openai/gpt-4.1-mini"  # the stand-in remote is billed at this model's price

_local: dict[str, Any] = {}


def delegation_local_model() -> Any:
    """One on-device model for these tests: a window big enough for a job's chunk."""
    from agent_budget.models.local import LocalChatModel

    if "model" not in _local:
        _local["model"] = LocalChatModel(n_ctx=4096, max_tokens=48, n_threads=1)
    return _local["model"]


def cloud_price() -> tuple[Any, Any]:
    from agent_budget.models import model_price

    price = model_price(CLOUD_PRICE)  # USD per million tokens, from LiteLLM's price map
    return price.input_per_token * 1_000_000, price.output_per_token * 1_000_000


class Scripted:
    """An OpenAI-compatible endpoint answering each request with the next scripted reply:
    a string (the message content) or "hang" (no reply for `hang_seconds`)."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.bodies: list[dict[str, Any]] = []
        self.hang_seconds = 4.0
        self.respond: Any = None
        """When set, ``respond(body) -> str`` answers each request (in place of the script):
        for runs whose order of requests is not fixed."""
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with outer._lock:
                    outer.bodies.append(body)
                    if outer.respond is not None:
                        action = outer.respond(body)
                    else:
                        action = outer.script.pop(0) if outer.script else "{}"
                if action == "hang":
                    time.sleep(outer.hang_seconds)
                    return
                prompt = sum(len(str(m.get("content"))) for m in body["messages"]) // 4 + 1
                reply = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "scripted",
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": action},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt,
                            "completion_tokens": 20,
                            "total_tokens": prompt + 20,
                        },
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
