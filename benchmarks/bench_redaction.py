"""What redaction costs a save: ``save_agent_output`` with redaction on, beside the same save off.

Two stores side by side, one with ``[redaction] enabled = false``; each round saves the same
agent output (with its prompt: three documents — output, prompt, manifest — and one commit)
to both, in alternating order, so load on the machine falls on both sides alike. Outputs: a
typical agent output (the shared data's ``T1.md``, 4 KB), 20 KB and 100 KB of the shared
MVP spec, and a 4 KB output holding secrets (the redaction path that rewrites a document).
Printed per output: median and interquartile range of a save off and on, their difference
and ratio, and the redactor alone on that output's document (minimum of repeats: the figure
least disturbed by other processes).

    python benchmarks/bench_redaction.py [--rounds 60] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from mdsessions import Store  # noqa: E402
from mdsessions.store.secrets import redact_document  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "haytham"
AGENT = "concept_expansion"  # an agent of phase 1 of the default workflow


def _outputs() -> dict[str, str]:
    typical = (DATA / "agent_outputs" / "concept_expansion" / "T1.md").read_text("utf-8")
    spec = (DATA / "notes_app_mvp_spec.md").read_text("utf-8")
    from secret_samples import SAMPLES

    secrets = "\n".join(secret for _, secret in SAMPLES[:12])
    return {
        "4 KB (T1.md)": typical,
        "20 KB": (spec * 4)[:20000],
        "100 KB": (spec * 16)[:100000],
        "4 KB + 12 secrets": typical[:3000] + "\n" + secrets,
    }


def _store(path: Path, enabled: bool) -> Store:
    store = Store.init(path)
    if not enabled:
        config = store.root / "mdsessions.toml"
        config.write_text(config.read_text("utf-8") + "\n[redaction]\nenabled = false\n", "utf-8")
        subprocess.run(
            ["git", "-C", str(path), "-c", "user.name=b", "-c", "user.email=b@b", "commit"]
            + ["-qam", "redaction off"],
            check=True,
        )
        store.close()
        store = Store.open(path)
    return store


def measure(workdir: Path, rounds: int = 60) -> dict[str, dict[str, Any]]:
    """Per output: save medians/IQR (ms) off and on, their ratio, the redactor alone (ms)."""
    on, off = _store(workdir / "on", True), _store(workdir / "off", False)
    sessions = {True: on.create_session("p", "s"), False: off.create_session("p", "s")}
    out: dict[str, dict[str, Any]] = {}
    try:
        for label, text in _outputs().items():
            times: dict[bool, list[float]] = {True: [], False: []}
            for i in range(rounds):
                for side in (True, False) if i % 2 else (False, True):
                    body = f"{text}\n\nround {i}\n"
                    start = time.perf_counter()
                    session = sessions[side]
                    session.save_agent_output(1, AGENT, body, prompt=body[:2000])
                    times[side].append(time.perf_counter() - start)
            doc = sessions[False].output(1, AGENT)
            assert doc is not None

            def alone(doc: Any = doc) -> object:
                return redact_document(doc, on.redactor, rel="x")

            best = min(timeit.repeat(alone, number=10, repeat=20)) / 10
            row: dict[str, Any] = {}
            for side, name in ((False, "off"), (True, "on")):
                q = statistics.quantiles(times[side], n=4)
                row[name] = (statistics.median(times[side]) * 1e3, q[0] * 1e3, q[2] * 1e3)
            row["ratio"] = row["on"][0] / row["off"][0]
            row["redactor"] = best * 1e3
            out[label] = row
    finally:
        on.close()
        off.close()
    return out


def main() -> None:
    """Run and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-redaction-"))
    try:
        rows = measure(workdir, args.rounds)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'output':18} {'save off ms (IQR)':>22} {'save on ms (IQR)':>22} ratio  redactor ms")
    for label, row in rows.items():
        off, on = row["off"], row["on"]
        print(
            f"{label:18} {off[0]:7.2f} ({off[1]:5.2f}-{off[2]:5.2f}) "
            f"{on[0]:9.2f} ({on[1]:5.2f}-{on[2]:5.2f}) {row['ratio']:6.3f} {row['redactor']:8.3f}"
        )


if __name__ == "__main__":
    main()
