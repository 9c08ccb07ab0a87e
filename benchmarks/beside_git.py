#!/usr/bin/env python3
"""beside_git.py - checkpoints while a person runs plain git in the same repository (issue 10).

Each run makes a fresh store (``Store.init`` in a temp folder), creates a few sessions, then
starts a separate *person* process (this script with ``--person``) that loops plain git in the
store's working tree while this process makes N saves through the Python API:

- ``commit``: append a line to ``notes/person.md``, ``git add notes/person.md``,
  ``git commit -m 'person: …'``;
- ``stash``: append a line to the tracked ``notes/draft.md`` (left uncommitted), ``git stash``,
  ``git stash pop`` (a failed pop is retried up to 5 times, as a person would);
- ``gc``: ``git gc --auto`` (with ``gc.auto=256`` and ``gc.autoDetach=false`` so that it really
  repacks, prunes and packs refs during a short run, in the foreground);
- ``repack``: ``git repack -ad -q``; ``pack-refs``: ``git pack-refs --all``;
- ``status``: ``git status --porcelain`` (a reader; it also refreshes the index when it can).

The person's commands are expected to fail now and then (git refuses while the store holds
``index.lock``); they are counted, never fatal.  The saves are a mix of
``save_agent_output`` (a new agent id each time), ``save_checkpoint(…, outputs=[…])``,
``save_feedback(…, action="pending", comments=…)`` and ``create_session``; each carries a
unique token.  A save is *acknowledged* when the call returned, *failed* when it raised.

After the person stopped, the store is opened once (what the person's next mdsessions command
does first: it puts back a save that one of git's own races dropped after the last save; during
the run the next save does it, and the "restored" column counts both), then the run is checked
(git first, then the API on a fresh ``Store.open``):

- lost: an acknowledged agent output whose exact content is not under ``## Output`` of
  ``HEAD:<path>`` or not what ``session.output(phase, agent).content`` returns; an
  acknowledged feedback (the last one of its session) whose comment is not in HEAD; a session
  whose manifest is not in HEAD; HEAD right after an acknowledged save (and the commit id a save
  returned, if the API returns one) that is not an ancestor of the final HEAD;
- damaged index: ``git status`` / ``git ls-files --debug`` fail or print index errors, an
  ``index.lock`` is left behind, a person's git command saw a broken index mid-run, or one
  could not put its own ``index.lock`` in place (someone removed or replaced it meanwhile);
- fsck: ``git fsck --strict --no-dangling`` exits non-zero or prints an error;
- person lost: a successful ``git commit`` of the person not reachable from HEAD or a committed
  line missing from ``HEAD:notes/person.md``; a stashed line found neither in the working tree,
  nor in a stash entry, nor in HEAD;
- tree≠HEAD: ``git status`` lists a path other than the person's ``notes/`` files.

    python benchmarks/beside_git.py                              # 300 saves × 10 runs, full mix
    python benchmarks/beside_git.py --saves 300 --runs 3 --seed 7
    python benchmarks/beside_git.py --scenario maintenance-only  # or commit-only
    python benchmarks/beside_git.py --pause-ms 2                 # a busier person (default 10)
    python benchmarks/beside_git.py --runs 1 --workdir /tmp/bg --keep   # look at the stores
    PYTHONPATH=/tmp/other-checkout python benchmarks/beside_git.py   # measure another library

The "lost" column counts distinct saves (the details list every check a save failed, with
the commit that deleted its file or the reflog entry that moved the branch off it).  "applied
despite error" counts saves that raised but whose content is in HEAD anyway.

Prints a markdown table on stdout (progress on stderr); exits 1 if any run lost a save,
damaged the index, failed fsck, lost a person's work or left session files differing from HEAD.
Git is isolated like the tests: a private GIT_CONFIG_GLOBAL (user, ``init.defaultBranch=main``),
GIT_CONFIG_NOSYSTEM=1, no other GIT_* variables; the person process inherits it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SCENARIOS: dict[str, dict[str, int]] = {
    "full": {"commit": 3, "stash": 2, "gc": 1, "repack": 1, "pack-refs": 1, "status": 2},
    "commit-only": {"commit": 1},
    "maintenance-only": {"gc": 1, "repack": 1, "pack-refs": 1},
}
SAVE_KINDS = {"output": 60, "checkpoint": 15, "feedback": 15, "session": 10}
PERSON_FILE = "notes/person.md"
DRAFT_FILE = "notes/draft.md"
PROJECT = "bench"
INDEX_ERROR = re.compile(r"index file|bad signature|bad index|index uses .* extension", re.I)
LOCK_STOLEN = re.compile(r"unable to write new.index file", re.I)
RETRY_HINT = re.compile(r"try again|retry", re.I)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ git helpers


def isolate_git(folder: Path) -> None:
    """The tests' git isolation (as ``benchmarks/reliability.py`` applies it): a private global
    config, no system config, no other GIT_* (this process and its children)."""
    for path in (ROOT, ROOT / "tests"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    from benchmarks.reliability import isolate_git as isolate  # noqa: PLC0415

    isolate(folder)


def git(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run plain git in ``root``; never raises on a non-zero exit."""
    return subprocess.run(
        ["git", *args],
        cwd=str(root),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        check=False,
        timeout=timeout,
    )


def read_head(root: Path) -> str | None:
    """The commit HEAD's branch points at, read the way git does (loose ref, then packed-refs)."""
    git_dir = root / ".git"
    text = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    if not text.startswith("ref: "):
        return text or None
    ref = text[5:]
    for _ in range(3):  # a concurrent pack-refs may move the ref between the two reads
        with contextlib.suppress(OSError):
            value = (git_dir / ref).read_text(encoding="utf-8").strip()
            if value:
                return value
        with contextlib.suppress(OSError):
            for line in (git_dir / "packed-refs").read_text(encoding="utf-8").splitlines():
                sha, _, name = line.partition(" ")
                if name == ref and not line.startswith(("#", "^")):
                    return sha
    proc = git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    return proc.stdout.strip() or None


def cat_files(root: Path, specs: list[str]) -> dict[str, bytes | None]:
    """``git cat-file --batch`` for many ``<rev>:<path>`` specs at once (None: missing)."""
    out: dict[str, bytes | None] = {}
    if not specs:
        return out
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=str(root),
        input=("\n".join(specs) + "\n").encode(),
        capture_output=True,
        check=False,
    )
    data = proc.stdout
    pos = 0
    for spec in specs:
        end = data.find(b"\n", pos)
        if end < 0:
            out[spec] = None
            continue
        header = data[pos:end].split()
        pos = end + 1
        if len(header) == 3 and header[1] != b"missing":
            size = int(header[2])
            out[spec] = data[pos : pos + size]
            pos += size + 1
        else:
            out[spec] = None
    return out


def output_section(document: bytes | None) -> str | None:
    """The agent's content: everything after the ``## Output`` heading's blank line."""
    if document is None:
        return None
    text = document.decode("utf-8", errors="replace")
    marker = "\n## Output\n"
    at = text.find(marker)
    if at < 0:
        return None
    body = text[at + len(marker) :]
    return body[1:] if body.startswith("\n") else body


def same_content(found: str | None, content: str) -> bool:
    return found is not None and found.rstrip("\n") == content.rstrip("\n")


# ------------------------------------------------------------------------------ the person


def failure(proc: subprocess.CompletedProcess[str]) -> str:
    """What a git command said: stderr; for a failure without one, stdout or its exit status."""
    said = proc.stderr.strip()
    if not said and proc.returncode:
        said = proc.stdout.strip() or f"(exit {proc.returncode})"
    return said[:2000]


def person_loop(
    root: Path, scenario: str, seed: int, stop: Path, log_path: Path, pause: float = 0.01
) -> None:
    """The person: plain git commands in a loop until ``stop`` exists; one JSON line each.

    Between two commands it sleeps a random 0 to ``pause`` seconds.
    """
    rng = random.Random(seed)
    weights = SCENARIOS[scenario]
    kinds = list(weights)
    shares = [weights[k] for k in kinds]
    uncommitted: list[str] = []
    with log_path.open("a", encoding="utf-8") as fh:

        def note(record: dict[str, Any]) -> None:
            fh.write(json.dumps(record) + "\n")
            fh.flush()

        def run(kind: str, *args: str) -> subprocess.CompletedProcess[str]:
            proc = git(root, *args)
            note(
                {
                    "op": kind,
                    "cmd": " ".join(a for a in args if not a.startswith("-c") and "=" not in a),
                    "ok": proc.returncode == 0,
                    "rc": proc.returncode,
                    "err": failure(proc),
                }
            )
            return proc

        def append(rel: str, line: str) -> None:
            with (root / rel).open("a", encoding="utf-8") as out:
                out.write(line + "\n")

        def stash_has(token: str) -> bool:
            listed = git(root, "stash", "list", "--format=%gs")
            return token in listed.stdout

        note({"fact": "ready"})
        n = 0
        while not stop.exists():
            n += 1
            kind = rng.choices(kinds, shares)[0]
            if kind == "commit":
                token = f"note-{seed}-{n}"
                append(PERSON_FILE, token)
                note({"fact": "line", "file": PERSON_FILE, "token": token})
                uncommitted.append(token)
                # Lines a failed commit left and a `git stash` then took away are not added.
                words = (root / PERSON_FILE).read_text(encoding="utf-8").split()
                adding = [t for t in uncommitted if t in words]
                if run("commit", "add", PERSON_FILE).returncode == 0:
                    proc = run("commit", "commit", "-m", f"person: {token}")
                    if proc.returncode == 0:
                        found = re.search(r"\[\S+(?: \([^)]*\))? ([0-9a-f]{7,40})\]", proc.stdout)
                        note(
                            {
                                "fact": "commit",
                                "tokens": adding,
                                "short": found.group(1) if found else None,
                            }
                        )
                        uncommitted = [t for t in uncommitted if t not in adding]
            elif kind == "stash":
                token = f"draft-{seed}-{n}"
                append(DRAFT_FILE, token)
                note({"fact": "line", "file": DRAFT_FILE, "token": token})
                pushed = run("stash", "stash", "push", "-m", token).returncode == 0
                if pushed or stash_has(token):
                    popped = False
                    for _ in range(5):
                        if run("stash", "stash", "pop").returncode == 0:
                            popped = True
                            break
                        time.sleep(0.02)
                    draft = (root / DRAFT_FILE).read_text(encoding="utf-8")
                    if popped and token not in draft:
                        note({"fact": "pop-missing", "token": token})
            elif kind == "gc":
                run("gc", "-c", "gc.auto=256", "-c", "gc.autoDetach=false", "gc", "--auto", "-q")
            elif kind == "repack":
                run("repack", "repack", "-a", "-d", "-q")
            elif kind == "pack-refs":
                run("pack-refs", "pack-refs", "--all")
            else:
                run("status", "status", "--porcelain")
            time.sleep(rng.uniform(0, pause))
        note({"fact": "stopped"})


@dataclass
class Person:
    proc: subprocess.Popen[bytes]
    stop: Path
    log: Path


def start_person(root: Path, scenario: str, seed: int, folder: Path, pause: float = 0.01) -> Person:
    """Start the person process and wait until it runs its first command."""
    stop = folder / "person.stop"
    log_path = folder / "person.jsonl"
    stop.unlink(missing_ok=True)
    log_path.write_text("", encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--person",
            str(root),
            "--scenario",
            scenario,
            "--seed",
            str(seed),
            "--stop",
            str(stop),
            "--log",
            str(log_path),
            "--pause-ms",
            str(pause * 1000),
        ],
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if log_path.stat().st_size:
            break
        time.sleep(0.01)
    return Person(proc, stop, log_path)


def stop_person(person: Person, timeout: float = 120) -> list[dict[str, Any]]:
    """Ask the person to stop after its current command; return its log."""
    person.stop.touch()
    try:
        person.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        person.proc.kill()
        person.proc.wait()
    records = []
    for line in person.log.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    if person.proc.returncode != 0:
        records.append({"fact": "crashed", "rc": person.proc.returncode})
    return records


# ------------------------------------------------------------------------------ the saves


@dataclass
class Save:
    """One save: what was asked, and whether it was acknowledged."""

    index: int
    kind: str
    session: str
    agent: str | None
    token: str
    content: str
    ok: bool = False
    error_type: str | None = None
    error_message: str | None = None
    retryable: bool = False
    head_after: str | None = None
    commit_id: str | None = None


def returned_commit(result: object) -> str | None:
    """The commit id a save returned, if the API returns one (a str or a ``commit`` field)."""
    for value in (result, *(getattr(result, n, None) for n in ("commit", "commit_id", "sha"))):
        if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{40}", value):
            return value
    return None


def setup_store(root: Path, sessions: int = 3) -> tuple[Any, dict[str, Any]]:
    """A new store with ``sessions`` sessions and the person's two tracked notes."""
    from mdsessions import Store  # noqa: PLC0415 - the library under test, imported late

    store = Store.init(root)
    opened = {}
    for k in range(sessions):
        sid = f"s{k:03d}"
        opened[sid] = store.create_session(PROJECT, sid, idea=f"idea {k}")
    (root / "notes").mkdir(exist_ok=True)
    (root / PERSON_FILE).write_text("# Person's notes\n", encoding="utf-8")
    (root / DRAFT_FILE).write_text("# Draft\n", encoding="utf-8")
    for args in (("add", PERSON_FILE, DRAFT_FILE), ("commit", "-q", "-m", "person: notes")):
        proc = git(root, *args)
        if proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr}")
    return store, opened


def make_saves(
    store: Any, sessions: dict[str, Any], count: int, rng: random.Random, tag: str
) -> list[Save]:
    """``count`` saves of the mix, each with a unique token; none raises."""
    from mdsessions import ConflictError, LockTimeoutError  # noqa: PLC0415

    kinds = list(SAVE_KINDS)
    shares = [SAVE_KINDS[k] for k in kinds]
    records = []
    next_session = len(sessions)
    for i in range(count):
        kind = rng.choices(kinds, shares)[0]
        token = f"{tag}-{i:04d}-{rng.getrandbits(40):010x}"
        lines = [f"line {j} {rng.getrandbits(32):08x}" for j in range(rng.randint(1, 12))]
        content = f"# Output {i}\n\ntoken {token}\n\n" + "\n".join(lines) + "\n"
        sid = rng.choice(sorted(sessions))
        if kind == "feedback" and sessions[sid].phase_entry(1).status.value == "pending":
            kind = "output"  # a phase that has not run has nothing to review (refused)
        save = Save(i, kind, sid, None, token, content)
        try:
            if kind == "output":
                save.agent = f"a{i:04d}"
                result: object = sessions[sid].save_agent_output(1, save.agent, content)
            elif kind == "checkpoint":
                save.agent = f"c{i:04d}"
                result = sessions[sid].save_checkpoint(
                    1, status="in_progress", outputs=[{"agent": save.agent, "content": content}]
                )
            elif kind == "feedback":
                result = sessions[sid].save_feedback(1, action="pending", comments=token)
            else:
                save.session = f"s{next_session:03d}"
                next_session += 1
                result = store.create_session(PROJECT, save.session, idea=content)
                sessions[save.session] = result
            save.ok = True
            save.commit_id = returned_commit(result)
            save.head_after = read_head(store.root)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, none is fatal
            save.error_type = type(exc).__name__
            save.error_message = str(exc)
            save.retryable = isinstance(exc, (ConflictError, LockTimeoutError)) and bool(
                RETRY_HINT.search(str(exc))
            )
        records.append(save)
    return records


# ------------------------------------------------------------------------------ checks


@dataclass
class RunResult:
    """What one run measured."""

    scenario: str
    seed: int
    saves: int
    acknowledged: int = 0
    failed_by_class: dict[str, int] = field(default_factory=dict)
    failure_messages: dict[str, int] = field(default_factory=dict)
    not_retryable: list[str] = field(default_factory=list)
    applied_despite_error: int = 0
    lost: list[str] = field(default_factory=list)
    person_ops: dict[str, list[int]] = field(default_factory=dict)
    person_errors: dict[str, int] = field(default_factory=dict)
    person_lost: list[str] = field(default_factory=list)
    index_damage: list[str] = field(default_factory=list)
    fsck_ok: bool = True
    fsck_output: str = ""
    tree_not_head: list[str] = field(default_factory=list)
    journal_left: bool = False
    restores: int = 0
    seconds: float = 0.0

    @property
    def lost_saves(self) -> int:
        """Distinct acknowledged saves in :attr:`lost` (one save may fail several checks)."""
        return len({m.split(":")[0].split(" (")[0] for m in self.lost})

    @property
    def failed(self) -> int:
        return sum(self.failed_by_class.values())

    @property
    def person_ok(self) -> int:
        return sum(v[0] for v in self.person_ops.values())

    @property
    def person_failed(self) -> int:
        return sum(v[1] for v in self.person_ops.values())

    @property
    def bad(self) -> bool:
        return bool(
            self.lost
            or self.index_damage
            or not self.fsck_ok
            or self.person_lost
            or self.tree_not_head
        )


def _normalize(message: str) -> str:
    message = re.sub(r"\b[0-9a-f]{7,40}\b", "<sha>", message)
    message = re.sub(r"/\S*/(\.git/)", r"…/\1", message)
    return message.splitlines()[0][:220] if message else ""


def _line(pattern: re.Pattern[str], text: str) -> str:
    """The first line of ``text`` that ``pattern`` matches."""
    return next((line for line in text.splitlines() if pattern.search(line)), text)


def check_index(root: Path, person_log: list[dict[str, Any]]) -> list[str]:
    damage = []
    for args in (("status", "--porcelain"), ("ls-files", "--debug")):
        proc = git(root, *args)
        if proc.returncode != 0 or INDEX_ERROR.search(proc.stderr):
            error = proc.stderr.strip()[:300]
            damage.append(f"git {' '.join(args)}: rc {proc.returncode}: {error}")
    if (root / ".git" / "index.lock").exists():
        damage.append(".git/index.lock left behind")
    errors = [r.get("err", "") for r in person_log if r.get("op")]
    stolen = [e for e in errors if LOCK_STOLEN.search(e)]
    if stolen:
        damage.append(
            f"person's git could not commit its own index.lock {len(stolen)}× (someone removed "
            f"or replaced it while git held it): {_normalize(_line(LOCK_STOLEN, stolen[0]))}"
        )
    seen = [e for e in errors if INDEX_ERROR.search(e) and not LOCK_STOLEN.search(e)]
    if seen:
        damage.append(
            f"person's git saw a broken index {len(seen)}×: "
            f"{_normalize(_line(INDEX_ERROR, seen[0]))}"
        )
    return damage


def check_person(
    root: Path,
    person_log: list[dict[str, Any]],
    history: set[str],
    head_files: dict[str, bytes | None],
) -> list[str]:
    lost = []
    person_head = (head_files.get(f"HEAD:{PERSON_FILE}") or b"").decode("utf-8", "replace")
    for record in person_log:
        if record.get("fact") == "commit":
            missing = [t for t in record["tokens"] if t not in person_head.split()]
            if missing:
                lost.append(f"person's committed lines not in HEAD:{PERSON_FILE}: {missing}")
            short = record.get("short")
            if short:
                full = git(root, "rev-parse", "--verify", "--quiet", f"{short}^{{commit}}")
                if full.stdout.strip() not in history:
                    lost.append(f"person's commit {short} is not reachable from HEAD")
        elif record.get("fact") == "pop-missing":
            lost.append(f"git stash pop succeeded but {record['token']} is not in {DRAFT_FILE}")
        elif record.get("fact") == "crashed":
            lost.append(f"person process exited {record['rc']}")
    # Every line the person wrote is somewhere: working tree, HEAD or a stash entry.
    written = [r["token"] for r in person_log if r.get("fact") == "line"]
    if written:
        places = []
        stashes = git(root, "stash", "list", "--format=%H").stdout.split()
        for rel in (PERSON_FILE, DRAFT_FILE):
            with contextlib.suppress(OSError):
                places.append((root / rel).read_text(encoding="utf-8", errors="replace"))
            places.append((head_files.get(f"HEAD:{rel}") or b"").decode("utf-8", "replace"))
            found = cat_files(root, [f"{sha}:{rel}" for sha in stashes])
            places += [(v or b"").decode("utf-8", "replace") for v in found.values()]
        words = set(" ".join(places).split())
        missing = [t for t in written if t not in words]
        if missing:
            lost.append(
                f"{len(missing)} line(s) the person wrote are nowhere (tree, HEAD, stash): "
                f"{missing[:5]}"
            )
    return lost


def verify(
    root: Path, result: RunResult, saves: list[Save], person_log: list[dict[str, Any]]
) -> None:
    """Fill ``result`` from the store as the run left it (git checks first, then the API)."""
    from mdsessions import Store  # noqa: PLC0415

    result.acknowledged = sum(s.ok for s in saves)
    result.failed_by_class = dict(Counter(s.error_type for s in saves if not s.ok and s.error_type))
    result.failure_messages = dict(
        Counter(f"{s.error_type}: {_normalize(s.error_message or '')}" for s in saves if not s.ok)
    )
    result.not_retryable = [
        f"save {s.index} ({s.kind}): {s.error_type}: {_normalize(s.error_message or '')}"
        for s in saves
        if not s.ok and not s.retryable
    ]
    for record in person_log:
        if record.get("op"):
            counts = result.person_ops.setdefault(record["op"], [0, 0])
            counts[0 if record["ok"] else 1] += 1
            if not record["ok"]:
                key = f"{record['op']}: {_normalize(record.get('err', ''))}"
                result.person_errors[key] = result.person_errors.get(key, 0) + 1
    result.journal_left = any((root / ".git" / "mdsessions").glob("journal*"))

    # --- git, before anything of mdsessions opens the store (opening may recover)
    result.index_damage = check_index(root, person_log)
    fsck = git(root, "fsck", "--strict", "--no-dangling", "--no-progress")
    result.fsck_output = (fsck.stdout + fsck.stderr).strip()
    result.fsck_ok = fsck.returncode == 0 and not re.search(
        r"^(error|fatal|missing|broken|bad)", result.fsck_output, re.M
    )
    status = git(root, "status", "--porcelain", "--untracked-files=all")
    result.tree_not_head = [
        line for line in status.stdout.splitlines() if line[3:] not in (PERSON_FILE, DRAFT_FILE)
    ]
    history = set(git(root, "rev-list", "HEAD").stdout.split())
    reflog = [
        tuple(line.split("\t", 1))
        for line in git(root, "reflog", "show", "--format=%H%x09%gs", "HEAD").stdout.splitlines()
    ]  # newest first: (commit, what moved HEAD there)

    # The rendered paths: from a fresh store (reads only the manifests).
    with Store.open(root, lock_timeout=5) as store:
        phase_rel: dict[str, str] = {}
        manifest_rel: dict[str, str] = {}
        for save in saves:
            if save.session not in phase_rel:
                with contextlib.suppress(Exception):
                    session = store.session(PROJECT, save.session)
                    manifest_rel[save.session] = session.manifest_rel
                    phase_rel[save.session] = session.phase_rel(1)
        specs = [f"HEAD:{PERSON_FILE}", f"HEAD:{DRAFT_FILE}"]
        for save in saves:
            if save.agent and save.session in phase_rel:
                specs.append(f"HEAD:{phase_rel[save.session]}/{save.agent}.md")
            elif save.kind == "feedback" and save.session in phase_rel:
                specs.append(f"HEAD:{phase_rel[save.session]}/user_feedback.md")
            elif save.kind == "session" and save.session in manifest_rel:
                specs.append(f"HEAD:{manifest_rel[save.session]}")
        head_files = cat_files(root, sorted(set(specs)))

        last_feedback: dict[str, Save] = {}
        for save in saves:
            where = f"save {save.index} ({save.kind} {save.session}/{save.agent or ''})"
            if save.agent:
                rel = f"{phase_rel.get(save.session, '?')}/{save.agent}.md"
                in_head = same_content(output_section(head_files.get(f"HEAD:{rel}")), save.content)
                if not save.ok:
                    result.applied_despite_error += in_head
                    continue
                if not in_head:
                    result.lost.append(
                        f"{where}: its content is not in HEAD:{rel}{removed_by(root, rel)}"
                    )
                    continue
                try:
                    doc = store.session(PROJECT, save.session).output(1, save.agent)
                    read_back = None if doc is None else doc.content
                except Exception as exc:  # noqa: BLE001
                    read_back = f"<{type(exc).__name__}: {exc}>"
                if not same_content(read_back, save.content):
                    result.lost.append(f"{where}: session.output() does not return its content")
            elif save.kind == "feedback":
                if save.ok:
                    last_feedback[save.session] = save
                elif save.session in phase_rel:
                    text = head_files.get(f"HEAD:{phase_rel[save.session]}/user_feedback.md")
                    result.applied_despite_error += bool(text and save.token.encode() in text)
            elif save.kind == "session":
                present = head_files.get(f"HEAD:{manifest_rel.get(save.session, '?')}")
                if save.ok and present is None:
                    rel = manifest_rel.get(save.session, "?")
                    result.lost.append(
                        f"{where}: its manifest is not in HEAD{removed_by(root, rel)}"
                    )
                elif not save.ok and present is not None:
                    result.applied_despite_error += 1
        for sid, save in last_feedback.items():
            text = head_files.get(f"HEAD:{phase_rel.get(sid, '?')}/user_feedback.md") or b""
            later = [s.token for s in saves if s.kind == "feedback" and s.session == sid]
            later = later[later.index(save.token) :]
            if not any(t.encode() in text for t in later):
                rel = f"{phase_rel.get(sid, '?')}/user_feedback.md"
                result.lost.append(
                    f"save {save.index} (feedback {sid}): comment not in HEAD:{rel}"
                    f"{removed_by(root, rel)}"
                )
        for save in saves:
            for label, sha in (("HEAD after it", save.head_after), ("its commit", save.commit_id)):
                if save.ok and sha and sha not in history:
                    result.lost.append(
                        f"save {save.index} ({save.kind}): {label} {sha[:12]} is not in HEAD's "
                        f"history{moved_away(reflog, sha)}"
                    )
    result.person_lost = check_person(root, person_log, history, head_files)


def removed_by(root: Path, rel: str) -> str:
    """Which commit of HEAD's history last deleted ``rel``, if one did."""
    found = git(root, "log", "-1", "--diff-filter=D", "--format=%h %an: %s", "HEAD", "--", rel)
    if found.stdout.strip():
        return f" (deleted by {found.stdout.strip()})"
    if not git(root, "log", "-1", "--format=%h", "HEAD", "--", rel).stdout.strip():
        return " (never in HEAD's history)"
    return ""


def moved_away(reflog: list[tuple[str, ...]], sha: str) -> str:
    """What HEAD's reflog says moved the branch off ``sha`` (the entry after it), if anything."""
    for k, entry in enumerate(reflog):
        if entry[0] == sha and k > 0:
            return f" (HEAD's reflog: next entry {reflog[k - 1][-1]!r})"
    return ""


def run_once(
    folder: Path, *, saves: int, scenario: str = "full", seed: int = 0, pause: float = 0.01
) -> RunResult:
    """One run in ``folder`` (created): store, person process, ``saves`` saves, checks."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder / "store"
    result = RunResult(scenario, seed, saves)
    started = time.monotonic()
    store, sessions = setup_store(root)
    person = start_person(root, scenario, seed, folder, pause)
    records: list[Save] = []
    try:
        records = make_saves(store, sessions, saves, random.Random(seed), f"r{seed}")
    finally:
        person_log = stop_person(person)
        store.close()
    result.seconds = time.monotonic() - started
    # What the person's next mdsessions command does first: opening the store puts back a
    # save that one of git's own races (git stash's reset, a stale index written back)
    # dropped after the last save of the run; during the run the next save does it.
    from mdsessions import Store  # noqa: PLC0415

    Store.open(root).close()
    result.restores = sum(
        "mdsessions: restore" in line or line.endswith("restore: put back")
        for line in git(
            root, "reflog", "show", "--format=%gs", "refs/heads/main"
        ).stdout.splitlines()
    ) + len(git(root, "log", "--format=%H", "--grep=^Mdsessions-Kind: restore").stdout.split())
    verify(root, result, records, person_log)
    return result


def problems(result: RunResult, *, max_failed_fraction: float | None = None) -> list[str]:
    """What a run violated; with ``max_failed_fraction``, also the retryable-failure rules."""
    out = [f"lost acknowledged save: {x}" for x in result.lost]
    out += [f"damaged index: {x}" for x in result.index_damage]
    if not result.fsck_ok:
        out.append(f"git fsck --strict: {result.fsck_output[:600]}")
    out += [f"person's work lost: {x}" for x in result.person_lost]
    out += [f"session file differs from HEAD: {x}" for x in result.tree_not_head]
    if max_failed_fraction is not None:
        out += [
            f"failure not retryable (ConflictError/LockTimeoutError + 'try again'): {x}"
            for x in result.not_retryable
        ]
        if result.failed > max_failed_fraction * result.saves:
            out.append(
                f"{result.failed}/{result.saves} saves failed "
                f"(> {max_failed_fraction:.0%}): {result.failed_by_class}"
            )
    return out


# ------------------------------------------------------------------------------ report


def _classes(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")"


def format_table(results: list[RunResult]) -> str:
    head = (
        "| run | scenario | saves | git ops ok/failed | failed saves | applied despite error "
        "| restored | lost | damaged index | fsck | person lost | tree≠HEAD | s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for k, r in enumerate(results, 1):
        rows.append(
            f"| {k} | {r.scenario} | {r.saves} | {r.person_ok}/{r.person_failed} | "
            f"{_classes(r.failed_by_class)} | {r.applied_despite_error} | {r.restores} | "
            f"{r.lost_saves} | "
            f"{len(r.index_damage)} | {'ok' if r.fsck_ok else 'FAIL'} | {len(r.person_lost)} | "
            f"{len(r.tree_not_head)} | {r.seconds:.1f} |"
        )
    total: Counter[str] = Counter()
    for r in results:
        total.update(r.failed_by_class)
    saves = sum(r.saves for r in results)
    failed = sum(total.values())
    rows.append(
        f"| **total** | | {saves} | {sum(r.person_ok for r in results)}/"
        f"{sum(r.person_failed for r in results)} | {_classes(dict(total))} "
        f"({failed / saves:.1%}) | {sum(r.applied_despite_error for r in results)} | "
        f"{sum(r.restores for r in results)} | {sum(r.lost_saves for r in results)} | "
        f"{sum(len(r.index_damage) for r in results)} | "
        f"{sum(not r.fsck_ok for r in results)} failed | "
        f"{sum(len(r.person_lost) for r in results)} | "
        f"{sum(len(r.tree_not_head) for r in results)} | {sum(r.seconds for r in results):.1f} |"
        if saves
        else "| **total** | | 0 | | | | | | | | | | |"
    )
    return head + "\n".join(rows) + "\n"


def format_details(results: list[RunResult]) -> str:
    lines = []
    messages: Counter[str] = Counter()
    person_errors: Counter[str] = Counter()
    ops: dict[str, list[int]] = {}
    for r in results:
        messages.update(r.failure_messages)
        person_errors.update(r.person_errors)
        for kind, (ok, bad) in r.person_ops.items():
            ops.setdefault(kind, [0, 0])
            ops[kind][0] += ok
            ops[kind][1] += bad
    if ops:
        lines.append(
            "Person's git commands (ok/failed): "
            + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(ops.items()))
        )
    if messages:
        lines.append("\nFailed saves, by message:")
        lines += [f"- {n}× {m}" for m, n in messages.most_common(12)]
    if person_errors:
        lines.append("\nPerson's failed commands, by message:")
        lines += [f"- {n}× {m}" for m, n in person_errors.most_common(8)]
    for k, r in enumerate(results, 1):
        found = problems(r)
        not_retryable = len(r.not_retryable)
        if found or r.journal_left or not_retryable:
            lines.append(f"\nRun {k} (seed {r.seed}):")
            if r.journal_left:
                lines.append("- a journal was left in .git/mdsessions/ (recovery pending)")
            if not_retryable:
                lines.append(f"- {not_retryable} failure(s) not retryable-with-'try again'")
            lines += [f"- {x}" for x in found[:12]]
            if len(found) > 12:
                lines.append(f"- … {len(found) - 12} more")
    return "\n".join(lines) + "\n"


def library() -> str:
    import mdsessions  # noqa: PLC0415

    where = Path(mdsessions.__file__).resolve().parent
    rev = git(where.parent, "describe", "--always", "--dirty")
    return f"{where} ({rev.stdout.strip() or 'not a git checkout'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=300, help="saves per run (default 300)")
    parser.add_argument("--runs", type=int, default=10, help="runs (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="run k uses seed + k (default 0)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="full")
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=10.0,
        help="the person sleeps 0 to this many ms between two commands (default 10)",
    )
    parser.add_argument("--workdir", type=Path, help="where the stores go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the stores")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--person", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stop", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.person:
        person_loop(
            args.person, args.scenario, args.seed, args.stop, args.log, args.pause_ms / 1000
        )
        return 0
    try:
        import mdsessions  # noqa: F401, PLC0415
    except ImportError:
        sys.path.insert(0, str(ROOT))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="beside-git-"))
    workdir.mkdir(parents=True, exist_ok=True)
    isolate_git(workdir)
    git_version = git(workdir, "--version").stdout.strip()
    print(f"library: {library()}; {git_version}; {os.cpu_count()} CPUs\n")
    results = []
    try:
        for k in range(args.runs):
            seed = args.seed + k
            log(f"run {k + 1}/{args.runs}: {args.scenario}, {args.saves} saves, seed {seed}")
            result = run_once(
                workdir / f"run-{k:02d}",
                saves=args.saves,
                scenario=args.scenario,
                seed=seed,
                pause=args.pause_ms / 1000,
            )
            log(
                f"  {result.failed} failed, {result.lost_saves} lost, "
                f"{len(result.index_damage)} index damage, "
                f"fsck {'ok' if result.fsck_ok else 'FAIL'}, {result.seconds:.1f} s"
            )
            results.append(result)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif results:
            log(f"stores kept in {workdir}")
    print(format_table(results))
    print(format_details(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1), encoding="utf-8")
    return 1 if any(r.bad for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
