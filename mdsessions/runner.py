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

Agents are pluggable: any callable ``(AgentContext) -> str | AgentResult``, or a
:class:`CommandAgent` that pipes the prompt to an executable's stdin and stores its stdout.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from pydantic import Field, computed_field

from mdsessions.errors import AgentExecutionError, AgentFailedError, DocumentError, WorkflowError
from mdsessions.models import state
from mdsessions.models.events import RunEvent, RunEventHandler, RunEventKind, log_event
from mdsessions.models.results import OpenSessionResult
from mdsessions.models.schema import PhaseEntry, PhaseStatus, ReviewState, SessionStatus
from mdsessions.models.workflow import AgentSpec, PhaseDef, Workflow
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
class AgentContext:
    """Everything an agent gets for one run.

    Attributes:
        idea: The session's input (``idea`` in the manifest), markdown.
        project_id: Project id.
        session_id: Session id.
        phase_number: The phase being run.
        phase_slug: Its slug.
        phase_name: Its name, e.g. ``Concept Expansion``.
        agent_name: This agent's id.
        previous_outputs: Outputs of earlier completed phases: phase → agent → markdown.
        retry_count: 0 on the first run of the phase, + 1 per ``revise``.
        feedback_comments: The reviewer's comments when re-running after ``revise``.
        requested_changes: The reviewer's requested changes (one line each).
        description: What the phase is for (from the workflow).
        system_prompt: The system part of the prompt, for agents that take one (an LLM's
            system message); stored with the output beside :attr:`prompt`.
    """

    idea: str
    project_id: str
    session_id: str
    phase_number: int
    phase_slug: str
    phase_name: str
    agent_name: str
    previous_outputs: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    retry_count: int = 0
    feedback_comments: str | None = None
    requested_changes: Sequence[str] = ()
    description: str = ""
    system_prompt: str = ""

    @property
    def prompt(self) -> str:
        """The full prompt as markdown (what a :class:`CommandAgent` writes to stdin)."""
        parts = [f"# Task: {self.phase_name} (phase {self.phase_number}) — agent {self.agent_name}"]
        if self.description:
            parts.append(self.description)
        parts.append(f"## Idea\n\n{self.idea}")
        if self.previous_outputs:
            parts.append("## Earlier phases")
            for number in sorted(self.previous_outputs):
                for agent, content in self.previous_outputs[number].items():
                    parts.append(f"### Phase {number} — {agent}\n\n{content}")
        if self.feedback_comments or self.requested_changes:
            parts.append(f"## Reviewer feedback (revision {self.retry_count})")
            if self.feedback_comments:
                parts.append(self.feedback_comments)
            if self.requested_changes:
                parts.append(
                    "Requested changes:\n" + "\n".join(f"- {c}" for c in self.requested_changes)
                )
        return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class AgentResult:
    """What an agent may return instead of plain text, with metrics.

    Attributes:
        content: The markdown output (stored verbatim).
        model: Model id.
        input_tokens: Prompt tokens.
        output_tokens: Completion tokens.
        cost: USD.
        tools_used: Tool names.
    """

    content: str
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    tools_used: Sequence[str] = ()


Agent = Callable[[AgentContext], str | AgentResult]


class CommandAgent:
    """Run an executable as an agent: the prompt on stdin, the output from stdout.

    Any LLM command-line client works (``["llm", "-m", "gpt-4o"]``, ``["ollama", "run", "x"]``).
    A non-zero exit status, a timeout or a missing executable is a failure whose exit status
    and stderr are recorded in the agent output file.

    Args:
        argv: The command and its arguments.
        timeout: Seconds before the command is killed.
        env: Extra environment variables.
        model: A model label recorded in the output (default: the command line).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 600.0,
        env: Mapping[str, str] | None = None,
        model: str | None = None,
    ) -> None:
        if not argv:
            raise WorkflowError("a command agent needs a command")
        self.argv = list(argv)
        self.timeout = timeout
        self.env = dict(env or {})
        self.model = model or " ".join(self.argv)

    def __call__(self, ctx: AgentContext) -> AgentResult:
        """Run the command for one agent context.

        Raises:
            AgentExecutionError: With exit status and stderr on failure.
        """
        env = {
            **os.environ,
            **self.env,
            "MDSESSIONS_AGENT": ctx.agent_name,
            "MDSESSIONS_PHASE": str(ctx.phase_number),
            "MDSESSIONS_PROJECT": ctx.project_id,
            "MDSESSIONS_SESSION": ctx.session_id,
        }
        try:
            proc = subprocess.run(
                self.argv,
                input=ctx.prompt.encode("utf-8"),
                capture_output=True,
                timeout=self.timeout,
                env=env,
                check=False,
            )
        except FileNotFoundError:
            raise AgentExecutionError(
                f"command not found: {self.argv[0]}",
                exit_status=127,
                stderr=f"{self.argv[0]}: command not found",
            ) from None
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else ""
            err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else ""
            raise AgentExecutionError(
                f"{self.argv[0]} timed out after {self.timeout:g} s", stdout=out, stderr=err
            ) from None
        stdout = proc.stdout.decode("utf-8", "replace")
        stderr = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise AgentExecutionError(
                f"{self.argv[0]} exited with status {proc.returncode}",
                exit_status=proc.returncode,
                stdout=stdout,
                stderr=stderr,
            )
        return AgentResult(content=stdout, model=self.model)


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
        return CommandAgent(spec.command, timeout=spec.timeout, env=spec.env, model=spec.model)
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
        on_event: RunEventHandler | None = None,
    ) -> None:
        self.store = store
        self.workflow = store.workflow(workflow) if workflow is not None else None
        self.agents = dict(agents or {})
        self.author = author
        self.on_event = on_event
        self._loaded: dict[str, Agent] = {}

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
        """
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
        while True:
            manifest = session.manifest()
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
        from mdsessions.models.schema import UserFeedback

        fb = feedback if isinstance(feedback, UserFeedback) else None
        ctx = AgentContext(
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
        )
        agent = self._agent(workflow, name)
        spec = workflow.agents.get(name)
        asked = _Asked(ctx.prompt, ctx.system_prompt, inputs)
        self._emit(RunEventKind.AGENT_STARTED, session, phase, name)
        began = time.monotonic()

        def fail(
            message: str, stdout: str = "", stderr: str = "", exit_status: int | None = None
        ) -> NoReturn:
            spent = round(time.monotonic() - began, 3)
            self._emit(RunEventKind.AGENT_FAILED, session, phase, name, duration=spent)
            self._record_failure(
                session, phase, name, retry, began, message, stdout, stderr, exit_status, asked
            )

        try:
            result = agent(ctx)
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
        )
        done = round(duration, 3)
        self._emit(RunEventKind.AGENT_COMPLETED, session, phase, name, result, duration=done)

    def _record_failure(
        self,
        session: Session,
        phase: PhaseDef,
        name: str,
        retry: int,
        began: float,
        message: str,
        stdout: str,
        stderr: str,
        exit_status: int | None,
        asked: _Asked,
    ) -> NoReturn:
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


def _callable_name(agent: object) -> str:
    if isinstance(agent, CommandAgent):
        return agent.model
    module = getattr(agent, "__module__", None) or ""
    name = getattr(agent, "__qualname__", None) or type(agent).__name__
    return f"python:{module}.{name}" if module else f"python:{name}"


def time_now() -> str:
    """Now, UTC ISO-8601 with ``Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
