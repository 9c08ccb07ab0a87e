"""Pull and sync: ``git fetch`` + a per-session merge.

A version a sync loses is set aside under ``refs/mdsessions/set-aside/…`` and named, never
dropped (DESIGN.md "Sharing the store").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import ConfigDict, Field, computed_field

from mdsessions.errors import (
    ConflictError,
    DocumentError,
    InvalidArgumentError,
    InvalidIdentifierError,
    PushRejectedError,
    SessionExistsError,
    StoreError,
    SyncConflictError,
)
from mdsessions.git import transport
from mdsessions.history.common import _decode, _manifest_at, _session_of
from mdsessions.history.fork import _fork_files
from mdsessions.history.remotes import PushResult, _check_remote, push
from mdsessions.history.setaside import (
    SET_ASIDE_PREFIX,
    SET_ASIDE_REFSPEC,
    STORE_FILES,
    Lineage,
    SessionChange,
    SetAside,
    StoreFileChange,
    parse_set_aside_ref,
    set_aside_ref,
)
from mdsessions.models.results import Result, SessionRef, SessionResult
from mdsessions.store.commits import commit_message
from mdsessions.store.config import ConfigEditError, ConfigMerge, key_name, merge_config
from mdsessions.store.store import (
    CONFIG_FILE,
    MANIFEST,
    Identity,
    Session,
    Store,
    check_id,
)

__all__ = [
    "PullResult",
    "SessionConflict",
    "SyncConflictError",
    "list_set_aside",
    "pull",
    "resolve",
    "sync",
]

_log = logging.getLogger(__name__)


class SessionConflict(SessionResult):
    """A session changed on both sides of a pull."""

    mine: tuple[str, ...]
    """Session-relative files changed locally since the common ancestor."""
    theirs: tuple[str, ...]
    """Session-relative files changed on the remote since then."""


class PullResult(Result):
    """What :func:`pull` did."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    remote: str
    """The remote's name."""
    branch: str
    """The branch, e.g. ``main``."""
    action: str
    """``up-to-date``, ``fast-forward``, ``merged`` or ``remote-empty``."""
    commit: str | None
    """Full id of the store's ``HEAD`` afterwards."""
    sessions: tuple[str, ...] = Field(default=(), exclude=True)
    """Sessions the remote brought changes to (``project/session``)."""
    resolved: dict[str, str] = Field(default_factory=dict, exclude=True)
    """Session (or file) → how a conflict was resolved: ``mine``, ``theirs`` or
    ``forked as p/new``."""
    forked: Session | None = Field(default=None, exclude=True)
    """The session made by ``fork_theirs``, if any."""
    changes: tuple[SessionChange, ...] = ()
    """Per session, what the pull did to it (and what it set aside)."""
    files: tuple[StoreFileChange, ...] = ()
    """Per store file outside the sessions, what the pull did to it."""

    @computed_field(alias="forked")  # type: ignore[prop-decorator]
    @property
    def forked_session(self) -> SessionRef | None:
        """The session made by ``--fork-theirs``, if any."""
        return SessionRef.of(self.forked.ref) if self.forked is not None else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def set_aside(self) -> tuple[SetAside, ...]:
        """Every version this pull set aside (or found set aside already), once each."""
        seen: dict[tuple[str, str | None], SetAside] = {}
        found = [c.set_aside for c in self.changes] + [f.set_aside for f in self.files]
        for aside in found:
            if aside is not None:
                seen.setdefault((aside.ref, aside.session), aside)
        return tuple(seen.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per version of ours the remote replaced without including it."""
        out = []
        for change in self.changes:
            if change.change != "replaced" or change.set_aside is None:
                continue
            kept = change.set_aside
            also = f" and as session {change.fork} (forked there)" if change.fork else ""
            out.append(
                f"{change.session}: {self.remote}'s version replaces this store's and does not "
                f"include it ({change.status_before or '-'} -> {change.status_after or '-'}); "
                f"this store's version is kept as {kept.ref}{also}; get it back: "
                f"{kept.get_back}"
            )
        for item in self.files:
            if item.change == "replaced" and item.set_aside is not None:
                out.append(
                    f"{item.path}: {self.remote}'s version replaces this store's and does not "
                    f"include it; this store's version is kept as {item.set_aside.ref}; see it: "
                    f"git show {item.set_aside.commit[:12]}:{item.path}"
                )
        return tuple(out)


def _by_session(store: Store, paths: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    sessions: dict[str, list[str]] = {}
    other: list[str] = []
    for rel in sorted(paths):
        key = _session_of(store, rel)
        if key is None:
            other.append(rel)
        else:
            sessions.setdefault(f"{key[0]}/{key[1]}", []).append(rel)
    return sessions, other


def _key_rel(store: Store, key: str) -> str:
    project_id, _, session_id = key.partition("/")
    return store.session_rel(project_id, session_id)


def _fetch(store: Store, remote: str, branch: str) -> str | None:
    """Fetch the remote's branch (to ``refs/remotes/<remote>/<branch>``) and the set-aside refs.

    Returns the branch's commit, or ``None`` when the remote lacks the branch.
    """
    tracking = f"refs/remotes/{remote}/{branch}"
    fetched = transport.fetch(
        store.git, remote, [f"+refs/heads/{branch}:{tracking}", f"+{SET_ASIDE_REFSPEC}"]
    )
    if fetched.missing_ref:
        return None
    if not fetched.ok:
        raise StoreError(f"fetch from {remote} failed: {fetched.message}")
    return store.git.read_ref(tracking)


def _keep_aside(
    store: Store,
    session: str | None,
    commit: str,
    side: str,
    paths: Sequence[str] = (),
) -> SetAside:
    """Name the version of ``session`` (or of store files) at ``commit``: a set-aside ref."""
    git = store.git
    ref = set_aside_ref(session, commit)
    what = session or ", ".join(paths)
    try:
        created = git.create_ref(ref, commit, f"mdsessions: set aside {side} version of {what}")
    except ConflictError:  # a 12-digit clash with another commit: use the full id
        ref = f"{ref[:-12]}{commit}"
        created = git.create_ref(ref, commit, f"mdsessions: set aside {side} version of {what}")
    status = None
    if session is not None:
        manifest = _manifest_at(store, commit, f"{_key_rel(store, session)}/{MANIFEST}")
        status = manifest.status.value if manifest else None
    return SetAside(
        ref=ref,
        commit=commit,
        session=session,
        paths=tuple(paths),
        side=side,
        status=status,
        created=created,
    )


def _fork_of(store: Store, ours: str, theirs: str, key: str, sessions: Iterable[str]) -> str | None:
    """A session new in ``theirs`` forked from ``key`` at a commit holding our version of it."""
    rel = _key_rel(store, key)
    mine = store.git.entry(ours, rel)
    if mine is None:
        return None
    for other in sessions:
        if other == key or store.git.entry(ours, _key_rel(store, other)) is not None:
            continue
        manifest = _manifest_at(store, theirs, f"{_key_rel(store, other)}/{MANIFEST}")
        origin = manifest.forked_from if manifest else None
        if origin is None or origin.session != key:
            continue
        try:
            if store.git.entry(origin.commit, rel) == mine:
                return other
        except (StoreError, ValueError):
            continue
    return None


def _session_changes(
    store: Store,
    before: str | None,
    after: str,
    keys: Iterable[str],
    kinds: Mapping[str, str],
    kept: Mapping[str, SetAside],
    forks: Mapping[str, str],
) -> tuple[SessionChange, ...]:
    out = []
    for key in sorted(set(keys)):
        manifest_rel = f"{_key_rel(store, key)}/{MANIFEST}"
        old = _manifest_at(store, before, manifest_rel)
        new = _manifest_at(store, after, manifest_rel)
        change = kinds.get(key)
        if change is None:
            exists_before = before is not None and store.git.entry(before, manifest_rel)
            exists_after = store.git.entry(after, manifest_rel)
            if not exists_before and exists_after:
                change = "added"
            elif exists_before and not exists_after:
                change = "deleted"
            else:
                change = "updated"
        out.append(
            SessionChange(
                session=key,
                change=change,
                status_before=old.status.value if old else None,
                status_after=new.status.value if new else None,
                phase_before=old.current_phase if old else None,
                phase_after=new.current_phase if new else None,
                set_aside=kept.get(key),
                fork=forks.get(key),
            )
        )
    return tuple(out)


def _file_change(
    store: Store, before: str | None, after: str, path: str, change: str | None = None, **kw: Any
) -> StoreFileChange:
    if change is None:
        old = before is not None and store.git.entry(before, path) is not None
        new = store.git.entry(after, path) is not None
        change = "added" if new and not old else "deleted" if old and not new else "updated"
    return StoreFileChange(path=path, change=change, **kw)


def _text_at(store: Store, commit: str | None, rel: str) -> str | None:
    if commit is None:
        return None
    data = store.git.read_file(commit, rel)
    return None if data is None else _decode(data, rel)


def pull(
    store: Store,
    remote: str = "origin",
    *,
    keep: str | None = None,
    fork_theirs: str | None = None,
    author: Identity | str | None = None,
) -> PullResult:
    """Fetch the remote's branch and merge it, session by session; never lose a version silently.

    Sessions are single-writer, so a merge is per path: when the histories diverged, the
    session folders changed on each side since the common ancestor are compared. Disjoint
    sets make one merge commit (``Mdsessions-Kind: merge``, built in-process under the
    writer lock, so ``git status`` stays clean). ``mdsessions.toml`` merges key by key (two
    machines' workflow registrations add up). A session changed on both sides, a store file
    changed differently on both, or a ``mdsessions.toml`` key set to different values on
    both raises :class:`SyncConflictError` naming them, and nothing local changes. Then
    choose:

    * ``keep="mine"``: those sessions (keys, files) stay as they are here; the remote's
      version is set aside;
    * ``keep="theirs"``: they become the remote's; this store's version is set aside;
    * ``fork_theirs="NEW_ID"``: ours stays, the remote's version of the (one) conflicting
      session is added as ``project/NEW_ID`` (the fork mechanism, ``forked_from`` the
      remote's commit).

    A version set aside is named ``refs/mdsessions/set-aside/<project>/<session>/<12 hex>``
    (see :class:`SetAside`; pushed by :func:`push`, fetched here). Also when there is no
    conflict here: if the remote's version of a session does not include ours (the other
    machine resolved a conflict with ``keep="mine"`` over our work), ours is set aside
    under that name **before** the branch moves, the change is ``replaced`` and
    :attr:`PullResult.warnings` says so.

    Args:
        store: The store.
        remote: A remote name.
        keep: ``"mine"`` or ``"theirs"`` for conflicting sessions.
        fork_theirs: A new session id for the remote's version of the conflicting session.
        author: Author of a merge commit (default: git's user, else the login).

    Returns:
        What happened, per session and per store file, and what was set aside.

    Raises:
        SyncConflictError: Conflicting changes and no way out chosen (nothing changed).
        UnrecordedEditError: A file the merge would change holds a person's unrecorded edit
            (nothing changed).
        InvalidArgumentError: Both ``keep`` and ``fork_theirs``, or an unknown ``keep`` (a
            ``ValueError``).
        StoreError: git failed (unreachable remote, …).
    """
    began = time.perf_counter()
    result = _pull(store, remote, keep=keep, fork_theirs=fork_theirs, author=author)
    if _log.isEnabledFor(logging.INFO):
        _log_pull(result, began)
    return result


def _log_pull(result: PullResult, began: float) -> None:
    """One INFO record per pull, one per version set aside (the result warns of those)."""
    ms = round((time.perf_counter() - began) * 1000, 1)
    where, asides = f"{result.remote}/{result.branch}", result.set_aside
    counts = {"sessions": len(result.sessions), "set_aside": len(asides), "duration_ms": ms}
    extra: dict[str, Any] = {"operation": "pull", "remote": result.remote}
    extra |= {"action": result.action, "commit": result.commit, **counts}
    _log.info("pull %s: %s (%.1f ms)", where, result.action, ms, extra=extra)
    for aside in asides:
        what = f"{aside.side or 'a'} version of {aside.session or 'store files'}"
        extra = {"operation": "set_aside", "session": aside.session, "ref": aside.ref}
        _log.info("pull %s: %s set aside as %s", where, what, aside.ref, extra=extra)


def _pull(
    store: Store, remote: str, *, keep: str | None, fork_theirs: str | None, author: Any
) -> PullResult:
    if keep is not None and keep not in ("mine", "theirs"):
        raise InvalidArgumentError(f"keep must be 'mine' or 'theirs', not {keep!r}")
    if keep is not None and fork_theirs is not None:
        raise InvalidArgumentError("give keep or fork_theirs, not both")
    git = store.git
    ref = git.head_ref()
    branch = ref.removeprefix("refs/heads/")
    theirs = _fetch(store, _check_remote(remote), branch)
    if theirs is None:
        return PullResult(remote=remote, branch=branch, action="remote-empty", commit=git.head())
    who = store.person(author)
    with store.writing():
        ours = git.head()
        if ours is not None and git.is_ancestor(theirs, ours):
            return PullResult(remote=remote, branch=branch, action="up-to-date", commit=ours)
        if ours is None or git.is_ancestor(ours, theirs):
            return _fast_forward(store, remote, branch, ours, theirs)
        return _merge(store, remote, branch, ours, theirs, keep, fork_theirs, who)


def _fast_forward(
    store: Store, remote: str, branch: str, ours: str | None, theirs: str
) -> PullResult:
    git = store.git
    changed = git.diff_trees(ours, theirs)
    sessions, other = _by_session(store, changed)
    kept: dict[str, SetAside] = {}
    kinds: dict[str, str] = {}
    forks: dict[str, str] = {}
    files: dict[str, StoreFileChange] = {}
    if ours is not None:
        lineage = Lineage(git, ours, theirs)
        for key in sessions:
            if not lineage.keeps(_key_rel(store, key)):
                kinds[key] = "replaced"
                kept[key] = _keep_aside(store, key, ours, "mine")
                fork = _fork_of(store, ours, theirs, key, sessions)
                if fork is not None:
                    forks[key] = fork
        lost = [p for p in other if not lineage.keeps(p)]
        if lost:
            aside = _keep_aside(store, None, ours, "mine", lost)
            for path in lost:
                files[path] = StoreFileChange(path=path, change="replaced", set_aside=aside)
    git.fast_forward(
        theirs,
        message=f"pull: fast-forward to {remote}/{branch}",
        committer=store.author,
        expected_head=ours,
    )
    for path in other:
        files.setdefault(path, _file_change(store, ours, theirs, path))
    return PullResult(
        remote=remote,
        branch=branch,
        action="fast-forward",
        commit=theirs,
        sessions=tuple(sessions),
        changes=_session_changes(store, ours, theirs, sessions, kinds, kept, forks),
        files=tuple(files[p] for p in sorted(files)),
    )


def _merge(
    store: Store,
    remote: str,
    branch: str,
    ours: str,
    theirs: str,
    keep: str | None,
    fork_theirs: str | None,
    who: Identity,
) -> PullResult:
    git = store.git
    base = git.merge_base(ours, theirs)
    mine_changed = git.diff_trees(base, ours)
    their_changed = git.diff_trees(base, theirs)
    mine_s, mine_o = _by_session(store, mine_changed)
    their_s, their_o = _by_session(store, their_changed)
    both = sorted(mine_s.keys() & their_s.keys())
    clash = [
        p for p in sorted(set(mine_o) & set(their_o)) if mine_changed[p][1] != their_changed[p][1]
    ]
    config: ConfigMerge | None = None
    if CONFIG_FILE in clash:
        try:
            config = merge_config(
                _text_at(store, base, CONFIG_FILE),
                _text_at(store, ours, CONFIG_FILE) or "",
                _text_at(store, theirs, CONFIG_FILE) or "",
            )
        except (ConfigEditError, DocumentError):
            config = None  # not mergeable key by key: a conflict on the whole file
        else:
            clash.remove(CONFIG_FILE)
    key_conflicts = tuple(c.describe() for c in config.conflicts) if config else ()
    if (both or clash or key_conflicts) and keep is None and fork_theirs is None:
        raise _conflict(store, remote, branch, both, clash, mine_s, their_s, key_conflicts)
    if fork_theirs is not None and (clash or key_conflicts or len(both) > 1):
        files_ = [*clash, *([CONFIG_FILE] if key_conflicts else [])]
        raise SyncConflictError(
            f"pull from {remote}/{branch}: --fork-theirs takes one conflicting session; "
            + (f"sessions {', '.join(both)} " if len(both) > 1 else "")
            + (f"store files {', '.join(clash)} " if clash else "")
            + (f"{CONFIG_FILE} keys {'; '.join(key_conflicts)} " if key_conflicts else "")
            + "changed on both sides; use --keep mine or --keep theirs. Nothing was changed.",
            remote=remote,
            sessions=[_session_conflict(store, k, mine_s, their_s) for k in both],
            files=files_,
            keys=key_conflicts,
        )
    lineage = Lineage(git, ours, theirs)
    blobs: dict[str, bytes | None] = {}
    files: dict[str, bytes | None] = {}
    kinds: dict[str, str] = {}
    kept: dict[str, SetAside] = {}
    forks: dict[str, str] = {}
    resolved: dict[str, str] = {}
    forked = None
    # Sessions only the remote changed: take them (naming ours first if they replace it).
    for key, paths_ in their_s.items():
        if key in both:
            continue
        if not lineage.keeps(_key_rel(store, key)):
            kinds[key] = "replaced"
            kept[key] = _keep_aside(store, key, ours, "mine")
            fork = _fork_of(store, ours, theirs, key, their_s)
            if fork is not None:
                forks[key] = fork
        for rel in paths_:
            blobs[rel] = their_changed[rel][1]
    # Store files outside the sessions.
    file_changes: dict[str, StoreFileChange] = {}
    lost_mine = [p for p in their_o if p not in mine_o and not lineage.keeps(p)]
    lost_mine += [p for p in clash if keep == "theirs"]
    lost_theirs = [p for p in clash if keep != "theirs"]
    if config is not None and config.conflicts:
        (lost_mine if keep == "theirs" else lost_theirs).append(CONFIG_FILE)
    aside_mine = _keep_aside(store, None, ours, "mine", sorted(lost_mine)) if lost_mine else None
    aside_theirs = (
        _keep_aside(store, None, theirs, "theirs", sorted(lost_theirs)) if lost_theirs else None
    )
    for rel in their_o:
        if rel == CONFIG_FILE and config is not None:
            continue
        if rel in clash:
            side = keep or "mine"
            resolved[rel] = side
            if side == "theirs":
                blobs[rel] = their_changed[rel][1]
            file_changes[rel] = StoreFileChange(
                path=rel,
                change=f"kept-{side}",
                set_aside=aside_mine if side == "theirs" else aside_theirs,
            )
            continue
        blobs[rel] = their_changed[rel][1]
        if rel in lost_mine:
            file_changes[rel] = StoreFileChange(path=rel, change="replaced", set_aside=aside_mine)
    if config is not None:
        ours_text = _text_at(store, ours, CONFIG_FILE) or ""
        text = config.theirs_text if keep == "theirs" else config.text
        if text != ours_text:
            files[CONFIG_FILE] = text.encode("utf-8")
        taken = tuple(key_name(k) for k in config.taken)
        if config.conflicts:
            side = keep or "mine"
            resolved[CONFIG_FILE] = side
            file_changes[CONFIG_FILE] = StoreFileChange(
                path=CONFIG_FILE,
                change=f"kept-{side}",
                keys=key_conflicts,
                set_aside=aside_mine if side == "theirs" else aside_theirs,
            )
        elif taken:
            file_changes[CONFIG_FILE] = StoreFileChange(
                path=CONFIG_FILE, change="merged", keys=taken
            )
    # Sessions changed on both sides: the way out chosen.
    for key in both:
        project_id, _, session_id = key.partition("/")
        rel = store.session_rel(project_id, session_id)
        if keep == "mine":
            resolved[key], kinds[key] = "mine", "kept-mine"
            kept[key] = _keep_aside(store, key, theirs, "theirs")
        elif keep == "theirs":
            resolved[key], kinds[key] = "theirs", "kept-theirs"
            kept[key] = _keep_aside(store, key, ours, "mine")
            for path, (_mine, their_sha) in git.diff_trees(ours, theirs, rel).items():
                blobs[path] = their_sha
        else:
            assert fork_theirs is not None
            new_rel = store.session_rel(project_id, check_id(fork_theirs, "session id"))
            if (
                (store.root / new_rel).exists()
                or git.entry(ours, new_rel) is not None
                or git.entry(theirs, new_rel) is not None
            ):
                raise SessionExistsError(f"session {project_id}/{fork_theirs} already exists")
            source = Session(store, project_id, session_id)
            files.update(_fork_files(store, source, theirs, project_id, fork_theirs))
            forked = Session(store, project_id, fork_theirs)
            resolved[key], kinds[key], forks[key] = f"forked as {forked.ref}", "forked", forked.ref
    brought = sorted(k for k in their_s if k not in both)
    subject = f"merge({remote}/{branch}): " + (
        ", ".join(brought[:5]) + (f" and {len(brought) - 5} more" if len(brought) > 5 else "")
        if brought
        else "no session"
    )
    body = []
    for key in sorted(kinds):
        aside = kept.get(key)
        where = f"; set aside as {aside.ref}" if aside else ""
        if kinds[key] == "replaced":
            body.append(f"- {key}: {remote}'s version does not include ours{where}")
        elif kinds[key] == "forked":
            body.append(f"- {key}: {resolved[key]}")
        else:
            body.append(f"- {key}: kept {resolved[key]}{where}")
    for path, change in sorted(file_changes.items()):
        if change.change != "merged":
            where = f"; set aside as {change.set_aside.ref}" if change.set_aside else ""
            body.append(f"- {path}: {change.change.replace('-', ' ')}{where}")
        else:
            body.append(f"- {path}: merged key by key ({', '.join(change.keys)} from {remote})")
    sha = git.commit_merge(
        theirs,
        blobs=blobs,
        files=files,
        message=commit_message(subject, "\n".join(body), kind="merge"),
        author=who,
        committer=store.author,
        expected_head=ours,
    )
    for path in their_o:
        file_changes.setdefault(path, _file_change(store, ours, sha, path))
    return PullResult(
        remote=remote,
        branch=branch,
        action="merged",
        commit=sha,
        sessions=tuple(sorted(their_s)),
        resolved=resolved,
        forked=forked,
        changes=_session_changes(store, ours, sha, [*their_s], kinds, kept, forks),
        files=tuple(file_changes[p] for p in sorted(file_changes)),
    )


def _session_conflict(
    store: Store, key: str, mine: Mapping[str, list[str]], theirs: Mapping[str, list[str]]
) -> SessionConflict:
    project_id, _, session_id = key.partition("/")
    cut = len(store.session_rel(project_id, session_id)) + 1
    return SessionConflict(
        session=key,
        mine=tuple(rel[cut:] for rel in mine.get(key, [])),
        theirs=tuple(rel[cut:] for rel in theirs.get(key, [])),
    )


def _conflict(
    store: Store,
    remote: str,
    branch: str,
    both: Sequence[str],
    clash: Sequence[str],
    mine: Mapping[str, list[str]],
    theirs: Mapping[str, list[str]],
    keys: Sequence[str] = (),
) -> SyncConflictError:
    conflicts = [_session_conflict(store, k, mine, theirs) for k in both]

    def names(files: tuple[str, ...]) -> str:
        return ", ".join(files[:6]) + (f" and {len(files) - 6} more" if len(files) > 6 else "")

    parts = [
        f"session {c.session} (mine: {names(c.mine)}; theirs: {names(c.theirs)})" for c in conflicts
    ]
    parts += [f"store file {p}" for p in clash]
    if keys:
        parts.append(f"store file {CONFIG_FILE} ({'; '.join(keys)})")
    way_out = "--keep mine, --keep theirs" + (
        " or --fork-theirs NEW_ID" if not clash and not keys and len(both) == 1 else ""
    )
    return SyncConflictError(
        f"pull from {remote}/{branch}: changed on both sides: "
        + "; ".join(parts)
        + f". Nothing was changed. Pull again with {way_out} "
        f"(mdsessions pull {remote} --keep mine); the version not kept is set aside under "
        "refs/mdsessions/set-aside/, never lost.",
        remote=remote,
        sessions=conflicts,
        files=[*clash, *([CONFIG_FILE] if keys else [])],
        keys=keys,
    )


def resolve(
    store: Store,
    remote: str = "origin",
    *,
    keep: str | None = None,
    fork_theirs: str | None = None,
    author: Identity | str | None = None,
) -> PullResult:
    """The way out of a :class:`SyncConflictError`: pull again with a resolution.

    Exactly one of ``keep="mine"``, ``keep="theirs"`` or ``fork_theirs="NEW_ID"``; see
    :func:`pull`.

    Raises:
        InvalidArgumentError: Neither or both given (a ``ValueError``).
    """
    if (keep is None) == (fork_theirs is None):
        raise InvalidArgumentError("give exactly one of keep ('mine' or 'theirs') or fork_theirs")
    return pull(store, remote, keep=keep, fork_theirs=fork_theirs, author=author)


def _combine(pulls: Sequence[PullResult]) -> PullResult:
    """Several pulls of one sync (the remote moved before the push) as one result."""
    if len(pulls) == 1:
        return pulls[0]
    actions = [p.action for p in pulls]
    action = next((a for a in ("merged", "fast-forward") if a in actions), actions[-1])
    resolved: dict[str, str] = {}
    for p in pulls:
        resolved.update(p.resolved)
    last = pulls[-1]
    return PullResult(
        remote=last.remote,
        branch=last.branch,
        action=action,
        commit=last.commit,
        sessions=tuple(sorted({s for p in pulls for s in p.sessions})),
        resolved=resolved,
        forked=next((p.forked for p in pulls if p.forked is not None), None),
        changes=tuple(c for p in pulls for c in p.changes),
        files=tuple(f for p in pulls for f in p.files),
    )


def sync(
    store: Store,
    remote: str = "origin",
    *,
    keep: str | None = None,
    fork_theirs: str | None = None,
    author: Identity | str | None = None,
    attempts: int = 3,
    on_pull: Callable[[PullResult], None] | None = None,
) -> tuple[PullResult, PushResult]:
    """Pull (see :func:`pull`), then push; pull again when the remote moved in between.

    Args:
        store: The store.
        remote: A remote name.
        keep: As for :func:`pull`.
        fork_theirs: As for :func:`pull`.
        author: As for :func:`pull`.
        attempts: Pull-and-push rounds before giving up when other machines keep pushing.
        on_pull: Called with each pull's result as soon as it is done (so what a pull set
            aside is reported even if a later step fails).

    Returns:
        ``(pull result, push result)``; with several rounds, the pulls combined.

    Raises:
        SyncConflictError: From a pull (nothing pushed; nothing changed by that pull).
        PushRejectedError: The remote moved before each of the ``attempts`` pushes.
    """
    if attempts < 1:
        raise InvalidArgumentError("attempts must be 1 or more")
    pulls: list[PullResult] = []
    for attempt in range(1, attempts + 1):
        pulled = pull(store, remote, keep=keep, fork_theirs=fork_theirs, author=author)
        pulls.append(pulled)
        if on_pull is not None:
            on_pull(pulled)
        try:
            pushed = push(store, remote)
        except PushRejectedError:
            if attempt == attempts:
                raise
            continue
        return _combine(pulls), pushed
    raise AssertionError("unreachable")  # pragma: no cover


def list_set_aside(store: Store, session: str | None = None) -> list[SetAside]:
    """The versions sync set aside (``refs/mdsessions/set-aside/*``), newest first.

    Args:
        store: The store.
        session: Only this session's (``project/session``); ``"_store"`` for store files.

    Returns:
        Each with its ref, commit, time, the session's status in it and how to get it back.
    """
    git = store.git
    found = []
    for name, sha in git.refs(SET_ASIDE_PREFIX).items():
        ours, key = parse_set_aside_ref(name)
        if not ours:
            continue
        if session is not None and (key or STORE_FILES) != session:
            continue
        status = None
        paths: tuple[str, ...] = ()
        if key is not None:
            try:
                manifest = _manifest_at(store, sha, f"{_key_rel(store, key)}/{MANIFEST}")
            except InvalidIdentifierError:
                continue
            status = manifest.status.value if manifest else None
        else:
            paths = (CONFIG_FILE,)
        info = git.log(rev=sha, max_count=1)
        when = info[0].time if info else None
        found.append(
            SetAside(ref=name, commit=sha, session=key, paths=paths, status=status, time=when)
        )
    found.sort(key=lambda s: (s.time or "", s.ref), reverse=True)
    return found
