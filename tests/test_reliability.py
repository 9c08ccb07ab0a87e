"""Reliability: concurrent writers, kill -9 at every step of a commit, file-system faults, and a
long-running process (DESIGN.md "Concurrency and crashes", "Commits").

Every scenario is a plain function ``scenario(workdir, …) -> Outcome`` that counts its runs,
its failures (each a sentence saying what broke) and the data it lost; the tests assert that
the failures are none, and ``benchmarks/reliability.py`` runs the same functions at full size
to print the table of ``docs/reliability.md``.

Counts scale with ``MDSESSIONS_RELIABILITY_SCALE`` (a fraction of the full size; default
``0.05`` so the whole suite fits the CI budget, ``1`` = the sizes of the issue: 8 processes ×
200 checkpoints, ≥ 200 kills, 10,000 operations).

Crash runs fork the test process (the writer inherits the imported library, so a run costs
milliseconds, not an interpreter start) and kill the child with SIGKILL: either after a
random delay, or deterministically at the N-th call of one step of the commit path
(``_fsutil.write_new``, ``Journal.write``, ``RefStore.cas``, ``_fsutil.replace``
and its ``renameat2`` exchange, each filtered by the path it works on), which the child
monkeypatches to ``os.kill(os.getpid(), SIGKILL)``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO_ROOT, tree_digest

from mdsessions import MdsessionsError, Store

SCALE = float(os.environ.get("MDSESSIONS_RELIABILITY_SCALE", "0.05") or "0.05")
P = "project-rel"
STATUSES = ("in_progress", "failed", "pending")
RUNNER_ID = "Test Person <person@example.com>"


def scaled(full: int, minimum: int = 1) -> int:
    """``full`` × the scale, at least ``minimum``."""
    return max(minimum, round(full * SCALE))


@dataclass
class Outcome:
    """What one scenario did: runs, failures (what broke, in words), data lost, figures.

    ``failed_runs`` counts the runs with at least one failure (scenarios made of many runs
    set it); otherwise every failure message counts as one.
    """

    scenario: str
    runs: int = 0
    failures: list[str] = field(default_factory=list)
    lost: int = 0
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    failed_runs: int | None = None

    def fail(self, message: str) -> None:
        self.failures.append(message)

    @property
    def failed(self) -> int:
        if self.failed_runs is not None:
            return self.failed_runs
        return min(len(self.failures), max(self.runs, 1))

    def report(self) -> str:
        shown = "\n".join(f"  - {f}" for f in self.failures[:15])
        more = f"\n  … and {len(self.failures) - 15} more" if len(self.failures) > 15 else ""
        return (
            f"{self.scenario}: {self.runs} runs, {self.failed} failed, "
            f"{self.lost} lost\n{shown}{more}"
        )


def assert_ok(outcome: Outcome) -> None:
    assert outcome.failures == [] and outcome.lost == 0, outcome.report()


# ------------------------------------------------------------------------------ git helpers


def run_git(root: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", "--no-optional-locks", "-c", "safe.directory=*", *args],
        cwd=str(root),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def git_head(root: Path) -> str:
    return run_git(root, "rev-parse", "HEAD").strip()


def store_state(root: Path) -> tuple[str, str, str]:
    """(HEAD, git status, working-tree hash): equal before and after = nothing changed."""
    return (
        git_head(root),
        run_git(root, "status", "--porcelain", "--untracked-files=all"),
        tree_digest(root),
    )


def leftovers(root: Path) -> list[str]:
    """Stale locks, temp files and an unfinished journal (``writer.lock`` and
    ``maintenance.lock`` are flock files, released by the kernel, never removed)."""
    git_dir = root / ".git"
    flocks = {git_dir / "mdsessions" / "writer.lock", git_dir / "mdsessions" / "maintenance.lock"}
    found = [p for p in git_dir.rglob("*.lock") if p not in flocks]
    found += [p for p in root.rglob("*.mdstmp")]
    found += list((git_dir / "objects").glob("*/tmp_obj_*"))
    if (git_dir / "mdsessions" / "journal.json").exists():
        found.append(git_dir / "mdsessions" / "journal.json")
    return [p.relative_to(root).as_posix() for p in found]


def invariants(
    root: Path, *, validate: bool = True, known: frozenset[str] = frozenset()
) -> list[str]:
    """Everything that must hold for a store at rest; returns what does not (leftovers in
    ``known`` were reported by an earlier run already)."""
    problems = []
    status = run_git(root, "status", "--porcelain", "--untracked-files=all")
    if status:
        problems.append(f"git status not clean: {status.strip()[:300]!r}")
    fsck = subprocess.run(
        ["git", "-c", "safe.directory=*", "fsck", "--strict", "--no-dangling", "--no-progress"],
        cwd=str(root),
        capture_output=True,
        text=True,
        check=False,
    )
    if fsck.returncode != 0 or fsck.stdout.strip() or fsck.stderr.strip():
        problems.append(f"git fsck: {(fsck.stdout + fsck.stderr).strip()[:300]}")
    left = [p for p in leftovers(root) if p not in known]
    if left:
        problems.append(f"left behind: {left[:8]}")
    if validate:
        with Store.open(root) as store:
            found = store.validate()
        if found:
            problems.append(f"validate: {[str(p) for p in found[:5]]}")
    return problems


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def log_records(root: Path) -> list[dict[str, str]]:
    """Every commit reachable from HEAD, oldest first: sha plus its trailers."""
    text = run_git(root, "log", "--reverse", "--format=%x1e%H%x1f%(trailers:only,unfold)")
    out = []
    for record in text.split("\x1e")[1:]:
        sha, _, trailers = record.partition("\x1f")
        entry = {"sha": sha.strip()}
        for line in trailers.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                entry[key.strip()] = value.strip()
        out.append(entry)
    return out


# ------------------------------------------------------------------------------ concurrency

WRITER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from mdsessions import Store

    root, project, session_id, barrier, worker, count = sys.argv[1:7]
    worker, count = int(worker), int(count)
    statuses = {statuses!r}
    store = Store.open(root)
    session = store.session(project, session_id)
    print("ready", flush=True)
    deadline = time.monotonic() + 120
    while not Path(barrier).exists():
        if time.monotonic() > deadline:
            sys.exit("the barrier never opened")
        time.sleep(0.001)
    last = {{}}
    for i in range(count):
        phase = 1 + (worker + i) % 7
        agent = f"w{{worker}}_{{i}}"
        status = statuses[(worker + 2 * i) % 3]
        session.save_agent_output(phase, agent, f"worker {{worker}} item {{i}}\\n", input_tokens=i)
        session.save_checkpoint(
            phase, status=status, agents=[{{"agent_name": agent, "input_tokens": i}}],
            inputs=[agent],
        )
        last[phase] = status
    store.close()
    print(json.dumps(last), flush=True)
    """
).format(statuses=STATUSES)


def _write_pairs(session: Any, worker: int, count: int) -> dict[int, str]:
    """The thread version of WRITER's loop (same checkpoints, same statuses)."""
    last: dict[int, str] = {}
    for i in range(count):
        phase = 1 + (worker + i) % 7
        agent = f"w{worker}_{i}"
        status = STATUSES[(worker + 2 * i) % 3]
        session.save_agent_output(phase, agent, f"worker {worker} item {i}\n", input_tokens=i)
        session.save_checkpoint(
            phase,
            status=status,
            agents=[{"agent_name": agent, "input_tokens": i}],
            inputs=[agent],
        )
        last[phase] = status
    return last


class _Reader:
    """A concurrent reader: plain ``git status`` (which takes index.lock to refresh) and
    manifest reads through its own Store, in a loop, counting what went wrong."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.errors: list[str] = []
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> _Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        with Store.open(self.root) as store:
            while not self._stop.is_set():
                proc = subprocess.run(
                    ["git", "status", "--porcelain"],
                    cwd=str(self.root),
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0:
                    self.errors.append(f"git status failed: {proc.stderr.strip()}")
                try:
                    for manifest in store.sessions():
                        store.session(manifest.project_id, manifest.session_id).manifest()
                except Exception as exc:  # a torn read would land here
                    self.errors.append(f"reader: {type(exc).__name__}: {exc}")
                self.rounds += 1


def _check_concurrent_result(
    outcome: Outcome,
    root: Path,
    before: int,
    results: dict[int, dict[int, str]],
    workers: int,
    count: int,
    *,
    shared: bool,
) -> None:
    """Every commit present, every output readable, manifests list the last status written.

    ``results`` maps each worker to the statuses it wrote by phase (own sessions ``w{n}``);
    with ``shared`` every worker wrote session ``shared``, where the last checkpoint decides.
    """

    def session_of(w: int) -> str:
        return "shared" if shared else f"w{w}"

    expected: dict[str, dict[int, str] | None] = (
        {"shared": None} if shared else {f"w{w}": results.get(w, {}) for w in range(workers)}
    )
    records = log_records(root)
    new = records[before:]
    if len(new) != 2 * workers * count:
        outcome.fail(f"expected {2 * workers * count} new commits, found {len(new)}")
    outputs = {r.get("Mdsessions-Agent") for r in new if r.get("Mdsessions-Kind") == "agent_output"}
    missing = [
        f"w{w}_{i}" for w in range(workers) for i in range(count) if f"w{w}_{i}" not in outputs
    ]
    checkpoints = [r for r in new if r.get("Mdsessions-Kind") == "checkpoint"]
    if len(checkpoints) != workers * count:
        outcome.fail(f"expected {workers * count} checkpoint commits, found {len(checkpoints)}")
    outcome.lost += len(missing) + max(0, workers * count - len(checkpoints))
    if missing:
        outcome.fail(f"agent_output commits missing: {missing[:10]}")
    with Store.open(root) as store:
        for w in range(workers):
            session = store.session(P, session_of(w))
            found = session.outputs()
            for i in range(count):
                phase = 1 + (w + i) % 7
                out = found.get(phase, {}).get(f"w{w}_{i}")
                if out is None or out.content != f"worker {w} item {i}\n":
                    outcome.fail(f"output w{w}_{i} of phase {phase} missing or changed")
                    outcome.lost += 1
        for sid, last in expected.items():
            if last is None:  # one session shared by all: the last checkpoint commit decides
                last = {}
                for r in records:
                    if (
                        r.get("Mdsessions-Kind") == "checkpoint"
                        and r.get("Mdsessions-Session") == sid
                    ):
                        last[int(r["Mdsessions-Phase"])] = r["Mdsessions-Status"]
            manifest = store.session(P, sid).manifest()
            for phase, status in last.items():
                row = manifest.phase(phase)
                if row.status.value != status:
                    outcome.fail(
                        f"{sid}: manifest says phase {phase} is {row.status.value}, "
                        f"the last checkpoint written was {status}"
                    )
                    outcome.lost += 1
    outcome.failures += invariants(root)


def concurrency_processes(
    workdir: Path, *, shared: bool, workers: int = 8, count: int | None = None
) -> Outcome:
    """``workers`` processes × ``count`` checkpoints (agent output + checkpoint, 2 commits)."""
    count = count if count is not None else scaled(200, 6)
    name = "processes, one session" if shared else "processes, own sessions"
    outcome = Outcome(f"concurrency: {workers} {name} × {count} checkpoints")
    started = time.monotonic()
    root = workdir / "store"
    store = Store.init(root)
    sids = ["shared"] if shared else [f"w{w}" for w in range(workers)]
    for sid in sids:
        store.create_session(P, sid, mode="full")
    store.close()
    before = len(log_records(root))
    barrier = workdir / "go"
    procs = []
    for w in range(workers):
        sid = "shared" if shared else f"w{w}"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(root), P, sid, str(barrier), str(w), str(count)],
                env=subprocess_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results: dict[int, dict[int, str]] = {}
    with _Reader(root) as reader:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "ready":
                outcome.fail(
                    f"writer did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
                )
        barrier.write_text("go")
        for w, proc in enumerate(procs):
            try:
                out, err = proc.communicate(timeout=120 + count * workers * 0.5)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                outcome.fail(f"writer {w} timed out")
            if proc.returncode != 0 or err.strip():
                outcome.fail(f"writer {w} exited {proc.returncode}: {err.strip()[-500:]}")
                continue
            results[w] = {int(k): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}
    outcome.failures += reader.errors
    outcome.figures["reader rounds"] = reader.rounds
    outcome.runs = workers * count
    _check_concurrent_result(outcome, root, before, results, workers, count, shared=shared)
    outcome.seconds = time.monotonic() - started
    return outcome


def concurrency_threads(
    workdir: Path, *, shared: bool, workers: int = 8, count: int | None = None
) -> Outcome:
    """``workers`` threads of one process, one Store object, × ``count`` checkpoints."""
    count = count if count is not None else scaled(200, 6)
    name = "threads, one session" if shared else "threads, own sessions"
    outcome = Outcome(f"concurrency: {workers} {name} × {count} checkpoints")
    started = time.monotonic()
    root = workdir / "store"
    store = Store.init(root)
    try:
        sids = ["shared"] if shared else [f"w{w}" for w in range(workers)]
        for sid in sids:
            store.create_session(P, sid, mode="full")
        before = len(log_records(root))
        results: dict[int, dict[int, str]] = {}
        barrier = threading.Barrier(workers)

        def work(w: int) -> None:
            try:
                session = store.session(P, "shared" if shared else f"w{w}")
                barrier.wait(timeout=60)
                results[w] = _write_pairs(session, w, count)
            except BaseException as exc:  # reported below
                outcome.fail(f"thread {w}: {type(exc).__name__}: {exc}")

        with _Reader(root) as reader:
            threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120 + count * workers * 0.5)
                if thread.is_alive():
                    outcome.fail("a writer thread did not finish")
        outcome.failures += reader.errors
        outcome.figures["reader rounds"] = reader.rounds
    finally:
        store.close()
    outcome.runs = workers * count
    _check_concurrent_result(outcome, root, before, results, workers, count, shared=shared)
    outcome.seconds = time.monotonic() - started
    return outcome


@pytest.mark.slow
@pytest.mark.parametrize("shared", [False, True], ids=["own-sessions", "one-session"])
def test_processes_write_concurrently(tmp_path: Path, shared: bool) -> None:
    assert_ok(concurrency_processes(tmp_path, shared=shared))


@pytest.mark.slow
@pytest.mark.parametrize("shared", [False, True], ids=["own-sessions", "one-session"])
def test_threads_write_concurrently(tmp_path: Path, shared: bool) -> None:
    assert_ok(concurrency_threads(tmp_path, shared=shared))


# ------------------------------------------------------------------------------ crashes


@dataclass(frozen=True)
class KillPoint:
    """Where a writer dies.

    Attributes:
        where: What the writer was doing, in words.
        target: ``random``, ``recovery`` or the step patched: ``write_new`` (every new file:
            loose objects, working-tree temp files), ``journal``, ``cas`` (the branch's
            compare-and-swap), ``replace`` (the atomic rename), ``exchange`` (its renameat2).
        when: ``before`` or ``after`` the N-th matching call, or ``partial`` (half the bytes
            written, then killed; ``write_new`` only).
        match: Which calls count: ``objects`` (loose-object temp files), ``worktree``
            (working-tree files), ``ref`` (the branch), ``index``, or ``""`` (all).
        max_n: N is drawn from 1…max_n (spreads the kills over the operations).
        full_runs: Runs at full size.
    """

    where: str
    target: str
    when: str = "before"
    match: str = ""
    max_n: int = 10
    full_runs: int = 15


# Only the commit path's primitives are patched (the file writer, the journal, the branch's
# compare-and-swap, the atomic rename and its renameat2 exchange), so the points stay valid
# when the order of the steps changes.  N is drawn per run, so the N-th matching call falls
# into different operations (session creation, outputs, checkpoints with a review gate,
# feedback) and into the first or a later file of one operation.
KILL_POINTS: dict[str, KillPoint] = {
    "before-journal": KillPoint("before the journal is written", "journal", "before"),
    "after-journal": KillPoint("journal written, nothing else yet", "journal", "after"),
    "object-write": KillPoint(
        "writing loose objects (before a file)", "write_new", "before", "objects", 40
    ),
    "object-half": KillPoint(
        "half-written loose-object temp file", "write_new", "partial", "objects", 40
    ),
    "file-write": KillPoint(
        "writing working-tree temp files", "write_new", "before", "worktree", 20
    ),
    "file-half": KillPoint(
        "half-written working-tree temp file", "write_new", "partial", "worktree", 20
    ),
    "index-lock": KillPoint("index.lock written, before its rename", "replace", "before", "index"),
    "ref-lock": KillPoint("branch lock written, before its rename", "replace", "before", "ref"),
    "ref-exchange": KillPoint(
        "branch exchanged, old value not yet unlinked", "exchange", "after", "ref"
    ),
    "ref-moved": KillPoint("branch moved, before reflog and files", "cas", "after"),
    "file-rename": KillPoint(
        "renaming a working-tree file into place", "replace", "before", "worktree", 20
    ),
    "file-exchange": KillPoint(
        "file exchanged, old content not yet unlinked", "exchange", "after", "worktree", 20
    ),
    "file-renamed": KillPoint(
        "a working-tree file renamed in, the rest not yet", "replace", "after", "worktree", 20
    ),
    "index-after": KillPoint(
        "index renamed in, before the journal is removed", "replace", "after", "index"
    ),
    "recovery": KillPoint(
        "killed again while recovering a killed writer", "recovery", "before", "", 10
    ),
    "random": KillPoint("SIGKILL after a random delay (0-400 ms)", "random", full_runs=45),
}


def _matches(match: str, path: Path | str) -> bool:
    path = Path(path)
    if match == "objects":
        return path.name.startswith("tmp_obj_")
    if match == "worktree":
        return ".git" not in path.parts
    if match == "ref":
        return "refs" in path.parts
    if match == "index":
        return path.name == "index" and path.parent.name == ".git"
    return True


def _install_kill(point: KillPoint, n: int) -> None:
    """In the forked child: make the N-th matching call of the point's step kill the process."""
    from mdsessions.git import fsutil as _fsutil
    from mdsessions.git import journal as _journal
    from mdsessions.git import refs as _refs

    count = [0]

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def hit(path: Path | str | None = None) -> bool:
        if path is not None and not _matches(point.match, path):
            return False
        count[0] += 1
        return count[0] == n

    def wrap(owner: Any, name: str, path_of: Callable[..., Any] | None = None) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            now = hit(path_of(*args) if path_of else None)
            if now and point.when == "before":
                die()
            result = original(*args, **kwargs)
            if now:
                die()
            return result

        setattr(owner, name, wrapper)

    if point.target == "write_new":
        original = _fsutil.write_new

        def write_new(path: Path, data: bytes, mode: int, *, fsync: bool) -> None:
            if hit(path):
                if point.when == "partial":
                    path.parent.mkdir(parents=True, exist_ok=True)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                    os.write(fd, data[: max(1, len(data) // 2)])
                die()
            original(path, data, mode, fsync=fsync)

        _fsutil.write_new = write_new  # type: ignore[assignment]
    elif point.target == "journal":
        wrap(_journal.Journal, "write")
    elif point.target == "cas":
        wrap(_refs.RefStore, "cas")
    elif point.target == "replace":
        wrap(_fsutil, "replace", lambda src, dst, **_: dst)
    elif point.target == "exchange":
        if _fsutil._renameat2 is None:  # pragma: no cover - not Linux
            wrap(_fsutil, "replace", lambda src, dst, **_: dst)
        else:
            wrap(_fsutil, "_renameat2", lambda _a, _src, _b, dst, _flags: os.fsdecode(dst))
    else:  # pragma: no cover - a typo in KILL_POINTS
        raise ValueError(point.target)


# The operations a crash-run writer performs, in order; op k of run r is fully determined, so
# the parent knows what the op in flight meant to write.
def op_spec(k: int) -> tuple[str, int | None, str | None]:
    fixed: list[tuple[str, int | None, str | None]] = [
        ("create", None, None),
        ("output", 1, "concept_expansion"),
        ("output", 1, "extra"),
        ("checkpoint", 1, "in_progress"),
        ("checkpoint", 1, "completed"),  # review gate: user_feedback.md + awaiting_review
        ("feedback", 1, "approved"),
    ]
    if k < len(fixed):
        return fixed[k]
    if k % 2 == 0:
        return ("output", 2, f"a{(k // 2) % 3}")  # from the 4th on, an overwrite
    return ("checkpoint", 2, "in_progress")


def op_marker(run: int, k: int) -> str:
    return f"run{run}-op{k}-marker"


def op_content(run: int, k: int) -> str:
    filler = ("lorem ipsum dolor sit amet " * (40 + (k * 997) % 2000)) if k % 3 else ""
    return f"# Output of op {k}\n\n{filler}\n{op_marker(run, k)}\n"


def op_path(sid: str, k: int) -> str:
    kind, phase, arg = op_spec(k)
    base = f"projects/{P}/sessions/{sid}"
    folder = {1: "phase_1_concept", 2: "phase_2_market_research"}.get(phase or 0, "")
    if kind == "create":
        return f"{base}/session_manifest.md"
    if kind == "output":
        return f"{base}/{folder}/{arg}.md"
    if kind == "checkpoint":
        return f"{base}/{folder}/checkpoint.md"
    return f"{base}/{folder}/user_feedback.md"


KIND_TRAILER = {
    "create": "session",
    "output": "agent_output",
    "checkpoint": "checkpoint",
    "feedback": "user_feedback",
}


def run_op(store: Store, sid: str, run: int, k: int) -> None:
    kind, phase, arg = op_spec(k)
    marker = op_marker(run, k)
    if kind == "create":
        store.create_session(P, sid, mode="full", idea=marker)
        return
    session = store.session(P, sid)
    assert phase is not None and arg is not None
    if kind == "output":
        session.save_agent_output(phase, arg, op_content(run, k), input_tokens=k)
    elif kind == "checkpoint":
        session.save_checkpoint(phase, status=arg, inputs=[marker])
    else:
        session.save_feedback(phase, action=arg, comments=marker, reviewer=RUNNER_ID)


def _emit(fd: int, line: str) -> None:
    os.write(fd, (line + "\n").encode())


def _writer_child(
    root: Path, sid: str, run: int, wfd: int, max_ops: int = 150, *, finish: bool = False
) -> None:
    """The body of a forked crash-run writer (never returns).

    Before op k it writes ``S k <HEAD>``, after it ``D k <HEAD>`` (one writer at a time:
    that HEAD is the op's own commit).  After ``max_ops`` it exits 0 if ``finish``, else 3.
    """
    try:
        store = Store.open(root)
        for k in range(max_ops):
            _emit(wfd, f"S {k} {store.git.head()}")
            run_op(store, sid, run, k)
            _emit(wfd, f"D {k} {store.git.head()}")
        store.close()
        if finish:
            os._exit(0)
        _emit(wfd, "X kill point never reached")
        os._exit(3)
    except BaseException:
        with contextlib.suppress(BaseException):
            _emit(wfd, "E " + traceback.format_exc().replace("\n", " | "))
        os._exit(4)


def _fork(body: Callable[[int], None]) -> tuple[int, int]:
    """Fork; the child runs ``body(write_fd)`` and never returns. Returns (pid, read_fd)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(rfd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            body(wfd)
        finally:
            os._exit(5)
    os.close(wfd)
    return pid, rfd


def _reap(pid: int, rfd: int, timeout: float = 120.0) -> tuple[int, list[str]]:
    """Wait for the child (killing it after ``timeout``); return (wait status, its lines)."""
    deadline = time.monotonic() + timeout
    chunks = []
    os.set_blocking(rfd, False)
    while True:
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(rfd, 65536):
                chunks.append(chunk)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.002)
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(rfd, 65536):
            chunks.append(chunk)
    os.close(rfd)
    return status, b"".join(chunks).decode("utf-8", "replace").splitlines()


def _killed(status: int) -> bool:
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _visible(root: Path, rev: str, sid: str, run: int, k: int) -> bool:
    """Does ``rev`` hold op k's own effect (its marker in the file it writes)?"""
    proc = subprocess.run(
        ["git", "show", f"{rev}:{op_path(sid, k)}"],
        cwd=str(root),
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0 and op_marker(run, k).encode() in proc.stdout


def _verify_after_crash(
    outcome: Outcome,
    root: Path,
    sid: str,
    run: int,
    start_head: str,
    lines: list[str],
    label: str,
    known: frozenset[str] = frozenset(),
) -> None:
    """Recover (next writer), then: invariants, done ops kept, op in flight all or nothing,
    and one more save works (leftovers in ``known`` date from earlier runs)."""
    started: dict[int, str] = {}
    done: dict[int, str] = {}
    for line in lines:
        tag, _, rest = line.partition(" ")
        if tag in ("S", "D"):
            k, _, sha = rest.partition(" ")
            (started if tag == "S" else done)[int(k)] = sha
        elif tag in ("E", "X"):
            outcome.fail(f"{label}: writer: {rest[:500]}")
    with Store.open(root) as store, store.writing():
        pass  # the next writer recovers
    problems = invariants(root, known=known)
    outcome.failures += [f"{label}: after recovery: {p}" for p in problems]
    history = set(run_git(root, "rev-list", "HEAD").split())
    lost = [k for k, sha in done.items() if sha not in history]
    if lost:
        outcome.lost += len(lost)
        outcome.fail(f"{label}: completed ops {lost} are not in the history any more")
    now = git_head(root)
    inflight = sorted(set(started) - set(done))
    if not inflight:
        expected = done[max(done)] if done else start_head
        if now != expected:
            outcome.fail(
                f"{label}: no op in flight, but HEAD moved from {expected[:10]} to {now[:10]}"
            )
    else:
        k = inflight[-1]
        h0 = started[k]
        h0 = start_head if h0 == "None" else h0
        kind = op_spec(k)[0]
        if now == h0:
            if _visible(root, "HEAD", sid, run, k):  # pragma: no cover - impossible
                outcome.fail(f"{label}: op {k} visible but HEAD did not move")
        else:
            parent = run_git(root, "rev-parse", f"{now}^", check=False).strip()
            if parent != h0:
                outcome.fail(f"{label}: op {k} ({kind}): HEAD is not one commit after {h0[:10]}")
            if not _visible(root, "HEAD", sid, run, k):
                outcome.fail(f"{label}: op {k} ({kind}): HEAD moved but lacks the op's content")
            kinds = log_records(root)[-1].get("Mdsessions-Kind")
            if kinds != KIND_TRAILER[kind]:
                outcome.fail(f"{label}: op {k} ({kind}): last commit is a {kinds!r}")
        if not problems and now != h0:
            # wholly present: the working tree equals HEAD (status clean) and holds the op
            text = (root / op_path(sid, k)).read_bytes()
            if op_marker(run, k).encode() not in text:
                outcome.fail(f"{label}: op {k} ({kind}) committed but not in the working tree")
    # One more save: the store keeps working.
    with Store.open(root) as store:
        try:
            session = store.session(P, sid)
        except MdsessionsError:
            store.create_session(P, sid, mode="full", idea="after the crash")
            session = store.session(P, sid)
        session.save_agent_output(1, "after_crash", f"after crash {run}\n")
        back = session.output(1, "after_crash")
        if back is None or back.content != f"after crash {run}\n":
            outcome.fail(f"{label}: the save after the crash did not read back")
    outcome.failures += [
        f"{label}: after one more save: {p}" for p in invariants(root, known=known)
    ]


def _kill_writer(
    root: Path, point: KillPoint, sid: str, run: int, rng: random.Random
) -> tuple[list[str], list[str]]:
    """One crash: fork a writer, let it die at ``point``; return (its lines, problems)."""
    problems = []
    n = rng.randint(1, point.max_n)
    if point.target == "recovery":
        # The 1st writer dies after the branch moved; the 2nd dies while recovering it.
        first = KillPoint("", "cas", "after")
        second = KillPoint("", "replace", "before", "worktree")
        m = rng.randint(1, 2)

        def writer(w: int) -> None:
            _install_kill(first, n)
            _writer_child(root, sid, run, w)

        def recover_and_die(w: int) -> None:
            _install_kill(second, m)
            with Store.open(root) as store, store.writing():
                pass
            os._exit(0)

        status, lines = _reap(*_fork(writer))
        if not _killed(status):
            problems.append(f"first writer not killed ({status}): {lines[-1:]}")
        _reap(*_fork(recover_and_die))
        return lines, problems

    def body(w: int) -> None:
        if point.target == "random":
            _writer_child(root, sid, run, w, max_ops=10_000)
        _install_kill(point, n)
        _writer_child(root, sid, run, w)

    pid, rfd = _fork(body)
    if point.target == "random":
        time.sleep(rng.uniform(0.0, 0.4))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    status, lines = _reap(pid, rfd)
    if not _killed(status):
        problems.append(f"writer not killed (status {status}): {lines[-1:]}")
    return lines, problems


def crash_runs(workdir: Path, name: str, runs: int | None = None, seed: int = 0) -> Outcome:
    """SIGKILL a forked writer ``runs`` times at kill point ``name``; check each recovery."""
    point = KILL_POINTS[name]
    runs = runs if runs is not None else scaled(point.full_runs, 2)
    outcome = Outcome(f"kill -9: {point.where}")
    rng = random.Random(f"{name}-{seed}")
    started = time.monotonic()
    root = workdir / f"crash-{name}"
    Store.init(root).close()
    outcome.failed_runs = 0
    for run in range(runs):
        sid = f"run-{run}"
        label = f"{name} run {run}"
        start_head = git_head(root)
        known = frozenset(leftovers(root))
        failures_before = len(outcome.failures)
        lines, problems = _kill_writer(root, point, sid, run, rng)
        outcome.failures += [f"{label}: {p}" for p in problems]
        try:
            _verify_after_crash(outcome, root, sid, run, start_head, lines, label, known)
        except Exception as exc:
            outcome.fail(f"{label}: {type(exc).__name__}: {exc}")
        outcome.runs += 1
        outcome.failed_runs += len(outcome.failures) > failures_before
    outcome.seconds = time.monotonic() - started
    return outcome


@pytest.mark.slow
@pytest.mark.parametrize("name", list(KILL_POINTS))
def test_sigkill_leaves_whole_operations_and_recovers(tmp_path: Path, name: str) -> None:
    assert_ok(crash_runs(tmp_path, name))


def test_opening_the_store_after_a_crash_recovers_stale_locks(tmp_path: Path) -> None:
    """The issue: "stale locks and temp files are recovered on the next open".

    A writer killed with ``index.lock`` written leaves the lock and the journal; a person's
    ``git add``/``git commit`` fails on that lock until something clears it.  Opening the
    store (and reading) must be enough; no mdsessions write should be needed.
    """
    root = tmp_path / "store"
    with Store.init(root) as store:
        store.create_session(P, "s", mode="full")
    point = KillPoint("", "replace", "before", "index")

    def body(w: int) -> None:
        _install_kill(point, 1)
        with Store.open(root) as store:
            store.session(P, "s").save_agent_output(1, "a", "x\n")
        os._exit(0)

    status, _ = _reap(*_fork(body))
    assert _killed(status)
    assert (root / ".git" / "index.lock").exists()  # the crash left it
    with Store.open(root) as store:
        store.sessions()
        assert store.validate() == []
    assert leftovers(root) == [], "opening the store did not recover the crashed writer"
    assert run_git(root, "status", "--porcelain") == ""
    (root / "NOTES.txt").write_text("a person's file\n")
    proc = subprocess.run(["git", "add", "NOTES.txt"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _two_writers(root: Path, run: int, rng: random.Random, count: int = 12) -> None:
    survivor_sid, victim_sid = f"survivor-{run}", f"victim-{run}"

    def survivor(w: int) -> None:
        _writer_child(root, survivor_sid, run, w, max_ops=count, finish=True)

    def victim(w: int) -> None:
        _writer_child(root, victim_sid, run, w, max_ops=10_000)

    pid_s, rfd_s = _fork(survivor)
    pid_v, rfd_v = _fork(victim)
    time.sleep(rng.uniform(0.0, 0.3))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid_v, signal.SIGKILL)
    _status_v, lines_v = _reap(pid_v, rfd_v)
    status_s, lines_s = _reap(pid_s, rfd_s)
    assert os.WIFEXITED(status_s) and os.WEXITSTATUS(status_s) == 0, (status_s, lines_s[-1:])
    with Store.open(root) as store, store.writing():
        pass
    assert invariants(root) == []
    # Two writers: the HEAD printed after an op may be the other's commit; count commits.
    records = log_records(root)
    survivor_commits = [r for r in records if r.get("Mdsessions-Session") == survivor_sid]
    assert len(survivor_commits) == count, f"run {run}: the survivor lost commits"
    victim_done = sum(line.startswith("D ") for line in lines_v)
    victim_commits = [r for r in records if r.get("Mdsessions-Session") == victim_sid]
    assert victim_done <= len(victim_commits) <= victim_done + 1, f"run {run}: victim lost"


@pytest.mark.parametrize(
    "crash", ["after-journal", "ref-moved"], ids=["before-the-branch-moved", "after-it-moved"]
)
def test_recovery_never_overwrites_a_persons_edit(tmp_path: Path, crash: str) -> None:
    """Between a crash and the next mdsessions write a person edits the file the dead writer
    was saving (and commits something else with plain git).  Recovery may finish or undo the
    dead writer's operation, but the person's unrecorded edit must survive (DESIGN: "nothing
    lost"; check_clean protects it on every normal save)."""
    root = tmp_path / "store"
    with _seeded_store(root) as store:
        rel = f"{store.session(P, 's').phase_rel(1)}/concept_expansion.md"
    point = KILL_POINTS[crash]

    def body(w: int) -> None:
        _install_kill(point, 1)
        with Store.open(root) as store:
            store.session(P, "s").save_agent_output(1, "concept_expansion", "the writer's\n")
        os._exit(0)

    status, _ = _reap(*_fork(body))
    assert _killed(status)
    path = root / rel
    mine = path.read_text(encoding="utf-8").replace("kept", "kept, and my own notes")
    path.write_text(mine, encoding="utf-8")
    (root / "NOTES.txt").write_text("unrelated\n")
    # (git add fails while the dead writer's index.lock is still there: see the test above.)
    added = subprocess.run(["git", "add", "NOTES.txt"], cwd=root, capture_output=True, check=False)
    if added.returncode == 0:
        run_git(root, "commit", "-q", "-m", "a person's own commit")
    with Store.open(root) as store:
        with contextlib.suppress(MdsessionsError):
            store.session(P, "s").save_agent_output(1, "another", "next save\n")
    assert path.read_text(encoding="utf-8") == mine, "recovery overwrote the person's edit"


def test_a_foreign_index_lock_never_leaves_half_an_operation(tmp_path: Path) -> None:
    """A person's git (``git add -p``, an editor's git integration) holds ``index.lock``
    longer than the store's lock timeout: the save may wait and then fail, but clearly and
    without recording half of itself (DESIGN: "one commit, or nothing")."""
    root = tmp_path / "store"
    _seeded_store(root).close()
    lock = root / ".git" / "index.lock"
    lock.write_bytes(b"")  # held by "another git process"
    before = store_state(root)
    outcome = Outcome("foreign index.lock")
    with Store.open(root, lock_timeout=0.5) as store:
        attempt = _attempt(lambda: store.session(P, "s").save_agent_output(1, "late", "x\n"))
    lock.unlink()
    if attempt["raised"]:
        _unchanged_after(outcome, "index.lock held", root, before, attempt)
    else:  # pragma: no cover - waiting it out would be fine too
        outcome.failures += invariants(root)
    assert_ok(outcome)


@pytest.mark.slow
def test_kill_one_of_two_writers_the_other_finishes(tmp_path: Path) -> None:
    """A writer killed while holding the lock frees it; the other writer loses nothing."""
    root = tmp_path / "store"
    Store.init(root).close()
    rng = random.Random(7)
    for run in range(scaled(40, 3)):
        _two_writers(root, run, rng)


# ------------------------------------------------------------------------------ file-system faults


def _can_mount() -> bool:
    if os.environ.get("MDSESSIONS_RELIABILITY_NO_MOUNT") or os.geteuid() != 0:
        return False
    probe = Path(tempfile.mkdtemp(prefix="mds-mount-probe-"))
    try:
        ok = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )
        if ok:
            subprocess.run(["umount", str(probe)], capture_output=True, check=False)
        return ok
    finally:
        probe.rmdir()


CAN_MOUNT = sys.platform.startswith("linux") and _can_mount()


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _clear_error(exc: BaseException, *errnos: int) -> str | None:
    """None if ``exc`` is a clear error (names the problem and the file), else why not."""
    if isinstance(exc, MdsessionsError):
        return None
    if isinstance(exc, OSError):
        if exc.errno in errnos:  # "[Errno 28] No space left on device" (+ the file, if known)
            return None
        return f"OSError with an unexpected errno: {exc!r}"
    return f"unexpected {type(exc).__name__}: {exc}"


def _forked(
    fn: Callable[[], Any], *, user: tuple[int, int] | None = None, fsize: int | None = None
) -> Any:
    """Run ``fn()`` in a forked child (optionally as ``user`` = (uid, gid), or under
    RLIMIT_FSIZE); return its JSON-able result, or raise what it raised as AssertionError."""

    def body(w: int) -> None:
        try:
            if fsize is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            if user is not None:
                os.setgroups([])
                os.setgid(user[1])
                os.setuid(user[0])
            result = {"ok": fn()}
        except BaseException:
            result = {"crash": traceback.format_exc()}
        os.write(w, json.dumps(result).encode())
        os._exit(0)

    status, lines = _reap(*_fork(body))
    payload = json.loads("\n".join(lines) or "{}")
    if "crash" in payload:
        raise AssertionError(payload["crash"])
    return payload.get("ok")


def _attempt(action: Callable[[], Any], *errnos: int) -> dict[str, Any]:
    """Run a save that should fail; report how (for a child to send back)."""
    try:
        action()
    except BaseException as exc:
        return {
            "raised": True,
            "type": type(exc).__name__,
            "message": str(exc),
            "unclear": _clear_error(exc, *errnos),
            "where": " > ".join(f.name for f in traceback.extract_tb(exc.__traceback__)[-3:]),
        }
    return {"raised": False}


def _seeded_store(root: Path) -> Store:
    store = Store.init(root)
    session = store.create_session(P, "s", mode="full")
    session.save_agent_output(1, "concept_expansion", "kept\n")
    session.save_checkpoint(1, status="in_progress")
    return store


def _unchanged_after(
    outcome: Outcome, label: str, root: Path, before: tuple[str, str, str], attempt: dict[str, Any]
) -> None:
    if not attempt["raised"]:
        outcome.fail(f"{label}: the save did not fail")
        return
    if attempt["unclear"]:
        outcome.fail(f"{label}: unclear error: {attempt['unclear']}")
    after = store_state(root)
    if after != before:
        what = []
        if after[0] != before[0]:
            what.append(f"HEAD moved {before[0][:10]} -> {after[0][:10]}")
        if after[1] != before[1]:
            what.append(f"git status {after[1].strip()!r}")
        if after[2] != before[2] and after[1] == before[1]:
            what.append("working tree changed")
        outcome.fail(
            f"{label}: {attempt['type']} raised at {attempt['where']} but the store changed "
            f"(half-written): {'; '.join(what)}"
        )
    left = leftovers(root)
    if left:
        outcome.fail(f"{label}: left behind {left}")


def _nobody() -> tuple[int, int] | None:
    """(uid, gid) to act as so that permissions bind (root ignores them), or None."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def world_dir() -> Iterator[Path]:
    """A folder an unprivileged user can reach (pytest's tmp_path is private to root), with
    its own global git config (``safe.directory = *``) in force meanwhile."""
    path = Path(tempfile.mkdtemp(prefix="mds-reliability-"))
    path.chmod(0o755)
    config = path / "gitconfig"
    text = Path(os.environ["GIT_CONFIG_GLOBAL"]).read_text(encoding="utf-8")
    config.write_text(text + "[safe]\n\tdirectory = *\n", encoding="utf-8")
    config.chmod(0o644)
    old = os.environ["GIT_CONFIG_GLOBAL"]
    os.environ["GIT_CONFIG_GLOBAL"] = str(config)
    try:
        yield path
    finally:
        os.environ["GIT_CONFIG_GLOBAL"] = old
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def read_only(root: Path) -> Iterator[None]:
    """A read-only bind mount of the store (needs mount rights)."""
    subprocess.run(["mount", "--bind", str(root), str(root)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(root)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def fs_read_only(workdir: Path) -> Outcome:
    """Reads of a read-only store work; every write fails at once, clearly, changing nothing.

    With mount rights: a read-only bind mount (EROFS).  Without: the store stays owned by
    root and the probe runs as ``nobody`` (EACCES), or, when not root, it is chmodded
    read-only.
    """
    how = "read-only bind mount" if CAN_MOUNT else "no write permission"
    outcome = Outcome(f"read-only store ({how})")
    with world_dir() as world:
        root = world / "store"
        _seeded_store(root).close()
        before = store_state(root)
        user = None if CAN_MOUNT else _nobody()

        def probe() -> dict[str, Any]:
            with Store.open(root, lock_timeout=5) as store:
                session = store.session(P, "s")
                out = session.output(1, "concept_expansion")
                reads = {
                    "output": out.content if out else None,
                    "validate": [str(p) for p in store.validate()],
                    "log": len(store.log()),
                }
                codes = (errno.EROFS, errno.EACCES)
                started = time.monotonic()
                attempts = [
                    _attempt(lambda: session.save_agent_output(1, "new", "y\n"), *codes),
                    _attempt(lambda: session.save_checkpoint(1, status="completed"), *codes),
                    _attempt(lambda: store.create_session(P, "t"), *codes),
                ]
                seconds = time.monotonic() - started
            from click.testing import CliRunner

            from mdsessions.cli import cli

            args = ["--store", str(root), "output", f"{P}/s", "1", "cli", "-"]
            result = CliRunner().invoke(cli, args, input="from the cli\n")
            return {
                "reads": reads,
                "attempts": attempts,
                "s": seconds,
                "cli": [result.exit_code, result.stderr, type(result.exception).__name__],
            }

        chmodded: list[tuple[Path, int]] = []
        if not CAN_MOUNT and user is None:
            for path in [root, *root.rglob("*")]:
                mode = path.stat().st_mode
                chmodded.append((path, mode))
                path.chmod(mode & ~0o222)
        try:
            with read_only(root) if CAN_MOUNT else contextlib.nullcontext():
                result = _forked(probe, user=user)
        finally:
            for path, mode in reversed(chmodded):
                path.chmod(mode)
        outcome.runs = len(result["attempts"]) + 1
        if result["reads"]["output"] != "kept\n" or result["reads"]["validate"]:
            outcome.fail(f"reads of a read-only store failed: {result['reads']}")
        if result["s"] > 4:
            outcome.fail(f"refusing the writes took {result['s']:.1f} s (waited on a lock?)")
        for i, attempt in enumerate(result["attempts"]):
            _unchanged_after(outcome, f"read-only write {i}", root, before, attempt)
        code, stderr, raised = result["cli"]
        if code != 1 or not stderr.startswith("Error:") or raised != "SystemExit":
            outcome.fail(f"CLI on a read-only store: exit {code}, {raised}, {stderr[:300]!r}")
        if store_state(root) != before:
            outcome.fail("the CLI changed a read-only store")
    return outcome


def _random_text(size: int, seed: int) -> str:
    return random.Random(seed).randbytes(size // 2).hex() + "\n"


def _compressible_text(size: int, seed: int) -> str:
    return "abc " * (size // 4) + f"\n{seed}\n"


def _fill_until_full(
    outcome: Outcome, root: Path, label: str, make: Callable[[int], str], grow: Callable[[], None]
) -> None:
    """Save outputs until one fails; that save must change nothing.  Then ``grow()`` frees
    space, the next save must work and every output saved before must be intact."""
    with _seeded_store(root) as store:
        session = store.session(P, "s")
        saved: list[tuple[int, str]] = []
        for i in range(400):
            content = make(i)
            before = store_state(root)
            attempt = _attempt(
                lambda: session.save_agent_output(1, f"o{i}", content),  # noqa: B023
                errno.ENOSPC,
                errno.EFBIG,
            )
            if attempt["raised"]:
                _unchanged_after(outcome, label, root, before, attempt)
                break
            saved.append((i, content))
        else:
            outcome.fail(f"{label}: the file system never filled up")
        grow()
        try:
            session.save_agent_output(1, "after_full", "space again\n")
        except Exception as exc:
            outcome.fail(f"{label}: the save after freeing space failed: {exc!r}")
        for i, content in saved:
            out = session.output(1, f"o{i}")
            if out is None or out.content != content:
                outcome.lost += 1
                outcome.fail(f"{label}: output o{i}, saved before the disk filled, is lost")
    outcome.failures += [f"{label}: {p}" for p in invariants(root)]
    outcome.runs += 1


def _full_disk_run(outcome: Outcome, workdir: Path, label: str, make: Callable[[int], str]) -> None:
    """One fill-up on a 1 MiB tmpfs (grown to 64 MiB afterwards), or, without mount rights,
    one oversized save in a child under RLIMIT_FSIZE = 300 kB."""
    if CAN_MOUNT:
        mnt = workdir / f"full-{outcome.runs}"
        with tmpfs(mnt, "1m"):
            _fill_until_full(
                outcome,
                mnt / "store",
                label,
                make,
                lambda: subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True),
            )
        return
    root = workdir / f"full-{outcome.runs}" / "store"
    _seeded_store(root).close()
    before = store_state(root)
    content = make(0)
    while len(content) < 600_000:
        content += make(len(content))

    def save() -> dict[str, Any]:
        with Store.open(root) as store:
            return _attempt(
                lambda: store.session(P, "s").save_agent_output(1, "big", content),
                errno.EFBIG,
                errno.ENOSPC,
            )

    attempt = _forked(save, fsize=300_000)
    _unchanged_after(outcome, label, root, before, attempt)
    with Store.open(root) as store:
        session = store.session(P, "s")
        session.save_agent_output(1, "after_full", "space again\n")
        kept = session.output(1, "concept_expansion")
        if kept is None or kept.content != "kept\n":
            outcome.lost += 1
    outcome.failures += [f"{label}: {p}" for p in invariants(root)]
    outcome.runs += 1


def fs_full_disk(workdir: Path, runs: int | None = None) -> Outcome:
    """The disk fills up under saves of several sizes: in the object store (random outputs,
    incompressible) or in the working tree (repetitive outputs: small objects, big files)."""
    runs = runs if runs is not None else scaled(40, 4)
    how = "tmpfs of 1 MiB" if CAN_MOUNT else "RLIMIT_FSIZE"
    outcome = Outcome(f"full disk ({how})", failed_runs=0)
    rng = random.Random(11)
    started = time.monotonic()
    for run in range(runs):
        failures_before = len(outcome.failures)
        compressible = run % 2 == 1
        size = rng.choice([20_000, 120_000, 400_000, 2_000_000])
        kind = "repetitive" if compressible else "random"
        make = _compressible_text if compressible else _random_text
        _full_disk_run(
            outcome,
            workdir,
            f"run {run} ({kind} {size} B outputs)",
            lambda i, make=make, size=size: make(size, i),
        )
        outcome.failed_runs += len(outcome.failures) > failures_before  # type: ignore[operator]
    outcome.seconds = time.monotonic() - started
    return outcome


PERMISSION_TARGETS = {
    "phase folder": "projects/{P}/sessions/s/phase_1_concept",
    "session folder (new phase folder)": "projects/{P}/sessions/s",
    "objects folder": ".git/objects",
    "refs folder": ".git/refs/heads",
    "git folder (index.lock)": ".git",
    "mdsessions folder (journal)": ".git/mdsessions",
    "writer.lock": ".git/mdsessions/writer.lock",
}


def fs_permission_denied(workdir: Path, target: str) -> Outcome:
    """One path of the store is not writable: the save fails clearly and changes nothing."""
    outcome = Outcome(f"permission denied: {target}")
    with world_dir() as world:
        root = world / "store"
        _seeded_store(root).close()
        path = root / PERMISSION_TARGETS[target].format(P=P)
        before = store_state(root)
        user = _nobody()
        if user is not None:
            subprocess.run(["chown", "-R", f"{user[0]}:{user[1]}", str(root)], check=True)
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)

        def save() -> dict[str, Any]:
            with Store.open(root, lock_timeout=5) as store:
                session = store.session(P, "s")
                phase = 2 if target.startswith("session folder") else 1
                return _attempt(
                    lambda: session.save_agent_output(phase, "denied", "y" * 5000),
                    errno.EACCES,
                    errno.EPERM,
                )

        try:
            attempt = _forked(save, user=user)
        finally:
            path.chmod(mode)
            if user is not None:
                subprocess.run(["chown", "-R", "0:0", str(root)], check=True)
        _unchanged_after(outcome, target, root, before, attempt)
        # Permission back: the next save works and the store is sound.
        with Store.open(root) as store:
            store.session(P, "s").save_agent_output(1, "after", "allowed again\n")
        outcome.failures += [f"{target}: afterwards: {p}" for p in invariants(root)]
        outcome.runs = 1
    return outcome


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux")
def test_read_only_store(tmp_path: Path) -> None:
    assert_ok(fs_read_only(tmp_path))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux")
def test_full_disk_while_writing_objects(tmp_path: Path) -> None:
    """A 4 MB incompressible output on a 1 MiB file system: the object store fills up."""
    outcome = Outcome("full disk: objects")
    _full_disk_run(outcome, tmp_path, "4 MB random output", lambda i: _random_text(4_000_000, i))
    assert_ok(outcome)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux")
def test_full_disk_while_writing_the_working_tree(tmp_path: Path) -> None:
    """A 2 MB repetitive output: its object is a few kB, its working-tree file does not fit."""
    outcome = Outcome("full disk: working tree")
    _full_disk_run(
        outcome, tmp_path, "2 MB repetitive output", lambda i: _compressible_text(2_000_000, i)
    )
    assert_ok(outcome)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux")
def test_full_disk_fills_up_gradually(tmp_path: Path) -> None:
    assert_ok(fs_full_disk(tmp_path))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux")
@pytest.mark.parametrize("target", list(PERMISSION_TARGETS))
def test_permission_denied(tmp_path: Path, target: str) -> None:
    assert_ok(fs_permission_denied(tmp_path, target))


# ---------------------------------------------------------------------------- long-running process


def _fd_count() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def _children() -> list[str]:
    """Pid and name of every child process (zombies included), from /proc."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.rpartition(")")
        if rest.split()[1] == me:
            found.append(name + ")")
    return found


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0  # pragma: no cover


# Bounds (measured at full size, see docs/reliability.md).  "After warm-up" = from 10 % of the
# operations to the end: GitRepo's tree cache (at most 8192 trees) is still filling then.
# "Second half" = from 50 % to the end: every cache is full, so growth there is a leak.
FD_GROWTH_MAX = 0
CHILDREN_GROWTH_MAX = 0
RSS_GROWTH_MAX_MIB = 40.0
TRACED_GROWTH_MAX_MIB = 16.0
TRACED_SECOND_HALF_MAX_MIB = 4.0
SESSIONS = 5
"""The long-running process cycles through this many sessions: a steady working set."""


def _long_op(store: Store, sessions: list[Any], i: int, outcome: Outcome) -> None:
    """Operation i: 60 % saves (agent outputs, checkpoints), 40 % reads of every kind."""
    session = sessions[(i // 100) % len(sessions)]
    phase = 1 + (i // 10) % 7
    step = i % 10
    if step < 5:
        session.save_agent_output(phase, f"a{i % 5}", f"op {i}\n" + "text " * (i % 200))
    elif step == 5:
        session.save_checkpoint(phase, status="in_progress", inputs=[f"op-{i}"])
    elif step == 6:
        session.outputs([phase])
        session.manifest()
    elif step == 7:
        store.log(max_count=5)
        store.read_at("HEAD", session.manifest_rel)
    elif step == 8:
        store.unrecorded_edits()
    elif i % 100 == 9:
        problems = store.validate()
        if problems:
            outcome.fail(f"op {i}: validate: {problems[:3]}")
    else:
        session.checkpoint(phase)


def settle(store: Store) -> None:
    """Wait for the store's background maintenance (``git repack``), if one runs: its git
    process and pipes are transient, not a leak, and it races with ``git fsck``."""
    store.git.wait_for_maintenance(timeout=120)


def _sample(op: int, started: float) -> dict[str, float]:
    return {
        "op": op,
        "fds": _fd_count(),
        "children": len(_children()),
        "rss_mib": _rss_kib() / 1024,
        "traced_mib": tracemalloc.get_traced_memory()[0] / 2**20,
        "elapsed_s": time.monotonic() - started,
    }


def long_running(workdir: Path, ops: int | None = None) -> Outcome:
    """``ops`` mixed operations in this process on a steady set of sessions; open file
    handles, child processes, RSS and traced Python memory sampled every 10 %."""
    ops = ops if ops is not None else scaled(10_000, 300)
    outcome = Outcome(f"long-running process: {ops} operations")
    started = time.monotonic()
    fds0, children0 = _fd_count(), len(_children())
    tracemalloc.start()
    store = Store.init(workdir / "long")
    samples: dict[int, dict[str, float]] = {}
    warm, half = max(30, ops // 10), ops // 2
    snapshot_half: tracemalloc.Snapshot | None = None
    try:
        sessions = [store.create_session(P, f"long-{n}", mode="full") for n in range(SESSIONS)]
        for i in range(ops):
            _long_op(store, sessions, i, outcome)
            if i + 1 in (warm, half, ops) or (i + 1) % max(1, ops // 10) == 0:
                settle(store)
                if i + 1 == half:  # first, so that the sample includes the snapshot's memory
                    snapshot_half = tracemalloc.take_snapshot()
                samples[i + 1] = _sample(i + 1, started)
        assert snapshot_half is not None
        top = tracemalloc.take_snapshot().compare_to(snapshot_half, "lineno")[:5]
        outcome.figures["top growth, second half"] = [
            f"{stat.traceback[0].filename.rsplit('/', 2)[-1]}:{stat.traceback[0].lineno} "
            f"{stat.size_diff / 2**10:+.0f} KiB"
            for stat in top
        ]
    finally:
        store.close()
        tracemalloc.stop()

    def growth(since: int) -> dict[str, float]:
        return {k: samples[ops][k] - samples[since][k] for k in samples[ops] if k != "op"}

    after_warm_up, second_half = growth(warm), growth(half)
    outcome.figures.update(
        {
            "samples": [samples[k] for k in sorted(samples)],
            "growth after warm-up": after_warm_up,
            "growth in the second half": second_half,
            "peak": {
                k: max(s[k] for s in samples.values())
                for k in ("fds", "children", "rss_mib", "traced_mib")
            },
            "after close": {"fds": _fd_count() - fds0, "children": len(_children()) - children0},
            "ms per op": 1000 * (time.monotonic() - started) / ops,
        }
    )
    if after_warm_up["fds"] > FD_GROWTH_MAX:
        outcome.fail(f"open file handles grew by {after_warm_up['fds']} after the warm-up")
    if after_warm_up["children"] > CHILDREN_GROWTH_MAX:
        outcome.fail(f"child processes grew by {after_warm_up['children']}: {_children()}")
    if after_warm_up["rss_mib"] > RSS_GROWTH_MAX_MIB:
        outcome.fail(f"RSS grew by {after_warm_up['rss_mib']:.1f} MiB after the warm-up")
    if after_warm_up["traced_mib"] > TRACED_GROWTH_MAX_MIB:
        outcome.fail(f"traced memory grew by {after_warm_up['traced_mib']:.1f} MiB")
    if second_half["traced_mib"] > TRACED_SECOND_HALF_MAX_MIB:
        outcome.fail(
            f"traced memory grew by {second_half['traced_mib']:.1f} MiB in the second half: "
            f"{outcome.figures['top growth, second half']}"
        )
    if _fd_count() > fds0:
        outcome.fail(f"{_fd_count() - fds0} file handles still open after close()")
    if len(_children()) > children0:
        outcome.fail(f"child processes left after close(): {_children()}")
    outcome.failures += invariants(workdir / "long")
    outcome.runs = ops
    outcome.seconds = time.monotonic() - started
    return outcome


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_long_running_process_does_not_leak(tmp_path: Path) -> None:
    assert_ok(long_running(tmp_path))
