"""The git layer: the only module that imports GitPython (DESIGN.md "Layers").

Small verbs over one repository: discover/init, the writer lock, atomic file writes, the
index-free commit, reading blobs and trees, log, and plain git commands run with a clean
environment.  Nothing above this module knows about objects, refs or the index.

The commit path (chosen from shared/PERF.md): blobs, trees and the commit object are written
in-process as zlib-deflated loose objects (no subprocess per checkpoint),
the branch is moved by compare-and-swap with git's lock-file protocol (plus reflog lines),
the working-tree files are written atomically, and the index entries of the written paths
are brought back in sync in-process (``_gitindex``), so ``git status`` stays clean without
GitPython's pure-Python index or ``git add`` ever touching the hot path.

Crash safety: before the branch moves, a journal (``.git/mdsessions/journal.json``) records
the old and new commit and the paths; the next writer that takes the lock finds it and rolls
the operation forward (branch moved) or back (branch did not move), removing stale lock and
temp files.  A kill at any point therefore leaves either the whole operation or none of it.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import secrets
import stat
import subprocess
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from mdsessions.errors import (
    BranchMovedError,
    ConflictError,
    HookError,
    InvalidArgumentError,
    LockTimeoutError,
    StoreError,
    UnrecordedEditError,
)
from mdsessions.git import convert as _convert
from mdsessions.git import fsutil as _fsutil
from mdsessions.git import index as _gitindex
from mdsessions.git.lock import LockTimeout as _LockTimeout
from mdsessions.git.lock import WriterLock

__all__ = [
    "TMP_SUFFIX",
    "CommitInfo",
    "GitRepo",
    "Identity",
    "atomic_write",
    "blob_sha",
    "find_repository",
    "init_repository",
]

TMP_SUFFIX = ".mdstmp"
"""Suffix of temp files written next to their target before the atomic rename."""

FILE_MODE = b"100644"
TREE_MODE = b"40000"


class Identity(NamedTuple):
    """A git identity (author or committer)."""

    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    @classmethod
    def parse(cls, text: str) -> Identity:
        """Parse ``"Name <email>"``.

        Raises:
            InvalidArgumentError: If the text is not of that form or holds characters git
                forbids (a ``ValueError``).
        """
        match = re.fullmatch(r"\s*([^<>\n]*?)\s*<([^<>\s]*)>\s*", text)
        if match is None or not match.group(1):
            raise InvalidArgumentError(f"expected an identity 'Name <email>', got {text!r}")
        return cls(match.group(1), match.group(2))

    def checked(self) -> Identity:
        """Return self if git accepts it.

        Raises:
            InvalidArgumentError: On an empty name or ``<``, ``>``, or a line break in name or
                email (a ``ValueError``).
        """
        for part in self:
            if any(c in part for c in "<>\n\r\0"):
                raise InvalidArgumentError(f"invalid git identity {str(self)!r}")
        if not self.name.strip():
            raise InvalidArgumentError("a git identity needs a name")
        return self


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


def blob_sha(data: bytes) -> bytes:
    """The git object id (20 raw bytes) of a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).digest()


def git_env() -> dict[str, str]:
    """The environment for git child processes: the caller's ``GIT_*`` repository overrides removed.

    ``GIT_DIR``, ``GIT_WORK_TREE``, ``GIT_INDEX_FILE`` and friends in the caller's environment
    would redirect git away from the store; config-location variables are kept.
    """
    keep = {
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_SYSTEM",
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "GIT_TERMINAL_PROMPT",
        "GIT_TRACE",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in keep}
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    env["LC_ALL"] = "C"
    return env


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    input: bytes | None = None,
    check: bool = True,
    hooks: bool = False,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command with a clean environment; hooks off unless ``hooks`` is true.

    Args:
        args: Arguments after ``git``.
        cwd: The directory to run in.
        input: Bytes for standard input.
        check: Raise on a non-zero exit status.
        hooks: Let repository hooks run (``core.hooksPath`` is pointed at nothing otherwise).
        timeout: Seconds before the command is killed.
        env: More environment variables for git (e.g. ``GIT_AUTHOR_DATE``).

    Returns:
        The completed process (stdout and stderr as bytes).

    Raises:
        StoreError: If git is missing, times out, or (with ``check``) exits non-zero; the
            message holds git's own stderr.
    """
    cmd = ["git"]
    if not hooks:
        cmd += ["-c", f"core.hooksPath={os.devnull}"]
    cmd += list(args)
    try:
        proc = subprocess.run(
            cmd,
            cwd=str(cwd) if cwd else None,
            input=input,
            capture_output=True,
            env={**git_env(), **(env or {})},
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise StoreError("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise StoreError(f"git {' '.join(args)} timed out after {timeout} s") from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip() or f"exit status {proc.returncode}"
        raise StoreError(f"git {' '.join(args[:2])} failed: {message}")
    return proc


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


#: Tries to create a file whose folder a concurrent ``git prune-packed`` may remove.
_CREATE_ATTEMPTS = 5


def _write_new(path: Path, data: bytes, mode: int, *, fsync: bool) -> None:
    """Create ``path`` (which must not exist; missing folders are made) holding ``data``.

    Raises:
        OSError: On any file-system error; a partly written file is removed.
    """
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            break
        except FileNotFoundError:
            # The folder is missing, or was just removed again: `git prune-packed` (run by
            # a concurrent repack) removes empty object folders between a mkdir and an open.
            if attempt == _CREATE_ATTEMPTS - 1:
                raise
            path.parent.mkdir(parents=True, exist_ok=True)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def _stage_file(path: Path, data: bytes, *, fsync: bool, token: str) -> Path:
    """Write ``data`` to a new temp file beside ``path`` (folders made); return the temp file.

    The temp file's name holds the writer's journal ``token`` (recovery removes only those).

    Raises:
        OSError: On any file-system error (nothing is left behind).
    """
    tmp = path.parent / f".{path.name}.{token}{TMP_SUFFIX}"
    _write_new(tmp, data, 0o644, fsync=fsync)
    return tmp


def atomic_write(
    path: Path, data: bytes, *, fsync: bool = False, token: str = ""
) -> os.stat_result:
    """Write a file atomically: a temp file in the same folder, then ``os.replace``.

    Args:
        path: The target file; missing parent folders are created.
        data: The exact bytes to write.
        fsync: Flush the file and its folder to disk (durable mode).
        token: A writer's journal token, put in the temp file's name so that recovery can
            tell its leftovers.

    Returns:
        The ``os.stat`` of the new file.

    Raises:
        OSError: On any file-system error; the target is then untouched and the temp removed.
    """
    parent = path.parent
    tmp = parent / f".{path.name}.{token}{secrets.token_hex(4)}{TMP_SUFFIX}"
    _write_new(tmp, data, 0o644, fsync=fsync)
    try:
        _fsutil.replace(tmp, path, durable=fsync)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        dfd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path.stat()


# --------------------------------------------------------------------------------------------
# trees
# --------------------------------------------------------------------------------------------

TreeEntries = dict[bytes, tuple[bytes, bytes]]  # name -> (mode, binsha)


def _tree_key(item: tuple[bytes, tuple[bytes, bytes]]) -> bytes:
    name, (mode, _sha) = item
    return name + b"/" if mode in (b"40000", b"040000") else name


def serialize_tree(entries: TreeEntries) -> bytes:
    """Serialize a tree in git's canonical order (folders sort as ``name/``)."""
    return b"".join(
        mode + b" " + name + b"\0" + sha
        for name, (mode, sha) in sorted(entries.items(), key=_tree_key)
    )


_TREE_ENTRY = re.compile(rb"([0-7]+) ([^\0]+)\0(.{20})", re.DOTALL)


def parse_tree_layout(raw: bytes) -> tuple[TreeEntries, dict[bytes, int]]:
    """Parse raw tree bytes into ``{name: (mode, binsha)}`` and ``{name: offset of its id}``.

    Raises:
        StoreError: The bytes are not a well-formed tree.
    """
    entries: TreeEntries = {}
    offsets: dict[bytes, int] = {}
    end = 0
    for m in _TREE_ENTRY.finditer(raw):  # scanning in C: ~2.5x a Python loop
        if m.start() != end:
            break
        mode, name, sha = m.groups()
        entries[name] = (mode, sha)
        end = m.end()
        offsets[name] = end - 20
    if end != len(raw):
        raise StoreError(f"malformed tree object ({len(raw)} bytes, parsed {end})")
    return entries, offsets


def parse_tree(raw: bytes) -> TreeEntries:
    """Parse raw tree bytes into ``{name: (mode, binsha)}``.

    Raises:
        StoreError: The bytes are not a well-formed tree.
    """
    return parse_tree_layout(raw)[0]


#: Trees with at least this many entries keep a layout (see ``GitRepo._rewrite``).
_LAYOUT_MIN_ENTRIES = 512
_LAYOUT_CACHE = 16
#: Trees larger than this are stored with zlib level 0: they are mostly object ids, which
#: do not compress, and level 1 costs ~15 ms per MB (git repacks them with deltas anyway).
_STORE_TREE_BYTES = 16 * 1024


def tree_id_offsets(raw: bytes) -> dict[bytes, int]:
    """Map each entry name of raw tree bytes to the offset of its 20-byte object id."""
    return parse_tree_layout(raw)[1]


# --------------------------------------------------------------------------------------------
# the repository
# --------------------------------------------------------------------------------------------


def _commit_bytes(
    tree: bytes,
    parents: Sequence[str],
    message: str,
    author: Identity,
    committer: Identity,
    when: int | None = None,
) -> bytes:
    """The raw bytes of an unsigned commit object (times UTC, ``+0000``)."""
    stamp = int(time.time()) if when is None else when
    lines = [f"tree {tree.hex()}\n", *(f"parent {p}\n" for p in parents)]
    lines.append(f"author {author.name} <{author.email}> {stamp} +0000\n")
    lines.append(f"committer {committer.name} <{committer.email}> {stamp} +0000\n\n")
    lines.append(f"{message.rstrip()}\n")
    return "".join(lines).encode()


def _restore_message(dropped: str) -> str:
    return (
        f"restore: put back {dropped[:12]}, dropped by a concurrent git reset\n\n"
        f"A 'git reset --hard' (or 'git stash') that read HEAD before {dropped[:12]} was made\n"
        "moved the branch back over it; this merge brings its files back.\n\n"
        "Mdsessions-Kind: restore\n"
        f"Mdsessions-Restored: {dropped}\n"
    )


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


class _JournalEntry(NamedTuple):
    """What a writer is doing, written before it creates anything (``journal.json``).

    ``token`` names every lock claim and temp file the writer creates, so recovery removes
    only those; ``new`` is the commit it is about to install (``None`` until known), so a
    branch found at any other commit is someone else's and is never "rolled forward".
    """

    old: str | None
    ref: str
    paths: list[str]
    token: str = ""
    new: str | None = None


class _RefMoved(Exception):
    """The branch moved between reading it and taking its lock (internal)."""


#: How many recently committed paths are checked for entries a stale-index write dropped.
_RECENT_PATHS = 24

#: Times a commit is re-planned on top of someone else's new commit before giving up.
COMMIT_ATTEMPTS = 5

_CONFIG_FILES_ENV = ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM")


class GitConfig:
    """The repository's effective git configuration, re-read only when a config file changed.

    One ``git config --list -z`` (every scope, includes followed) per change of the
    repository's, the worktree's, the global, the system and every included config file
    (their ``stat``); between
    changes a lookup costs a few ``os.stat`` calls. Keys are git's canonical form: section
    and name lower case (``core.autocrlf``), a subsection as written.
    """

    def __init__(self, root: Path, git_dir: Path) -> None:
        self.root = root
        self._files = [git_dir / "config", git_dir / "config.worktree"]
        if os.environ.get("GIT_CONFIG_GLOBAL"):
            self._files.append(Path(os.environ["GIT_CONFIG_GLOBAL"]))
        else:
            home = Path(os.environ.get("HOME", "~")).expanduser()
            xdg = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
            self._files += [home / ".gitconfig", Path(xdg) / "git" / "config"]
        if not os.environ.get("GIT_CONFIG_NOSYSTEM"):
            self._files.append(Path(os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig"))
        self._signature: tuple[tuple[int, int, int], ...] | None = None
        self._values: dict[str, str] = {}
        self._local: dict[str, str] = {}
        self._lock = threading.Lock()

    def _stat_signature(self) -> tuple[tuple[int, int, int], ...]:
        out = []
        for path in self._files:
            try:
                st = os.stat(path)  # noqa: PTH116
            except OSError:
                out.append((0, 0, 0))
            else:
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def values(self, *, local: bool = False) -> dict[str, str]:
        """Every key's last value (``git config --list``), fresh as of the last change.

        Args:
            local: Only the repository's own ``.git/config`` (and what it includes).
        """
        signature = self._stat_signature()
        with self._lock:
            if signature != self._signature:
                proc = run_git(  # hooks=True: no -c core.hooksPath override in the listing
                    ["config", "--list", "-z", "--show-scope", "--show-origin"],
                    cwd=self.root,
                    check=False,
                    hooks=True,
                )
                values: dict[str, str] = {}
                local_values: dict[str, str] = {}
                items = proc.stdout.decode("utf-8", "replace").split("\0")
                for scope, origin, item in zip(items[::3], items[1::3], items[2::3], strict=False):
                    key, newline, value = item.partition("\n")
                    if key:
                        values[key] = value if newline else "true"
                        if scope == "local":
                            local_values[key] = values[key]
                    # Every config file is watched: those values came from, and those an
                    # include names (an empty one gives no value yet).
                    if origin.startswith("file:"):
                        source = Path(origin[5:])
                        source = source if source.is_absolute() else self.root / source
                        watch = [source]
                        if key.startswith("include") and key.endswith(".path") and value:
                            target = Path(value).expanduser()
                            watch.append(target if target.is_absolute() else source.parent / target)
                        for path in watch:
                            if path not in self._files:
                                self._files.append(path)
                self._values, self._local = values, local_values
                self._signature = self._stat_signature()
            return self._local if local else self._values

    def get(self, key: str, *, local: bool = False) -> str | None:
        """One value (``None`` when unset); ``local``: from ``.git/config`` only."""
        return self.values(local=local).get(key)

    def boolean(self, key: str, default: bool = False, *, local: bool = False) -> bool:
        """One boolean value the way git reads it (``true``/``yes``/``on``/``1``…)."""
        value = self.get(key, local=local)
        if value is None:
            return default
        value = value.strip().lower()
        if value in ("true", "yes", "on", "1", ""):
            return True
        if value in ("false", "no", "off", "0"):
            return False
        try:
            return int(value) != 0
        except ValueError:
            return default


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
        self._objects_dir = str(self.git_dir / "objects")
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
        self._flock = WriterLock(self.private_dir / "writer.lock")
        self._thread_lock = threading.RLock()
        self._local = threading.local()
        self._repo: Any = None
        self._repo_lock = threading.Lock()
        self._trees: OrderedDict[bytes, TreeEntries] = OrderedDict()
        self._commit_trees: dict[str, bytes] = {}
        # Big trees (a sessions folder of thousands): raw bytes and where each entry's id
        # sits, so a commit that changes a few entries splices 20-byte ids instead of
        # sorting and joining thousands of entries again.
        self._layouts: OrderedDict[bytes, tuple[bytes, dict[bytes, int]]] = OrderedDict()
        self._commits_since_check = 0
        self._maintaining = threading.Event()
        self._maintainer: threading.Thread | None = None
        self._trees_lock = threading.Lock()
        #: The commit this process last put on the branch; while the branch is still there,
        #: nobody else moved it and there is nothing to look for in the reflog.
        self._last_installed: str | None = None
        #: The branch position last checked for commits dropped by racing git commands.
        self._audited: str | None = None
        self._drops_checked: set[str] = set()
        #: Paths this process committed lately and their blobs (see ``_index_repairs``).
        self._recent: dict[str, bytes] = {}
        #: The last few blobs this process wrote per path (see ``_stale_entry_of_ours``).
        self._written: dict[str, list[bytes]] = {}
        self._index_written: tuple[int, int, int, int] | None = None
        self._conv: tuple[dict[str, str], _convert.Conversion] | None = None
        #: Who records commits of the repository's own making (restores): set by the store.
        self.identity = Identity("mdsessions", "mdsessions@localhost")

    # -- lifecycle ------------------------------------------------------------------------

    def _gitpython(self) -> Any:
        with self._repo_lock:
            if self._repo is None:
                import git  # GitPython: imported lazily, only here

                self._repo = git.Repo(str(self.root))
            return self._repo

    def close(self) -> None:
        """Stop GitPython's persistent ``git cat-file`` processes and drop caches.

        A background maintenance run, if any, is waited for (up to 60 s).
        """
        if self._maintainer is not None:
            self._maintainer.join(timeout=60)
            self._maintainer = None
        with self._repo_lock:
            if self._repo is not None:
                self._repo.close()
                self._repo = None
        with self._trees_lock:
            self._trees.clear()
            self._commit_trees.clear()
            self._layouts.clear()

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
        try:
            value = (self.git_dir / ref).read_text().strip()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            value = ""
        if value:
            if value.startswith("ref: "):
                return self.read_ref(value[5:])
            return value
        try:
            with (self.git_dir / "packed-refs").open("rb") as fh:
                for line in fh:
                    if line.startswith((b"#", b"^")):
                        continue
                    sha, _, name = line.rstrip(b"\n").partition(b" ")
                    if name.decode() == ref:
                        return sha.decode()
        except FileNotFoundError:
            pass
        return None

    def head(self) -> str | None:
        """The commit HEAD points at (whatever is checked out), or ``None`` on an unborn branch."""
        text = (self.git_dir / "HEAD").read_text().strip()
        if text.startswith("ref: "):
            return self.read_ref(text[5:])
        return text or None

    def _claim(self, token: str, kind: str) -> Path:
        """The private file through which this writer takes a git lock (see ``_take_lock``)."""
        return self.private_dir / f"claim-{token}.{kind}"

    def _take_lock(self, lock: Path, claim: Path) -> int:
        """Take git's lock file ``lock`` through ``claim``, waiting while another git holds it.

        The lock is the same file as ``claim`` (a hard link): recovery can prove it is this
        writer's. Returns a descriptor open for writing its content.

        Raises:
            LockTimeoutError: ``lock`` stayed held for more than ``lock_timeout`` seconds.
        """
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.001
        while True:
            fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.link(claim, lock)
                return fd
            except FileExistsError:
                os.close(fd)
                claim.unlink()
            except BaseException:
                os.close(fd)
                claim.unlink()
                raise
            if time.monotonic() > deadline:
                raise LockTimeoutError(
                    f"{lock} was held by another git process for more than "
                    f"{self.lock_timeout:g} s; nothing was changed. If no git command is "
                    "running, a crashed one left it: remove it and try again"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _cas_ref(
        self,
        ref: str,
        new: str,
        old: str | None,
        message: str,
        who: Identity,
        token: str,
        before_install: Callable[[], None] | None = None,
    ) -> None:
        """Move ``ref`` from ``old`` to ``new`` under git's ref lock (``<ref>.lock``).

        Args:
            ref: The ref, e.g. ``refs/heads/main``.
            new: The commit to install.
            old: The commit the ref must be at (``None``: must not exist).
            message: The reflog message (its first line).
            who: The reflog identity.
            token: The writer's journal token (the lock is taken through its claim).
            before_install: Called once the ref is locked and verified, right before it
                moves: the commit puts its new index in place here, so that a ``git commit``
                that reads the new ``HEAD`` also reads the new index.

        Raises:
            _RefMoved: ``ref`` is not at ``old`` (someone else's commit); nothing changed.
            LockTimeoutError: Another git process held the ref lock too long.
        """
        ref_path = self.git_dir / ref
        ref_path.parent.mkdir(parents=True, exist_ok=True)
        lock = ref_path.with_name(ref_path.name + ".lock")
        claim = self._claim(token, "ref")
        fd = self._take_lock(lock, claim)
        try:
            current = self.read_ref(ref)
            if current != old:
                raise _RefMoved(current)
            os.write(fd, (new + "\n").encode())
            if self.durable:
                os.fsync(fd)
            os.close(fd)
            fd = -1
            if before_install is not None:
                before_install()
            # The reflog is written while the ref is locked, as git does.
            stamp = f"{who.name} <{who.email}> {int(time.time())} +0000"
            line = (
                f"{old or '0' * 40} {new} {stamp}\t{message.splitlines()[0] if message else ''}\n"
            )
            # HEAD's own log records only moves of the branch HEAD names (as git does).
            logs = [self.git_dir / "logs" / ref]
            with contextlib.suppress(OSError):
                if (self.git_dir / "HEAD").read_text().strip() == f"ref: {ref}":
                    logs.append(self.git_dir / "logs" / "HEAD")
            for log in logs:
                with contextlib.suppress(OSError):
                    log.parent.mkdir(parents=True, exist_ok=True)
                    with log.open("a", encoding="utf-8") as fh:
                        fh.write(line)
            _gitindex.replace_claimed(lock, ref_path, claim, self.durable)
        except BaseException:
            if fd != -1:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # ours: taken above and not yet renamed
            raise
        finally:
            for own in (claim, _gitindex.old_claim(claim)):
                with contextlib.suppress(FileNotFoundError):
                    own.unlink()

    # -- objects --------------------------------------------------------------------------

    def _store_object(
        self, kind: bytes, raw: bytes, sink: list[tuple[str, bytes, bytes]] | None = None
    ) -> bytes:
        r"""Store one object (``"<kind> <size>\\0" + raw``), or queue it; return its id.

        With ``sink`` the object is only hashed and queued for :meth:`_write_objects`
        (a commit computes every id before it writes its journal); without, it is written now.
        """
        header = b"%s %d\0" % (kind, len(raw))
        binsha = hashlib.sha1(header + raw).digest()
        if sink is not None:
            sink.append((binsha.hex(), kind, raw))
        else:
            self._write_object(binsha.hex(), kind, raw, "")
        return binsha

    def _write_objects(self, objects: Sequence[tuple[str, bytes, bytes]], token: str) -> None:
        for hexsha, kind, raw in objects:
            self._write_object(hexsha, kind, raw, token)

    def _write_object(self, hexsha: str, kind: bytes, raw: bytes, token: str) -> None:
        """Write one zlib-deflated loose object; an existing one is freshened instead.

        The file appears atomically (a temp file named with the writer's ``token`` in the
        object's folder, then a rename to its final name). Freshening an object that exists
        (its mtime set to now, as git does) keeps a concurrent ``git prune`` from removing
        an unreachable old copy that the new commit is about to reference.
        """
        # Plain strings, not Path objects: ten objects per commit, on the hot path.
        folder = f"{self._objects_dir}/{hexsha[:2]}"
        final = f"{folder}/{hexsha[2:]}"
        try:
            os.utime(final)
            return
        except FileNotFoundError:
            pass
        except OSError:  # read-only object (another user's): it exists all the same
            if os.path.exists(final):  # noqa: PTH110
                return
        header = b"%s %d\0" % (kind, len(raw))
        level = 0 if kind == b"tree" and len(raw) > _STORE_TREE_BYTES else 1
        compressor = zlib.compressobj(level)
        data = compressor.compress(header) + compressor.compress(raw) + compressor.flush()
        tmp = f"{folder}/tmp_obj_mds{token}_{secrets.token_hex(4)}"
        _write_new(Path(tmp), data, 0o444, fsync=self.durable)
        try:
            os.replace(tmp, final)  # noqa: PTH105
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # noqa: PTH108
            raise

    def read_object(self, binsha: bytes) -> tuple[str, bytes]:
        """Read one object (any kind, loose or packed).

        Returns:
            ``(type, raw bytes)`` where type is ``blob``, ``tree``, ``commit`` or ``tag``.
        """
        loose = self._read_loose(binsha)
        if loose is not None:
            return loose
        stream = self._gitpython().odb.stream(binsha)
        kind = stream.type.decode() if isinstance(stream.type, bytes) else str(stream.type)
        return kind, bytes(stream.read())

    def _read_loose(self, binsha: bytes) -> tuple[str, bytes] | None:
        """Read a loose object in-process (what other writers just wrote), or ``None``.

        Saves a round trip to GitPython's ``git cat-file`` process, which costs most when
        many writers share the CPUs. Packed objects, and anything that does not inflate to a
        well-formed object of the right id, are left to GitPython.
        """
        hexsha = binsha.hex()
        try:
            with open(f"{self._objects_dir}/{hexsha[:2]}/{hexsha[2:]}", "rb") as fh:  # noqa: PTH123
                data = zlib.decompress(fh.read())
        except (OSError, zlib.error):
            return None
        nul = data.find(b"\0")
        kind, _, size = data[:nul].partition(b" ")
        raw = data[nul + 1 :]
        if (
            nul < 0
            or kind not in (b"blob", b"tree", b"commit", b"tag")
            or size != b"%d" % len(raw)
            or hashlib.sha1(data).digest() != binsha
        ):
            return None
        return kind.decode(), raw

    def tree(self, binsha: bytes) -> TreeEntries:
        """The entries of a tree object (cached; trees never change)."""
        with self._trees_lock:
            cached = self._trees.get(binsha)
            if cached is not None:
                self._trees.move_to_end(binsha)
                return cached
        kind, raw = self.read_object(binsha)
        if kind != "tree":
            raise StoreError(f"object {binsha.hex()} is a {kind}, expected a tree")
        entries, offsets = parse_tree_layout(raw)
        self._remember_tree(binsha, entries)
        if len(entries) >= _LAYOUT_MIN_ENTRIES:  # another writer's big tree: splice it next
            self._remember_layout(binsha, raw, offsets)
        return entries

    def _remember_layout(self, binsha: bytes, raw: bytes, offsets: dict[bytes, int]) -> None:
        with self._trees_lock:
            self._layouts[binsha] = (raw, offsets)
            while len(self._layouts) > _LAYOUT_CACHE:
                self._layouts.popitem(last=False)

    def _remember_tree(self, binsha: bytes, entries: TreeEntries) -> None:
        with self._trees_lock:
            self._trees[binsha] = entries
            if len(self._trees) > 8192:
                self._trees.popitem(last=False)

    def commit_tree(self, commit: str) -> bytes:
        """The root tree id (raw) of a commit (cached: commits never change)."""
        with self._trees_lock:
            cached = self._commit_trees.get(commit)
        if cached is not None:
            return cached
        kind, raw = self.read_object(bytes.fromhex(commit))
        if kind != "commit":
            raise StoreError(f"{commit} is not a commit")
        tree = bytes.fromhex(raw[5:45].decode())
        self._remember_commit(commit, tree)
        return tree

    def _remember_commit(self, commit: str, tree: bytes) -> None:
        with self._trees_lock:
            self._commit_trees[commit] = tree
            if len(self._commit_trees) > 4096:
                self._commit_trees.pop(next(iter(self._commit_trees)))

    def entry(self, commit: str | None, path: str) -> tuple[bytes, bytes] | None:
        """The ``(mode, binsha)`` of ``path`` in ``commit``, or ``None`` if absent."""
        if commit is None:
            return None
        sha = self.commit_tree(commit)
        parts = path.split("/")
        for i, name in enumerate(parts):
            entries = self.tree(sha)
            found = entries.get(name.encode())
            if found is None:
                return None
            if i == len(parts) - 1:
                return found
            if found[0] not in (b"40000", b"040000"):
                return None
            sha = found[1]
        return None

    def read_file(self, commit: str, path: str) -> bytes | None:
        """The content of ``path`` at ``commit`` (``git show commit:path``), or ``None``."""
        found = self.entry(commit, path)
        if found is None or found[0] in (b"40000", b"040000"):
            return None
        _kind, raw = self.read_object(found[1])
        return raw

    def list_tree(self, commit: str, path: str = "") -> dict[str, bytes]:
        """Every file below ``path`` at ``commit``: ``{store-relative path: blob binsha}``."""
        out: dict[str, bytes] = {}
        if path:
            found = self.entry(commit, path)
            if found is None:
                return out
            if found[0] not in (b"40000", b"040000"):
                return {path: found[1]}
            start = found[1]
        else:
            start = self.commit_tree(commit)
        stack = [(path, start)]
        while stack:
            prefix, sha = stack.pop()
            for name, (mode, child) in self.tree(sha).items():
                rel = f"{prefix}/{name.decode()}" if prefix else name.decode()
                if mode in (b"40000", b"040000"):
                    stack.append((rel, child))
                elif mode != b"160000":
                    out[rel] = child
        return out

    def resolve(self, rev: str) -> str:
        """Resolve a revision (sha prefix, ref, ``HEAD~2``) to a full commit id.

        Raises:
            StoreError: If it names no commit.
        """
        if re.fullmatch(r"[0-9a-f]{40}", rev):
            return rev
        proc = self.git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}", check=False
        )
        if proc.returncode != 0:
            raise StoreError(f"{rev!r} does not name a commit in this store")
        return proc.stdout.decode().strip()

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
            try:
                self._local.depth = 1
                self.recover()
                self._sweep_claims()
                self._restore_dropped(self.identity)
                yield
            finally:
                self._local.depth = 0
                self._flock.release()
        finally:
            self._thread_lock.release()

    def holds_writer_lock(self) -> bool:
        """Whether the calling thread is inside :meth:`writer`."""
        return bool(getattr(self._local, "depth", 0))

    def recover_on_open(self) -> bool:
        """Recover a crashed writer's leftovers now, if no writer is active (called on open).

        Returns:
            True if something was recovered; False if there was nothing to do or another
            writer holds the lock (it recovers before writing).
        """
        if (
            not self._journal.exists()
            and not self._moved_by_others()
            and not any(self.private_dir.glob("claim-*"))
        ):
            return False
        if not self._thread_lock.acquire(blocking=False):
            return False
        try:
            try:
                self._flock.acquire(timeout=0)
            except _LockTimeout:
                return False
            try:
                recovered = self.recover()
                swept = self._sweep_claims()
                return bool(self._restore_dropped(self.identity)) or recovered or swept
            except (StoreError, OSError):
                return False  # the next writer meets it and reports it clearly
            finally:
                self._flock.release()
        finally:
            self._thread_lock.release()

    @property
    def _journal(self) -> Path:
        return self.private_dir / "journal.json"

    def _write_journal(self, entry: _JournalEntry) -> None:
        # The first journal of an operation is a fresh file (never a replace: cheaper on
        # ext4): torn by a crash while written, it is unreadable JSON, and nothing had been
        # created yet. A journal rewritten later (hooks, signing: the commit id is known only
        # after the index lock is taken) replaces the old one atomically, so it is never torn.
        data = json.dumps(entry._asdict()).encode()
        target = self._journal
        rewrite = target.exists()
        if rewrite:
            target = self.private_dir / f"journal-{entry.token or 'x'}.tmp"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if rewrite:
            os.replace(target, self._journal)  # noqa: PTH105

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
        try:
            raw = self._journal.read_bytes()
        except FileNotFoundError:
            return False
        try:
            data = json.loads(raw)
            entry = _JournalEntry(
                data["old"],
                data["ref"],
                [str(p) for p in data["paths"]],
                str(data.get("token") or ""),
                data.get("new"),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            self._journal.unlink()  # torn while written: nothing had been created yet
            return True
        # Never write (nor clean temp files) through a symbolic link that appeared since.
        for rel in entry.paths:
            self._check_path(rel)
        if entry.token:
            self._remove_leftovers(entry)
        # Shared-index temp files: only mdsessions writers make them, one at a time under
        # the writer lock this caller holds, so any left is a dead writer's.
        for tmp in self.git_dir.glob(_gitindex.SHARED_INDEX_TMP_GLOB):
            with contextlib.suppress(OSError):
                tmp.unlink()
        current = self.read_ref(entry.ref)
        if entry.new is not None and current == entry.new and current != entry.old:
            # The dead writer installed its commit: finish its files and index entries.
            self._materialize(current, entry.paths, protect_from=entry.old, token=entry.token)
        elif (
            entry.new is not None
            and current not in (entry.old, entry.new)
            and current is not None
            and self._descends(current, entry.new)
        ):
            # It installed its commit and someone committed on top since: finish the paths
            # that are still as it left them (a later commit's version is theirs).
            ours = [p for p in entry.paths if self.entry(current, p) == self.entry(entry.new, p)]
            self._materialize(current, ours, protect_from=entry.old, token=entry.token)
        else:
            # Not moved, or moved by someone else (their commit, never rolled "forward").
            if entry.new is not None and current == entry.old:
                # Killed between putting its index in place and moving the branch.
                self._revert_index(entry.paths, entry.old, entry.new, entry.token or "r")
            for rel in entry.paths:  # folders made only for its temp files
                self._prune_empty_dirs((self.root / rel).parent)
        self._journal.unlink()
        return True

    def _sweep_claims(self) -> bool:
        """Remove claims (and the locks that are them) of writers that died (under the lock).

        Every claim is made by an mdsessions writer holding the store's writer lock, so one
        found by the holder of that lock is a dead writer's, also where no journal names it
        (a lock taken to keep a dropped commit, a journal torn while rewritten). A git lock
        file is removed only when it is the same file as such a claim.

        Returns:
            True if something was removed.
        """
        try:
            names = [e.name for e in os.scandir(self.private_dir) if e.name.startswith("claim-")]
        except OSError:
            return False
        if not names:
            return False
        locks = [self.git_dir / "index.lock", self.git_dir / f"refs/heads/{self.branch}.lock"]
        locks += list((self.git_dir / "refs" / "mdsessions").glob("**/*.lock"))
        tokens = set()
        for name in names:
            claim = self.private_dir / name
            for lock in locks:
                with contextlib.suppress(OSError):
                    if lock.exists() and claim.samefile(lock):
                        lock.unlink()
            with contextlib.suppress(FileNotFoundError):
                claim.unlink()
            tokens.add(name[len("claim-") :].partition(".")[0])
        # Its temp files carry the token; with no journal their folders are unknown (rare:
        # only after a crash): look through the working tree once.
        for token in tokens - {""}:
            for tmp in self.root.rglob(f".*.{glob.escape(token)}*{TMP_SUFFIX}"):
                if ".git" not in tmp.relative_to(self.root).parts:
                    with contextlib.suppress(OSError):
                        tmp.unlink()
        for leftover in self.private_dir.glob("journal-*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        return True

    def _remove_leftovers(self, entry: _JournalEntry) -> None:
        """Remove the lock files, claims and temp files a dead writer provably created."""
        token = entry.token
        for kind, lock in (
            ("index", self.git_dir / "index.lock"),
            ("ref", self.git_dir / (entry.ref + ".lock")),
        ):
            claim = self._claim(token, kind)
            # The lock is the dead writer's if it is its claim (taken, not yet renamed) or the
            # file its replace swapped out (exchanged, old content not yet unlinked).
            for own in (claim, _gitindex.old_claim(claim)):
                with contextlib.suppress(OSError):
                    if own.exists() and lock.exists() and own.samefile(lock):
                        lock.unlink()
            for own in (claim, _gitindex.old_claim(claim)):
                with contextlib.suppress(FileNotFoundError):
                    own.unlink()
        with contextlib.suppress(FileNotFoundError):
            self._message_file(token).unlink()
        for rel in entry.paths:
            target = self.root / rel
            if target.parent.is_dir():
                for tmp in target.parent.glob(f".{glob.escape(target.name)}.{token}*{TMP_SUFFIX}"):
                    with contextlib.suppress(OSError):
                        tmp.unlink()
        for tmp in (self.git_dir / "objects").glob(f"[0-9a-f][0-9a-f]/tmp_obj_mds{token}_*"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _materialize(
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
            found = self.entry(commit, rel)
            target = self.root / rel
            if protect_from is not None and target.is_file():
                before = self.entry(protect_from, rel)
                known = {None if found is None else found[1], None if before is None else before[1]}
                if self._worktree_blob_sha(rel, target.read_bytes()) not in known:
                    if found is None:
                        removals.append(rel)
                    else:
                        updates.append(_gitindex.IndexEntryUpdate(rel, 0o100644, found[1], None))
                    continue
            if found is None:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                self._prune_empty_dirs(target.parent)
                removals.append(rel)
                continue
            _kind, data = self.read_object(found[1])
            st = atomic_write(target, self._to_worktree(rel, data), fsync=self.durable, token=token)
            updates.append(_gitindex.IndexEntryUpdate(rel, 0o100644, found[1], st))
        self._sync_index(updates, removals, token)

    def _prune_empty_dirs(self, folder: Path) -> None:
        while folder != self.root and folder.is_dir():
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _sync_index(
        self,
        updates: Sequence[_gitindex.IndexEntryUpdate],
        removals: Sequence[str],
        token: str,
    ) -> None:
        with contextlib.ExitStack() as stack:
            self._enter_index(stack, updates, removals, token)

    # -- line ends and attributes ------------------------------------------------------------

    def _conversion(self) -> _convert.Conversion:
        """The line-end rules of the current configuration (rebuilt when it changes)."""
        values = self.config.values()
        with self._trees_lock:
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

    def _to_worktree(self, rel: str, blob: bytes) -> bytes:
        """What ``git checkout`` writes for ``blob`` at ``rel`` (line-end conversion)."""
        conv = self._conversion()
        return conv.to_worktree(conv.actions([rel])[rel], blob)

    def _to_git(self, rel: str, data: bytes, action: _convert.CrlfAction | None = None) -> bytes:
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
                index_blob = self.read_object(staged[1])[1]
        return conv.to_git(action, data, index_blob, path=rel)

    def read_worktree(self, rel: str) -> bytes:
        """A working-tree file as git would store it (line ends converted as ``git add`` does).

        Raises:
            FileNotFoundError: If it does not exist.
        """
        data = (self.root / rel).read_bytes()
        try:
            return self._to_git(rel, data)
        except StoreError:  # an attribute a save would refuse: reading is still fine
            return data

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

    def _worktree_blob_sha(self, rel: str, data: bytes) -> bytes:
        """The blob id ``git add`` would give working-tree bytes ``data`` at ``rel``."""
        return blob_sha(self._to_git(rel, data))

    def check_clean(self, head: str | None, paths: Sequence[str]) -> None:
        """Refuse to overwrite a path a person changed and has not committed.

        A path is clean when its working-tree file is missing or holds HEAD's content (as
        ``git add`` would store it), and the index holds HEAD's content for it.

        Raises:
            UnrecordedEditError: Naming the first edited path.
        """
        for rel in paths:
            committed = self.entry(head, rel)
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
            if self._worktree_blob_sha(rel, target.read_bytes()) != committed_sha:
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
            self._check_path(rel)
        base = self.read_ref(ref) if planned_on is None else planned_on
        if expected_head is not None and base != expected_head:
            raise ConflictError(f"{ref} is at {str(base)[:12]}, expected {expected_head[:12]}")
        head = self.read_ref(ref)
        for _attempt in range(COMMIT_ATTEMPTS):
            if head != self._audited:
                # Someone else moved the branch: first put back a commit of ours that a
                # racing no-op reset (git stash) dropped, then re-plan on whatever is there.
                self._restore_dropped(self.identity)
                head = self.read_ref(ref)
            if head != base:
                changed = self._changed_between(base, head, paths)
                if changed is not None:
                    raise BranchMovedError(
                        f"{ref} moved to {str(head)[:12]} with a commit made outside this "
                        f"save that changed {changed}; nothing was written, plan the save again"
                    )
            if check_edits:
                self.check_clean(head, paths)
            try:
                return self._commit_once(
                    files, paths, ref, head, message, author, committer, in_place
                )
            except _RefMoved as moved:
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

    def _changed_between(
        self, old: str | None, new: str | None, paths: Sequence[str]
    ) -> str | None:
        """The first of ``paths`` whose entry differs between two commits, or ``None``."""
        for rel in paths:
            if self.entry(old, rel) != self.entry(new, rel):
                return rel
        return None

    def _commit_once(
        self,
        files: Mapping[str, bytes | None],
        paths: Sequence[str],
        ref: str,
        head: str | None,
        message: str,
        author: Identity,
        committer: Identity,
        in_place: Mapping[str, os.stat_result] | None = None,
    ) -> str | None:
        """One attempt of :meth:`commit` on top of ``head``.

        Every object id is computed before the journal is written, so the journal names
        the commit it is about to install; then objects, temp files, ``index.lock`` (hooks
        and signing, when on, run here), the branch, the renames.

        Raises:
            _RefMoved: The branch was not at ``head`` any more (nothing written but objects).
        """
        token = secrets.token_hex(6)
        in_place = in_place or {}
        objects: list[tuple[str, bytes, bytes]] = []
        blobs: dict[str, bytes | None] = {}
        actions = self.check_attributes(paths)
        for rel in paths:
            data = files[rel]
            blobs[rel] = (
                None
                if data is None
                else self._store_object(b"blob", self._to_git(rel, data, actions[rel]), objects)
            )
        old_root = self.commit_tree(head) if head else None
        new_root = self._rewrite(old_root, blobs, objects)
        if new_root == old_root:
            return None
        hooks = self.hooks_enabled
        sign = self.signing
        new: str | None = None
        parents = [head] if head else []
        if not hooks and not sign:
            raw = _commit_bytes(new_root, parents, message, author, committer)
            new = self._store_object(b"commit", raw, objects).hex()
            self._remember_commit(new, new_root)
        # The journal comes first: whatever a crash leaves from here on (temp files,
        # index.lock, a moved branch) the next writer finds and finishes or undoes.
        self._write_journal(_JournalEntry(head, ref, list(paths), token, new))
        staged: dict[str, Path] = {}
        moved = False
        try:
            self._write_objects(objects, token)
            # Everything that can fail on a full disk, a read-only folder or a busy index
            # happens before the branch moves: the new files are written as temp files
            # beside their targets and the new index into index.lock. Then the branch moves,
            # and what is left is renames. A failure before the move leaves the store as it
            # was.
            with contextlib.ExitStack() as stack:
                for rel in paths:
                    data = files[rel]
                    if data is not None and rel not in in_place:
                        staged[rel] = _stage_file(
                            self.root / rel, data, fsync=self.durable, token=token
                        )
                updates = [
                    _gitindex.IndexEntryUpdate(rel, 0o100644, blobs[rel] or b"", tmp.stat())
                    for rel, tmp in staged.items()
                ]
                updates += [
                    _gitindex.IndexEntryUpdate(rel, 0o100644, blobs[rel] or b"", st)
                    for rel, st in in_place.items()
                    if files.get(rel) is not None
                ]
                updates += self._index_repairs(head, paths)
                removals = [rel for rel in paths if files[rel] is None]
                index_file = self._enter_index(stack, updates, removals, token)
                if new is None:
                    if hooks:
                        message = self._run_commit_hooks(message, index_file, author, token)
                    new = self._make_commit(new_root, parents, message, author, committer, sign)
                    self._remember_commit(new, new_root)
                    self._write_journal(_JournalEntry(head, ref, list(paths), token, new))
                # The new index goes in place while the branch is locked and verified, right
                # before the branch moves: a git commit that reads the new HEAD then reads
                # the new index too (it reads the index before it locks it, and would commit
                # that stale copy, deleting these files, on top of the new HEAD).
                installed: list[bool] = []

                def install_index() -> None:
                    stack.close()
                    installed.append(True)

                try:
                    self._cas_ref(
                        ref, new, head, message, committer, token, before_install=install_index
                    )
                except BaseException:
                    if installed:  # the index went in, the branch did not move: undo it
                        self._revert_index(paths, head, new, token)
                    raise
                moved = True
                self._last_installed = self._audited = new
                for rel in paths:
                    self._recent.pop(rel, None)
                    if blobs[rel] is not None:
                        self._recent[rel] = blobs[rel] or b""
                        versions = self._written.pop(rel, [])[-7:]
                        self._written[rel] = [*versions, blobs[rel] or b""]
                while len(self._recent) > _RECENT_PATHS:
                    self._recent.pop(next(iter(self._recent)))
                while len(self._written) > 4 * _RECENT_PATHS:
                    self._written.pop(next(iter(self._written)))
                for rel in paths:
                    target = self.root / rel
                    if rel in staged:
                        _fsutil.replace(staged.pop(rel), target, durable=self.durable)
                    elif rel in in_place and files[rel] is not None:
                        continue  # the file already holds it: a person's newer save stays
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            target.unlink()
                        self._prune_empty_dirs(target.parent)
            # Leaving the block put the new index in place.
            self._index_written = self._index_identity()
        except Exception:
            if not moved:
                with contextlib.suppress(FileNotFoundError):
                    self._journal.unlink()
                raise
            # A rename failed after the move: finish from the commit itself; if that fails
            # as well, the journal stays and the next writer completes the operation.
            assert new is not None
            self._materialize(new, paths, token=token)
        finally:
            for tmp in staged.values():
                with contextlib.suppress(OSError):
                    tmp.unlink()
            if not moved:  # folders made only for the temp files go too
                for rel in paths:
                    self._prune_empty_dirs((self.root / rel).parent)
        self._journal.unlink()
        if hooks:
            self._run_hook("post-commit", [], index_file=None, author=author, check=False)
        self._maybe_maintain()
        return new

    # -- commits dropped by a racing reset -----------------------------------------------------

    #: The reflog message of ``git reset --hard`` without a commit (and of ``git stash``'s
    #: own reset): meant to leave the branch where it is.
    _STALE_RESET = "reset: moving to HEAD"

    def _reflog_tail(self, ref: str) -> list[tuple[str, str, str, str]]:
        """``(old, new, identity, message)`` of the last reflog lines of ``ref``, newest first.

        Only the last 16 KiB of the reflog are read.
        """
        try:
            with (self.git_dir / "logs" / ref).open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 16384))
                tail = fh.read()
        except OSError:
            return []
        lines = tail.splitlines()
        if size > 16384:
            lines = lines[1:]  # the first one is cut
        out: list[tuple[str, str, str, str]] = []
        for line in reversed(lines):
            head, tab, message = line.decode("utf-8", "replace").partition("\t")
            parts = head.split(" ", 2)
            if tab and len(parts) == 3:
                identity = parts[2].rpartition(">")[0] + ">"
                out.append((parts[0], parts[1], identity, message))
        return out

    def _stale_resets(self, ref: str) -> list[tuple[str, str]]:
        """``(old, new)`` of recent reflog lines of ``ref`` where a no-op reset moved it.

        ``git reset --hard`` resolves ``HEAD`` before it takes ``index.lock``; a commit made
        in between is then "reset" away (the branch moves back to the stale ``HEAD``).
        Newest first.
        """
        return [
            (old, new)
            for old, new, _who, message in self._reflog_tail(ref)
            if message == self._STALE_RESET and old != new
        ]

    def _moved_by_others(self) -> bool:
        """Whether the branch's last move (its newest reflog line) was not this store's."""
        tail = self._reflog_tail(f"refs/heads/{self.branch}")
        return bool(tail) and tail[0][2] != str(self.identity)

    def _last_own_commit(self, ref: str) -> str | None:
        """The commit mdsessions (this store's identity) last put on ``ref``, from the reflog."""
        if self._last_installed is not None:
            return self._last_installed
        for _old, new, who, _message in self._reflog_tail(ref):
            if who == str(self.identity):
                return new
        return None

    def _restore_dropped(self, committer: Identity) -> list[str]:
        """Put back what a racing git command dropped from the branch after mdsessions wrote it.

        Two races of git's own commands lose a commit of another process, and both hit a
        store that a person uses while a runner writes:

        - ``git reset --hard`` (and ``git stash``, which runs it) resolves ``HEAD`` before
          it takes ``index.lock``; a commit made in between is "reset" away. Seen in the
          reflog as ``reset: moving to HEAD`` with two different ids. The dropped commit is
          put back by moving the branch forward to it when nothing was committed since, else
          by a merge commit that brings back the paths it changed (when the commits since did
          not change them too; otherwise it is kept reachable as
          ``refs/mdsessions/dropped/<id>``).
        - ``git stash pop`` (and other merges) read the index before taking its lock and
          write it back under the lock, dropping entries written in between; the person's
          next ``git commit`` then deletes (or reverts) the file in ``HEAD`` while the working
          tree still holds what mdsessions wrote. A path whose working-tree file still holds
          exactly the content of mdsessions' last commit, while ``HEAD`` does not, is put
          back in a new commit. (A person who removes or reverts a file on purpose changes
          the working-tree file too, and is left alone.)

        Called under the writer lock when the branch is not where this process left it;
        files follow, sparing a person's edit (:meth:`_materialize` with ``protect_from``).

        Returns:
            The commit ids restored or kept.
        """
        ref = f"refs/heads/{self.branch}"
        head = self.read_ref(ref)
        if head is None or head == self._audited:
            return []
        done: list[str] = []
        for old, new in self._stale_resets(ref):
            if old in self._drops_checked:
                continue
            self._drops_checked.add(old)
            if not self._is_own_commit(old) or self._descends(head, old):
                continue
            paths = sorted(self.diff_trees(new, old))
            if head == new:
                target = old
            elif any(self.entry(new, p) != self.entry(head, p) for p in paths):
                self._keep_dropped(old, committer)
                done.append(old)
                continue
            else:
                changes = {p: (found[1] if (found := self.entry(old, p)) else None) for p in paths}
                tree = self._rewrite(self.commit_tree(head), changes)
                message = _restore_message(old)
                target = self._make_commit(
                    tree, [head, old], message, committer, committer, self.signing
                )
            token = secrets.token_hex(6)
            self._write_journal(_JournalEntry(head, ref, paths, token, target))
            try:
                self._cas_ref(
                    ref, target, head, f"mdsessions: restore {old[:12]}", committer, token
                )
            except _RefMoved:
                self._journal.unlink()
                self._drops_checked.discard(old)
                return done
            except BaseException:
                self._journal.unlink()
                raise
            self._materialize(target, paths, protect_from=head, token=token)
            self._journal.unlink()
            head = target
            self._last_installed = target
            done.append(old)
        head = self._restore_unindexed(ref, head, committer, done)
        self._audited = head
        return done

    def _restore_unindexed(self, ref: str, head: str, committer: Identity, done: list[str]) -> str:
        """Commit again files of mdsessions' last commit that a stale-index write dropped."""
        last = self._last_own_commit(ref)
        if last is None or last == head or not self._descends(head, last):
            return head
        lost: dict[str, bytes] = {}
        for rel, (ours, theirs) in self.diff_trees(last, head).items():
            if ours is None or theirs == ours:
                continue
            try:
                data = (self.root / rel).read_bytes()
            except OSError:
                continue
            if self._worktree_blob_sha(rel, data) == ours:
                lost[rel] = data
        if not lost:
            return head
        message = (
            f"restore: put back {len(lost)} file(s) a concurrent git command dropped\n\n"
            f"The index was written back by a git command that had read it before\n"
            f"{last[:12]} was made, so the next commit left these out:\n"
            + "".join(f"  {rel}\n" for rel in sorted(lost))
            + "\nMdsessions-Kind: restore\n"
            + f"Mdsessions-Restored: {last}\n"
        )
        try:
            new = self._commit_once(lost, sorted(lost), ref, head, message, committer, committer)
        except _RefMoved:
            return self.read_ref(ref) or head
        if new is None:
            return head
        done.append(last)
        return new

    def _revert_index(self, paths: Sequence[str], old: str | None, new: str, token: str) -> None:
        """Entries of ``paths`` that hold ``new``'s blobs go back to ``old``'s (best effort).

        Only entries that are exactly what the commit ``new`` staged are touched: a person's
        staging made since is left alone.
        """
        updates: list[_gitindex.IndexEntryUpdate] = []
        removals: list[str] = []
        try:
            self.commit_tree(new)
        except Exception:  # noqa: BLE001 - never written (killed before its objects), or gone
            return
        for rel in paths:
            ours = self.entry(new, rel)
            try:
                staged = _gitindex.index_entry(self.git_dir, rel)
            except (_gitindex.UnsupportedIndexError, OSError):
                return
            if (staged[1] if staged else None) != (ours[1] if ours else None):
                continue
            before = self.entry(old, rel)
            if before is None:
                removals.append(rel)
            else:
                updates.append(_gitindex.IndexEntryUpdate(rel, 0o100644, before[1], None))
        if updates or removals:
            with contextlib.suppress(StoreError, OSError):
                self._sync_index(updates, removals, token)

    def _index_repairs(
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
        if not self._recent or self._index_identity() == self._index_written:
            return out  # nobody wrote the index since this process did
        for rel, blob in list(self._recent.items()):
            if rel in paths:
                continue
            try:
                staged = _gitindex.index_entry(self.git_dir, rel)
            except (_gitindex.UnsupportedIndexError, OSError):
                return []
            if staged is not None and staged[1] == blob:
                continue
            found = self.entry(head, rel)
            if found is None or found[1] != blob:
                continue  # HEAD moved on from it: not ours to put back
            target = self.root / rel
            try:
                st = target.stat()
                same = self._worktree_blob_sha(rel, target.read_bytes()) == blob
            except (OSError, StoreError):
                continue
            if same:
                out.append(_gitindex.IndexEntryUpdate(rel, 0o100644, blob, st))
        return out

    def _stale_entry_of_ours(self, rel: str, staged: bytes, committed: bytes | None) -> bool:
        """Whether an index entry is an older version this process wrote.

        A git command that wrote back a stale copy of the index put it there; the file itself
        still holds what is committed.
        """
        if staged not in self._written.get(rel, ()):
            return False
        try:
            data = (self.root / rel).read_bytes()
        except OSError:
            return False
        return self._worktree_blob_sha(rel, data) == committed

    def _index_identity(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self.git_dir / "index")  # noqa: PTH116
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _is_own_commit(self, commit: str) -> bool:
        """Whether ``commit`` is an mdsessions commit (it carries an ``Mdsessions-Kind``)."""
        try:
            kind, raw = self.read_object(bytes.fromhex(commit))
        except (ValueError, StoreError, OSError):
            return False
        return kind == "commit" and b"\nMdsessions-Kind: " in raw

    def _descends(self, descendant: str, ancestor: str, limit: int = 256) -> bool:
        """Whether ``ancestor`` is reachable from ``descendant`` (in-process for short walks)."""
        seen = {descendant}
        todo = [descendant]
        while todo and len(seen) <= limit:
            commit = todo.pop()
            if commit == ancestor:
                return True
            try:
                _kind, raw = self.read_object(bytes.fromhex(commit))
            except (ValueError, StoreError, OSError):
                continue
            for line in raw.split(b"\n\n", 1)[0].splitlines():
                if line.startswith(b"parent "):
                    parent = line[7:].decode()
                    if parent not in seen:
                        seen.add(parent)
                        todo.append(parent)
        if not todo:
            return False
        return self.is_ancestor(ancestor, descendant)

    def _keep_dropped(self, commit: str, committer: Identity) -> None:
        """Name a dropped commit ``refs/mdsessions/dropped/<id>`` so it stays reachable."""
        ref = f"refs/mdsessions/dropped/{commit}"
        if self.read_ref(ref) is None:
            with contextlib.suppress(_RefMoved, LockTimeoutError, OSError):
                self._cas_ref(
                    ref,
                    commit,
                    None,
                    "mdsessions: keep a dropped commit",
                    committer,
                    secrets.token_hex(6),
                )

    # -- signing and hooks --------------------------------------------------------------------

    def _make_commit(
        self,
        tree: bytes,
        parents: Sequence[str],
        message: str,
        author: Identity,
        committer: Identity,
        sign: bool,
    ) -> str:
        """Write the commit object (signed by git itself when ``sign``); return its id.

        Raises:
            StoreError: Signing failed; the message holds the signer's own words.
        """
        if not sign:
            raw = _commit_bytes(tree, parents, message, author, committer)
            return self._store_object(b"commit", raw).hex()
        when = f"@{int(time.time())} +0000"
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
            "GIT_COMMITTER_DATE": when,
        }
        args = ["commit-tree", "-S", tree.hex()]
        for parent in parents:
            args += ["-p", parent]
        proc = run_git(
            args,
            cwd=self.root,
            input=(message.rstrip() + "\n").encode(),
            check=False,
            env=env,
        )
        if proc.returncode != 0:
            said = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
            fmt = self.config.get("gpg.format") or "openpgp"
            signer = self._signer_says(fmt, committer)
            raise StoreError(
                f"signing the commit failed (commit.gpgsign/mdsessions.sign is on, gpg.format "
                f"{fmt}); nothing was written: {said}"
                + (f"; the signer said: {signer}" if signer else "")
            )
        return proc.stdout.decode().strip()

    def _signer_says(self, fmt: str, committer: Identity) -> str:
        """Ask the configured signing program to sign a test text; return what it prints.

        git (2.39) reports only "gpg failed to sign the data"; the signer's own words (no
        secret key, a missing key file, a locked agent) are what a person needs to fix it.
        """
        key = self.config.get("user.signingkey") or ""
        if fmt == "ssh":
            program = self.config.get("gpg.ssh.program") or "ssh-keygen"
            if not key or key.startswith("key::"):
                return ""
            args = [program, "-Y", "sign", "-n", "git", "-f", str(Path(key).expanduser())]
        else:
            default = "gpgsm" if fmt == "x509" else "gpg"
            program = (
                self.config.get(f"gpg.{fmt}.program") or self.config.get("gpg.program") or default
            )
            args = [program, "--status-fd=2", "-bsau", key or str(committer)]
        try:
            proc = subprocess.run(
                args,
                input=b"mdsessions signing check\n",
                capture_output=True,
                env=git_env(),
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{args[0]}: {exc}"
        text = (proc.stderr + proc.stdout).decode("utf-8", "replace")
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("[GNUPG:]")]
        return " ".join(lines)[:500] if proc.returncode != 0 else ""

    def _message_file(self, token: str) -> Path:
        return self.private_dir / f"msg-{token}"

    def _hook_path(self, name: str) -> Path | None:
        """The executable hook ``name`` from ``core.hooksPath`` or ``.git/hooks``, if any."""
        configured = self.config.get("core.hookspath")
        folder = Path(configured).expanduser() if configured else self.git_dir / "hooks"
        if not folder.is_absolute():
            folder = self.root / folder
        path = folder / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
        return None

    def _run_hook(
        self,
        name: str,
        args: Sequence[str],
        *,
        index_file: Path | None,
        author: Identity,
        check: bool = True,
    ) -> None:
        """Run one hook the way ``git commit`` does (working-tree root, ``GIT_INDEX_FILE``).

        Raises:
            HookError: With ``check``, the hook exited non-zero (its output in the message).
        """
        path = self._hook_path(name)
        if path is None:
            return
        env = git_env()
        env.pop("LC_ALL", None)
        env.update(GIT_EDITOR=":", GIT_AUTHOR_NAME=author.name, GIT_AUTHOR_EMAIL=author.email)
        if index_file is not None:
            env["GIT_INDEX_FILE"] = str(index_file)
        try:
            proc = subprocess.run(
                [str(path), *args],
                cwd=str(self.root),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                check=False,
            )
        except OSError as exc:
            if check:
                raise HookError(f"the {name} hook ({path}) could not run: {exc}") from None
            return
        if check and proc.returncode != 0:
            said = proc.stdout.decode("utf-8", "replace").strip()
            raise HookError(
                f"the {name} hook ({path}) rejected the commit (exit status "
                f"{proc.returncode}); nothing was written" + (f": {said}" if said else "")
            )

    def _run_commit_hooks(
        self, message: str, index_file: Path | None, author: Identity, token: str
    ) -> str:
        """Run ``pre-commit``, ``prepare-commit-msg`` and ``commit-msg``; return the message.

        The message hooks may rewrite the message file (a ``Signed-off-by`` or
        ``Change-Id`` trailer); what they leave is cleaned up as ``git commit -m`` does
        (trailing spaces and surplus blank lines removed).

        Raises:
            HookError: A hook rejected the commit.
        """
        self._run_hook("pre-commit", [], index_file=index_file, author=author)
        msg_file = self._message_file(token)
        msg_file.write_text(message.rstrip() + "\n", encoding="utf-8")
        try:
            self._run_hook(
                "prepare-commit-msg",
                [str(msg_file), "message"],
                index_file=index_file,
                author=author,
            )
            self._run_hook("commit-msg", [str(msg_file)], index_file=index_file, author=author)
            text = msg_file.read_text(encoding="utf-8", errors="replace")
        finally:
            with contextlib.suppress(FileNotFoundError):
                msg_file.unlink()
        lines = [line.rstrip() for line in text.splitlines()]
        cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
        if not cleaned:
            raise HookError(
                "a commit message hook left the commit message empty; nothing was written"
            )
        return cleaned + "\n"

    def _enter_index(
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
                        claim=self._claim(token, "index"),
                        new_version=self._new_index_version(),
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

    def _sync_index_with_git(
        self, updates: Sequence[_gitindex.IndexEntryUpdate], removals: Sequence[str]
    ) -> None:
        lines = [f"100644 {u.sha.hex()}\t{u.path}" for u in updates]
        lines += [f"0 {'0' * 40}\t{p}" for p in removals]
        self.git("update-index", "--index-info", input=("\n".join(lines) + "\n").encode())
        if updates:
            self.git("update-index", "-q", "--refresh", check=False)

    LOOSE_OBJECTS_LIMIT = 6700
    """Loose objects (estimated like ``git gc --auto``) above which the store is packed."""

    def _maybe_maintain(self) -> None:
        """Pack loose objects in the background once there are many (every 100 commits, check).

        Every commit adds ~9 loose objects; unpacked, a store of 10,000 commits holds ~90,000
        files (~465 MB) and ``git log`` slows ~7x. Like ``git gc --auto`` this estimates the
        count from one fan-out folder, and then runs ``git repack -d -l`` and an incremental
        commit-graph with changed-path filters in a background thread: both are safe while
        writers run (repack only deletes loose objects it has packed). Disabled with
        ``git config mdsessions.autoMaintenance false``.
        """
        self._commits_since_check += 1
        if self._commits_since_check < 100 or self._maintaining.is_set():
            return
        self._commits_since_check = 0
        try:
            sample = sum(1 for _ in os.scandir(self.git_dir / "objects" / "17"))
        except FileNotFoundError:
            return
        if sample * 256 < self.LOOSE_OBJECTS_LIMIT:
            return
        enabled = self.git("config", "--bool", "mdsessions.autoMaintenance", check=False)
        if enabled.stdout.strip() == b"false":
            return
        self._maintaining.set()

        def work() -> None:
            try:
                self.git("repack", "-d", "-l", "-q", check=False)
                self.git(
                    "commit-graph",
                    "write",
                    "--reachable",
                    "--changed-paths",
                    "--split",
                    check=False,
                )
            finally:
                self._maintaining.clear()

        self._maintainer = threading.Thread(target=work, name="mdsessions-maintenance", daemon=True)
        self._maintainer.start()

    def _check_path(self, rel: str) -> None:
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

    def _tree_bytes(
        self,
        base: bytes | None,
        old_entries: TreeEntries,
        entries: TreeEntries,
        changes: Mapping[bytes, tuple[bytes, bytes] | None],
    ) -> tuple[bytes, dict[bytes, int] | None]:
        """Serialize ``entries`` (``old_entries`` of tree ``base`` plus ``changes``).

        Returns:
            The raw tree and, for a big tree, the offsets of its entries' ids. When every
            change replaces the id of an existing entry of the same mode and ``base``'s
            layout is known, the ids are spliced into ``base``'s bytes (same offsets).
        """
        if len(entries) < _LAYOUT_MIN_ENTRIES:
            return serialize_tree(entries), None
        with self._trees_lock:
            layout = self._layouts.get(base) if base is not None else None
        if layout is not None and all(
            value is not None and (old := old_entries.get(name)) is not None and old[0] == value[0]
            for name, value in changes.items()
        ):
            old_raw, offsets = layout
            buf = bytearray(old_raw)
            for name, value in changes.items():
                assert value is not None
                at = offsets[name]
                buf[at : at + 20] = value[1]
            return bytes(buf), offsets
        raw = serialize_tree(entries)
        return raw, tree_id_offsets(raw)

    def _rewrite(
        self,
        root: bytes | None,
        blobs: Mapping[str, bytes | None],
        sink: list[tuple[str, bytes, bytes]] | None = None,
    ) -> bytes:
        """Write (or queue in ``sink``) the trees for ``blobs`` on top of ``root``.

        Returns:
            The new root tree id.
        """
        by_dir: dict[str, dict[bytes, tuple[bytes, bytes] | None]] = {}
        for rel, sha in blobs.items():
            folder, _, name = rel.rpartition("/")
            by_dir.setdefault(folder, {})[name.encode()] = None if sha is None else (FILE_MODE, sha)
        folders: set[str] = set()
        for folder in by_dir:
            while True:
                folders.add(folder)
                if not folder:
                    break
                folder = folder.rpartition("/")[0]
        ordered = sorted(folders, key=lambda d: -(d.count("/") + 1 if d else 0))
        old_trees: dict[str, bytes | None] = {"": root}

        def old_tree(folder: str) -> bytes | None:
            if folder in old_trees:
                return old_trees[folder]
            parent, _, name = folder.rpartition("/")
            parent_sha = old_tree(parent)
            sha = None
            if parent_sha is not None:
                found = self.tree(parent_sha).get(name.encode())
                if found is not None and found[0] in (b"40000", b"040000"):
                    sha = found[1]
            old_trees[folder] = sha
            return sha

        new_root = b""
        for folder in ordered:
            base = old_tree(folder)
            old_entries = self.tree(base) if base is not None else {}
            entries = dict(old_entries)
            changes = by_dir.get(folder, {})
            for entry_name, value in changes.items():
                if value is None:
                    entries.pop(entry_name, None)
                else:
                    entries[entry_name] = value
            if entries or not folder:
                raw, offsets = self._tree_bytes(base, old_entries, entries, changes)
                sha = self._store_object(b"tree", raw, sink)
                self._remember_tree(sha, entries)
                if offsets is not None:
                    self._remember_layout(sha, raw, offsets)
                value_for_parent: tuple[bytes, bytes] | None = (TREE_MODE, sha)
            else:
                sha = b""
                value_for_parent = None
            if folder:
                parent, _, name = folder.rpartition("/")
                by_dir.setdefault(parent, {})[name.encode()] = value_for_parent
            else:
                new_root = sha
        return new_root

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

    def status_porcelain(self) -> str:
        """``git status --porcelain`` of the whole store (untracked files included)."""
        return self.git("status", "--porcelain", "--untracked-files=all").stdout.decode(
            "utf-8", "replace"
        )

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
    # that report progress. Used by ``mdsessions.history``; everything here is additive.

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

        def start(commit: str | None) -> tuple[bytes | None, bytes | None]:
            """(tree id, blob id) at ``path`` in ``commit``."""
            if commit is None:
                return None, None
            if not path:
                return self.commit_tree(commit), None
            found = self.entry(commit, path)
            if found is None:
                return None, None
            if found[0] in (TREE_MODE, b"040000"):
                return found[1], None
            return None, (found[1] if found[0] != b"160000" else None)

        out: dict[str, tuple[bytes | None, bytes | None]] = {}
        old_tree, old_blob = start(old)
        new_tree, new_blob = start(new)
        if old_blob != new_blob:
            out[path] = (old_blob, new_blob)
        stack = [(path, old_tree, new_tree)]
        while stack:
            prefix, a, b = stack.pop()
            if a == b:
                continue
            ea = self.tree(a) if a is not None else {}
            eb = self.tree(b) if b is not None else {}
            for name in ea.keys() | eb.keys():
                va, vb = ea.get(name), eb.get(name)
                if va == vb:
                    continue
                rel = f"{prefix}/{name.decode()}" if prefix else name.decode()
                a_dir = va is not None and va[0] in (TREE_MODE, b"040000")
                b_dir = vb is not None and vb[0] in (TREE_MODE, b"040000")
                if a_dir or b_dir:
                    stack.append(
                        (
                            rel,
                            va[1] if a_dir and va is not None else None,
                            vb[1] if b_dir and vb is not None else None,
                        )
                    )
                fa = va[1] if va is not None and not a_dir and va[0] != b"160000" else None
                fb = vb[1] if vb is not None and not b_dir and vb[0] != b"160000" else None
                if fa != fb:
                    out[rel] = (fa, fb)
        return out

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
            self._check_path(rel)
        self._materialize(commit, list(paths))

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
            changes[rel] = None if data is None else self._store_object(b"blob", data)
        paths = sorted(changes)
        for rel in paths:
            self._check_path(rel)
        # Only paths whose content changes are written and must be free of edits.
        touched = []
        for rel in paths:
            found = self.entry(head, rel)
            if (found[1] if found is not None else None) != changes[rel]:
                touched.append(rel)
        self.check_clean(head, touched)
        old_root = self.commit_tree(head)
        new_root = self._rewrite(old_root, changes) if changes else old_root
        new = self._make_commit(new_root, [head, other], message, author, committer, self.signing)
        self._remember_commit(new, new_root)
        self._move_branch(ref, head, new, touched, message, committer)
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
        paths = sorted(self.diff_trees(head, target))
        self.check_clean(head, paths)
        self._move_branch(ref, head, target, paths, message, committer)
        return paths

    def _move_branch(
        self,
        ref: str,
        head: str | None,
        new: str,
        paths: Sequence[str],
        message: str,
        committer: Identity,
    ) -> None:
        """Journal, compare-and-swap the branch, then bring files and index to ``new``.

        Raises:
            ConflictError: The branch is not at ``head`` any more (nothing changed).
        """
        token = secrets.token_hex(6)
        self._write_journal(_JournalEntry(head, ref, list(paths), token, new))
        try:
            self._cas_ref(ref, new, head, message, committer, token)
        except _RefMoved as moved:
            self._journal.unlink()
            raise ConflictError(
                f"{ref} moved from {str(head)[:12]} to {str(moved.args[0])[:12]} during the "
                "operation; nothing was changed, try again"
            ) from None
        except BaseException:
            self._journal.unlink()
            raise
        self._materialize(new, paths, token=token)
        self._journal.unlink()

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

    def run_progress(
        self,
        args: Sequence[str],
        on_progress: Any = None,
        *,
        cwd: Path | None = None,
    ) -> str:
        r"""Run a git command that reports progress (``--progress``) and parse what it reports.

        Args:
            args: Arguments after ``git`` (the caller adds ``--progress`` where git takes it).
            on_progress: ``callable(stage: str, done: int, total: int | None)`` called for
                each progress line git writes (``Writing objects:  45% (450/1000)``), or
                ``None``.
            cwd: Where to run (default: the store).

        Returns:
            git's standard error without the progress lines (warnings, hints).

        Raises:
            StoreError: If git exits non-zero (the message holds git's own error).
        """
        cmd = ["git", "-c", f"core.hooksPath={os.devnull}", *args]
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=str(cwd or self.root),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=git_env(),
            )
        except FileNotFoundError:
            raise StoreError("git is not installed or not on PATH") from None
        assert proc.stderr is not None
        pattern = re.compile(rb"^([A-Za-z][A-Za-z ]*):\s+(?:(\d+)% \((\d+)/(\d+)\)|(\d+))")
        kept: list[bytes] = []
        pending = b""
        try:
            while True:
                chunk = os.read(proc.stderr.fileno(), 65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = re.split(rb"[\r\n]", pending)
                for line in lines:
                    match = pattern.match(line)
                    if match is None:
                        if line.strip():
                            kept.append(line)
                        continue
                    if on_progress is not None:
                        stage = match.group(1).decode()
                        if match.group(2) is not None:
                            on_progress(stage, int(match.group(3)), int(match.group(4)))
                        else:
                            on_progress(stage, int(match.group(5)), None)
            if pending.strip():
                kept.append(pending)
        finally:
            proc.stderr.close()
            status = proc.wait()
        text = b"\n".join(kept).decode("utf-8", "replace").strip()
        if status != 0:
            raise StoreError(f"git {' '.join(args[:2])} failed: {text or f'exit status {status}'}")
        return text

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
                full = self._gitpython().odb.partial_to_complete_sha_hex(rev)
                binsha = full if isinstance(full, bytes) and len(full) == 20 else None
                hexsha = binsha.hex() if binsha is not None else str(full)
                if re.fullmatch(r"[0-9a-f]{40}", hexsha):
                    kind, _raw = self.read_object(bytes.fromhex(hexsha))
                    if kind == "commit":
                        return hexsha
            except Exception:  # ambiguous or unknown: let rev-parse decide
                pass
        return self.resolve(rev)
