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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from . import _fsutil, _gitindex
from ._lock import LockTimeout as _LockTimeout
from ._lock import WriterLock
from .errors import ConflictError, LockTimeoutError, StoreError, UnrecordedEditError

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
            ValueError: If the text is not of that form or holds characters git forbids.
        """
        match = re.fullmatch(r"\s*([^<>\n]*?)\s*<([^<>\s]*)>\s*", text)
        if match is None or not match.group(1):
            raise ValueError(f"expected an identity 'Name <email>', got {text!r}")
        return cls(match.group(1), match.group(2))

    def checked(self) -> Identity:
        """Return self if git accepts it.

        Raises:
            ValueError: On an empty name or ``<``, ``>``, or a line break in name or email.
        """
        for part in self:
            if any(c in part for c in "<>\n\r\0"):
                raise ValueError(f"invalid git identity {str(self)!r}")
        if not self.name.strip():
            raise ValueError("a git identity needs a name")
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
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command with a clean environment; hooks off unless ``hooks`` is true.

    Args:
        args: Arguments after ``git``.
        cwd: The directory to run in.
        input: Bytes for standard input.
        check: Raise on a non-zero exit status.
        hooks: Let repository hooks run (``core.hooksPath`` is pointed at nothing otherwise).
        timeout: Seconds before the command is killed.

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
            env=git_env(),
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


def _stage_file(path: Path, data: bytes, *, fsync: bool) -> Path:
    """Write ``data`` to a new temp file beside ``path`` (folders made); return the temp file.

    Raises:
        OSError: On any file-system error (nothing is left behind).
    """
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    _write_new(tmp, data, 0o644, fsync=fsync)
    return tmp


def atomic_write(path: Path, data: bytes, *, fsync: bool = False) -> os.stat_result:
    """Write a file atomically: a temp file in the same folder, then ``os.replace``.

    Args:
        path: The target file; missing parent folders are created.
        data: The exact bytes to write.
        fsync: Flush the file and its folder to disk (durable mode).

    Returns:
        The ``os.stat`` of the new file.

    Raises:
        OSError: On any file-system error; the target is then untouched and the temp removed.
    """
    parent = path.parent
    tmp = parent / f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
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


def init_repository(path: Path, *, branch: str = "main") -> None:
    """Create an empty git repository at ``path`` with ``branch`` as the unborn HEAD.

    Raises:
        StoreError: If git fails.
    """
    path.mkdir(parents=True, exist_ok=True)
    run_git(["init", "-q", "-b", branch, str(path)])


class _JournalEntry(NamedTuple):
    old: str | None
    ref: str
    paths: list[str]



class GitRepo:
    """One store repository: locked writes, in-process commits, reads by commit and path.

    Args:
        root: The working-tree root (the folder holding ``.git``).
        lock_timeout: Seconds a writer waits for the store lock before failing.
        durable: fsync objects, refs, the index and files (slower; survives power loss).
    """

    def __init__(self, root: Path, *, lock_timeout: float = 60.0, durable: bool = False) -> None:
        self.root = root
        self.git_dir = root / ".git"
        self._objects_dir = str(self.git_dir / "objects")
        if not self.git_dir.is_dir():
            raise StoreError(
                f"{root}: .git is not a folder (worktrees and gitfiles are not supported)"
            )
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
        self._hooks: bool | None = None

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
        """Whether ``mdsessions.hooks`` is true in the repository's own ``.git/config``."""
        if self._hooks is None:
            proc = run_git(
                ["config", "--local", "--bool", "mdsessions.hooks"], cwd=self.root, check=False
            )
            self._hooks = proc.stdout.strip() == b"true"
        return self._hooks

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
        """The branch HEAD points at, e.g. ``refs/heads/main``.

        Raises:
            StoreError: If HEAD is detached.
        """
        text = (self.git_dir / "HEAD").read_text().strip()
        if not text.startswith("ref: "):
            raise StoreError(
                f"{self.root}: HEAD is detached at {text[:12]}; check out a branch "
                "(git switch main) before writing"
            )
        return text[5:]

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
        """The commit HEAD's branch points at, or ``None`` on an unborn branch."""
        return self.read_ref(self.head_ref())

    def _cas_ref(self, ref: str, new: str, old: str | None, message: str, who: Identity) -> None:
        ref_path = self.git_dir / ref
        ref_path.parent.mkdir(parents=True, exist_ok=True)
        lock = ref_path.with_name(ref_path.name + ".lock")
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise ConflictError(
                f"{ref} is locked by another git process ({lock} exists); try again"
            ) from None
        try:
            current = self.read_ref(ref)
            if current != old:
                raise ConflictError(
                    f"{ref} moved from {str(old)[:12]} to {str(current)[:12]} during the operation"
                )
            os.write(fd, (new + "\n").encode())
            if self.durable:
                os.fsync(fd)
            os.close(fd)
            fd = -1
            _fsutil.replace(lock, ref_path, durable=self.durable)
        finally:
            if fd != -1:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
        stamp = f"{who.name} <{who.email}> {int(time.time())} +0000"
        line = f"{old or '0' * 40} {new} {stamp}\t{message.splitlines()[0] if message else ''}\n"
        for log in (self.git_dir / "logs" / ref, self.git_dir / "logs" / "HEAD"):
            with contextlib.suppress(OSError):
                log.parent.mkdir(parents=True, exist_ok=True)
                with log.open("a", encoding="utf-8") as fh:
                    fh.write(line)

    # -- objects --------------------------------------------------------------------------

    def _store_object(self, kind: bytes, raw: bytes) -> bytes:
        r"""Write one loose object (zlib-deflated ``"<kind> <size>\\0" + raw``); return its id.

        An object that already exists is not written again. The file appears atomically
        (temp file in the object's folder, then a rename to its final, new name).
        """
        header = b"%s %d\0" % (kind, len(raw))
        binsha = hashlib.sha1(header + raw).digest()
        hexsha = binsha.hex()
        # Plain strings, not Path objects: ten objects per commit, on the hot path.
        folder = f"{self._objects_dir}/{hexsha[:2]}"
        final = f"{folder}/{hexsha[2:]}"
        if os.path.exists(final):  # noqa: PTH110
            return binsha
        level = 0 if kind == b"tree" and len(raw) > _STORE_TREE_BYTES else 1
        compressor = zlib.compressobj(level)
        data = compressor.compress(header) + compressor.compress(raw) + compressor.flush()
        tmp = f"{folder}/tmp_obj_{secrets.token_hex(6)}"
        _write_new(Path(tmp), data, 0o444, fsync=self.durable)
        try:
            os.replace(tmp, final)  # noqa: PTH105
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # noqa: PTH108
            raise
        return binsha

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
        if not self._journal.exists():
            return False
        if not self._thread_lock.acquire(blocking=False):
            return False
        try:
            try:
                self._flock.acquire(timeout=0)
            except _LockTimeout:
                return False
            try:
                return self.recover()
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
        # A fresh file (never a replace: cheaper on ext4); a torn journal from a crash while
        # writing it is unreadable JSON, and then the branch had not moved yet.
        data = json.dumps(entry._asdict()).encode()
        fd = os.open(self._journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)

    def recover(self) -> bool:
        """Finish or undo an operation a crashed writer left half done (call under the lock).

        Returns:
            True if something was recovered.
        """
        try:
            raw = self._journal.read_bytes()
        except FileNotFoundError:
            return False
        try:
            data = json.loads(raw)
            entry = _JournalEntry(data["old"], data["ref"], list(data["paths"]))
        except (ValueError, TypeError, KeyError):
            self._journal.unlink()
            return True
        # Never write (nor clean temp files) through a symbolic link that appeared since.
        for rel in entry.paths:
            self._check_path(rel)
        # Lock files left by the dead writer (it held the store lock, so they are its own).
        for lock in (self.git_dir / (entry.ref + ".lock"), self.git_dir / "index.lock"):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
        current = self.read_ref(entry.ref)
        for rel in entry.paths:
            target = self.root / rel
            if target.parent.is_dir():
                for tmp in target.parent.glob(f".{target.name}.*{TMP_SUFFIX}"):
                    with contextlib.suppress(OSError):
                        tmp.unlink()
        objects = self.git_dir / "objects"
        for tmp in [
            *objects.glob("[0-9a-f][0-9a-f]/tmp_obj_*"),
            *self.git_dir.glob(_gitindex.SHARED_INDEX_TMP_GLOB),  # shared-index temp files
        ]:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if current is not None and current != entry.old:
            # The branch moved (we hold the lock: only the dead writer moved it): roll
            # forward, files and index from the commit it points at.
            self._materialize(current, entry.paths, protect_from=entry.old)
        else:
            for rel in entry.paths:  # folders made only for its temp files
                self._prune_empty_dirs((self.root / rel).parent)
        self._journal.unlink()
        return True

    def _materialize(
        self, commit: str, paths: Sequence[str], *, protect_from: str | None = None
    ) -> None:
        """Bring working-tree files and index entries of ``paths`` to ``commit``.

        With ``protect_from`` (recovery: the commit before the interrupted operation), a file
        whose content is neither that commit's nor ``commit``'s is a person's edit made since
        the crash: it is left as it is (its index entry still follows ``commit``).
        """
        updates: list[_gitindex.IndexEntryUpdate] = []
        removals: list[str] = []
        for rel in paths:
            found = self.entry(commit, rel)
            target = self.root / rel
            if protect_from is not None and target.is_file():
                before = self.entry(protect_from, rel)
                known = {None if found is None else found[1], None if before is None else before[1]}
                if blob_sha(target.read_bytes()) not in known:
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
            st = atomic_write(target, data, fsync=self.durable)
            updates.append(_gitindex.IndexEntryUpdate(rel, 0o100644, found[1], st))
        self._sync_index(updates, removals)

    def _prune_empty_dirs(self, folder: Path) -> None:
        while folder != self.root and folder.is_dir():
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _sync_index(
        self, updates: Sequence[_gitindex.IndexEntryUpdate], removals: Sequence[str]
    ) -> None:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while True:
            try:
                _gitindex.update_index(
                    self.git_dir, updates, removals, fsync=self.durable, work_tree=self.root
                )
                return
            except _gitindex.UnsupportedIndexError:
                self._sync_index_with_git(updates, removals)
                return
            except _gitindex.IndexLockedError:
                if time.monotonic() > deadline:
                    raise LockTimeoutError(
                        f"{self.git_dir / 'index.lock'} was held by another git process for "
                        f"more than {self.lock_timeout:g} s; the commit is recorded and the "
                        "index will be brought in sync on the next write"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def check_clean(self, head: str | None, paths: Sequence[str]) -> None:
        """Refuse to overwrite a path a person changed and has not committed.

        A path is clean when its working-tree file is missing or holds HEAD's content, and
        the index holds HEAD's content for it.

        Raises:
            UnrecordedEditError: Naming the first edited path.
        """
        for rel in paths:
            committed = self.entry(head, rel)
            committed_sha = committed[1] if committed else None
            staged = _gitindex.index_entry(self.git_dir, rel)
            if staged is not None and staged[1] != committed_sha:
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
            if staged is not None and _gitindex.entry_stat_matches(self.git_dir, rel, st):
                continue
            if blob_sha(target.read_bytes()) != committed_sha:
                raise UnrecordedEditError(
                    f"{rel} has edits that are not recorded yet; record them "
                    "(mdsessions record) or discard them (git restore) before this save"
                )

    def commit(
        self,
        files: Mapping[str, bytes | None],
        *,
        message: str,
        author: Identity,
        committer: Identity,
        check_edits: bool = True,
        expected_head: str | None = None,
    ) -> str | None:
        """Record ``files`` as one commit on HEAD's branch and in the working tree.

        Must be called inside :meth:`writer`.

        Args:
            files: Store-relative ``/``-separated paths to new content, or ``None`` to delete.
            message: The full commit message (subject, blank line, body, trailers).
            author: Who acted.
            committer: Who recorded it (the tool's identity).
            check_edits: Refuse when a path holds a person's unrecorded edit.
            expected_head: When given, the commit the branch must still be at.

        Returns:
            The new commit id, or ``None`` when nothing changed (no commit is made).

        Raises:
            UnrecordedEditError: A path holds a person's unrecorded edit (nothing written).
            ConflictError: The branch moved (nothing written).
            OSError: A file-system error before the branch moved (nothing written); after it
                moved the journal completes the operation on the next write.
        """
        if not files:
            return None
        ref = self.head_ref()
        head = self.read_ref(ref)
        if expected_head is not None and head != expected_head:
            raise ConflictError(f"{ref} is at {str(head)[:12]}, expected {expected_head[:12]}")
        paths = sorted(files)
        for rel in paths:
            self._check_path(rel)
        if check_edits:
            self.check_clean(head, paths)
        # The journal comes first: whatever a crash leaves from here on (object or file temp
        # files, index.lock, a moved branch) the next writer finds and finishes or undoes.
        self._write_journal(_JournalEntry(head, ref, paths))
        try:
            return self._commit_journaled(files, paths, ref, head, message, author, committer)
        except Exception:
            if self.read_ref(ref) == head:  # the branch did not move: nothing happened
                with contextlib.suppress(FileNotFoundError):
                    self._journal.unlink()
            raise

    def _commit_journaled(
        self,
        files: Mapping[str, bytes | None],
        paths: Sequence[str],
        ref: str,
        head: str | None,
        message: str,
        author: Identity,
        committer: Identity,
    ) -> str | None:
        blobs: dict[str, bytes | None] = {}
        for rel in paths:
            data = files[rel]
            blobs[rel] = None if data is None else self._store_object(b"blob", data)
        old_root = self.commit_tree(head) if head else None
        new_root = self._rewrite(old_root, blobs)
        if new_root == old_root:
            self._journal.unlink()
            return None
        when = int(time.time())
        parent = f"parent {head}\n" if head else ""
        raw = (
            f"tree {new_root.hex()}\n{parent}"
            f"author {author.name} <{author.email}> {when} +0000\n"
            f"committer {committer.name} <{committer.email}> {when} +0000\n\n"
            f"{message.rstrip()}\n"
        ).encode()
        new = self._store_object(b"commit", raw).hex()
        self._remember_commit(new, new_root)
        # Everything that can fail on a full disk, a read-only folder or a busy index happens
        # before the branch moves: the new files are written as temp files beside their
        # targets and the new index into index.lock. Then the branch moves, and what is left
        # is renames. A failure before the move leaves the store as it was.
        staged: dict[str, Path] = {}
        moved = False
        try:
            with contextlib.ExitStack() as stack:
                for rel in paths:
                    data = files[rel]
                    if data is not None:
                        staged[rel] = _stage_file(self.root / rel, data, fsync=self.durable)
                updates = [
                    _gitindex.IndexEntryUpdate(rel, 0o100644, blobs[rel] or b"", tmp.stat())
                    for rel, tmp in staged.items()
                ]
                removals = [rel for rel in paths if files[rel] is None]
                self._enter_index(stack, updates, removals)
                self._cas_ref(ref, new, head, message, committer)
                moved = True
                for rel in paths:
                    target = self.root / rel
                    if rel in staged:
                        _fsutil.replace(staged.pop(rel), target, durable=self.durable)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            target.unlink()
                        self._prune_empty_dirs(target.parent)
            # Leaving the block put the new index in place.
        except Exception:
            if not moved:
                raise
            # A rename failed after the move: finish from the commit itself; if that fails
            # as well, the journal stays and the next writer completes the operation.
            self._materialize(new, paths)
        finally:
            for tmp in staged.values():
                with contextlib.suppress(OSError):
                    tmp.unlink()
            if not moved:  # folders made only for the temp files go too
                for rel in paths:
                    self._prune_empty_dirs((self.root / rel).parent)
        self._journal.unlink()
        self._maybe_maintain()
        return new

    def _enter_index(
        self,
        stack: contextlib.ExitStack,
        updates: Sequence[_gitindex.IndexEntryUpdate],
        removals: Sequence[str],
    ) -> None:
        """Stage the new index in ``index.lock`` (waiting while another git holds it)."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while True:
            try:
                stack.enter_context(
                    _gitindex.staged_index(
                        self.git_dir, updates, removals, fsync=self.durable, work_tree=self.root
                    )
                )
                return
            except _gitindex.UnsupportedIndexError:
                # A sparse index (or one that does not parse): git itself updates it once the
                # files are in place.
                stack.callback(self._sync_index_with_git, updates, removals)
                return
            except _gitindex.IndexLockedError:
                if time.monotonic() > deadline:
                    raise LockTimeoutError(
                        f"{self.git_dir / 'index.lock'} was held by another git process for "
                        f"more than {self.lock_timeout:g} s; nothing was changed"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

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
            value is not None
            and (old := old_entries.get(name)) is not None
            and old[0] == value[0]
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

    def _rewrite(self, root: bytes | None, blobs: Mapping[str, bytes | None]) -> bytes:
        """Write the trees for ``blobs`` on top of ``root``; return the new root tree id."""
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
                sha = self._store_object(b"tree", raw)
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
        when = int(time.time())
        raw = (
            f"tree {new_root.hex()}\nparent {head}\nparent {other}\n"
            f"author {author.name} <{author.email}> {when} +0000\n"
            f"committer {committer.name} <{committer.email}> {when} +0000\n\n"
            f"{message.rstrip()}\n"
        ).encode()
        new = self._store_object(b"commit", raw).hex()
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
        """Journal, compare-and-swap the branch, then bring files and index to ``new``."""
        self._write_journal(_JournalEntry(head, ref, list(paths)))
        try:
            self._cas_ref(ref, new, head, message, committer)
        except BaseException:
            self._journal.unlink()
            raise
        self._materialize(new, paths)
        self._journal.unlink()

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
