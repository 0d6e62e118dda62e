"""Signals a router decides on: how hard a request looks, how sure a cheap answer looks.

Both are plain functions so a user can pass their own (a trained classifier as in RouteLLM,
an LLM judge as in AutoMix, a regex for their domain). The defaults need no model and work
with the shipped on-device models: they are heuristics, not learned scores.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agent_budget.models._local_prompt import text_of

DifficultyScorer = Callable[[Sequence[BaseMessage]], float]
"""Messages -> difficulty in [0, 1]; above the router's threshold goes to the expensive model."""
Verifier = Callable[[Sequence[BaseMessage], AIMessage], float]
"""(messages, cheap reply) -> confidence in [0, 1]; below the threshold escalates."""

_HARD_WORDS = re.compile(
    r"\b(prove|proof|derive|explain why|step[- ]by[- ]step|analy[sz]e|compare|trade-?offs?|"
    r"optimi[sz]e|algorithm|implement|write (a |the )?(code|function|program|essay)|debug|"
    r"refactor|calculate|compute|estimate|plan|design|translate|summari[sz]e|why|how many)\b",
    re.IGNORECASE,
)
_MATH = re.compile(r"\d+(\.\d+)?\s*[-+*/^%×÷]\s*\d+|[=<>]\s*\d|\bsqrt\b|\bintegral\b")
_HEDGES = re.compile(
    r"\b(i don'?t know|i am not sure|i'm not sure|not certain|cannot (answer|determine)|"
    r"i can'?t|unable to|as an ai|no information|i do not have)\b",
    re.IGNORECASE,
)


def last_user_text(messages: Sequence[BaseMessage]) -> str:
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            return text_of(m.content)
    return text_of(messages[-1].content) if messages else ""


def heuristic_difficulty(messages: Sequence[BaseMessage]) -> float:
    """Difficulty from the last user message: length, reasoning verbs, arithmetic, several
    questions, code, and a long conversation each add to a score capped at 1."""
    text = last_user_text(messages)
    words = len(text.split())
    score = min(words / 120, 0.35)
    score += min(len(_HARD_WORDS.findall(text)) * 0.2, 0.4)
    score += min(len(_MATH.findall(text)) * 0.15, 0.3)
    score += 0.1 * max(text.count("?") - 1, 0)
    if "```" in text or re.search(r"\bdef |\bclass |;\s*$", text, re.MULTILINE):
        score += 0.25
    score += min(max(len(messages) - 2, 0) * 0.02, 0.15)
    return round(min(score, 1.0), 4)


def _repetition(text: str) -> float:
    """Share of repeated word trigrams: a small model stuck in a loop scores high."""
    words = text.lower().split()
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    if len(grams) < 4:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def default_verifier(messages: Sequence[BaseMessage], reply: AIMessage) -> float:
    """Confidence in a cheap reply: its mean token probability when the model reports one
    (`LocalChatModel` does), lowered for an empty, cut-off, hedging or looping answer."""
    if reply.invalid_tool_calls:
        return 0.0
    if reply.tool_calls:
        return 0.9  # produced under a schema grammar: well-formed by construction
    text = text_of(reply.content).strip()
    if not text:
        return 0.0
    meta = reply.response_metadata or {}
    confidence = float(meta.get("confidence", 0.7))
    if meta.get("finish_reason") == "length":
        confidence *= 0.6
    if _HEDGES.search(text):
        confidence *= 0.3
    confidence *= 1.0 - min(_repetition(text), 0.8)
    return round(max(0.0, min(confidence, 1.0)), 4)
