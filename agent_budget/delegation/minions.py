"""MinionS: the remote model plans jobs, the local model runs them over chunks, the remote
model synthesizes; round after round while the budget can pay for one.

A round is paid for before it starts: its plan call and its synthesis call are reserved
together at their worst case (all or none), so a round that starts can finish. When the
next round cannot be paid, the run ends with the best answer so far, flagged cut short.
The remote model sees the question, the plan it wrote and the jobs' short outputs: never
the documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import ValidationError

from agent_budget.delegation.calls import Caller, estimate_tokens
from agent_budget.delegation.chunking import Chunk, chunk_text, rank_chunks, terms
from agent_budget.delegation.jobs import local_format, majority_answer, run_jobs
from agent_budget.delegation.result import DelegationResult, JobRecord, RoundRecord, begin
from agent_budget.delegation.schema import (
    ChunkPlan,
    Decision,
    JobPlan,
    RemoteJson,
    Task,
    loads,
    response_format,
)
from agent_budget.tracker import BudgetTracker

PLAN_SYSTEM = (
    "You lead a small on-device model that reads a long document you cannot see. Write a job "
    "plan as JSON: 'tasks' (1-{max_tasks} short, simple instructions, each run on the chunks "
    "most likely to matter; 'advice' says how to spot the answer; 'keywords' lists words such "
    "chunks contain) and 'chunking' ({{'by': 'chars'|'paragraphs'|'pages', 'size': characters "
    "per chunk, at most {max_size}, 'overlap': fewer than size}})."
)
SYNTH_SYSTEM = (
    "You lead a small on-device model that read a long document you cannot see, chunk by "
    "chunk. Below are its findings (they may be wrong or contradict each other). Reply with "
    "JSON: 'decision' ('answer' if the findings answer the question, else 'another_round'), "
    "'answer' (your best answer so far, short), 'feedback' (what to look for next)."
)
_PLAN_OVERHEAD = 400  # characters of framing around the question in the plan prompt
_OUTPUT_OVERHEAD = 80  # characters of framing per job output in the synthesis prompt


@dataclass
class MinionS:
    """The MinionS protocol between ``local`` and ``remote`` chat models.

    >>> result = MinionS(local=resolve("local:smollm2-135m"), remote=cloud).run(q, [text])
    """

    local: BaseChatModel
    remote: BaseChatModel
    max_rounds: int = 3
    min_rounds: int = 1
    """Rounds to run before the remote may answer (a verification pass when > 1)."""
    max_jobs: int = 8
    """Local jobs per round at most: the best-ranked chunks of each task run first."""
    max_tasks: int = 4
    max_chunk: int | None = None
    """Largest chunk (characters) a plan may ask for; None: what fits the local window."""
    chunking: ChunkPlan | None = None
    """Default chunking (the plan may change it); None: paragraphs sized to the local window."""
    local_max_tokens: int = 96
    remote_max_tokens: int = 384
    max_output_chars: int = 300
    """Characters of each job's output the remote sees (answer, citation, explanation)."""
    max_outputs: int = 10
    """Job outputs shown to the remote per round (those with an answer first)."""
    remote_json: RemoteJson = "json_schema"
    concurrency: int = 1
    on_job: Callable[[JobRecord], None] | None = None

    # --- sizes --------------------------------------------------------------------------

    def max_chunk_chars(self) -> int:
        """Characters a job's chunk may have to fit the local window (3 characters a token,
        a low estimate, so a chunk fits even in digits and code)."""
        n_ctx = int(getattr(self.local, "n_ctx", 0) or 8192)
        fits = max(500, (n_ctx - self.local_max_tokens - 250) * 3)
        return fits if self.max_chunk is None else min(fits, self.max_chunk)

    def default_chunking(self) -> ChunkPlan:
        if self.chunking is not None:
            return self.chunking
        size = self.max_chunk_chars()
        return ChunkPlan(by="paragraphs", size=size, overlap=min(200, size // 10))

    def _plan_format(self) -> dict[str, Any] | None:
        return response_format(JobPlan, self.remote_json)

    def plan_prompt_chars(self, question: str, feedback: str) -> int:
        system = PLAN_SYSTEM.format(max_tasks=self.max_tasks, max_size=self.max_chunk_chars())
        return len(system) + len(question) + min(len(feedback), 1000) + _PLAN_OVERHEAD

    def synth_prompt_chars(self, question: str) -> int:
        per = self.max_output_chars + _OUTPUT_OVERHEAD
        return len(SYNTH_SYSTEM) + len(question) + self.max_outputs * per + _PLAN_OVERHEAD

    def round_worst_case(self, caller: Caller, question: str, feedback: str, r: int) -> list[Any]:
        """The round's two remote calls at their worst case: what must fit before it starts."""
        plan_fmt, synth_fmt = (
            len(json.dumps(self._plan_format())),
            len(json.dumps(response_format(Decision, self.remote_json))),
        )
        plan = estimate_tokens(self.plan_prompt_chars(question, feedback) + plan_fmt, 2)
        synth = estimate_tokens(self.synth_prompt_chars(question) + synth_fmt, 2)
        return [
            caller.worst_case("remote", plan, self.remote_max_tokens, f"round-{r}/plan"),
            caller.worst_case("remote", synth, self.remote_max_tokens, f"round-{r}/synthesize"),
        ]

    def first_round_usd(self, tracker: BudgetTracker, question: str) -> Any:
        """What the first round may cost at most (USD): a budget below it runs no round."""
        caller = Caller(tracker, local=self.local, remote=self.remote)
        return sum(c.usd for c in self.round_worst_case(caller, question, "", 1))

    # --- the protocol -------------------------------------------------------------------

    def run(
        self,
        question: str,
        documents: Sequence[str],
        tracker: BudgetTracker,
        *,
        reason: str = "minions",
    ) -> DelegationResult:
        caller, result, ok = begin(
            "minions", reason, question, documents, tracker, local=self.local, remote=self.remote
        )
        if not ok:
            return result
        feedback = ""
        all_jobs: list[JobRecord] = []
        for r in range(1, self.max_rounds + 1):
            held = result.hold(
                caller, self.round_worst_case(caller, question, feedback, r), f"round {r}"
            )
            if held is None:
                break
            plan_res, synth_res = held
            record = RoundRecord(r)
            result.rounds.append(record)
            plan = self._plan(caller, question, feedback, r, plan_res, record)
            if plan is None:  # the remote failed mid-round
                synth_res.release()
                result.cut_short, result.stop_reason = True, "remote_error"
                break
            jobs = self._jobs(plan, question, documents)
            record.jobs = run_jobs(
                caller,
                jobs,
                round_no=r,
                max_tokens=self.local_max_tokens,
                fmt=local_format(),
                concurrency=self.concurrency,
                on_job=self.on_job,
            )
            all_jobs.extend(record.jobs)
            broke = r < self.max_rounds and not self._next_round_fits(caller, question, r)
            last = r == self.max_rounds or broke
            decision = self._synthesize(caller, question, record, r, synth_res, last, result)
            if decision is None:
                result.cut_short, result.stop_reason = True, "remote_error"
                break
            if broke and decision.decision == "another_round":
                # The remote wanted more than the budget can pay: its answer is a best guess.
                result.cut_short, result.stop_reason = True, "budget"
            if decision.answer.strip():
                result.answer = decision.answer.strip()
            feedback = decision.feedback
            if last and r >= self.min_rounds:
                decision.decision = "answer"
            record.decision = decision.model_dump()
            wants_more = decision.decision == "another_round" or r < self.min_rounds
            if not wants_more:
                if not result.cut_short:
                    result.stop_reason = "answered"
                break
            if r == self.max_rounds:
                result.stop_reason = "max_rounds"
        if result.answer is None:
            result.answer = majority_answer(all_jobs)
        return result.finish()

    def _next_round_fits(self, caller: Caller, question: str, r: int) -> bool:
        plan, synth = self.round_worst_case(caller, question, "x" * 1000, r + 1)
        both = replace(
            plan,
            usd=plan.usd + synth.usd,
            input_tokens=plan.input_tokens + synth.input_tokens,
            output_tokens=plan.output_tokens + synth.output_tokens,
        )
        return caller.tracker.fits(both)

    def _plan(
        self,
        caller: Caller,
        question: str,
        feedback: str,
        r: int,
        held: Any,
        record: RoundRecord,
    ) -> JobPlan | None:
        """The remote's plan; one that does not validate is sent back once with the error,
        then reported and replaced by the default plan (the question as the one task)."""
        system = PLAN_SYSTEM.format(max_tasks=self.max_tasks, max_size=self.max_chunk_chars())
        prompt = f"Question: {question}"
        if feedback:
            prompt += f"\nWhat the last round missed: {feedback[:1000]}"
        prompt += f"\nReply with the JSON plan for round {r}."
        messages: list[BaseMessage] = [SystemMessage(content=system), HumanMessage(content=prompt)]
        fmt = self._plan_format()
        reply = caller.call(
            "remote",
            messages,
            node=f"round-{r}/plan",
            max_tokens=self.remote_max_tokens,
            response_format=fmt,
            held=held,
        )
        if reply.text is None:
            record.errors.append(f"plan call failed: {reply.record.error}")
            return None
        plan, error = self._validate(reply.text)
        if plan is None:
            record.errors.append(f"invalid job plan, sent back: {error}")
            messages += [
                AIMessage(content=reply.text),
                HumanMessage(content=f"That plan is invalid: {error}. Reply with a valid plan."),
            ]
            again = caller.call(
                "remote",
                messages,
                node=f"round-{r}/plan-retry",
                max_tokens=self.remote_max_tokens,
                response_format=fmt,
            )
            if again.text is not None:
                plan, error = self._validate(again.text)
            if plan is None:
                record.errors.append(f"invalid job plan again, using the default plan: {error}")
                plan = JobPlan(
                    tasks=[Task(task=question, keywords=terms(question)[:12])],
                    chunking=self.default_chunking(),
                )
        record.plan = plan.model_dump()
        return plan

    def _validate(self, text: str) -> tuple[JobPlan | None, str]:
        try:
            data = loads(text)
        except ValueError as exc:
            return None, f"plan: not JSON ({exc})"
        try:
            plan = JobPlan.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "plan"
            return None, f"{where}: {first['msg']}"
        limit = self.max_chunk_chars()
        if plan.chunking.size > limit:
            return None, f"chunking.size: {plan.chunking.size} is over the local limit {limit}"
        if plan.chunking.overlap >= plan.chunking.size:
            return None, "chunking.overlap: must be smaller than chunking.size"
        if len(plan.tasks) > self.max_tasks:
            return None, f"tasks: at most {self.max_tasks}"
        return plan, ""

    def _jobs(
        self, plan: JobPlan, question: str, documents: Sequence[str]
    ) -> list[tuple[Chunk, Task]]:
        c = plan.chunking
        chunks = [
            chunk
            for i, doc in enumerate(documents)
            for chunk in chunk_text(doc, by=c.by, size=c.size, overlap=c.overlap, doc=i)
        ]
        per_task = max(1, self.max_jobs // len(plan.tasks))
        jobs: list[tuple[Chunk, Task]] = []
        for task in plan.tasks:
            words = [w.lower() for k in task.keywords for w in terms(k)]
            words += terms(task.task) + terms(question)
            for chunk in rank_chunks(chunks, words, per_task):
                jobs.append((chunk, task))
        return jobs[: self.max_jobs]

    def _synthesize(
        self,
        caller: Caller,
        question: str,
        record: RoundRecord,
        r: int,
        held: Any,
        last: bool,
        result: DelegationResult,
    ) -> Decision | None:
        found = [j for j in record.jobs if j.answer] + [j for j in record.jobs if not j.answer]
        lines = []
        for j in found[: self.max_outputs]:
            item = {
                "task": j.task[:100],
                "answer": j.answer,
                "citation": j.citation,
                "explanation": j.explanation,
            }
            lines.append(json.dumps(item, ensure_ascii=False)[: self.max_output_chars])
        if not lines:
            lines.append("(no job produced output)")
        prompt = f"Question: {question}\nFindings of round {r}:\n" + "\n".join(lines)
        if last:
            prompt += "\nThis is the last round the budget allows: decide 'answer'."
        messages: list[BaseMessage] = [
            SystemMessage(content=SYNTH_SYSTEM),
            HumanMessage(content=prompt),
        ]
        reply = caller.call(
            "remote",
            messages,
            node=f"round-{r}/synthesize",
            max_tokens=self.remote_max_tokens,
            response_format=response_format(Decision, self.remote_json),
            held=held,
        )
        if reply.text is None:
            record.errors.append(f"synthesis call failed: {reply.record.error}")
            result.answer = result.answer or majority_answer(record.jobs)
            return None
        try:
            decision = Decision.model_validate(loads(reply.text))
        except ValueError as exc:  # not JSON, or a pydantic ValidationError
            record.errors.append(f"synthesis reply is not a valid decision: {exc}"[:300])
            decision = Decision(decision="answer", answer=reply.text.strip()[:500], feedback="")
        record.decision = decision.model_dump()
        return decision
