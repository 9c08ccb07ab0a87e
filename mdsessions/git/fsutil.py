"""File-system primitives shared by the git layer: the atomic replace.

``replace(src, dst)`` puts ``src`` in place of ``dst`` atomically: a reader of ``dst`` sees the
old or the new content, never a missing or partial file.  On Linux it swaps the two names
with ``renameat2(RENAME_EXCHANGE)`` and then unlinks the old content.  Measured on this
project's ext4 machines, that costs ~0.13 ms where a rename over an existing file costs
~1.3-1.8 ms, because ext4 (``auto_da_alloc``) forces the new file's data out on a rename that
replaces a file.  That flush is a power-loss safeguard, not an atomicity one: in durable mode
the caller fsyncs the file first and this module uses a plain ``os.replace``.
Where ``renameat2`` is missing or refused (other systems, other file systems), ``os.replace``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

__all__ = ["replace"]

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _load_renameat2() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()


def replace(src: Path, dst: Path, *, durable: bool = False) -> None:
    """Atomically put the file ``src`` in place of ``dst`` (``src`` is gone afterwards).

    Args:
        src: The new content (a temp or lock file in the same folder).
        dst: The target; may or may not exist.
        durable: Use a plain ``os.replace`` (the caller has fsynced ``src``).

    Raises:
        OSError: If neither the exchange nor the rename works.
    """
    global _renameat2
    if _renameat2 is not None and not durable:
        result = _renameat2(
            _AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_EXCHANGE
        )  # type: ignore[operator]
        if result == 0:
            # src now holds the old content; nobody can reach it under that name but us.
            with contextlib.suppress(FileNotFoundError):
                src.unlink()
            return
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: not supported here
            _renameat2 = None
        # ENOENT: dst does not exist yet -> a plain rename (cheap: nothing is replaced).
    src.replace(dst)
