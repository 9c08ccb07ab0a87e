#!/usr/bin/env python3
"""bench_checkpoint.py - what one mdsessions checkpoint costs, next to the git CLI doing the same.

One "checkpoint" is what a runner does after an agent finished a phase step:

* ``mdsessions``:   ``session.save_agent_output(1, agent, content)`` +
  ``session.save_checkpoint(1, status="in_progress")``  (2 commits through the library;
  each also rewrites ``session_manifest.md`` when it changed);
* ``git CLI``:      write the same two markdown files (same paths, same sizes) +
  ``git add <the 2 files>`` + ``git commit -q -m msg``  (2 git processes, 1 commit);
* ``atomic write``: the same two files written as temp file + ``os.replace`` into a plain
  folder, no git at all (the seed-003 way; no fsync).

Every method works on its own copy of the same base store (``Store.init`` + N filler
markdown files committed with ``git fast-import``).  The methods run interleaved (one op
of each per round, in shuffled order) after a few warm-up rounds, so machine noise hits
all of them alike.  Reported per size and method: median and p95 latency (ms), sequential
throughput (ops/s = 1000 / mean ms) and the ratio of medians against the git CLI.  After
the timed loop every git-backed copy is checked: ``git status --porcelain`` is empty and
the commit count grew by exactly 2 per mdsessions checkpoint / 1 per git CLI checkpoint.

    python benchmarks/bench_checkpoint.py --quick          # < 60 s (sizes 100 and 2,000)
    python benchmarks/bench_checkpoint.py                  # sizes 100 and 10,000, < 5 min
    python benchmarks/bench_checkpoint.py --sizes 100000 --rounds 30
    python benchmarks/bench_checkpoint.py --profile 20     # + cProfile of the mdsessions path

Isolation: every git process gets a private GIT_CONFIG_GLOBAL (user, init.defaultBranch=main),
GIT_CONFIG_NOSYSTEM=1, LC_ALL=C and no other GIT_* variables.  Nothing outside --workdir
(default: a fresh folder in the system temp dir, removed at the end unless --keep) is written.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AUTHOR_NAME = "Bench"
AUTHOR_EMAIL = "bench@example.invalid"
PROJECT = "bench"
SESSION = "s-bench"
PHASE = 1
AGENT = "concept_expansion"
TARGET_RATIO = 0.5  # mdsessions median must be <= 0.5x the git CLI median
BASELINE = "git CLI (add + commit)"
REPO_ROOT = Path(__file__).resolve().parent.parent

# The files of one filler session (10 per session, laid out like real sessions).
FILLER_NAMES = (
    "notes.md",
    "phase_1_concept/checkpoint.md",
    "phase_1_concept/concept_expansion.md",
    "phase_1_concept/user_feedback.md",
    "phase_2_market/checkpoint.md",
    "phase_2_market/market_research.md",
    "phase_3_risks/checkpoint.md",
    "phase_3_risks/risk_analysis.md",
    "phase_6_plan/checkpoint.md",
    "phase_6_plan/mvp_plan.md",
)


# --------------------------------------------------------------------------------------------
# environment and git
# --------------------------------------------------------------------------------------------


def setup_env(workdir: Path) -> Path:
    """Point every git process at a private config; drop the caller's GIT_* variables."""
    workdir.mkdir(parents=True, exist_ok=True)
    gitconfig = workdir / "gitconfig"
    gitconfig.write_text(
        f"[user]\n\tname = {AUTHOR_NAME}\n\temail = {AUTHOR_EMAIL}\n"
        "[init]\n\tdefaultBranch = main\n"
        "[commit]\n\tgpgsign = false\n"
        "[gc]\n\tauto = 0\n"  # no background gc in the middle of a timed loop (both sides)
        "[maintenance]\n\tauto = false\n",
        encoding="utf-8",
    )
    for key in list(os.environ):
        if key.startswith("GIT_"):
            del os.environ[key]
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    os.environ["GIT_TERMINAL_PROMPT"] = "0"
    os.environ["LC_ALL"] = "C"
    return gitconfig


def git(cwd: Path | None, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
    """Run one git process; return its stdout."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()[:500]}"
        )
    return proc.stdout


def commit_count(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "HEAD"))


def loose_objects(repo: Path) -> int:
    """Number of loose object files in the repository."""
    objects = repo / ".git" / "objects"
    return sum(1 for d in objects.iterdir() if len(d.name) == 2 and d.is_dir() for _ in d.iterdir())


def status_porcelain(repo: Path) -> str:
    return git(repo, "status", "--porcelain").decode("utf-8", "replace")


def load_mdsessions() -> Any:
    """Import mdsessions (from the checkout this script lives in if it is not installed)."""
    try:
        import mdsessions.store as store_mod
    except ImportError:
        sys.path.insert(0, str(REPO_ROOT))
        import mdsessions.store as store_mod
    return store_mod


# --------------------------------------------------------------------------------------------
# content
# --------------------------------------------------------------------------------------------

_WORDS = (
    "agent session checkpoint state tool call result plan step memory context prompt model "
    "token file commit branch review summary note error retry user goal task output input "
    "decision next done pending design test build deploy metric latency market risk concept"
).split()


def _paragraphs(n: int = 300, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choices(_WORDS, k=rng.randint(40, 80))).capitalize() + "." for _ in range(n)
    ]


PARAGRAPHS = _paragraphs()


def markdown_text(key: str, target: int) -> str:
    """Deterministic markdown prose of exactly ``target`` characters."""
    rng = random.Random(zlib.crc32(key.encode()))
    parts = [f"# {key}\n\n"]
    size = len(parts[0])
    while size < target:
        para = rng.choice(PARAGRAPHS) + "\n\n"
        parts.append(para)
        size += len(para)
    return "".join(parts)[:target]


def filler_doc(f: int, c: int) -> bytes:
    head = f"---\nkind: filler\nfile: {f}\ncommit: {c}\n---\n\n"
    return (head + markdown_text(f"filler {f}", 2000 - len(head))).encode()


AGENT_BODY = markdown_text("Concept expansion", 1750)


def agent_content(i: int) -> str:
    """The agent output of round ``i`` (differs every round)."""
    return f"{AGENT_BODY}\n\nRound {i}.\n"


# --------------------------------------------------------------------------------------------
# base store: Store.init + N filler files via git fast-import
# --------------------------------------------------------------------------------------------


def filler_path(f: int) -> str:
    session, name = divmod(f, len(FILLER_NAMES))
    return f"projects/{PROJECT}/sessions/s{session}/{FILLER_NAMES[name]}"


def build_base(path: Path, nfiles: int, ncommits: int, store_mod: Any) -> dict[str, float]:
    """Create a store with ``nfiles`` filler files added in ``ncommits`` commits, checked out."""
    if path.exists():
        shutil.rmtree(path)
    t0 = time.perf_counter()
    store_mod.Store.init(path).close()
    init_commit = git(path, "rev-parse", "HEAD").strip()
    ncommits = max(1, min(ncommits, nfiles)) if nfiles else 0
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"], cwd=path, stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    out = io.BufferedWriter(proc.stdin, buffer_size=1 << 20)
    when = int(time.time()) - 86_400
    who = f"{AUTHOR_NAME} <{AUTHOR_EMAIL}>".encode()
    for c in range(ncommits):
        lo, hi = c * nfiles // ncommits, (c + 1) * nfiles // ncommits
        msg = f"filler {c}: files {lo}..{hi - 1}\n".encode()
        out.write(b"commit refs/heads/main\nmark :%d\n" % (c + 1))
        out.write(b"committer %s %d +0000\n" % (who, when + c))
        out.write(b"data %d\n%s" % (len(msg), msg))
        out.write(b"from %s\n" % init_commit if c == 0 else b"from :%d\n" % c)
        for f in range(lo, hi):
            data = filler_doc(f, c)
            out.write(
                b"M 100644 inline %s\ndata %d\n%s\n" % (filler_path(f).encode(), len(data), data)
            )
    out.write(b"done\n")
    out.flush()
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    t_import = time.perf_counter() - t0
    git(path, "reset", "-q", "--hard", "main")  # check the filler files out
    time.sleep(1.1)  # let the files' mtimes fall behind the index: no racily clean entries
    git(path, "update-index", "-q", "--refresh")
    leftover = status_porcelain(path)
    if leftover:
        raise RuntimeError(f"base store is not clean after the build:\n{leftover[:500]}")
    return {"import_s": t_import, "total_s": time.perf_counter() - t0}


def copy_repo(base: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    subprocess.run(["cp", "-a", str(base), str(dest)], check=True)
    git(dest, "update-index", "-q", "--refresh")  # inodes and ctimes changed with the copy


# --------------------------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------------------------


@dataclass
class Method:
    """One way to take a checkpoint; ``op(i)`` is what gets timed."""

    name: str
    root: Path
    commits_per_op: int = 0  # 0: not a git method
    part_names: tuple[str, ...] = ()
    parts: list[tuple[int, ...]] = field(default_factory=list)
    ops: int = 0
    start_commits: int = 0
    start_loose: int = 0
    samples: list[float] = field(default_factory=list)  # timed ops, ms (bench.py)

    def op(self, i: int) -> None:
        raise NotImplementedError

    def last_round_check(self, i: int) -> bool:
        return True

    def close(self) -> None:
        pass


class MdsessionsMethod(Method):
    """save_agent_output + save_checkpoint through the library (2 commits)."""

    def __init__(self, root: Path, store_mod: Any) -> None:
        super().__init__("mdsessions", root, 2, ("save_agent_output", "save_checkpoint"))
        self.store = store_mod.Store.open(root)
        self.session = self.store.create_session(PROJECT, SESSION)
        self.phase_dir = root / self.session.phase_rel(PHASE)

    def op(self, i: int) -> None:
        t0 = time.perf_counter_ns()
        self.session.save_agent_output(
            PHASE,
            AGENT,
            agent_content(i),
            model="bench-model",
            input_tokens=1000 + i,
            output_tokens=500 + i,
            duration=1.5,
        )
        t1 = time.perf_counter_ns()
        # The tokens above change the checkpoint's agent table, so this is a real commit too.
        self.session.save_checkpoint(PHASE, status="in_progress")
        t2 = time.perf_counter_ns()
        self.parts.append((t1 - t0, t2 - t1))

    def files(self) -> tuple[Path, Path]:
        return self.phase_dir / f"{AGENT}.md", self.phase_dir / "checkpoint.md"

    def last_round_check(self, i: int) -> bool:
        rel = (self.phase_dir / f"{AGENT}.md").relative_to(self.root).as_posix()
        return f"Round {i}.".encode() in git(self.root, "cat-file", "blob", f"HEAD:{rel}")

    def close(self) -> None:
        self.store.close()


class Payload:
    """The two files the non-library methods write: mdsessions' own rendered bytes, per round."""

    def __init__(
        self, rel_agent: str, agent_bytes: bytes, rel_ckpt: str, ckpt_bytes: bytes
    ) -> None:
        marker = b"Round 0."
        if marker not in agent_bytes:
            raise RuntimeError("calibration: the agent output file does not hold its content")
        self.rel_agent, self.rel_ckpt = rel_agent, rel_ckpt
        self.agent_head, _, self.agent_tail = agent_bytes.partition(marker)
        self.ckpt = ckpt_bytes.rstrip(b"\n")

    def files(self, i: int) -> list[tuple[str, bytes]]:
        return [
            (self.rel_agent, self.agent_head + b"Round %d." % i + self.agent_tail),
            (self.rel_ckpt, self.ckpt + b"\n- round %d\n" % i),
        ]


def write_plain(root: Path, rel: str, data: bytes) -> None:
    target = root / rel
    try:
        fh = target.open("wb")
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
        fh = target.open("wb")
    with fh:
        fh.write(data)


class GitCliMethod(Method):
    """Write the 2 files, then ``git add`` + ``git commit`` (2 processes, 1 commit)."""

    def __init__(self, root: Path, payload: Payload) -> None:
        super().__init__(BASELINE, root, 1, ("write files", "git add", "git commit"))
        self.payload = payload

    def op(self, i: int) -> None:
        files = self.payload.files(i)
        t0 = time.perf_counter_ns()
        for rel, data in files:
            write_plain(self.root, rel, data)
        t1 = time.perf_counter_ns()
        git(self.root, "add", "--", *[rel for rel, _ in files])
        t2 = time.perf_counter_ns()
        git(self.root, "commit", "-q", "-m", f"checkpoint {i}")
        t3 = time.perf_counter_ns()
        self.parts.append((t1 - t0, t2 - t1, t3 - t2))

    def last_round_check(self, i: int) -> bool:
        rel, data = self.payload.files(i)[0]
        return git(self.root, "cat-file", "blob", f"HEAD:{rel}") == data


class AtomicWriteMethod(Method):
    """Temp file + os.replace for each of the 2 files, no git (no fsync)."""

    def __init__(self, root: Path, payload: Payload) -> None:
        super().__init__("atomic write, no git", root)
        self.payload = payload

    def op(self, i: int) -> None:
        for rel, data in self.payload.files(i):
            target = self.root / rel
            tmp = target.with_name(f".{target.name}.tmp")
            try:
                fh = tmp.open("wb")
            except FileNotFoundError:
                target.parent.mkdir(parents=True, exist_ok=True)
                fh = tmp.open("wb")
            with fh:
                fh.write(data)
            tmp.replace(target)

    def last_round_check(self, i: int) -> bool:
        rel, data = self.payload.files(i)[0]
        return (self.root / rel).read_bytes() == data


# --------------------------------------------------------------------------------------------
# statistics and formatting
# --------------------------------------------------------------------------------------------


def percentile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


def summarize(xs: Sequence[float]) -> dict[str, float]:
    mean = statistics.fmean(xs)
    return {
        "n": len(xs),
        "median": statistics.median(xs),
        "p95": percentile(xs, 0.95),
        "mean": mean,
        "ops_s": 1000.0 / mean,
    }


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 1:
        return f"{x:.2f}"
    return f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def fmt_ratio(x: float) -> str:
    return f"{x:.3f}×" if x < 0.1 else f"{x:.2f}×"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# one size
# --------------------------------------------------------------------------------------------


def default_rounds(nfiles: int, quick: bool) -> tuple[int, int]:
    """(timed rounds, warm-up rounds) for a store of ``nfiles`` files."""
    if quick:
        return (80, 3) if nfiles <= 500 else (50, 3)
    if nfiles <= 2_000:
        return 300, 5
    if nfiles <= 20_000:
        return 150, 5
    return 40, 3


def run_size(
    nfiles: int,
    args: argparse.Namespace,
    store_mod: Any,
    rng: random.Random,
    log: Callable[[str], None],
) -> dict[str, Any]:
    workdir: Path = args.workdir
    ncommits = args.commits if args.commits is not None else min(nfiles, 10_000)
    base = workdir / f"base-{nfiles}"
    log(f"size {nfiles:,}: building the base store ({nfiles:,} files in {ncommits:,} commits)")
    build = build_base(base, nfiles, ncommits, store_mod)
    index_bytes = (base / ".git" / "index").stat().st_size
    log(f"  built in {build['total_s']:.1f} s (fast-import {build['import_s']:.1f} s); copying")
    md_root, cli_root, plain_root = (workdir / f"{nfiles}-{k}" for k in ("mds", "cli", "plain"))
    # The git CLI gets a cp -a copy of the base; mdsessions gets the base itself (moved), whose
    # index is refreshed the same way, so both start from the same commit, files and index.
    copy_repo(base, cli_root)
    if md_root.exists():
        shutil.rmtree(md_root)
    base.rename(md_root)
    git(md_root, "update-index", "-q", "--refresh")
    if plain_root.exists():
        shutil.rmtree(plain_root)
    plain_root.mkdir(parents=True)

    mds = MdsessionsMethod(md_root, store_mod)
    # Calibration: one checkpoint through the library gives the exact bytes (and paths) of
    # the two files; the other methods write those bytes (with the round number) each round.
    mds.op(0)
    mds.parts.clear()
    agent_file, ckpt_file = mds.files()
    payload = Payload(
        agent_file.relative_to(md_root).as_posix(),
        agent_file.read_bytes(),
        ckpt_file.relative_to(md_root).as_posix(),
        ckpt_file.read_bytes(),
    )
    sizes = {
        "agent output bytes": agent_file.stat().st_size,
        "checkpoint bytes": ckpt_file.stat().st_size,
    }
    methods: list[Method] = [
        mds,
        GitCliMethod(cli_root, payload),
        AtomicWriteMethod(plain_root, payload),
    ]
    for m in methods:
        if m.commits_per_op:
            m.start_commits = commit_count(m.root)
            m.start_loose = loose_objects(m.root)

    rounds, warmup = default_rounds(nfiles, args.quick)
    if args.rounds is not None:
        rounds = args.rounds
    if args.warmup is not None:
        warmup = args.warmup
    os.sync()
    time.sleep(0.5)
    samples: dict[str, list[float]] = {m.name: [] for m in methods}
    t_loop = time.perf_counter()
    for r in range(warmup + rounds):
        order = methods[:]
        rng.shuffle(order)
        i = r + 1  # round 0 was the calibration
        for m in order:
            t0 = time.perf_counter_ns()
            m.op(i)
            dt = (time.perf_counter_ns() - t0) / 1e6
            m.ops += 1
            if r >= warmup:
                samples[m.name].append(dt)
            else:
                m.parts.clear()
    loop_s = time.perf_counter() - t_loop
    last = warmup + rounds
    log(f"  {warmup} warm-up + {rounds} timed rounds in {loop_s:.1f} s")

    profile_text = None
    if args.profile:
        profile_text = profile_mdsessions(mds, last + 1, args.profile)
        last += args.profile
        log(f"  profiled {args.profile} more mdsessions checkpoints")

    # verification
    verify: dict[str, dict[str, Any]] = {}
    for m in methods:
        final_round = last if m is mds else warmup + rounds
        v: dict[str, Any] = {"content_ok": m.last_round_check(final_round)}
        if m.commits_per_op:
            expected = m.start_commits + m.commits_per_op * m.ops
            got = commit_count(m.root)
            st = status_porcelain(m.root)
            v.update(
                ops=m.ops,
                start_commits=m.start_commits,
                loose_objects_per_op=(loose_objects(m.root) - m.start_loose) / max(1, m.ops),
                commits_expected=expected,
                commits_got=got,
                commits_ok=got == expected,
                status_clean=not st.strip(),
                status_sample=st[:300],
            )
        verify[m.name] = v
        m.close()
    if not args.keep:
        for p in (md_root, cli_root, plain_root):
            shutil.rmtree(p, ignore_errors=True)

    results: dict[str, Any] = {}
    for m in methods:
        s: dict[str, Any] = summarize(samples[m.name])
        if m.part_names and m.parts:
            s["parts"] = {
                pn: statistics.median(p[k] for p in m.parts) / 1e6
                for k, pn in enumerate(m.part_names)
            }
        s["verify"] = verify[m.name]
        s["commits_per_op"] = m.commits_per_op
        results[m.name] = s
    # Per-round ratio (same round, so the same machine state): robust to drift over the run.
    paired = [a / b for a, b in zip(samples[mds.name], samples[BASELINE], strict=True) if b > 0]
    return {
        "paired_ratio": {
            "median": statistics.median(paired),
            "p25": percentile(paired, 0.25),
            "p75": percentile(paired, 0.75),
        },
        "files": nfiles,
        "commits_in_base": ncommits + 1,
        "index_bytes": index_bytes,
        "build": build,
        "rounds": rounds,
        "warmup": warmup,
        "file_sizes": sizes,
        "methods": results,
        "profile": profile_text,
    }


def profile_mdsessions(mds: MdsessionsMethod, first: int, n: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for i in range(first, first + n):
        mds.op(i)
        mds.ops += 1
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(25)
    text = buf.getvalue()
    root = str(REPO_ROOT) + os.sep
    return text.replace(root, "")


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def sysinfo() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "git": git(None, "--version").decode().strip(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib import metadata

    info["checkout"] = "-"
    try:
        head = git(REPO_ROOT, "rev-parse", "--short", "HEAD").decode().strip()
        dirty = git(REPO_ROOT, "status", "--porcelain", "--", "mdsessions").strip()
        info["checkout"] = head + (" + uncommitted changes in mdsessions/" if dirty else "")
    except (RuntimeError, OSError):
        pass
    for pkg in ("mdsessions", "GitPython"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = "not installed (source checkout)" if pkg == "mdsessions" else "-"
    return info


def machine_lines(si: dict[str, Any]) -> list[str]:
    """The report's two lines about the machine and the versions (from :func:`sysinfo`)."""
    cpu = f" ({si['cpu']})" if "cpu" in si else ""
    return [
        f"- python {si['python']} · {si['git']} · {si['cpus']} CPUs{cpu} · {si['platform']}",
        f"- mdsessions {si['mdsessions']} (checkout {si['checkout']}) · "
        f"GitPython {si['GitPython']}",
    ]


def render(results: dict[str, Any]) -> str:
    si = results["sysinfo"]
    out = [
        "# mdsessions checkpoint benchmark",
        "",
        *machine_lines(si),
        "- one checkpoint = mdsessions: save_agent_output + save_checkpoint (2 commits); "
        "git CLI: write the same 2 files + `git add` + `git commit -q` (1 commit); "
        "atomic write: temp file + os.replace of the same 2 files (no git, no fsync)",
        "- interleaved: one op of each method per round, shuffled; medians of one run "
        "(compare ratios, not absolute times)",
        "",
    ]
    rows = []
    for e in results["sizes"]:
        bl = e["methods"][BASELINE]["median"]
        for name, s in e["methods"].items():
            rows.append(
                [
                    f"{e['files']:,}",
                    name,
                    fmt(s["median"]),
                    fmt(s["p95"]),
                    fmt(s["ops_s"]),
                    fmt_ratio(s["median"] / bl),
                ]
            )
    out.append(table(["size", "method", "median ms", "p95 ms", "ops/s", "× git CLI"], rows))
    out.append("")
    all_clean = True
    for e in results["sizes"]:
        md = e["methods"]["mdsessions"]["median"]
        bl = e["methods"][BASELINE]["median"]
        ratio = md / bl
        met = "MET" if ratio <= TARGET_RATIO else "NOT MET"
        out.append(
            f"- size {e['files']:,}: target mdsessions ≤ {TARGET_RATIO}× git CLI: {met} "
            f"({ratio:.2f}× = {fmt(md)} / {fmt(bl)} ms; per-round paired ratio median "
            f"{e['paired_ratio']['median']:.2f}×, IQR {e['paired_ratio']['p25']:.2f}–"
            f"{e['paired_ratio']['p75']:.2f}×)"
        )
    out.append("")
    for e in results["sizes"]:
        checks = []
        for name, s in e["methods"].items():
            v = s["verify"]
            if "status_clean" in v:
                ok = v["status_clean"] and v["commits_ok"] and v["content_ok"]
                all_clean = all_clean and ok
                checks.append(
                    f"{name}: status clean: {'yes' if v['status_clean'] else 'no'}, "
                    f"+{v['commits_got'] - v['start_commits']:,} commits for {v['ops']:,} ops "
                    f"({'ok' if v['commits_ok'] else 'MISMATCH, expected +'}"
                    f"{'' if v['commits_ok'] else v['commits_expected'] - v['start_commits']}), "
                    f"last content {'ok' if v['content_ok'] else 'WRONG'}"
                )
            else:
                all_clean = all_clean and v["content_ok"]
                checks.append(f"{name}: last content {'ok' if v['content_ok'] else 'WRONG'}")
        out.append(f"- size {e['files']:,} checks: " + "; ".join(checks))
        for name, s in e["methods"].items():
            sample = s["verify"].get("status_sample")
            if sample:
                out.append(f"  - {name} `git status --porcelain`: {sample!r}")
    out.append(f"- status clean: {'yes' if all_clean else 'no'}")
    out += ["", "## Setup and where the time goes (median ms of each part)", ""]
    rows = []
    for e in results["sizes"]:
        fs = e["file_sizes"]
        rows.append(
            [
                f"{e['files']:,}",
                f"{e['commits_in_base']:,}",
                f"{e['index_bytes'] / 1e6:.2f} MB",
                f"{e['build']['total_s']:.1f} s",
                f"{e['warmup']} + {e['rounds']}",
                f"{fs['agent output bytes']:,} + {fs['checkpoint bytes']:,}",
                " / ".join(
                    f"{pn} {fmt(v)}"
                    for pn, v in e["methods"]["mdsessions"].get("parts", {}).items()
                ),
                " / ".join(
                    f"{pn} {fmt(v)}" for pn, v in e["methods"][BASELINE].get("parts", {}).items()
                ),
                " / ".join(
                    f"{name} {s['verify']['loose_objects_per_op']:.1f}"
                    for name, s in e["methods"].items()
                    if "loose_objects_per_op" in s["verify"]
                ),
            ]
        )
    out.append(
        table(
            [
                "size",
                "commits in base",
                "index",
                "base build",
                "warm-up + timed rounds",
                "file bytes (agent + checkpoint)",
                "mdsessions parts",
                "git CLI parts",
                "loose objects written per op",
            ],
            rows,
        )
    )
    for e in results["sizes"]:
        if e.get("profile"):
            out += ["", f"## cProfile of the mdsessions path, size {e['files']:,}", "", "```"]
            out.append(e["profile"].strip())
            out.append("```")
    out += ["", f"Total elapsed: {results['elapsed_s']:.0f} s"]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        part = part.strip().replace("_", "").lower()
        if not part:
            continue
        mult = 1
        if part.endswith("k"):
            part, mult = part[:-1], 1000
        value = int(float(part) * mult)
        if value < 0:
            raise argparse.ArgumentTypeError(f"negative size {value}")
        sizes.append(value)
    if not sizes:
        raise argparse.ArgumentTypeError("no sizes given")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: sizes 100,2000, few rounds")
    ap.add_argument(
        "--sizes",
        type=parse_sizes,
        default=None,
        help="tracked filler files per store, comma list (default 100,10000; quick 100,2000; "
        "10k/100k accepted)",
    )
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds per size")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up rounds per size")
    ap.add_argument(
        "--commits",
        type=int,
        default=None,
        help="commits the filler files are spread over (default min(size, 10000))",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder to work in (a fresh mdsessions-bench-* folder is made inside it; "
        "default: the system temp dir)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the workdir and the stores")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    ap.add_argument("--seed", type=int, default=1, help="shuffle seed")
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="after the timed loop, cProfile N more mdsessions checkpoints per size",
    )
    args = ap.parse_args(argv)
    if args.sizes is None:
        args.sizes = [100, 2000] if args.quick else [100, 10_000]
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be at least 1")

    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    parent = args.workdir.resolve() if args.workdir else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    args.workdir = Path(tempfile.mkdtemp(prefix="mdsessions-bench-", dir=parent))
    results: dict[str, Any] = {"sizes": []}
    try:
        setup_env(args.workdir)
        store_mod = load_mdsessions()
        rng = random.Random(args.seed)
        results["sysinfo"] = sysinfo()
        results["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        for nfiles in args.sizes:
            results["sizes"].append(run_size(nfiles, args, store_mod, rng, log))
        results["elapsed_s"] = time.perf_counter() - t_start
        report = render(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
        print(report)
    finally:
        if args.keep:
            log(f"kept {args.workdir}")
        else:
            shutil.rmtree(args.workdir, ignore_errors=True)
    ok = all(
        all(
            s["verify"]["content_ok"]
            and s["verify"].get("status_clean", True)
            and s["verify"].get("commits_ok", True)
            for s in e["methods"].values()
        )
        for e in results["sizes"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
