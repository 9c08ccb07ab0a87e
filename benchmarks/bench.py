#!/usr/bin/env python3
"""bench.py - mdsessions at scale, side by side with what users would otherwise run: one table.

One command, one run, every figure of docs/performance.md:

* **checkpoint** (an agent output + the phase checkpoint + the manifest, one commit, ``git
  status`` clean afterwards) on stores of 100, 10,000 and 100,000 tracked files with 10,000
  commits each, interleaved round by round with the **git CLI** doing the same (write the same
  three files, ``git add`` + ``git commit``), a **plain atomic write** with no git (temp file +
  rename: the seed-003 way) and mdsessions in **durable** mode (fsync of objects, refs, index
  and files);
* **reads** on the 100,000-file store (10,000 sessions): a session's state, listing all
  sessions, the inbox, a session's history, an old version;
* the **command line's cold start**: ``mdsessions --help``, ``status`` and ``list``, next to
  the time to import GitPython, python-frontmatter, Jinja2 and click;
* **8 concurrent writers** (processes) on different sessions of the 10,000-file store:
  aggregate checkpoints per second.

Every figure is a median (and p95) of repeated, interleaved measurements in this one run; ratios
are against the git CLI (or the named baseline) measured in the same run. The targets of the
performance issue are checked and printed beside the figures; the script exits 1 if a
correctness check failed (never because a target was missed).

    python benchmarks/bench.py                 # the full run, ~10-14 min on 2 cores
    python benchmarks/bench.py --quick         # 100 and 2,000 files, 2,000 commits: ~2 min
    python benchmarks/bench.py --json out.json --keep --workdir /tmp/b

Stores are built with ``git fast-import`` from real documents: the library renders two
sessions of 10 files each (manifest; phase 1: checkpoint, 2 agent outputs, feedback; phase 2:
checkpoint, agent output; phase 3: checkpoint, agent output, feedback), one waiting for review
and one past it, and the builder copies them under new session ids (every tenth waiting), one
session per commit, then spends the remaining commits revising agent outputs. So the 100,000-file
store holds 10,000 valid sessions (1,000 in the inbox) and ``mdsessions validate`` passes on it.

Isolation: every git process gets a private GIT_CONFIG_GLOBAL (user, init.defaultBranch=main,
no background gc), GIT_CONFIG_NOSYSTEM=1, LC_ALL=C and no other GIT_* variables. Nothing outside
--workdir (default: a fresh folder in the system temp dir, removed at the end) is written.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_checkpoint import (  # noqa: E402 - the folder of this script, added above
    AUTHOR_EMAIL,
    AUTHOR_NAME,
    AtomicWriteMethod,
    GitCliMethod,
    Method,
    commit_count,
    copy_repo,
    fmt,
    fmt_ratio,
    git,
    load_mdsessions,
    loose_objects,
    markdown_text,
    setup_env,
    status_porcelain,
    summarize,
    sysinfo,
    table,
    write_plain,
)

PROJECT = "bench"
BENCH_SESSION = "bench-writer"
FILES_PER_SESSION = 10
WAITING_EVERY = 10  # every tenth session of a built store waits for review
WRITERS = 8
PAGE = 50
AGENT = "concept_expansion"
TEMPLATE_IDS = {"waiting": "tmpl-waiting-0000", "running": "tmpl-running-0000"}
IMPORTS = "import git, frontmatter, jinja2, click"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# stores of real sessions, built with git fast-import
# --------------------------------------------------------------------------------------------


def agent_text(key: str, i: int = 0) -> str:
    """Agent output of ~2 KB (the size of data/'s real agent outputs' median)."""
    return markdown_text(key, 2000) + f"\n\nRound {i}.\n"


def session_templates(store_mod: Any, workdir: Path) -> dict[str, list[tuple[str, bytes]]]:
    """Two real sessions of 10 files rendered by the library: (session-relative path, bytes)."""
    root = workdir / "template-store"
    out: dict[str, list[tuple[str, bytes]]] = {}
    with store_mod.Store.init(root) as store:
        for kind, sid in TEMPLATE_IDS.items():
            s = store.create_session(PROJECT, sid, mode="mvp", idea=f"A {kind} idea to validate")
            usage = {"model": "bench-model", "duration": 12.5, "cost": 0.0125}
            s.save_checkpoint(
                1,
                status="completed",
                outputs=[
                    {
                        "agent": AGENT,
                        "content": agent_text("concept"),
                        **usage,
                        "input_tokens": 1200,
                        "output_tokens": 800,
                    },
                    {
                        "agent": "critic",
                        "content": agent_text("critic"),
                        **usage,
                        "input_tokens": 900,
                        "output_tokens": 400,
                    },
                ],
            )
            s.save_feedback(1, approved=True, comments="Clear concept; go on.")
            s.save_checkpoint(
                2,
                status="completed",
                outputs=[{"agent": "market_research", "content": agent_text("market"), **usage}],
            )
            s.save_checkpoint(
                3,
                status="completed",
                outputs=[{"agent": "niche_selection", "content": agent_text("niche"), **usage}],
            )
            if kind == "running":
                s.save_feedback(3, approved=True)
            files = sorted(p for p in (root / s.rel).rglob("*") if p.is_file())
            if len(files) != FILES_PER_SESSION:
                raise RuntimeError(f"template {kind}: {len(files)} files, expected 10")
            out[kind] = [(p.relative_to(root / s.rel).as_posix(), p.read_bytes()) for p in files]
    shutil.rmtree(root)
    return out


def session_id(k: int) -> str:
    return f"s{k:06d}"


def build_store(
    path: Path,
    nsessions: int,
    ncommits: int,
    templates: dict[str, list[tuple[str, bytes]]],
    store_mod: Any,
) -> dict[str, float]:
    """A store of ``nsessions`` real sessions (10 files each) over ``ncommits`` commits."""
    if path.exists():
        shutil.rmtree(path)
    t0 = time.perf_counter()
    store_mod.Store.init(path).close()
    init_commit = git(path, "rev-parse", "HEAD").strip()
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"], cwd=path, stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    out = io.BufferedWriter(proc.stdin, buffer_size=1 << 20)
    when = int(time.time()) - 86_400 * 30
    who = f"{AUTHOR_NAME} <{AUTHOR_EMAIL}>".encode()
    base = f"projects/{PROJECT}/sessions"

    def files_of(k: int) -> list[tuple[str, bytes]]:
        kind = "waiting" if k % WAITING_EVERY == 0 else "running"
        old, new = TEMPLATE_IDS[kind].encode(), session_id(k).encode()
        return [
            (f"{base}/{session_id(k)}/{rel}", data.replace(old, new))
            for rel, data in templates[kind]
        ]

    adds = max(1, min(ncommits, nsessions))
    for c in range(ncommits):
        out.write(b"commit refs/heads/main\nmark :%d\n" % (c + 1))
        out.write(b"committer %s %d +0000\n" % (who, when + c * 60))
        if c < adds:
            lo, hi = c * nsessions // adds, (c + 1) * nsessions // adds
            msg = f"import sessions {lo}..{hi - 1}\n".encode()
            files = [f for k in range(lo, hi) for f in files_of(k)]
        else:  # revise one agent output of one session
            k = c % nsessions
            rel, data = next(f for f in files_of(k) if f[0].endswith("/market_research.md"))
            msg = f"revise {session_id(k)} market research ({c})\n".encode()
            files = [(rel, data + b"\nRevision %d.\n" % c)]
        out.write(b"data %d\n%s" % (len(msg), msg))
        out.write(b"from %s\n" % init_commit if c == 0 else b"from :%d\n" % c)
        for rel, data in files:
            out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (rel.encode(), len(data), data))
    out.write(b"done\n")
    out.flush()
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    t_import = time.perf_counter() - t0
    git(path, "reset", "-q", "--hard", "main")
    time.sleep(1.1)  # files older than the index: no racily clean entries
    git(path, "update-index", "-q", "--refresh")
    leftover = status_porcelain(path)
    if leftover:
        raise RuntimeError(f"built store is not clean:\n{leftover[:500]}")
    return {"import_s": t_import, "total_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------------------------
# the checkpoint, four ways
# --------------------------------------------------------------------------------------------


class LibraryMethod(Method):
    """``session.save_checkpoint(1, status="in_progress", outputs=[...])``: one commit."""

    def __init__(self, name: str, root: Path, store_mod: Any, *, durable: bool = False) -> None:
        super().__init__(name, root, 1)
        self.store = store_mod.Store.open(root, durable=durable)
        self.session = self.store.create_session(PROJECT, BENCH_SESSION, mode="mvp")

    def op(self, i: int) -> None:
        self.session.save_checkpoint(
            1,
            status="in_progress",
            outputs=[
                {
                    "agent": AGENT,
                    "content": agent_text("bench", i),
                    "model": "bench-model",
                    "input_tokens": 1000 + i,
                    "output_tokens": 500 + i,
                    "duration": 1.5,
                }
            ],
        )

    def written(self) -> list[tuple[str, bytes]]:
        """The files one checkpoint writes, as they are now: (store-relative path, bytes)."""
        phase = self.session.phase_rel(1)
        rels = [f"{phase}/{AGENT}.md", f"{phase}/checkpoint.md", self.session.manifest_rel]
        return [(rel, (self.root / rel).read_bytes()) for rel in rels]

    def last_round_check(self, i: int) -> bool:
        rel = f"{self.session.phase_rel(1)}/{AGENT}.md"
        return f"Round {i}.".encode() in git(self.root, "cat-file", "blob", f"HEAD:{rel}")

    def close(self) -> None:
        self.store.close()


class Pygit2Method(Method):
    """Write the 3 files, then pygit2 (libgit2): ``index.add`` each, ``index.write``,
    ``write_tree`` and ``create_commit`` on ``HEAD`` (1 commit, in-process, index kept)."""

    def __init__(self, root: Path, payload: Payload) -> None:
        import pygit2  # noqa: PLC0415 - a test extra, only when present

        super().__init__("pygit2", root, 1)
        self.payload = payload
        self.repo = pygit2.Repository(str(root))
        self.sig = pygit2.Signature(AUTHOR_NAME, AUTHOR_EMAIL)

    def op(self, i: int) -> None:
        files = self.payload.files(i)
        for rel, data in files:
            write_plain(self.root, rel, data)
        index = self.repo.index
        index.read(False)  # picks up another writer's index, as a real client must
        for rel, _data in files:
            index.add(rel)
        index.write()
        tree = index.write_tree()
        parent = self.repo.head.target
        self.repo.create_commit("HEAD", self.sig, self.sig, f"checkpoint {i}", tree, [parent])

    def last_round_check(self, i: int) -> bool:
        rel, data = self.payload.files(i)[0]
        return git(self.root, "cat-file", "blob", f"HEAD:{rel}") == data


class Payload:
    """The three files the other methods write each round: the library's bytes, varied."""

    def __init__(self, files: list[tuple[str, bytes]]) -> None:
        self.files_ = files

    def files(self, i: int) -> list[tuple[str, bytes]]:
        out = []
        for rel, data in self.files_:
            if rel.endswith(f"/{AGENT}.md"):
                head, _, tail = data.rpartition(b"Round ")
                out.append((rel, head + b"Round %d.\n" % i))
            else:
                out.append((rel, data + b"<!-- round %d -->\n" % i))
        return out


def rounds_for(nfiles: int, quick: bool) -> tuple[int, int]:
    """(timed rounds, warm-up rounds) for a store of ``nfiles`` files."""
    if quick:
        return 40, 3
    if nfiles <= 2_000:
        return 200, 5
    if nfiles <= 20_000:
        return 120, 5
    return 40, 3


def checkpoint_size(
    nfiles: int,
    ncommits: int,
    templates: dict[str, list[tuple[str, bytes]]],
    args: argparse.Namespace,
    store_mod: Any,
    rng: random.Random,
) -> tuple[dict[str, Any], LibraryMethod]:
    """Build the stores of one size and time the four methods; return the library method open."""
    work: Path = args.workdir
    nsessions = max(1, nfiles // FILES_PER_SESSION)
    root = work / f"store-{nfiles}"
    log(f"{nfiles:,} files: building {nsessions:,} sessions over {ncommits:,} commits")
    build = build_store(root, nsessions, ncommits, templates, store_mod)
    tracked = len(git(root, "ls-files", "-z").split(b"\0")) - 1
    log(f"  built in {build['total_s']:.0f} s; copies for the git CLI and durable mode")
    cli_root, durable_root, plain_root, p2_root = (
        work / f"{nfiles}-{k}" for k in ("cli", "dur", "plain", "pygit2")
    )
    copy_repo(root, cli_root)
    copy_repo(root, durable_root)
    copy_repo(root, p2_root)
    git(root, "update-index", "-q", "--refresh")
    plain_root.mkdir(parents=True, exist_ok=True)

    lib = LibraryMethod("mdsessions", root, store_mod)
    durable = LibraryMethod("mdsessions, durable", durable_root, store_mod, durable=True)
    lib.op(0)
    durable.op(0)
    payload = Payload(lib.written())
    # The git CLI's copy gets the bench session the same way (one commit), untimed.
    for rel, data in payload.files(0):
        write_plain(cli_root, rel, data)
    git(cli_root, "add", "-A")
    git(cli_root, "commit", "-q", "-m", "bench session")
    for rel, data in payload.files(0):
        write_plain(p2_root, rel, data)
    git(p2_root, "add", "-A")
    git(p2_root, "commit", "-q", "-m", "bench session")
    cli = GitCliMethod(cli_root, payload)
    plain = AtomicWriteMethod(plain_root, payload)
    methods: list[Method] = [lib, cli, plain, durable]
    try:
        methods.append(Pygit2Method(p2_root, payload))
    except Exception as exc:  # noqa: BLE001 - pygit2 missing or cannot read the index
        log(f"  pygit2 baseline left out: {type(exc).__name__}: {exc}")
    for m in methods:  # after the calibration checkpoint
        if not m.commits_per_op:
            continue
        m.start_commits = commit_count(m.root)
        m.start_loose = loose_objects(m.root)

    rounds, warmup = rounds_for(nfiles, args.quick)
    os.sync()
    t_loop = time.perf_counter()
    for r in range(warmup + rounds):
        order = methods[:]
        rng.shuffle(order)
        for m in order:
            t0 = time.perf_counter_ns()
            m.op(r + 1)
            dt = (time.perf_counter_ns() - t0) / 1e6
            m.ops += 1
            if r >= warmup:
                m.samples.append(dt)
    log(f"  {warmup} warm-up + {rounds} timed rounds in {time.perf_counter() - t_loop:.0f} s")

    last = warmup + rounds
    checks: dict[str, Any] = {}
    for m in methods:
        c: dict[str, Any] = {"content_ok": m.last_round_check(last)}
        if m.commits_per_op:
            got = commit_count(m.root)
            c["commits_ok"] = got == m.start_commits + m.commits_per_op * m.ops
            c["status_clean"] = not status_porcelain(m.root).strip()
            c["loose_objects_per_op"] = (loose_objects(m.root) - m.start_loose) / m.ops
        checks[m.name] = c
    for m in methods[1:]:
        m.close()
    if not args.keep:
        for p in (cli_root, durable_root, plain_root, p2_root):
            shutil.rmtree(p, ignore_errors=True)
    base = statistics.median(cli.samples)
    paired = [a / b for a, b in zip(lib.samples, cli.samples, strict=True)]
    result = {
        "files": tracked,
        "sessions": nsessions,
        "commits": commit_count(root),
        "index_bytes": (root / ".git" / "index").stat().st_size,
        "shared_index_bytes": max(
            (f.stat().st_size for f in (root / ".git").glob("sharedindex.*")), default=0
        ),
        "build_s": build["total_s"],
        "rounds": rounds,
        "methods": {
            m.name: {**summarize(m.samples), "ratio": statistics.median(m.samples) / base}
            for m in methods
        },
        "paired_ratio": statistics.median(paired),
        "checks": checks,
    }
    return result, lib


# --------------------------------------------------------------------------------------------
# reads, in-process
# --------------------------------------------------------------------------------------------


def interleaved(
    ops: dict[str, Callable[[], Any]], reps: int, rng: random.Random
) -> dict[str, list[float]]:
    """Time each op ``reps`` times, the ops in a new random order every repetition."""
    for fn in ops.values():
        fn()
    samples: dict[str, list[float]] = {k: [] for k in ops}
    for _ in range(reps):
        order = list(ops.items())
        rng.shuffle(order)
        for name, fn in order:
            t0 = time.perf_counter_ns()
            fn()
            samples[name].append((time.perf_counter_ns() - t0) / 1e6)
    return samples


def reads(lib: LibraryMethod, store_mod: Any, rng: random.Random, quick: bool) -> dict[str, Any]:
    """Reads on the biggest store, in the benchmark's (warm) process, beside their baselines."""
    import frontmatter  # noqa: PLC0415

    from mdsessions import history  # noqa: PLC0415

    root, session = lib.root, lib.session
    store = store_mod.Store.open(root)
    sessions = store.list_sessions()
    ids = [s.session_id for s in sessions if s.session_id != BENCH_SESSION]
    picks = [rng.choice(ids) for _ in range(64)]
    k = iter(range(1 << 30))

    def state() -> Any:
        return store.session(PROJECT, picks[next(k) % len(picks)]).manifest()

    def seed_state() -> Any:
        sid = picks[next(k) % len(picks)]
        return frontmatter.load(str(root / store.session_rel(PROJECT, sid) / "session_manifest.md"))

    page = history.versions(session, limit=None).versions
    oldest = page[-2].commit  # the first checkpoint (page[-1] created the session)
    rel_dir = session.rel
    old_path = f"{session.phase_rel(1)}/{AGENT}.md"
    reps = 15 if quick else 40
    ops = {
        "state": state,
        "state (python-frontmatter)": seed_state,
        "list": store.list_sessions,
        "inbox": store.inbox,
        "history": lambda: history.versions(session, limit=PAGE),
        "history (git log)": lambda: git(
            root,
            "log",
            f"-n{PAGE}",
            "--format=%H%x1f%an%x1f%at%x1f%s%x1f%(trailers:only,unfold)",
            "--",
            rel_dir,
        ),
        "old version": lambda: history.read_version(session, old_path, oldest),
        "old version (git show)": lambda: git(root, "show", f"{oldest}:{old_path}"),
    }
    samples = interleaved(ops, reps, rng)
    checks = {
        "list_count": len(sessions),
        "inbox_count": len(store.inbox()),
        "history_ok": [v.commit for v in history.versions(session, limit=PAGE).versions]
        == git(root, "log", f"-n{PAGE}", "--format=%H", "--", rel_dir).decode().split(),
        "old_version_ok": history.read_version(session, old_path, oldest)
        == git(root, "show", f"{oldest}:{old_path}"),
    }
    store.close()
    return {
        "stats": {name: summarize(xs) for name, xs in samples.items()},
        "history_commits": len(page),
        "store_commits": commit_count(root),
        "checks": checks,
    }


# --------------------------------------------------------------------------------------------
# the command line, cold
# --------------------------------------------------------------------------------------------


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("mdsessions")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "mdsessions"]


def cli_cold(root: Path, rng: random.Random, quick: bool) -> dict[str, Any]:
    """Wall time of fresh processes: ``--help``, ``status``, ``list`` and the imports baseline."""
    cmd = cli_command()
    env = dict(os.environ)
    if cmd[0] == sys.executable:  # running from a checkout: make the package importable
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    ref = f"{PROJECT}/{BENCH_SESSION}"
    runs = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "imports (GitPython, frontmatter, Jinja2, click)": [sys.executable, "-c", IMPORTS],
        "mdsessions --help": [*cmd, "--help"],
        "mdsessions status": [*cmd, "status", ref],
        "mdsessions list": [*cmd, "list"],
    }

    def run(argv: list[str]) -> Callable[[], None]:
        def go() -> None:
            proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"{argv} failed: {proc.stderr.decode()[-500:]}")

        return go

    samples = interleaved({k: run(v) for k, v in runs.items()}, 8 if quick else 20, rng)
    return {"command": " ".join(cmd), "stats": {k: summarize(v) for k, v in samples.items()}}


# --------------------------------------------------------------------------------------------
# 8 concurrent writers
# --------------------------------------------------------------------------------------------


def writer_main(argv: Sequence[str]) -> int:
    """Child process: open the store, make a session, wait for the start, checkpoint N times."""
    root, sid, n, start_at = argv[0], argv[1], int(argv[2]), float(argv[3])
    store_mod = load_mdsessions()
    with store_mod.Store.open(root) as store:
        session = store.create_session(PROJECT, sid, mode="mvp")
        profile_to = os.environ.get("MDSESSIONS_BENCH_PROFILE_WRITER")
        profiler = None
        if profile_to and sid.startswith("writer-0-"):  # one writer's cProfile, for digging
            import cProfile  # noqa: PLC0415

            profiler = cProfile.Profile()
        time.sleep(max(0.0, start_at - time.time()))
        begin = time.time()
        if profiler:
            profiler.enable()
        for i in range(n):
            session.save_checkpoint(
                1,
                status="in_progress",
                outputs=[{"agent": AGENT, "content": agent_text(sid, i), "input_tokens": i}],
            )
        end = time.time()
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(profile_to))
    print(json.dumps({"begin": begin, "end": end, "n": n}))
    return 0


def concurrent_writers(root: Path, per_writer: int) -> dict[str, Any]:
    before = commit_count(root)
    start_at = time.time() + 4.0  # every child has imported and created its session by then
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--writer",
                str(root),
                f"writer-{w}-{int(start_at)}",
                str(per_writer),
                repr(start_at),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(WRITERS)
    ]
    results = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"writer failed: {err.decode()[-1000:]}")
        results.append(json.loads(out))
    late = max(r["begin"] for r in results) - start_at
    wall = max(r["end"] for r in results) - start_at
    total = sum(r["n"] for r in results)
    return {
        "writers": WRITERS,
        "checkpoints": total,
        "wall_s": wall,
        "late_start_s": late,
        "per_s": total / wall,
        "commits_ok": commit_count(root) == before + total + WRITERS,  # + one create each
        "status_clean": not status_porcelain(root).strip(),
    }


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def render(res: dict[str, Any]) -> str:
    out = ["# mdsessions at scale", ""]
    info = res["machine"]
    out.append(
        f"Machine: {info.get('cpu', '?')}, {info.get('cpus', '?')} CPUs; Python "
        f"{info.get('python', '?')}; {info.get('git', '?')}; library at "
        f"{info.get('checkout', '?')}; run took "
        f"{res['total_s'] / 60:.1f} min. Medians (p95) in ms; ratio = median / the baseline's "
        "median in this run."
    )
    out.append("")
    out.append("## Checkpoint (agent output + phase checkpoint + manifest, one commit)")
    out.append("")
    sizes = res["checkpoint"]
    rows = []
    for r in sizes:
        for name, s in r["methods"].items():
            rows.append(
                [
                    f"{r['files']:,}",
                    name,
                    f"{fmt(s['median'])} ({fmt(s['p95'])})",
                    fmt_ratio(s["ratio"]),
                    f"{s['ops_s']:,.0f}",
                ]
            )
    out.append(table(["tracked files", "method", "ms median (p95)", "vs git CLI", "ops/s"], rows))
    out.append("")
    out.append(
        "pygit2 = libgit2 in-process: `index.read`, `index.add` per file, `index.write`, "
        "`write_tree`, `create_commit` (the index kept open between rounds)."
    )
    out.append("")
    rows = []
    for r in sizes:
        c = r["checks"]
        rows.append(
            [
                f"{r['files']:,}",
                f"{r['sessions']:,}",
                f"{r['commits']:,}",
                f"{r['index_bytes'] / 1e3:,.0f} kB"
                + (
                    f" + shared {r['shared_index_bytes'] / 1e6:.1f} MB"
                    if r["shared_index_bytes"]
                    else ""
                ),
                r["rounds"],
                f"{c['mdsessions']['loose_objects_per_op']:.1f} / "
                f"{c['git CLI (add + commit)']['loose_objects_per_op']:.1f}",
                "yes"
                if all(
                    v
                    for m in c.values()
                    for k, v in m.items()
                    if k.endswith("ok") or k == "status_clean"
                )
                else "**NO**",
            ]
        )
    out.append(
        table(
            [
                "files",
                "sessions",
                "commits",
                "index",
                "rounds",
                "loose objects per op (mds / git)",
                "checks (commits, status clean, content)",
            ],
            rows,
        )
    )
    out.append("")
    out.append(
        f"## Reads ({res['reads']['checks']['list_count']:,}-session store, in-process, warm)"
    )
    out.append("")
    rd = res["reads"]["stats"]
    pairs = [
        ("a session's state (`session.manifest()`)", "state", "state (python-frontmatter)"),
        ("list all sessions (`store.list_sessions()`)", "list", None),
        ("the inbox (`store.inbox()`)", "inbox", None),
        (
            f"a session's history, {PAGE} newest (`history.versions`)",
            "history",
            "history (git log)",
        ),
        ("an old version (`history.read_version`)", "old version", "old version (git show)"),
    ]
    rows = []
    for label, key, base in pairs:
        s = rd[key]
        b = rd[base] if base else None
        rows.append(
            [
                label,
                f"{fmt(s['median'])} ({fmt(s['p95'])})",
                f"{base}: {fmt(b['median'])}" if b else "-",
                fmt_ratio(s["median"] / b["median"]) if b else "-",
            ]
        )
    out.append(table(["read", "ms median (p95)", "baseline ms", "ratio"], rows))
    c = res["reads"]["checks"]
    out.append("")
    out.append(
        f"{c['list_count']:,} sessions listed, {c['inbox_count']:,} inbox items; the session's "
        f"history has {res['reads']['history_commits']} commits in a store of "
        f"{res['reads']['store_commits']:,}; history and old version equal git's: "
        f"{c['history_ok'] and c['old_version_ok']}."
    )
    out.append("")
    out.append("## Command line, cold start (a fresh process each time, in the same store)")
    out.append("")
    cs = res["cli"]["stats"]
    imports = cs["imports (GitPython, frontmatter, Jinja2, click)"]["median"]
    rows = [
        [k, f"{fmt(v['median'])} ({fmt(v['p95'])})", fmt_ratio(v["median"] / imports)]
        for k, v in cs.items()
    ]
    out.append(table(["command", "ms median (p95)", "vs the imports"], rows))
    out.append("")
    out.append(f"Command: `{res['cli']['command']}`.")
    out.append("")
    w = res["writers"]
    out.append("## Concurrent writers")
    out.append("")
    out.append(
        f"{w['writers']} processes × {w['checkpoints'] // w['writers']} checkpoints into their own "
        f"sessions of the {res['writers_files']:,}-file store: **{w['per_s']:.0f} checkpoints/s** "
        f"aggregate ({w['checkpoints']} in {w['wall_s']:.2f} s; every commit present: "
        f"{w['commits_ok']}; status clean: {w['status_clean']})."
    )
    out.append("")
    for name, module in PARTS.items():
        if name in res and "error" in res[name]:
            out += [f"## {name}", "", f"**Failed**: {res[name]['error']}", ""]
        elif name in res:
            try:
                out.append(demote(importlib.import_module(module).render(res[name])))
            except Exception as exc:  # noqa: BLE001 - the figures are in --json
                out.append(f"## {name}\n\nnot rendered ({type(exc).__name__}: {exc})")
            out.append("")
    out.append("## Targets")
    out.append("")
    out.append(table(["target", "measured", ""], targets(res)))
    out.append("")
    return "\n".join(out)


def targets(res: dict[str, Any]) -> list[list[str]]:
    sizes = {r["files"]: r for r in res["checkpoint"]}
    small, big = sizes[min(sizes)], sizes[max(sizes)]
    rows = []

    def ratio(r: dict[str, Any]) -> float:
        return float(r["methods"]["mdsessions"]["ratio"])

    def med(r: dict[str, Any], name: str = "mdsessions") -> float:
        return float(r["methods"][name]["median"])

    for r in sorted(sizes.values(), key=lambda r: r["files"]):
        limit = 0.5 if r["files"] < 5_000 else 0.1 if r["files"] < 50_000 else 0.05
        rows.append(
            [
                f"checkpoint ≤ {limit:g}× git CLI at {r['files']:,} files",
                fmt_ratio(ratio(r)),
                verdict(ratio(r) <= limit),
            ]
        )
        if r["files"] >= 5_000 and "pygit2" in r["methods"]:
            p2 = med(r) / med(r, "pygit2")
            rows.append(
                [
                    f"checkpoint ≤ 1.0× pygit2 at {r['files']:,} files",
                    fmt_ratio(p2),
                    verdict(p2 <= 1.0),
                ]
            )
    growth = med(big) / med(small)
    rows.append(
        [
            f"checkpoint grows ≤ 3× from {small['files']:,} to {big['files']:,} files",
            f"{growth:.2f}×",
            verdict(growth <= 3),
        ]
    )
    rd = res["reads"]["stats"]
    for key, label, limit in (
        ("list", "list all sessions", 100),
        ("inbox", "inbox", 100),
        ("history", "a session's history", 25),
        ("old version", "an old version", 2),
    ):
        m = rd[key]["median"]
        rows.append([f"{label} ≤ {limit} ms", f"{fmt(m)} ms", verdict(m <= limit)])
    cs = res["cli"]["stats"]
    h = (
        cs["mdsessions --help"]["median"]
        / cs["imports (GitPython, frontmatter, Jinja2, click)"]["median"]
    )
    rows.append(["`mdsessions --help` ≤ 0.5× the imports", fmt_ratio(h), verdict(h <= 0.5)])
    w = res["writers"]["per_s"]
    rows.append(
        [
            f"{WRITERS} writers ≥ 150 checkpoints/s at {res['writers_files']:,} files (one run; "
            "the median of 5 is in the writers part)",
            f"{w:.0f}/s",
            verdict(w >= 150),
        ]
    )
    mem = res.get("memory", {})
    if "mdsessions" in mem:
        m = mem["mdsessions"]
        rows.append(
            [
                f"RSS after {m['checkpoints']:,} checkpoints at 100,000 files ≤ 150 MB",
                f"{m['rss_end_mb']:.0f} MB (peak {m['hwm_mb']:.0f}; pygit2 "
                f"{mem['pygit2']['rss_end_mb']:.0f})",
                verdict(m["hwm_mb"] <= 150),
            ]
        )
    disk = res.get("disk", {})
    for key, label in (("short_lived", "processes of 10"), ("one_process", "one process")):
        if key in disk:
            x = disk[key]["ratio"]
            rows.append(
                [
                    f"`.git` ≤ 1.5× the same history after `git gc` ({label})",
                    f"{x:.2f}×",
                    verdict(x <= 1.5),
                ]
            )
    d = [r["methods"]["mdsessions, durable"]["median"] / med(r) for r in res["checkpoint"]]
    rows.append(
        [
            "durable mode ≤ 3× the default checkpoint",
            " / ".join(f"{x:.1f}×" for x in d),
            verdict(max(d) <= 3),
        ]
    )
    return rows


def correctness_ok(res: dict[str, Any]) -> bool:
    for r in res["checkpoint"]:
        for c in r["checks"].values():
            if not all(v for k, v in c.items() if k != "loose_objects_per_op"):
                return False
    c = res["reads"]["checks"]
    w = res["writers"]
    return bool(c["history_ok"] and c["old_version_ok"] and w["commits_ok"] and w["status_clean"])


# --------------------------------------------------------------------------------------------


#: The parts measured by a script of their own (each exposes ``measure(workdir, quick)`` and
#: ``render(result)``), run after the checkpoint, reads and cold starts, in this order.
PARTS = {
    "memory": "bench_memory",
    "disk": "bench_disk",
    "cold": "bench_cold",
    "writers_seed_durable": "bench_writers",
    "sessions": "bench_sessions",
    "web": "bench_web",
}


def demote(markdown: str) -> str:
    """Headings one level down (a part's report inside this one)."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.split("\n"))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--writer"]:
        return writer_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small stores, few rounds (~2 min)")
    parser.add_argument("--sizes", help="tracked files per store, comma-separated")
    parser.add_argument("--commits", type=int, help="commits per store (default 10,000)")
    parser.add_argument("--workdir", type=Path, help="where stores are built (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the stores")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    parser.add_argument("--seed", type=int, default=1, help="random order of the methods")
    parser.add_argument(
        "--skip",
        default="",
        type=lambda text: {x.strip() for x in text.split(",") if x.strip()},
        help=f"parts to leave out, comma-separated: {', '.join(PARTS)}",
    )
    args = parser.parse_args(argv)
    sizes = (
        [int(x.replace("_", "")) for x in args.sizes.split(",")]
        if args.sizes
        else ([100, 2_000] if args.quick else [100, 10_000, 100_000])
    )
    ncommits = args.commits or (2_000 if args.quick else 10_000)
    args.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="mdsessions-bench-"))).resolve()
    setup_env(args.workdir)
    store_mod = load_mdsessions()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    res: dict[str, Any] = {"machine": sysinfo(), "sizes": sizes, "commits": ncommits}
    try:
        templates = session_templates(store_mod, args.workdir)
        res["checkpoint"] = []
        libs: list[LibraryMethod] = []
        for n in sizes:
            r, lib = checkpoint_size(n, ncommits, templates, args, store_mod, rng)
            res["checkpoint"].append(r)
            libs.append(lib)
        writers_lib = libs[1] if len(libs) > 1 else libs[0]
        log(f"{WRITERS} concurrent writers at {writers_lib.root.name}")
        res["writers_files"] = res["checkpoint"][libs.index(writers_lib)]["files"]
        res["writers"] = concurrent_writers(writers_lib.root, 25 if args.quick else 60)
        log(f"reads and cold starts at {libs[-1].root.name}")
        res["reads"] = reads(libs[-1], store_mod, rng, args.quick)
        res["cli"] = cli_cold(libs[-1].root, rng, args.quick)
        for lib in libs:
            lib.close()
        for name, module in PARTS.items():
            if name in args.skip:
                continue
            log(f"{name}: benchmarks/{module}.py")
            started = time.perf_counter()
            try:
                res[name] = importlib.import_module(module).measure(args.workdir / name, args.quick)
            except Exception as exc:  # noqa: BLE001 - reported, the other parts still run
                res[name] = {"error": f"{type(exc).__name__}: {exc}"}
                log(f"  {name} FAILED: {res[name]['error']}")
            log(f"  {name} took {(time.perf_counter() - started) / 60:.1f} min")
            if args.json:  # every part's figures are kept even if a later one fails
                args.json.write_text(json.dumps(res, indent=2, default=str))
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    res["total_s"] = time.perf_counter() - t0
    log(f"done in {res['total_s'] / 60:.1f} min")
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    ok = correctness_ok(res)
    if not ok:
        checks = [r["checks"] for r in res["checkpoint"]] + [res["reads"]["checks"], res["writers"]]
        log(f"a correctness check FAILED: {json.dumps(checks)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
