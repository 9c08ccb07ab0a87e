"""What changed in a session between two commits.

A tree diff limited to the session, grouped by phase, agent output and feedback, with
``git diff``'s patch.
"""

from __future__ import annotations

from pydantic import Field, computed_field

from mdsessions.git import diff as git_diff
from mdsessions.history.common import _PHASE_DIR_RE, _manifest_at
from mdsessions.models.results import Change, NumberChange, Result, SessionResult
from mdsessions.models.schema import DocumentKind
from mdsessions.store.paths import CHECKPOINT, FEEDBACK, MANIFEST, TRANSCRIPTS_DIR
from mdsessions.store.store import Session

__all__ = [
    "FileChange",
    "PhaseChange",
    "SessionDiff",
    "diff",
]


def _document_kind(name: str) -> str:
    if name == MANIFEST:
        return DocumentKind.SESSION_MANIFEST.value
    if name == CHECKPOINT:
        return DocumentKind.CHECKPOINT.value
    if name == FEEDBACK:
        return DocumentKind.USER_FEEDBACK.value
    if name.endswith(".md"):
        return DocumentKind.AGENT_OUTPUT.value
    return "other"


class FileChange(Result):
    """One file of a session that differs between two commits."""

    path: str
    """Store-relative path."""
    change: str
    """``added``, ``modified`` or ``deleted``."""
    document: str
    """The document kind: ``session_manifest``, ``checkpoint``, ``agent_output``,
    ``user_feedback``, ``prompt``, ``transcript``, or ``other`` for a file that is none of
    these."""
    phase: int | None = None
    """The phase number of its folder, or ``null`` (the manifest)."""
    agent: str | None = None
    """The agent id of an agent output."""
    insertions: int = 0
    """Lines added."""
    deletions: int = 0
    """Lines removed."""


class PhaseChange(Result):
    """How one phase differs between two commits."""

    phase: int
    """The phase number."""
    name: str | None
    """Its name (from the newer manifest that has it)."""
    status_before: str | None = Field(exclude=True)
    """Its status in the manifest at the older commit (``None``: absent)."""
    status_after: str | None = Field(exclude=True)
    """Its status at the newer commit."""
    review_before: str | None = Field(exclude=True)
    """Its review state at the older commit."""
    review_after: str | None = Field(exclude=True)
    """Its review state at the newer commit."""
    files: tuple[FileChange, ...] = ()
    """The phase folder's changed files."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Change:
        """The phase's status in the manifest at the older and at the newer commit."""
        return Change(before=self.status_before, after=self.status_after)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def review(self) -> Change:
        """The phase's review state at the older and at the newer commit."""
        return Change(before=self.review_before, after=self.review_after)


class SessionDiff(SessionResult):
    """The difference of a session between two checkpoints (commits)."""

    old: str = Field(serialization_alias="old_commit")
    """Full id of the older commit."""
    new: str = Field(serialization_alias="new_commit")
    """Full id of the newer commit."""
    files: tuple[FileChange, ...]
    """Every changed file, by path."""
    status_before: str | None = Field(exclude=True)
    """Session status at ``old`` (``None``: the session did not exist)."""
    status_after: str | None = Field(exclude=True)
    """Session status at ``new``."""
    current_phase_before: int | None = Field(exclude=True)
    """The manifest's current phase at ``old``."""
    current_phase_after: int | None = Field(exclude=True)
    """The manifest's current phase at ``new``."""
    phases: tuple[PhaseChange, ...]
    """Phases whose files, status or review changed, ascending."""
    patch: str = ""
    """The unified diff (``git diff old new -- <session folder>``); empty when not asked for."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Change:
        """The session's status at the older and at the newer commit (``null``: absent)."""
        return Change(before=self.status_before, after=self.status_after)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def current_phase(self) -> NumberChange:
        """The manifest's current phase at the older and at the newer commit."""
        return NumberChange(before=self.current_phase_before, after=self.current_phase_after)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def insertions(self) -> int:
        """Lines added, all files."""
        return sum(f.insertions for f in self.files)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def deletions(self) -> int:
        """Lines removed, all files."""
        return sum(f.deletions for f in self.files)

    @property
    def agents(self) -> tuple[FileChange, ...]:
        """The changed agent outputs."""
        return tuple(f for f in self.files if f.document == DocumentKind.AGENT_OUTPUT.value)

    @property
    def feedback(self) -> tuple[FileChange, ...]:
        """The changed user feedback files."""
        return tuple(f for f in self.files if f.document == DocumentKind.USER_FEEDBACK.value)


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
            prompt = folder.endswith("/prompts") and name.endswith(".md")
            document = DocumentKind.PROMPT.value if prompt else "other"
        if folder == TRANSCRIPTS_DIR and name.endswith(".md"):
            document = DocumentKind.TRANSCRIPT.value
        plus, minus = counts.get(rel, (0, 0))
        files.append(
            FileChange(
                path=rel,
                change="added" if before is None else "deleted" if after is None else "modified",
                document=document,
                phase=int(match.group(1)) if match else None,
                agent=name[:-3] if document == DocumentKind.AGENT_OUTPUT.value else None,
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
            PhaseChange(
                phase=number,
                name=row.name if row else None,
                status_before=st[0],
                status_after=st[1],
                review_before=rv[0],
                review_after=rv[1],
                files=phase_files,
            )
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
