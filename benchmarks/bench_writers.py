#!/usr/bin/env python3
"""bench_writers.py - the seed-003 path beside the git CLI, 8 concurrent writers, durable mode.

Three measurements, each taken as ratios within one run (the machine is shared and noisy):

(a) **The seed-003 pair**: ``CheckpointManager.save_agent_output`` + ``save_checkpoint`` (two
    commits through the facade) against writing the same two files + ``git add`` + ``git
    commit`` (the git CLI), on stores of 100 and 10,000 files (``bench_checkpoint.build_base``).
    The two run **interleaved** (one pair each per round, the order alternating), which is how
    a runner meets them: other processes touch the repository between two saves. Also timed:
    the same pair **alone in a loop** (nothing between two saves), and the ratio of the two.
(b) **8 writer processes** (``bench.concurrent_writers``) on different sessions of a
    10,000-file store (``bench.build_store``): checkpoints per second, 5 runs, median and spread.
(c) **durable mode** (``durable=True``: fsync of objects, refs, index, files) against a normal
    checkpoint, interleaved on copies of one 10,000-file store: the ratio of medians.

    python benchmarks/bench_writers.py --quick      # ~2-3 min
    python benchmarks/bench_writers.py              # ~6-10 min
    python benchmarks/bench_writers.py --profile    # + cProfile: interleaved vs lone pair
    python benchmarks/bench_writers.py --baseline-checkout /work/main   # (b), (c) beside it

``measure(workdir, quick)`` returns the figures as JSON-able data (for ``benchmarks/bench.py``).
Isolation as in ``bench_checkpoint.py`` (private ``GIT_CONFIG_GLOBAL``, no ``GIT_*`` leaks).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402 - the folder of this script, added above
from bench_checkpoint import (  # noqa: E402
    AGENT,
    BASELINE,
    GitCliMethod,
    Method,
    Payload,
    agent_content,
    build_base,
    commit_count,
    copy_repo,
    git,
    load_mdsessions,
    percentile,
    setup_env,
    status_porcelain,
    table,
)

PROJECT = "bench"
SESSION = "s-seed"
PHASE = 1
TARGET_PAIR = 0.5  # the seed pair <= 0.5x the git CLI at 100 files, interleaved
TARGET_WRITERS = 150.0  # checkpoints/s, median of 5 runs
TARGET_DURABLE = 3.0  # durable <= 3x a normal checkpoint


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class SeedPairMethod(Method):
    """``CheckpointManager.save_agent_output`` + ``save_checkpoint``: two commits."""

    def __init__(self, root: Path) -> None:
        super().__init__("seed-003 pair", root, 2, ("save_agent_output", "save_checkpoint"))
        from mdsessions import CheckpointManager

        self.manager = CheckpointManager(root / "projects")
        self.manager.create_session(PROJECT, SESSION, user_id="bench", execution_mode="mvp")

    def op(self, i: int) -> None:
        t0 = time.perf_counter_ns()
        self.agent_file = self.manager.save_agent_output(
            PROJECT,
            SESSION,
            PHASE,
            AGENT,
            agent_content(i),
            model="bench-model",
            input_tokens=1000 + i,
            output_tokens=500 + i,
            duration=1.5,
        )
        t1 = time.perf_counter_ns()
        self.ckpt_file = self.manager.save_checkpoint(PROJECT, SESSION, PHASE, "in_progress")
        t2 = time.perf_counter_ns()
        self.parts.append((t1 - t0, t2 - t1))

    def last_round_check(self, i: int) -> bool:
        rel = self.agent_file.relative_to(self.root).as_posix()
        return f"Round {i}.".encode() in git(self.root, "cat-file", "blob", f"HEAD:{rel}")

    def close(self) -> None:
        self.manager.close()


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _spread(xs: list[float]) -> dict[str, float]:
    return {"median": _median(xs), "p25": percentile(xs, 0.25), "p75": percentile(xs, 0.75)}


def seed_pair(
    workdir: Path, nfiles: int, rounds: int, lone: int, profile: bool = False
) -> dict[str, Any]:
    """(a) at one size: interleaved pair vs git CLI, then each alone in a loop."""
    store_mod = load_mdsessions()
    base = workdir / f"seed-base-{nfiles}"
    log(f"seed pair, {nfiles:,} files: building")
    build_base(base, nfiles, min(nfiles, 2_000), store_mod)
    md_root, cli_root = workdir / f"seed-{nfiles}-mds", workdir / f"seed-{nfiles}-cli"
    copy_repo(base, cli_root)
    if md_root.exists():
        shutil.rmtree(md_root)
    base.rename(md_root)
    git(md_root, "update-index", "-q", "--refresh")
    mds = SeedPairMethod(md_root)
    mds.op(0)  # calibration: the exact bytes of the two files
    payload = Payload(
        mds.agent_file.relative_to(md_root).as_posix(),
        mds.agent_file.read_bytes(),
        mds.ckpt_file.relative_to(md_root).as_posix(),
        mds.ckpt_file.read_bytes(),
    )
    cli = GitCliMethod(cli_root, payload)
    for m in (mds, cli):
        m.start_commits = commit_count(m.root)
    i = 1
    for _ in range(5):  # warm-up
        for m in (mds, cli):
            m.op(i)
            m.ops += 1
        i += 1
    samples: dict[str, list[float]] = {mds.name: [], cli.name: []}
    paired: list[float] = []
    prof_inter = cProfile.Profile() if profile else None
    mds.parts.clear()
    for r in range(rounds):
        order = (mds, cli) if r % 2 == 0 else (cli, mds)
        took = {}
        for m in order:
            if m is mds and prof_inter:
                prof_inter.enable()
            t0 = time.perf_counter_ns()
            m.op(i)
            took[m.name] = (time.perf_counter_ns() - t0) / 1e6
            if m is mds and prof_inter:
                prof_inter.disable()
            m.ops += 1
        i += 1
        for k, v in took.items():
            samples[k].append(v)
        paired.append(took[mds.name] / took[cli.name])
    inter_parts = [p for p in mds.parts]
    # Alone in a loop: the pair back to back, then the git CLI back to back.
    alone: dict[str, list[float]] = {mds.name: [], cli.name: []}
    prof_lone = cProfile.Profile() if profile else None
    for m in (mds, cli):
        for _ in range(lone):
            if m is mds and prof_lone:
                prof_lone.enable()
            t0 = time.perf_counter_ns()
            m.op(i)
            alone[m.name].append((time.perf_counter_ns() - t0) / 1e6)
            if m is mds and prof_lone:
                prof_lone.disable()
            m.ops += 1
            i += 1
    # What in the git CLI's op slows the next pair down? The pair after, in turn, nothing,
    # a process that writes nothing (`git --version`), and plain file writes the size of
    # what the git CLI writes (its index, twice), in another folder. In blocks of 4 rounds
    # per condition, cycling, the first round of each block left out (what the previous
    # condition left behind, e.g. data still being written back, settles in it).
    scratch = workdir / f"seed-{nfiles}-scratch"
    scratch.mkdir(exist_ok=True)
    index_bytes = (cli_root / ".git" / "index").stat().st_size
    blob = os.urandom(max(4096, index_bytes))

    def spawn() -> None:
        git(None, "--version")

    def writes() -> None:
        for k in range(2):
            tmp = scratch / f"index.{k}.tmp"
            tmp.write_bytes(blob)
            tmp.replace(scratch / f"index.{k}")

    before_ops: dict[str, Any] = {"nothing": None, "git --version": spawn, "file writes": writes}
    after: dict[str, list[float]] = {k: [] for k in before_ops}
    block = 4
    for b in range(max(1, lone // (block - 1))):
        for name, fn in before_ops.items() if b % 2 == 0 else reversed(before_ops.items()):
            for k in range(block):
                if fn is not None:
                    fn()
                t0 = time.perf_counter_ns()
                mds.op(i)
                if k:
                    after[name].append((time.perf_counter_ns() - t0) / 1e6)
                mds.ops += 1
                i += 1
    shutil.rmtree(scratch, ignore_errors=True)
    checks = {
        "content_ok": mds.last_round_check(i - 1),
        "commits_ok": commit_count(md_root) == mds.start_commits + 2 * mds.ops
        and commit_count(cli_root) == cli.start_commits + cli.ops,
        "status_clean": not status_porcelain(md_root).strip(),
    }
    mds.close()
    out: dict[str, Any] = {
        "files": nfiles,
        "rounds": rounds,
        "interleaved_ms": {k: _spread(v) for k, v in samples.items()},
        "alone_ms": {k: _spread(v) for k, v in alone.items()},
        "ratio_interleaved": _median(samples[mds.name]) / _median(samples[cli.name]),
        "paired_ratio": _spread(paired),
        "ratio_alone": _median(alone[mds.name]) / _median(alone[cli.name]),
        "interleaved_over_alone": _median(samples[mds.name]) / _median(alone[mds.name]),
        "pair_after_ms": {k: _spread(v) for k, v in after.items()},
        "parts_ms": {
            name: _median([p[k] / 1e6 for p in inter_parts])
            for k, name in enumerate(mds.part_names)
        },
        "checks": checks,
    }
    if profile and prof_inter and prof_lone:
        out["profile"] = {
            "interleaved": _profile_text(prof_inter),
            "alone": _profile_text(prof_lone),
        }
    shutil.rmtree(md_root, ignore_errors=True)
    shutil.rmtree(cli_root, ignore_errors=True)
    return out


def _profile_text(prof: cProfile.Profile) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(40)
    return buf.getvalue()


def _big_store(workdir: Path, nfiles: int, quick: bool) -> Path:
    store_mod = load_mdsessions()
    templates = bench.session_templates(store_mod, workdir)
    root = workdir / f"writers-base-{nfiles}"
    log(f"building a {nfiles:,}-file store")
    bench.build_store(
        root,
        max(1, nfiles // bench.FILES_PER_SESSION),
        2_000 if quick else 5_000,
        templates,
        store_mod,
    )
    return root


def writer_main(argv: list[str]) -> int:
    """Child process: ``bench.writer_main``, also timing its CPU and the writer lock it held.

    The lock's hold time is taken by wrapping ``WriterLock.acquire``/``release`` (the flock
    under ``GitRepo.writer``); CPU time is the process's user + system time in the loop.
    """
    from mdsessions.git import lock as lock_mod

    held: list[float] = []
    since: list[float] = []
    acquire, release = lock_mod.WriterLock.acquire, lock_mod.WriterLock.release

    # MDSESSIONS_BENCH_PROFILE_LOCKED=<file>: writer 0's cProfile of what it does under the lock.
    profile_to = os.environ.get("MDSESSIONS_BENCH_PROFILE_LOCKED")
    profiler = cProfile.Profile() if profile_to and argv[1].startswith("writer-0-") else None

    def timed_acquire(self: Any, timeout: float) -> None:
        acquire(self, timeout)
        since.append(time.perf_counter())
        if profiler is not None:
            profiler.enable()

    def timed_release(self: Any) -> None:
        if profiler is not None:
            profiler.disable()
        if since:
            held.append(time.perf_counter() - since.pop())
        release(self)

    lock_mod.WriterLock.acquire = timed_acquire  # type: ignore[method-assign]
    lock_mod.WriterLock.release = timed_release  # type: ignore[method-assign]
    root, sid, n, start_at = argv[0], argv[1], int(argv[2]), float(argv[3])
    store_mod = load_mdsessions()
    with store_mod.Store.open(root) as store:
        session = store.create_session(bench.PROJECT, sid, mode="mvp")
        time.sleep(max(0.0, start_at - time.time()))
        held.clear()
        cpu0 = os.times()
        begin = time.time()
        for i in range(n):
            session.save_checkpoint(
                1,
                status="in_progress",
                outputs=[
                    {"agent": bench.AGENT, "content": bench.agent_text(sid, i), "input_tokens": i}
                ],
            )
        end = time.time()
        cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    if profiler is not None and profile_to:
        profiler.dump_stats(profile_to)
    print(json.dumps({"begin": begin, "end": end, "n": n, "cpu_s": cpu, "held_s": sum(held)}))
    return 0


def concurrent_writers(root: Path, per_writer: int, checkout: Path | None = None) -> dict[str, Any]:
    """``bench.concurrent_writers`` with this script's writer (CPU and lock hold time too).

    Args:
        root: The store.
        per_writer: Checkpoints each writer makes.
        checkout: Import mdsessions from this checkout in the writers (default: as this
            process does).
    """
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(checkout), env.get("PYTHONPATH", "")])
    before = commit_count(root)
    start_at = time.time() + 4.0  # every child has imported and created its session by then
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--writer",
                str(root),
                f"writer-{w}-{int(start_at)}",
                str(per_writer),
                repr(start_at),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for w in range(bench.WRITERS)
    ]
    results = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"writer failed: {err.decode()[-1000:]}")
        results.append(json.loads(out))
    wall = max(r["end"] for r in results) - start_at
    total = sum(r["n"] for r in results)
    return {
        "checkpoints": total,
        "wall_s": wall,
        "per_s": total / wall,
        "cpu_ms_per_checkpoint": 1000 * sum(r["cpu_s"] for r in results) / total,
        "lock_held_ms_per_checkpoint": 1000 * sum(r["held_s"] for r in results) / total,
        "commits_ok": commit_count(root) == before + total + bench.WRITERS,  # + one create each
        "status_clean": not status_porcelain(root).strip(),
    }


def writers(
    base: Path, workdir: Path, runs: int, per_writer: int, baseline: Path | None = None
) -> dict[str, Any]:
    """(b): 8 writer processes on a fresh copy of ``base`` per run.

    With ``baseline`` (another checkout of mdsessions), a run of it alternates with each
    run of this one, so that both meet the same machine load; the ratio of medians is
    reported beside the figures.
    """
    sides: dict[str, Path | None] = {"this": None}
    if baseline is not None:
        sides["baseline"] = baseline
    figures: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    held: dict[str, list[float]] = {k: [] for k in sides}
    checks = []
    for r in range(runs):
        order = list(sides.items())
        if r % 2:
            order.reverse()
        for side, checkout in order:
            root = workdir / "writers-run"
            copy_repo(base, root)
            res = concurrent_writers(root, per_writer, checkout)
            figures[side].append(res["per_s"])
            cpu[side].append(res["cpu_ms_per_checkpoint"])
            held[side].append(res["lock_held_ms_per_checkpoint"])
            checks.append(res["commits_ok"] and res["status_clean"])
            log(
                f"  writers run {r + 1} ({side}): {res['per_s']:.0f} checkpoints/s, "
                f"CPU {res['cpu_ms_per_checkpoint']:.1f} ms and lock held "
                f"{res['lock_held_ms_per_checkpoint']:.1f} ms per checkpoint"
            )
            shutil.rmtree(root, ignore_errors=True)
    out: dict[str, Any] = {
        "writers": bench.WRITERS,
        "per_writer": per_writer,
        "runs": figures["this"],
        "median_per_s": _median(figures["this"]),
        "min_per_s": min(figures["this"]),
        "max_per_s": max(figures["this"]),
        "cpu_ms_per_checkpoint": _median(cpu["this"]),
        "lock_held_ms_per_checkpoint": _median(held["this"]),
        "checks_ok": all(checks),
    }
    if baseline is not None:
        out["baseline"] = {
            "checkout": str(baseline),
            "runs": figures["baseline"],
            "median_per_s": _median(figures["baseline"]),
            "cpu_ms_per_checkpoint": _median(cpu["baseline"]),
            "lock_held_ms_per_checkpoint": _median(held["baseline"]),
        }
        out["ratio_to_baseline"] = out["median_per_s"] / out["baseline"]["median_per_s"]
    return out


def durable(base: Path, workdir: Path, rounds: int) -> dict[str, Any]:
    """(c): durable vs normal checkpoint, interleaved on copies of ``base``.

    Where the checkout has batched flushes (``fsutil.durable_batch``), a third store runs
    durable with the batching off (``sync_file_range`` taken away: one ``fsync`` per file,
    as before), in the same rounds: the batching's own effect, measured side by side.
    """
    store_mod = load_mdsessions()
    try:
        from mdsessions.git import fsutil
    except ImportError:  # a checkout from before the git package
        fsutil = None
    kinds = [("normal", False), ("durable", True)]
    if fsutil is not None and getattr(fsutil, "_sync_file_range", None) is not None:
        kinds.append(("durable, fsync per file", True))
    libs = []
    for name, dur in kinds:
        root = workdir / f"durable-{len(libs)}"
        copy_repo(base, root)
        libs.append(bench.LibraryMethod(name, root, store_mod, durable=dur))
    batch_fn = getattr(fsutil, "_sync_file_range", None)

    def op(lib: Any, i: int) -> None:
        per_file = lib.name == "durable, fsync per file"
        if per_file and fsutil is not None:
            fsutil._sync_file_range = None
        try:
            lib.op(i)
        finally:
            if per_file and fsutil is not None:
                fsutil._sync_file_range = batch_fn

    for lib in libs:
        op(lib, 0)
    samples: dict[str, list[float]] = {lib.name: [] for lib in libs}
    paired = []
    for r in range(rounds):
        order = libs if r % 2 == 0 else libs[::-1]
        took = {}
        for lib in order:
            t0 = time.perf_counter_ns()
            op(lib, r + 1)
            took[lib.name] = (time.perf_counter_ns() - t0) / 1e6
        for k, v in took.items():
            samples[k].append(v)
        paired.append(took["durable"] / took["normal"])
    for lib in libs:
        lib.close()
        shutil.rmtree(lib.root, ignore_errors=True)
    out: dict[str, Any] = {
        "rounds": rounds,
        "ms": {k: _spread(v) for k, v in samples.items()},
        "ratio": _median(samples["durable"]) / _median(samples["normal"]),
        "paired_ratio": _spread(paired),
    }
    if "durable, fsync per file" in samples:
        out["ratio_fsync_per_file"] = _median(samples["durable, fsync per file"]) / _median(
            samples["normal"]
        )
    return out


def durable_child(argv: list[str]) -> int:
    """Child process: :func:`durable` on ``argv`` = base store, workdir, rounds; prints JSON."""
    print(json.dumps(durable(Path(argv[0]), Path(argv[1]), int(argv[2]))))
    return 0


def durable_baseline(base: Path, workdir: Path, rounds: int, checkout: Path) -> dict[str, Any]:
    """(c) with mdsessions imported from another checkout (a child process)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(checkout), env.get("PYTHONPATH", "")])
    scratch = workdir / "durable-baseline"
    scratch.mkdir(exist_ok=True)
    script = str(Path(__file__).resolve())
    args = [sys.executable, script, "--durable-child", str(base), str(scratch), str(rounds)]
    proc = subprocess.run(args, capture_output=True, env=env, check=True)
    shutil.rmtree(scratch, ignore_errors=True)
    out: dict[str, Any] = json.loads(proc.stdout)
    out["checkout"] = str(checkout)
    return out


def measure(
    workdir: Path,
    quick: bool,
    *,
    profile: bool = False,
    parts: str = "abc",
    baseline: Path | None = None,
) -> dict[str, Any]:
    """Run (a), (b) and (c) in ``workdir``; return the figures (JSON-able).

    Args:
        workdir: A scratch folder (created; the stores are built in it).
        quick: Fewer rounds and runs (~2-3 min instead of ~6-10).
        profile: Add cProfile texts of the seed pair, interleaved and alone (100 files).
        parts: Which of ``a``, ``b``, ``c`` to run.
        baseline: Another checkout of mdsessions (e.g. the main branch) to run (b), runs
            alternating, and (c) beside this one.

    Returns:
        ``{"seed_pair": [per size], "writers": {...}, "durable": {...}}``.
    """
    setup_env(workdir)
    res: dict[str, Any] = {}
    if "a" in parts:
        sizes = [100, 2_000] if quick else [100, 10_000]
        res["seed_pair"] = [
            seed_pair(workdir, n, 30 if quick else 80, 15 if quick else 40, profile and n == 100)
            for n in sizes
        ]
    if "b" in parts or "c" in parts:
        base = _big_store(workdir, 10_000, quick)
        if "b" in parts:
            log("8 writers, 5 runs")
            res["writers"] = writers(base, workdir, 5, 25 if quick else 60, baseline)
        if "c" in parts:
            log("durable vs normal, interleaved")
            res["durable"] = durable(base, workdir, 30 if quick else 80)
            if baseline is not None:
                log("durable vs normal, baseline checkout")
                res["durable"]["baseline"] = durable_baseline(
                    base, workdir, 30 if quick else 80, baseline
                )
    return res


def render(res: dict[str, Any]) -> str:
    out = ["# Writers: the seed-003 path, 8 processes, durable mode", ""]
    if "seed_pair" in res:
        rows = []
        for r in res["seed_pair"]:
            inter, alone = r["interleaved_ms"], r["alone_ms"]
            pr = r["paired_ratio"]
            rows.append(
                [
                    f"{r['files']:,}",
                    f"{inter['seed-003 pair']['median']:.1f}",
                    f"{inter[BASELINE]['median']:.1f}",
                    f"**{r['ratio_interleaved']:.2f}×** (paired {pr['p25']:.2f}–{pr['p75']:.2f})",
                    f"{alone['seed-003 pair']['median']:.1f}",
                    f"{alone[BASELINE]['median']:.1f}",
                    f"{r['ratio_alone']:.2f}×",
                    f"{r['interleaved_over_alone']:.2f}×",
                    "ok" if all(r["checks"].values()) else f"FAILED {r['checks']}",
                ]
            )
        out += [
            "## (a) seed-003 pair (2 commits) vs git CLI add + commit, ms (medians)",
            "",
            table(
                [
                    "files",
                    "pair, interleaved",
                    "git CLI, interleaved",
                    f"ratio (target ≤ {TARGET_PAIR}× at 100)",
                    "pair alone",
                    "git CLI alone",
                    "ratio alone",
                    "pair: interleaved / alone",
                    "checks",
                ],
                rows,
            ),
            "",
            "The pair right after nothing, a process that writes nothing, and plain file "
            "writes the size of the git CLI's (its index, twice), in blocks cycling in one "
            "loop (ms, medians):",
            "",
            table(
                ["files", *res["seed_pair"][0]["pair_after_ms"]],
                [
                    [
                        f"{r['files']:,}",
                        *(f"{v['median']:.1f}" for v in r["pair_after_ms"].values()),
                    ]
                    for r in res["seed_pair"]
                ],
            ),
            "",
        ]
    if "writers" in res:
        w = res["writers"]
        out += [
            f"## (b) {w['writers']} writer processes × {w['per_writer']} checkpoints, 10,000 files",
            "",
            f"runs: {', '.join(f'{x:.0f}' for x in w['runs'])} checkpoints/s; "
            f"**median {w['median_per_s']:.0f}/s** "
            f"(range {w['min_per_s']:.0f}–{w['max_per_s']:.0f}; target ≥ {TARGET_WRITERS:.0f}); "
            f"per checkpoint: CPU {w['cpu_ms_per_checkpoint']:.1f} ms, writer lock held "
            f"{w['lock_held_ms_per_checkpoint']:.1f} ms (medians of the runs); "
            f"checks {'ok' if w['checks_ok'] else 'FAILED'}",
            "",
        ]
        if "baseline" in w:
            b = w["baseline"]
            out += [
                f"baseline ({b['checkout']}), runs alternating with these: "
                f"{', '.join(f'{x:.0f}' for x in b['runs'])} checkpoints/s, median "
                f"{b['median_per_s']:.0f}/s (CPU {b['cpu_ms_per_checkpoint']:.1f} ms, lock held "
                f"{b['lock_held_ms_per_checkpoint']:.1f} ms per checkpoint): "
                f"**{w['ratio_to_baseline']:.2f}×** the baseline's throughput",
                "",
            ]
    if "durable" in res:
        d = res["durable"]
        pr = d["paired_ratio"]
        out += [
            "## (c) durable vs normal checkpoint, 10,000 files, interleaved",
            "",
            f"normal {d['ms']['normal']['median']:.1f} ms, "
            f"durable {d['ms']['durable']['median']:.1f} ms: **{d['ratio']:.2f}×** "
            f"(paired {pr['p25']:.2f}–{pr['p75']:.2f}; target ≤ {TARGET_DURABLE:.0f}×)",
            "",
        ]
        if "ratio_fsync_per_file" in d:
            out += [
                "same rounds, durable with the batching off (one fsync per file, as before): "
                f"{d['ms']['durable, fsync per file']['median']:.1f} ms, "
                f"**{d['ratio_fsync_per_file']:.2f}×** a normal checkpoint",
                "",
            ]
        if "baseline" in d:
            b = d["baseline"]
            out += [
                f"baseline ({b['checkout']}), right after: normal "
                f"{b['ms']['normal']['median']:.1f} ms, durable {b['ms']['durable']['median']:.1f} "
                f"ms: {b['ratio']:.2f}× (paired {b['paired_ratio']['p25']:.2f}–"
                f"{b['paired_ratio']['p75']:.2f})",
                "",
            ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--writer"]:
        return writer_main(argv[1:])
    if argv[:1] == ["--durable-child"]:
        return durable_child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--parts", default="abc", help="which of a, b, c to run (default abc)")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--baseline-checkout",
        type=Path,
        help="another mdsessions checkout to run (b) and (c) beside this one",
    )
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mdsessions-bench-writers-"))
    try:
        res = measure(
            workdir,
            args.quick,
            profile=args.profile,
            parts=args.parts,
            baseline=args.baseline_checkout,
        )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    for r in res.get("seed_pair", []):
        for name, text in r.pop("profile", {}).items():
            print(f"### profile, {name}, {r['files']} files\n```\n{text}\n```\n")
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
