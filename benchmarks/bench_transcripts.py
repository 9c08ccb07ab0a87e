"""Transcripts: commit time of 10,000 messages, per-turn flushes, two prunes, recovery.

``python benchmarks/bench_transcripts.py [--quick]`` prints one line per figure:

* ``record``: 10,000 messages recorded into the buffer (no commit), seconds;
* ``flush 10k``: those messages committed at once (one commit), seconds — the commit time of
  the issue's acceptance ("well under a second");
* ``flush per turn at N``: one turn of 2 messages committed onto a transcript that already
  holds N messages (the file is rendered whole each flush, so this grows with N);
* ``prune`` / ``smart_prune``: each one commit; ``recover``: every pruned message read back
  from history (``pruned_messages``), and the count checked;
* the baseline beside each: ``git commit`` of the same file bytes by the git CLI
  (``git add`` + ``git commit``), so the ratio says what mdsessions adds to git's own cost.

Each figure is the median of 5 runs (2 with ``--quick``), with min and max as the noise.
``measure(workdir, quick)`` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mdsessions import Store

N = 10_000


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _one_round(work: Path, n: int) -> dict[str, float]:
    store = Store.init(work / "store")
    session = store.create_session("bench", session_id="s1", idea="bench")
    log = session.transcript("agent", max_buffer=n + 1)
    began = time.perf_counter()
    for i in range(n):
        log.record_message(
            role="user" if i % 2 else "assistant",
            content=f"message {i}: " + ("an error happened" if i % 97 == 0 else "all fine") * 4,
        )
    out = {"record": time.perf_counter() - began}
    began = time.perf_counter()
    log.flush()
    out["flush 10k"] = time.perf_counter() - began
    log.record_message(role="user", content="one more question")
    log.record_message(role="assistant", content="one more answer")
    began = time.perf_counter()
    log.flush()
    out[f"flush per turn at {n}"] = time.perf_counter() - began
    path = store.root / log.rel
    data = path.read_bytes()
    began = time.perf_counter()
    first = log.prune(keep_last=n // 2)
    out["prune"] = time.perf_counter() - began
    began = time.perf_counter()
    second = log.smart_prune(keep_keywords=["error"], keep_last=n // 10)
    out["smart_prune"] = time.perf_counter() - began
    began = time.perf_counter()
    pruned = log.pruned_messages()
    out["recover"] = time.perf_counter() - began
    assert len(pruned) == len(first.removed) + len(second.removed)
    store.close()
    # Baseline: git itself committing the same transcript bytes.
    plain = work / "plain"
    _git(work, "init", "-q", "-b", "main", str(plain))
    target = plain / "t.md"
    target.write_bytes(data)
    began = time.perf_counter()
    _git(plain, "add", "t.md")
    _git(plain, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "t")
    out["git add+commit (baseline)"] = time.perf_counter() - began
    return out


def measure(workdir: Path, quick: bool) -> dict[str, Any]:
    """Run the rounds and return ``{figure: {"median", "min", "max"}}`` in seconds."""
    rounds = 2 if quick else 5
    n = 1_000 if quick else N
    runs = []
    for r in range(rounds):
        folder = workdir / f"round{r}"
        folder.mkdir()
        runs.append(_one_round(folder, n))
    return {
        key: {
            "median": statistics.median(run[key] for run in runs),
            "min": min(run[key] for run in runs),
            "max": max(run[key] for run in runs),
        }
        for key in runs[0]
    }


def main(argv: list[str] | None = None) -> None:
    """Print the figures, one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(Path(tmp), args.quick)
    for key, value in figures.items():
        print(
            f"{key:32} {value['median'] * 1000:9.1f} ms  "
            f"(min {value['min'] * 1000:.1f}, max {value['max'] * 1000:.1f})"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
