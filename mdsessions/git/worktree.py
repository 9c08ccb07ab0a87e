"""The working tree and the index, as ``git add`` and ``git checkout`` would leave them.

Line-end conversion both ways (:mod:`.convert`), the stage-0 index entries written in-process
(:mod:`.index`) under ``index.lock`` taken through the writer's claim, the check that a path
holds no person's unrecorded edit, bringing files and entries to a commit, and the repairs of
entries a racing git command's stale copy of the index took out.

Imports: :mod:`.config`, :mod:`.convert`, :mod:`.fsutil`, :mod:`.index`, :mod:`.journal`,
:mod:`.objects`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mdsessions.errors import LockTimeoutError, StoreError, UnrecordedEditError
from mdsessions.git import convert as _convert
from mdsessions.git import fsutil as _fsutil
from mdsessions.git import index as _gitindex
from mdsessions.git.config import GitConfig
from mdsessions.git.journal import Journal, WriteMemory
from mdsessions.git.objects import ObjectStore, blob_sha

__all__ = ["WorkTree"]

GitCommand = Callable[..., "subprocess.CompletedProcess[bytes]"]


_git_version_cache: list[tuple[int, ...]] = []


def _git_version(git: GitCommand) -> tuple[int, ...]:
    """The user's git version, e.g. ``(2, 39, 5)`` (asked once per process; ``(0,)`` if unknown)."""
    if not _git_version_cache:
        version: tuple[int, ...] = (0,)
        with contextlib.suppress(Exception):
            out = git("--version", check=False).stdout.decode("ascii", "replace")
            match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
            if match:
                version = tuple(int(g) for g in match.groups() if g is not None)
        _git_version_cache.append(version)
    return _git_version_cache[0]


class WorkTree:
    """The working tree and index of one repository.

    Args:
        root: The working-tree root.
        git_dir: Its ``.git`` folder.
        config: The repository's configuration (line ends, index version).
        objects: Its objects (what a commit holds).
        journal: Where a writer's lock claims are named.
        memory: What this process remembers of its writes (stale-entry checks, repairs).
        git: Runs ``git args…`` in the repository (``GitRepo.git``), for an index this
            package does not parse (a sparse index).
        lock_timeout: Seconds to wait while another git process holds ``index.lock``.
        durable: fsync files and the index.
    """

    def __init__(
        self,
        root: Path,
        git_dir: Path,
        *,
        config: GitConfig,
        objects: ObjectStore,
        journal: Journal,
        memory: WriteMemory,
        git: GitCommand,
        lock_timeout: float = 60.0,
        durable: bool = False,
    ) -> None:
        self.root = root
        self.git_dir = git_dir
        self.config = config
        self.objects = objects
        self.journal = journal
        self.memory = memory
        self.git = git
        self.lock_timeout = lock_timeout
        self.durable = durable
        self._conv: tuple[dict[str, str], _convert.Conversion] | None = None
        self._lock = threading.Lock()

    def check_path(self, rel: str) -> None:
        """Refuse a path that is not plain or that passes through a symbolic link.

        With no ``.``/``..`` component and no component a symlink (each checked with
        ``lstat``), the path cannot leave the store (whose root is resolved on open).

        Raises:
            StoreError: Naming the path and the offending component.
        """
        parts = rel.split("/")
        if not rel or rel.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts):
            raise StoreError(f"refusing to write {rel!r}: not a plain store-relative path")
        probe = str(self.root)
        for i, part in enumerate(parts):
            probe = f"{probe}/{part}"
            try:
                mode = os.lstat(probe).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return  # nothing below a missing component exists, so no symlink either
            if stat.S_ISLNK(mode):
                raise StoreError(
                    f"refusing to write {rel}: {'/'.join(parts[: i + 1])} is a symbolic link "
                    "(writes must stay inside the store)"
                )

    def _conversion(self) -> _convert.Conversion:
        """The line-end rules of the current configuration (rebuilt when it changes)."""
        values = self.config.values()
        with self._lock:
            if self._conv is None or self._conv[0] is not values:
                self._conv = (values, _convert.Conversion(self.root, self.git_dir, values))
            return self._conv[1]

    def check_attributes(self, paths: Sequence[str]) -> dict[str, _convert.CrlfAction]:
        """The line-end action of each path (``git check-attr`` rules, cached).

        Raises:
            UnsupportedAttributeError: A path has a ``filter``, ``ident`` or
                ``working-tree-encoding`` attribute that mdsessions cannot honour.
        """
        return self._conversion().actions(paths)

    def to_worktree(self, rel: str, blob: bytes) -> bytes:
        """What ``git checkout`` writes for ``blob`` at ``rel`` (line-end conversion)."""
        conv = self._conversion()
        return conv.to_worktree(conv.actions([rel])[rel], blob)

    def to_git(self, rel: str, data: bytes, action: _convert.CrlfAction | None = None) -> bytes:
        """What ``git add`` stores for working-tree bytes ``data`` at ``rel``.

        Raises:
            UnsupportedAttributeError: As :meth:`check_attributes`.
            StoreError: ``core.safecrlf=true`` and git would refuse the conversion.
        """
        conv = self._conversion()
        if action is None:
            action = conv.actions([rel])[rel]
        if action is _convert.CrlfAction.BINARY:
            return data
        index_blob = None
        if b"\r" in data:  # git's "CRLF already in the index" rule needs the index's blob
            staged = self.staged_entry(rel)
            if staged is not None:
                index_blob = self.objects.read(staged[1])[1]
        return conv.to_git(action, data, index_blob, path=rel)

    def read(self, rel: str) -> bytes:
        """A working-tree file as git would store it (line ends converted as ``git add`` does).

        Raises:
            FileNotFoundError: If it does not exist.
        """
        data = (self.root / rel).read_bytes()
        try:
            return self.to_git(rel, data)
        except StoreError:  # an attribute a save would refuse: reading is still fine
            return data

    def blob_sha(self, rel: str, data: bytes) -> bytes:
        """The blob id ``git add`` would give working-tree bytes ``data`` at ``rel``."""
        return blob_sha(self.to_git(rel, data))

    def staged_entry(self, rel: str) -> tuple[int, bytes, int] | None:
        """The index's stage-0 entry of ``rel``: ``(mode, binsha, 0)``, or ``None``.

        Read in-process; an index this module does not parse (a sparse index) is asked of
        ``git ls-files``.

        Raises:
            StoreError: The index is unreadable for git too.
        """
        try:
            return _gitindex.index_entry(self.git_dir, rel)
        except _gitindex.UnsupportedIndexError:
            pass
        proc = self.git("ls-files", "-s", "-z", "--", rel, check=False)
        if proc.returncode != 0:
            said = proc.stderr.decode("utf-8", "replace").strip()
            raise StoreError(f"{self.git_dir / 'index'}: git cannot read the index: {said}")
        for item in proc.stdout.split(b"\0"):
            info, _, path = item.partition(b"\t")
            fields = info.split()
            if path.decode("utf-8", "surrogateescape") == rel and len(fields) == 3:
                if fields[2] == b"0":
                    return int(fields[0], 8), bytes.fromhex(fields[1].decode()), 0
        return None

    def check_clean(self, head: str | None, paths: Sequence[str]) -> None:
        """Refuse to overwrite a path a person changed and has not committed.

        A path is clean when its working-tree file is missing or holds HEAD's content (as
        ``git add`` would store it), and the index holds HEAD's content for it.

        Raises:
            UnrecordedEditError: Naming the first edited path.
        """
        for rel in paths:
            committed = self.objects.entry(head, rel)
            committed_sha = committed[1] if committed else None
            staged = self.staged_entry(rel)
            if (
                staged is not None
                and staged[1] != committed_sha
                and not self._stale_entry_of_ours(rel, staged[1], committed_sha)
            ):
                raise UnrecordedEditError(
                    f"{rel} has changes staged in git's index that are not committed; commit "
                    "or unstage them (git restore --staged) first"
                )
            target = self.root / rel
            try:
                st = target.stat()
            except FileNotFoundError:
                continue
            if committed_sha is None:
                raise UnrecordedEditError(
                    f"{rel} exists in the working tree but is not recorded in git; record it "
                    "(mdsessions record) or move it away first"
                )
            try:
                unchanged = staged is not None and _gitindex.entry_stat_matches(
                    self.git_dir, rel, st
                )
            except _gitindex.UnsupportedIndexError:
                unchanged = False  # a sparse index: compare the content below
            if unchanged:
                continue
            if self.blob_sha(rel, target.read_bytes()) != committed_sha:
                raise UnrecordedEditError(
                    f"{rel} has edits that are not recorded yet; record them "
                    "(mdsessions record) or discard them (git restore) before this save"
                )

    def edited_paths(self, head: str | None, paths: Sequence[str]) -> list[str]:
        """The paths :meth:`check_clean` would refuse: a person's unrecorded edit."""
        out = []
        for rel in paths:
            try:
                self.check_clean(head, [rel])
            except UnrecordedEditError:
                out.append(rel)
        return out

    def _stale_entry_of_ours(self, rel: str, staged: bytes, committed: bytes | None) -> bool:
        """Whether an index entry is an older version this process wrote.

        A git command that wrote back a stale copy of the index put it there; the file itself
        still holds what is committed.
        """
        if staged not in self.memory.written.get(rel, ()):
            return False
        try:
            data = (self.root / rel).read_bytes()
        except OSError:
            return False
        return self.blob_sha(rel, data) == committed

    def materialize(
        self,
        commit: str,
        paths: Sequence[str],
        *,
        protect_from: str | None = None,
        token: str | None = None,
    ) -> None:
        """Bring working-tree files and index entries of ``paths`` to ``commit``.

        With ``protect_from`` (recovery: the commit before the interrupted operation), a file
        whose content is neither that commit's nor ``commit``'s is a person's edit made since
        the crash: it is left as it is (its index entry still follows ``commit``).
        """
        token = token or secrets.token_hex(6)
        updates: list[_gitindex.IndexEntryUpdate] = []
        removals: list[str] = []
        for rel in paths:
            found = self.objects.entry(commit, rel)
            target = self.root / rel
            if protect_from is not None and self.holds_edit(rel, found, protect_from):
                if found is None:
                    removals.append(rel)
                else:
                    updates.append(_gitindex.IndexEntryUpdate(rel, 0o100644, found[1], None))
                continue
            if found is None:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                self.prune_empty_dirs(target.parent)
                removals.append(rel)
                continue
            _kind, data = self.objects.read(found[1])
            st = _fsutil.atomic_write(
                target, self.to_worktree(rel, data), fsync=self.durable, token=token
            )
            updates.append(_gitindex.IndexEntryUpdate(rel, 0o100644, found[1], st))
        self.sync_index(updates, removals, token)

    def holds_edit(self, rel: str, found: tuple[bytes, bytes] | None, protect_from: str) -> bool:
        """Whether the working-tree file ``rel`` holds a person's edit.

        It does when its content is neither ``found`` (the entry being written, ``None``:
        deleted) nor what ``rel`` held at ``protect_from``; a missing file holds none.
        """
        target = self.root / rel
        if not target.is_file():
            return False
        before = self.objects.entry(protect_from, rel)
        known = {None if found is None else found[1], None if before is None else before[1]}
        return self.blob_sha(rel, target.read_bytes()) not in known

    def prune_empty_dirs(self, folder: Path) -> None:
        """Remove ``folder`` and its parents up to the root while they are empty."""
        while folder != self.root and folder.is_dir():
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def sync_index(
        self,
        updates: Sequence[_gitindex.IndexEntryUpdate],
        removals: Sequence[str],
        token: str,
    ) -> None:
        """Write index entries now (``index.lock`` taken through the ``token``'s claim).

        Raises:
            LockTimeoutError: Another git process held ``index.lock`` too long.
        """
        with contextlib.ExitStack() as stack:
            self.enter_index(stack, updates, removals, token)

    def enter_index(
        self,
        stack: contextlib.ExitStack,
        updates: Sequence[_gitindex.IndexEntryUpdate],
        removals: Sequence[str],
        token: str,
    ) -> Path | None:
        """Stage the new index in ``index.lock`` (waiting while another git holds it).

        The lock is taken through this writer's claim file, so a crashed writer's lock can
        be told from a live git process's.

        Returns:
            The staged index file (for hooks' ``GIT_INDEX_FILE``), or ``None`` when git
            itself updates the index after the block (a sparse or unreadable index).
        """
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.001
        while True:
            try:
                stack.enter_context(
                    _gitindex.staged_index(
                        self.git_dir,
                        updates,
                        removals,
                        fsync=self.durable,
                        work_tree=self.root,
                        claim=self.journal.claim(token, "index"),
                        new_version=self._new_index_version(),
                        split_index=self.config.boolean("core.splitindex"),
                        skip_hash=self._skip_hash(),
                    )
                )
                return self.git_dir / "index.lock"
            except _gitindex.UnsupportedIndexError:
                # A sparse index (or one that does not parse): git itself updates it once the
                # files are in place.
                stack.callback(self._sync_index_with_git, updates, removals)
                return None
            except _gitindex.IndexLockedError:
                if time.monotonic() > deadline:
                    raise LockTimeoutError(
                        f"{self.git_dir / 'index.lock'} was held by another git process for "
                        f"more than {self.lock_timeout:g} s; if no git command is running, a "
                        "crashed one left it: remove it and try again"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _new_index_version(self) -> int:
        """The version git gives an index it creates: ``index.version``, ``feature.manyFiles``."""
        value = self.config.get("index.version")
        if value is not None and value.strip() in ("2", "3", "4"):
            return int(value)
        return 4 if self.config.boolean("feature.manyfiles") else 2

    def _skip_hash(self) -> bool:
        """Whether git would write the index without its SHA-1 (``index.skipHash``).

        Configured (``index.skipHash``, or ``feature.manyFiles`` which implies it) *and*
        understood by the user's git (2.40 and later; an older ``git fsck`` calls a zero
        trailer corrupt). The version is asked of git once per process, and only when the
        setting is on.
        """
        many = self.config.boolean("feature.manyfiles")
        if not self.config.boolean("index.skiphash", default=many):
            return False
        return _git_version(self.git) >= (2, 40)

    def _sync_index_with_git(
        self, updates: Sequence[_gitindex.IndexEntryUpdate], removals: Sequence[str]
    ) -> None:
        lines = [f"100644 {u.sha.hex()}\t{u.path}" for u in updates]
        lines += [f"0 {'0' * 40}\t{p}" for p in removals]
        self.git("update-index", "--index-info", input=("\n".join(lines) + "\n").encode())
        if updates:
            self.git("update-index", "-q", "--refresh", check=False)

    def revert_index(self, paths: Sequence[str], old: str | None, new: str, token: str) -> None:
        """Entries of ``paths`` that hold ``new``'s blobs go back to ``old``'s (best effort).

        Only entries that are exactly what the commit ``new`` staged are touched: a person's
        staging made since is left alone.
        """
        updates: list[_gitindex.IndexEntryUpdate] = []
        removals: list[str] = []
        try:
            self.objects.commit_tree(new)
        except Exception:  # noqa: BLE001 - never written (killed before its objects), or gone
            return
        for rel in paths:
            ours = self.objects.entry(new, rel)
            try:
                staged = _gitindex.index_entry(self.git_dir, rel)
            except (_gitindex.UnsupportedIndexError, OSError):
                return
            if (staged[1] if staged else None) != (ours[1] if ours else None):
                continue
            before = self.objects.entry(old, rel)
            if before is None:
                removals.append(rel)
            else:
                updates.append(_gitindex.IndexEntryUpdate(rel, 0o100644, before[1], None))
        if updates or removals:
            with contextlib.suppress(StoreError, OSError):
                self.sync_index(updates, removals, token)

    def index_repairs(
        self, head: str | None, paths: Sequence[str]
    ) -> list[_gitindex.IndexEntryUpdate]:
        """Index entries of recent commits that a stale-index write took out: put them back.

        ``git commit``, ``git stash pop`` and other git commands read the index before they
        take ``index.lock`` and may write that copy back, dropping entries mdsessions wrote in
        between; ``git status`` then shows the file deleted and untracked, and the person's
        next commit would delete it. An entry is put back only while ``HEAD`` and the
        working-tree file both still hold exactly what mdsessions wrote.
        """
        out: list[_gitindex.IndexEntryUpdate] = []
        if not self.memory.recent or self.index_identity() == self.memory.index_written:
            return out  # nobody wrote the index since this process did
        for rel, blob in list(self.memory.recent.items()):
            if rel in paths:
                continue
            try:
                staged = _gitindex.index_entry(self.git_dir, rel)
            except (_gitindex.UnsupportedIndexError, OSError):
                return []
            if staged is not None and staged[1] == blob:
                continue
            found = self.objects.entry(head, rel)
            if found is None or found[1] != blob:
                continue  # HEAD moved on from it: not ours to put back
            target = self.root / rel
            try:
                st = target.stat()
                same = self.blob_sha(rel, target.read_bytes()) == blob
            except (OSError, StoreError):
                continue
            if same:
                out.append(_gitindex.IndexEntryUpdate(rel, 0o100644, blob, st))
        return out

    def index_identity(self) -> tuple[int, int, int, int] | None:
        """``(inode, size, mtime_ns, ctime_ns)`` of the index file, ``None`` when it is missing."""
        try:
            st = os.stat(self.git_dir / "index")  # noqa: PTH116
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
