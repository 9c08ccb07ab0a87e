"""The seed-003 facade: ``CheckpointManager`` with the Haytham API, every save a git commit.

Accepts the calls and arguments of seed 003 (``seeds/003_2072891feead04f8.txt``) exactly as
written and returns the shapes it documents:

* ``create_session(...)`` → the session folder (``Path``);
* ``save_checkpoint`` / ``save_agent_output`` / ``save_user_feedback`` → the written file
  (``Path``), each one git commit;
* ``load_session(...)`` → ``dict`` with ``current_phase``, ``completed_phases``, ``status`` …;
* ``get_phase_outputs(...)`` → ``{phase_num: {agent_name: content}}``;
* ``get_approved_phases(...)`` → ``list[int]``;
* ``validate_checkpoint(...)`` → ``(is_valid, errors)``.

Errors follow the seed: ``ValueError`` for an invalid phase number, status or execution mode
(our :class:`~mdsessions.errors.WorkflowError` / ``DocumentError`` are ``ValueError``), and
``FileNotFoundError`` when the session or phase does not exist.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mdsessions.errors import (
    PhaseNotFoundError,
    SessionNotFoundError,
    StoreError,
    StoreNotFoundError,
)
from mdsessions.models.schema import SessionManifest
from mdsessions.store.store import CHECKPOINT, FEEDBACK, Session, Store

__all__ = ["CheckpointManager"]


class CheckpointManager:
    """Seed 003's ``CheckpointManager`` on top of a git store.

    ``base_dir`` is the folder that holds ``{project_id}/sessions/{session_id}/`` (seed 003
    layout). If it lies inside an existing store whose projects folder it is, that store is
    used; otherwise ``base_dir`` itself becomes a store (a git repository whose sessions live
    directly below it).

    Args:
        base_dir: The projects folder, e.g. ``"projects"``.
        **options: Passed to :class:`~mdsessions.store.Store` (``lock_timeout``, ``durable``,
            ``author``).

    Raises:
        StoreError: If ``base_dir`` is inside a store but is not its projects folder.
    """

    def __init__(self, base_dir: str | os.PathLike[str] = "projects", **options: Any) -> None:
        base = Path(base_dir).resolve()
        start = base
        while not start.exists() and start != start.parent:
            start = start.parent  # the folder may not exist yet: look from where it would be
        try:
            store = Store.open(start, **options)
        except StoreNotFoundError:
            store = Store.init(base, projects_dir=".", **options)
        else:
            expected = (store.root / store.projects_dir).resolve()
            if expected != base:
                store.close()
                raise StoreError(
                    f"{base} is inside the store {store.root}, whose sessions live in "
                    f"{expected}; use CheckpointManager(base_dir={str(expected)!r})"
                )
        self.base_dir = base
        self.store = store
        # (project, session, phase) -> the phase's folder name, ``phase_{N}_{slug}``: fixed
        # by the session's workflow when it is created, so a save need not read the
        # manifest again to name the file it wrote (two reads and validations per save).
        self._dirs: dict[tuple[str, str, int], str] = {}

    def close(self) -> None:
        """Release git child processes."""
        self.store.close()

    def _session(self, project_id: str, session_id: str) -> Session:
        return self.store.session(project_id, session_id)

    def create_session(
        self,
        project_id: str,
        session_id: str,
        user_id: str | None = None,
        execution_mode: str = "mvp",
        workflow_type: str = "idea_validation",
        idea: str | None = None,
    ) -> Path:
        """Create the session folder and its manifest (one commit).

        Returns:
            The session folder.

        Raises:
            ValueError: Invalid ids or execution mode (``mvp`` or ``full``).
        """
        session = self.store.create_session(
            project_id,
            session_id,
            workflow=workflow_type,
            mode=execution_mode,
            user_id=user_id,
            idea=idea,
        )
        # Seed 003: "MVP Mode creates phase directories for 1, 2, 3, 6, 7". Empty folders are
        # invisible to git, so the store stays clean; files fill them as phases run.
        for entry in session.manifest().phases:
            (session.path / entry.directory).mkdir(exist_ok=True)
            self._dirs[(project_id, session_id, entry.number)] = entry.directory
        return session.path

    def save_checkpoint(
        self,
        project_id: str,
        session_id: str,
        phase_num: int,
        status: str,
        agents: Sequence[Mapping[str, Any]] | None = None,
        started: str | None = None,
        completed: str | None = None,
        duration: float | None = None,
        execution_mode: str = "single",
        errors: Sequence[str] = (),
        retry_count: int | None = None,
    ) -> Path:
        """Save ``phase_N_slug/checkpoint.md`` and update the manifest (one commit).

        Returns:
            The checkpoint file.

        Raises:
            ValueError: Invalid phase number or status.
            FileNotFoundError: No such session.
        """
        session = self._session(project_id, session_id)
        _check_number(phase_num)  # the phase itself is checked by the save's plan
        session.save_checkpoint(
            phase_num,
            status=status,
            agents=agents,
            started=started,
            completed=completed,
            duration=duration,
            execution_mode=execution_mode,
            errors=errors,
            retry_count=retry_count,
        )
        return session.path / self._phase_dir(session, phase_num) / CHECKPOINT

    def save_agent_output(
        self,
        project_id: str,
        session_id: str,
        phase_num: int,
        agent_name: str,
        output_content: str,
        status: str = "completed",
        duration: float | None = None,
        model: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        tools_used: Sequence[str] = (),
        cost: float = 0.0,
    ) -> Path:
        """Save ``phase_N_slug/{agent_name}.md`` with the content verbatim (one commit).

        Returns:
            The agent output file.
        """
        session = self._session(project_id, session_id)
        _check_number(phase_num)  # the phase itself is checked by the save's plan
        session.save_agent_output(
            phase_num,
            agent_name,
            output_content,
            status=status,
            duration=duration,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tools_used=tools_used,
            cost=cost,
        )
        return session.path / self._phase_dir(session, phase_num) / f"{agent_name}.md"

    def save_user_feedback(
        self,
        project_id: str,
        session_id: str,
        phase_num: int,
        reviewed: bool = True,
        approved: bool = False,
        comments: str = "",
        action: str | None = None,
        requested_changes: Sequence[str] = (),
        reviewer: str | None = None,
    ) -> Path:
        """Save ``phase_N_slug/user_feedback.md`` and apply the decision (one commit).

        Returns:
            The feedback file.
        """
        session = self._session(project_id, session_id)
        _check_number(phase_num)  # the phase itself is checked by the save's plan
        session.save_feedback(
            phase_num,
            reviewed=reviewed,
            approved=approved,
            comments=comments,
            action=action,
            requested_changes=list(requested_changes),
            reviewer=reviewer,
        )
        return session.path / self._phase_dir(session, phase_num) / FEEDBACK

    def load_session(self, project_id: str, session_id: str) -> dict[str, Any]:
        """The session state as seed 003's dict.

        Returns:
            ``{"project_id", "session_id", "user_id", "workflow_type", "execution_mode",
            "status", "created", "last_updated", "current_phase", "completed_phases",
            "approved_phases", "phases": {n: {...}}, "session_dir"}``.

        Raises:
            FileNotFoundError: No such session.
        """
        manifest = self._session(project_id, session_id).manifest()
        return _state(manifest, self.store.root / self.store.session_rel(project_id, session_id))

    def get_phase_outputs(
        self,
        project_id: str,
        session_id: str,
        phase_nums: Sequence[int] | None = None,
    ) -> dict[int, dict[str, str]]:
        """Agent outputs' contents: ``{phase_num: {agent_name: content}}``.

        Args:
            project_id: Project id.
            session_id: Session id.
            phase_nums: Phases to read; ``None`` for all completed phases.
        """
        session = self._session(project_id, session_id)
        if phase_nums is None:
            phase_nums = session.completed_phases
        for number in phase_nums:
            self._check_phase(session, number)
        return {
            number: {name: out.content for name, out in outputs.items()}
            for number, outputs in session.outputs(phase_nums).items()
        }

    def get_approved_phases(self, project_id: str, session_id: str) -> list[int]:
        """Phase numbers a reviewer approved, ascending."""
        return self._session(project_id, session_id).approved_phases

    def validate_checkpoint(
        self, project_id: str, session_id: str, phase_num: int
    ) -> tuple[bool, list[str]]:
        """Validate a phase's checkpoint: present, parsed, complete, in agreement with the manifest.

        Returns:
            ``(is_valid, errors)`` with one message per problem (file and reason).
        """
        try:
            session = self._session(project_id, session_id)
            self._check_phase(session, phase_num)
        except (SessionNotFoundError, ValueError) as exc:
            return False, [str(exc)]
        folder = session.path / self._phase_dir(session, phase_num)
        rel = f"{session.phase_rel(phase_num)}/{CHECKPOINT}"
        if not (folder / CHECKPOINT).is_file():
            return False, [f"{rel}: checkpoint file not found"]
        errors = [str(p) for p in session.validate_phase(phase_num)]
        text = (folder / CHECKPOINT).read_text(encoding="utf-8")
        for section in ("## Metadata", "## Agents in Phase", "## Metrics"):
            if f"\n{section}\n" not in text:
                errors.append(f"{rel}: missing required section '{section}'")
        return not errors, errors

    def _check_phase(self, session: Session, phase_num: int) -> None:
        _check_number(phase_num)
        session.phase_entry(phase_num)

    def _phase_dir(self, session: Session, phase_num: int) -> str:
        key = (session.project_id, session.session_id, phase_num)
        folder = self._dirs.get(key)
        if folder is None:
            folder = self._dirs[key] = session.phase_entry(phase_num).directory
        return folder


def _check_number(phase_num: object) -> None:
    if not isinstance(phase_num, int) or isinstance(phase_num, bool):
        raise PhaseNotFoundError(f"invalid phase number {phase_num!r}: expected an integer")


def _state(manifest: SessionManifest, folder: Path) -> dict[str, Any]:
    data = manifest.frontmatter()
    return {
        "project_id": manifest.project_id,
        "session_id": manifest.session_id,
        "user_id": manifest.user_id,
        "workflow_type": manifest.workflow,
        "execution_mode": manifest.mode,
        "status": manifest.status.value,
        "created": data["created"],
        "last_updated": data["updated"],
        "current_phase": manifest.current_phase,
        "completed_phases": manifest.completed_phases,
        "approved_phases": manifest.approved_phases,
        "phases": {p["number"]: p for p in data["phases"]},
        "totals": data["totals"],
        "session_dir": str(folder),
    }
