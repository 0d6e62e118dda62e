"""Load a GGUF once per process and share it: one `llama_cpp.Llama` per (path, n_ctx).

Loading is slow and a Llama is not safe to use from two threads at once, so each loaded model
carries the lock every generation holds. llama_cpp is imported here, lazily, and nowhere at
module import time.

Determinism: llama-cpp-python reuses the KV cache of the longest common prefix with the last
prompt and evaluates only the rest, in a batch that starts wherever the prefix ended. Logits of
the same prompt then depend on what was asked before (different batch splits, different
rounding), and a greedy answer can change. Here every prompt is evaluated in blocks of
`PREFIX_BLOCK` tokens aligned at position 0, and a cached prefix is kept only as far as it was
itself evaluated as whole aligned blocks of the same tokens: the computation is then the one a
fresh evaluation would do, so the answer is the same whatever came before, while a conversation
that continues still skips the blocks it already paid for.

A few such prefixes (of prompts that evaluated 2+ new blocks) are also kept as saved KV states
(`SAVED_PREFIXES`): a prompt that goes back to an earlier one (an agent's next run on the same
system prompt and tool list after a final answer asked without tools, or a second agent on
the same task) restores the state instead of evaluating thousands of tokens again. A restored
prefix was computed as whole aligned blocks, so the determinism above holds.
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent_budget.models.errors import InvalidModelFile, ModelNotAvailable

GGUF_MAGIC = b"GGUF"
# A GGUF declaring more than this many tensors or metadata keys is corrupt, not large.
_MAX_COUNT = 1 << 24

# Prompt tokens are evaluated in aligned blocks of this size (llama.cpp's n_batch); a cached
# prefix is reused in whole blocks only. benchmarks/local_model.py measures the trade-off.
PREFIX_BLOCK = 256

# Aligned prefixes kept as saved KV states per loaded model (each is the KV of its tokens plus
# llama-cpp-python's logits buffer: ~110 MB for 2,500 tokens of SmolLM2-135M at n_batch 256).
SAVED_PREFIXES = 3
# A prefix shorter than this many blocks is cheaper to evaluate again than to keep.
_MIN_SAVED_BLOCKS = 2

# Turn-end markers of common chat templates: generation stops on whichever the template uses.
_TURN_ENDS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "</s>")

# ChatML: used when a GGUF carries no chat template of its own (base models).
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelNotAvailable(
            "on-device models need llama-cpp-python, which is not installed. Install it: "
            'pip install "agent-budget[local]"'
        ) from exc
    return llama_cpp


def check_gguf(path: Path) -> None:
    """Refuse a file that is not a GGUF before llama.cpp sees it (its errors say little)."""
    if not path.is_file():
        raise ModelNotAvailable(f"no model file at {path}.")
    size = path.stat().st_size
    with path.open("rb") as fh:
        header = fh.read(24)
    if len(header) < 24 or header[:4] != GGUF_MAGIC:
        raise InvalidModelFile(
            f"{path} is not a GGUF model file (it starts with {header[:4]!r}, {size} bytes). "
            "Re-download or re-install the model; agent-budget loads GGUF files only."
        )
    version, n_tensors, n_kv = struct.unpack("<IQQ", header[4:24])
    if version not in (2, 3) or n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
        raise InvalidModelFile(
            f"{path} has a corrupt GGUF header (version {version}, {n_tensors} tensors, "
            f"{n_kv} metadata keys). Re-download or re-install the model."
        )


@dataclass
class LoadedModel:
    """A loaded GGUF, its chat formatter and the lock that serialises its use."""

    llama: Any
    path: Path
    n_ctx: int
    load_seconds: float
    formatter: Any
    stop: list[str]
    has_own_template: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    aligned: int = 0
    """Leading cached tokens whose KV was computed as whole aligned blocks (reusable as is)."""
    saved: list[tuple[np.ndarray[Any, Any], Any]] = field(default_factory=list)
    """(aligned prefix tokens, llama state), most recently used last."""
    kept: int = 0
    """Cached tokens the prompt being evaluated reused."""

    def begin(self, tokens: list[int], *, reuse: bool = True) -> int:
        """Set the KV cache up for `tokens`; returns how many cached tokens are reused.

        Call with `lock` held, right before `create_completion(prompt=tokens)`, and call
        `end(tokens)` once its prompt has been evaluated.
        """
        llama = self.llama
        block = int(llama.n_batch)
        keep = 0
        limit = min(self.aligned, int(llama.n_tokens), len(tokens) - 1) if reuse else 0
        if limit > 0:
            keep = _common(np.asarray(llama.input_ids[:limit]), tokens, block)
        best, best_keep = None, keep
        for i, (prefix, _) in enumerate(self.saved if reuse else ()):
            found = _common(prefix[: len(tokens) - 1], tokens, block)
            if found > best_keep:
                best, best_keep = i, found
        if best is not None:
            entry = self.saved.pop(best)
            self.saved.append(entry)
            llama.load_state(entry[1])
            keep = best_keep
        self.aligned = 0  # until this evaluation is done, nothing cached is known good
        self.kept = keep
        if keep == 0:
            llama.reset()
        else:
            llama.n_tokens = keep  # generate() keeps this prefix and drops the rest of the cache
        return keep

    def end(self, tokens: list[int]) -> None:
        """The prompt's whole blocks are now in the cache; generated tokens never are reused.
        A prompt that evaluated at least `_MIN_SAVED_BLOCKS` new blocks (a conversation's
        start, what a later one may come back to) saves its prefix unless a saved state covers
        it; a conversation that continues by a turn does not pay for a copy every time."""
        block = int(self.llama.n_batch)
        self.aligned = len(tokens) // block * block
        if self.aligned - self.kept < _MIN_SAVED_BLOCKS * block:
            return
        prefix = np.asarray(tokens[: self.aligned])
        for i, (kept, _) in enumerate(self.saved):
            if len(kept) >= len(prefix) and np.array_equal(kept[: len(prefix)], prefix):
                self.saved.append(self.saved.pop(i))
                return
        self.saved = [e for e in self.saved if not _extends(prefix, e[0])]
        self.saved.append((prefix, self.llama.save_state()))
        del self.saved[:-SAVED_PREFIXES]

    def render(self, messages: list[dict[str, Any]]) -> list[int]:
        """Chat messages -> prompt tokens, through the GGUF's own chat template."""
        result = self.formatter(messages=messages)
        return list(
            self.llama.tokenize(
                result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
            )
        )

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def _common(cached: np.ndarray[Any, Any], tokens: list[int], block: int) -> int:
    """Leading tokens ``cached`` shares with ``tokens``, in whole blocks."""
    n = min(len(cached), len(tokens))
    same = cached[:n] == np.asarray(tokens[:n])
    found = n if bool(same.all()) else int(np.argmin(same))
    return found // block * block


def _extends(prefix: np.ndarray[Any, Any], kept: np.ndarray[Any, Any]) -> bool:
    """``prefix`` continues ``kept`` (so the state of ``prefix`` serves whatever ``kept`` did)."""
    return len(kept) <= len(prefix) and np.array_equal(prefix[: len(kept)], kept)


_loaded: dict[tuple[str, int, int], LoadedModel] = {}
_loading_lock = threading.Lock()


def load(
    path: Path, n_ctx: int, n_threads: int | None = None, n_batch: int = PREFIX_BLOCK
) -> LoadedModel:
    """The process-wide loaded model for (path, n_ctx, n_batch), loading it on first use."""
    key = (str(path.resolve()), n_ctx, n_batch)
    found = _loaded.get(key)
    if found is not None:
        return found
    with _loading_lock:
        found = _loaded.get(key)
        if found is not None:
            return found
        check_gguf(path)
        llama_cpp = import_llama_cpp()
        start = time.perf_counter()
        try:
            llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=n_batch,
                n_threads=n_threads,
                n_gpu_layers=0,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise InvalidModelFile(
                f"llama.cpp could not load {path} ({exc}). The file is damaged or uses a "
                "format this llama-cpp-python does not support; re-install the model or "
                "upgrade llama-cpp-python."
            ) from exc
        seconds = time.perf_counter() - start
        loaded = _with_formatter(llama_cpp, llama, path, n_ctx, seconds)
        _loaded[key] = loaded
        return loaded


def _with_formatter(llama_cpp: Any, llama: Any, path: Path, n_ctx: int, secs: float) -> Any:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    eos_id, bos_id = llama.token_eos(), llama.token_bos()
    eos = llama._model.token_get_text(eos_id) if eos_id != -1 else ""
    bos = llama._model.token_get_text(bos_id) if bos_id != -1 else ""
    source = template or CHATML_TEMPLATE
    formatter = Jinja2ChatFormatter(
        template=source, eos_token=eos, bos_token=bos, stop_token_ids=[eos_id]
    )
    stop = [eos] if eos else []
    stop += [t for t in _TURN_ENDS if t in source and t not in stop]
    return LoadedModel(llama, path, n_ctx, secs, formatter, stop, template is not None)


def loaded_models() -> list[LoadedModel]:
    return list(_loaded.values())
