"""Backups: ``git bundle create --all``, verified with ``git bundle verify``.

A restore is a new repository fetched from the bundle, checked out and verified.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import shutil
from pathlib import Path

from pydantic import Field, computed_field

from mdsessions.errors import (
    InvalidArgumentError,
    StoreError,
)
from mdsessions.git import maintain, transport
from mdsessions.git.repo import init_repository
from mdsessions.history.common import ProgressCallback
from mdsessions.history.verify import verify
from mdsessions.models.results import Result
from mdsessions.models.schema import (
    UTCTime,
    utc_now,
)
from mdsessions.store.store import (
    Problem,
    Store,
)

__all__ = [
    "Backup",
    "BackupRestore",
    "BundleRef",
    "backup_dir",
    "create_backup",
    "list_backups",
    "prune_backups",
    "restore_backup",
]


_log = logging.getLogger(__name__)

_BACKUP_RE = re.compile(r"-(\d{8}T\d{6}Z)-[0-9a-f]{12}(?:-\d+)?\.bundle$")


_BACKUP_SUFFIX = ".bundle"


class Backup(Result):
    """One bundle file."""

    path: Path
    """The ``.bundle`` file (absolute)."""
    created: UTCTime
    """When it was made (UTC; from its name, else the file's mtime)."""
    size: int
    """Bytes."""
    head: str | None = Field(default=None, exclude=True)
    """The first 12 hex digits of the commit ``HEAD`` was at (from the name), if known."""
    commit: str | None = None
    """Full id of the commit ``HEAD`` was at (from the bundle's heads), if known."""


def backup_dir(store: Store) -> Path:
    """The default backup folder, ``<store>/.mdsessions/backups`` (ignored by git)."""
    return store.root / ".mdsessions" / "backups"


def _backup_info(path: Path) -> Backup:
    st = path.stat()
    match = _BACKUP_RE.search(path.name)
    head = None
    if match is not None:
        created = _dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(
            tzinfo=_dt.timezone.utc
        )
        head = path.name[match.end(1) + 1 : match.end(1) + 13]
    else:
        created = _dt.datetime.fromtimestamp(int(st.st_mtime), _dt.timezone.utc)
    commit = _commit(path, head)
    return Backup(path=path, created=created, size=st.st_size, head=head, commit=commit)


def _commit(bundle: Path, head: str | None) -> str | None:
    """The full id of the bundle's head whose id starts with ``head`` (``None``: unknown)."""
    if head is None:
        return None
    try:
        heads = transport.bundle_heads(bundle, cwd=bundle.parent)
    except StoreError:
        return None  # not a bundle git can read: listed, but with no commit
    return next((sha for sha, _name in heads if sha.startswith(head)), None)


def create_backup(
    store: Store,
    directory: str | os.PathLike[str] | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> Backup:
    """Write a bundle of the whole store (``git bundle create --all``) and verify it.

    The file is ``<folder>/<store name>-<YYYYmmddTHHMMSSZ>-<head>.bundle``, written under a
    temporary name and renamed once ``git bundle verify`` accepts it. Writers may keep
    working meanwhile: the bundle holds the refs as they were when it started.

    Args:
        store: The store.
        directory: Where to put it (created if missing); default :func:`backup_dir`, which
            git ignores (``.mdsessions/*`` is in the store's ``.gitignore``).
        progress: Called with git's progress (``stage, done, total``).

    Returns:
        The new backup.

    Raises:
        StoreError: If the store has no commit, or git fails to write or verify the bundle.
    """
    git = store.git
    head = git.head()
    if head is None:
        raise StoreError(f"{store.root}: nothing to back up (no commit yet)")
    folder = Path(directory).resolve() if directory is not None else backup_dir(store)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", store.root.name) or "store"
    final = folder / f"{name}-{stamp}-{head[:12]}{_BACKUP_SUFFIX}"
    n = 1
    while final.exists():
        n += 1
        final = folder / f"{name}-{stamp}-{head[:12]}-{n}{_BACKUP_SUFFIX}"
    tmp = folder / f".{final.name}.{os.getpid()}.tmp"
    try:
        transport.bundle_create(git, tmp, progress)
        tmp.replace(final)
    finally:
        if tmp.exists():
            tmp.unlink()
    _log.info(
        "backup created: %s",
        final.name,
        extra={"operation": "backup", "commit": head, "bytes": final.stat().st_size},
    )
    return _backup_info(final)


def list_backups(directory: str | os.PathLike[str]) -> list[Backup]:
    """The ``*.bundle`` files of a folder, newest first.

    Args:
        directory: The backup folder (a missing folder has none).

    Returns:
        The backups, newest first.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = [_backup_info(p) for p in folder.glob(f"*{_BACKUP_SUFFIX}") if p.is_file()]
    found.sort(key=lambda b: (b.created, b.path.name), reverse=True)
    return found


def prune_backups(
    directory: str | os.PathLike[str],
    *,
    keep: int | None = None,
    older_than: float | None = None,
    now: _dt.datetime | None = None,
) -> list[Backup]:
    """Delete old backups: those beyond the newest ``keep`` and/or older than ``older_than``.

    With both given a backup is deleted only when both say so (the conservative reading).

    Args:
        directory: The backup folder.
        keep: Keep this many newest backups.
        older_than: Delete backups older than this many days.
        now: The current time (UTC; for tests).

    Returns:
        The deleted backups.

    Raises:
        InvalidArgumentError: Neither ``keep`` nor ``older_than``, or a negative value (a
            ``ValueError``).
    """
    if keep is None and older_than is None:
        raise InvalidArgumentError("give keep (a count) or older_than (days)")
    if (keep is not None and keep < 0) or (older_than is not None and older_than < 0):
        raise InvalidArgumentError("keep and older_than must be 0 or more")
    current = now or _dt.datetime.now(_dt.timezone.utc)
    removed = []
    for index, backup in enumerate(list_backups(directory)):
        beyond = keep is None or index >= keep
        old = older_than is None or (current - backup.created).total_seconds() > older_than * 86400
        if beyond and old:
            backup.path.unlink()
            removed.append(backup)
    return removed


class BundleRef(Result):
    """A ref a bundle held, restored as it was."""

    name: str
    """The ref, e.g. ``refs/heads/main``."""
    commit: str
    """Full id of the commit it points at."""


class BackupRestore(Result):
    """What :func:`restore_backup` made."""

    path: Path
    """The new store's folder (absolute)."""
    head: str = Field(serialization_alias="commit")
    """Full id of the commit checked out."""
    refs: dict[str, str] = Field(exclude=True)
    """Every ref restored, name → commit."""
    problems: tuple[Problem, ...] = ()
    """What :func:`verify` found in the restored store (empty when sound)."""

    @computed_field(alias="refs")  # type: ignore[prop-decorator]
    @property
    def ref_list(self) -> list[BundleRef]:
        """Every ref restored, by name."""
        return [BundleRef(name=name, commit=sha) for name, sha in sorted(self.refs.items())]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def valid(self) -> bool:
        """No problem found in the restored store."""
        return not self.problems


def restore_backup(
    bundle: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
) -> BackupRestore:
    """Restore a store from a bundle into a NEW folder, then verify it.

    A clone of the bundle that keeps every ref as it was (``refs/*`` to ``refs/*``, no
    ``origin`` pointing at the bundle file): ``git bundle verify``, ``git fetch`` from the
    bundle, ``HEAD`` on ``main`` (else the branch the bundle's ``HEAD`` names), checkout,
    then :func:`verify` (``git fsck --strict`` + validation). ``git log`` and every file are
    those of the store the bundle was made from.

    Args:
        bundle: The ``.bundle`` file.
        dest: A folder that does not exist or is empty.
        progress: Called with git's progress.

    Returns:
        The new store's folder, head, refs and any problems found.

    Raises:
        StoreError: The destination is not empty, the bundle is not valid, or the restored
            repository fails ``git fsck`` (the half-made folder is removed).
    """
    source = Path(bundle).resolve()
    target = Path(dest).resolve()
    if not source.is_file():
        raise StoreError(f"{source}: no such bundle file")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StoreError(f"{target} exists and is not empty; restore into a new folder")
    created = not target.exists()
    try:
        init_repository(target)
        problem = transport.bundle_verify(source, cwd=target)
        if problem is not None:
            raise StoreError(f"git bundle verify failed: {problem}")
        refs: dict[str, str] = {}
        head_sha = None
        for sha, name in transport.bundle_heads(source, cwd=target):
            if name == "HEAD":
                head_sha = sha
            elif name.startswith("refs/"):
                refs[name] = sha
        if not refs:
            raise StoreError(f"{source}: the bundle holds no refs")
        transport.fetch_bundle(target, source, progress)
        branch = "refs/heads/main" if "refs/heads/main" in refs else None
        if branch is None:
            branch = next(
                (
                    n
                    for n, s in sorted(refs.items())
                    if n.startswith("refs/heads/") and s == head_sha
                ),
                next((n for n in sorted(refs) if n.startswith("refs/heads/")), None),
            )
        if branch is None:
            raise StoreError(f"{source}: the bundle holds no branch to check out")
        maintain.checkout_branch(target, branch)
        passed, found = maintain.fsck(target)
        if not passed:
            raise StoreError("the restored repository fails git fsck: " + "\n".join(found))
        with Store(target) as store:
            report = verify(store)
            head = store.git.head() or ""
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        raise
    _log.info(
        "backup restored into %s (%d problems)",
        target,
        len(report.problems),
        extra={"operation": "backup.restore", "commit": head, "problems": len(report.problems)},
    )
    return BackupRestore(path=target, head=head, refs=refs, problems=report.problems)
