#!/usr/bin/env python3
"""bench_history.py - reading history through mdsessions, next to the git CLI doing the same.

The store is built through the library (so every commit carries real ``Mdsessions-*``
trailers and real documents): ``--commits`` commits (default 10,000; ``--quick`` 2,000)
over ``--sessions`` sessions (default one per 100 commits: 100, quick 20, so a session's
history is two pages) of the default workflow in mode ``full``, each
``create_session`` followed by alternating ``save_agent_output`` / ``save_checkpoint(…,
status="in_progress")`` through phases 1-7, written by ``--workers`` processes at once
(each into its own sessions; the store takes concurrent writers).

Then, for one session in the middle of the history, side by side and interleaved (each
repetition runs every operation once, in shuffled order):

* ``versions``: ``history.versions(session, limit=50)`` beside
  ``git log --format=%H%x1f%an%x1f%at%x1f%s%x1f%(trailers:only,unfold) -- <session dir>``
  (target: ≤ 0.3× the git log);
* ``read``: ``history.read_version(session, path, commit)`` of a document at an old commit,
  in a warm Store, beside ``git show <commit>:<path>`` (target: ≤ 1.0× git show);

in three states of the object store: as the library left it (loose objects plus the packs
of its automatic maintenance) and after ``git repack -d``, both with no commit-graph
(deleted), and, for context, after ``history.maintenance(store)`` (commit-graph written).
The first ``versions`` call of a fresh process may build a cache under ``.mdsessions/``: it
is measured separately (a fresh Python process per state, cache deleted first), never in
the warm figures.  Correctness: ``versions(limit=None)`` lists exactly the commits of
``git log --format=%H -- <session dir>``, and the bytes read equal ``git show``'s.

    python benchmarks/bench_history.py --quick        # < 90 s (2,000 commits)
    python benchmarks/bench_history.py                # 10,000 commits, < 10 min
    python benchmarks/bench_history.py --json out.json --keep

Isolation: as bench_checkpoint.py (private GIT_CONFIG_GLOBAL, GIT_CONFIG_NOSYSTEM=1,
LC_ALL=C, no other GIT_* variables); everything is written in a fresh folder in the system
temp dir (or --workdir), removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import (  # noqa: E402  (the shared helpers live next to this script)
    fmt,
    fmt_ratio,
    git,
    load_mdsessions,
    machine_lines,
    markdown_text,
    percentile,
    setup_env,
    summarize,
    sysinfo,
    table,
)

PROJECT = "bench"
MODE = "full"
PAGE = 50
VERSIONS_TARGET = 0.3  # versions(limit=50) median must be <= 0.3x `git log -- <dir>`
READ_TARGET = 1.0  # read_version median must be <= 1.0x `git show <commit>:<path>`
LOG_FORMAT = "--format=%H%x1f%an%x1f%at%x1f%s%x1f%(trailers:only,unfold)"
CACHE_DIR = ".mdsessions/cache"  # the library's rebuildable caches (deleted for a cold call)

# (key, title, what was done to the object store before it)
VARIANTS = (
    ("as-left", "as left, no commit-graph", "objects as the library left them"),
    ("repacked", "git repack -d, no commit-graph", "git repack -d"),
    ("maintained", "maintenance(), commit-graph", "mdsessions.history.maintenance(store)"),
)
NO_GRAPH = ("as-left", "repacked")

# (operation, its baseline or None, context only: no target)
OPS: tuple[tuple[str, str | None], ...] = (
    ("versions(limit=50)", "git log -- <dir>"),
    ("versions(limit=50), 1st call after a new commit", "git log -- <dir>"),
    ("git log -- <dir>", None),
    ("git log -n 51 -- <dir>", None),
    ("read_version (old commit)", "git show <commit>:<path>"),
    ("git show <commit>:<path>", None),
    ("read_version (other old commit each rep)", "git show (same commits)"),
    ("git show (same commits)", None),
)
(VERSIONS_OP, MOVED_OP, LOG_OP, LOG_N_OP, READ_OP, SHOW_OP, READ_ROT_OP, SHOW_ROT_OP) = (
    n for n, _ in OPS
)
WRITER_AGENT = "concept_expansion"  # phase 1 agent of the default workflow


def log_to_stderr(t_start: float) -> Callable[[str], None]:
    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    return log


def load_history() -> tuple[Any, Any]:
    """``(mdsessions.store, mdsessions.history)``, from this checkout if not installed."""
    store_mod = load_mdsessions()
    import mdsessions.history as history_mod

    return store_mod, history_mod


# --------------------------------------------------------------------------------------------
# building the store through the library
# --------------------------------------------------------------------------------------------


def session_id(k: int) -> str:
    return f"s{k:03d}"


def agent_text(sid: str, agent: str, j: int) -> str:
    """An agent's markdown output (~2.3 KB), different for every save."""
    return f"{markdown_text(f'{sid} {agent}', 2300)}\n\nRun {j}.\n"


def build_worker(root: str, plan: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """Write the sessions in ``plan`` (``(session id, commits)``) one after the other."""
    store_mod = load_mdsessions()
    store = store_mod.Store.open(root)
    t0 = time.perf_counter()
    made = 0
    try:
        phases = store.workflow(None).phases_for(MODE)
        for sid, ncommits in plan:
            session = store.create_session(
                PROJECT, sid, mode=MODE, idea=f"Benchmark idea {sid}: a tool that does a thing."
            )
            made += 1
            saves = ncommits - 1
            pairs = max(1, (saves + 1) // 2)
            for j in range(saves):
                q = j // 2
                phase = phases[q * len(phases) // pairs]
                if j % 2 == 0:
                    agent = phase.agents[q % len(phase.agents)]
                    session.save_agent_output(
                        phase.number,
                        agent,
                        agent_text(sid, agent, j),
                        model="bench-model",
                        input_tokens=1000 + j,  # changes the checkpoint's agent table too
                        output_tokens=400 + j,
                        duration=1.0 + j % 7,
                    )
                else:
                    session.save_checkpoint(phase.number, status="in_progress")
                made += 1
    finally:
        store.close()  # waits for a background maintenance run, if one started
    return {"saves": made, "seconds": time.perf_counter() - t0}


def spread(total: int, parts: int) -> list[int]:
    return [(k + 1) * total // parts - k * total // parts for k in range(parts)]


def build_store(
    root: Path, ncommits: int, nsessions: int, workers: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """``Store.init`` + ``nsessions`` sessions written by ``workers`` processes."""
    store_mod = load_mdsessions()
    t0 = time.perf_counter()
    store_mod.Store.init(root).close()
    per_session = spread(ncommits - 1, nsessions)  # the init commit is the first of ncommits
    plans = [
        [(session_id(k), per_session[k]) for k in range(w, nsessions, workers)]
        for w in range(workers)
    ]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [pool.submit(build_worker, str(root), plan) for plan in plans]
        while True:
            done, pending = wait(futures, timeout=10, return_when=FIRST_EXCEPTION)
            if not pending or any(f.exception() for f in done):
                break
            now = time.perf_counter()
            count = int(git(root, "rev-list", "--count", "HEAD"))
            log(
                f"  {count:,} / {ncommits:,} commits ({count / (now - t0):.0f} commits/s, "
                f"{workers} writer processes)"
            )
        reports = [f.result() for f in futures]  # re-raises a worker's error
    return {
        "seconds": time.perf_counter() - t0,
        "workers": workers,
        "saves": sum(r["saves"] for r in reports),
    }


# --------------------------------------------------------------------------------------------
# the store's object state
# --------------------------------------------------------------------------------------------


def count_objects(root: Path) -> dict[str, int]:
    out = {}
    for line in git(root, "count-objects", "-v").decode().splitlines():
        key, _, value = line.partition(":")
        if value.strip().isdigit():
            out[key.strip()] = int(value.strip())
    return out


def graph_files(root: Path) -> list[Path]:
    info = root / ".git" / "objects" / "info"
    return sorted(info.glob("commit-graph*")) if info.is_dir() else []


def delete_commit_graph(root: Path) -> int:
    """Delete ``.git/objects/info/commit-graph*`` (file and split chain); return how many."""
    found = graph_files(root)
    for p in found:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    if graph_files(root):
        raise RuntimeError("a commit-graph is still there after deleting it")
    return len(found)


def object_state(root: Path) -> dict[str, Any]:
    co = count_objects(root)
    return {
        "loose": co.get("count", 0),
        "loose_mb": co.get("size", 0) / 1024,
        "packs": co.get("packs", 0),
        "in_pack": co.get("in-pack", 0),
        "pack_mb": co.get("size-pack", 0) / 1024,
        "commit_graph": bool(graph_files(root)),
    }


def describe_objects(s: dict[str, Any]) -> str:
    return (
        f"{s['loose']:,} loose ({s['loose_mb']:.0f} MB) · "
        + (f"{s['packs']} packs ({s['in_pack']:,} objects, {s['pack_mb']:.0f} MB)"
           if s["packs"] else "no packs")
        + f" · commit-graph {'yes' if s['commit_graph'] else 'no'}"
    )  # fmt: skip


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


# --------------------------------------------------------------------------------------------
# what to read: a session in the middle of the history, old documents
# --------------------------------------------------------------------------------------------


@dataclass
class Target:
    sid: str
    rel: str  # store-relative session folder
    commits: int  # commits of the session
    newest: int  # position of its newest commit (0 = HEAD)
    oldest: int
    read_commit: str  # the old commit of the fixed read
    read_path: str  # session-relative path of the fixed read
    read_position: int
    rotation: list[tuple[str, str, str]]  # (session id, session-relative path, commit)


def full_log(root: Path) -> list[dict[str, str]]:
    fmt_ = (
        "--format=%H%x1f%(trailers:key=Mdsessions-Session,valueonly)%x1f"
        "%(trailers:key=Mdsessions-Kind,valueonly)%x1f%(trailers:key=Mdsessions-Phase,valueonly)"
        "%x1f%(trailers:key=Mdsessions-Agent,valueonly)%x1e"
    )
    rows = []
    for rec in git(root, "log", fmt_).decode().split("\x1e"):
        rec = rec.strip("\n")  # not .strip(): "\x1f" counts as whitespace
        if not rec:
            continue
        sha, sid, kind, phase, agent = (f.strip(" \n") for f in rec.split("\x1f"))
        rows.append({"sha": sha, "session": sid, "kind": kind, "phase": phase, "agent": agent})
    return rows


def choose_target(root: Path, store: Any, n_rotation: int, seed: int) -> Target:
    rows = full_log(root)
    n = len(rows)
    positions: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if r["session"]:
            positions.setdefault(r["session"], []).append(i)
    sid = min(positions, key=lambda s: abs(statistics.fmean(positions[s]) - n / 2))
    session = store.session(PROJECT, sid)
    phase_dir = {
        p.number: store.session(PROJECT, sid).phase_rel(p.number).rsplit("/", 1)[1]
        for p in store.workflow(None).phases_for(MODE)
    }

    def doc(r: dict[str, str]) -> str:
        return f"{phase_dir[int(r['phase'])]}/{r['agent']}.md"

    mine = [i for i in positions[sid] if rows[i]["kind"] == "agent-output"]
    oldest_output = mine[-1]
    # Other old reads: agent outputs of any session in the older half of the history, each
    # commit read once (no tree or commit cache hit from an earlier repetition).
    older = [
        (r["session"], doc(r), r["sha"])
        for i, r in enumerate(rows)
        if i >= n // 2 and r["kind"] == "agent-output"
    ]
    random.Random(seed).shuffle(older)
    return Target(
        sid=sid,
        rel=session.rel,
        commits=len(positions[sid]),
        newest=positions[sid][0],
        oldest=positions[sid][-1],
        read_commit=rows[oldest_output]["sha"],
        read_path=doc(rows[oldest_output]),
        read_position=oldest_output,
        rotation=older[:n_rotation],
    )


# --------------------------------------------------------------------------------------------
# cold calls: a fresh Python process
# --------------------------------------------------------------------------------------------


def probe(argv: Sequence[str]) -> int:
    """Child process: time the first calls of a fresh process; print JSON."""
    root, sid, path, commit = argv
    t0 = time.perf_counter()
    store_mod, history = load_history()
    t1 = time.perf_counter()
    store = store_mod.Store.open(root)
    session = store.session(PROJECT, sid)
    t2 = time.perf_counter()
    first = history.versions(session, limit=PAGE)
    t3 = time.perf_counter()
    history.versions(session, limit=PAGE)
    t4 = time.perf_counter()
    history.read_version(session, path, commit)
    t5 = time.perf_counter()
    store.close()
    print(
        json.dumps(
            {
                "import_ms": (t1 - t0) * 1e3,
                "open_ms": (t2 - t1) * 1e3,
                "first_versions_ms": (t3 - t2) * 1e3,
                "second_versions_ms": (t4 - t3) * 1e3,
                "first_read_ms": (t5 - t4) * 1e3,
                "page": [v.commit for v in first.versions],
            }
        )
    )
    return 0


def run_probe(root: Path, target: Target) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--probe",
            str(root),
            target.sid,
            target.read_path,
            target.read_commit,
        ],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"probe process failed:\n{proc.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


# --------------------------------------------------------------------------------------------
# one state of the object store
# --------------------------------------------------------------------------------------------


def run_variant(
    key: str,
    root: Path,
    target: Target,
    rotation: list[tuple[str, str, str]],
    args: argparse.Namespace,
    rng: random.Random,
    log: Callable[[str], None],
) -> dict[str, Any]:
    store_mod, history = load_history()
    objects = object_state(root)
    log(f"  objects: {describe_objects(objects)}")

    # Cold: a fresh process with no cache on disk, then a fresh process with the cache.
    cache = root / CACHE_DIR
    shutil.rmtree(cache, ignore_errors=True)
    cold = run_probe(root, target)
    cache_bytes = dir_size(root / ".mdsessions")
    cold_disk = run_probe(root, target)
    log(
        f"  fresh process: first versions {fmt(cold['first_versions_ms'])} ms (no cache on "
        f"disk), {fmt(cold_disk['first_versions_ms'])} ms (cache on disk)"
    )

    store = store_mod.Store.open(root)
    session = store.session(PROJECT, target.sid)
    sessions = {sid: store.session(PROJECT, sid) for sid, _p, _c in rotation}
    rel_path = f"{target.rel}/{target.read_path}"
    # A writer in this process, in a session of its own: before each repetition it commits
    # once (untimed), so HEAD moves and the first versions call after it meets a new commit.
    writer = store.create_session(PROJECT, f"w-{key}", mode=MODE)
    t0 = time.perf_counter()
    history.versions(session, limit=PAGE)  # this process's first call: never timed below
    bench_first_ms = (time.perf_counter() - t0) * 1e3
    history.read_version(session, target.read_path, target.read_commit)

    def rotated(k: int) -> tuple[Any, str, str, str]:
        sid, path, commit = rotation[k % len(rotation)]
        return sessions[sid], path, commit, f"{store.session_rel(PROJECT, sid)}/{path}"

    def ops_for(k: int) -> dict[str, Callable[[], Any]]:
        s2, path2, commit2, rel2 = rotated(k)
        return {
            VERSIONS_OP: lambda: history.versions(session, limit=PAGE),
            LOG_OP: lambda: git(root, "log", LOG_FORMAT, "--", target.rel),
            LOG_N_OP: lambda: git(root, "log", LOG_FORMAT, f"-n{PAGE + 1}", "--", target.rel),
            READ_OP: lambda: history.read_version(session, target.read_path, target.read_commit),
            SHOW_OP: lambda: git(root, "show", f"{target.read_commit}:{rel_path}"),
            READ_ROT_OP: lambda: history.read_version(s2, path2, commit2),
            SHOW_ROT_OP: lambda: git(root, "show", f"{commit2}:{rel2}"),
        }

    samples: dict[str, list[float]] = {name: [] for name, _ in OPS}
    t_loop = time.perf_counter()
    for r in range(args.warmup + args.reps):
        writer.save_agent_output(
            1, WRITER_AGENT, agent_text(writer.session_id, WRITER_AGENT, r), input_tokens=r
        )
        ops = list(ops_for(r).items())
        rng.shuffle(ops)
        ops.insert(0, (MOVED_OP, lambda: history.versions(session, limit=PAGE)))
        for name, op in ops:
            t = time.perf_counter_ns()
            op()
            dt = (time.perf_counter_ns() - t) / 1e6
            if r >= args.warmup:
                samples[name].append(dt)
    loop_s = time.perf_counter() - t_loop
    log(f"  {args.warmup} warm-up + {args.reps} timed repetitions in {loop_s:.1f} s")

    # Correctness.
    git_shas = git(root, "log", "--format=%H", "--", target.rel).decode().split()
    everything = history.versions(session, limit=None)
    lib_shas = [v.commit for v in everything.versions]
    page = [v.commit for v in history.versions(session, limit=PAGE).versions]
    read_ok = history.read_version(session, target.read_path, target.read_commit) == git(
        root, "show", f"{target.read_commit}:{rel_path}"
    )
    rot_ok = all(
        history.read_version(s2, p2, c2) == git(root, "show", f"{c2}:{r2}")
        for s2, p2, c2, r2 in (rotated(k) for k in range(min(len(rotation), 5)))
    )
    verify = {
        "versions_all_equal": lib_shas == git_shas,
        "versions_count": len(lib_shas),
        "git_log_count": len(git_shas),
        "page_equal": page == git_shas[:PAGE] and cold["page"] == git_shas[:PAGE],
        "trailers_ok": all(v.kind and v.session == target.sid for v in everything.versions),
        "read_equal": read_ok and rot_ok,
        "graph_unchanged": bool(graph_files(root)) == objects["commit_graph"],
    }
    store.close()
    if not all(v for k, v in verify.items() if not k.endswith("_count")):
        log(f"  CHECK FAILED: {verify}")

    stats = {name: summarize(xs) for name, xs in samples.items()}
    paired = {}
    for name, base in OPS:
        if base is not None:
            rs = [a / b for a, b in zip(samples[name], samples[base], strict=True) if b > 0]
            paired[name] = {
                "median": statistics.median(rs),
                "p25": percentile(rs, 0.25),
                "p75": percentile(rs, 0.75),
            }
    return {
        "key": key,
        "objects": objects,
        "cold": {k: v for k, v in cold.items() if k != "page"},
        "cold_cache_on_disk": {k: v for k, v in cold_disk.items() if k != "page"},
        "bench_process_first_versions_ms": bench_first_ms,
        "cache_bytes": cache_bytes,
        "stats": stats,
        "paired": paired,
        "samples": samples,
        "verify": verify,
        "loop_s": loop_s,
    }


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def verdict(ratio: float, target: float) -> str:
    return "MET" if ratio <= target else "NOT MET"


def render(results: dict[str, Any]) -> str:
    si = results["sysinfo"]
    b = results["build"]
    t = results["target"]
    n = results["commits"]
    out = [
        "# mdsessions history benchmark",
        "",
        *machine_lines(si),
        f"- store: {n:,} commits, {results['sessions']} sessions of `idea_validation` "
        f"(mode `{MODE}`), built through the library by {b['workers']} writer processes in "
        f"{b['seconds']:.0f} s ({n / b['seconds']:.0f} commits/s)",
        f"- session `{PROJECT}/{t['sid']}`: {t['commits']} commits, positions "
        f"{t['newest']:,}–{t['oldest']:,} from HEAD (of {n:,}); fixed read: "
        f"`{t['read_path']}` at a commit {t['read_position']:,} commits back",
        f"- interleaved: each of {results['reps']} repetitions (after {results['warmup']} "
        "warm-up) runs every operation once, in shuffled order; warm = one Store per state, "
        "its first `versions` call excluded; compare ratios, not absolute times",
        "- each repetition starts with one untimed commit in another session of the store "
        "(`save_agent_output`, same process), then the `1st call after a new commit` row, then "
        "the other operations in shuffled order",
        "",
    ]
    rows = []
    for v in results["variants"]:
        title = next(ti for k, ti, _ in VARIANTS if k == v["key"])
        for name, base in OPS:
            s = v["stats"][name]
            ratio = "-"
            if base is not None:
                ratio = (
                    f"{fmt_ratio(s['median'] / v['stats'][base]['median'])} "
                    f"(paired {fmt_ratio(v['paired'][name]['median'])})"
                )
            rows.append([title, name, fmt(s["median"]), fmt(s["p95"]), ratio])
        rows.append(
            [
                title,
                "versions: first call, fresh process, no cache (cold)",
                fmt(v["cold"]["first_versions_ms"]),
                "-",
                f"{fmt_ratio(v['cold']['first_versions_ms'] / v['stats'][LOG_OP]['median'])}",
            ]
        )
        rows.append(
            [
                title,
                "versions: first call, fresh process, cache on disk",
                fmt(v["cold_cache_on_disk"]["first_versions_ms"]),
                "-",
                fmt_ratio(
                    v["cold_cache_on_disk"]["first_versions_ms"] / v["stats"][LOG_OP]["median"]
                ),
            ]
        )
    out.append(table(["objects", "operation", "median ms", "p95 ms", "× baseline (median)"], rows))
    out += [
        "",
        "Baselines: `versions` against `git log -- <dir>` (the full path-limited log with the "
        "trailers, as the brief asks; `git log -n 51` is context: what one page costs git), "
        "`read_version` against `git show`. Cold rows: ratio against the warm `git log` median.",
        "",
    ]
    all_ok = True
    for v in results["variants"]:
        title = next(ti for k, ti, _ in VARIANTS if k == v["key"])
        vs, lg = v["stats"][VERSIONS_OP]["median"], v["stats"][LOG_OP]["median"]
        rd, sh = v["stats"][READ_OP]["median"], v["stats"][SHOW_OP]["median"]
        pv, pr = v["paired"][VERSIONS_OP], v["paired"][READ_OP]
        cold_ms = v["cold"]["first_versions_ms"]
        met = f"**{verdict(vs / lg, VERSIONS_TARGET)}** " if v["key"] in NO_GRAPH else ""
        out.append(
            f"- {title}: {'target' if met else 'context (no target)'} versions ≤ "
            f"{VERSIONS_TARGET}× git log -- <dir>: {met}({vs / lg:.3f}× = {fmt(vs)} / "
            f"{fmt(lg)} ms; paired median {pv['median']:.3f}×, IQR {pv['p25']:.3f}–"
            f"{pv['p75']:.3f}×); 1st call after a new commit "
            f"{v['stats'][MOVED_OP]['median'] / lg:.3f}×; cold first call {fmt(cold_ms)} ms = "
            f"{cold_ms / lg:.2f}× git log"
        )
        out.append(
            f"- {title}: target read_version ≤ {READ_TARGET}× git show: "
            f"**{verdict(rd / sh, READ_TARGET)}** ({rd / sh:.3f}× = {fmt(rd)} / {fmt(sh)} ms; "
            f"paired median {pr['median']:.3f}×); other old commit each rep: "
            f"{v['stats'][READ_ROT_OP]['median'] / v['stats'][SHOW_ROT_OP]['median']:.3f}×"
        )
    out.append("")
    for v in results["variants"]:
        title = next(ti for k, ti, _ in VARIANTS if k == v["key"])
        c = v["verify"]
        ok = all(val for k, val in c.items() if not k.endswith("_count"))
        all_ok = all_ok and ok
        out.append(
            f"- {title} checks: versions(limit=None) == `git log --format=%H -- <dir>`: "
            f"{'yes' if c['versions_all_equal'] else 'NO'} ({c['versions_count']} / "
            f"{c['git_log_count']} commits); first page == first {PAGE}: "
            f"{'yes' if c['page_equal'] else 'NO'}; trailers parsed: "
            f"{'yes' if c['trailers_ok'] else 'NO'}; read bytes == git show: "
            f"{'yes' if c['read_equal'] else 'NO'}; commit-graph unchanged during the run: "
            f"{'yes' if c['graph_unchanged'] else 'NO'}"
        )
    bc = results["build_checks"]
    all_ok = all_ok and bc["commits_ok"] and bc["status_clean"]
    out.append(
        f"- build checks: {bc['commits']:,} commits ({'ok' if bc['commits_ok'] else 'MISMATCH'}"
        f", expected {n:,}); `git status --porcelain` clean: "
        f"{'yes' if bc['status_clean'] else 'NO'}"
    )
    out.append(f"- all checks passed: {'yes' if all_ok else 'NO'}")
    out += ["", "## Object store states and first calls (ms)", ""]
    rows = []
    for v in results["variants"]:
        title = next(ti for k, ti, _ in VARIANTS if k == v["key"])
        c, cd = v["cold"], v["cold_cache_on_disk"]
        rows.append(
            [
                title,
                describe_objects(v["objects"]),
                v.get("prepare", "-"),
                f"{fmt(c['import_ms'])} / {fmt(c['open_ms'])}",
                fmt(c["first_versions_ms"]),
                fmt(c["second_versions_ms"]),
                fmt(cd["first_versions_ms"]),
                fmt(c["first_read_ms"]),
                f"{v['cache_bytes'] / 1e6:.2f} MB",
            ]
        )
    out.append(
        table(
            [
                "state",
                "objects",
                "prepared by",
                "import / Store.open",
                "1st versions (no cache)",
                "2nd versions",
                "1st versions (cache on disk)",
                "1st read_version",
                ".mdsessions/ size",
            ],
            rows,
        )
    )
    out += ["", f"Total elapsed: {results['elapsed_s']:.0f} s"]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--probe"]:
        return probe(argv[1:])
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 2,000 commits")
    ap.add_argument(
        "--commits",
        type=int,
        default=None,
        help="commits in the store (default 10,000; quick 2,000)",
    )
    ap.add_argument(
        "--sessions",
        type=int,
        default=None,
        help="sessions (default one per 100 commits: 100; quick 20)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="writer processes for the build (default: 2, or 1 on a single CPU)",
    )
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions (default 30)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up repetitions (default 2)")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder to work in (a fresh mdsessions-bench-* folder is made inside it)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the workdir and the store")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    ap.add_argument("--seed", type=int, default=1, help="shuffle seed")
    args = ap.parse_args(argv)
    if args.commits is None:
        args.commits = 2_000 if args.quick else 10_000
    if args.reps is None:
        args.reps = 30
    if args.workers is None:
        args.workers = max(1, min(2, os.cpu_count() or 1))
    if args.sessions is None:
        args.sessions = max(1, round(args.commits / 100))
    if args.commits < 3 or args.reps < 1 or args.warmup < 0 or args.sessions < 1:
        ap.error("need --commits >= 3, --reps >= 1, --warmup >= 0, --sessions >= 1")
    args.sessions = min(args.sessions, args.commits - 1)
    args.workers = max(1, min(args.workers, args.sessions))

    t_start = time.perf_counter()
    log = log_to_stderr(t_start)
    parent = args.workdir.resolve() if args.workdir else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    args.workdir = Path(tempfile.mkdtemp(prefix="mdsessions-bench-", dir=parent))
    results: dict[str, Any] = {"variants": []}
    ok = False
    try:
        setup_env(args.workdir)
        store_mod, history = load_history()
        rng = random.Random(args.seed)
        results["sysinfo"] = sysinfo()
        results["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        results.update(
            commits=args.commits, sessions=args.sessions, reps=args.reps, warmup=args.warmup
        )
        root = args.workdir / "store"
        log(
            f"building {args.commits:,} commits in {args.sessions} sessions through the library "
            f"({args.workers} processes)"
        )
        results["build"] = build_store(root, args.commits, args.sessions, args.workers, log)
        got = int(git(root, "rev-list", "--count", "HEAD"))
        results["build_checks"] = {
            "commits": got,
            "commits_ok": got == args.commits,
            "status_clean": not git(root, "status", "--porcelain").strip(),
        }
        log(f"  built in {results['build']['seconds']:.0f} s: {got:,} commits")

        per_variant = args.warmup + args.reps
        with store_mod.Store.open(root) as store:
            target = choose_target(root, store, per_variant * len(VARIANTS), args.seed)
        results["target"] = vars(target) | {"rotation": len(target.rotation)}
        log(
            f"session {target.sid}: {target.commits} commits at positions "
            f"{target.newest:,}-{target.oldest:,} from HEAD"
        )

        for i, (key, title, how) in enumerate(VARIANTS):
            log(f"state {i + 1}/{len(VARIANTS)}: {title}")
            t0 = time.perf_counter()
            prepare: str
            if key == "as-left":
                removed = delete_commit_graph(root)
                prepare = f"library (auto-maintenance); {removed} commit-graph file(s) deleted"
            elif key == "repacked":
                git(root, "repack", "-d", "-q")
                delete_commit_graph(root)
                prepare = f"`git repack -d` ({time.perf_counter() - t0:.1f} s)"
            else:
                with store_mod.Store.open(root) as store:
                    report = history.maintenance(store)
                prepare = "maintenance(): " + ", ".join(f"{s} {d:.1f} s" for s, d in report.steps)
            log(f"  {how}: {prepare}")
            rotation = target.rotation[i * per_variant : (i + 1) * per_variant]
            entry = run_variant(key, root, target, rotation, args, rng, log)
            entry["prepare"] = prepare
            results["variants"].append(entry)

        results["elapsed_s"] = time.perf_counter() - t_start
        report_text = render(results)
        ok = "all checks passed: yes" in report_text
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
        print(report_text)
    finally:
        if args.keep:
            log(f"kept {args.workdir}")
        else:
            shutil.rmtree(args.workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
