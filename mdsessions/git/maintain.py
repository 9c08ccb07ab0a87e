"""Checking and tidying a repository: fsck, object counts, packing, the commit-graph.

Each function is one git verb with its output parsed here, so the history layer never
builds a git command line.

Automatic maintenance (:func:`note_commit`, called after every commit mdsessions makes):

- **A counter in the store, not the process.** Each commit adds the loose objects it wrote
  (count and bytes on disk) to ``.git/mdsessions/maintenance.count`` (a few bytes, updated
  under an ``flock`` of its own, ~35 µs), so commits made by any number of short-lived
  processes (every CLI call) add up. A store without the file starts from git's own estimate
  (one fan-out folder x 256, as ``git gc --auto`` counts).
- **Thresholds**: ``mdsessions.autoMaintenanceObjects`` loose objects (default ``gc.auto``
  when set, else git's 6,700) or ``mdsessions.autoMaintenanceBytes`` bytes of them (default
  16 MiB; ``k``/``m``/``g`` suffixes as git reads them). Bytes matter at scale: at 100,000
  files each checkpoint writes a ~330 KB tree (stored uncompressed, see ``.objects``), so a
  count of 6,700 objects alone let ~250 MB pile up loose.
- **Detached**: the committing process never waits. It takes the maintenance lock
  (``flock`` of ``.git/mdsessions/maintenance.lock``; the kernel releases it when the holder
  dies, the file is never removed), resets the counter and starts
  ``python -m mdsessions.git.maintain`` through ``sh -c '… &'`` in a new session with the
  locked file descriptor inherited: the lock passes to that child, which outlives a CLI call
  and releases the lock when it exits; two maintenance runs never overlap. Nothing starts
  while the lock is held, while a person's ``git gc`` holds ``gc.pid`` (less than 12 hours
  old, git's own rule) or ``git maintenance`` holds ``objects/maintenance.lock``.
- **What runs** (niced): ``git repack -d -l --geometric=2`` (loose objects and the small
  packs rolled into one new pack so each pack holds at least twice the objects of all
  smaller ones: packs stay few, ~log2 of the history, and no big pack is rewritten each time;
  ``-d`` deletes only the packs it rolled up and loose objects now in a pack, so objects a
  writer or a person's git is writing meanwhile are never lost), then ``git commit-graph
  write --reachable --changed-paths --split`` (fast path-limited history).
- **Off** with ``git config mdsessions.autoMaintenance false``; when that key is unset, git's
  own switches are honoured too: ``gc.auto=0`` or ``maintenance.auto=false`` turn it off.
  ``mdsessions.autoMaintenance true`` turns it on whatever those say. Where ``fcntl`` is
  missing (Windows) it is off; run ``mdsessions maintenance`` instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from mdsessions.git.process import git_env, run_git

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from mdsessions.git.config import GitConfig
    from mdsessions.git.repo import GitRepo

__all__ = [
    "AUTO_BYTES",
    "AUTO_OBJECTS",
    "COUNTER_FILE",
    "LOCK_FILE",
    "Thresholds",
    "auto_enabled",
    "checkout_branch",
    "count_objects",
    "fsck",
    "has_commit",
    "maintenance_lock",
    "maintenance_running",
    "note_commit",
    "pack_refs",
    "repack",
    "repack_geometric",
    "reset_counter",
    "run_maintenance",
    "thresholds",
    "wait_for_maintenance",
    "write_commit_graph",
]

_log = logging.getLogger(__name__)

#: Loose objects (written since the last maintenance) that start one: git's ``gc.auto``.
AUTO_OBJECTS = 6700
#: Bytes of loose objects on disk (written since the last maintenance) that start one.
AUTO_BYTES = 16 * 1024 * 1024
#: The counter of loose objects written since the last maintenance, in ``.git/mdsessions/``.
COUNTER_FILE = "maintenance.count"
#: The maintenance lock (``flock``; never removed), in ``.git/mdsessions/``.
LOCK_FILE = "maintenance.lock"
#: A ``gc.pid`` older than this is stale, as git itself decides (seconds).
_GC_PID_STALE_S = 12 * 3600


def fsck(root: Path) -> tuple[bool, list[str]]:
    """``git fsck --strict --no-dangling``: whether git passed, and what it reported.

    Returns:
        ``(passed, lines)``: ``lines`` are git's messages, one per line (warnings too);
        when git fails without saying why, one line ``exit status N``.
    """
    proc = run_git(["fsck", "--strict", "--no-dangling", "--no-progress"], cwd=root, check=False)
    lines = (proc.stdout + proc.stderr).decode("utf-8", "replace").splitlines()
    found = [line.strip() for line in lines if line.strip()]
    if proc.returncode != 0 and not found:
        found.append(f"exit status {proc.returncode}")
    return proc.returncode == 0, found


def has_commit(repo: GitRepo, commit: str) -> bool:
    """Whether ``commit`` names a commit object present in the repository."""
    return repo.git("cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode == 0


def count_objects(repo: GitRepo) -> dict[str, int]:
    """``git count-objects -v`` as numbers: ``count``, ``size`` (KiB), ``in-pack``, ``packs``."""
    out = {}
    for line in repo.git("count-objects", "-v").stdout.decode().splitlines():
        key, _, value = line.partition(":")
        if value.strip().isdigit():
            out[key.strip()] = int(value.strip())
    return out


def pack_refs(repo: GitRepo) -> None:
    """``git pack-refs --all``: loose refs into ``packed-refs`` (git's lock protocol)."""
    repo.git("pack-refs", "--all")


def repack(repo: GitRepo, *, consolidate: bool) -> None:
    """``git repack -d -l``: loose objects into a pack; ``consolidate`` = all packs into one."""
    repo.git("repack", *(["-A"] if consolidate else []), "-d", "-l", "-q")


def repack_geometric(root: Path) -> bool:
    """``git repack -d -l -q --geometric=2``: loose objects and small packs into one new pack.

    Returns:
        Whether git succeeded.
    """
    args = ["repack", "-d", "-l", "-q", "--geometric=2"]
    return run_git(args, cwd=root, check=False).returncode == 0


def write_commit_graph(repo: GitRepo) -> None:
    """``git commit-graph write --reachable --changed-paths --split`` (faster path-limited log)."""
    repo.git("commit-graph", "write", "--reachable", "--changed-paths", "--split", "--no-progress")


def checkout_branch(root: Path, ref: str) -> None:
    """Point ``HEAD`` at ``ref`` and write the work tree from it (``reset --hard``).

    Only for a repository this process just made (a restore's new folder): it overwrites
    the work tree.
    """
    run_git(["symbolic-ref", "HEAD", ref], cwd=root)
    run_git(["reset", "-q", "--hard", "HEAD"], cwd=root)


# -- automatic maintenance -------------------------------------------------------------


class Thresholds(NamedTuple):
    """What starts automatic maintenance: loose objects written, or bytes of them on disk."""

    objects: int
    bytes: int


_SIZE = re.compile(r"\s*(-?\d+)\s*([kmgKMG]?)\s*")


def _size(value: str | None) -> int | None:
    """An integer as ``git config --type=int`` reads it (``k``, ``m``, ``g`` suffixes)."""
    match = _SIZE.fullmatch(value or "")
    if match is None:
        return None
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    return int(match.group(1)) * scale


def _boolean(value: str | None, default: bool) -> bool:
    """A boolean as git reads it (``true``/``yes``/``on``/``1``, ``false``/``no``/…)."""
    if value is None:
        return default
    word = value.strip().lower()
    if word in ("true", "yes", "on", ""):
        return True
    if word in ("false", "no", "off"):
        return False
    number = _size(word)
    return default if number is None else number != 0


def auto_enabled(config: GitConfig) -> bool:
    """Whether automatic maintenance runs (see the module docstring for the keys)."""
    if fcntl is None:  # pragma: no cover - Windows
        return False
    values = config.values()  # git lowercases section and key names
    if "mdsessions.automaintenance" in values:
        return _boolean(values["mdsessions.automaintenance"], True)
    gc_auto = _size(values.get("gc.auto"))
    if gc_auto is not None and gc_auto <= 0:
        return False
    return _boolean(values.get("maintenance.auto"), True)


def thresholds(config: GitConfig) -> Thresholds:
    """The thresholds configured for this repository (defaults: 6,700 objects, 16 MiB)."""
    values = config.values()
    objects = _size(values.get("mdsessions.automaintenanceobjects"))
    if objects is None:
        gc_auto = _size(values.get("gc.auto"))
        objects = gc_auto if gc_auto is not None and gc_auto > 0 else AUTO_OBJECTS
    size = _size(values.get("mdsessions.automaintenancebytes"))
    return Thresholds(max(1, objects), max(1, size if size is not None else AUTO_BYTES))


def _loose_estimate(git_dir: Path) -> tuple[int, int]:
    """Loose objects and their bytes, estimated from one fan-out folder as ``git gc --auto``."""
    count = size = 0
    with contextlib.suppress(OSError), os.scandir(git_dir / "objects" / "17") as it:
        for entry in it:
            if len(entry.name) == 38:
                count += 1
                with contextlib.suppress(OSError):
                    size += entry.stat().st_size
    return count * 256, size * 256


def _add_to_counter(path: Path, git_dir: Path, objects: int, size: int) -> tuple[int, int]:
    """Add to the store's counter (creating it from git's estimate); return the new totals."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.pread(fd, 64, 0)
        parts = raw.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            old = (int(parts[0]), int(parts[1]))
        else:  # new (or torn: a counter is only a hint)
            old = _loose_estimate(git_dir)
        total = (old[0] + objects, old[1] + size)
        data = b"%d %d\n" % total
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        return total
    finally:
        os.close(fd)  # releases the flock


def reset_counter(git_dir: Path) -> None:
    """Set the store's counter of loose objects written to zero (they are being packed)."""
    _reset_counter(git_dir / "mdsessions" / COUNTER_FILE)


def _reset_counter(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.pwrite(fd, b"0 0\n", 0)
        os.ftruncate(fd, 4)
    finally:
        os.close(fd)


def _git_is_tidying(git_dir: Path) -> bool:
    """Whether a person's ``git gc`` or ``git maintenance`` seems to run (their locks)."""
    if (git_dir / "objects" / "maintenance.lock").exists():
        return True
    try:
        age = time.time() - (git_dir / "gc.pid").stat().st_mtime
    except OSError:
        return False
    return age < _GC_PID_STALE_S


def _try_lock(path: Path) -> int | None:
    """Take the maintenance lock without waiting: its file descriptor, or ``None`` if held."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    cloexec = getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | cloexec, 0o644)
    except PermissionError:  # another user's store: a read-only descriptor can still flock
        fd = os.open(path, os.O_RDONLY | cloexec)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _write_holder(fd: int) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    data = json.dumps(info).encode()
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))


def maintenance_running(git_dir: Path) -> bool:
    """Whether some process holds the store's maintenance lock now."""
    try:
        fd = _try_lock(git_dir / "mdsessions" / LOCK_FILE)
    except OSError:  # no lock file and none can be made: nobody holds it
        return False
    if fd is None:
        return fcntl is not None
    os.close(fd)
    return False


def wait_for_maintenance(git_dir: Path, timeout: float = 120.0) -> bool:
    """Wait until no maintenance runs (polling every 50 ms).

    Args:
        git_dir: The ``.git`` folder.
        timeout: Seconds to wait at most.

    Returns:
        ``True`` when none runs, ``False`` if one still ran after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while maintenance_running(git_dir):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@contextlib.contextmanager
def maintenance_lock(git_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the maintenance lock (an explicit ``mdsessions maintenance`` takes it too).

    Raises:
        TimeoutError: Another maintenance held it for more than ``timeout`` seconds.
    """
    path = git_dir / "mdsessions" / LOCK_FILE
    deadline = time.monotonic() + timeout
    while True:
        fd = _try_lock(path)
        if fd is not None or fcntl is None:
            break
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{path}: another maintenance ran for more than {timeout:g} s")
        time.sleep(0.05)
    try:
        if fd is not None:
            _write_holder(fd)
        yield
    finally:
        if fd is not None:
            os.close(fd)


def note_commit(repo: GitRepo) -> bool:
    """Count the loose objects of a commit just made; start maintenance once there are enough.

    Called by :meth:`GitRepo.after_commit`. Costs ~35 µs below the thresholds; when they are
    reached it starts a detached maintenance process (a few ms) and returns at once.

    Returns:
        Whether maintenance was started.

    Raises:
        OSError: The counter or the lock could not be written (e.g. a read-only ``.git``).
        subprocess.SubprocessError: ``sh`` did not start the child within 30 s.
    """
    objects, size = repo.objects.take_written()
    if not objects:
        return False
    counter = repo.private_dir / COUNTER_FILE
    total = _add_to_counter(counter, repo.git_dir, objects, size)
    limit = thresholds(repo.config)
    if total[0] < limit.objects and total[1] < limit.bytes:
        return False
    if not auto_enabled(repo.config) or _git_is_tidying(repo.git_dir):
        return False
    fd = _try_lock(repo.private_dir / LOCK_FILE)
    if fd is None:  # one runs: it packs these objects too, or the next commit tries again
        return False
    try:
        _write_holder(fd)
        _spawn(repo.root, fd)
        _reset_counter(counter)
    finally:
        os.close(fd)  # the child holds the lock now (same open file description)
    _log.info(
        "automatic maintenance started (%d loose objects, %d bytes)",
        total[0],
        total[1],
        extra={"operation": "maintenance.auto", "objects": total[0], "bytes": total[1]},
    )
    return True


def _spawn(root: Path, fd: int) -> None:
    """Start ``python -m mdsessions.git.maintain`` detached, handing it the locked ``fd``."""
    package_parent = str(Path(__file__).resolve().parents[2])
    env = git_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "mdsessions.git.maintain", "--lock-fd", str(fd), str(root)]
    # sh starts the child in the background and exits: the child is nobody's to wait for
    # (no zombie in a long-lived caller) and outlives a CLI call.
    subprocess.run(
        ["sh", "-c", '"$@" </dev/null >/dev/null 2>&1 &', "sh", *command],
        pass_fds=(fd,),
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        check=False,
        timeout=30,
    )


def run_maintenance(root: Path) -> bool:
    """The automatic maintenance itself: geometric repack, then the commit-graph.

    Returns:
        Whether both steps succeeded.
    """
    packed = repack_geometric(root)
    graph = run_git(
        ["commit-graph", "write", "--reachable", "--changed-paths", "--split", "--no-progress"],
        cwd=root,
        check=False,
    )
    return packed and graph.returncode == 0


def _main(argv: Sequence[str]) -> int:
    """``python -m mdsessions.git.maintain [--lock-fd N] ROOT``: run maintenance once.

    With ``--lock-fd`` the maintenance lock is already held on that inherited descriptor;
    without, it is taken here (or the run is skipped when another holds it).
    """
    args = list(argv)
    fd: int | None = None
    if len(args) == 3 and args[0] == "--lock-fd":
        fd = int(args[1])
        args = args[2:]
    if len(args) != 1:
        print("usage: python -m mdsessions.git.maintain [--lock-fd N] ROOT", file=sys.stderr)
        return 2
    root = Path(args[0])
    with contextlib.suppress(OSError):
        os.nice(10)
    if fd is None:
        fd = _try_lock(root / ".git" / "mdsessions" / LOCK_FILE)
        if fd is None:
            return 0
    try:
        _write_holder(fd)
        return 0 if run_maintenance(root) else 1
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
