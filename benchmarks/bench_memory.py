#!/usr/bin/env python3
"""bench_memory.py - how much memory a process making many checkpoints holds, next to pygit2.

One checkpoint is what ``benchmarks/bench.py`` times: ``session.save_checkpoint(1,
status="in_progress", outputs=[agent output])``, one commit of an agent output, the phase
checkpoint and the manifest, here rotating over 20 sessions of a store of 100,000 tracked
files (``bench_checkpoint.build_base``: 10,000 folders of 10 files).

Each method runs in a child process of its own on its own copy of the store, which reports
``VmRSS`` and ``VmHWM`` (``/proc/self/status``) every 100 checkpoints:

* ``mdsessions``: the library, N checkpoints (``--quick``: 1,000; full: 10,000);
* ``pygit2`` (the baseline): the same three files written and committed by libgit2
  (``index.add`` x3 + ``index.write`` + ``write_tree`` + ``create_commit``). libgit2 rewrites
  the 100,000-entry index every commit (~0.3 s), so it makes ``--baseline`` checkpoints
  (default 200: its RSS is flat after the first few).

Reported: RSS after the store was opened (first sample), at the end, the high-water mark,
growth per 1,000 checkpoints after the first 1,000 (or half), and the ratio to pygit2.
The target of issue 13: <= 150 MB RSS after 10,000 checkpoints at 100,000 files.

    python benchmarks/bench_memory.py --quick     # ~4 min (base build ~75 s)
    python benchmarks/bench_memory.py             # ~7 min
    python benchmarks/bench_memory.py --json out.json --workdir /tmp/m --keep

Isolation as ``bench_checkpoint.setup_env`` (private GIT_CONFIG_GLOBAL with ``gc.auto=0``:
automatic maintenance runs in a process of its own anyway, so it never counts here).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_checkpoint import (  # noqa: E402 - the folder of this script, added above
    build_base,
    copy_repo,
    load_mdsessions,
    markdown_text,
    setup_env,
    table,
)

NFILES = 100_000
SESSIONS = 20
PROJECT = "bench"
AGENT = "concept_expansion"
SAMPLE_EVERY = 100
TARGET_MB = 150.0
HEADERS = ["method", "checkpoints", "RSS start MB", "RSS end MB", "HWM MB", "MB / 1,000 later", "s"]


def session_id(k: int) -> str:
    return f"mem-{k:03d}"


def agent_text(i: int) -> str:
    return markdown_text("memory bench", 2000) + f"\n\nRound {i}.\n"


def rss_mb() -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` of this process, MB (MiB)."""
    out = {}
    with Path("/proc/self/status").open(encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def prepare_base(workdir: Path, nfiles: int = NFILES) -> Path:
    """The base store: ``nfiles`` filler files and :data:`SESSIONS` real sessions (cached)."""
    store_mod = load_mdsessions()
    base = workdir / f"base-{nfiles}"
    ready = base / ".git" / "mdsessions-bench-ready"
    if ready.exists():
        return base
    build_base(base, nfiles, 10, store_mod)
    with store_mod.Store.open(base) as store:
        for k in range(SESSIONS):
            store.create_session(PROJECT, session_id(k), mode="mvp")
    subprocess.run(["git", "gc", "-q"], cwd=base, check=True)  # one pack, as a clone has
    ready.write_text("ok\n")
    return base


def checkpoint_files(k: int) -> list[str]:
    """The three files one checkpoint of session ``k`` writes (store-relative)."""
    base = f"projects/{PROJECT}/sessions/{session_id(k)}"
    phase = f"{base}/phase_1_concept"
    return [f"{phase}/{AGENT}.md", f"{phase}/checkpoint.md", f"{base}/session_manifest.md"]


# --------------------------------------------------------------------------------------------
# the children
# --------------------------------------------------------------------------------------------


def child_mdsessions(root: Path, n: int, first: int = 0, sample: bool = True) -> None:
    """Make ``n`` checkpoints through the library; print a JSON sample every 100."""
    store_mod = load_mdsessions()
    store = store_mod.Store.open(root)
    sessions = [store.session(PROJECT, session_id(k)) for k in range(SESSIONS)]
    if sample:
        print(json.dumps({"checkpoints": 0, **rss_mb()}), flush=True)
    started = time.perf_counter()
    for i in range(first, first + n):
        sessions[i % SESSIONS].save_checkpoint(
            1,
            status="in_progress",
            outputs=[
                {
                    "agent": AGENT,
                    "content": agent_text(i),
                    "model": "bench-model",
                    "input_tokens": 1000 + i,
                    "output_tokens": 500,
                    "duration": 1.5,
                }
            ],
        )
        done = i - first + 1
        if sample and done % SAMPLE_EVERY == 0:
            print(json.dumps({"checkpoints": done, **rss_mb()}), flush=True)
    caches = store.git.objects.cache_bytes()
    caches["documents"] = store._cache.nbytes
    store.close()
    if sample:
        seconds = time.perf_counter() - started
        print(json.dumps({"end": True, "seconds": seconds, "caches": caches}), flush=True)


def child_pygit2(root: Path, n: int) -> None:
    """Make ``n`` commits of the same three files with pygit2; print a sample every 100."""
    import pygit2

    repo = pygit2.Repository(str(root))
    sig = pygit2.Signature("Bench", "bench@example.invalid")
    files = [checkpoint_files(k) for k in range(SESSIONS)]
    originals = {rel: b"" for paths in files for rel in paths}
    for rel in originals:
        if (root / rel).exists():
            originals[rel] = (root / rel).read_bytes()
    print(json.dumps({"checkpoints": 0, **rss_mb()}), flush=True)
    started = time.perf_counter()
    for i in range(n):
        paths = files[i % SESSIONS]
        index = repo.index
        index.read()
        for j, rel in enumerate(paths):  # the agent output anew, the others changed a bit
            data = agent_text(i).encode() if j == 0 else originals[rel] + b"<!-- %d -->\n" % i
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
            index.add(rel)
        index.write()
        tree = index.write_tree()
        repo.create_commit("HEAD", sig, sig, f"checkpoint {i}", tree, [repo.head.target])
        if (i + 1) % SAMPLE_EVERY == 0:
            print(json.dumps({"checkpoints": i + 1, **rss_mb()}), flush=True)
    seconds = time.perf_counter() - started
    print(json.dumps({"end": True, "seconds": seconds}), flush=True)


def run_child(kind: str, root: Path, n: int) -> dict[str, Any]:
    """Run one child; return its samples and its end record."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(root), str(n)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{proc.stderr[-3000:]}")
    samples, end = [], {}
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if record.get("end"):
            end = record
        else:
            samples.append(record)
    return {"samples": samples, **end}


def summary(run: dict[str, Any]) -> dict[str, Any]:
    samples = run["samples"]
    last = samples[-1]
    mid = samples[min(len(samples) - 1, max(1, min(10, len(samples) // 2)))]
    span = last["checkpoints"] - mid["checkpoints"]
    growth = (last["VmRSS"] - mid["VmRSS"]) / span * 1000 if span else 0.0
    return {
        "checkpoints": last["checkpoints"],
        "rss_start_mb": samples[0]["VmRSS"],
        "rss_end_mb": last["VmRSS"],
        "hwm_mb": max(s["VmHWM"] for s in samples),
        "growth_mb_per_1000": growth,
        "seconds": run.get("seconds"),
        "caches": run.get("caches"),
    }


def measure(workdir: Path, quick: bool, baseline: int = 200) -> dict[str, Any]:
    """Build (or reuse) the 100,000-file store and run both children; return the figures.

    Args:
        workdir: Scratch folder (the base store is kept there for a next run).
        quick: 1,000 checkpoints instead of 10,000.
        baseline: Checkpoints the pygit2 baseline makes.

    Returns:
        ``{"mdsessions": {...}, "pygit2": {...}, "ratio_end": float, "target_mb": 150, ...}``
        with RSS in MB (MiB) and the samples every 100 checkpoints.
    """
    setup_env(workdir)
    n = 1_000 if quick else 10_000
    base = prepare_base(workdir)
    results: dict[str, Any] = {"nfiles": NFILES, "quick": quick}
    for kind, count in (("mdsessions", n), ("pygit2", min(n, baseline))):
        copy = workdir / f"run-{kind}"
        copy_repo(base, copy)
        run = run_child(kind, copy, count)
        results[kind] = {**summary(run), "samples": run["samples"]}
        shutil.rmtree(copy)
    results["ratio_end"] = results["mdsessions"]["rss_end_mb"] / results["pygit2"]["rss_end_mb"]
    results["target_mb"] = TARGET_MB
    results["target_met"] = results["mdsessions"]["hwm_mb"] <= TARGET_MB
    return results


def render(res: dict[str, Any]) -> str:
    rows = []
    for kind in ("mdsessions", "pygit2"):
        r = res[kind]
        rows.append(
            [
                kind,
                f"{r['checkpoints']:,}",
                f"{r['rss_start_mb']:.0f}",
                f"{r['rss_end_mb']:.0f}",
                f"{r['hwm_mb']:.0f}",
                f"{r['growth_mb_per_1000']:+.1f}",
                f"{r['seconds']:.0f}",
            ]
        )
    out = [
        f"### Memory of one process making checkpoints ({res['nfiles']:,} files)",
        "",
        table(
            [
                "method",
                "checkpoints",
                "RSS start MB",
                "RSS end MB",
                "HWM MB",
                "MB / 1,000 after warm-up",
                "s",
            ],
            rows,
        ),
        "",
        f"mdsessions / pygit2 (RSS at the end): {res['ratio_end']:.2f}x; "
        f"target <= {res['target_mb']:.0f} MB: {'met' if res['target_met'] else 'NOT met'}.",
    ]
    caches = res["mdsessions"].get("caches")
    if caches:
        out.append(
            "Caches at the end (estimated MB): "
            + ", ".join(f"{k} {v / 2**20:.1f}" for k, v in caches.items())
        )
    samples = res["mdsessions"]["samples"]
    step = max(1, len(samples) // 10)
    out += [
        "",
        table(
            ["checkpoints", "mdsessions RSS MB"],
            [[f"{s['checkpoints']:,}", f"{s['VmRSS']:.0f}"] for s in samples[::step]],
        ),
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        kind, root, n = args[1], Path(args[2]), int(args[3])
        (child_mdsessions if kind == "mdsessions" else child_pygit2)(root, n)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 checkpoints (not 10,000)")
    parser.add_argument("--baseline", type=int, default=200, help="pygit2 checkpoints")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    opts = parser.parse_args(args)
    workdir = opts.workdir or Path(tempfile.mkdtemp(prefix="mdsessions-memory-"))
    try:
        res = measure(workdir, opts.quick, opts.baseline)
    finally:
        if not opts.keep and opts.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(render(res))
    if opts.json:
        opts.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
