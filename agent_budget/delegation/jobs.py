"""Local jobs: one (chunk, task, advice) read by the on-device model, its reply held to
``{explanation, citation, answer | null}`` by a JSON-schema grammar, parsed and recorded."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import ValidationError

from agent_budget.delegation.calls import Caller
from agent_budget.delegation.chunking import Chunk
from agent_budget.delegation.result import JobRecord
from agent_budget.delegation.schema import LocalOutput, Task

LOCAL_SYSTEM = (
    "You read one excerpt of a long document and do one task about it. Reply with JSON: "
    '"explanation" (one short sentence), "citation" (words copied exactly from the excerpt '
    'that support the answer, or ""), "answer" (short; null if the excerpt does not contain '
    "it). Do not guess."
)


def local_format(
    max_explanation: int = 90, max_citation: int = 90, max_answer: int = 60
) -> dict[str, Any]:
    """The local reply's schema with string lengths capped, so a small model cannot ramble
    past ``max_tokens`` and leave a JSON object unclosed."""
    schema = {
        "type": "object",
        "properties": {
            "explanation": {"type": "string", "maxLength": max_explanation},
            "citation": {"type": "string", "maxLength": max_citation},
            "answer": {"anyOf": [{"type": "string", "maxLength": max_answer}, {"type": "null"}]},
        },
        "required": ["explanation", "citation", "answer"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "LocalOutput", "schema": schema}}


def parse_local(text: str) -> LocalOutput:
    """A local reply as `LocalOutput`; raises ValueError naming what was wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"local output is not JSON ({exc.msg} at {exc.pos}): {text[:120]!r}"
        ) from None
    try:
        out = LocalOutput.model_validate(data)
    except ValidationError as exc:
        raise ValueError(
            f"local output does not match the schema: {exc.errors()[0]['msg']}"
        ) from None
    if out.answer is not None and out.answer.strip().lower() in (
        "",
        "null",
        "none",
        "n/a",
        "unknown",
    ):
        out.answer = None
    return out


def job_messages(chunk: Chunk, task: Task) -> list[Any]:
    advice = f"\nAdvice: {task.advice}" if task.advice else ""
    return [
        SystemMessage(content=LOCAL_SYSTEM),
        HumanMessage(content=f"Excerpt:\n{chunk.text}\n\nTask: {task.task}{advice}"),
    ]


def run_jobs(
    caller: Caller,
    jobs: list[tuple[Chunk, Task]],
    *,
    round_no: int,
    max_tokens: int,
    fmt: dict[str, Any],
    concurrency: int = 1,
    on_job: Callable[[JobRecord], None] | None = None,
) -> list[JobRecord]:
    """Run the jobs on the local model, ``concurrency`` at a time. Serial is the default:
    one loaded llama.cpp model evaluates one prompt at a time, so threads measured 1.04x and
    a process pool 0.67x of serial here (benchmarks/minions_concurrency.py); more than 1
    helps a local model served elsewhere, with parallel slots."""

    def one(index: int, chunk: Chunk, task: Task) -> JobRecord:
        record = JobRecord(round_no, index, task.task, chunk.label)
        reply = caller.call(
            "local",
            job_messages(chunk, task),
            node=f"round-{round_no}/job-{index}",
            max_tokens=max_tokens,
            response_format=fmt,
        )
        if reply.text is None:
            record.error = reply.record.error or reply.record.outcome
        else:
            try:
                out = parse_local(reply.text)
                record.answer, record.explanation = out.answer, out.explanation
                record.citation = out.citation
            except ValueError as exc:
                record.error = str(exc)
                reply.record.outcome = "invalid"
        if on_job is not None:
            on_job(record)
        return record

    if concurrency <= 1:
        return [one(i, c, t) for i, (c, t) in enumerate(jobs, 1)]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(one, i, c, t) for i, (c, t) in enumerate(jobs, 1)]
        return [f.result() for f in futures]


def majority_answer(records: list[JobRecord]) -> str | None:
    """The answer most jobs gave (first seen wins a tie): the local-only best guess."""
    answers = [r.answer.strip() for r in records if r.answer and r.answer.strip()]
    if not answers:
        return None
    counts = Counter(a.lower() for a in answers)
    top = max(counts.values())
    return next(a for a in answers if counts[a.lower()] == top)
