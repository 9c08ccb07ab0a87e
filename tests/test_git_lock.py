"""Tests for mdsessions.git.lock.WriterLock with real processes holding the lock."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mdsessions.git.lock import LockTimeout, WriterLock

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that takes the lock (plain flock) and keeps it ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def test_free_lock_is_taken_at_once_and_released(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "writer.lock")
    lock.acquire(timeout=0)
    assert lock.is_locked
    with pytest.raises(LockTimeout):
        WriterLock(tmp_path / "writer.lock").acquire(timeout=0)
    lock.release()
    assert not lock.is_locked
    other = WriterLock(tmp_path / "writer.lock")
    other.acquire(timeout=0)
    other.release()


def test_waiter_gets_the_lock_when_the_holder_exits(tmp_path: Path) -> None:
    path = tmp_path / "writer.lock"
    proc = hold(path, 0.5)
    lock = WriterLock(path)
    t0 = time.monotonic()
    lock.acquire(timeout=30)
    waited = time.monotonic() - t0
    assert proc.wait() == 0
    assert 0.2 < waited < 30  # it did wait for the holder, and did not time out
    lock.release()


def test_waiter_gets_the_lock_when_the_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "writer.lock"
    proc = hold(path, 60)
    lock = WriterLock(path)
    threading.Timer(0.3, proc.send_signal, (signal.SIGKILL,)).start()
    lock.acquire(timeout=30)
    assert proc.wait() == -signal.SIGKILL
    lock.release()


def test_timeout_leaves_no_file_handle_and_no_lock_behind(tmp_path: Path) -> None:
    path = tmp_path / "writer.lock"
    proc = hold(path, 1.0)
    before = open_fds()
    lock = WriterLock(path)
    with pytest.raises(LockTimeout):
        lock.acquire(timeout=0.2)
    assert not lock.is_locked
    assert proc.wait() == 0
    # The abandoned waiter got the lock when the holder exited and must have let it go.
    deadline = time.monotonic() + 10
    while open_fds() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert open_fds() == before
    other = WriterLock(path)
    other.acquire(timeout=0)
    other.release()


def test_a_held_lock_is_not_taken_twice(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "writer.lock")
    lock.acquire(timeout=0)
    with pytest.raises(RuntimeError, match="already held"):
        lock.acquire(timeout=0)
    lock.release()


def test_an_unwritable_folder_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        WriterLock(tmp_path / "missing" / "writer.lock").acquire(timeout=0)
