"""Minion: the local model holds the context and chats with the remote model, which never
sees it; plus the two single-sided baselines (remote only, local only).

Each remote turn is reserved before it is made. When the turn after the next could not be
paid, the remote model is told to answer now; when not even the next can be paid, the run
ends with the local model's last answer, flagged cut short.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import ValidationError

from agent_budget.delegation.calls import Caller, estimate_tokens
from agent_budget.delegation.chunking import chunk_text, rank_chunks, terms
from agent_budget.delegation.jobs import (
    LOCAL_SYSTEM,
    local_format,
    majority_answer,
    parse_local,
    run_jobs,
)
from agent_budget.delegation.result import DelegationResult, JobRecord, RoundRecord, begin
from agent_budget.delegation.schema import MinionTurn, RemoteJson, Task, loads, response_format
from agent_budget.tracker import BudgetTracker

MINION_SYSTEM = (
    "You answer a question about a document you cannot see. A small on-device model has it: "
    "ask it one simple, specific question per turn. Reply with JSON: 'message' (your question "
    "for it) and 'final_answer' (a short answer once you know it, else null)."
)
REMOTE_ONLY_SYSTEM = "Answer the question from the document. Reply with the answer only, briefly."


def local_window_chars(local: BaseChatModel, reserve_tokens: int) -> int:
    n_ctx = int(getattr(local, "n_ctx", 0) or 8192)
    return max(500, (n_ctx - reserve_tokens - 300) * 3)


@dataclass
class Minion:
    """The Minion protocol: a chat between ``remote`` (asks) and ``local`` (reads)."""

    local: BaseChatModel
    remote: BaseChatModel
    max_rounds: int = 3
    local_max_tokens: int = 96
    remote_max_tokens: int = 256
    max_reply_chars: int = 400
    remote_json: RemoteJson = "json_schema"

    def turn_worst_case(self, caller: Caller, question: str, r: int) -> Any:
        transcript = r * (self.max_reply_chars + 300 + 100)
        chars = len(MINION_SYSTEM) + len(question) + transcript + 300
        chars += len(json.dumps(response_format(MinionTurn, self.remote_json)))
        prompt = estimate_tokens(chars, 2 * r + 2)
        return caller.worst_case("remote", prompt, self.remote_max_tokens, f"round-{r}/remote")

    def context(self, question: str, documents: Sequence[str], ask: str) -> str:
        """The whole context when it fits the local window, else its chunks most relevant
        to the remote's question and the user's, in document order."""
        text = "\n\n".join(d for d in documents if d.strip())
        window = local_window_chars(self.local, self.local_max_tokens)
        if len(text) <= window:
            return text
        size = min(2000, window)
        chunks = [
            c
            for i, d in enumerate(documents)
            for c in chunk_text(d, by="paragraphs", size=size, overlap=100, doc=i)
        ]
        best = rank_chunks(chunks, terms(ask) + terms(question), max(1, window // size))
        return "\n...\n".join(c.text for c in best)

    def run(
        self,
        question: str,
        documents: Sequence[str],
        tracker: BudgetTracker,
        *,
        reason: str = "minion",
    ) -> DelegationResult:
        caller, result, ok = begin(
            "minion", reason, question, documents, tracker, local=self.local, remote=self.remote
        )
        if not ok:
            return result
        chat: list[BaseMessage] = [
            SystemMessage(content=MINION_SYSTEM),
            HumanMessage(content=f"Question: {question}"),
        ]
        last_local: str | None = None
        for r in range(1, self.max_rounds + 1):
            held = result.hold(caller, [self.turn_worst_case(caller, question, r)], f"turn {r}")
            if held is None:
                break
            record = RoundRecord(r)
            result.rounds.append(record)
            last = r == self.max_rounds or not tracker.fits(
                self.turn_worst_case(caller, question, r + 1)
            )
            if last:
                chat.append(HumanMessage(content="This is your last turn: give final_answer."))
            reply = caller.call(
                "remote",
                chat,
                node=f"round-{r}/remote",
                max_tokens=self.remote_max_tokens,
                response_format=response_format(MinionTurn, self.remote_json),
                held=held[0],
            )
            if reply.text is None:
                record.errors.append(f"remote call failed: {reply.record.error}")
                result.cut_short, result.stop_reason = True, "remote_error"
                break
            try:
                turn = MinionTurn.model_validate(loads(reply.text))
            except (ValidationError, ValueError) as exc:
                record.errors.append(f"remote turn is not valid JSON: {exc}"[:300])
                turn = MinionTurn(message=question, final_answer=None)
            record.decision = turn.model_dump()
            if turn.final_answer and turn.final_answer.strip():
                result.answer = turn.final_answer.strip()
                result.stop_reason = "answered"
                break
            if last:
                result.stop_reason = "max_rounds" if r == self.max_rounds else "budget"
                result.cut_short = r < self.max_rounds
                break
            ask = turn.message.strip() or question
            chat.append(AIMessage(content=reply.text))
            job = JobRecord(r, 1, ask, "context")
            local = caller.call(
                "local",
                [
                    SystemMessage(content=LOCAL_SYSTEM),
                    HumanMessage(
                        content=f"Excerpt:\n{self.context(question, documents, ask)}\n\nTask: {ask}"
                    ),
                ],
                node=f"round-{r}/local",
                max_tokens=self.local_max_tokens,
                response_format=local_format(),
            )
            if local.text is None:
                job.error = local.record.error or local.record.outcome
                answer_text = "(the local model could not answer)"
            else:
                try:
                    out = parse_local(local.text)
                    job.answer, job.citation, job.explanation = (
                        out.answer,
                        out.citation,
                        out.explanation,
                    )
                    last_local = out.answer or last_local
                    answer_text = json.dumps(out.model_dump(), ensure_ascii=False)
                except ValueError as exc:
                    job.error = str(exc)
                    local.record.outcome = "invalid"
                    answer_text = "(the local model's reply was not valid)"
            record.jobs.append(job)
            chat.append(HumanMessage(content=f"Local model: {answer_text[: self.max_reply_chars]}"))
        else:
            result.stop_reason = "max_rounds"
        if result.answer is None:
            result.answer = last_local
        return result.finish()


def remote_only(
    question: str,
    documents: Sequence[str],
    remote: BaseChatModel,
    tracker: BudgetTracker,
    *,
    max_tokens: int = 256,
    reason: str = "remote_only",
) -> DelegationResult:
    """The cloud model reads everything in one call (the baseline Minion/MinionS save on)."""
    caller, result, ok = begin(
        "remote_only", reason, question, documents, tracker, local=None, remote=remote
    )
    if not ok:
        return result
    text = "\n\n".join(documents)
    messages: list[BaseMessage] = [
        SystemMessage(content=REMOTE_ONLY_SYSTEM),
        HumanMessage(content=f"Document:\n{text}\n\nQuestion: {question}"),
    ]
    result.rounds.append(RoundRecord(1))
    reply = caller.call("remote", messages, node="round-1/remote", max_tokens=max_tokens)
    if reply.text is None:
        result.cut_short = True
        result.stop_reason = "budget" if reply.record.outcome == "refused" else "remote_error"
        result.errors.append(reply.record.error or reply.record.outcome)
    else:
        result.answer = reply.text.strip() or None
    return result


def local_only(
    question: str,
    documents: Sequence[str],
    local: BaseChatModel,
    tracker: BudgetTracker,
    *,
    max_jobs: int = 8,
    max_tokens: int = 96,
    reason: str = "local_only",
) -> DelegationResult:
    """The on-device model reads the chunks most relevant to the question; the answer most
    jobs agree on wins. Nothing is paid to the cloud."""
    caller, result, ok = begin(
        "local_only", reason, question, documents, tracker, local=local, remote=None
    )
    if not ok:
        return result
    size = min(local_window_chars(local, max_tokens), 12000)
    chunks = [
        c
        for i, d in enumerate(documents)
        for c in chunk_text(d, by="paragraphs", size=size, overlap=min(200, size // 10), doc=i)
    ]
    task = Task(task=question)
    jobs = [(c, task) for c in rank_chunks(chunks, terms(question), max_jobs)]
    record = RoundRecord(
        1, jobs=run_jobs(caller, jobs, round_no=1, max_tokens=max_tokens, fmt=local_format())
    )
    result.rounds.append(record)
    result.answer = majority_answer(record.jobs)
    return result.finish()
