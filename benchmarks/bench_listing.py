#!/usr/bin/env python3
"""bench_listing.py - listing all sessions and the inbox of a large store, warm.

Target (issue "Performance at scale"): ``store.list_sessions()`` and ``store.inbox()`` of a
10,000-session store in ≤ 100 ms in-process, warm, both

* **in-process**: a later call in the process that already listed (what a long-lived
  runner or UI sees), and
* **new process**: the first call of a fresh Python process after ``Store.open`` when the
  cache under ``.mdsessions/cache/`` is warm (what every CLI command sees). Import time and
  ``Store.open`` are reported apart, as context.

The store is built by ``_stores.make_store`` (default 10,000 sessions in 10 projects, every
10th awaiting review: 1,000 inbox items) in one commit. Each implementation measured gets its
own copy of it, waits out the racy window (files older than 2 s) and warms its cache with one
untimed call; so every measured call validates the files but parses nothing.

``--compare REV`` also measures the ``mdsessions`` package as it is at git revision ``REV`` of
this repository (extracted with ``git archive``), e.g. the commit before a change: "before"
and "after" then run interleaved in the same conditions, and both must return the same
listing and inbox. Every measurement runs in a child process that imports the implementation
under test, so both are measured the same way.

    python benchmarks/bench_listing.py                        # ~1-2 min (builds the store)
    python benchmarks/bench_listing.py --compare HEAD~1       # before/after, ~3 min
    python benchmarks/bench_listing.py --sessions 2000 --reps 10 --processes 5   # quick

Prints a markdown table (median and p95 in ms of each operation, per implementation) on
stdout and progress on stderr; exits 1 if a check failed (different results, or a warm
median over the target).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _stores import make_store  # noqa: E402
from bench_checkpoint import percentile, setup_env, sysinfo  # noqa: E402

TARGET_MS = 100.0
OPS = ("list", "inbox")


# --------------------------------------------------------------------------------------------
# child: runs in a process that imports the implementation under test (PYTHONPATH)
# --------------------------------------------------------------------------------------------


def _digest(store: Any, op: str) -> list[Any]:
    """The result of an operation as plain data (to compare implementations)."""
    if op == "list":
        return [
            [s.project_id, s.session_id, s.workflow, s.mode, s.status.value, s.current_phase,
             s.created.isoformat(), s.updated.isoformat(), s.path,
             [[n, t, f, d and d.isoformat()] for n, t, f, d in s.waiting]]
            for s in store.list_sessions()
        ]  # fmt: skip
    return [
        [i.project_id, i.session_id, i.phase, i.phase_name,
         i.waiting_since and i.waiting_since.isoformat(), i.feedback, list(i.outputs)]
        for i in store.inbox()
    ]  # fmt: skip


def child(mode: str, root: str, reps: int) -> dict[str, Any]:
    """One measurement in this process; returns what the parent collects (JSON-ready).

    Modes: ``warm`` (first call untimed, then ``reps`` timed calls of each operation,
    interleaved), ``fresh-list`` / ``fresh-inbox`` (the first call of this process),
    ``results`` (both results as data).
    """
    t0 = time.perf_counter()
    from mdsessions import Store

    t1 = time.perf_counter()
    store = Store.open(root)
    t2 = time.perf_counter()
    out: dict[str, Any] = {"import_ms": (t1 - t0) * 1e3, "open_ms": (t2 - t1) * 1e3}
    calls = {"list": store.list_sessions, "inbox": store.inbox}
    if mode.startswith("fresh-"):
        op = mode.removeprefix("fresh-")
        a = time.perf_counter()
        n = len(calls[op]())
        out[op] = [(time.perf_counter() - a) * 1e3]
        out["count"] = n
    elif mode == "warm":
        for op in OPS:
            calls[op]()
        samples: dict[str, list[float]] = {op: [] for op in OPS}
        for _ in range(reps):
            for op in random.sample(OPS, len(OPS)):
                a = time.perf_counter()
                calls[op]()
                samples[op].append((time.perf_counter() - a) * 1e3)
        out.update(samples)
    elif mode == "results":
        out["list"] = _digest(store, "list")
        out["inbox"] = _digest(store, "inbox")
    else:
        raise SystemExit(f"unknown child mode {mode!r}")
    store.close()
    return out


# --------------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_child(impl: dict[str, Any], mode: str, root: Path, reps: int = 0) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(impl["path"])}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(root), str(reps)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {mode} ({impl['name']}) failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def extract(rev: str, dest: Path) -> Path:
    """The mdsessions package (and its templates) at git revision ``rev``, under ``dest``."""
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", rev, "mdsessions", "templates"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def summarize(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "median": statistics.median(xs), "p95": percentile(xs, 0.95)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--review-every", type=int, default=10)
    parser.add_argument("--reps", type=int, default=30, help="timed calls per warm process")
    parser.add_argument("--warm-processes", type=int, default=3, help="warm in-process runs")
    parser.add_argument("--processes", type=int, default=15, help="fresh processes per op")
    parser.add_argument("--compare", metavar="REV", help="also measure mdsessions at REV")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, root, reps = args.child
        print(json.dumps(child(mode, root, int(reps))))
        return 0

    work = Path(tempfile.mkdtemp(prefix="mdsessions-bench-listing-", dir=args.workdir))
    setup_env(work)
    try:
        impls = [{"name": "working tree", "path": REPO_ROOT}]
        if args.compare:
            impls.insert(0, {"name": args.compare, "path": extract(args.compare, work / "old")})
        log(f"building a store of {args.sessions} sessions in {work} ...")
        built = make_store(
            work / "base",
            args.sessions,
            projects=args.projects,
            review_every=args.review_every,
        )
        log(f"  {built.files} files, {built.awaiting} awaiting review, {built.seconds:.1f} s")
        for n, impl in enumerate(impls):
            impl["root"] = work / f"store{n}"
            subprocess.run(["cp", "-a", str(built.root), str(impl["root"])], check=True)
        time.sleep(2.1)  # the copies' files out of the racy window (their ctime is new)
        for impl in impls:
            log(f"warming the cache of {impl['name']} (first call parses every manifest) ...")
            a = time.perf_counter()
            run_child(impl, "fresh-list", impl["root"])
            impl["cold_s"] = time.perf_counter() - a
            run_child(impl, "fresh-inbox", impl["root"])
        results = [run_child(impl, "results", impl["root"]) for impl in impls]
        same = all(r["list"] == results[0]["list"] and r["inbox"] == results[0]["inbox"]
                   for r in results)  # fmt: skip
        counts = (len(results[0]["list"]), len(results[0]["inbox"]))
        samples: dict[str, dict[str, list[float]]] = {
            impl["name"]: {k: [] for k in ("warm list", "warm inbox", "fresh list",
                                          "fresh inbox", "import", "open")}
            for impl in impls
        }  # fmt: skip
        log("measuring warm calls in-process ...")
        for _ in range(args.warm_processes):
            for impl in random.sample(impls, len(impls)):
                r = run_child(impl, "warm", impl["root"], args.reps)
                samples[impl["name"]]["warm list"] += r["list"]
                samples[impl["name"]]["warm inbox"] += r["inbox"]
        log(f"measuring first calls of {args.processes} fresh processes per operation ...")
        for _ in range(args.processes):
            jobs = [(impl, op) for impl in impls for op in OPS]
            for impl, op in random.sample(jobs, len(jobs)):
                r = run_child(impl, f"fresh-{op}", impl["root"])
                s = samples[impl["name"]]
                s[f"fresh {op}"] += r[op]
                s["import"].append(r["import_ms"])
                s["open"].append(r["open_ms"])
        stats = {name: {k: summarize(v) for k, v in by.items()} for name, by in samples.items()}
        report(args, built, impls, stats, counts, same)
        if args.json:
            args.json.write_text(json.dumps({"samples": samples, "stats": stats}, indent=1))
        current = stats["working tree"]
        over = [k for k in ("warm list", "warm inbox", "fresh list", "fresh inbox")
                if current[k]["median"] > TARGET_MS]  # fmt: skip
        return 0 if same and not over else 1
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(
    args: argparse.Namespace,
    built: Any,
    impls: list[dict[str, Any]],
    stats: dict[str, dict[str, dict[str, float]]],
    counts: tuple[int, int],
    same: bool,
) -> None:
    info = sysinfo()
    print(f"# Listing and inbox at {built.sessions:,} sessions\n")
    print(
        f"Store: {built.sessions:,} sessions in {built.projects} projects, "
        f"{built.awaiting:,} awaiting review ({built.files:,} files, one commit). "
        f"Listing returns {counts[0]:,} summaries, the inbox {counts[1]:,} items.\n"
    )
    print(f"Machine: {info.get('cpu', '?')}, {info.get('cpus', '?')} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at the end; Python {sys.version.split()[0]}; "
          f"checkout {info.get('checkout', '-')}.\n")  # fmt: skip
    print("| implementation | operation | median ms | p95 ms | samples |")
    print("|---|---|---:|---:|---:|")
    rows = [
        ("warm list", "`list_sessions()`, later call in-process"),
        ("warm inbox", "`inbox()`, later call in-process"),
        ("fresh list", "`list_sessions()`, 1st call of a new process, warm cache"),
        ("fresh inbox", "`inbox()`, 1st call of a new process, warm cache"),
        ("open", "`Store.open` (context)"),
        ("import", "`import mdsessions` (context)"),
    ]
    for impl in impls:
        for key, label in rows:
            s = stats[impl["name"]][key]
            print(f"| {impl['name']} | {label} | {s['median']:.1f} | {s['p95']:.1f} | {s['n']} |")
    print()
    for impl in impls:
        print(f"- {impl['name']}: first call without a cache (parses every manifest, writes "
              f"the cache): {impl['cold_s']:.1f} s")  # fmt: skip
    print(f"- target: warm medians ≤ {TARGET_MS:.0f} ms; results identical across "
          f"implementations: {'yes' if same else 'NO'}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
