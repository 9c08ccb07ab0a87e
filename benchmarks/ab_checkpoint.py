"""A/B of the checkpoint path between two checkouts of mdsessions, process by process.

Usage::

    git worktree add /tmp/base <rev>
    python benchmarks/ab_checkpoint.py /tmp/base . --pairs 12 --files 0 2000

For each store size, each pair runs one child process per checkout, back to back: the child
makes a store (plus ``--files`` filler files in one commit, index refreshed), then times 60
rounds of ``save_agent_output`` + ``save_checkpoint(status="in_progress")`` (2 commits) after
10 warm-up rounds and prints the median (ms). The report gives each side's minimum and median
and the median of the per-pair ratios (B / A): on a noisy machine the pairing, not the
absolute times, is what to read. Exit status 0; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import mdsessions
from mdsessions import Store
d = Path(tempfile.mkdtemp())
store = Store.init(d / "s")
n = int(sys.argv[1])
if n:
    for k in range(n):
        f = d / "s" / "projects" / "filler" / "sessions" / f"s{k // 10}" / f"f{k}.md"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("filler " * 300)
    subprocess.run(["git", "add", "-A"], cwd=d / "s", check=True)
    subprocess.run(["git", "commit", "-qm", "filler"], cwd=d / "s", check=True)
    time.sleep(1.1)
    subprocess.run(["git", "update-index", "--refresh", "-q"], cwd=d / "s", check=False)
    store.close()
    store = Store.open(d / "s")
s = store.create_session("bench", "s1")
times = []
for i in range(70):
    t = time.perf_counter()
    s.save_agent_output(1, "concept_expansion", f"# Concept {i}\n" + "text " * 400,
                        input_tokens=100 + i, output_tokens=50)
    s.save_checkpoint(1, status="in_progress")
    if i >= 10:
        times.append(time.perf_counter() - t)
store.close()
shutil.rmtree(d, ignore_errors=True)
print(f"{statistics.median(times) * 1000:.3f} {Path(mdsessions.__file__).resolve().parents[1]}")
"""


def child(checkout: Path, files: int, env: dict[str, str], cwd: str) -> float:
    """One child's median (ms), checked to have imported mdsessions from ``checkout``.

    ``python -c`` puts the working directory first on ``sys.path``: the child runs in an
    empty folder so that only ``PYTHONPATH`` decides which checkout it imports.
    """
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(files)],
        env={**env, "PYTHONPATH": str(checkout)},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    median, _, imported = proc.stdout.strip().partition(" ")
    if Path(imported) != checkout:
        raise SystemExit(f"the child imported mdsessions from {imported}, not {checkout}")
    return float(median)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="baseline checkout (A)")
    parser.add_argument("b", type=Path, help="checkout to compare (B)")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--files", type=int, nargs="+", default=[0, 2000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "gitconfig"
        config.write_text("[user]\n\tname = Bench\n\temail = bench@localhost\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_CONFIG_GLOBAL=str(config), GIT_CONFIG_NOSYSTEM="1")
        print("| filler files | A min / median ms | B min / median ms | median B/A (pairs) |")
        print("|---|---|---|---|")
        for files in args.files:
            rows = []
            for _ in range(args.pairs):
                a_ms = child(args.a.resolve(), files, env, scratch)
                rows.append((a_ms, child(args.b.resolve(), files, env, scratch)))
            a = [r[0] for r in rows]
            b = [r[1] for r in rows]
            ratio = statistics.median(y / x for x, y in rows)
            spread = statistics.quantiles([y / x for x, y in rows], n=4)
            print(
                f"| {files:,} | {min(a):.2f} / {statistics.median(a):.2f} | "
                f"{min(b):.2f} / {statistics.median(b):.2f} | {ratio:.3f}× "
                f"(IQR {spread[0]:.2f}–{spread[2]:.2f}, {len(rows)} pairs) |"
            )


if __name__ == "__main__":
    main()
