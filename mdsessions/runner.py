"""The runner: execute a workflow's phases in order, stop at review gates, resume anywhere.

Each run looks at the session as it is recorded and does the next thing:

* a person's unrecorded edit of a pending ``user_feedback.md`` is validated and recorded
  (committed as that person) first;
* a phase awaiting review stops the run (session status ``awaiting_review``);
* ``approved`` → the next phase runs; ``revise`` → the phase re-runs with the reviewer's
  comments and requested changes in its agents' context (retry count + 1); ``rejected`` →
  the session ends as rejected;
* a phase interrupted mid-way (process killed) resumes: agent outputs already saved for the
  current run of the phase are kept, the rest run, completed phases are never redone.

Agents are pluggable: any callable ``(AgentContext) -> str | AgentResult``, a
:class:`CommandAgent` that pipes the prompt to an executable's stdin and stores its stdout, or
an :class:`~mdsessions.agents.llm.LlmAgent` (a model of the ``llm`` library). A transient
failure is tried again as the agent's ``max_retries`` allows (:mod:`mdsessions.agents.retry`),
and a session's budget is checked before each phase (:mod:`mdsessions.agents.budget`).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pydantic import Field, computed_field

from mdsessions.agents.base import Agent, AgentContext, AgentResult
from mdsessions.agents.budget import check_budget
from mdsessions.agents.command import CommandAgent
from mdsessions.agents.retry import Attempts, call_with_retries
from mdsessions.errors import (
    AgentExecutionError,
    AgentFailedError,
    DocumentError,
    MdsessionsError,
    WorkflowError,
)
from mdsessions.models import state
from mdsessions.models.events import RunEvent, RunEventHandler, RunEventKind, log_event
from mdsessions.models.results import OpenSessionResult
from mdsessions.models.schema import (
    AgentAttempt,
    AgentRunDetails,
    PhaseEntry,
    PhaseStatus,
    ReviewState,
    SessionStatus,
)
from mdsessions.models.workflow import AgentSpec, Budget, PhaseDef, RetryPolicy, Workflow
from mdsessions.store.store import Identity, Session, Store

__all__ = [
    "Agent",
    "AgentContext",
    "AgentExecutionError",
    "AgentResult",
    "CommandAgent",
    "RunResult",
    "Runner",
]


@dataclass(frozen=True)
class _Asked:
    """What an agent was given, stored beside its output (``prompts/{agent}.md``)."""

    prompt: str
    system_prompt: str
    inputs: Mapping[str, str]


class RunResult(OpenSessionResult):
    """What one :meth:`Runner.run` did (``mdsessions run --json`` prints it)."""

    session: Session = Field(exclude=True)
    """The session."""
    status: SessionStatus
    """The session's status when the run stopped."""
    phases_run: tuple[int, ...] = ()
    """Phases executed (completed) by this run, in order."""
    waiting_for_review: int | None = None
    """The phase awaiting review, if the run stopped at a gate."""
    feedback_path: str | None = None
    """Store-relative path of the ``user_feedback.md`` of the phase awaiting review."""
    recorded_feedback: tuple[int, ...] = ()
    """Phases whose feedback edit this run recorded."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def message(self) -> str:
        """A one-line account for people."""
        done = (
            f"ran phase{'s' if len(self.phases_run) != 1 else ''} "
            + ", ".join(map(str, self.phases_run))
            if self.phases_run
            else "ran no phase"
        )
        tail = {
            SessionStatus.AWAITING_REVIEW: f"waiting for review of phase {self.waiting_for_review}",
            SessionStatus.COMPLETED: "session completed",
            SessionStatus.REJECTED: "session rejected by the reviewer",
            SessionStatus.FAILED: "session failed",
        }.get(self.status, f"session {self.status.value}")
        return f"{self.session.ref}: {done}; {tail}"


def load_python_agent(target: str, search: Sequence[Path] = ()) -> Agent:
    """Import ``"module:function"``.

    Args:
        target: ``package.module:callable``.
        search: Folders put on ``sys.path`` for the import (e.g. the workflow file's folder).

    Raises:
        WorkflowError: If it cannot be imported or is not callable.
    """
    module_name, _, attr = target.partition(":")
    for folder in search:
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(module_name)
        value = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise WorkflowError(f"cannot load agent {target!r}: {exc}") from None
    if not callable(value):
        raise WorkflowError(f"agent {target!r} is not callable")
    return value  # type: ignore[no-any-return]


def agent_from_spec(spec: AgentSpec, base: Path | None = None) -> Agent:
    """Build a runnable agent from a workflow's ``[agents.NAME]`` table."""
    if spec.command is not None:
        return CommandAgent(
            spec.command,
            timeout=spec.timeout,
            env=spec.env,
            model=spec.model,
            safe_args=spec.safe_args,
            retry_exit_statuses=spec.retry.retry_exit_statuses,
        )
    if spec.llm is not None:
        from mdsessions.agents.llm import LlmAgent

        return LlmAgent(spec.llm, system=spec.system, options=spec.options)
    assert spec.python is not None
    search = [base, base.parent] if base is not None else []
    return load_python_agent(spec.python, search)


class Runner:
    """Runs sessions of a workflow, phase after phase, into a store.

    Args:
        store: The store.
        workflow: The workflow (default: the session's, looked up by name in the store).
        agents: Agent id → callable; overrides the workflow's ``[agents]`` declarations.
        author: The identity of the runner's commits (default: the store's).
        budget: The session's spending limit, checked before each phase
            (:class:`~mdsessions.errors.BudgetExceededError`); each limit it sets replaces the
            workflow's ``[budget]`` one, a limit it leaves ``None`` keeps the workflow's.
        retry: How agents without an ``[agents.NAME]`` table are retried (default: never).
        transcripts: Also record each agent call in the agent's transcript
            (``transcripts/{agent}.md``: system prompt, prompt, reply or error; one more
            commit per call, :meth:`mdsessions.TranscriptLog.record_exchange`).
        on_event: Called with a :class:`~mdsessions.RunEvent` as each phase and agent starts
            and ends (e.g. to show progress); an exception it raises stops the run (a phase
            left in progress resumes on the next run).

    Example:
        ::

            runner = Runner(store, agents={"concept_expansion": lambda ctx: "# Concept"})
            result = runner.start("project-1", idea="A gym leaderboard")
            result.status  # SessionStatus.AWAITING_REVIEW
    """

    def __init__(
        self,
        store: Store,
        workflow: Workflow | str | Path | None = None,
        *,
        agents: Mapping[str, Agent] | None = None,
        author: Identity | None = None,
        budget: Budget | None = None,
        retry: RetryPolicy | None = None,
        transcripts: bool = False,
        on_event: RunEventHandler | None = None,
    ) -> None:
        self.store = store
        self.workflow = store.workflow(workflow) if workflow is not None else None
        self.agents = dict(agents or {})
        self.author = author
        self.budget = budget
        self.retry = retry or RetryPolicy()
        self.transcripts = transcripts
        self.on_event = on_event
        self._loaded: dict[str, Agent] = {}

    def _budget(self, workflow: Workflow) -> Budget:
        given, declared = self.budget or Budget(), workflow.budget
        return Budget(
            max_cost_usd=(
                given.max_cost_usd if given.max_cost_usd is not None else declared.max_cost_usd
            ),
            max_tokens=given.max_tokens if given.max_tokens is not None else declared.max_tokens,
        )

    def _emit(
        self,
        kind: RunEventKind,
        session: Session,
        phase: PhaseDef,
        agent: str | None = None,
        result: AgentResult | None = None,
        **fields: Any,
    ) -> None:
        """Log a :class:`RunEvent` (``mdsessions.runner``) and pass it to :attr:`on_event`."""
        if agent is not None:
            fields.update(agent=agent, agent_index=phase.agents.index(agent) + 1)
        if result is not None:
            fields.update(input_tokens=result.input_tokens, output_tokens=result.output_tokens)
            fields.update(cost=result.cost)
        event = RunEvent(
            kind,
            session.project_id,
            session.session_id,
            phase.number,
            phase.name,
            agent_count=len(phase.agents),
            **fields,
        )
        log_event(event)
        if self.on_event is not None:
            self.on_event(event)

    def _workflow_for(self, session: Session) -> Workflow:
        if self.workflow is not None:
            return self.workflow
        return self.store.workflow(session.manifest().workflow)

    def _agent(self, workflow: Workflow, name: str) -> Agent:
        if name in self.agents:
            return self.agents[name]
        if name in self._loaded:
            return self._loaded[name]
        spec = workflow.agents.get(name)
        if spec is None:
            raise WorkflowError(
                f"no implementation for agent {name!r} of workflow {workflow.name!r}: declare "
                f'[agents.{name}] (python = "module:function" or command = [...]) in the '
                "workflow file, or pass agents={...} to Runner"
            )
        base = workflow.source.parent if workflow.source else None
        agent = agent_from_spec(spec, base)
        self._loaded[name] = agent
        return agent

    def start(
        self,
        project_id: str,
        session_id: str | None = None,
        *,
        idea: str,
        mode: str | None = None,
        user_id: str | None = None,
        tags: Sequence[str] = (),
        max_phases: int | None = None,
        wait: float | None = None,
        on_wait: Callable[[int], None] | None = None,
        on_created: Callable[[Session], None] | None = None,
        wait_lock: float = 0.0,
    ) -> RunResult:
        """Create a session for ``idea`` and run it to the first review gate (or the end).

        The session is created as one commit (by :attr:`author`), then run as by :meth:`run`.

        Args:
            project_id: The project.
            session_id: The new session's id (default: ``session-YYYYmmdd-HHMMSS-xxxx``, UTC).
            idea: The session's input, markdown (stored verbatim).
            mode: The workflow's execution mode (default: its first, e.g. ``mvp``).
            user_id: Who the session is for.
            tags: Labels.
            max_phases: Stop after running this many phases.
            wait: As for :meth:`run`: seconds to wait at a review gate for the decision.
            on_wait: Called with the phase number each time the run starts waiting.
            on_created: Called with the new session once its creation is committed, before
                any phase runs (e.g. to show its generated id).
            wait_lock: Seconds to wait for another runner of the same session.

        Returns:
            What the run did and where the session stands.

        Raises:
            SessionExistsError: If the session exists (use :meth:`run` to continue it).
            AgentFailedError: As for :meth:`run`.
            WorkflowError: An agent the workflow declares cannot be built (an unknown ``llm``
                model, a module that does not import): nothing is written.
        """
        if self.workflow is not None:
            selected = self.workflow.phases_for(mode or self.workflow.default_mode)
            for name in sorted({a for p in selected for a in p.agents}):
                if name in self.workflow.agents:
                    self._agent(self.workflow, name)
        session = self.store.create_session(
            project_id,
            session_id,
            workflow=self.workflow,
            mode=mode,
            user_id=user_id,
            idea=idea,
            tags=tags,
            author=self.author,
        )
        if on_created is not None:
            on_created(session)
        return self.run(
            session, max_phases=max_phases, wait=wait, on_wait=on_wait, wait_lock=wait_lock
        )

    def run(
        self,
        session: Session | str,
        *,
        max_phases: int | None = None,
        wait: float | None = None,
        on_wait: Callable[[int], None] | None = None,
        wait_lock: float = 0.0,
    ) -> RunResult:
        """Continue a session: record feedback edits, then run phases until a gate or the end.

        One runner runs a session at a time (:meth:`Session.run_lock`): the session's state is
        read only once the lock is held, so a phase another runner finished meanwhile is not
        run again.

        Args:
            session: A :class:`Session` or ``project/session``.
            max_phases: Stop after running this many phases.
            wait: At a review gate, wait up to this many seconds for the reviewer's saved
                decision (recorded by a :class:`~mdsessions.watch.FeedbackWatcher`) and go
                on, instead of returning; ``None`` returns at the gate.
            on_wait: Called with the phase number each time the run starts waiting.
            wait_lock: Seconds to wait for another runner of the same session (0: fail at
                once with :class:`SessionLockedError`).

        Returns:
            What the run did and where the session stands.

        Raises:
            AgentFailedError: An agent failed; the failure is recorded (output with exit status
                and stderr, checkpoint ``failed``) and the next run retries the phase.
            DocumentError: A person's feedback edit does not validate (it stays on disk).
            SessionLockedError: Another runner held the session throughout ``wait_lock``.
        """
        if isinstance(session, str):
            session = self.store.find_session(session)
        with session.run_lock(wait_lock):
            return self._run_locked(session, max_phases, wait, on_wait)

    def _run_locked(
        self,
        session: Session,
        max_phases: int | None,
        wait: float | None,
        on_wait: Callable[[int], None] | None,
    ) -> RunResult:
        workflow = self._workflow_for(session)
        recorded: list[int] = []
        ran: list[int] = []
        session.refuse_if_paused()
        while True:
            manifest = session.manifest()
            if manifest.status is SessionStatus.PAUSED:
                break  # paused by someone while this run went on: stop before the next phase
            for entry in manifest.phases:
                if (
                    entry.review is ReviewState.PENDING
                    and session.record_feedback(entry.number) is not None
                ):
                    recorded.append(entry.number)
            manifest = session.manifest()
            if state.is_closed(manifest):
                break
            waiting = state.awaiting_review(manifest)
            if waiting is not None:
                if wait is not None and self._wait_for_decision(
                    session, waiting.number, wait, on_wait
                ):
                    recorded.append(waiting.number)
                    continue
                return RunResult(
                    session=session,
                    status=manifest.status,
                    phases_run=tuple(ran),
                    waiting_for_review=waiting.number,
                    feedback_path=session.document_rel(waiting.number, "feedback"),
                    recorded_feedback=tuple(recorded),
                )
            todo = state.next_to_run(manifest)
            if todo is None:
                break
            if max_phases is not None and len(ran) >= max_phases:
                break
            check_budget(manifest, todo, self._budget(workflow), session.ref)
            for name in workflow.phase(todo.number).agents:
                self._agent(workflow, name)  # a WorkflowError before the phase is written
            self._run_phase(session, workflow, todo)
            ran.append(todo.number)
        manifest = session.manifest()
        return RunResult(
            session=session,
            status=manifest.status,
            phases_run=tuple(ran),
            recorded_feedback=tuple(recorded),
        )

    def _wait_for_decision(
        self,
        session: Session,
        phase: int,
        timeout: float,
        on_wait: Callable[[int], None] | None,
    ) -> bool:
        from mdsessions.watch import FeedbackWatcher

        def decided() -> bool:
            return session.phase_entry(phase).review is not ReviewState.PENDING

        if on_wait is not None:
            on_wait(phase)
        with FeedbackWatcher(self.store) as watcher:
            # An edit saved before the watcher started is recorded here.
            session.record_feedback(phase)
            return watcher.wait(decided, timeout)

    def _run_phase(self, session: Session, workflow: Workflow, entry: PhaseEntry) -> None:
        phase = workflow.phase(entry.number)
        revising = entry.review is ReviewState.REVISE
        feedback = session.feedback(entry.number) if revising else None
        # Outputs that need not run again: completed in this attempt before an interruption,
        # or, when the last attempt failed, completed in that attempt (only the agents that
        # did not finish run again). A revision or a stale phase runs every agent again.
        keep = {entry.retry_count}
        if revising or entry.status in (
            PhaseStatus.PENDING,
            PhaseStatus.FAILED,
            PhaseStatus.STALE,
        ):
            retry = state.next_retry_count(entry)
            failed_only = entry.status is PhaseStatus.FAILED and not revising
            keep = {retry} | ({entry.retry_count} if failed_only else set())
            session.save_checkpoint(
                entry.number,
                status=PhaseStatus.IN_PROGRESS,
                started=time_now(),
                retry_count=retry,
                agents=[],
                author=self.author,
            )
        else:
            retry = entry.retry_count
            if entry.retry_count > 0:
                # Resuming a revision that was interrupted: the feedback that asked for it.
                feedback = session.feedback(entry.number)
        manifest = session.manifest()
        idea = manifest.idea or ""
        earlier = [
            p.number
            for p in manifest.phases
            if p.number < entry.number and p.status is PhaseStatus.COMPLETED
        ]
        # A person's edit of an earlier output is committed (as theirs) before it is read,
        # so the commit the checkpoint names holds exactly what the agents were given.
        inputs = session.record_inputs(earlier, before=entry.number)
        previous: dict[int, dict[str, str]] = {}
        for number, outputs in session.outputs(earlier).items():
            previous[number] = {name: out.content for name, out in outputs.items()}
        started = session.manifest().phase(entry.number).started
        phase_began = time.monotonic()
        self._emit(RunEventKind.PHASE_STARTED, session, phase)
        for name in phase.agents:
            existing = session.output(entry.number, name)
            if (
                existing is not None
                and existing.status is PhaseStatus.COMPLETED
                and existing.retry_count in keep
            ):
                self._emit(RunEventKind.AGENT_SKIPPED, session, phase, name)
                continue  # saved before an interruption or a failure: not redone
            self._run_agent(session, workflow, phase, name, idea, previous, retry, feedback, inputs)
        session.save_checkpoint(
            entry.number,
            status=PhaseStatus.COMPLETED,
            started=started,
            retry_count=retry,
            inputs=inputs,
            execution_mode="sequential",
            author=self.author,
        )
        spent = round(time.monotonic() - phase_began, 3)
        self._emit(RunEventKind.PHASE_COMPLETED, session, phase, duration=spent)

    def _run_agent(
        self,
        session: Session,
        workflow: Workflow,
        phase: PhaseDef,
        name: str,
        idea: str,
        previous: Mapping[int, Mapping[str, str]],
        retry: int,
        feedback: object,
        inputs: Mapping[str, str],
    ) -> None:
        agent = self._agent(workflow, name)
        spec = workflow.agents.get(name)
        ctx = _context(session, phase, name, idea, previous, retry, feedback, spec)
        asked = _Asked(ctx.prompt, ctx.system_prompt, inputs)
        attempts = Attempts()
        command = agent.recorded if isinstance(agent, CommandAgent) else None
        self._emit(RunEventKind.AGENT_STARTED, session, phase, name)
        began = time.monotonic()

        def fail(
            message: str, stdout: str = "", stderr: str = "", exit_status: int | None = None
        ) -> NoReturn:
            if self.transcripts:  # the agent's failure is what is recorded and raised below
                with contextlib.suppress(MdsessionsError):
                    self._transcribe(session, name, asked, message, "error")
            details = AgentRunDetails(command=command, attempts=_attempts(attempts))
            spent = round(time.monotonic() - began, 3)
            self._emit(RunEventKind.AGENT_FAILED, session, phase, name, duration=spent)
            self._record_failure(
                session,
                phase,
                name,
                retry,
                began,
                (message, stdout, stderr, exit_status),
                asked,
                details,
            )

        try:
            result = call_with_retries(agent, ctx, spec.retry if spec else self.retry, attempts)
        except AgentExecutionError as exc:
            fail(str(exc), exc.stdout, exc.stderr, exc.exit_status)
        except Exception as exc:  # an agent is foreign code: record whatever it raised
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            fail(detail, stderr=detail)
        duration = time.monotonic() - began
        if isinstance(result, str):
            result = AgentResult(content=result)
        if not isinstance(result, AgentResult):
            fail(f"agent returned {type(result).__name__}, expected str or AgentResult")
        model = result.model or (spec.model if spec else None) or _callable_name(agent)
        details = AgentRunDetails(
            response_id=result.response_id,
            price_source=result.price_source,
            price_date=result.price_date,
            command=result.command or command,
            options=dict(result.options),
            attempts=_attempts(attempts),
        )
        self._save_output(session, phase, name, retry, asked, result, model, duration, details)

    def _save_output(
        self,
        session: Session,
        phase: PhaseDef,
        name: str,
        retry: int,
        asked: _Asked,
        result: AgentResult,
        model: str | None,
        duration: float,
        details: AgentRunDetails,
    ) -> None:
        """Commit an agent's output with its prompt, feed its transcript, report the event."""
        session.save_agent_output(
            phase.number,
            name,
            result.content,
            status=PhaseStatus.COMPLETED,
            duration=round(duration, 3),
            model=model,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost=result.cost,
            tools_used=list(result.tools_used),
            retry_count=retry,
            author=self.author,
            prompt=asked.prompt,
            system_prompt=asked.system_prompt,
            inputs=asked.inputs,
            details=details,
        )
        if self.transcripts:
            self._transcribe(session, name, asked, result.content, "assistant", result)
        done = round(duration, 3)
        self._emit(RunEventKind.AGENT_COMPLETED, session, phase, name, result, duration=done)

    def _transcribe(
        self,
        session: Session,
        name: str,
        asked: _Asked,
        reply: str,
        role: str,
        result: AgentResult | None = None,
    ) -> None:
        """Record one agent call in its transcript (one commit): the hook of every agent kind."""
        session.transcript(name, author=self.author).record_exchange(
            prompt=asked.prompt,
            reply=reply,
            system=asked.system_prompt,
            input_tokens=result.input_tokens if result else None,
            output_tokens=result.output_tokens if result else None,
            reply_role=role,
        )

    def _record_failure(
        self,
        session: Session,
        phase: PhaseDef,
        name: str,
        retry: int,
        began: float,
        failure: tuple[str, str, str, int | None],
        asked: _Asked,
        details: AgentRunDetails,
    ) -> NoReturn:
        message, stdout, stderr, exit_status = failure
        duration = round(time.monotonic() - began, 3)
        error = _clip(message) + (
            f"\n{_clip(stderr.strip())}" if stderr.strip() and stderr.strip() != message else ""
        )
        with contextlib.suppress(DocumentError):
            session.save_agent_output(
                phase.number,
                name,
                stdout,
                status=PhaseStatus.FAILED,
                duration=duration,
                retry_count=retry,
                exit_status=exit_status,
                error=error,
                author=self.author,
                prompt=asked.prompt,
                system_prompt=asked.system_prompt,
                inputs=asked.inputs,
                details=details,
            )
        session.save_checkpoint(
            phase.number,
            status=PhaseStatus.FAILED,
            retry_count=retry,
            errors=[f"{name}: {error}"],
            author=self.author,
        )
        out_rel = f"{session.phase_rel(phase.number)}/{name}.md"
        raise AgentFailedError(
            f"agent {name!r} failed in phase {phase.number} ({phase.name}) of {session.ref}: "
            f"{message}; recorded in {out_rel}. Run again to retry the phase."
        )


ERROR_TAIL_CHARS = 16_000
"""How much of a failed agent's stderr is recorded (its end, where the cause usually is)."""


def _clip(text: str, limit: int = ERROR_TAIL_CHARS) -> str:
    """The last ``limit`` characters of ``text``, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"[… {len(text) - limit} earlier characters not recorded]\n" + text[-limit:]


def _context(
    session: Session,
    phase: PhaseDef,
    name: str,
    idea: str,
    previous: Mapping[int, Mapping[str, str]],
    retry: int,
    feedback: object,
    spec: AgentSpec | None,
) -> AgentContext:
    """What agent ``name`` gets for this run of ``phase`` (its system prompt from ``spec``)."""
    from mdsessions.models.schema import UserFeedback

    fb = feedback if isinstance(feedback, UserFeedback) else None
    return AgentContext(
        idea=idea,
        project_id=session.project_id,
        session_id=session.session_id,
        phase_number=phase.number,
        phase_slug=phase.slug,
        phase_name=phase.name,
        agent_name=name,
        previous_outputs=previous,
        retry_count=retry,
        feedback_comments=(fb.comments or None) if fb else None,
        requested_changes=tuple(fb.requested_changes) if fb else (),
        description=phase.description,
        system_prompt=spec.system if spec is not None else "",
    )


def _attempts(attempts: Attempts) -> list[AgentAttempt]:
    """The tries worth recording: all of them when there was more than one."""
    return list(attempts.records) if len(attempts.records) > 1 else []


def _callable_name(agent: object) -> str | None:
    if isinstance(agent, CommandAgent):
        return agent.model  # never the command line: no model reported, none recorded
    module = getattr(agent, "__module__", None) or ""
    name = getattr(agent, "__qualname__", None) or type(agent).__name__
    return f"python:{module}.{name}" if module else f"python:{name}"


def time_now() -> str:
    """Now, UTC ISO-8601 with ``Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
