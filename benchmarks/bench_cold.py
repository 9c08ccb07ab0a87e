#!/usr/bin/env python3
"""bench_cold.py - the commands a person types, each a fresh process, on a 10,000-session store.

Issue 13, deliverable 4 ("Cold commands"). Measured, each as a new ``python -m mdsessions``
process (wall time and the process's own max RSS, from ``os.wait4``):

* **first list**: ``mdsessions list`` in a fresh ``git clone`` of the store (no cache: every
  manifest is read and parsed). Median of 3 clones. Target ≤ 2 s and ≤ 100 MB.
* **warm list --json**: ``mdsessions list --json`` with the cache built (and the clone's files
  older than the racy window). Median of 5. Target ≤ 300 ms and ≤ 80 MB.
* **status --json** of one session. Median of 5. Target ≤ 120 ms.
* **--help**. Median of 5. Target ≤ 0.5× the dependencies' import time.

Baselines in the same run, interleaved with the commands round by round (the machine is
shared and noisy: compare the ratios, not one absolute figure): ``git clone`` itself,
``git ls-files | wc -l``, ``git grep -c 'status: awaiting_review'`` over the manifests, and
``python -c "import git, frontmatter, jinja2, click, pydantic"`` (the dependencies' import).

The store is built once by ``_stores.make_store`` (10,000 sessions in 10 projects; 2,000 with
``--quick``). Child processes import this checkout (``PYTHONPATH``) and may write bytecode
(into ``<workdir>/pycache``, never into the tree), as an installed package would; one untimed
run of each command warms it. Every git process gets a private configuration
(``bench_checkpoint.setup_env``).

    python benchmarks/bench_cold.py                 # ~2-3 min (builds the store)
    python benchmarks/bench_cold.py --quick         # 2,000 sessions, ~1 min
    python benchmarks/bench_cold.py --json out.json # the figures as JSON too

Prints a markdown table on stdout (progress on stderr); exits 1 if a check fails (the first
listing differs from the warm one, or ``list --json`` is not the listing).
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _stores import make_store  # noqa: E402
from bench_checkpoint import setup_env, sysinfo  # noqa: E402

SESSIONS = 10_000
QUICK_SESSIONS = 2_000
ROUNDS = 5
CLONES = 3
STATUS_REF = "proj-003/s-000013"
DEPS = "import git, frontmatter, jinja2, click, pydantic"

#: name -> (seconds, MB) targets (None: none); the help target is relative (see _verdicts).
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "first list": (2.0, 100.0),
    "warm list --json": (0.3, 80.0),
    "status --json": (0.12, None),
}


def _env(workdir: Path) -> dict[str, str]:
    """The children's environment: this checkout, bytecode cached outside the tree."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    env["PYTHONPATH"] = str(REPO_ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    return env


TIME = shutil.which("time", path="/usr/bin:/bin")  # GNU time: the child's own max RSS


def run(
    cmd: Sequence[str], cwd: Path, env: dict[str, str], out: Path | None = None
) -> dict[str, Any]:
    """Run one process; its wall time (s) and its own max RSS (MB).

    The RSS comes from GNU ``time`` (``%M``) when it is installed: a child forked from this
    (larger) Python process and measured with ``os.wait4`` would report this process's RSS
    at the fork as its own maximum when that is larger (Linux keeps the pre-exec
    high-water mark). Without ``time``, ``os.wait4``'s figure (an upper bound).

    Raises:
        RuntimeError: If it exits with a status other than 0.
    """
    argv = list(cmd)
    with tempfile.NamedTemporaryFile(prefix="rss-", suffix=".txt", delete=False) as f:
        rss_file = Path(f.name)
    if TIME is not None:
        argv = [TIME, "-f", "%M", "-o", str(rss_file), *argv]
    sink = out.open("wb") if out is not None else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=sink, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stderr.close()
        kb = usage.ru_maxrss  # KB on Linux
        if TIME is not None:
            text = rss_file.read_text().strip().splitlines()
            kb = int(text[-1]) if text and text[-1].isdigit() else kb
    finally:
        rss_file.unlink(missing_ok=True)
        if out is not None:
            sink.close()  # type: ignore[union-attr]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-500:]!r}")
    return {"s": seconds, "mb": kb / 1024}


def _mds(*args: str) -> list[str]:
    return [sys.executable, "-m", "mdsessions", *args]


def _clone(store: Path, dest: Path, env: dict[str, str]) -> dict[str, Any]:
    if dest.exists():
        shutil.rmtree(dest)
    return run(["git", "clone", "-q", str(store), str(dest)], dest.parent, env)


def _listing(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def measure(workdir: Path, quick: bool) -> dict[str, Any]:
    """Build the store, run every command and baseline interleaved; the figures as JSON data.

    Args:
        workdir: A folder for the store, its clones and the bytecode cache (created).
        quick: 2,000 sessions instead of 10,000.

    Returns:
        ``{"sessions", "rounds", "commands": {name: {"s": [...], "mb": [...], "median_s",
        "min_s", "max_s", "median_mb", ...}}, "ratios", "verdicts", "checks", "sysinfo"}``.

    Raises:
        RuntimeError: If a command fails or a check does not hold.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    setup_env(workdir)
    env = _env(workdir)
    sessions = QUICK_SESSIONS if quick else SESSIONS
    store = workdir / f"store-{sessions}"
    done = workdir / f"store-{sessions}.built"  # written once the store is complete
    if not done.exists():
        if store.exists():
            shutil.rmtree(store)
        print(f"building a store of {sessions:,} sessions ...", file=sys.stderr)
        built = make_store(store, sessions)
        done.write_text(f"{built.seconds:.1f} s\n", encoding="utf-8")
        print(f"  built in {built.seconds:.1f} s", file=sys.stderr)
    warm = workdir / "warm"
    _clone(store, warm, env)
    time.sleep(2.1)  # the clone's files out of the racy window: the cache then trusts them
    run(_mds("list"), warm, env, workdir / "warm-list.txt")  # builds the cache, warms bytecode
    run(_mds("list"), warm, env, workdir / "warm-list.txt")
    run(_mds("list", "--json"), warm, env, workdir / "warm-list.json")
    run(_mds("status", STATUS_REF, "--json"), warm, env)
    run(_mds("--help"), warm, env)
    run([sys.executable, "-c", DEPS], warm, env)

    commands: dict[str, dict[str, Any]] = {}

    def record(name: str, figures: dict[str, Any]) -> None:
        entry = commands.setdefault(name, {"s": [], "mb": []})
        entry["s"].append(figures["s"])
        entry["mb"].append(figures["mb"])

    shell = ["bash", "-c"]
    steps: list[tuple[str, list[str]]] = [
        ("warm list --json", _mds("list", "--json")),
        ("warm list", _mds("list")),
        ("status --json", _mds("status", STATUS_REF, "--json")),
        ("--help", _mds("--help")),
        ("import the dependencies", [sys.executable, "-c", DEPS]),
        ("git ls-files | wc -l", [*shell, "git ls-files | wc -l"]),
        (
            "git grep -c 'status: awaiting_review'",
            [*shell, "git grep -c 'status: awaiting_review' -- '*/session_manifest.md' | wc -l"],
        ),
    ]
    checks: list[str] = []
    rng = random.Random(13)
    for r in range(ROUNDS):
        print(f"round {r + 1}/{ROUNDS}", file=sys.stderr)
        order = list(steps)
        rng.shuffle(order)
        if r < CLONES:
            clone = workdir / f"clone-{r}"
            record("git clone", _clone(store, clone, env))
            out = workdir / f"first-list-{r}.txt"
            record("first list", run(_mds("list"), clone, env, out))
            if _listing(out) != _listing(workdir / "warm-list.txt"):
                checks.append(f"first list after clone {r} differs from the warm listing")
            shutil.rmtree(clone)
        for name, cmd in order:
            record(name, run(cmd, warm, env))
    entries = json.loads((workdir / "warm-list.json").read_text(encoding="utf-8"))
    if len(entries) != sessions:
        checks.append(f"list --json printed {len(entries)} entries, not {sessions}")
    for entry in commands.values():
        entry["median_s"] = statistics.median(entry["s"])
        entry["min_s"], entry["max_s"] = min(entry["s"]), max(entry["s"])
        entry["median_mb"] = statistics.median(entry["mb"])
        entry["max_mb"] = max(entry["mb"])
    deps = commands["import the dependencies"]["median_s"]
    ratios = {
        "first list / git clone": commands["first list"]["median_s"]
        / commands["git clone"]["median_s"],
        "first list / git ls-files": commands["first list"]["median_s"]
        / commands["git ls-files | wc -l"]["median_s"],
        "warm list --json / import the dependencies": commands["warm list --json"]["median_s"]
        / deps,
        "status --json / import the dependencies": commands["status --json"]["median_s"] / deps,
        "--help / import the dependencies": commands["--help"]["median_s"] / deps,
    }
    verdicts: dict[str, bool | None] = {}
    for name, (seconds, mb) in TARGETS.items():
        c = commands[name]
        ok = (seconds is None or c["median_s"] <= seconds) and (mb is None or c["median_mb"] <= mb)
        verdicts[name] = None if quick else ok
    verdicts["--help"] = ratios["--help / import the dependencies"] <= 0.5
    shutil.rmtree(warm, ignore_errors=True)
    return {
        "sessions": sessions,
        "rounds": ROUNDS,
        "clones": CLONES,
        "commands": commands,
        "ratios": ratios,
        "verdicts": verdicts,
        "checks": checks,
        "sysinfo": sysinfo(),
    }


def _target_text(name: str) -> str:
    if name == "--help":
        return "≤ 0.5× deps import"
    seconds, mb = TARGETS.get(name, (None, None))
    parts = []
    if seconds is not None:
        parts.append(f"≤ {seconds * 1000:,.0f} ms" if seconds < 1 else f"≤ {seconds:g} s")
    if mb is not None:
        parts.append(f"≤ {mb:g} MB")
    return ", ".join(parts) or "baseline"


def render(results: dict[str, Any]) -> str:
    """The markdown report of :func:`measure`'s figures."""
    si = results["sysinfo"]
    lines = [
        f"# Cold commands: {results['sessions']:,} sessions",
        "",
        f"- python {si['python']} · {si['git']} · {si['cpus']} CPUs · checkout {si['checkout']}",
        f"- each a fresh process; median of {results['rounds']} (first list: "
        f"{results['clones']} clones), min–max in brackets; max RSS of the process",
        "",
        "| command | median | min–max | max RSS (MB) | target | met |",
        "|---|---|---|---|---|---|",
    ]
    verdicts = results["verdicts"]
    for name, c in results["commands"].items():
        verdict = verdicts.get(name, "")
        met = {True: "yes", False: "**no**", None: "n/a (quick)"}.get(verdict, "")  # type: ignore[call-overload]
        lines.append(
            f"| {name} | {_ms(c['median_s'])} | {_ms(c['min_s'])}–{_ms(c['max_s'])} | "
            f"{c['median_mb']:.0f} | {_target_text(name) if name in verdicts else 'baseline'} "
            f"| {met} |"
        )
    lines += ["", "| ratio (medians) | value |", "|---|---|"]
    lines += [f"| {k} | {v:.2f}× |" for k, v in results["ratios"].items()]
    if results["checks"]:
        lines += ["", "Checks failed:", *(f"- {c}" for c in results["checks"])]
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="2,000 sessions")
    parser.add_argument("--workdir", type=Path, help="keep the store and clones here")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.workdir is not None:
        results = measure(args.workdir, args.quick)
    else:
        with tempfile.TemporaryDirectory(prefix="mdsessions-cold-") as tmp:
            results = measure(Path(tmp), args.quick)
    print(render(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 1 if results["checks"] else 0


if __name__ == "__main__":
    sys.exit(main())
