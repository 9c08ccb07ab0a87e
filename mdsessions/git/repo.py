"""The git layer's facade: one store repository and the small verbs the layers above call.

:class:`GitRepo` opens a repository (refusing formats mdsessions does not write), holds the
writer lock, and offers reads by commit and path, the in-process commit, merge commits and
fast-forwards, history queries, and plain git commands run with a clean environment. The
work is done by its parts, one module each:

- :mod:`.objects`: object ids, trees, commit bytes, the loose-object database;
- :mod:`.refs`: reading refs and moving them by compare-and-swap under git's lock protocol;
- :mod:`.journal`: the crash journal, lock claims, what this process remembers of its writes;
- :mod:`.worktree`: line ends, the index written in-process, clean checks, materializing;
- :mod:`.commit`: the commit path, merge commits and fast-forwards, hooks and signing;
- :mod:`.recovery`: finishing a crashed writer's operation, undoing racing git's drops;
- :mod:`.config`, :mod:`.process`, :mod:`.fsutil`: configuration, git processes, file writes.

The module is a little over 800 lines because every verb keeps its full docstring here, where
the layers above read it; the verbs themselves are a few lines each, delegating to the parts.

The commit path (chosen from shared/PERF.md): blobs, trees and the commit object are written
in-process as zlib-deflated loose objects (no subprocess per checkpoint), the branch is moved
by compare-and-swap with git's lock-file protocol (plus reflog lines), the working-tree files
are written atomically, and the index entries of the written paths are brought back in sync
in-process, so ``git status`` stays clean without GitPython's pure-Python index or ``git add``
ever touching the hot path.

Crash safety: before the branch moves, a journal (``.git/mdsessions/journal.json``) records
the old and new commit and the paths; the next writer that takes the lock finds it and rolls
the operation forward (branch moved) or back (branch did not move), removing stale lock and
temp files. A kill at any point therefore leaves either the whole operation or none of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdsessions.errors import BranchMovedError, ConflictError, LockTimeoutError, StoreError
from mdsessions.git import commit as _commit
from mdsessions.git import process as _process
from mdsessions.git import recovery as _recovery
from mdsessions.git.config import GitConfig
from mdsessions.git.fsutil import TMP_SUFFIX, atomic_write
from mdsessions.git.journal import Journal, WriteMemory
from mdsessions.git.lock import LockTimeout as _LockTimeout
from mdsessions.git.lock import WriterLock
from mdsessions.git.objects import Identity, ObjectStore, blob_sha
from mdsessions.git.process import run_git
from mdsessions.git.refs import RefMoved, RefStore
from mdsessions.git.worktree import WorkTree

__all__ = [
    "COMMIT_ATTEMPTS",
    "TMP_SUFFIX",
    "CommitInfo",
    "GitRepo",
    "Identity",
    "atomic_write",
    "blob_sha",
    "check_repository_format",
    "find_repository",
    "init_repository",
    "run_git",
]

_log = logging.getLogger(__name__)

#: Times a commit is re-planned on top of someone else's new commit before giving up.
COMMIT_ATTEMPTS = 5


@dataclass(frozen=True)
class CommitInfo:
    """One commit as read from ``git log``.

    Attributes:
        sha: The full commit id (40 hex digits).
        author: ``Name <email>`` of the author.
        time: Author time, UTC ISO-8601 with ``Z``.
        subject: The first line of the message.
        trailers: ``Mdsessions-*`` and other trailers, in order, as ``(key, value)`` pairs.
        paths: Paths the commit touched (when asked for), store-relative.
    """

    sha: str
    author: str
    time: str
    subject: str
    trailers: tuple[tuple[str, str], ...]
    paths: tuple[str, ...] = ()

    def trailer(self, key: str) -> str | None:
        """Return the last value of a trailer (case-insensitive key), or ``None``."""
        found = None
        for k, v in self.trailers:
            if k.lower() == key.lower():
                found = v
        return found


def find_repository(start: Path) -> Path | None:
    """Find the working-tree root of the git repository enclosing ``start``, like git does.

    Args:
        start: A file or folder.

    Returns:
        The top folder (the one holding ``.git``), or ``None`` when there is none.
    """
    path = start.resolve()
    if not path.is_dir():
        path = path.parent
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def init_repository(path: Path, *, branch: str = "main") -> None:
    """Create an empty git repository at ``path`` with ``branch`` as the unborn HEAD.

    What it creates is pinned whatever the user's git defaults say (``init.defaultBranch``,
    ``GIT_DEFAULT_HASH``, a future default of SHA-256 or reftable): SHA-1 objects, the
    ``files`` ref store (asked for explicitly where git knows ``--ref-format``), ``branch``.

    Raises:
        StoreError: If git fails.
    """
    path.mkdir(parents=True, exist_ok=True)
    args = ["init", "-q", "-b", branch, "--object-format=sha1"]
    proc = run_git([*args, "--ref-format=files", str(path)], check=False)
    if proc.returncode != 0 and b"ref-format" in proc.stderr:  # git < 2.45: files is the only one
        proc = run_git([*args, str(path)], check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise StoreError(f"git init {path} failed: {message}")


def _local_config_text(git_dir: Path) -> str:
    try:
        return (git_dir / "config").read_text("utf-8", "replace")
    except OSError:
        return ""


def check_repository_format(root: Path, git_dir: Path) -> None:
    """Refuse a repository whose formats mdsessions does not write (cheap: no subprocess).

    Raises:
        StoreError: For a SHA-256 repository (``extensions.objectFormat``), a ``reftable``
            ref store (``extensions.refStorage``), naming the setting and what is expected.
    """
    text = _local_config_text(git_dir)
    fmt = re.search(r"(?im)^\s*objectformat\s*=\s*\"?([A-Za-z0-9-]+)", text)
    if fmt and fmt.group(1).lower() != "sha1":
        raise StoreError(
            f"{root}: extensions.objectFormat is {fmt.group(1)}; mdsessions writes SHA-1 "
            "objects and indexes and does not support SHA-256 repositories yet (create the "
            "store with 'mdsessions init', which pins SHA-1)"
        )
    refs = re.search(r"(?im)^\s*refstorage\s*=\s*\"?([A-Za-z0-9-]+)", text)
    if (refs and refs.group(1).lower() != "files") or (git_dir / "reftable").is_dir():
        raise StoreError(
            f"{root}: the repository keeps its refs in a reftable (extensions.refStorage); "
            "mdsessions moves branches with the 'files' ref store's lock protocol and does not "
            "support reftable yet"
        )


class GitRepo:
    """One store repository: locked writes, in-process commits, reads by commit and path.

    Args:
        root: The working-tree root (the folder holding ``.git``).
        lock_timeout: Seconds a writer waits for the store lock (and for another git
            process's ``index.lock`` or ref lock) before failing.
        durable: fsync objects, refs, the index and files (slower; survives power loss).
        branch: The store's branch; writes are refused while another branch (or a detached
            ``HEAD``) is checked out.

    Raises:
        StoreError: ``.git`` is not a folder (a linked worktree or a gitfile), or the
            repository is SHA-256 or uses reftable (:func:`check_repository_format`).
    """

    def __init__(
        self,
        root: Path,
        *,
        lock_timeout: float = 60.0,
        durable: bool = False,
        branch: str = "main",
    ) -> None:
        self.root = root
        self.git_dir = root / ".git"
        if not self.git_dir.is_dir():
            raise StoreError(
                f"{root}: .git is a file, not a folder (a linked worktree or a separate git "
                "dir); mdsessions needs a store's own repository: use 'mdsessions clone' or "
                "'git clone' instead of 'git worktree add'"
            )
        check_repository_format(root, self.git_dir)
        self.branch = branch
        self.config = GitConfig(root, self.git_dir)
        self.private_dir = self.git_dir / "mdsessions"
        self.private_dir.mkdir(exist_ok=True)
        self.lock_timeout = lock_timeout
        self.durable = durable
        #: The object database (trees cached by id).
        self.objects = ObjectStore(root, self.git_dir, durable=durable)
        #: The refs, moved by compare-and-swap.
        self.ref_store = RefStore(self.git_dir, lock_timeout=lock_timeout, durable=durable)
        #: The crash journal and the files named by a writer's token.
        self.journal = Journal(self.private_dir, durable=durable)
        #: What this process remembers of its own commits.
        self.memory = WriteMemory()
        #: The working tree and the index.
        self.worktree = WorkTree(
            root,
            self.git_dir,
            config=self.config,
            objects=self.objects,
            journal=self.journal,
            memory=self.memory,
            git=self.git,
            lock_timeout=lock_timeout,
            durable=durable,
        )
        self._flock = WriterLock(self.private_dir / "writer.lock")
        self._thread_lock = threading.RLock()
        self._local = threading.local()
        #: Who records commits of the repository's own making (restores): set by the store.
        self.identity = Identity("mdsessions", "mdsessions@localhost")

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop GitPython's persistent ``git cat-file`` processes and drop caches.

        A maintenance run started by a commit is not waited for: it runs detached (see
        :meth:`wait_for_maintenance`).
        """
        self.objects.close()

    @property
    def hooks_enabled(self) -> bool:
        """Whether ``mdsessions.hooks`` is true in the repository's own ``.git/config``.

        Only the store itself can turn hooks on: a global or system setting does not count
        (hooks that arrive with a clone or a template folder must not run by surprise).
        Re-read when the configuration changes.
        """
        return self.config.boolean("mdsessions.hooks", local=True)

    @property
    def signing(self) -> bool:
        """Whether commits are signed: ``mdsessions.sign`` if set, else ``commit.gpgsign``."""
        if self.config.get("mdsessions.sign") is not None:
            return self.config.boolean("mdsessions.sign")
        return self.config.boolean("commit.gpgsign")

    def git(
        self,
        *args: str,
        input: bytes | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``git args…`` in this repository (hooks as the store's configuration says)."""
        return run_git(
            args, cwd=self.root, input=input, check=check, hooks=self.hooks_enabled, timeout=timeout
        )

    # -- refs -----------------------------------------------------------------------------

    def head_ref(self) -> str:
        """The store's branch, e.g. ``refs/heads/main``, checked to be the one checked out.

        Raises:
            StoreError: If HEAD is detached or another branch is checked out (naming both).
        """
        text = (self.git_dir / "HEAD").read_text().strip()
        ref = f"refs/heads/{self.branch}"
        if not text.startswith("ref: "):
            raise StoreError(
                f"{self.root}: HEAD is detached at {text[:12]}, but the store's branch is "
                f"'{self.branch}' (mdsessions.toml); check it out (git switch {self.branch}) "
                "before writing"
            )
        if text[5:] != ref:
            current = text[5:].removeprefix("refs/heads/")
            raise StoreError(
                f"{self.root}: branch '{current}' is checked out, but the store's branch is "
                f"'{self.branch}' (mdsessions.toml); switch back (git switch {self.branch}) "
                "before writing, or set branch in mdsessions.toml"
            )
        return ref

    def read_ref(self, ref: str) -> str | None:
        """The commit id a ref points at (loose or packed), or ``None`` if it does not exist."""
        return self.ref_store.read(ref)

    def head(self) -> str | None:
        """The commit HEAD points at (whatever is checked out), or ``None`` on an unborn branch."""
        return self.ref_store.head()

    # -- objects --------------------------------------------------------------------------

    def read_object(self, binsha: bytes) -> tuple[str, bytes]:
        """Read one object (any kind, loose or packed).

        Returns:
            ``(type, raw bytes)`` where type is ``blob``, ``tree``, ``commit`` or ``tag``.
        """
        return self.objects.read(binsha)

    def entry(self, commit: str | None, path: str) -> tuple[bytes, bytes] | None:
        """The ``(mode, binsha)`` of ``path`` in ``commit``, or ``None`` if absent."""
        return self.objects.entry(commit, path)

    def read_file(self, commit: str, path: str) -> bytes | None:
        """The content of ``path`` at ``commit`` (``git show commit:path``), or ``None``."""
        return self.objects.read_file(commit, path)

    def list_tree(self, commit: str, path: str = "") -> dict[str, bytes]:
        """Every file below ``path`` at ``commit``: ``{store-relative path: blob binsha}``."""
        return self.objects.list_tree(commit, path)

    def diff_trees(
        self, old: str | None, new: str | None, path: str = ""
    ) -> dict[str, tuple[bytes | None, bytes | None]]:
        """Files that differ between two commits (below ``path``), compared in-process.

        Only subtrees whose ids differ are read, so the cost follows the size of the change,
        not of the store. Submodule entries are ignored; a change of mode alone is not a change.

        Args:
            old: A full commit id, or ``None`` for the empty tree.
            new: A full commit id, or ``None`` for the empty tree.
            path: A store-relative folder (or file) to limit the comparison to; ``""`` = all.

        Returns:
            ``{store-relative path: (old blob binsha or None, new blob binsha or None)}``.
        """
        return self.objects.diff_trees(old, new, path)

    def resolve(self, rev: str) -> str:
        """Resolve a revision (sha prefix, ref, ``HEAD~2``) to a full commit id.

        Raises:
            StoreError: If it names no commit.
        """
        if re.fullmatch(r"[0-9a-f]{40}", rev):
            # A full id is answered in-process, but only when the commit is here: an id
            # copied from another machine before a sync must fail as any unknown rev does.
            try:
                kind, _raw = self.read_object(bytes.fromhex(rev))
            except Exception:  # missing or unreadable: rev-parse gives the verdict
                kind = None
            if kind == "commit":
                return rev
        proc = self.git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}", check=False
        )
        if proc.returncode != 0:
            raise StoreError(f"{rev!r} does not name a commit in this store")
        return proc.stdout.decode().strip()

    def resolve_quick(self, rev: str) -> str:
        """:meth:`resolve`, answered in-process for ``HEAD``, full ids and unique id prefixes.

        A prefix is completed through GitPython's persistent ``git cat-file`` (no new
        process); anything else (refs, ``HEAD~2``, an ambiguous prefix, a prefix that is
        also a branch or tag name) goes to ``git rev-parse`` as :meth:`resolve` does.

        Raises:
            StoreError: If it names no commit.
        """
        if rev == "HEAD":
            found = self.head()
            if found is not None:
                return found
        elif re.fullmatch(r"[0-9a-f]{4,39}", rev) and all(
            self.read_ref(f"refs/{kind}/{rev}") is None for kind in ("heads", "tags")
        ):
            try:
                hexsha = self.objects.expand_prefix(rev)
                if re.fullmatch(r"[0-9a-f]{40}", hexsha):
                    kind, _raw = self.read_object(bytes.fromhex(hexsha))
                    if kind == "commit":
                        return hexsha
            except Exception:  # ambiguous or unknown: let rev-parse decide
                pass
        return self.resolve(rev)

    # -- writing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the store's writer lock (threads and processes); recover a crashed writer first.

        Raises:
            LockTimeoutError: If the lock is not free within ``lock_timeout`` seconds.
        """
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        deadline = time.monotonic() + self.lock_timeout
        if not self._thread_lock.acquire(timeout=self.lock_timeout):
            raise LockTimeoutError(
                f"{self.root}: another writer in this process held the store lock for more than "
                f"{self.lock_timeout:g} s"
            )
        try:
            try:
                self._flock.acquire(timeout=max(0.0, deadline - time.monotonic()))
            except _LockTimeout:
                raise LockTimeoutError(
                    f"{self.root}: another process held the store lock "
                    f"({self.private_dir / 'writer.lock'}) for more than {self.lock_timeout:g} s"
                ) from None
            if _log.isEnabledFor(logging.DEBUG):
                ms = round((time.monotonic() - deadline + self.lock_timeout) * 1000, 1)
                _log.debug(
                    "writer lock taken after %.1f ms",
                    ms,
                    extra={"operation": "lock", "duration_ms": ms},
                )
            try:
                self._local.depth = 1
                with self.config.pinned():  # the configuration is read once per write
                    self.recover()
                    _recovery.sweep_claims(self)
                    _recovery.restore_dropped(self, self.identity)
                    yield
            finally:
                self._local.depth = 0
                self._flock.release()
        finally:
            self._thread_lock.release()

    def prepare(self, files: Mapping[str, bytes | None], planned_on: str | None) -> None:
        """Do before the writer lock what :meth:`commit` of ``files`` would do first under it.

        Writes the blobs of ``files`` (what ``git add`` would store: objects are named by
        their content, so one written early is the very object the commit needs; if it is
        gone by then, the commit writes it again; not in durable mode, whose commit flushes
        all its objects at once) and reads the trees of ``planned_on`` along
        the paths into the cache (the commit compares them with the branch's). The writer
        lock is then held only for what depends on the branch. A best effort: on any error
        nothing is reported here, and the commit made under the lock raises it.

        Args:
            files: What :meth:`commit` will be given (store-relative paths to content or
                ``None``).
            planned_on: The branch's commit the write was planned on (``None``: unborn).
        """
        try:
            paths = sorted(files)
            for rel in paths:
                self.worktree.check_path(rel)
            if not self.durable:  # durable: one flush for all objects, under the lock
                actions = self.worktree.check_attributes(paths)
                for rel in paths:
                    data = files[rel]
                    if data is not None:
                        blob = self.worktree.to_git(rel, data, actions[rel])
                        self.objects.store(b"blob", blob)
            if planned_on is not None:
                for rel in paths:
                    self.objects.entry(planned_on, rel)
        except Exception:  # the commit made under the lock reports it
            pass

    def holds_writer_lock(self) -> bool:
        """Whether the calling thread is inside :meth:`writer`."""
        return bool(getattr(self._local, "depth", 0))

    def recover_on_open(self) -> bool:
        """Recover a crashed writer's leftovers now, if no writer is active (called on open).

        Looked at when there is a journal or a claim, when someone else moved the branch
        last, or when the reflog's tail holds a racing no-op reset (``git stash``) that
        may have dropped a commit of ours which no later write of this store put back.
        Temp objects of processes that died writing objects before the writer lock (their
        object claim unlocked) are removed first, with no lock needed.

        Returns:
            True if something was recovered; False if there was nothing to do or another
            writer holds the lock (it recovers before writing).
        """
        swept_objects = _recovery.sweep_object_claims(self)
        if (
            not self.journal.path.exists()
            and not _recovery.reflog_asks_for_audit(self)
            and not any(self.private_dir.glob("claim-*"))
        ):
            return swept_objects
        if not self._thread_lock.acquire(blocking=False):
            return False
        try:
            try:
                self._flock.acquire(timeout=0)
            except _LockTimeout:
                return False
            try:
                recovered = self.recover()
                swept = _recovery.sweep_claims(self)
                restored = bool(_recovery.restore_dropped(self, self.identity))
                return restored or recovered or swept or swept_objects
            except (StoreError, OSError):
                return False  # the next writer meets it and reports it clearly
            finally:
                self._flock.release()
        finally:
            self._thread_lock.release()

    def recover(self) -> bool:
        """Finish or undo an operation a crashed writer left half done (call under the lock).

        Only what the journal proves the dead writer created is touched: its lock files
        (the same files as its claims in ``.git/mdsessions/``), its temp files (named with
        its token) and, when the branch is at the very commit it was installing, that
        commit's files and index entries (rolled forward). A lock another git process holds,
        and a branch someone else moved, are left alone.

        Returns:
            True if something was recovered.
        """
        return _recovery.recover(self)

    def read_worktree(self, rel: str) -> bytes:
        """A working-tree file as git would store it (line ends converted as ``git add`` does).

        Raises:
            FileNotFoundError: If it does not exist.
        """
        return self.worktree.read(rel)

    def edited_paths(self, head: str | None, paths: Sequence[str]) -> list[str]:
        """The paths :meth:`.WorkTree.check_clean` would refuse: a person's unrecorded edit."""
        return self.worktree.edited_paths(head, paths)

    def commit(
        self,
        files: Mapping[str, bytes | None],
        *,
        message: str,
        author: Identity,
        committer: Identity,
        check_edits: bool = True,
        expected_head: str | None = None,
        planned_on: str | None = None,
        in_place: Mapping[str, os.stat_result] | None = None,
    ) -> str | None:
        """Record ``files`` as one commit on the store's branch and in the working tree.

        Must be called inside :meth:`writer`. Other git processes may commit meanwhile (a
        person's ``git commit``, a ``git stash``): when the branch moved under this write,
        the commit is made again on top of the new ``HEAD`` — unless that commit changed one
        of ``files``' paths, which the caller planned from the old state
        (:class:`BranchMovedError`: plan again). The blobs are what ``git add`` would store
        for the working-tree files (line-end conversion); the commit is signed and the
        repository's commit hooks run when its configuration says so.

        Args:
            files: Store-relative ``/``-separated paths to new working-tree content, or
                ``None`` to delete.
            message: The full commit message (subject, blank line, body, trailers).
            author: Who acted.
            committer: Who recorded it (the tool's identity).
            check_edits: Refuse when a path holds a person's unrecorded edit.
            expected_head: When given, the commit the branch must still be at (no re-plan).
            planned_on: The branch's commit when the caller read what ``files`` are made
                from (default: the branch now); a commit made since that changed one of the
                paths raises :class:`BranchMovedError`.
            in_place: Paths whose working-tree file already holds their new content (a
                person's edit being recorded), with the ``os.stat`` taken when it was read:
                the file is not written again (so an editor's newer save is never replaced
                by the older bytes, and the editor sees no change), only its index entry.

        Returns:
            The new commit id, or ``None`` when nothing changed (no commit is made).

        Raises:
            UnrecordedEditError: A path holds a person's unrecorded edit (nothing written).
            BranchMovedError: Someone else's new commit changed one of the paths (nothing
                written; retryable after planning again).
            ConflictError: The branch is not at ``expected_head``, or kept moving through
                :data:`COMMIT_ATTEMPTS` tries (nothing written; retryable).
            LockTimeoutError: Another git process held ``index.lock`` or the ref lock too long.
            HookError: A ``pre-commit``, ``prepare-commit-msg`` or ``commit-msg`` hook
                rejected the commit (nothing written).
            StoreError: Signing failed (the signer's message; nothing written), or HEAD is
                not the store's branch.
            OSError: A file-system error before the branch moved (nothing written); after it
                moved the journal completes the operation on the next write.
        """
        if not files:
            return None
        ref = self.head_ref()
        paths = sorted(files)
        for rel in paths:
            self.worktree.check_path(rel)
        base = self.read_ref(ref) if planned_on is None else planned_on
        if expected_head is not None and base != expected_head:
            raise ConflictError(f"{ref} is at {str(base)[:12]}, expected {expected_head[:12]}")
        head = self.read_ref(ref)
        for _attempt in range(COMMIT_ATTEMPTS):
            if head != self.memory.audited:
                # Someone else moved the branch: first put back a commit of ours that a
                # racing no-op reset (git stash) dropped, then re-plan on whatever is there.
                _recovery.restore_dropped(self, self.identity)
                head = self.read_ref(ref)
            if head != base:
                changed = self.objects.first_change(base, head, paths)
                if changed is not None:
                    raise BranchMovedError(
                        f"{ref} moved to {str(head)[:12]} with a commit made outside this "
                        f"save that changed {changed}; nothing was written, plan the save again"
                    )
            if check_edits:
                self.worktree.check_clean(head, paths)
            try:
                return _commit.commit_once(
                    self, files, paths, ref, head, message, author, committer, in_place
                )
            except RefMoved as moved:
                if expected_head is not None:
                    raise ConflictError(
                        f"{ref} moved from {expected_head[:12]} to {str(moved.args[0])[:12]} "
                        "during the operation; nothing was written, try again"
                    ) from None
                head = moved.args[0]
        raise ConflictError(
            f"{ref} kept moving: other git processes committed {COMMIT_ATTEMPTS} times while "
            "this save was being made; nothing was written, try again"
        )

    def after_commit(self) -> None:
        """Count this commit's loose objects in the store; past the thresholds, start maintenance.

        The counter lives in the store (``.git/mdsessions/maintenance.count``), so commits of
        short-lived processes (CLI calls) add up; maintenance (``git repack -d -l
        --geometric=2`` and an incremental commit-graph) runs in a detached process that
        outlives the caller, under a lock of its own, while writers and a person's git go on.
        Thresholds, switches and safety: :mod:`.maintain`. Called by the commit path
        (:mod:`.commit`) after each commit this process makes.
        """
        from mdsessions.git import maintain  # imports this module for its types only

        # The commit is made: maintenance is best effort and never fails the save.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            maintain.note_commit(self)

    def wait_for_maintenance(self, timeout: float = 120.0) -> bool:
        """Wait until no automatic (or explicit) maintenance runs on this store.

        Args:
            timeout: Seconds to wait at most.

        Returns:
            ``True`` when none runs, ``False`` if one still ran after ``timeout`` seconds.
        """
        from mdsessions.git import maintain

        return maintain.wait_for_maintenance(self.git_dir, timeout)

    # -- history --------------------------------------------------------------------------

    def log(
        self,
        paths: Sequence[str] = (),
        *,
        rev: str = "HEAD",
        max_count: int | None = None,
        skip: int = 0,
        with_paths: bool = False,
        extra: Sequence[str] = (),
    ) -> list[CommitInfo]:
        """Commits newest first, optionally limited to paths, with trailers parsed.

        Args:
            paths: Store-relative paths or folders to limit to.
            rev: Where to start.
            max_count: At most this many commits.
            skip: Skip this many first.
            with_paths: Also list the paths each commit touched.
            extra: More ``git log`` options (e.g. ``--author=…``, ``--since=…``).

        Returns:
            The commits, newest first.
        """
        fmt = "%x1e%H%x1f%an <%ae>%x1f%at%x1f%s%x1f%(trailers:only,unfold)%x1f"
        args = ["log", f"--format={fmt}", "--no-color", *extra]
        if max_count is not None:
            args.append(f"--max-count={max_count}")
        if skip:
            args.append(f"--skip={skip}")
        if with_paths:
            args += ["--name-only", "--no-renames"]
        args += [rev, "--", *paths]
        proc = self.git(*args, check=False)
        if proc.returncode != 0:
            if self.head() is None:
                return []
            raise StoreError(proc.stderr.decode("utf-8", "replace").strip())
        out: list[CommitInfo] = []
        for record in proc.stdout.decode("utf-8", "replace").split("\x1e")[1:]:
            sha, author, stamp, subject, trailers, rest = record.split("\x1f", 5)
            pairs = []
            for line in trailers.splitlines():
                key, sep, value = line.partition(":")
                if sep:
                    pairs.append((key.strip(), value.strip()))
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(stamp)))
            touched = tuple(p for p in rest.splitlines() if p.strip()) if with_paths else ()
            out.append(CommitInfo(sha, author, when, subject, tuple(pairs), touched))
        return out

    def config_identity(self) -> Identity | None:
        """``user.name``/``user.email`` from git's configuration, if both are set."""
        name = self.git("config", "user.name", check=False).stdout.decode().strip()
        email = self.git("config", "user.email", check=False).stdout.decode().strip()
        if name and email:
            return Identity(name, email)
        return None

    # ---- history verbs (issue 3) ----
    # Tree comparison, merge commits and fast-forwards made in-process (with the same journal,
    # compare-and-swap and index sync as :meth:`commit`), ancestry queries, and git commands
    # that report progress. Used by ``mdsessions.history``.

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of two commits (``git merge-base``), or ``None``."""
        proc = self.git("merge-base", a, b, check=False)
        if proc.returncode != 0:
            return None
        return proc.stdout.decode().strip() or None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether ``ancestor`` is reachable from ``descendant`` (a commit is its own ancestor)."""
        if ancestor == descendant:
            return True
        proc = self.git("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        if proc.returncode not in (0, 1):
            raise StoreError(proc.stderr.decode("utf-8", "replace").strip())
        return proc.returncode == 0

    def checkout_paths(self, commit: str, paths: Sequence[str]) -> None:
        """Make working-tree files and index entries of ``paths`` match ``commit``.

        A path absent at ``commit`` is deleted. Must be called inside :meth:`writer`; it
        overwrites whatever is on disk (the caller decides that this is wanted).
        """
        for rel in paths:
            self.worktree.check_path(rel)
        self.worktree.materialize(commit, list(paths))

    def commit_merge(
        self,
        other: str,
        *,
        blobs: Mapping[str, bytes | None],
        files: Mapping[str, bytes | None] | None = None,
        message: str,
        author: Identity,
        committer: Identity,
        expected_head: str | None = None,
    ) -> str:
        """Record a merge commit (parents HEAD and ``other``) whose tree is HEAD's plus changes.

        Must be called inside :meth:`writer`. The branch moves by compare-and-swap under the
        same journal as :meth:`commit`, and the changed paths are written atomically and
        synced in the index, so a crash leaves all or nothing and ``git status`` stays clean.

        Args:
            other: The second parent (a full commit id already in the object database).
            blobs: Store-relative paths to blob ids (20 raw bytes) already in the object
                database, or ``None`` to delete.
            files: Store-relative paths to new content (or ``None`` to delete).
            message: The full commit message.
            author: Who acted.
            committer: Who recorded it.
            expected_head: The commit the branch must still be at.

        Returns:
            The merge commit id. A merge commit is made even when the tree equals HEAD's.

        Raises:
            UnrecordedEditError: A changed path holds a person's unrecorded edit (nothing
                written).
            ConflictError: The branch moved (nothing written).
        """
        ref = self.head_ref()
        head = self.read_ref(ref)
        if head is None:
            raise StoreError(f"{ref} has no commit yet; nothing to merge into")
        if expected_head is not None and head != expected_head:
            raise ConflictError(f"{ref} is at {head[:12]}, expected {expected_head[:12]}")
        changes: dict[str, bytes | None] = dict(blobs)
        for rel, data in (files or {}).items():
            changes[rel] = None if data is None else self.objects.store(b"blob", data)
        paths = sorted(changes)
        for rel in paths:
            self.worktree.check_path(rel)
        # Only paths whose content changes are written and must be free of edits.
        touched = []
        for rel in paths:
            found = self.objects.entry(head, rel)
            if (found[1] if found is not None else None) != changes[rel]:
                touched.append(rel)
        self.worktree.check_clean(head, touched)
        old_root = self.objects.commit_tree(head)
        new_root = self.objects.rewrite(old_root, changes) if changes else old_root
        new = _commit.make_commit(
            self, new_root, [head, other], message, author, committer, self.signing
        )
        self.objects.remember_commit(new, new_root)
        _commit.move_branch(self, ref, head, new, touched, message, committer)
        return new

    def fast_forward(
        self, target: str, *, message: str, committer: Identity, expected_head: str | None = None
    ) -> list[str]:
        """Move HEAD's branch forward to ``target`` (a descendant) and update the files.

        Must be called inside :meth:`writer`.

        Args:
            target: A full commit id that has HEAD as an ancestor.
            message: The reflog message.
            committer: The reflog identity.
            expected_head: The commit the branch must still be at.

        Returns:
            The store-relative paths that changed.

        Raises:
            UnrecordedEditError: A changed path holds a person's unrecorded edit (nothing
                written).
            ConflictError: The branch moved, or ``target`` does not descend from HEAD.
        """
        ref = self.head_ref()
        head = self.read_ref(ref)
        if expected_head is not None and head != expected_head:
            raise ConflictError(f"{ref} is at {str(head)[:12]}, expected {expected_head[:12]}")
        if head is not None and not self.is_ancestor(head, target):
            raise ConflictError(f"{target[:12]} does not descend from {ref} ({head[:12]})")
        paths = sorted(self.objects.diff_trees(head, target))
        self.worktree.check_clean(head, paths)
        _commit.move_branch(self, ref, head, target, paths, message, committer)
        return paths

    # ---- sync verbs (issue 11) ----
    # Named refs that keep a version reachable, the commit graph a pull brings, and listing.

    def create_ref(self, ref: str, commit: str, message: str) -> bool:
        """Create ``ref`` at ``commit`` unless it exists (``git update-ref REF COMMIT ""``).

        Git's own ref lock protocol and reflog; never moves an existing ref.

        Args:
            ref: A full ref name (``refs/mdsessions/…``).
            commit: A full commit id in the object database.
            message: The reflog message.

        Returns:
            ``True`` when created, ``False`` when it already pointed at ``commit``.

        Raises:
            ConflictError: The ref exists and points elsewhere.
        """
        current = self.read_ref(ref)
        if current == commit:
            return False
        if current is None:
            proc = self.git(
                "update-ref", "--create-reflog", "-m", message, ref, commit, "", check=False
            )
            if proc.returncode == 0:
                return True
            current = self.read_ref(ref)
            if current == commit:
                return False
            if current is None:
                raise StoreError(
                    f"cannot create {ref}: {proc.stderr.decode('utf-8', 'replace').strip()}"
                )
        raise ConflictError(f"{ref} exists and points at {current[:12]}, not {commit[:12]}")

    def refs(self, prefix: str) -> dict[str, str]:
        """Refs below ``prefix`` (``refs/mdsessions/set-aside/``): name → commit id, sorted."""
        proc = self.git("for-each-ref", "--format=%(objectname) %(refname)", prefix)
        out: dict[str, str] = {}
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            sha, _, name = line.partition(" ")
            if name:
                out[name] = sha
        return out

    def commit_parents(self, include: str, exclude: str | None) -> dict[str, tuple[str, ...]]:
        """Commits reachable from ``include`` but not from ``exclude``, with their parents.

        (``git rev-list --parents include ^exclude``.) A parent missing from the result is
        reachable from ``exclude``.
        """
        args = ["rev-list", "--parents", include]
        if exclude is not None:
            args.append(f"^{exclude}")
        proc = self.git(*args)
        out: dict[str, tuple[str, ...]] = {}
        for line in proc.stdout.decode().splitlines():
            sha, *parents = line.split()
            out[sha] = tuple(parents)
        return out

    def set_local_config(self, key: str, value: str) -> None:
        """Set a key in the repository's own ``.git/config`` (``git config --local``)."""
        self.git("config", "--local", key, value)
        self.config.changed()

    def run_progress(
        self,
        args: Sequence[str],
        on_progress: Any = None,
        *,
        cwd: Path | None = None,
    ) -> str:
        """Run a git command that reports progress, in the store unless ``cwd`` says otherwise.

        As :func:`.process.run_progress` (which documents ``on_progress`` and the result).

        Raises:
            StoreError: If git exits non-zero (the message holds git's own error).
        """
        return _process.run_progress(args, on_progress, cwd=cwd or self.root)
