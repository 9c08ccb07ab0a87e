"""A session's lifecycle, tags and metadata: pause, resume, end, tag, metadata; one commit each.

Issue 14 items 1 and 2 (seeds 000, 001, 002, 004). Each write changes only the session
manifest (``session_manifest.md``), through the session's planned write
(:func:`mdsessions.store.writes.write_planned`), as one commit whose ``Mdsessions-Kind`` is
``pause``, ``resume``, ``end``, ``tag`` or ``metadata``. The status rules are the state
machine's (:func:`mdsessions.models.state.pause`, :func:`~mdsessions.models.state.resume`,
:func:`~mdsessions.models.state.end`); a refused change raises before anything is written.
A change that changes nothing (a tag the session has, a metadata value it holds) commits
nothing and says so in its result.

:class:`Lifecycle` holds the methods; :class:`~mdsessions.store.session.Session` inherits
them, so they are called as ``session.pause()``, ``session.add_tags(["pilot"])``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from mdsessions.errors import InvalidArgumentError, StoreError
from mdsessions.git.repo import Identity
from mdsessions.models import state
from mdsessions.models.results import Change, Result
from mdsessions.models.schema import SessionManifest, SessionStatus, UTCTime, utc_now
from mdsessions.store.checks import build
from mdsessions.store.commits import CommitKind
from mdsessions.store.writes import Plan

if TYPE_CHECKING:
    from mdsessions.store.session import Session
    from mdsessions.store.store import InboxItem, Store

__all__ = ["Lifecycle", "LifecycleResult", "MetadataResult", "TagsResult", "without_paused"]

R = TypeVar("R")


class LifecycleResult(Result):
    """What ``pause``, ``resume`` or ``end`` did to a session."""

    project: str
    """Project id."""
    session: str
    """Session id."""
    action: Literal["pause", "resume", "end"]
    """The change made (the commit's ``Mdsessions-Kind``)."""
    status: Change
    """The session status before and after."""
    current_phase: int | None
    """The phase the session is at after the change (``null`` once it ended)."""
    paused: UTCTime | None
    """When it was paused (UTC), ``null`` unless it is paused now."""
    ended: UTCTime | None
    """When it was ended (UTC), ``null`` unless it was ended."""
    end_reason: str | None
    """Why it was ended (one line), if a reason was given."""


class TagsResult(Result):
    """A session's tags after ``tag add``, ``tag remove`` or ``tag list``."""

    project: str
    """Project id."""
    session: str
    """Session id."""
    tags: tuple[str, ...]
    """The session's tags, in the order they were added."""
    added: tuple[str, ...] = ()
    """Tags this call added (empty for a read, or when the session had them all)."""
    removed: tuple[str, ...] = ()
    """Tags this call removed."""
    committed: bool = False
    """Whether the call made a commit (``Mdsessions-Kind: tag``)."""


class MetadataResult(Result):
    """A session's free-form ``metadata`` mapping after ``meta`` (a read or a change)."""

    project: str
    """Project id."""
    session: str
    """Session id."""
    metadata: dict[str, Any]
    """The mapping, keys in the order they were first set, values as stored."""
    changed: tuple[str, ...] = ()
    """Keys this call set to a new value or removed."""
    committed: bool = False
    """Whether the call made a commit (``Mdsessions-Kind: metadata``)."""


class _Unchanged(Exception):
    """Raised from a plan that would change nothing: the write is dropped, its result kept."""

    def __init__(self, result: object) -> None:
        super().__init__("unchanged")
        self.result = result


def without_paused(store: Store, items: list[InboxItem], project_id: str | None) -> list[InboxItem]:
    """Inbox items of sessions that are not paused (the inbox's default).

    Args:
        store: The store.
        items: Inbox items.
        project_id: The project the items were limited to, if any.

    Returns:
        ``items`` without those of paused sessions, order kept.
    """
    if not items:
        return items
    paused = {s.ref for s in store.list_sessions(project_id) if s.status is SessionStatus.PAUSED}
    return [i for i in items if f"{i.project_id}/{i.session_id}" not in paused]


def _one_line_values(values: Sequence[str], what: str) -> list[str]:
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            raise InvalidArgumentError(
                f"invalid {what} {value!r}: expected non-empty text without leading or "
                "trailing spaces"
            )
        if value not in out:
            out.append(value)
    return out


class Lifecycle:
    """Pause, resume, end; tags; metadata. Mixed into :class:`~mdsessions.store.session.Session`."""

    def _change(
        self,
        kind: CommitKind,
        subject: str,
        change: Callable[[SessionManifest], R],
        author: Identity | str | None,
    ) -> R:
        """One planned write of the manifest alone; ``change`` raises ``_Unchanged`` to skip."""
        session = cast("Session", self)
        who = session.store.person(author)  # a person's decision, authored by them

        def plan(manifest: SessionManifest) -> tuple[R, Plan]:
            result = change(manifest)
            message = f"{kind}({session.ref}): {subject}"
            return result, session._plan({}, manifest, message, author=who, kind=kind)

        try:
            return session._write_planned(plan)
        except _Unchanged as skip:
            return cast("R", skip.result)

    # -- pause, resume, end ---------------------------------------------------------------

    def _transition(
        self,
        action: Literal["pause", "resume", "end"],
        step: Callable[[SessionManifest], None],
        subject: str,
        author: Identity | str | None,
    ) -> LifecycleResult:
        session = cast("Session", self)

        def change(manifest: SessionManifest) -> LifecycleResult:
            before = manifest.status
            try:
                step(manifest)
            except ValueError as exc:
                raise StoreError(f"cannot {action} session {session.ref}: {exc}") from None
            return LifecycleResult(
                project=session.project_id,
                session=session.session_id,
                action=action,
                status=Change(before=before.value, after=manifest.status.value),
                current_phase=manifest.current_phase,
                paused=manifest.paused,
                ended=manifest.ended,
                end_reason=manifest.end_reason,
            )

        return self._change(CommitKind(action), subject, change, author)

    def pause(self, *, author: Identity | str | None = None) -> LifecycleResult:
        """Pause the session as one commit (``Mdsessions-Kind: pause``; seeds 001, 002).

        The session becomes ``paused`` (its ``paused`` time is now, UTC) and keeps its
        current phase; the runner refuses to run it until :meth:`resume`, and the inbox
        leaves its phases out unless asked. Reviews and saves still work.

        Args:
            author: Commit author, ``Name <email>`` (default: git's user of the store).

        Returns:
            The change.

        Raises:
            StoreError: The session is already paused, or it ended (nothing is written).
        """
        return self._transition("pause", lambda m: state.pause(m, now=utc_now()), "paused", author)

    def resume(self, *, author: Identity | str | None = None) -> LifecycleResult:
        """Resume a paused session as one commit (``Mdsessions-Kind: resume``).

        Its status follows its phase table again (e.g. ``in_progress`` at its current phase).

        Args:
            author: Commit author, ``Name <email>`` (default: git's user of the store).

        Returns:
            The change.

        Raises:
            StoreError: The session is not paused (nothing is written).
        """
        return self._transition("resume", state.resume, "resumed", author)

    def end(
        self, *, reason: str | None = None, author: Identity | str | None = None
    ) -> LifecycleResult:
        """End the session as one commit (``Mdsessions-Kind: end``).

        A session ended before its last phase is ``cancelled`` and takes no more writes; one
        whose phases are done keeps ``completed`` (or ``rejected``). Either way the manifest
        records ``ended`` (UTC) and ``end_reason``.

        Args:
            reason: Why, one line (recorded as ``end_reason`` and in the commit subject).
            author: Commit author, ``Name <email>`` (default: git's user of the store).

        Returns:
            The change.

        Raises:
            DocumentError: ``reason`` is not one line (field ``end_reason``; nothing is
                written).
            StoreError: The session was ended already (nothing is written).
        """
        reason = (reason or "").strip() or None
        build(SessionManifest, **_probe({}), end_reason=reason)  # one line, else named
        subject = f"ended: {reason}" if reason else "ended"
        return self._transition(
            "end", lambda m: state.end(m, now=utc_now(), reason=reason), subject, author
        )

    def refuse_if_paused(self) -> None:
        """Refuse a paused session, saying how to resume it (what the runner calls first).

        Raises:
            StoreError: The session is paused.
        """
        session = cast("Session", self)
        manifest = session.manifest()
        if manifest.status is SessionStatus.PAUSED:
            since = f" since {manifest.paused:%Y-%m-%dT%H:%M:%SZ}" if manifest.paused else ""
            raise StoreError(
                f"session {session.ref} is paused{since}; resume it with "
                f"`mdsessions resume {session.ref}` (Session.resume()), then run it again"
            )

    # -- tags -----------------------------------------------------------------------------

    def tags(self) -> TagsResult:
        """The session's tags (from its manifest).

        Returns:
            The tags, nothing added or removed.
        """
        session = cast("Session", self)
        return TagsResult(
            project=session.project_id,
            session=session.session_id,
            tags=tuple(session.manifest().tags),
        )

    def add_tags(self, tags: Sequence[str], *, author: Identity | str | None = None) -> TagsResult:
        """Add tags to the session as one commit (``Mdsessions-Kind: tag``; seeds 000, 002).

        Tags the session has already are left as they are; when it has them all, nothing is
        committed. Works on ended sessions too (tags organise old work).

        Args:
            tags: Labels: non-empty text, one line, no leading or trailing spaces.
            author: Commit author, ``Name <email>`` (default: git's user of the store).

        Returns:
            The tags after, and those added.

        Raises:
            InvalidArgumentError: No tag given, or one with leading or trailing spaces.
            DocumentError: A tag that is not one line (field ``tags``).
        """
        wanted = _one_line_values(tags, "tag")
        if not wanted:
            raise InvalidArgumentError("no tag given: expected one or more tags")
        build(SessionManifest, **_probe({}), tags=wanted)  # one line each, else named
        return self._retag(wanted, [], author)

    def remove_tags(
        self, tags: Sequence[str], *, author: Identity | str | None = None
    ) -> TagsResult:
        """Remove tags from the session as one commit (``Mdsessions-Kind: tag``).

        Args:
            tags: Tags the session has.
            author: Commit author, ``Name <email>`` (default: git's user of the store).

        Returns:
            The tags after, and those removed.

        Raises:
            InvalidArgumentError: No tag given, or a tag the session does not have (the
                message lists its tags; nothing is written).
        """
        unwanted = _one_line_values(tags, "tag")
        if not unwanted:
            raise InvalidArgumentError("no tag given: expected one or more tags")
        return self._retag([], unwanted, author)

    def _retag(
        self, add: list[str], remove: list[str], author: Identity | str | None
    ) -> TagsResult:
        session = cast("Session", self)

        def change(manifest: SessionManifest) -> TagsResult:
            missing = [t for t in remove if t not in manifest.tags]
            if missing:
                have = ", ".join(manifest.tags) or "none"
                raise InvalidArgumentError(
                    f"session {session.ref} has no tag {missing[0]!r} (its tags: {have})"
                )
            added = [t for t in add if t not in manifest.tags]
            manifest.tags = [t for t in manifest.tags if t not in remove] + added
            result = TagsResult(
                project=session.project_id,
                session=session.session_id,
                tags=tuple(manifest.tags),
                added=tuple(added),
                removed=tuple(remove),
                committed=bool(added or remove),
            )
            if not result.committed:
                raise _Unchanged(result)
            return result

        words = [f"+{t}" for t in add] + [f"-{t}" for t in remove]
        return self._change(CommitKind.TAG, "tags " + " ".join(words), change, author)

    # -- metadata -------------------------------------------------------------------------

    def metadata(self) -> MetadataResult:
        """The session's free-form ``metadata`` mapping, as stored.

        Returns:
            The mapping, nothing changed.
        """
        session = cast("Session", self)
        return MetadataResult(
            project=session.project_id,
            session=session.session_id,
            metadata=session.manifest().metadata,
        )

    def set_metadata(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        remove: Sequence[str] = (),
        author: Identity | str | None = None,
    ) -> MetadataResult:
        """Set and remove ``metadata`` keys as one commit (``Mdsessions-Kind: metadata``).

        Values are kept verbatim (text stays text: ``--meta budget=10`` stores ``"10"``);
        other keys are left as they are. Setting a key to the value it holds changes
        nothing; when nothing changes, nothing is committed.

        Args:
            values: Keys to set: one-line text keys; values text, numbers, true/false,
                null, lists or mappings of those.
            remove: Keys to remove (each must be set).
            author: Commit author, ``Name <email>`` (default: git's user of the store).

        Returns:
            The mapping after, and the keys changed.

        Raises:
            InvalidArgumentError: Nothing to set or remove, a key both set and removed, or a
                key to remove that is not set (nothing is written).
            DocumentError: A key or value the manifest cannot hold, naming it.
        """
        session = cast("Session", self)
        values = dict(values or {})
        drop = _one_line_values(list(remove), "metadata key")
        if not values and not drop:
            raise InvalidArgumentError("nothing to change: give key=value pairs or keys to remove")
        both = sorted(set(values) & set(drop))
        if both:
            raise InvalidArgumentError(f"metadata key {both[0]!r} is both set and removed")
        build(SessionManifest, **_probe(values))  # a bad key or value, named, before the lock

        def change(manifest: SessionManifest) -> MetadataResult:
            missing = [k for k in drop if k not in manifest.metadata]
            if missing:
                have = ", ".join(manifest.metadata) or "none"
                raise InvalidArgumentError(
                    f"session {session.ref} has no metadata key {missing[0]!r} (its keys: {have})"
                )
            data = dict(manifest.metadata)
            changed = [k for k, v in values.items() if k not in data or data[k] != v] + drop
            for key in drop:
                del data[key]
            data.update(values)
            manifest.metadata = data
            result = MetadataResult(
                project=session.project_id,
                session=session.session_id,
                metadata=manifest.metadata,
                changed=tuple(changed),
                committed=bool(changed),
            )
            if not changed:
                raise _Unchanged(result)
            return result

        subject = "metadata " + " ".join([f"+{k}" for k in values] + [f"-{k}" for k in drop])
        return self._change(CommitKind.METADATA, subject, change, author)


def _probe(values: dict[str, Any]) -> dict[str, Any]:
    """The fields of a throwaway manifest holding ``values`` (to validate them)."""
    return {
        "project_id": "p",
        "session_id": "s",
        "created": "2000-01-01T00:00:00Z",
        "updated": "2000-01-01T00:00:00Z",
        "metadata": values,
    }
