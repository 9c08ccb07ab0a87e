#!/usr/bin/env python3
"""bench_disk.py - how big ``.git`` grows over many checkpoints, next to the same history gc'd.

A store of 100,000 tracked files (``bench_memory.prepare_base``: 10,000 folders of 10 files
plus 20 real sessions, packed by ``git gc`` as a clone would be) takes N checkpoints
(``session.save_checkpoint(1, status="in_progress", outputs=[agent output])``, as
``benchmarks/bench.py``) in two ways, each on its own copy:

* ``short-lived``: N / 10 processes of 10 checkpoints each (as CLI calls or cron jobs make
  them: no process ever reaches 100 commits);
* ``one process``: all N checkpoints in one process.

Automatic maintenance runs as configured by default (a private global config without
``gc.auto=0``). After the last checkpoint a running maintenance is waited for (none is
started); then reported: ``du -sb .git``, loose objects, packs, the largest ``.git`` seen
while the checkpoints ran (sampled every 2 s), and the same repository copied and ``git gc``'d
(the baseline) with the ratio. The target of issue 13: <= 1.5x the gc'd size after 5,000.

A second table measures why big trees are written with zlib level 0: the store's largest
tree (the sessions folder) compressed at level 0, level 1 and level 1 with ``Z_RLE``.

    python benchmarks/bench_disk.py --quick       # 500 checkpoints: ~5 min (base ~75 s)
    python benchmarks/bench_disk.py               # 5,000 checkpoints: ~20 min
    python benchmarks/bench_disk.py --json out.json --workdir /tmp/d --keep
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_checkpoint import git, setup_env, table  # noqa: E402 - this script's folder
from bench_memory import child_mdsessions, prepare_base  # noqa: E402

BATCH = 10
TARGET_RATIO = 1.5
SAMPLE_S = 2.0


def default_git_config(workdir: Path) -> None:
    """``setup_env``, then a global config with git's defaults for gc and maintenance."""
    config = setup_env(workdir)
    config.write_text(
        "[user]\n\tname = Bench\n\temail = bench@example.invalid\n"
        "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n",
        encoding="utf-8",
    )


def du(path: Path) -> int:
    """``du -sb``: bytes."""
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def loose_and_packs(git_dir: Path) -> tuple[int, int]:
    objects = git_dir / "objects"
    loose = sum(
        1
        for d in objects.iterdir()
        if len(d.name) == 2 and d.is_dir()
        for f in d.iterdir()
        if len(f.name) == 38
    )
    packs = len(list((objects / "pack").glob("*.pack")))
    return loose, packs


def wait_maintenance(git_dir: Path) -> float:
    """Wait for a running automatic maintenance (its ``flock``); return the seconds waited."""
    began = time.perf_counter()
    lock = git_dir / "mdsessions" / "maintenance.lock"
    if lock.exists():
        with lock.open("rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH)  # waits while maintenance holds it
    return time.perf_counter() - began


class Sampler:
    """The largest ``du -sb .git`` seen, sampled every :data:`SAMPLE_S` seconds."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            try:
                self.peak = max(self.peak, du(self.git_dir))
            except subprocess.CalledProcessError:  # a file vanished during the walk
                continue

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, du(self.git_dir))
        return self.peak


def run_scenario(base: Path, copy: Path, n: int, batch: int) -> dict[str, Any]:
    """N checkpoints on a copy of ``base`` by processes of ``batch`` checkpoints each."""
    if copy.exists():
        shutil.rmtree(copy)
    subprocess.run(["cp", "-a", str(base), str(copy)], check=True)
    git(copy, "update-index", "-q", "--refresh")
    git_dir = copy / ".git"
    sampler = Sampler(git_dir)
    began = time.perf_counter()
    for first in range(0, n, batch):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(copy)]
        cmd += [str(first), str(min(batch, n - first))]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sampler.stop()
            raise RuntimeError(f"child failed:\n{proc.stderr[-3000:]}")
    seconds = time.perf_counter() - began
    peak = sampler.stop()
    waited = wait_maintenance(git_dir)
    size = du(git_dir)
    loose, packs = loose_and_packs(git_dir)
    fsck = subprocess.run(["git", "fsck", "--no-dangling", "--no-progress"], cwd=copy, check=False)
    gcd = copy.with_name(copy.name + "-gc")
    if gcd.exists():
        shutil.rmtree(gcd)
    subprocess.run(["cp", "-a", str(copy), str(gcd)], check=True)
    git(gcd, "gc", "-q")
    gc_size = du(gcd / ".git")
    gc_loose, gc_packs = loose_and_packs(gcd / ".git")
    shutil.rmtree(gcd)
    return {
        "checkpoints": n,
        "batch": batch,
        "seconds": seconds,
        "maintenance_wait_s": waited,
        "git_bytes": size,
        "peak_git_bytes": peak,
        "loose": loose,
        "packs": packs,
        "fsck_ok": fsck.returncode == 0,
        "gc_bytes": gc_size,
        "gc_loose": gc_loose,
        "gc_packs": gc_packs,
        "ratio": size / gc_size,
        "peak_ratio": peak / gc_size,
    }


def tree_compression(root: Path, rounds: int = 21) -> list[dict[str, Any]]:
    """The largest tree of HEAD (the sessions folder) compressed three ways: ms and bytes."""
    raw = git(root, "cat-file", "tree", "HEAD:projects/bench/sessions")
    out = []
    for name, level, strategy in (
        ("zlib level 0 (stored)", 0, zlib.Z_DEFAULT_STRATEGY),
        ("zlib level 1", 1, zlib.Z_DEFAULT_STRATEGY),
        ("zlib level 1, Z_RLE", 1, zlib.Z_RLE),
    ):
        times = []
        for _ in range(rounds):
            began = time.perf_counter()
            compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 8, strategy)
            data = compressor.compress(raw) + compressor.flush()
            times.append(time.perf_counter() - began)
        ms = statistics.median(times) * 1000
        out.append(
            {
                "method": name,
                "raw_bytes": len(raw),
                "bytes": len(data),
                "ms": ms,
                "ms_per_mb": ms / (len(raw) / 1e6),
            }
        )
    return out


def measure(workdir: Path, quick: bool) -> dict[str, Any]:
    """Build (or reuse) the store, run both scenarios, compress the big tree; the figures.

    Args:
        workdir: Scratch folder (the base store is kept there for a next run).
        quick: 500 checkpoints instead of 5,000.

    Returns:
        ``{"short_lived": {...}, "one_process": {...}, "tree_compression": [...], ...}``;
        sizes in bytes.
    """
    default_git_config(workdir)
    n = 500 if quick else 5_000
    base = prepare_base(workdir)
    res: dict[str, Any] = {"quick": quick, "base_git_bytes": du(base / ".git")}
    res["tree_compression"] = tree_compression(base)
    res["short_lived"] = run_scenario(base, workdir / "run-short", n, BATCH)
    shutil.rmtree(workdir / "run-short")
    res["one_process"] = run_scenario(base, workdir / "run-long", n, n)
    shutil.rmtree(workdir / "run-long")
    res["target_ratio"] = TARGET_RATIO
    res["target_met"] = all(res[k]["ratio"] <= TARGET_RATIO for k in ("short_lived", "one_process"))
    return res


def mb(x: int) -> str:
    return f"{x / 1e6:.1f}"


def render(res: dict[str, Any]) -> str:
    rows = []
    for key, label in (("short_lived", "short-lived processes"), ("one_process", "one process")):
        r = res[key]
        rows.append(
            [
                f"{label} ({r['batch']:,} per process)",
                f"{r['checkpoints']:,}",
                mb(r["git_bytes"]),
                mb(r["peak_git_bytes"]),
                f"{r['loose']:,}",
                r["packs"],
                mb(r["gc_bytes"]),
                f"{r['ratio']:.2f}x",
                f"{r['peak_ratio']:.2f}x",
                "ok" if r["fsck_ok"] else "FAILED",
                f"{r['seconds']:.0f}",
            ]
        )
    headers = [
        "checkpoints by",
        "n",
        ".git MB",
        "peak MB",
        "loose",
        "packs",
        "git gc'd MB",
        "ratio",
        "peak ratio",
        "fsck",
        "s",
    ]
    comp = [
        [
            c["method"],
            f"{c['raw_bytes']:,}",
            f"{c['bytes']:,}",
            f"{c['ms']:.2f}",
            f"{c['ms_per_mb']:.1f}",
        ]
        for c in res["tree_compression"]
    ]
    return "\n".join(
        [
            f"### Disk after checkpoints (100,000 files; base .git {mb(res['base_git_bytes'])} MB)",
            "",
            table(headers, rows),
            "",
            f"Target: .git <= {res['target_ratio']}x the gc'd size: "
            f"{'met' if res['target_met'] else 'NOT met'}.",
            "",
            "### The largest tree (sessions folder) compressed",
            "",
            table(["method", "raw bytes", "bytes", "ms", "ms per MB"], comp),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        child_mdsessions(Path(args[1]), int(args[3]), first=int(args[2]), sample=False)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 checkpoints (not 5,000)")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    opts = parser.parse_args(args)
    workdir = opts.workdir or Path(tempfile.mkdtemp(prefix="mdsessions-disk-"))
    try:
        res = measure(workdir, opts.quick)
    finally:
        if not opts.keep and opts.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(render(res))
    if opts.json:
        opts.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
