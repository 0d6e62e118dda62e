"""llama.cpp grammars for JSON output, structured-output parsing, and a confidence probe."""

from __future__ import annotations

import json
import math
from operator import itemgetter
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema
from pydantic import BaseModel


def grammar_for(
    schema_json: str | None, response_format: dict[str, Any] | None, gbnf: str | None
) -> Any:
    """The grammar a reply must follow: a tool schema, a response_format, a raw GBNF, or none."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if schema_json is not None:
        return LlamaGrammar.from_json_schema(schema_json, verbose=False)
    if gbnf:
        return LlamaGrammar.from_string(gbnf, verbose=False)
    if not response_format or response_format.get("type") in (None, "text"):
        return None
    kind = response_format.get("type")
    schema = response_format.get("schema")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema", schema)
    elif kind != "json_object":
        raise ValueError(
            f"response_format type {kind!r} is not supported; use 'json_object' or 'json_schema'."
        )
    if schema is None:
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)


def structured_output(
    model: BaseChatModel, schema: dict[str, Any] | type, *, method: str, include_raw: bool
) -> Runnable[Any, Any]:
    """`with_structured_output` through a response_format grammar, as OpenAI's json_schema."""
    is_pydantic = isinstance(schema, type) and issubclass(schema, BaseModel)
    if method == "json_mode":
        response_format: dict[str, Any] = {"type": "json_object"}
    else:
        plain = isinstance(schema, dict) and "properties" in schema and "function" not in schema
        json_schema = dict(schema) if plain else convert_to_json_schema(schema)  # type: ignore[arg-type]
        name = json_schema.get("title", "output")
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": json_schema, "strict": True},
        }
    llm = model.bind(response_format=response_format)
    parser: Runnable[Any, Any] = (
        PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
        if is_pydantic
        else JsonOutputParser()
    )
    if not include_raw:
        return llm | parser
    parsed = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    fallback = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")


class ConfidenceProbe:
    """A llama.cpp logits processor that counts sampled tokens and their probabilities.

    Called once per sampled token with the logits that produced it; the token chosen from
    step t is the last input id at step t+1, so its log-probability is read one step late
    (the final token's is unknown and left out).
    """

    def __init__(self) -> None:
        self.tokens = 0
        self._logprob_sum = 0.0
        self._scored = 0
        self._last: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        if self._last is not None and len(input_ids):
            self._logprob_sum += float(self._last[int(input_ids[-1])])
            self._scored += 1
        top = float(np.max(scores))
        self._last = scores - (top + math.log(float(np.sum(np.exp(scores - top)))))
        self.tokens += 1
        return scores

    def as_list(self) -> Any:
        from llama_cpp import LogitsProcessorList

        return LogitsProcessorList([self])

    def summary(self) -> dict[str, float]:
        if not self._scored:
            return {}
        mean = self._logprob_sum / self._scored
        return {"mean_logprob": round(mean, 4), "confidence": round(math.exp(mean), 4)}
