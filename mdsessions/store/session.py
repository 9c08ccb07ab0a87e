"""A session of a store: its manifest, phases, agent outputs and feedback; every save one commit.

A :class:`Session` reads from the working tree (what a person sees in the editor) and writes
through planned writes (:mod:`mdsessions.store.writes`): each save reads the manifest, applies
the session state machine (:mod:`mdsessions.models.state`), renders the documents and commits
them at once.

Layout of a session folder (seed 003, :mod:`mdsessions.store.paths`)::

    session_manifest.md
    phase_{N}_{slug}/checkpoint.md · {agent}.md … · user_feedback.md · prompts/{agent}.md
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mdsessions.documents.frontmatter import Document
from mdsessions.errors import (
    DocumentError,
    PhaseNotFoundError,
    SessionLockedError,
    SessionNotFoundError,
    StoreError,
)
from mdsessions.git.lock import LockTimeout, RunLock
from mdsessions.git.repo import CommitInfo, Identity
from mdsessions.models import state
from mdsessions.models.schema import (
    AgentOutput,
    AgentPrompt,
    AgentRun,
    AgentRunDetails,
    Checkpoint,
    FeedbackAction,
    PhaseEntry,
    PhaseStatus,
    SessionManifest,
    SessionStatus,
    UserFeedback,
    utc_now,
)
from mdsessions.store import writes
from mdsessions.store.checks import D, build, build_status
from mdsessions.store.commits import CommitKind
from mdsessions.store.config import is_editor_temp
from mdsessions.store.integrity import Problem, validate_phase, validate_session
from mdsessions.store.lifecycle import Lifecycle
from mdsessions.store.outputs import (
    fill_run_metrics,
    new_output,
    output_from_spec,
    runs_from_outputs,
)
from mdsessions.store.paths import (
    CHECKPOINT,
    FEEDBACK,
    MANIFEST,
    PROMPTS_DIR,
    check_id,
    document_file,
)
from mdsessions.store.writes import Plan

if TYPE_CHECKING:
    from mdsessions.store.store import Store
    from mdsessions.store.transcripts import TranscriptLog

__all__ = ["Session"]

T = TypeVar("T")


class Session(Lifecycle):
    """One session of a store: its manifest, phases, agent outputs and feedback.

    Obtain it from :meth:`Store.create_session`, :meth:`Store.session` or
    :meth:`Store.find_session`. Reads come from the working tree (what a person sees in the
    editor); every save is one commit. Pause, resume, end, tags and metadata are
    :class:`~mdsessions.store.lifecycle.Lifecycle`'s methods.
    """

    def __init__(self, store: Store, project_id: str, session_id: str) -> None:
        self.store = store
        self.project_id = project_id
        self.session_id = session_id
        self.rel = store.session_rel(project_id, session_id)

    def __repr__(self) -> str:
        return f"Session({self.project_id!r}, {self.session_id!r})"

    @property
    def ref(self) -> str:
        """``project_id/session_id``."""
        return f"{self.project_id}/{self.session_id}"

    @property
    def path(self) -> Path:
        """Absolute folder of the session."""
        return self.store.root / self.rel

    @property
    def manifest_rel(self) -> str:
        """Store-relative path of ``session_manifest.md``."""
        return f"{self.rel}/{MANIFEST}"

    # -- reading --------------------------------------------------------------------------

    def manifest(self) -> SessionManifest:
        """The session manifest (status, current phase, phase table, totals).

        Raises:
            SessionNotFoundError: If the session no longer exists.
            DocumentError: If the manifest is broken.
        """
        try:
            return self.store.read_doc(self.manifest_rel, SessionManifest)
        except FileNotFoundError:
            raise SessionNotFoundError(
                f"no session {self.ref} (missing {self.manifest_rel})"
            ) from None

    @property
    def status(self) -> SessionStatus:
        """The session status."""
        return self.manifest().status

    @property
    def current_phase(self) -> int | None:
        """The phase the session is at (``None`` once it ended)."""
        return self.manifest().current_phase

    @property
    def completed_phases(self) -> list[int]:
        """Phases whose checkpoint status is ``completed``."""
        return self.manifest().completed_phases

    @property
    def approved_phases(self) -> list[int]:
        """Phases a reviewer approved."""
        return self.manifest().approved_phases

    def phase_entry(self, phase: int, manifest: SessionManifest | None = None) -> PhaseEntry:
        """The manifest row of a phase.

        Raises:
            PhaseNotFoundError: If the phase is not part of the session's mode.
        """
        if isinstance(phase, bool) or not isinstance(phase, int):
            raise PhaseNotFoundError(
                f"invalid phase number {phase!r}: expected an integer such as 1"
            )
        manifest = manifest or self.manifest()
        try:
            return manifest.phase(phase)
        except KeyError:
            raise PhaseNotFoundError(
                f"phase {phase!r} is not part of session {self.ref} ({manifest.workflow}, mode "
                f"{manifest.mode}: phases {', '.join(str(p.number) for p in manifest.phases)})"
            ) from None

    def phase_rel(self, phase: int, manifest: SessionManifest | None = None) -> str:
        """Store-relative folder of a phase (``…/phase_{N}_{slug}``)."""
        return f"{self.rel}/{self.phase_entry(phase, manifest).directory}"

    def document_rel(self, phase: int | None = None, document: str | None = None) -> str:
        """Store-relative path of a session document, named the way people name it.

        Args:
            phase: ``None`` for the session manifest, else the phase number.
            document: In the phase folder: ``"checkpoint"`` (default), ``"feedback"`` or an
                agent id (:func:`mdsessions.store.paths.document_file`).

        Returns:
            E.g. ``projects/p/sessions/s/phase_1_concept/user_feedback.md``; the file need not
            exist.

        Raises:
            PhaseNotFoundError: The phase is not part of the session.
            InvalidIdentifierError: ``document`` names no document of a phase folder.
        """
        if phase is None:
            return self.manifest_rel
        return f"{self.phase_rel(phase)}/{document_file(document)}"

    def checkpoint(self, phase: int) -> Checkpoint | None:
        """The phase's checkpoint, or ``None`` if none was saved."""
        rel = f"{self.phase_rel(phase)}/{CHECKPOINT}"
        try:
            return self.store.read_doc(rel, Checkpoint)
        except FileNotFoundError:
            return None

    def feedback(self, phase: int) -> UserFeedback | None:
        """The phase's user feedback as on disk now (a person's edit included), or ``None``."""
        rel = f"{self.phase_rel(phase)}/{FEEDBACK}"
        try:
            return self.store.read_doc(rel, UserFeedback)
        except FileNotFoundError:
            return None

    def output(self, phase: int, agent: str) -> AgentOutput | None:
        """One agent output of a phase, or ``None``."""
        rel = f"{self.phase_rel(phase)}/{check_id(agent, 'agent id')}.md"
        try:
            return self.store.read_doc(rel, AgentOutput)
        except FileNotFoundError:
            return None

    def outputs(self, phases: Iterable[int] | None = None) -> dict[int, dict[str, AgentOutput]]:
        """Agent outputs by phase then agent name.

        Args:
            phases: Phase numbers; ``None`` for every phase that has outputs.

        Returns:
            ``{phase: {agent_name: AgentOutput}}``, phases ascending.
        """
        manifest = self.manifest()
        numbers = [p.number for p in manifest.phases] if phases is None else list(phases)
        out: dict[int, dict[str, AgentOutput]] = {}
        for number in numbers:
            folder = self.store.root / self.phase_rel(number, manifest)
            found: dict[str, AgentOutput] = {}
            if folder.is_dir():
                for path in sorted(folder.glob("*.md")):
                    if path.name in (CHECKPOINT, FEEDBACK) or is_editor_temp(path.name):
                        continue
                    rel = path.relative_to(self.store.root).as_posix()
                    found[path.stem] = self.store.read_doc(rel, AgentOutput)
            if found or phases is not None:
                out[number] = found
        return out

    def record_inputs(
        self, phases: Iterable[int], *, before: int, author: Identity | str | None = None
    ) -> dict[str, str]:
        """Commit a person's edits to the outputs of ``phases`` before a phase reads them.

        Every input a phase consumes is in a commit first (DESIGN.md "Sharing the store"):
        an agent output a reviewer changed and did not record is recorded as that person's
        commit (git's ``user.name``, or ``author``), exactly as a hand edit is with
        ``mdsessions record``.

        Args:
            phases: The earlier phases whose agent outputs are about to be read.
            before: The phase that will read them (named in the commit message).
            author: The person (default: git's identity of the store).

        Returns:
            ``{store-relative path: blob id}`` of every input, as now committed.

        Raises:
            DocumentError: An edited output no longer parses; it is left as it is, uncommitted.
        """
        manifest = self.manifest()
        paths: list[str] = []
        for number in phases:
            folder = self.store.root / self.phase_rel(number, manifest)
            if folder.is_dir():
                paths += [
                    p.relative_to(self.store.root).as_posix()
                    for p in sorted(folder.glob("*.md"))
                    if p.name not in (CHECKPOINT, FEEDBACK) and not is_editor_temp(p.name)
                ]
        git = self.store.git
        with self.store.writing():
            edited = git.edited_paths(git.head(), paths)
            if edited:
                _sha, rejected = self.store.record_edits(
                    edited,
                    author=author,
                    message=f"edit({self.ref}): {len(edited)} input(s) of phase {before} "
                    "recorded before it runs",
                )
                if rejected:
                    raise DocumentError(
                        f"{rejected[0].error}; phase {before} reads this file: fix or discard "
                        "the edit (git restore) and run again",
                        path=rejected[0].path,
                    )
            head = git.head()
            out: dict[str, str] = {}
            for rel in paths:
                found = git.entry(head, rel)
                if found is not None:
                    out[rel] = found[1].hex()
            return out

    @contextlib.contextmanager
    def run_lock(self, wait: float = 0.0) -> Iterator[None]:
        """Hold the session's run lock: one runner per session across processes.

        The lock (``.git/mdsessions/run/<project>/<session>.lock``, a ``flock``) is released
        when the block ends or the holder dies, so a dead runner's lock is taken over at once.
        Writes themselves do not need it; it keeps two runners from running the same phase's
        agents twice.

        Args:
            wait: Seconds to wait for another runner to finish (0: fail at once).

        Raises:
            SessionLockedError: Another runner held it throughout, naming its pid, host and
                start time (UTC).
        """
        lock = RunLock(
            self.store.git.private_dir / "run" / self.project_id / f"{self.session_id}.lock"
        )
        try:
            lock.acquire(max(0.0, wait))
        except LockTimeout:
            who = lock.holder()
            holder = (
                f"pid {who.get('pid', '?')} on {who.get('host', '?')} since {who.get('since', '?')}"
                if who
                else "another runner"
            )
            waited = f" (waited {wait:g} s)" if wait > 0 else ""
            raise SessionLockedError(
                f"session {self.ref} is being run by {holder}{waited}; wait for it with "
                "--wait-lock SECONDS, or run again when it is done"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def history(self, *, max_count: int | None = None, skip: int = 0) -> list[CommitInfo]:
        """The session's commits, newest first (``git log -- <session folder>``)."""
        return self.store.git.log([self.rel], max_count=max_count, skip=skip)

    def transcript(self, name: str = "session", **options: Any) -> TranscriptLog:
        """A transcript of the session (``transcripts/{name}.md``): record, read, prune.

        Args:
            name: An agent id, or ``session`` for the session's own transcript.
            **options: ``context_limit``, ``max_buffer``, ``author``, ``count_tokens`` of
                :class:`TranscriptLog`.
        """
        from mdsessions.store.transcripts import TranscriptLog  # noqa: PLC0415 - kept light

        return TranscriptLog(self, name, **options)

    # -- writing --------------------------------------------------------------------------

    def _commit(
        self,
        files: dict[str, Document | bytes | None],
        manifest: SessionManifest,
        subject: str,
        **options: Any,
    ) -> str | None:
        """Plan (:meth:`_plan`, same keywords) and commit at once, under the caller's lock."""
        return self._apply(self._plan(files, manifest, subject, **options))

    def _plan(
        self,
        files: dict[str, Document | bytes | None],
        manifest: SessionManifest,
        subject: str,
        **options: Any,
    ) -> Plan:
        """Render what a write commits (:func:`mdsessions.store.writes.plan`)."""
        return writes.plan(self, files, manifest, subject, **options)

    def _apply(self, plan: Plan) -> str | None:
        """Commit a plan (:func:`mdsessions.store.writes.apply`)."""
        return writes.apply(self.store, plan)

    def _write_planned(self, plan: Callable[[SessionManifest], tuple[T, Plan]]) -> T:
        """Plan a write, then commit it (:func:`mdsessions.store.writes.write_planned`)."""
        return writes.write_planned(self, plan)

    def _ensure_open(self, manifest: SessionManifest) -> None:
        if state.is_closed(manifest):
            raise StoreError(
                f"session {self.ref} is {manifest.status.value} and takes no more writes; "
                "start a new session to continue the work"
            )

    def save_agent_output(
        self,
        phase: int,
        agent: str,
        content: str,
        *,
        status: PhaseStatus | str = PhaseStatus.COMPLETED,
        duration: float | None = None,
        model: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost: float | None = 0.0,
        tools_used: Sequence[str] = (),
        executed: _dt.datetime | str | None = None,
        retry_count: int | None = None,
        exit_status: int | None = None,
        error: str | None = None,
        author: Identity | None = None,
        prompt: str | None = None,
        system_prompt: str = "",
        inputs: Mapping[str, str] | None = None,
        details: AgentRunDetails | None = None,
    ) -> AgentOutput:
        """Save one agent's output (seed 003 ``{agent_name}.md``) as one commit.

        The content is stored verbatim after ``## Output`` and reads back byte for byte.
        Before the phase's first checkpoint, the manifest marks the phase ``in_progress``.
        The output's tokens, cost and time reach the manifest's totals through the phase's
        checkpoint (an output saved after it fills its agent's row of the checkpoint). The
        totals sum each phase's latest checkpoint, so a re-run replaces the phase's earlier
        figures (:func:`mdsessions.models.state.totals`).

        Args:
            phase: Phase number (must be part of the session's mode).
            agent: Agent id; the file is ``phase_N_slug/{agent}.md``.
            content: The agent's markdown, any text.
            status: ``completed``, ``failed``, … (:class:`PhaseStatus`).
            duration: Seconds the agent ran.
            model: Model id, e.g. ``anthropic.claude-3-sonnet-20240229-v1:0``.
            input_tokens: Prompt tokens.
            output_tokens: Completion tokens.
            cost: USD (``None``: no price known for the model).
            tools_used: Tool names the agent called.
            executed: When it ran (UTC; default now).
            retry_count: Which run of the phase this is (default: the phase's retry count).
            exit_status: A command agent's exit status.
            error: What went wrong (for a failed run), e.g. a command's stderr.
            author: Commit author (default: the store's runner identity).
            prompt: The exact (user) prompt the agent was given; stored verbatim in
                ``phase_N_slug/prompts/{agent}.md`` in the same commit (:class:`AgentPrompt`).
            system_prompt: The system part of the prompt, if the agent had one.
            inputs: The earlier outputs the prompt was built from: store-relative path →
                blob id (40 hex digits), recorded with the prompt.
            details: Response id, price source and date, command, options, attempts.

        Returns:
            The saved document.

        Raises:
            PhaseNotFoundError: Unknown phase. InvalidIdentifierError: bad agent id.
            DocumentError: An invalid field (status, negative tokens, …).
            UnrecordedEditError: The file holds a person's unrecorded edit.
        """

        def plan(manifest: SessionManifest) -> tuple[AgentOutput, Plan]:
            self._ensure_open(manifest)
            entry = self.phase_entry(phase, manifest)
            doc = new_output(
                self.project_id,
                self.session_id,
                entry,
                agent,
                content,
                status=status,
                duration=duration,
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost=cost,
                tools_used=tools_used,
                executed=executed,
                retry_count=retry_count,
                exit_status=exit_status,
                error=error,
                **(details.model_dump() if details is not None else {}),
            )
            before = manifest.model_dump()
            self._start_phase(manifest, entry)
            rel = f"{self.rel}/{entry.directory}/{agent}.md"
            files: dict[str, Document | bytes | None] = {rel: doc}
            # Seed 003's call order saves the phase checkpoint before its outputs: an output
            # that arrives after it brings its metrics to the checkpoint and the totals.
            cp_rel = f"{self.rel}/{entry.directory}/{CHECKPOINT}"
            checkpoint = self._existing(cp_rel, Checkpoint)
            if (
                checkpoint is not None
                and checkpoint.status in (PhaseStatus.COMPLETED, PhaseStatus.FAILED)
                and not self.store.git.edited_paths(self.store.git.head(), [cp_rel])
                and fill_run_metrics(checkpoint, doc)
            ):
                files[cp_rel] = checkpoint
                state.take_metrics(manifest, checkpoint)
            if prompt is not None:
                files[f"{self.rel}/{entry.directory}/{PROMPTS_DIR}/{agent}.md"] = build(
                    AgentPrompt,
                    project_id=self.project_id,
                    session_id=self.session_id,
                    agent=agent,
                    phase=entry.number,
                    phase_name=entry.name,
                    created=doc.executed,
                    retry_count=doc.retry_count,
                    system=system_prompt,
                    inputs=dict(sorted((inputs or {}).items())),
                    user=prompt,
                )
            return doc, self._plan(
                files,
                manifest,
                f"{CommitKind.AGENT_OUTPUT}({self.ref}): phase {phase} {agent} {doc.status.value}",
                author=author,
                # The manifest changes only when the phase or session status does; the
                # phase's metrics reach it with the phase checkpoint.
                write_manifest=manifest.model_dump() != before,
                kind=CommitKind.AGENT_OUTPUT,
                phase=phase,
                agent=agent,
                status=doc.status.value,
            )

        return self._write_planned(plan)

    def _start_phase(self, manifest: SessionManifest, entry: PhaseEntry) -> None:
        """The manifest changes an agent output brings (:func:`state.start_phase`)."""
        has_checkpoint = (self.store.root / self.rel / entry.directory / CHECKPOINT).exists()
        state.start_phase(manifest, entry.number, has_checkpoint=has_checkpoint, now=utc_now())

    def save_checkpoint(
        self,
        phase: int,
        *,
        status: PhaseStatus | str,
        agents: Sequence[AgentRun | Mapping[str, Any]] | None = None,
        started: _dt.datetime | str | None = None,
        completed: _dt.datetime | str | None = None,
        duration: float | None = None,
        execution_mode: str = "single",
        inputs: Sequence[str] | Mapping[str, str] = (),
        errors: Sequence[str] = (),
        retry_count: int | None = None,
        request_review: bool | None = None,
        outputs: Sequence[Mapping[str, Any]] = (),
        author: Identity | None = None,
    ) -> Checkpoint:
        """Save a phase checkpoint (seed 003 ``checkpoint.md``) and update the manifest: one commit.

        With ``outputs``, the phase's agent outputs are saved in the same commit (what a runner
        that ran its agents first records at once), e.g.
        ``save_checkpoint(1, status="completed", outputs=[{"agent": "concept_expansion",
        "content": text, "input_tokens": 1200, "output_tokens": 800, "cost": 0.0125}])``.

        On ``completed``: a phase with a review gate gets a pending ``user_feedback.md`` for
        the reviewer (same commit) and the session becomes ``awaiting_review``; otherwise the
        session moves to the next phase, or to ``completed`` after the last one. On
        ``failed`` the session becomes ``failed`` (the runner retries it on the next run).

        Args:
            phase: Phase number.
            status: ``pending``, ``in_progress``, ``completed``, ``failed`` or ``skipped``.
            agents: The agents' runs; default: derived from the phase's saved outputs.
            started: Start time (UTC ISO-8601 or datetime; default: the phase's start).
            completed: End time (default: now, for completed/failed).
            duration: Seconds (default: completed - started).
            execution_mode: How the agents ran (seed 003: ``single``, ``parallel``, …).
            inputs: The documents the phase read: store-relative paths, or path → blob id
                (40 hex digits) of the exact version read.
            errors: Error messages.
            retry_count: Run number of the phase (default: the manifest's).
            request_review: Force (True) or suppress (False) the review gate; default: the
                workflow's gate.
            outputs: Agent outputs to save in the same commit: mappings with ``agent`` and
                ``content`` and any other keyword of :meth:`save_agent_output` (``status``,
                ``model``, ``input_tokens``, ``cost``, …). With ``agents`` left out, the
                checkpoint's agent table holds these runs and the phase's earlier outputs.
            author: Commit author (default: the runner identity).

        Returns:
            The saved checkpoint.

        Raises:
            PhaseNotFoundError: Unknown phase.
            DocumentError: An invalid status or field, or an ``outputs`` entry without
                ``agent``/``content`` or with an unknown key (the message names it).
            InvalidIdentifierError: A bad agent id in ``outputs``.
        """

        def plan(manifest: SessionManifest) -> tuple[Checkpoint, Plan]:
            self._ensure_open(manifest)
            entry = self.phase_entry(phase, manifest)
            phase_rel = f"{self.rel}/{entry.directory}"
            files: dict[str, Document | bytes | None] = {}
            new_outputs: dict[str, AgentOutput] = {}
            for i, spec in enumerate(outputs):
                out = output_from_spec(
                    self.project_id, self.session_id, entry, spec, f"outputs[{i}]"
                )
                if out.agent in new_outputs:
                    raise DocumentError(f"outputs[{i}]: agent {out.agent!r} is listed twice")
                new_outputs[out.agent] = out
                files[f"{phase_rel}/{out.agent}.md"] = out
            if new_outputs:
                self._start_phase(manifest, entry)
            if agents is None:
                saved = self.outputs([phase]).get(phase, {})
                runs = runs_from_outputs({**saved, **new_outputs})
            else:
                runs = [
                    a if isinstance(a, AgentRun) else build(AgentRun, **dict(a)) for a in agents
                ]
            status_value = build_status(status)
            started_at = started if started is not None else (entry.started or None)
            completed_at = completed
            if completed_at is None and status_value in (PhaseStatus.COMPLETED, PhaseStatus.FAILED):
                completed_at = utc_now()
            nxt = state.phase_after(manifest, phase)
            doc = build(
                Checkpoint,
                project_id=self.project_id,
                session_id=self.session_id,
                phase=phase,
                phase_name=entry.name,
                phase_slug=entry.slug,
                status=status_value,
                started=started_at,
                completed=completed_at,
                duration=duration,
                retry_count=entry.retry_count if retry_count is None else retry_count,
                execution_mode=execution_mode,
                agents=runs,
                inputs=dict(inputs) if isinstance(inputs, Mapping) else list(inputs),
                errors=list(errors),
                next_phase=nxt.number if nxt else None,
            )
            if doc.duration is None and doc.started and doc.completed:
                doc.duration = max(0.0, (doc.completed - doc.started).total_seconds())
            old = self._existing(f"{phase_rel}/{CHECKPOINT}", Checkpoint)
            if old is not None:
                doc.notes = old.notes
            if state.advance(manifest, doc, review=request_review):
                files[f"{phase_rel}/{FEEDBACK}"] = UserFeedback(
                    project_id=self.project_id,
                    session_id=self.session_id,
                    phase=phase,
                    phase_name=entry.name,
                    retry_count=doc.retry_count,
                )
                label = ", " + manifest.status.value.replace("_", " ")
            else:
                label = ""
            files[f"{phase_rel}/{CHECKPOINT}"] = doc
            return doc, self._plan(
                files,
                manifest,
                f"checkpoint({self.ref}): phase {phase} {entry.name} {doc.status.value}{label}",
                author=author,
                kind="checkpoint",
                phase=phase,
                agent=next(iter(new_outputs)) if len(new_outputs) == 1 else None,
                status=doc.status.value,
            )

        return self._write_planned(plan)

    def _existing(self, rel: str, model: type[D]) -> D | None:
        try:
            return self.store.read_doc(rel, model)
        except FileNotFoundError:
            return None
        except DocumentError:
            return None

    def save_feedback(
        self,
        phase: int,
        *,
        approved: bool | None = None,
        action: FeedbackAction | str | None = None,
        comments: str | None = None,
        requested_changes: Sequence[str] | None = None,
        reviewed: bool = True,
        reviewer: str | None = None,
        timestamp: _dt.datetime | str | None = None,
        author: Identity | str | None = None,
        keep_downstream: bool = False,
    ) -> UserFeedback:
        """Save a reviewer's decision (seed 003 ``user_feedback.md``) and apply it, as one commit.

        ``approved`` → the next phase can start; ``revise`` → the phase re-runs with the
        comments (its retry count + 1), and every later phase that already ran becomes
        ``stale`` (it runs again after this one and is reviewed again); ``rejected`` → the
        session ends as rejected.

        Args:
            phase: Phase number.
            approved: Seed 003's flag; ``True`` alone means ``action="approved"``.
            action: ``approved``/``approve``, ``revise``, ``rejected``/``reject`` or ``pending``.
            comments: Free text (stored verbatim); ``None`` keeps what the file has.
            requested_changes: One line each; ``None`` keeps what the file has.
            reviewed: Seed 003's flag.
            reviewer: Name (or ``Name <email>``) recorded in the file.
            timestamp: When it was reviewed (default now, UTC).
            author: Commit author (default: the reviewer, else git's user, else the login).
            keep_downstream: On ``revise``, leave later phases as they are (they were built
                on the version being revised; opt out of re-running them explicitly).

        Returns:
            The saved feedback.

        Raises:
            PhaseNotFoundError: Unknown phase.
            DocumentError: An unknown action, or ``approved`` contradicting ``action``.
            StoreError: The phase has not run yet (there is nothing to review).
        """
        who = self.store.person(author, [reviewer] if reviewer else [])
        with self.store.writing():
            manifest = self.manifest()
            self._ensure_open(manifest)
            entry = self.phase_entry(phase, manifest)
            rel = f"{self.rel}/{entry.directory}/{FEEDBACK}"
            old = self._existing(rel, UserFeedback)
            try:
                parsed_action = FeedbackAction.parse(action) if action is not None else None
            except ValueError as exc:
                raise DocumentError(str(exc), field="action") from None
            if parsed_action is None:
                parsed_action = FeedbackAction.APPROVED if approved else FeedbackAction.PENDING
            doc = build(
                UserFeedback,
                project_id=self.project_id,
                session_id=self.session_id,
                phase=phase,
                phase_name=entry.name,
                reviewed=reviewed,
                approved=bool(approved)
                if approved is not None
                else parsed_action is FeedbackAction.APPROVED,
                action=parsed_action,
                timestamp=timestamp or utc_now(),
                retry_count=entry.retry_count,
                requested_changes=list(requested_changes)
                if requested_changes is not None
                else (old.requested_changes if old else []),
                reviewer=reviewer,
                comments=comments if comments is not None else (old.comments if old else ""),
            )
            try:
                decision = doc.decision()
            except ValueError as exc:
                raise DocumentError(str(exc), field="action") from None
            if entry.status in (PhaseStatus.PENDING, PhaseStatus.SKIPPED):
                raise StoreError(
                    f"phase {phase} ({entry.name}) of {self.ref} has not run yet "
                    f"(status {entry.status.value}); there is nothing to review"
                )
            state.apply_feedback(manifest, phase, decision, keep_downstream=keep_downstream)
            planned = self._plan(
                {rel: doc},
                manifest,
                f"{CommitKind.USER_FEEDBACK}({self.ref}): "
                f"phase {phase} {entry.name} {decision.value}",
                author=who,
                kind=CommitKind.USER_FEEDBACK,
                phase=phase,
                status=decision.value,
            )
            self._apply(planned)
            return planned.committed(doc)  # redacted as committed

    def record_feedback(self, phase: int, *, author: Identity | str | None = None) -> str | None:
        """Record a person's edit of the phase's ``user_feedback.md`` (and apply its decision).

        Returns:
            The commit id, or ``None`` when the file has no unrecorded edit.

        Raises:
            DocumentError: The edited file does not validate (it stays on disk, uncommitted).
        """
        rel = f"{self.phase_rel(phase)}/{FEEDBACK}"
        with self.store.writing():
            pending = [e for e in self.store.unrecorded_edits() if e.path == rel]
            if not pending:
                return None
            if pending[0].error:
                from mdsessions.store.edits import check_edited  # edits imports this module

                check_edited(self.store, rel)  # raises the precise DocumentError (file, line)
                raise DocumentError(pending[0].error, path=rel)
            sha, _rejected = self.store.record_edits([rel], author=author)
            return sha

    # -- integrity ------------------------------------------------------------------------

    def validate(self) -> list[Problem]:
        """Check every document of the session and the manifest against the checkpoints.

        Returns:
            Problems with file, line and reason (empty when sound).
        """
        return validate_session(self)

    def validate_phase(self, phase: int) -> list[Problem]:
        """The problems of :meth:`validate` that concern phase number ``phase`` (its files)."""
        return validate_phase(self, phase)
