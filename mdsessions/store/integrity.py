"""Integrity of a session: its documents parse, and its manifest agrees with its checkpoints.

What :meth:`Session.validate <mdsessions.store.session.Session.validate>` and
:meth:`Store.validate <mdsessions.store.store.Store.validate>` report; ``mdsessions verify``
adds git's own checks and the commits' trailers (:mod:`mdsessions.history.verify`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mdsessions.documents.feedback import check_feedback_agrees
from mdsessions.documents.frontmatter import loads
from mdsessions.errors import DocumentError
from mdsessions.models.results import Result
from mdsessions.models.schema import (
    Checkpoint,
    DocumentKind,
    PhaseStatus,
    ReviewState,
    Transcript,
    UserFeedback,
)
from mdsessions.store.config import is_editor_temp
from mdsessions.store.paths import CHECKPOINT, PROMPTS_DIR, TRANSCRIPTS_DIR

if TYPE_CHECKING:
    from mdsessions.store.session import Session

__all__ = ["Problem", "validate_phase", "validate_session"]


class Problem(Result):
    """One finding of :meth:`Store.validate` / :meth:`Session.validate` (and ``verify``)."""

    path: str
    """Store-relative file the problem is in (``git fsck`` or ``commit <id>`` for the
    repository's own checks)."""
    reason: str
    """What is wrong and what was expected."""
    line: int | None = None
    """1-based line, when known."""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


def validate_session(session: Session) -> list[Problem]:
    """Check every document of the session and the manifest against the checkpoints.

    Returns:
        Problems with file, line and reason (empty when sound).
    """
    problems: list[Problem] = []
    try:
        manifest = session.manifest()
    except DocumentError as exc:
        return [Problem(path=exc.path or session.manifest_rel, reason=exc.reason, line=exc.line)]
    if manifest.project_id != session.project_id or manifest.session_id != session.session_id:
        problems.append(
            Problem(
                path=session.manifest_rel,
                reason=f"ids {manifest.project_id}/{manifest.session_id} do "
                f"not match the folder {session.ref}",
            )
        )
    known = {p.directory: p for p in manifest.phases}
    for folder in sorted(session.path.iterdir()):
        if folder.is_dir() and folder.name.startswith("phase_") and folder.name not in known:
            problems.append(
                Problem(
                    path=folder.relative_to(session.store.root).as_posix(),
                    reason="phase folder is not in the manifest's phase table",
                )
            )
    for entry in manifest.phases:
        folder_rel = f"{session.rel}/{entry.directory}"
        folder = session.store.root / folder_rel
        checkpoint = None
        if folder.is_dir():
            documents = sorted(folder.glob("*.md")) + sorted(folder.glob(f"{PROMPTS_DIR}/*.md"))
            for path in documents:
                if is_editor_temp(path.name):
                    continue  # an editor's lock/temp file (emacs' .#agent.md)
                rel = path.relative_to(session.store.root).as_posix()
                try:
                    text = session.store.read_text(rel)
                    doc = loads(text, path=rel)
                    if isinstance(doc, UserFeedback) and entry.review is ReviewState.PENDING:
                        check_feedback_agrees(text, rel)  # the decision about to be recorded
                except DocumentError as exc:
                    problems.append(
                        Problem(
                            path=rel,
                            reason=exc.reason
                            if exc.field is None
                            else f"field '{exc.field}': {exc.reason}",
                            line=exc.line,
                        )
                    )
                    continue
                if getattr(doc, "phase", entry.number) != entry.number:
                    problems.append(
                        Problem(
                            path=rel,
                            reason=f"phase {getattr(doc, 'phase', '?')} does "
                            f"not match its folder (phase {entry.number})",
                        )
                    )
                if isinstance(doc, Checkpoint):
                    checkpoint = doc
        cp_rel = f"{folder_rel}/{CHECKPOINT}"
        if checkpoint is None:
            if (
                entry.status not in (PhaseStatus.PENDING, PhaseStatus.IN_PROGRESS)
                and not (folder / CHECKPOINT).exists()
            ):
                problems.append(
                    Problem(
                        path=session.manifest_rel,
                        reason=f"phase {entry.number} is {entry.status.value} but {cp_rel} "
                        "is missing",
                    )
                )
            continue
        stale_run = entry.status is PhaseStatus.STALE and checkpoint.status in (
            PhaseStatus.COMPLETED,
            PhaseStatus.FAILED,
        )  # the checkpoint of the run that an upstream revision made stale
        if checkpoint.status is not entry.status and not stale_run:
            problems.append(
                Problem(
                    path=cp_rel,
                    reason=f"status {checkpoint.status.value} disagrees with the "
                    f"manifest's {entry.status.value} for phase {entry.number}",
                )
            )
        for run in checkpoint.agents:
            name = run.output_file or f"{run.agent_name}.md"
            if run.status is PhaseStatus.COMPLETED and not (folder / name).is_file():
                problems.append(
                    Problem(
                        path=cp_rel, reason=f"agent {run.agent_name}: output file {name} is missing"
                    )
                )
    return problems + _transcript_problems(session)


def _transcript_problems(session: Session) -> list[Problem]:
    """Each ``transcripts/*.md`` parses as a transcript of this session, named as its file."""
    problems: list[Problem] = []
    for path in sorted((session.path / TRANSCRIPTS_DIR).glob("*.md")):
        if is_editor_temp(path.name):
            continue
        rel = path.relative_to(session.store.root).as_posix()
        try:
            doc = loads(session.store.read_text(rel), path=rel, kind=DocumentKind.TRANSCRIPT)
        except DocumentError as exc:
            field = f"field '{exc.field}': " if exc.field else ""
            problems.append(Problem(path=rel, reason=field + exc.reason, line=exc.line))
            continue
        assert isinstance(doc, Transcript)
        if (doc.project_id, doc.session_id, doc.name) != (
            session.project_id,
            session.session_id,
            path.stem,
        ):
            problems.append(
                Problem(
                    path=rel,
                    reason=f"transcript {doc.project_id}/{doc.session_id} {doc.name} does not "
                    f"match its file ({session.ref} {path.stem})",
                )
            )
    return problems


def validate_phase(session: Session, phase: int) -> list[Problem]:
    """Validate one phase's files and its agreement with the manifest."""
    folder = session.phase_rel(phase)
    return [
        p
        for p in validate_session(session)
        if p.path.startswith(folder + "/")
        or (p.path == session.manifest_rel and f"phase {phase} " in p.reason)
    ]
