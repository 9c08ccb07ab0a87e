"""What changed in a session between two commits.

A tree diff limited to the session, grouped by phase, agent output and feedback, with
``git diff``'s patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mdsessions.git import diff as git_diff
from mdsessions.history.common import _PHASE_DIR_RE, _manifest_at
from mdsessions.store.store import (
    MANIFEST,
    Session,
)

__all__ = [
    "FileChange",
    "PhaseChange",
    "SessionDiff",
    "diff",
]


def _document_kind(name: str) -> str:
    if name == MANIFEST:
        return "manifest"
    if name == "checkpoint.md":
        return "checkpoint"
    if name == "user_feedback.md":
        return "feedback"
    if name.endswith(".md"):
        return "agent_output"
    return "other"


@dataclass(frozen=True)
class FileChange:
    """One file of a session that differs between two commits.

    Attributes:
        path: Store-relative path.
        change: ``added``, ``modified`` or ``deleted``.
        document: ``manifest``, ``checkpoint``, ``feedback``, ``agent_output`` or ``other``.
        phase: The phase number of its folder, or ``None`` (the manifest).
        agent: The agent id for an agent output.
        insertions: Lines added.
        deletions: Lines removed.
    """

    path: str
    change: str
    document: str
    phase: int | None = None
    agent: str | None = None
    insertions: int = 0
    deletions: int = 0

    def to_json(self) -> dict[str, Any]:
        """The change as a JSON-ready mapping."""
        return {
            "path": self.path,
            "change": self.change,
            "document": self.document,
            "phase": self.phase,
            "agent": self.agent,
            "insertions": self.insertions,
            "deletions": self.deletions,
        }


@dataclass(frozen=True)
class PhaseChange:
    """How one phase differs between two commits.

    Attributes:
        phase: The phase number.
        name: Its name (from the newer manifest that has it).
        status_before: Its status in the manifest at the older commit (``None``: absent).
        status_after: Its status at the newer commit.
        review_before: Its review state at the older commit.
        review_after: Its review state at the newer commit.
        files: The phase folder's changed files.
    """

    phase: int
    name: str | None
    status_before: str | None
    status_after: str | None
    review_before: str | None
    review_after: str | None
    files: tuple[FileChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The phase change as a JSON-ready mapping."""
        return {
            "phase": self.phase,
            "name": self.name,
            "status": {"before": self.status_before, "after": self.status_after},
            "review": {"before": self.review_before, "after": self.review_after},
            "files": [f.to_json() for f in self.files],
        }


@dataclass(frozen=True)
class SessionDiff:
    """The difference of a session between two checkpoints (commits).

    Attributes:
        session: ``project/session``.
        old: Full id of the older commit.
        new: Full id of the newer commit.
        files: Every changed file, by path.
        status_before: Session status at ``old`` (``None``: the session did not exist).
        status_after: Session status at ``new``.
        current_phase_before: The manifest's current phase at ``old``.
        current_phase_after: The manifest's current phase at ``new``.
        phases: Phases whose files, status or review changed, ascending.
        patch: The unified diff (``git diff old new -- <session folder>``); empty when not
            asked for.
    """

    session: str
    old: str
    new: str
    files: tuple[FileChange, ...]
    status_before: str | None
    status_after: str | None
    current_phase_before: int | None
    current_phase_after: int | None
    phases: tuple[PhaseChange, ...]
    patch: str = ""

    @property
    def agents(self) -> tuple[FileChange, ...]:
        """The changed agent outputs."""
        return tuple(f for f in self.files if f.document == "agent_output")

    @property
    def feedback(self) -> tuple[FileChange, ...]:
        """The changed user feedback files."""
        return tuple(f for f in self.files if f.document == "feedback")

    def to_json(self) -> dict[str, Any]:
        """The diff as a JSON-ready mapping."""
        return {
            "session": self.session,
            "old": self.old,
            "new": self.new,
            "status": {"before": self.status_before, "after": self.status_after},
            "current_phase": {
                "before": self.current_phase_before,
                "after": self.current_phase_after,
            },
            "files": [f.to_json() for f in self.files],
            "phases": [p.to_json() for p in self.phases],
            "agents": [f.to_json() for f in self.agents],
            "feedback": [f.to_json() for f in self.feedback],
            "insertions": sum(f.insertions for f in self.files),
            "deletions": sum(f.deletions for f in self.files),
            "patch": self.patch,
        }


def diff(session: Session, old: str, new: str = "HEAD", *, patch: bool = True) -> SessionDiff:
    """Compare a session at two checkpoints: the unified diff and a structured summary.

    Args:
        session: The session.
        old: The older revision (any form ``git rev-parse`` takes).
        new: The newer revision (default ``HEAD``).
        patch: Also produce the unified diff text (``False`` for a summary only).

    Returns:
        Changed files (added/modified/deleted, with line counts), the session's status and
        current phase at both ends, each changed phase with its status and review transition,
        and the patch.

    Raises:
        StoreError: If a revision names no commit.
    """
    store, git = session.store, session.store.git
    a, b = git.resolve_quick(old), git.resolve_quick(new)
    changed = git.diff_trees(a, b, session.rel)
    counts: dict[str, tuple[int, int]] = {}
    if changed:
        counts = git_diff.diff_numstat(git, a, b, session.rel)
    files = []
    for rel in sorted(changed):
        before, after = changed[rel]
        sub = rel[len(session.rel) + 1 :]
        folder, _, name = sub.rpartition("/")
        match = _PHASE_DIR_RE.match(folder)
        document = _document_kind(name) if folder == "" or match else "other"
        if folder == "" and name != MANIFEST:
            document = "other"
        if match and "/" in folder:  # phase_N_slug/prompts/{agent}.md: what an agent was given
            document = "prompt" if folder.endswith("/prompts") and name.endswith(".md") else "other"
        plus, minus = counts.get(rel, (0, 0))
        files.append(
            FileChange(
                path=rel,
                change="added" if before is None else "deleted" if after is None else "modified",
                document=document,
                phase=int(match.group(1)) if match else None,
                agent=name[:-3] if document == "agent_output" else None,
                insertions=plus,
                deletions=minus,
            )
        )
    m_old = _manifest_at(store, a, session.manifest_rel)
    m_new = _manifest_at(store, b, session.manifest_rel)
    rows_old = {p.number: p for p in (m_old.phases if m_old else [])}
    rows_new = {p.number: p for p in (m_new.phases if m_new else [])}
    phases = []
    for number in sorted(rows_old.keys() | rows_new.keys() | {f.phase for f in files if f.phase}):
        r_old, r_new = rows_old.get(number), rows_new.get(number)
        phase_files = tuple(f for f in files if f.phase == number)
        st = (r_old.status.value if r_old else None, r_new.status.value if r_new else None)
        rv = (r_old.review.value if r_old else None, r_new.review.value if r_new else None)
        if not phase_files and st[0] == st[1] and rv[0] == rv[1]:
            continue
        row = r_new or r_old
        phases.append(
            PhaseChange(number, row.name if row else None, st[0], st[1], rv[0], rv[1], phase_files)
        )
    text = ""
    if patch and changed:
        text = git_diff.diff_patch(git, a, b, session.rel)
    return SessionDiff(
        session=session.ref,
        old=a,
        new=b,
        files=tuple(files),
        status_before=m_old.status.value if m_old else None,
        status_after=m_new.status.value if m_new else None,
        current_phase_before=m_old.current_phase if m_old else None,
        current_phase_after=m_new.current_phase if m_new else None,
        phases=tuple(phases),
        patch=text,
    )
