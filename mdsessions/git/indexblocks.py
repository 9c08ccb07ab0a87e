"""The entries of an unsplit index as compact byte blocks, with a resumable SHA-1.

An index of 100,000 entries is ~12 MB on disk; one Python object per entry would cost ~290
bytes each (~29 MB), and re-encoding and re-hashing the whole file on every write ~25 ms.
:class:`Blocks` keeps the entries as the bytes they are written as, cut into blocks of about
:data:`BLOCK_BYTES` with one ``array('I')`` of entry offsets per block (~13 MB and ~0.4 MB at
100,000 entries), so that:

* a lookup is a bisection over the blocks' first paths, then within one block;
* an edit rebuilds one block (a slice and a join of ~64 KiB), never the whole index;
* a write hands the blocks to the file as they are (no join of the whole index), and the
  SHA-1 trailer resumes from the hash state saved before the first changed block (kept
  while the 12-byte header, i.e. the entry count and version, is unchanged): a write that
  changes entries near the end of the index re-hashes only the bytes after them.

Entries are stored in the version-2/3 encoding (fixed part, path, NUL padding to 8 bytes),
whatever the index version; a version-4 index (prefix-compressed paths) is encoded per
block when written, and the encoding of a block is kept until that block or the last path
of the block before it changes.

Imports: nothing from mdsessions.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["BLOCK_BYTES", "Blocks", "encode_v2", "path_of"]

BLOCK_BYTES = 64 * 1024
"""Target size of a block (bytes).  A block is cut in pieces of this size once it outgrows
twice that.  Measured at 100,000 entries (12.8 MB): an edit costs ~20-60 µs per block
touched, and a saved hash state every 64 KiB bounds what a write re-hashes before the first
change to one block (~50 µs of SHA-1)."""

_NAME_MASK = 0x0FFF


def encode_v2(header: bytes, path: bytes) -> bytes:
    """An entry in the version-2/3 encoding: fixed part, path, NUL padding to 8 bytes."""
    size = (len(header) + len(path) + 8) & ~7
    return header + path + b"\0" * (size - len(header) - len(path))


def path_of(data: bytes | memoryview, off: int) -> bytes:
    """The path of the version-2/3 encoded entry at ``off`` of ``data``."""
    flags = (data[off + 60] << 8) | data[off + 61]
    start = off + (64 if flags & 0x4000 else 62)
    namelen = flags & _NAME_MASK
    if namelen == _NAME_MASK:
        end = bytes(data[start : start + 65536]).index(b"\0") + start
        return bytes(data[start:end])
    return bytes(data[start : start + namelen])


def _v4_varint(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        value -= 1
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _cut(data: bytes, offs: array[int]) -> list[tuple[bytes, array[int]]]:
    """Cut one run of entries (``offs``: their offsets in ``data``, plus its end) into blocks."""
    count = len(offs) - 1
    if count <= 0:
        return []
    total = offs[count] - offs[0]
    if total <= 2 * BLOCK_BYTES:
        base = offs[0]
        if base == 0 and len(data) == offs[count]:
            return [(data, offs)]
        return [(data[base : offs[count]], array("I", [o - base for o in offs]))]
    pieces = max(2, round(total / BLOCK_BYTES))
    out: list[tuple[bytes, array[int]]] = []
    first = 0
    for k in range(1, pieces + 1):
        if k == pieces:
            last = count
        else:
            want = offs[0] + total * k // pieces
            last = max(first + 1, min(count, bisect_left(offs, want, first)))
        if last <= first:
            continue
        base = offs[first]
        out.append(
            (data[base : offs[last]], array("I", [o - base for o in offs[first : last + 1]]))
        )
        first = last
        if first >= count:
            break
    return out


class Blocks:
    """Index entries in sorted order, as byte blocks (see the module docstring).

    Args:
        pieces: (bytes, offsets) per block: the entries' version-2/3 bytes and an
            ``array('I')`` of their offsets in it plus the end (``len(offsets) == count + 1``).
    """

    __slots__ = ("_enc", "_header", "_states", "blocks", "firsts", "n", "offs", "starts")

    def __init__(self, pieces: Sequence[tuple[bytes, array[int]]] = ()) -> None:
        self.blocks: list[bytes] = [p[0] for p in pieces]
        self.offs: list[array[int]] = [p[1] for p in pieces]
        self.firsts: list[bytes] = [path_of(b, o[0]) for b, o in pieces]
        self.starts: list[int] = []
        self.n = 0
        self._reindex(0)
        self._enc: list[bytes | None] = [None] * len(self.blocks)  # version-4 encodings
        self._states: list[Any] = []  # SHA-1 states before block k (k < len), for _header
        self._header = b""

    @classmethod
    def from_entries(cls, raws: Sequence[bytes]) -> Blocks:
        """Blocks holding ``raws`` (version-2/3 encoded entries, sorted)."""
        data = b"".join(raws)
        offs = array("I", [0])
        total = 0
        for raw in raws:
            total += len(raw)
            offs.append(total)
        return cls(_cut(data, offs))

    @classmethod
    def from_buffer(cls, data: bytes, offs: array[int]) -> Blocks:
        """Blocks holding the entries ``data[offs[i]:offs[i + 1]]`` (version-2/3, sorted)."""
        return cls(_cut(data, offs))

    def _reindex(self, b: int) -> None:
        """Recompute ``starts`` and ``n`` from block ``b`` on."""
        del self.starts[b:]
        total = self.starts[-1] + len(self.offs[b - 1]) - 1 if b else 0
        for off in self.offs[b:]:
            self.starts.append(total)
            total += len(off) - 1
        self.n = total

    def __len__(self) -> int:
        return self.n

    def _locate(self, i: int) -> tuple[int, int]:
        """(block, position in it) of entry ``i`` (``0 <= i < n``)."""
        b = bisect_right(self.starts, i) - 1
        return b, i - self.starts[b]

    def path(self, i: int) -> bytes:
        """The path of entry ``i``."""
        b, j = self._locate(i)
        return path_of(self.blocks[b], self.offs[b][j])

    def raw(self, i: int) -> bytes:
        """Entry ``i`` as version-2/3 bytes (its fixed part is what callers read)."""
        b, j = self._locate(i)
        off = self.offs[b]
        return self.blocks[b][off[j] : off[j + 1]]

    def _search(self, path: bytes, right: bool) -> int:
        firsts = self.firsts
        b = (bisect_right if right else bisect_left)(firsts, path)
        if b == 0:
            return 0
        b -= 1
        data, off = self.blocks[b], self.offs[b]
        lo, hi = 0, len(off) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            p = path_of(data, off[mid])
            if p < path or (right and p == path):
                lo = mid + 1
            else:
                hi = mid
        return self.starts[b] + lo

    def lower(self, path: bytes) -> int:
        """Index of the first entry whose path is not below ``path`` (``bisect_left``)."""
        return self._search(path, False)

    def upper(self, path: bytes) -> int:
        """Index after the last entry whose path is not above ``path`` (``bisect_right``)."""
        return self._search(path, True)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (path, version-2/3 entry bytes), in order."""
        for data, off in zip(self.blocks, self.offs, strict=True):
            for j in range(len(off) - 1):
                start = off[j]
                yield path_of(data, start), data[start : off[j + 1]]

    def replace(self, lo: int, hi: int, raws: Sequence[bytes]) -> None:
        """Replace entries ``lo`` to ``hi`` (excluded) with ``raws`` (version-2/3 bytes)."""
        if lo >= hi and not raws:
            return
        if not self.blocks:
            fresh = Blocks.from_entries(raws)
            self.blocks, self.offs, self.firsts = fresh.blocks, fresh.offs, fresh.firsts
            self._enc = [None] * len(self.blocks)
            self._states.clear()
            self._reindex(0)
            return
        last = len(self.blocks) - 1
        b1, j1 = self._locate(lo) if lo < self.n else (last, len(self.offs[last]) - 1)
        if hi < self.n:
            b2, j2 = self._locate(hi)
            if j2 == 0 and b2 > b1:  # the range ends where a block starts: keep that block
                b2 -= 1
                j2 = len(self.offs[b2]) - 1
        else:
            b2, j2 = last, len(self.offs[last]) - 1
        off1, off2 = self.offs[b1], self.offs[b2]
        head = self.blocks[b1][: off1[j1]]
        tail = self.blocks[b2][off2[j2] :]
        middle = b"".join(raws)
        offs = off1[: j1 + 1]
        pos = off1[j1]
        for raw in raws:
            pos += len(raw)
            offs.append(pos)
        shift = pos - off2[j2]
        offs.extend([o + shift for o in off2[j2 + 1 :]])
        pieces = _cut(head + middle + tail, offs)
        self.blocks[b1 : b2 + 1] = [p[0] for p in pieces]
        self.offs[b1 : b2 + 1] = [p[1] for p in pieces]
        self.firsts[b1 : b2 + 1] = [path_of(p[0], 0) for p in pieces]
        after = b1 + len(pieces)
        self._enc[b1 : b2 + 1] = [None] * len(pieces)
        if after < len(self._enc):
            self._enc[after] = None  # its first entry is prefix-compressed against ours
        del self._states[b1 + 1 :]
        self._reindex(b1)

    def chunks(self, version: int) -> list[bytes]:
        """The entries as written in an index of ``version``: one bytes object per block."""
        if version != 4:
            return self.blocks
        enc = self._enc
        prev = b""
        for k, data in enumerate(self.blocks):
            off = self.offs[k]
            count = len(off) - 1
            if enc[k] is None:
                out = []
                for j in range(count):
                    start = off[j]
                    path = path_of(data, start)
                    hlen = 64 if data[start + 60] & 0x40 else 62
                    common = 0
                    limit = min(len(prev), len(path))
                    while common < limit and prev[common] == path[common]:
                        common += 1
                    out.append(data[start : start + hlen])
                    out.append(_v4_varint(len(prev) - common) + path[common:] + b"\0")
                    prev = path
                enc[k] = b"".join(out)
            elif count:
                prev = path_of(data, off[count - 1])
        return [e or b"" for e in enc]

    def digest(self, header: bytes, chunks: Sequence[bytes], tail: bytes) -> bytes:
        """SHA-1 of ``header + chunks + tail`` (20 bytes), resumed where it can be.

        Hashing resumes from the state saved before the first block changed since the last
        call with the same ``header``; ``chunks`` must be :meth:`chunks`' result.
        """
        states = self._states
        if header != self._header or not states:
            states[:] = [hashlib.sha1(header)]
            self._header = header
        start = min(len(states), len(chunks) + 1) - 1
        del states[start + 1 :]
        h = states[start].copy()
        for chunk in chunks[start:]:
            h.update(chunk)
            states.append(h.copy())
        h.update(tail)
        digest: bytes = h.digest()
        return digest

    def forget_hash(self) -> None:
        """Drop the saved hash states (the next :meth:`digest` hashes everything)."""
        self._states.clear()
