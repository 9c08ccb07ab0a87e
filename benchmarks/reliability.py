#!/usr/bin/env python3
"""reliability.py - run the reliability scenarios of tests/ at FULL size and print the table.

The scenarios are the functions the tests call (tests/test_reliability.py): concurrent writers
(8 processes × 200 checkpoints into their own sessions and into one session; 8 threads), kill -9
at every step of a commit (≥ 200 runs), file-system faults (read-only store, full disk,
permission denied) and a long-running process (10,000 operations); the fuzz and security
suites (tests/test_fuzz.py, tests/test_security.py) run under pytest at the same scale.  The
tests run the same code with counts scaled down (MDSESSIONS_RELIABILITY_SCALE, default 0.05).

    python benchmarks/reliability.py                    # full size (~30 min on 2 cores)
    python benchmarks/reliability.py --scale 0.2        # a fifth
    python benchmarks/reliability.py --only crash,long  # some groups
    python benchmarks/reliability.py --json out.json    # raw figures as well

Prints a markdown report on stdout (progress on stderr) and exits 1 if any scenario failed or
lost data.  Git is isolated like the tests: a private GIT_CONFIG_GLOBAL, GIT_CONFIG_NOSYSTEM=1,
no other GIT_* variables.  Everything is written below --workdir (default: a fresh folder in
the system temp dir, removed at the end unless --keep).  The file-system fault scenarios
mount tmpfs and bind mounts when run as root with mount rights (else they inject the faults
with RLIMIT_FSIZE and file permissions, like the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("concurrency", "crash", "fs", "long", "fuzz")


def isolate_git(workdir: Path) -> None:
    """The tests' git isolation (tests/helpers.py), for this process and its children."""
    from helpers import write_git_config  # noqa: PLC0415 - tests/ is on sys.path by now

    config = write_git_config(workdir)
    for name in list(os.environ):
        if name.startswith("GIT_"):
            del os.environ[name]
    os.environ["GIT_CONFIG_GLOBAL"] = str(config)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, str]:
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    fs = subprocess.run(
        ["df", "-T", tempfile.gettempdir()], capture_output=True, text=True, check=False
    )
    fs_type = fs.stdout.splitlines()[-1].split()[1] if fs.returncode == 0 else "?"
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "mdsessions"],
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = [line[3:] for line in changed.stdout.splitlines()]
    return {
        "library": rev.stdout.strip() + (f" ({', '.join(dirty)} modified)" if dirty else ""),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "cpus": str(os.cpu_count()),
        "git": git.stdout.strip(),
        "temp file system": fs_type,
    }


def run_pytest_suite(scale: float, workdir: Path) -> list[dict[str, Any]]:
    """tests/test_fuzz.py and tests/test_security.py under pytest; one row per file."""
    rows = []
    for name in ("test_fuzz.py", "test_security.py"):
        report = workdir / f"{name}.xml"
        env = dict(os.environ, MDSESSIONS_RELIABILITY_SCALE=str(scale))
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
                f"--basetemp={workdir / name}",
                str(ROOT / "tests" / name),
            ],
            cwd=str(ROOT),
            env=env,
            capture_output=True,
            check=False,
        )
        failures: list[str] = []
        runs = 0
        if report.exists():
            for case in ET.parse(report).getroot().iter("testcase"):
                runs += 1
                bad = case.find("failure")
                if bad is None:
                    bad = case.find("error")
                if bad is not None:
                    first = (bad.get("message") or "").splitlines()[:1]
                    failures.append(f"{case.get('name')}: {first[0][:200] if first else ''}")
        else:
            failures.append("pytest did not run (no report)")
        rows.append(
            {
                "scenario": f"pytest tests/{name} (tests; hypothesis examples × {scale:g})",
                "runs": runs,
                "failures": failures,
                "failed": len(failures),
                "lost": 0,
                "seconds": time.monotonic() - started,
                "figures": {},
            }
        )
    return rows


def scenarios(rel: Any, scale: float) -> dict[str, list[tuple[str, Callable[[Path], Any]]]]:
    """The scenario functions per group, at ``scale`` × full size."""

    def n(full: int, minimum: int = 1) -> int:
        return max(minimum, round(full * scale))

    count = n(200, 2)

    def full_disk_case(label: str, make: Callable[[int], str]) -> Callable[[Path], Any]:
        def run(workdir: Path) -> Any:
            outcome = rel.Outcome(f"full disk: {label}")
            rel._full_disk_run(outcome, workdir, label, make)
            return outcome

        return run

    return {
        "concurrency": [
            ("p-own", lambda wd: rel.concurrency_processes(wd, shared=False, count=count)),
            ("p-one", lambda wd: rel.concurrency_processes(wd, shared=True, count=count)),
            ("t-own", lambda wd: rel.concurrency_threads(wd, shared=False, count=count)),
            ("t-one", lambda wd: rel.concurrency_threads(wd, shared=True, count=count)),
        ],
        "crash": [
            (name, lambda wd, name=name, p=p: rel.crash_runs(wd, name, runs=n(p.full_runs, 1)))
            for name, p in rel.KILL_POINTS.items()
        ],
        "fs": [
            ("ro", rel.fs_read_only),
            (
                "full-objects",
                full_disk_case("4 MB random output", lambda i: rel._random_text(4_000_000, i)),
            ),
            (
                "full-worktree",
                full_disk_case(
                    "2 MB repetitive output", lambda i: rel._compressible_text(2_000_000, i)
                ),
            ),
            ("full-gradual", lambda wd: rel.fs_full_disk(wd, runs=n(40, 2))),
            *[
                (f"perm-{i}", lambda wd, t=target: rel.fs_permission_denied(wd, t))
                for i, target in enumerate(rel.PERMISSION_TARGETS)
            ],
        ],
        "long": [("long", lambda wd: rel.long_running(wd, ops=n(10_000, 100)))],
    }


def as_row(outcome: Any) -> dict[str, Any]:
    return {
        "scenario": outcome.scenario,
        "runs": outcome.runs,
        "failures": list(outcome.failures),
        "failed": outcome.failed,
        "lost": outcome.lost,
        "seconds": outcome.seconds,
        "figures": outcome.figures,
    }


def report(rows: list[dict[str, Any]], info: dict[str, str], scale: float) -> str:
    out = [
        f"# mdsessions reliability, scale {scale:g} "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        "",
        "| scenario | runs | failed | data lost | seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        out.append(
            f"| {row['scenario']} | {row['runs']} | {row['failed']} | {row['lost']} "
            f"| {row['seconds']:.0f} |"
        )
    crash = [r for r in rows if r["scenario"].startswith("kill -9")]
    if crash:
        out.append(
            f"| **kill -9, all points** | **{sum(r['runs'] for r in crash)}** | "
            f"**{sum(r['failed'] for r in crash)}** | **{sum(r['lost'] for r in crash)}** "
            f"| {sum(r['seconds'] for r in crash):.0f} |"
        )
    long = [r for r in rows if r["scenario"].startswith("long-running")]
    for row in long:
        f = row["figures"]
        out += [
            "",
            f"## {row['scenario']}",
            "",
            f"{f['ms per op']:.1f} ms per operation.",
            "",
            "| measure | peak | growth after warm-up (10 %) | growth in the second half |",
            "|---|---:|---:|---:|",
        ]
        for key, label in (
            ("fds", "open file handles"),
            ("children", "child processes"),
            ("rss_mib", "RSS (MiB)"),
            ("traced_mib", "traced Python memory (MiB)"),
        ):
            out.append(
                f"| {label} | {f['peak'][key]:.1f} | {f['growth after warm-up'][key]:+.1f} "
                f"| {f['growth in the second half'][key]:+.1f} |"
            )
        out += [
            "",
            f"After close(): {f['after close']['fds']:+d} file handles, "
            f"{f['after close']['children']:+d} child processes.",
            "",
            "Top growth in the second half (tracemalloc): "
            + "; ".join(f["top growth, second half"]),
            "",
            "| op | fds | children | RSS MiB | traced MiB | s |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for s in f["samples"]:
            out.append(
                f"| {s['op']} | {s['fds']} | {s['children']} | {s['rss_mib']:.1f} "
                f"| {s['traced_mib']:.2f} | {s['elapsed_s']:.0f} |"
            )
    failed = [r for r in rows if r["failures"]]
    if failed:
        out += ["", "## Failures", ""]
        for row in failed:
            out.append(f"### {row['scenario']} ({row['failed']} failed)")
            out.append("")
            for failure in row["failures"][:12]:
                out.append(f"- {failure[:400]}")
            if len(row["failures"]) > 12:
                out.append(f"- … and {len(row['failures']) - 12} more")
            out.append("")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"groups: {', '.join(GROUPS)}")
    parser.add_argument("--workdir", type=Path, help="where stores are made (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = set(groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups: {sorted(unknown)}")

    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="mds-reliability-bench-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    isolate_git(workdir)
    os.environ["MDSESSIONS_RELIABILITY_SCALE"] = str(args.scale)
    import test_reliability as rel  # noqa: PLC0415 - after the scale is set

    info = machine()
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        plan = scenarios(rel, args.scale)
        for group in groups:
            if group == "fuzz":
                log("fuzz + security: pytest …")
                rows += run_pytest_suite(args.scale, workdir)
                continue
            for key, run in plan[group]:
                folder = workdir / f"{group}-{key}"
                folder.mkdir()
                log(f"{group} {key} …")
                t0 = time.monotonic()
                try:
                    outcome = run(folder)
                    row = as_row(outcome)
                    row["seconds"] = time.monotonic() - t0
                except Exception:
                    row = {
                        "scenario": f"{group} {key}",
                        "runs": 0,
                        "failures": ["crashed: " + traceback.format_exc().replace("\n", " | ")],
                        "failed": 1,
                        "lost": 0,
                        "seconds": time.monotonic() - t0,
                        "figures": {},
                    }
                rows.append(row)
                log(
                    f"  {row['scenario']}: {row['runs']} runs, {row['failed']} failed, "
                    f"{row['lost']} lost, {row['seconds']:.0f} s"
                )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    log(f"total {time.monotonic() - started:.0f} s")
    print(report(rows, info, args.scale), end="")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=2, default=str))
    return 1 if any(r["failures"] or r["lost"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
