#!/usr/bin/env python3
"""bench_index.py - the checkpoint and the index write without the split index (issue 13).

Since issue 13 the index is written unsplit unless ``core.splitIndex=true`` (so libgit2,
dulwich and GitPython read it), as compact 64 KiB blocks whose SHA-1 resumes after the
first changed block. This measures what that costs:

* **checkpoint** on stores of 100, 10,000 and 100,000 tracked files (``bench_checkpoint``'s
  filler stores): mdsessions ``save_checkpoint(…, outputs=[…])`` (an agent output, the phase
  checkpoint and the manifest, one commit) for a session whose paths sort near the *start*
  of the index (``bench-writer``: everything after it is re-hashed) and one near the *end*
  (``zz-writer``: little is), interleaved round by round (shuffled) with the **git CLI**
  (write the same 3 files, ``git add`` + ``git commit``) and **pygit2** (write the files,
  ``index.add`` + ``index.write`` + ``write_tree`` + ``create_commit``);
* **index write alone**: ``update_index`` of the 3 entries in-process, next to
  ``git update-index --cacheinfo`` of the same 3 entries, interleaved; and the index size;
* **memory**: RSS of a child process making N checkpoints on the 100,000-file store (N=300
  with ``--quick``), sampled every N/10 checkpoints, and the same for pygit2.

Medians and p95 (ms), ratios of medians and the per-round paired ratio's median and IQR.

    python benchmarks/bench_index.py --quick       # 100 / 10,000 / 100,000 files, few rounds
    python benchmarks/bench_index.py --rss-checkpoints 10000   # the issue's memory figure

``measure(workdir, quick)`` returns the figures as JSON-able data (for benchmarks/bench.py).
Isolation as bench_checkpoint.py (private GIT_CONFIG_GLOBAL, no GIT_* variables).
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
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's mdsessions
from bench import LibraryMethod, Payload  # noqa: E402 - the folder of this script, added above
from bench_checkpoint import (  # noqa: E402
    AUTHOR_EMAIL,
    AUTHOR_NAME,
    GitCliMethod,
    Method,
    build_base,
    copy_repo,
    fmt,
    fmt_ratio,
    git,
    load_mdsessions,
    percentile,
    setup_env,
    status_porcelain,
    summarize,
    table,
    write_plain,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
PYGIT2 = "pygit2 (add + write + commit)"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class NamedLibraryMethod(LibraryMethod):
    """bench.py's one-commit checkpoint, for a session of the given id."""

    def __init__(self, name: str, root: Path, store_mod: Any, session_id: str) -> None:
        Method.__init__(self, name, root, 1)
        self.store = store_mod.Store.open(root)
        self.session = self.store.create_session("bench", session_id, mode="mvp")


class Pygit2Method(Method):
    """Write the 3 files, then ``index.add`` each + ``index.write`` + a commit, with pygit2."""

    def __init__(self, root: Path, payload: Payload) -> None:
        import pygit2

        super().__init__(PYGIT2, root, 1)
        self.payload = payload
        self.repo = pygit2.Repository(str(root))
        self.sig = pygit2.Signature(AUTHOR_NAME, AUTHOR_EMAIL)

    def op(self, i: int) -> None:
        files = self.payload.files(i)
        for rel, data in files:
            write_plain(self.root, rel, data)
        index = self.repo.index
        index.read()
        for rel, _data in files:
            index.add(rel)
        index.write()
        tree = index.write_tree()
        self.repo.create_commit(
            "HEAD", self.sig, self.sig, f"checkpoint {i}", tree, [self.repo.head.target]
        )

    def last_round_check(self, i: int) -> bool:
        rel, data = self.payload.files(i)[0]
        return git(self.root, "cat-file", "blob", f"HEAD:{rel}") == data

    def close(self) -> None:
        self.repo.free()


def interleave(methods: list[Method], rounds: int, warmup: int, rng: random.Random) -> None:
    for r in range(warmup + rounds):
        order = methods[:]
        rng.shuffle(order)
        for m in order:
            t0 = time.perf_counter_ns()
            m.op(r + 1)
            if r >= warmup:
                m.samples.append((time.perf_counter_ns() - t0) / 1e6)


def paired(a: list[float], b: list[float]) -> dict[str, float]:
    ratios = [x / y for x, y in zip(a, b, strict=True) if y > 0]
    return {
        "median": statistics.median(ratios),
        "p25": percentile(ratios, 0.25),
        "p75": percentile(ratios, 0.75),
    }


def checkpoint_size(
    nfiles: int, work: Path, quick: bool, store_mod: Any, rng: random.Random
) -> dict[str, Any]:
    base = work / f"base-{nfiles}"
    ncommits = min(nfiles, 20 if quick else 2_000)
    log(f"{nfiles:,} files: building the base store ({ncommits:,} commits)")
    build_base(base, nfiles, ncommits, store_mod)
    roots = {k: work / f"{nfiles}-{k}" for k in ("start", "end", "cli", "pygit2")}
    for key in ("end", "cli", "pygit2"):
        copy_repo(base, roots[key])
    base.rename(roots["start"])
    git(roots["start"], "update-index", "-q", "--refresh")
    start = NamedLibraryMethod(
        "mdsessions (session first)", roots["start"], store_mod, "bench-writer"
    )
    end = NamedLibraryMethod("mdsessions (session last)", roots["end"], store_mod, "zz-writer")
    start.op(0)
    end.op(0)
    payload = Payload(start.written())
    for key in ("cli", "pygit2"):
        for rel, data in payload.files(0):
            write_plain(roots[key], rel, data)
        git(roots[key], "add", "-A")
        git(roots[key], "commit", "-q", "-m", "bench session")
    methods: list[Method] = [
        start,
        end,
        GitCliMethod(roots["cli"], payload),
        Pygit2Method(roots["pygit2"], payload),
    ]
    rounds, warmup = (15, 2) if quick else ((100, 5) if nfiles <= 20_000 else (40, 3))
    log(f"  {warmup} + {rounds} interleaved rounds")
    interleave(methods, rounds, warmup, rng)
    out: dict[str, Any] = {"files": nfiles, "rounds": rounds, "methods": {}}
    for m in methods:
        s = summarize(m.samples)
        s["status_clean"] = not status_porcelain(m.root).strip()
        s["content_ok"] = m.last_round_check(warmup + rounds)
        out["methods"][m.name] = s
    out["index_bytes"] = (roots["start"] / ".git" / "index").stat().st_size
    out["split"] = any(roots["start"].joinpath(".git").glob("sharedindex.*"))
    cli, pyg = methods[2].samples, methods[3].samples
    out["paired_vs_cli"] = {m.name: paired(m.samples, cli) for m in (start, end)}
    out["paired_vs_pygit2"] = {m.name: paired(m.samples, pyg) for m in (start, end)}
    out["index_write"] = index_write(roots["start"], start.written(), quick, rng)
    for m in methods:
        m.close()
    for key, root in roots.items():
        if nfiles >= 100_000 and key == "start":
            continue  # kept for the memory run
        shutil.rmtree(root, ignore_errors=True)
    return out


def index_write(
    root: Path, files: list[tuple[str, bytes]], quick: bool, rng: random.Random
) -> dict[str, Any]:
    """``update_index`` of 3 entries next to ``git update-index --cacheinfo`` of the same 3."""
    from mdsessions.git import index as gi

    git_dir = root / ".git"
    entries = []
    for rel, _data in files:
        st = os.lstat(root / rel)
        sha = git(root, "rev-parse", f":{rel}").strip().decode()
        entries.append((rel, sha, st))
    # git works on its own copy of the index, so that neither invalidates the other's cache.
    cli_index = git_dir / "index-bench-cli"
    shutil.copy(git_dir / "index", cli_index)
    cli_env = {**os.environ, "GIT_INDEX_FILE": str(cli_index)}
    samples: dict[str, list[float]] = {"update_index (in-process)": [], "git update-index": []}
    rounds = 15 if quick else 60
    for r in range(rounds + 2):
        order = list(samples)
        rng.shuffle(order)
        for name in order:
            t0 = time.perf_counter_ns()
            if name == "git update-index":
                args = []
                for rel, sha, _st in entries:
                    args += ["--cacheinfo", f"100644,{sha},{rel}"]
                subprocess.run(["git", "update-index", *args], cwd=root, env=cli_env, check=True)
            else:
                gi.update_index(
                    git_dir,
                    [
                        gi.IndexEntryUpdate(rel, 0o100644, bytes.fromhex(sha), st)
                        for rel, sha, st in entries
                    ],
                    work_tree=root,
                )
            if r >= 2:
                samples[name].append((time.perf_counter_ns() - t0) / 1e6)
    cli_index.unlink()
    git(root, "update-index", "-q", "--refresh")
    return {name: summarize(xs) for name, xs in samples.items()}


RSS_CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {repo!r})
    sys.modules.pop("mdsessions", None)
    sys.path.insert(0, {bench!r})
    def rss():
        fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    n, every, kind = {n}, {every}, {kind!r}
    root = {root!r}
    samples = [(0, *rss())]
    if kind == "mdsessions":
        import mdsessions
        from bench_index import NamedLibraryMethod
        m = NamedLibraryMethod("m", __import__("pathlib").Path(root), mdsessions, "rss-writer")
        op = m.op
    else:
        from pathlib import Path
        from bench import Payload
        from bench_index import NamedLibraryMethod, Pygit2Method
        names = ("a/concept_expansion.md", "a/checkpoint.md", "session_manifest.md")
        prefix = "projects/bench/sessions/rss-pygit2/"
        payload = Payload([(prefix + n_, b"x" * 1500 + n_.encode()) for n_ in names])
        m = Pygit2Method(Path(root), payload)
        op = m.op
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        op(i)
        if i % every == 0 or i == 1:
            samples.append((i, *rss()))
    held = None
    if kind == "mdsessions":
        from mdsessions.git import index as gi
        for _ident, parsed in gi._cache.values():
            blocks = getattr(parsed, "blocks", None)
            if blocks is not None:
                held = sum(len(b) for b in blocks.blocks) + sum(
                    o.buffer_info()[1] * o.itemsize for o in blocks.offs)
        import mdsessions as md
        where = md.__file__
    else:
        where = "pygit2"
    print(json.dumps({{"samples": samples, "seconds": time.perf_counter() - t0,
                      "index_held_bytes": held, "imported": where}}))
    """
)


def rss_run(root: Path, n: int, kind: str, checkout: Path = REPO_ROOT) -> dict[str, Any]:
    script = RSS_CHILD.format(
        repo=str(checkout),
        bench=str(Path(__file__).resolve().parent),
        n=n,
        every=max(1, n // 10),
        kind=kind,
        root=str(root),
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"RSS child ({kind}) failed: {proc.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    samples = data["samples"]
    data["rss_after_first_mb"] = samples[1][1]
    data["rss_end_mb"] = samples[-1][1]
    data["peak_mb"] = samples[-1][2]
    data["growth_mb"] = samples[-1][1] - samples[1][1]
    return data


def measure(
    workdir: Path,
    quick: bool,
    rss_checkpoints: int | None = None,
    baseline_checkout: Path | None = None,
) -> dict[str, Any]:
    """Run the whole benchmark in ``workdir`` (created); return the figures (JSON-able).

    Args:
        workdir: An empty folder to work in (stores of up to 100,000 files: ~2 GB).
        quick: Few rounds; 300 checkpoints in the memory run (pygit2: 60).
        rss_checkpoints: Checkpoints of the memory run (default 300 quick, 1,000 otherwise).
        baseline_checkout: Another mdsessions checkout (e.g. the one before issue 13) whose
            memory run is shown beside this one's.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    setup_env(workdir)
    store_mod = load_mdsessions()
    import mdsessions

    rng = random.Random(13)
    results: dict[str, Any] = {
        "mdsessions_from": str(Path(mdsessions.__file__).parent),
        "sizes": [],
    }
    for nfiles in (100, 10_000, 100_000):
        results["sizes"].append(checkpoint_size(nfiles, workdir, quick, store_mod, rng))
    big = workdir / "100000-start"
    n = rss_checkpoints or (300 if quick else 1_000)
    log(f"memory: {n:,} checkpoints at 100,000 files in a child process (mdsessions, pygit2)")
    rss_root = workdir / "100000-rss-other"
    copy_repo(big, rss_root)
    results["rss"] = {"checkpoints": n, "mdsessions": rss_run(big, n, "mdsessions")}
    if baseline_checkout is not None:
        results["rss"]["baseline checkout"] = rss_run(rss_root, n, "mdsessions", baseline_checkout)
        shutil.rmtree(rss_root, ignore_errors=True)
        copy_repo(big, rss_root)
    results["rss"]["pygit2"] = rss_run(rss_root, min(n, 60) if quick else n, "pygit2")
    shutil.rmtree(rss_root, ignore_errors=True)
    shutil.rmtree(big, ignore_errors=True)
    return results


def render(results: dict[str, Any]) -> str:
    out = ["# index benchmark (issue 13: no split index by default)", ""]
    out.append(f"- mdsessions imported from {results['mdsessions_from']}")
    rows = []
    for e in results["sizes"]:
        cli = e["methods"]["git CLI (add + commit)"]["median"]
        pyg = e["methods"][PYGIT2]["median"]
        for name, s in e["methods"].items():
            pc = e["paired_vs_cli"].get(name)
            rows.append(
                [
                    f"{e['files']:,}",
                    name,
                    fmt(s["median"]),
                    fmt(s["p95"]),
                    fmt_ratio(s["median"] / cli),
                    "-" if pc is None else f"{pc['median']:.3f} ({pc['p25']:.3f}–{pc['p75']:.3f})",
                    fmt_ratio(s["median"] / pyg),
                    "yes" if s["status_clean"] and s["content_ok"] else "NO",
                ]
            )
    out.append(
        table(
            [
                "files",
                "method",
                "median ms",
                "p95 ms",
                "× git CLI",
                "paired × git CLI (IQR)",
                "× pygit2",
                "clean",
            ],
            rows,
        )
    )
    out += ["", "## Index write alone (3 entries) and index size", ""]
    rows = []
    for e in results["sizes"]:
        w = e["index_write"]
        ours = w["update_index (in-process)"]
        cli = w["git update-index"]
        rows.append(
            [
                f"{e['files']:,}",
                f"{e['index_bytes'] / 1e6:.2f} MB",
                "yes" if e["split"] else "no",
                f"{fmt(ours['median'])} (p95 {fmt(ours['p95'])})",
                f"{fmt(cli['median'])} (p95 {fmt(cli['p95'])})",
                fmt_ratio(ours["median"] / cli["median"]),
            ]
        )
    out.append(
        table(["files", "index", "split", "update_index ms", "git update-index ms", "ratio"], rows)
    )
    r = results["rss"]
    out += ["", f"## Memory: {r['checkpoints']:,} checkpoints at 100,000 files (child process)", ""]
    rows = []
    for name in ("mdsessions", "baseline checkout", "pygit2"):
        if name not in r:
            continue
        d = r[name]
        held = d.get("index_held_bytes")
        rows.append(
            [
                f"{name} ({d['imported']})",
                f"{len(d['samples']) and d['samples'][-1][0]:,}",
                "-" if held is None else f"{held / 1e6:.1f}",
                f"{d['rss_after_first_mb']:.0f}",
                f"{d['rss_end_mb']:.0f}",
                f"{d['growth_mb']:+.1f}",
                f"{d['peak_mb']:.0f}",
                f"{d['seconds']:.0f} s",
                " ".join(f"{i}:{rss:.0f}" for i, rss, _hwm in d["samples"]),
            ]
        )
    out.append(
        table(
            [
                "process",
                "checkpoints",
                "index held (MB)",
                "RSS after 1st (MB)",
                "RSS at end (MB)",
                "growth (MB)",
                "peak (MB)",
                "time",
                "RSS samples (checkpoint:MB)",
            ],
            rows,
        )
    )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="few rounds, 300 checkpoints for RSS")
    ap.add_argument("--rss-checkpoints", type=int, default=None, help="checkpoints of the RSS run")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument(
        "--baseline-checkout",
        type=Path,
        default=None,
        help="another mdsessions checkout whose memory run is shown beside this one's",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = ap.parse_args()
    parent = args.workdir.resolve() if args.workdir else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mdsessions-bench-index-", dir=parent))
    try:
        results = measure(work, args.quick, args.rss_checkpoints, args.baseline_checkout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(render(results))
    ok = all(
        s["status_clean"] and s["content_ok"]
        for e in results["sizes"]
        for s in e["methods"].values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
