"""Fixtures for the model layer: the shipped GGUF, a real llama.cpp server, a stand-in server.

Nothing here reaches the network: servers listen on 127.0.0.1 at a free port.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent_budget.models.catalog import locate

N_CTX = 2048


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return locate("local:smollm2-135m")[1]


_shared: dict[str, Any] = {}


def shared_local_model() -> Any:
    """One LocalChatModel for the whole session (the GGUF is loaded once per process)."""
    from agent_budget.models.local import LocalChatModel

    if "model" not in _shared:
        _shared["model"] = LocalChatModel(n_ctx=N_CTX, max_tokens=48)
    return _shared["model"]


@pytest.fixture
def local_model() -> Any:
    return shared_local_model()


@pytest.fixture(scope="session")
def llama_server(smollm2_path: Path) -> Iterator[str]:
    """A real OpenAI-compatible server (`python -m llama_cpp.server`) on 127.0.0.1."""
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"llama_server_{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(smollm2_path),
                "--model_alias",
                "smollm2",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                str(N_CTX),
                "--n_threads",
                "1",
                "--verbose",
                "False",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(base + "/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def completion_body(
    content: str = "OK", prompt_tokens: int = 12, completion_tokens: int = 3
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "standin",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class StandIn:
    """A scripted OpenAI-compatible endpoint: each request takes the next action
    ("429", "hang" or "ok"); when the script runs out it answers "ok"."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.requests = 0
        self.hang_seconds = 3.0
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with standin._lock:
                    standin.requests += 1
                    action = standin.script.pop(0) if standin.script else "ok"
                if action == "hang":
                    time.sleep(standin.hang_seconds)
                    return
                if action == "429":
                    body = json.dumps(
                        {
                            "error": {
                                "message": "rate limited",
                                "type": "rate_limit",
                                "code": "rate_limit_exceeded",
                            }
                        }
                    ).encode()
                    self.send_response(429)
                    self.send_header("Retry-After", "0")
                else:
                    body = json.dumps(completion_body()).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def standin() -> Iterator[StandIn]:
    server = StandIn()
    try:
        yield server
    finally:
        server.close()
