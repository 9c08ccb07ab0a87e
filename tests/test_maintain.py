"""Tests for mdsessions.git.maintain's automatic maintenance and the object caches' bounds.

Real git in ``tmp_path``, real processes: the CLI as short-lived writers, a person's ``git
commit``, a second process holding the maintenance lock. Thresholds are set low through the
store's git config (``mdsessions.autoMaintenanceObjects``), as an operator would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import PERSON_EMAIL, PERSON_NAME, git

from mdsessions import Store
from mdsessions.git import maintain
from mdsessions.git.objects import SizedLRU

ROOT = Path(__file__).resolve().parents[1]
P = "proj"


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def cli(root: Path, *args: str, input: bytes | None = None) -> None:
    """``python -m mdsessions --store root …`` as a real, short-lived process."""
    proc = subprocess.run(
        [sys.executable, "-m", "mdsessions", "--store", str(root), *args],
        input=input,
        capture_output=True,
        env=env(),
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()


def packs(root: Path) -> int:
    return len(list((root / ".git" / "objects" / "pack").glob("*.pack")))


def loose(root: Path) -> int:
    objects = root / ".git" / "objects"
    return sum(1 for d in objects.iterdir() if len(d.name) == 2 for _ in d.iterdir())


def counter(root: Path) -> tuple[int, int]:
    parts = (root / ".git" / "mdsessions" / maintain.COUNTER_FILE).read_text().split()
    return int(parts[0]), int(parts[1])


def fsck_ok(root: Path) -> None:
    proc = subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling", "--no-progress"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A new store with automatic maintenance after 30 loose objects (~3-4 commits)."""
    path = tmp_path / "store"
    Store.init(path).close()
    git(path, "config", "mdsessions.autoMaintenanceObjects", "30")
    return path


# ------------------------------------------------------------------------------ the caches


def test_a_sized_lru_keeps_its_budget_and_drops_the_least_recently_used() -> None:
    cache: SizedLRU[str, int] = SizedLRU(100)
    cache.put("a", 1, 40)
    cache.put("b", 2, 40)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3, 40)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert cache.nbytes == 80 and len(cache) == 2
    cache.put("huge", 4, 101)  # more than the whole budget: not kept, nothing evicted
    assert cache.get("huge") is None and len(cache) == 2
    cache.put("a", 5, 10)  # replaced: its old cost is given back
    assert cache.nbytes == 50 and cache.get("a") == 5
    cache.pop("a")
    cache.clear()
    assert cache.nbytes == 0 and len(cache) == 0


def test_the_object_caches_stay_within_their_byte_budgets(tmp_path: Path) -> None:
    from mdsessions.git import objects

    store = Store.init(tmp_path / "store")
    try:
        budgets = {
            "trees": objects.TREE_CACHE_BYTES,
            "layouts": objects.LAYOUT_CACHE_BYTES,
            "commits": objects.COMMIT_CACHE_BYTES,
        }
        # Shrink the budgets so a test-sized store overflows them.
        store.git.objects._trees.budget = 20_000
        store.git.objects._commit_trees.budget = 2_000
        session = store.create_session(P, "s1")
        for i in range(30):
            session.save_agent_output(1, f"agent-{i}", f"output {i}\n")
        held = store.git.objects.cache_bytes()
        assert held["trees"] <= 20_000 and held["commits"] <= 2_000
        assert set(held) == set(budgets)
        # Everything still reads back through the smaller caches.
        assert all(session.output(1, f"agent-{i}") is not None for i in range(30))
        assert store._cache.nbytes <= store._cache.budget
    finally:
        store.close()


# ------------------------------------------------------------------------------ triggering


def test_commits_of_several_short_lived_processes_add_up_to_a_maintenance(root: Path) -> None:
    cli(root, "new", P, "s1")
    before = counter(root)
    assert before[0] > 0 and packs(root) == 0
    for i in range(6):  # each a process of one commit: far below 30 objects alone
        cli(root, "output", f"{P}/s1", "1", "concept_expansion", "-", input=b"out %d\n" % i)
        if packs(root):
            break
    assert maintain.wait_for_maintenance(root / ".git", timeout=60)
    assert packs(root) >= 1, "no maintenance ran after the commits of several processes"
    assert loose(root) <= counter(root)[0]  # only what was written after it started
    info = root / ".git" / "objects" / "info"
    assert (info / "commit-graphs").exists() or (info / "commit-graph").exists()
    fsck_ok(root)
    # The lock file stays (a flock: the kernel released it when the child exited).
    assert (root / ".git" / "mdsessions" / maintain.LOCK_FILE).exists()
    assert not maintain.maintenance_running(root / ".git")


def test_the_counter_is_kept_in_the_store(root: Path) -> None:
    git(root, "config", "mdsessions.autoMaintenance", "false")
    cli(root, "new", P, "s1")
    first = counter(root)
    cli(root, "output", f"{P}/s1", "1", "concept_expansion", "-", input=b"x\n")
    second = counter(root)
    assert second[0] > first[0] and second[1] > first[1]


@pytest.mark.parametrize(
    ("settings", "runs"),
    [
        ({"mdsessions.autoMaintenance": "false"}, False),
        ({"gc.auto": "0"}, False),
        ({"maintenance.auto": "false"}, False),
        ({"gc.auto": "0", "mdsessions.autoMaintenance": "true"}, True),
    ],
)
def test_automatic_maintenance_honours_its_switches(
    root: Path, settings: dict[str, str], runs: bool
) -> None:
    for key, value in settings.items():
        git(root, "config", key, value)
    with Store.open(root) as store:
        session = store.create_session(P, "s1")
        for i in range(8):
            session.save_agent_output(1, f"agent-{i}", f"output {i}\n")
        assert store.git.wait_for_maintenance(timeout=60)
    assert (packs(root) > 0) is runs


def test_a_maintenance_lock_held_by_another_process_is_never_removed(root: Path) -> None:
    lock = root / ".git" / "mdsessions" / maintain.LOCK_FILE
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, b'held by the test')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        with Store.open(root) as store:
            session = store.create_session(P, "s1")
            for i in range(8):
                session.save_agent_output(1, f"agent-{i}", f"output {i}\n")
            assert packs(root) == 0  # nothing started while another holds the lock
            assert lock.read_bytes() == b"held by the test"
            assert maintain.maintenance_running(root / ".git")
            assert counter(root)[0] >= 30  # kept: the next commit tries again
            holder.communicate(b"", timeout=30)  # the holder exits: the kernel frees the lock
            session.save_agent_output(1, "after", "after\n")
            assert store.git.wait_for_maintenance(timeout=60)
        assert packs(root) >= 1
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_nothing_starts_while_a_person_s_git_gc_holds_gc_pid(root: Path) -> None:
    (root / ".git" / "gc.pid").write_text("99999 elsewhere\n")
    with Store.open(root) as store:
        session = store.create_session(P, "s1")
        for i in range(8):
            session.save_agent_output(1, f"agent-{i}", f"output {i}\n")
        assert store.git.wait_for_maintenance(timeout=60)
    assert packs(root) == 0
    assert (root / ".git" / "gc.pid").read_text() == "99999 elsewhere\n"


# ------------------------------------------------------------------------------ repacking


def test_packs_are_merged_geometrically(root: Path) -> None:
    git(root, "config", "mdsessions.autoMaintenance", "false")
    with Store.open(root) as store:
        session = store.create_session(P, "s1")
        for i in range(24):
            session.save_agent_output(1, f"agent-{i}", f"output {i}\n")
            proc = subprocess.run(  # the detached child's own entry point, run in the foreground
                [sys.executable, "-m", "mdsessions.git.maintain", str(root)],
                env=env(),
                capture_output=True,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            assert loose(root) == 0
        # 24 runs, one new pack each, rolled up: a handful of packs, not 24.
        assert 1 <= packs(root) <= 5
        assert all(session.output(1, f"agent-{i}") is not None for i in range(24))
    fsck_ok(root)


def test_a_repack_loses_nothing_while_a_writer_and_a_person_commit(root: Path) -> None:
    git(root, "config", "mdsessions.autoMaintenance", "false")
    with Store.open(root) as store:
        store.create_session(P, "s1")
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from mdsessions import Store\n"
            f"store = Store.open({str(root)!r})\n"
            f"session = store.session({P!r}, 's1')\n"
            "for i in range(40):\n"
            "    session.save_agent_output(1, f'agent-{i}', f'output {i}\\n')\n"
            "store.close()\n",
        ],
        env=env(),
        stderr=subprocess.PIPE,
    )
    stop = threading.Event()
    person_commits: list[str] = []

    def person() -> None:
        i = 0
        while not stop.is_set():
            note = root / "notes" / f"note-{i}.txt"
            note.parent.mkdir(exist_ok=True)
            note.write_text(f"note {i}\n")
            add = subprocess.run(["git", "add", str(note)], cwd=root, capture_output=True)
            done = subprocess.run(
                ["git", "commit", "-q", "-m", f"person note {i}", "--", str(note)],
                cwd=root,
                capture_output=True,
                env={
                    **os.environ,
                    "GIT_AUTHOR_NAME": PERSON_NAME,
                    "GIT_AUTHOR_EMAIL": PERSON_EMAIL,
                },
            )
            if add.returncode == 0 and done.returncode == 0:
                person_commits.append(f"person note {i}")
            i += 1
            time.sleep(0.2)

    thread = threading.Thread(target=person)
    thread.start()
    repacks = 0
    try:
        while writer.poll() is None:
            maintain.run_maintenance(root)
            repacks += 1
    finally:
        stop.set()
        thread.join()
    _, err = writer.communicate()
    assert writer.returncode == 0, err.decode()
    maintain.run_maintenance(root)
    assert repacks >= 1
    fsck_ok(root)
    subjects = git(root, "log", "--format=%s")
    with Store.open(root) as store:
        session = store.session(P, "s1")
        assert all(session.output(1, f"agent-{i}") is not None for i in range(40))
    for subject in person_commits:
        assert subject in subjects, f"{subject!r} was lost"
    assert subjects.count("\n") == int(git(root, "rev-list", "--count", "HEAD"))
