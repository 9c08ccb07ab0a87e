"""In-process maintenance of git's index file (``.git/index``) for a handful of paths.

The store writes commits without going through the index (objects are written
in-process and the branch is moved by compare-and-swap), so afterwards the index
describes the *previous* commit and ``git status`` would report our own commit as a
staged reversal.  :func:`update_index` brings the index back in sync for the paths a
commit wrote, without spawning git and without GitPython's pure-Python index.

Format (see ``gitformat-index``): a ``DIRC`` header with version and entry count,
the entries sorted by (path bytes, stage), optional extensions, and a SHA-1 trailer
over everything before it.

Speed: the parsed index is cached per index file (keyed by its inode, size and
mtime, and confirmed by its 20-byte trailer), so on a long-lived process an update
normally costs a 20-byte read, a few list operations, one ``b"".join``, one SHA-1
over the file and one write.  Each parsed entry keeps its on-disk bytes.

Supported:

* index versions 2, 3 and 4, read and write.  The version is kept, except that, as
  git does, 2 and 3 are chosen by whether any entry carries extended flags
  (intent-to-add, skip-worktree): 3 if so, else 2.  Version 4 (prefix-compressed
  paths) stays version 4.
* extensions: ``REUC`` (resolve-undo) is kept verbatim.  ``TREE`` (cache tree, would
  be stale), ``UNTR``, ``FSMN``, ``EOIE``, ``IEOT`` and any unknown *optional*
  extension (signature starting with ``A``-``Z``) are dropped; git rebuilds what it
  needs.  ``link`` (split index), ``sdir`` (sparse index) and unknown *mandatory*
  extensions raise :class:`UnsupportedIndexError`.
* an index whose trailer is all zeros (``index.skipHash``) is accepted, and is
  written back with a zero trailer.

Not supported (raise :class:`UnsupportedIndexError`, so the caller can fall back to
``git update-index --index-info``): split and sparse indexes, unknown mandatory
extensions, SHA-256 repositories (20-byte object ids only) and indexes that do not
parse (:class:`CorruptIndexError`, a subclass).

Racy git: an entry whose mtime (seconds) is not older than the index file's mtime
is "racily clean" and git re-checks its content.  Rewriting the index makes it
newer than such entries, so, like git's own writer, we smudge carried-over racily
clean entries (cached size set to 0) so that git keeps re-checking them.  Given the
``work_tree``, :func:`update_index` first hashes the file as git does and smudges
only entries whose content changed; without it every such entry is smudged, which
is merely conservative (git re-hashes those few files on its next refresh).
Entries we write ourselves carry the caller's fresh stat and are not smudged.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat as stat_mod
import struct
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import _fsutil

__all__ = [
    "CorruptIndexError",
    "IndexEntryUpdate",
    "IndexLockedError",
    "UnsupportedIndexError",
    "entry_stat_matches",
    "index_entry",
    "read_index",
    "update_index",
]


class UnsupportedIndexError(Exception):
    """The index uses a feature this module does not rewrite.

    Raised for a split index (``link`` extension), a sparse index (``sdir``), an
    unknown mandatory extension, an unknown index version or a SHA-256 repository.
    The caller should fall back to ``git update-index --index-info``.
    """


class CorruptIndexError(UnsupportedIndexError):
    """The index file could not be parsed (bad signature, checksum or layout)."""


class IndexLockedError(Exception):
    """``index.lock`` already exists: another process is writing the index."""


@dataclass(frozen=True)
class IndexEntryUpdate:
    """One stage-0 index entry to set.

    Attributes:
        path: Repository-relative path, ``/``-separated.
        mode: Git file mode: ``0o100644``, ``0o100755``, ``0o120000`` (symlink) or
            ``0o160000`` (gitlink).
        sha: The 20 raw bytes of the blob (or commit, for a gitlink) object id.
        stat: ``os.lstat`` of the working-tree file taken after it was written, or
            ``None`` to zero the cached stat data so git re-hashes the file on its
            next refresh.
    """

    path: str
    mode: int
    sha: bytes
    stat: os.stat_result | None = None


# --------------------------------------------------------------------------- format

_SIGNATURE = b"DIRC"
_HEADER = struct.Struct(">4sII")
_ENTRY_FIXED = struct.Struct(">10I20sH")  # 62 bytes: stat data, mode, ..., sha, flags
_STAT10 = struct.Struct(">10I")
_MTIME_AND_FLAGS = struct.Struct(">8xI48xH")  # mtime seconds and flags of an entry
_FLAGS = struct.Struct(">H")
_U32 = struct.Struct(">I")
_HASH_LEN = 20
_NULL_HASH = b"\0" * _HASH_LEN

_FLAG_ASSUME_VALID = 0x8000
_FLAG_EXTENDED = 0x4000
_STAGE_MASK = 0x3000
_STAGE_SHIFT = 12
_NAME_MASK = 0x0FFF
_SIZE_OFFSET = 36  # offset of the 32-bit file size inside an entry
_MODE_OFFSET = 24  # offset of the 32-bit mode inside an entry
_GITLINK = _U32.pack(0o160000)

_DROPPED_EXTENSIONS = frozenset({b"TREE", b"UNTR", b"FSMN", b"EOIE", b"IEOT"})
_KEPT_EXTENSIONS = frozenset({b"REUC"})
_UNSUPPORTED_EXTENSIONS = {b"link": "split index", b"sdir": "sparse index"}
_VALID_MODES = frozenset({0o100644, 0o100755, 0o120000, 0o160000})
_U32_MASK = 0xFFFFFFFF
_NS = 1_000_000_000


@dataclass(eq=False)
class _Parsed:
    """A parsed index.

    ``paths`` and ``raws`` are parallel lists in index order; ``raws[i]`` is the
    entry exactly as it is (or will be) written in ``version``'s encoding (for
    version 4 that encoding depends on ``paths[i - 1]``).
    """

    version: int
    paths: list[bytes]
    raws: list[bytes]
    extensions: list[bytes]
    n_extended: int
    racy: set[bytes]
    mtime_s: int
    skip_hash: bool
    trailer: bytes = _NULL_HASH
    stage0: dict[str, tuple[int, bytes, int]] | None = field(default=None, repr=False)


# Cache: index path -> ((st_ino, st_size, st_mtime_ns), parsed).  ``_parsed.trailer``
# is compared as well before reusing an entry.
_Identity = tuple[int, int, int]
_cache: dict[str, tuple[_Identity, _Parsed]] = {}
_cache_lock = threading.Lock()
_path_locks: dict[str, threading.Lock] = {}

#: Number of full parses performed (tests use it to observe the cache).
_parse_count = 0


def _identity(st: os.stat_result) -> _Identity:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _path_lock(key: str) -> threading.Lock:
    with _cache_lock:
        lock = _path_locks.get(key)
        if lock is None:
            lock = _path_locks[key] = threading.Lock()
        return lock


def _empty(version: int = 2) -> _Parsed:
    return _Parsed(
        version=version,
        paths=[],
        raws=[],
        extensions=[],
        n_extended=0,
        racy=set(),
        mtime_s=0,
        skip_hash=False,
    )


def _encode_varint(value: int) -> bytes:
    """Encode ``value`` with git's offset varint (``varint.c``)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        value -= 1
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _common_prefix_len(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _header_len(raw: bytes) -> int:
    (flags,) = _FLAGS.unpack_from(raw, 60)
    return 64 if flags & _FLAG_EXTENDED else 62


def _encode_entry(header: bytes, path: bytes, prev: bytes | None, version: int) -> bytes:
    """Encode an entry from its fixed header (62 or 64 bytes) and path."""
    if version == 4:
        assert prev is not None
        common = _common_prefix_len(prev, path)
        return header + _encode_varint(len(prev) - common) + path[common:] + b"\0"
    size = (len(header) + len(path) + 8) & ~7
    return header + path + b"\0" * (size - len(header) - len(path))


def _reencode_v4(parsed: _Parsed, i: int) -> None:
    """Re-encode entry ``i`` of a version-4 index against its new predecessor."""
    if parsed.version != 4 or not 0 <= i < len(parsed.raws):
        return
    raw = parsed.raws[i]
    header = raw[: _header_len(raw)]
    prev = parsed.paths[i - 1] if i else b""
    parsed.raws[i] = _encode_entry(header, parsed.paths[i], prev, 4)


def _parse(data: bytes, mtime_s: int) -> _Parsed:
    """Parse the bytes of an index file.

    Args:
        data: The whole file.
        mtime_s: The file's mtime in seconds (for racy-entry detection).

    Returns:
        The parsed index.

    Raises:
        CorruptIndexError: The data is not a well-formed index.
        UnsupportedIndexError: The index uses an unsupported version or extension.
    """
    global _parse_count
    _parse_count += 1
    if len(data) < _HEADER.size + _HASH_LEN:
        raise CorruptIndexError("index file is too short")
    signature, version, count = _HEADER.unpack_from(data, 0)
    if signature != _SIGNATURE:
        raise CorruptIndexError("bad index signature")
    if version not in (2, 3, 4):
        raise UnsupportedIndexError(f"index version {version} is not supported")
    end = len(data) - _HASH_LEN
    trailer = data[end:]
    skip_hash = trailer == _NULL_HASH
    if not skip_hash and hashlib.sha1(memoryview(data)[:end]).digest() != trailer:
        raise CorruptIndexError("index checksum mismatch (corrupt, or not a SHA-1 repository)")

    paths: list[bytes] = []
    raws: list[bytes] = []
    racy: set[bytes] = set()
    n_extended = 0
    nameless = False
    off = _HEADER.size
    unpack = _MTIME_AND_FLAGS.unpack_from
    prev = b""
    try:
        for _ in range(count):
            mtime, flags = unpack(data, off)
            if flags & _FLAG_EXTENDED:
                n_extended += 1
                start = off + 64
            else:
                start = off + 62
            if version == 4:
                # varint: number of bytes to drop from the previous path
                c = data[start]
                start += 1
                strip = c & 0x7F
                while c & 0x80:
                    c = data[start]
                    start += 1
                    strip = ((strip + 1) << 7) | (c & 0x7F)
                if strip > len(prev):
                    raise CorruptIndexError("bad prefix compression in index entry")
                nul = data.index(b"\0", start, end)
                path = prev[: len(prev) - strip] + data[start:nul]
                nxt = nul + 1
            else:
                namelen = flags & _NAME_MASK
                if namelen == _NAME_MASK:
                    namelen = data.index(b"\0", start, end) - start
                nxt = off + ((start - off + namelen + 8) & ~7)
                path = data[start : start + namelen]
            if nxt > end:
                raise CorruptIndexError("truncated index entry")
            if not path:
                # Only a split index (``link`` extension) has nameless entries;
                # keep walking so that the extension can be reported.
                nameless = True
            elif path < prev:
                raise CorruptIndexError("index entries are not sorted")
            paths.append(path)
            raws.append(data[off:nxt])
            if mtime >= mtime_s:
                racy.add(path)
            prev = path
            off = nxt
    except (IndexError, ValueError, struct.error) as exc:
        raise CorruptIndexError(f"truncated index entry: {exc}") from exc

    extensions: list[bytes] = []
    while off < end:
        if off + 8 > end:
            raise CorruptIndexError("truncated index extension header")
        sig = data[off : off + 4]
        (size,) = _U32.unpack_from(data, off + 4)
        nxt = off + 8 + size
        if nxt > end:
            raise CorruptIndexError("truncated index extension")
        if sig in _UNSUPPORTED_EXTENSIONS:
            raise UnsupportedIndexError(
                f"index uses the {sig.decode('ascii')!r} extension ({_UNSUPPORTED_EXTENSIONS[sig]})"
            )
        if sig in _KEPT_EXTENSIONS:
            extensions.append(data[off:nxt])
        elif sig not in _DROPPED_EXTENSIONS and not 0x41 <= sig[0] <= 0x5A:
            raise UnsupportedIndexError(f"index uses unknown mandatory extension {sig!r}")
        off = nxt
    if nameless:
        raise CorruptIndexError("index entry without a name")

    return _Parsed(
        version=version,
        paths=paths,
        raws=raws,
        extensions=extensions,
        n_extended=n_extended,
        racy=racy,
        mtime_s=mtime_s,
        skip_hash=skip_hash,
        trailer=trailer,
    )


def _load(index_path: Path, key: str) -> _Parsed:
    """Return the parsed index at ``index_path``, from the cache when still valid.

    The caller holds the per-path lock.  A missing index is an empty version-2 index.

    Raises:
        CorruptIndexError: The file does not parse.
        UnsupportedIndexError: The index uses an unsupported feature.
    """
    try:
        fd = os.open(index_path, os.O_RDONLY)
    except FileNotFoundError:
        with _cache_lock:
            _cache.pop(key, None)
        return _empty()
    try:
        st = os.fstat(fd)
        ident = _identity(st)
        with _cache_lock:
            cached = _cache.get(key)
        if (
            cached is not None
            and cached[0] == ident
            and st.st_size >= _HASH_LEN
            and os.pread(fd, _HASH_LEN, st.st_size - _HASH_LEN) == cached[1].trailer
        ):
            return cached[1]
        chunks = []
        while chunk := os.read(fd, max(st.st_size, 1 << 16)):
            chunks.append(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    parsed = _parse(data, st.st_mtime_ns // _NS)
    with _cache_lock:
        if len(data) == st.st_size:
            _cache[key] = (ident, parsed)
        else:  # changed while we read it; do not trust the identity
            _cache.pop(key, None)
    return parsed


# --------------------------------------------------------------------------- editing


def _encode_path(path: str) -> bytes:
    """Validate a repository-relative path and return its bytes.

    Raises:
        ValueError: The path is not a valid index path.
    """
    raw = path.encode("utf-8", "surrogateescape")
    if not raw or b"\0" in raw or raw.startswith(b"/") or raw.endswith(b"/"):
        raise ValueError(f"invalid index path {path!r}")
    for part in raw.split(b"/"):
        if part in (b"", b".", b"..") or part.lower() == b".git":
            raise ValueError(f"invalid index path {path!r}")
    return raw


def _new_header(update: IndexEntryUpdate, path: bytes) -> bytes:
    """Build the fixed 62-byte part of a stage-0 entry for ``update``.

    Raises:
        ValueError: Bad mode or object id.
        UnsupportedIndexError: A 32-byte (SHA-256) object id.
    """
    if update.mode not in _VALID_MODES:
        raise ValueError(f"unsupported mode {update.mode:o} for {update.path!r}")
    if len(update.sha) != _HASH_LEN:
        if len(update.sha) == 32:
            raise UnsupportedIndexError("SHA-256 repositories are not supported")
        raise ValueError(f"object id for {update.path!r} must be 20 raw bytes")
    flags = min(len(path), _NAME_MASK)
    st = update.stat
    if st is None:
        stat_fields = (0,) * 6 + (update.mode, 0, 0, 0)
    else:
        m = _U32_MASK
        stat_fields = (
            (st.st_ctime_ns // _NS) & m,
            st.st_ctime_ns % _NS,
            (st.st_mtime_ns // _NS) & m,
            st.st_mtime_ns % _NS,
            st.st_dev & m,
            st.st_ino & m,
            update.mode,
            st.st_uid & m,
            st.st_gid & m,
            st.st_size & m,
        )
    return _ENTRY_FIXED.pack(*stat_fields, update.sha, flags)


def _count_extended(raws: Iterable[bytes]) -> int:
    return sum(1 for raw in raws if _FLAGS.unpack_from(raw, 60)[0] & _FLAG_EXTENDED)


def _delete_range(parsed: _Parsed, lo: int, hi: int) -> None:
    if lo >= hi:
        return
    parsed.n_extended -= _count_extended(parsed.raws[lo:hi])
    del parsed.paths[lo:hi]
    del parsed.raws[lo:hi]
    _reencode_v4(parsed, lo)


def _remove_path(parsed: _Parsed, path: bytes) -> None:
    """Remove every stage of ``path``."""
    paths = parsed.paths
    lo = bisect_left(paths, path)
    hi = bisect_right(paths, path, lo)
    _delete_range(parsed, lo, hi)
    parsed.racy.discard(path)


def _remove_df_conflicts(parsed: _Parsed, path: bytes) -> None:
    """Remove entries that cannot coexist with a file at ``path``.

    These are entries below ``path/`` (it was a directory) and entries named like a
    leading directory of ``path`` (a file where a directory now is), as
    ``git update-index --replace`` does.
    """
    paths = parsed.paths
    below = path + b"/"
    lo = bisect_left(paths, below)
    hi = lo
    while hi < len(paths) and paths[hi].startswith(below):
        parsed.racy.discard(paths[hi])
        hi += 1
    _delete_range(parsed, lo, hi)
    slash = path.find(b"/")
    while slash != -1:
        _remove_path(parsed, path[:slash])
        slash = path.find(b"/", slash + 1)


def _set_entry(parsed: _Parsed, path: bytes, header: bytes) -> None:
    """Make ``path`` a single stage-0 entry with fixed part ``header``."""
    paths = parsed.paths
    lo = bisect_left(paths, path)
    hi = bisect_right(paths, path, lo)
    if lo == hi:
        _remove_df_conflicts(parsed, path)
        lo = hi = bisect_left(paths, path)
    else:
        parsed.n_extended -= _count_extended(parsed.raws[lo:hi])
    prev = paths[lo - 1] if lo else b""
    raw = _encode_entry(header, path, prev, parsed.version)
    paths[lo:hi] = [path]
    parsed.raws[lo:hi] = [raw]
    _reencode_v4(parsed, lo + 1)
    parsed.racy.discard(path)


def _racy_entry_can_stay(raw: bytes, path: bytes, work_tree: Path) -> bool:
    """Tell whether a racily clean stage-0 entry may be kept unsmudged.

    Mirrors git's ``ce_smudge_racily_clean_entry``: if the file's size, mtime
    seconds or type (what git compares whatever its build options and
    ``core.checkStat``/``core.trustCtime``) differ from the entry, git
    will notice the change by itself, so the entry can stay; if it matches, the
    content is hashed and compared with the entry's object id.  Content filters
    (``autocrlf``, clean filters) are not applied, so a filtered file compares as
    changed, which only costs git a re-hash.
    """
    _cs, _cns, mtime_s, _mns, _dev, _ino, mode, _uid, _gid, size = _STAT10.unpack_from(raw, 0)
    file_path = work_tree / os.fsdecode(path)
    try:
        st = file_path.lstat()
        m = _U32_MASK
        if (
            size != st.st_size & m
            or mtime_s != (st.st_mtime_ns // _NS) & m
            or stat_mod.S_IFMT(mode) != stat_mod.S_IFMT(st.st_mode)
        ):
            return True  # git sees the stat change and re-checks the file itself
        if stat_mod.S_ISLNK(st.st_mode):
            # Path.readlink would normalise the target (e.g. drop a trailing slash).
            content = os.readlink(os.fsencode(file_path))  # noqa: PTH115
        elif stat_mod.S_ISREG(st.st_mode):
            content = file_path.read_bytes()
        else:
            return False
    except OSError:
        return False
    blob_id = hashlib.sha1(b"blob %d\0" % len(content))
    blob_id.update(content)
    return blob_id.digest() == raw[40:60]


def _smudge_racy(parsed: _Parsed, work_tree: Path | None) -> None:
    """Zero the cached size of carried-over racily clean entries, like git.

    With a ``work_tree`` only entries whose file content no longer matches are
    smudged (git's behaviour); without one every racily clean entry is.  Entries
    left unsmudged stay in ``parsed.racy``.
    """
    paths = parsed.paths
    raws = parsed.raws
    zero = b"\0\0\0\0"
    still_racy: set[bytes] = set()
    for path in parsed.racy:
        lo = bisect_left(paths, path)
        hi = bisect_right(paths, path, lo)
        for i in range(lo, hi):
            raw = raws[i]
            if raw[_MODE_OFFSET : _MODE_OFFSET + 4] == _GITLINK:
                continue  # git never treats gitlinks as racy
            if raw[_SIZE_OFFSET : _SIZE_OFFSET + 4] == zero:
                continue  # already smudged (or an empty file, which git re-checks)
            if (
                work_tree is not None
                and not _FLAGS.unpack_from(raw, 60)[0] & _STAGE_MASK
                and _racy_entry_can_stay(raw, path, work_tree)
            ):
                still_racy.add(path)
                continue
            raws[i] = raw[:_SIZE_OFFSET] + zero + raw[_SIZE_OFFSET + 4 :]
    parsed.racy = still_racy


def _racy_after_write(parsed: _Parsed, candidates: Iterable[bytes], mtime_s: int) -> set[bytes]:
    """Return the candidates with an entry whose mtime is not older than ``mtime_s``."""
    paths = parsed.paths
    raws = parsed.raws
    racy: set[bytes] = set()
    for path in candidates:
        lo = bisect_left(paths, path)
        hi = bisect_right(paths, path, lo)
        if any(_U32.unpack_from(raws[i], 8)[0] >= mtime_s for i in range(lo, hi)):
            racy.add(path)
    return racy


def _serialise(parsed: _Parsed) -> tuple[bytes, bytes, bytes, bytes]:
    """Return (header, entries, extensions, trailer) for ``parsed``."""
    version = parsed.version
    if version in (2, 3):
        version = 3 if parsed.n_extended else 2
        parsed.version = version
    header = _HEADER.pack(_SIGNATURE, version, len(parsed.raws))
    body = b"".join(parsed.raws)
    exts = b"".join(parsed.extensions)
    if parsed.skip_hash:
        trailer = _NULL_HASH
    else:
        h = hashlib.sha1(header)
        h.update(body)
        h.update(exts)
        trailer = h.digest()
    return header, body, exts, trailer


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------- public


def update_index(
    git_dir: Path,
    updates: Sequence[IndexEntryUpdate],
    removals: Sequence[str] = (),
    *,
    fsync: bool = False,
    work_tree: Path | None = None,
) -> None:
    """Set and remove stage-0 entries of ``git_dir/index`` in place (see :func:`staged_index`).

    Raises:
        As :func:`staged_index`.
    """
    with staged_index(git_dir, updates, removals, fsync=fsync, work_tree=work_tree):
        pass


@contextlib.contextmanager
def staged_index(
    git_dir: Path,
    updates: Sequence[IndexEntryUpdate],
    removals: Sequence[str] = (),
    *,
    fsync: bool = False,
    work_tree: Path | None = None,
) -> Iterator[None]:
    """Write the updated index into ``index.lock`` now; put it in place when the block ends.

    Everything that can fail (taking the lock, reading, writing, a full disk) happens on
    entering; leaving the block normally only renames ``index.lock`` over ``index``.
    Leaving it with an exception removes ``index.lock`` and leaves the index as it was.

    Set and remove stage-0 entries of ``git_dir/index``.

    Removals are applied first, then updates (a later update of the same path
    wins).  An update replaces every stage of its path (so it also resolves a
    conflict) and, like ``git update-index --replace``, removes entries that would
    conflict with it as a file (entries under ``path/`` and entries named like one
    of its leading directories).  Removing a path that is not in the index is not an
    error; with no updates and no removals the index is not touched at all.  New
    entries carry no extended flags (intent-to-add and skip-worktree of a replaced
    entry are cleared).  A missing index is treated as an empty version-2 index.  Version 4
    indexes are written as version 4.

    The write follows git's lock protocol: ``index.lock`` is created exclusively,
    written, optionally fsynced and renamed over ``index``; on any failure the lock
    file is removed.

    Args:
        git_dir: The repository's git directory (e.g. ``repo/.git``).
        updates: Entries to set.
        removals: Repository-relative paths to remove (all stages).
        fsync: Whether to fsync the new index before renaming it into place.
        work_tree: The working tree the index describes.  When given, carried-over
            racily clean entries are checked against their files and smudged only
            if the content changed (as git does); when omitted they are all
            smudged, which is safe but makes git re-hash them (and makes
            :func:`entry_stat_matches` report False for them).

    Raises:
        IndexLockedError: ``index.lock`` already exists.
        UnsupportedIndexError: The index uses a feature this module does not
            rewrite (split or sparse index, unknown mandatory extension, SHA-256);
            the index is left untouched.
        CorruptIndexError: The index does not parse (a subclass of
            :class:`UnsupportedIndexError`).
        ValueError: An invalid path, mode or object id.
        OSError: Reading or writing the index failed.
    """
    # Validate everything before touching the lock or the cached index.
    removal_paths = [_encode_path(p) for p in removals]
    new_entries = [(_encode_path(u.path), u) for u in updates]
    headers = [(path, _new_header(u, path)) for path, u in new_entries]
    if not headers and not removal_paths:
        yield
        return

    index_path = Path(git_dir) / "index"
    lock_path = index_path.with_name("index.lock")
    key = str(index_path.absolute())
    with _path_lock(key):
        try:
            fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise IndexLockedError(
                f"unable to create {lock_path}: File exists (another git process "
                "seems to be running in this repository)"
            ) from None
        committed = False
        try:
            with os.fdopen(fd, "wb") as out:
                parsed = _load(index_path, key)
                try:
                    _smudge_racy(parsed, None if work_tree is None else Path(work_tree))
                    for path in removal_paths:
                        _remove_path(parsed, path)
                    for path, header in headers:
                        _set_entry(parsed, path, header)
                    parsed.stage0 = None
                    head, body, exts, trailer = _serialise(parsed)
                    parsed.trailer = trailer
                    out.write(head)
                    out.write(body)
                    out.write(exts)
                    out.write(trailer)
                    out.flush()
                    if fsync:
                        os.fsync(out.fileno())
                    st = os.fstat(out.fileno())
                except BaseException:
                    with _cache_lock:
                        _cache.pop(key, None)
                    raise
            try:
                yield
                _fsutil.replace(lock_path, index_path, durable=fsync)
            except BaseException:
                with _cache_lock:
                    _cache.pop(key, None)
                raise
            committed = True
        finally:
            if not committed:
                _unlink_quietly(lock_path)

        new_mtime_s = st.st_mtime_ns // _NS
        with _cache_lock:
            if new_mtime_s < parsed.mtime_s:
                # The clock went backwards: our racy bookkeeping would be incomplete.
                _cache.pop(key, None)
                return
            parsed.mtime_s = new_mtime_s
            candidates = parsed.racy.union(path for path, _header in headers)
            parsed.racy = _racy_after_write(parsed, candidates, new_mtime_s)
            _cache[key] = (_identity(st), parsed)


def _stage0_map(parsed: _Parsed) -> dict[str, tuple[int, bytes, int]]:
    result: dict[str, tuple[int, bytes, int]] = {}
    unpack = _ENTRY_FIXED.unpack_from
    for path, raw in zip(parsed.paths, parsed.raws, strict=True):
        fields = unpack(raw, 0)
        flags = fields[11]
        if flags & _STAGE_MASK:
            continue
        result[path.decode("utf-8", "surrogateescape")] = (fields[6], fields[10], 0)
    return result


def read_index(git_dir: Path) -> dict[str, tuple[int, bytes, int]]:
    """Return the stage-0 entries of ``git_dir/index``.

    Args:
        git_dir: The repository's git directory.

    Returns:
        A new dict mapping each stage-0 path to ``(mode, sha, stage)`` where ``sha``
        is the 20 raw bytes of the object id and ``stage`` is always 0.  Empty if
        there is no index.

    Raises:
        UnsupportedIndexError: The index uses an unsupported feature.
        CorruptIndexError: The index does not parse.
        OSError: Reading the index failed.
    """
    index_path = Path(git_dir) / "index"
    key = str(index_path.absolute())
    with _path_lock(key):
        parsed = _load(index_path, key)
        if parsed.stage0 is None:
            parsed.stage0 = _stage0_map(parsed)
        return dict(parsed.stage0)


def _find_stage0(git_dir: Path, path: str) -> bytes | None:
    """Return the raw stage-0 entry for ``path``, or None."""
    raw_path = path.encode("utf-8", "surrogateescape")
    index_path = Path(git_dir) / "index"
    key = str(index_path.absolute())
    with _path_lock(key):
        parsed = _load(index_path, key)
        paths = parsed.paths
        i = bisect_left(paths, raw_path)
        if i < len(paths) and paths[i] == raw_path:
            raw = parsed.raws[i]
            if not _FLAGS.unpack_from(raw, 60)[0] & _STAGE_MASK:
                return raw
    return None


def index_entry(git_dir: Path, path: str) -> tuple[int, bytes, int] | None:
    """Look up one stage-0 entry without building the whole map.

    Args:
        git_dir: The repository's git directory.
        path: Repository-relative, ``/``-separated path.

    Returns:
        ``(mode, sha, 0)`` for the path's stage-0 entry, or None if it has none.

    Raises:
        UnsupportedIndexError: The index uses an unsupported feature.
        CorruptIndexError: The index does not parse.
        OSError: Reading the index failed.
    """
    raw = _find_stage0(git_dir, path)
    if raw is None:
        return None
    fields = _ENTRY_FIXED.unpack_from(raw, 0)
    return (fields[6], fields[10], 0)


def entry_stat_matches(git_dir: Path, path: str, st: os.stat_result) -> bool | None:
    """Tell whether the index's cached stat data for ``path`` matches ``st``.

    Compares what git itself relies on to consider a file unchanged: mtime and
    ctime (seconds and nanoseconds), inode, size (all truncated to 32 bits as the
    index stores them) and the file type.  A smudged or zeroed entry never matches.

    Args:
        git_dir: The repository's git directory.
        path: Repository-relative, ``/``-separated path.
        st: ``os.lstat`` of the working-tree file.

    Returns:
        True if the stage-0 entry's stat data matches ``st``, False if it does not
        (the file may have been edited since it was indexed), None if the path has
        no stage-0 entry.

    Raises:
        UnsupportedIndexError: The index uses an unsupported feature.
        CorruptIndexError: The index does not parse.
        OSError: Reading the index failed.
    """
    raw = _find_stage0(git_dir, path)
    if raw is None:
        return None
    ctime_s, ctime_ns, mtime_s, mtime_ns, _dev, ino, mode, _uid, _gid, size = _STAT10.unpack_from(
        raw, 0
    )
    m = _U32_MASK
    return (
        ctime_s == (st.st_ctime_ns // _NS) & m
        and ctime_ns == st.st_ctime_ns % _NS
        and mtime_s == (st.st_mtime_ns // _NS) & m
        and mtime_ns == st.st_mtime_ns % _NS
        and ino == st.st_ino & m
        and size == st.st_size & m
        and stat_mod.S_IFMT(mode) == stat_mod.S_IFMT(st.st_mode)
    )
