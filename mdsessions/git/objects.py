"""Git objects, in-process: ids, trees, commit bytes, and the loose-object database.

Blobs, trees and commits are hashed and written as zlib-deflated loose objects without a
subprocess (the commit path of shared/PERF.md); loose objects are also read in-process, packed
ones through GitPython's persistent ``git cat-file``. Trees are cached by id (objects never
change); the raw bytes of big trees are kept too, so a commit that changes a few entries of a
folder of thousands splices 20-byte ids instead of serialising the folder again.

Memory: every cache here is a :class:`SizedLRU`, bounded in bytes estimated from the raw
object length (factors measured with ``tracemalloc``, see :data:`TREE_COST_FACTOR`), not in
entries: one version of the sessions folder of a 100,000-file store is a 320 KB tree whose
parsed form costs ~2 MB, and a cache of 8,192 trees by count grew a process making
checkpoints by ~300 KB per commit to ~500 MB. The budgets (:data:`TREE_CACHE_BYTES`,
:data:`LAYOUT_CACHE_BYTES`, :data:`COMMIT_CACHE_BYTES`) hold ~40 MB at most per open store.

Imports: :mod:`.fsutil` (new files); GitPython lazily, for packed objects only.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

from mdsessions.errors import InvalidArgumentError, StoreError
from mdsessions.git import fsutil as _fsutil

__all__ = [
    "OBJECT_CLAIM_PREFIX",
    "OBJECT_CLAIM_SUFFIX",
    "FILE_MODE",
    "TREE_MODE",
    "Identity",
    "ObjectStore",
    "SizedLRU",
    "TreeEntries",
    "blob_sha",
    "commit_bytes",
    "parse_tree_layout",
    "serialize_tree",
    "tree_id_offsets",
]

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


def blob_sha(data: bytes) -> bytes:
    """The git object id (20 raw bytes) of a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).digest()


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


#: Trees with at least this many entries keep a layout (see :meth:`ObjectStore.rewrite`).
_LAYOUT_MIN_ENTRIES = 512
#: Trees larger than this are stored with zlib level 0. Measured on the 320 KB sessions
#: folder of a 100,000-file store: level 1 took 15 ms (48 ms per MB, twice a whole
#: checkpoint) to save 24% (object ids do not compress), ``Z_RLE`` 4.6 ms to save 14%,
#: level 0 0.1 ms. Disk is won back by packing instead: git stores each new version of such
#: a tree as a delta of ~100 bytes, and automatic maintenance packs the loose ones once
#: ``mdsessions.autoMaintenanceBytes`` of them piled up (see :mod:`.maintain`).
_STORE_TREE_BYTES = 16 * 1024

#: Bytes of memory one parsed tree costs per byte of raw tree: measured with ``tracemalloc``
#: at 5.1-7.4 for trees of 10 to 10,000 entries (names, ids and tuples are new objects);
#: a tree made by copying another's entries costs less (0.9-1.4), so this overestimates.
TREE_COST_FACTOR = 7
#: Bytes of memory a tree's layout (its raw bytes and the offsets of its ids) costs per byte
#: of raw tree: 1 (the bytes) + 2.5-5 (the offsets, measured as above).
LAYOUT_COST_FACTOR = 6
#: What a cache entry costs besides its content (the cache's own dict slot, key, tuple).
ENTRY_OVERHEAD = 200
#: Budget of the parsed-tree cache, bytes (estimated): ~15 versions of a 10,000-entry folder.
TREE_CACHE_BYTES = 24 * 1024 * 1024
#: Budget of the big-tree layout cache, bytes (estimated): a few versions of the big folders.
LAYOUT_CACHE_BYTES = 8 * 1024 * 1024
#: What one commit -> root tree entry costs: a 40-character str, 20 bytes, the slot.
COMMIT_ENTRY_COST = 320
#: Budget of the commit -> root tree cache, bytes (estimated): ~3,300 commits.
COMMIT_CACHE_BYTES = 1024 * 1024

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SizedLRU(Generic[K, V]):
    """A least-recently-used cache bounded in (estimated) bytes, not in entries; thread-safe.

    Each entry is put with its cost in bytes (the caller's estimate, e.g. the raw object
    length times a measured factor); once the costs add up to more than ``budget``, the
    least recently used entries go. An entry costing more than the whole budget is not kept.

    Args:
        budget: The most bytes the entries may cost together.

    Example:
        >>> cache: SizedLRU[str, bytes] = SizedLRU(100)
        >>> cache.put("a", b"x" * 60, 60)
        >>> cache.put("b", b"y" * 60, 60)  # "a" goes: 120 > 100
        >>> cache.get("a") is None, cache.nbytes
        (True, 60)
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """The estimated bytes the entries cost now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        """The value of ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: K, value: V, cost: int) -> None:
        """Keep ``value`` under ``key``, costing ``cost`` bytes; evict the oldest over budget."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if cost > self.budget:
                return
            self._items[key] = (value, cost)
            self._bytes += cost
            while self._bytes > self.budget:
                _key, (_value, gone) = self._items.popitem(last=False)
                self._bytes -= gone

    def pop(self, key: K) -> None:
        """Forget ``key`` (nothing happens if it is not there)."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()
            self._bytes = 0


def tree_id_offsets(raw: bytes) -> dict[bytes, int]:
    """Map each entry name of raw tree bytes to the offset of its 20-byte object id."""
    return parse_tree_layout(raw)[1]


def commit_bytes(
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


#: A process that writes objects outside a journaled commit (``GitRepo.prepare`` before the
#: writer lock, a merge, an unsigned commit object) names its temp objects
#: ``tmp_obj_mds<token>_…`` after a claim file ``.git/mdsessions/objects-<token>.claim`` that
#: it holds an ``flock`` on while it lives. The kernel releases the flock when the process dies
#: (``kill -9`` included), so a claim whose flock can be taken is provably a dead process's and
#: its temp objects can go (:func:`mdsessions.git.recovery.sweep_object_claims`).
OBJECT_CLAIM_PREFIX = "objects-"
OBJECT_CLAIM_SUFFIX = ".claim"

_OWN_CLAIMS: dict[str, tuple[int, int]] = {}
"""Object claims made in this process: path → (pid, the descriptor holding its flock); a
forked child inherits the entries of its parent and leaves them alone."""
_OWN_CLAIMS_LOCK = threading.Lock()


def _release_own_claims() -> None:
    """Remove this process's object claims at a clean exit (unlink first, then unlock)."""
    with _OWN_CLAIMS_LOCK:
        for path, (pid, fd) in list(_OWN_CLAIMS.items()):
            if pid != os.getpid():
                continue
            with contextlib.suppress(OSError):
                os.unlink(path)  # noqa: PTH108
            with contextlib.suppress(OSError):
                os.close(fd)
            del _OWN_CLAIMS[path]


atexit.register(_release_own_claims)


class ObjectStore:
    """The object database of one repository: loose objects written and read in-process.

    Args:
        root: The working-tree root (GitPython opens the repository there).
        git_dir: Its ``.git`` folder.
        durable: fsync every object written.
    """

    def __init__(self, root: Path, git_dir: Path, *, durable: bool = False) -> None:
        self.root = root
        self.durable = durable
        self._objects_dir = str(git_dir / "objects")
        self._private_dir = git_dir / "mdsessions"
        #: ``(pid, token, claim path)`` of this store's object claim (see OBJECT_CLAIM_PREFIX).
        self._claim: tuple[int, str, str] | None = None
        self._repo: Any = None
        self._repo_lock = threading.Lock()
        self._trees: SizedLRU[bytes, TreeEntries] = SizedLRU(TREE_CACHE_BYTES)
        self._commit_trees: SizedLRU[str, bytes] = SizedLRU(COMMIT_CACHE_BYTES)
        # Big trees (a sessions folder of thousands): raw bytes and where each entry's id
        # sits, so a commit that changes a few entries splices 20-byte ids instead of
        # sorting and joining thousands of entries again.
        self._layouts: SizedLRU[bytes, tuple[bytes, dict[bytes, int]]] = SizedLRU(
            LAYOUT_CACHE_BYTES
        )
        self._written_lock = threading.Lock()
        #: Loose objects written since :meth:`take_written` last asked: (count, bytes on disk).
        self._written = (0, 0)

    def _gitpython(self) -> Any:
        with self._repo_lock:
            if self._repo is None:
                import git  # GitPython: imported lazily, only here

                self._repo = git.Repo(str(self.root))
            return self._repo

    def close(self) -> None:
        """Stop GitPython's persistent ``git cat-file`` processes and drop the caches.

        Also gives up this store's object claim (its temp objects are all renamed by now).
        """
        with self._repo_lock:
            if self._repo is not None:
                self._repo.close()
                self._repo = None
        claim, self._claim = self._claim, None
        if claim is not None and claim[0] == os.getpid():
            with _OWN_CLAIMS_LOCK:
                owned = _OWN_CLAIMS.pop(claim[2], None)
            if owned is not None:
                fd = owned[1]
                with contextlib.suppress(OSError):
                    os.unlink(claim[2])  # noqa: PTH108
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._trees.clear()
        self._commit_trees.clear()
        self._layouts.clear()

    def cache_bytes(self) -> dict[str, int]:
        """What each cache holds now, estimated bytes: ``trees``, ``layouts``, ``commits``."""
        return {
            "trees": self._trees.nbytes,
            "layouts": self._layouts.nbytes,
            "commits": self._commit_trees.nbytes,
        }

    def take_written(self) -> tuple[int, int]:
        """Loose objects this process wrote since the last call: ``(count, bytes on disk)``."""
        with self._written_lock:
            written, self._written = self._written, (0, 0)
        return written

    def store(
        self, kind: bytes, raw: bytes, sink: list[tuple[str, bytes, bytes]] | None = None
    ) -> bytes:
        r"""Store one object (``"<kind> <size>\\0" + raw``), or queue it; return its id.

        With ``sink`` the object is only hashed and queued for :meth:`write_all`
        (a commit computes every id before it writes its journal); without, it is written now.
        """
        header = b"%s %d\0" % (kind, len(raw))
        binsha = hashlib.sha1(header + raw).digest()
        if sink is not None:
            sink.append((binsha.hex(), kind, raw))
        else:
            self.write(binsha.hex(), kind, raw, self.claim_token())
        return binsha

    def claim_token(self) -> str:
        """The token of this process's object claim (see :data:`OBJECT_CLAIM_PREFIX`).

        Made at the first call; ``""`` when no claim can be made (a read-only ``.git``). The
        claim appears already locked: it is written and flocked under a temp name, then
        renamed, so no sweeper ever finds it unlocked while its owner lives.
        """
        claim = self._claim
        if claim is not None and claim[0] == os.getpid():
            return claim[1]
        with self._written_lock:
            claim = self._claim
            if claim is not None and claim[0] == os.getpid():
                return claim[1]
            token = secrets.token_hex(6)
            final = str(self._private_dir / f"{OBJECT_CLAIM_PREFIX}{token}{OBJECT_CLAIM_SUFFIX}")
            tmp = final + ".tmp"
            try:
                self._private_dir.mkdir(exist_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except OSError:
                return ""
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(fd, b"%d\n" % os.getpid())
                os.replace(tmp, final)  # noqa: PTH105
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)  # noqa: PTH108
                os.close(fd)
                return ""
            with _OWN_CLAIMS_LOCK:
                _OWN_CLAIMS[final] = (os.getpid(), fd)
            self._claim = (os.getpid(), token, final)
            return token

    def write_all(self, objects: Sequence[tuple[str, bytes, bytes]], token: str) -> None:
        """Write queued objects (:meth:`store` with a ``sink``), temp files named with ``token``."""
        for hexsha, kind, raw in objects:
            self.write(hexsha, kind, raw, token)

    def write(self, hexsha: str, kind: bytes, raw: bytes, token: str) -> None:
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
        _fsutil.write_new(Path(tmp), data, 0o444, fsync=self.durable)
        try:
            os.replace(tmp, final)  # noqa: PTH105
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # noqa: PTH108
            raise
        with self._written_lock:
            count, size = self._written
            self._written = (count + 1, size + len(data))

    def read(self, binsha: bytes) -> tuple[str, bytes]:
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
        cached = self._trees.get(binsha)
        if cached is not None:
            return cached
        kind, raw = self.read(binsha)
        if kind != "tree":
            raise StoreError(f"object {binsha.hex()} is a {kind}, expected a tree")
        entries, offsets = parse_tree_layout(raw)
        self._remember_tree(binsha, entries, len(raw))
        if len(entries) >= _LAYOUT_MIN_ENTRIES:  # another writer's big tree: splice it next
            self._remember_layout(binsha, raw, offsets)
        return entries

    def _remember_layout(self, binsha: bytes, raw: bytes, offsets: dict[bytes, int]) -> None:
        self._layouts.put(binsha, (raw, offsets), ENTRY_OVERHEAD + LAYOUT_COST_FACTOR * len(raw))

    def _remember_tree(self, binsha: bytes, entries: TreeEntries, size: int) -> None:
        """Cache a tree's entries; ``size`` is the length of its raw bytes."""
        self._trees.put(binsha, entries, ENTRY_OVERHEAD + TREE_COST_FACTOR * size)

    def commit_tree(self, commit: str) -> bytes:
        """The root tree id (raw) of a commit (cached: commits never change)."""
        cached = self._commit_trees.get(commit)
        if cached is not None:
            return cached
        kind, raw = self.read(bytes.fromhex(commit))
        if kind != "commit":
            raise StoreError(f"{commit} is not a commit")
        tree = bytes.fromhex(raw[5:45].decode())
        self.remember_commit(commit, tree)
        return tree

    def remember_commit(self, commit: str, tree: bytes) -> None:
        """Cache the root tree of a commit this process just made."""
        self._commit_trees.put(commit, tree, COMMIT_ENTRY_COST)

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
        _kind, raw = self.read(found[1])
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

    def first_change(self, old: str | None, new: str | None, paths: Sequence[str]) -> str | None:
        """The first of ``paths`` whose entry differs between two commits, or ``None``."""
        for rel in paths:
            if self.entry(old, rel) != self.entry(new, rel):
                return rel
        return None

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

    def rewrite(
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
                sha = self.store(b"tree", raw, sink)
                self._remember_tree(sha, entries, len(raw))
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

    def diff_trees(
        self, old: str | None, new: str | None, path: str = ""
    ) -> dict[str, tuple[bytes | None, bytes | None]]:
        """Files that differ between two commits below ``path`` (see ``GitRepo.diff_trees``).

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

    def expand_prefix(self, prefix: str) -> str:
        """The full id of the one object whose id starts with ``prefix`` (hex digits).

        Asked of GitPython's persistent ``git cat-file`` (no new process).

        Returns:
            40 hex digits.

        Raises:
            gitdb.exc.BadObject: No object, or more than one, has that prefix.
        """
        full = self._gitpython().odb.partial_to_complete_sha_hex(prefix)
        binsha = full if isinstance(full, bytes) and len(full) == 20 else None
        return binsha.hex() if binsha is not None else str(full)
