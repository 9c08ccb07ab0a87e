"""Beside plain git (issue 10): a store mdsessions wrote is the store plain git would have written.

DESIGN.md "Sharing the store": what a save stores is what ``git add`` would store
(``.gitattributes``, ``core.autocrlf``); the index is written as git would write it under the
repository's own configuration, so libgit2 and dulwich read it; commits are signed when the
repository signs, and run its hooks when the store enables hooks.

Part A runs one mixed sequence of saves per git configuration (built once per module, see
:class:`Runs`) and checks the result against git itself. Parts B–E are single scenarios:
attributes mdsessions cannot honour, signing, hooks, branch and repository formats.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import PERSON_EMAIL, PERSON_NAME, assert_clean, git, snapshot, trailers

from mdsessions import Session, Store, StoreError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

P, S = "project-123", "session-456"

# Agent output contents with every kind of line end git distinguishes.
LF = "# LF only\n\nline one\nline two\n"
CRLF = "# CRLF only\r\n\r\nline one\r\nline two\r\n"
MIXED = "# Mixed\n\na unix line\na windows line\r\nthe last line\n"
LONE_CR = "# Lone CR\n\nold mac\rline\n"  # a lone CR makes git's "auto" text detection say binary


# ------------------------------------------------------------------------------ helpers


def run_env(gitconfig: Path) -> dict[str, str]:
    """The process environment without ``GIT_*``, with ``gitconfig`` as the global config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    return env


def rgit(
    root: Path,
    env: dict[str, str],
    *args: str,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run git in ``root`` under ``env``; bytes in and out."""
    proc = subprocess.run(
        ["git", *args], cwd=str(root), env=env, input=input, capture_output=True, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"git {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stderr.decode(errors='replace')}"
        )
    return proc


def write_identity_config(path: Path) -> None:
    path.write_text(
        f"[user]\n\tname = {PERSON_NAME}\n\temail = {PERSON_EMAIL}\n"
        "[init]\n\tdefaultBranch = main\n",
        encoding="utf-8",
    )


def person_commit(root: Path, env: dict[str, str], files: dict[str, str], message: str) -> None:
    """Commit ``files`` with plain git, as a person would."""
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode())
    rgit(root, env, "add", "--", *files)
    rgit(root, env, "commit", "-q", "-m", message)


def index_version(index: Path) -> int:
    data = index.read_bytes()
    assert data[:4] == b"DIRC", index
    return int.from_bytes(data[4:8], "big")


def parse_ls_files_debug(text: str) -> dict[str, dict[str, Any]]:
    """``git ls-files -s --debug`` → {path: mode, oid, stage, ctime, mtime, dev, …, flags}."""
    entries: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        if not line.startswith("  "):
            meta, _, path = line.partition("\t")
            mode, oid, stage = meta.split()
            current = {"mode": int(mode, 8), "oid": oid, "stage": int(stage)}
            entries[path] = current
            continue
        assert current is not None
        for key, value in re.findall(r"(\w+): (\S+)", line):
            if key in ("ctime", "mtime"):
                sec, _, nsec = value.partition(":")
                current[key] = (int(sec), int(nsec))
            elif key == "flags":
                current[key] = int(value, 16)
            else:
                current[key] = int(value)
    return entries


CE_VALID = 0x8000
CE_SKIP_WORKTREE = 1 << 30
CE_INTENT_TO_ADD = 1 << 29


def git_view_of_index(root: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    text = rgit(root, env, "ls-files", "-s", "--debug").stdout.decode()
    return parse_ls_files_debug(text)


def copy_store(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest, symlinks=True)
    return dest


# ------------------------------------------------------------------------------ part A


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One git configuration of part A."""

    name: str
    config: tuple[tuple[str, str], ...] = ()  # global config, in place before Store.init
    attributes: str | None = None  # a .gitattributes committed by plain git after init
    sparse: tuple[str, ...] | None = None  # `git sparse-checkout set` arguments
    shallow: bool = False  # the store is a `git clone --depth 1` of another store
    pack_refs: bool = False  # `git pack-refs --all` before and between saves


SCENARIOS = [
    Scenario("index-version-4", config=(("index.version", "4"),)),
    Scenario("feature-manyfiles", config=(("feature.manyFiles", "true"),)),
    Scenario("untracked-cache", config=(("core.untrackedCache", "true"),)),
    Scenario("split-index", config=(("core.splitIndex", "true"),)),
    Scenario("packed-refs", pack_refs=True),
    Scenario("sparse-no-cone", sparse=("--no-cone", "/*", "!/*/", "/projects/")),
    Scenario("sparse-cone", sparse=("--cone", "projects")),
    Scenario("shallow-clone", shallow=True),
    Scenario("autocrlf-true", config=(("core.autocrlf", "true"),)),
    Scenario("autocrlf-input", config=(("core.autocrlf", "input"),)),
    Scenario("attr-text-auto-eol-crlf", attributes="* text=auto eol=crlf\n"),
    Scenario("attr-md-text-eol-lf", attributes="*.md text eol=lf\n"),
    Scenario("attr-md-binary", attributes="*.md -text\n"),
]
NAMES = [s.name for s in SCENARIOS]


@dataclasses.dataclass
class Saved:
    """One agent output the run saved, and what git add semantics say it reads back as."""

    project: str
    session: str
    phase: int
    agent: str
    rel: str
    content: str
    expected: bytes  # git's clean conversion of the content for this path


@dataclasses.dataclass
class Run:
    scenario: Scenario
    folder: Path
    root: Path
    env: dict[str, str]
    saved: list[Saved] = dataclasses.field(default_factory=list)
    error: str | None = None  # the traceback of a save that raised

    def __repr__(self) -> str:
        return f"Run({self.scenario.name!r}, {self.root})"

    def git(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
        return rgit(self.root, self.env, *args, **kw)

    def require_store(self) -> None:
        if not (self.root / ".git").is_dir():
            pytest.fail(f"no store was made:\n{self.error}")


def git_add_semantics(run: Run, rel: str, data: bytes) -> bytes:
    """What ``git add`` stores for ``data`` at ``rel`` (hashed into a scratch object folder)."""
    scratch = run.folder / "scratch-objects"
    scratch.mkdir(exist_ok=True)
    env = dict(
        run.env,
        GIT_OBJECT_DIRECTORY=str(scratch),
        GIT_ALTERNATE_OBJECT_DIRECTORIES=str(run.root / ".git" / "objects"),
    )
    oid = rgit(run.root, env, "hash-object", "-w", "--stdin", f"--path={rel}", input=data)
    return rgit(run.root, env, "cat-file", "blob", oid.stdout.decode().strip()).stdout


class Runs:
    """Each scenario's store, built on first use and shared by the tests of the module."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.cache: dict[str, Run] = {}

    def get(self, name: str) -> Run:
        if name not in self.cache:
            scenario = next(s for s in SCENARIOS if s.name == name)
            self.cache[name] = self.build(scenario)
        return self.cache[name]

    def build(self, scenario: Scenario) -> Run:
        folder = self.base / scenario.name
        folder.mkdir()
        gitconfig = folder / "gitconfig"
        write_identity_config(gitconfig)
        for key, value in scenario.config:
            subprocess.run(["git", "config", "--file", str(gitconfig), key, value], check=True)
        env = run_env(gitconfig)
        run = Run(scenario, folder, folder / "store", env)
        with pytest.MonkeyPatch.context() as mp:
            for name in list(os.environ):
                if name.startswith("GIT_"):
                    mp.delenv(name)
            mp.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
            mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
            try:
                self.prepare(run)
                self.mixed_run(run)
            except Exception:
                run.error = traceback.format_exc()
        return run

    def prepare(self, run: Run) -> None:
        scenario, root, env = run.scenario, run.root, run.env
        if scenario.shallow:
            origin = run.folder / "origin"
            with Store.init(origin) as first:
                first.create_session("project-origin", "s0").save_agent_output(
                    1, "seed", "seeded in the origin\n"
                )
            rgit(run.folder, env, "clone", "-q", "--depth", "1", origin.as_uri(), str(root))
            assert rgit(root, env, "rev-parse", "--is-shallow-repository").stdout.strip() == b"true"
        else:
            Store.init(root).close()
        if scenario.attributes is not None:
            person_commit(root, env, {".gitattributes": scenario.attributes}, "attributes")
        if scenario.sparse is not None:
            person_commit(root, env, {"notes/outside.md": "# Outside the sparse cone\n"}, "notes")
            rgit(root, env, "sparse-checkout", "set", *scenario.sparse)
            assert not (root / "notes").exists()
        # A person looks at the store: git rewrites the index its own way (UNTR, split, …).
        rgit(root, env, "status", "--porcelain")

    def mixed_run(self, run: Run) -> None:
        between: Callable[[], None] = lambda: None  # noqa: E731
        if run.scenario.pack_refs:

            def between() -> None:
                run.git("pack-refs", "--all")
                assert not (run.root / ".git" / "refs" / "heads" / "main").exists()

        def output(session: Session, phase: int, agent: str, content: str) -> None:
            rel = f"{session.phase_rel(phase)}/{agent}.md"
            expected = git_add_semantics(run, rel, content.encode())
            session.save_agent_output(phase, agent, content, model="m", input_tokens=3)
            run.saved.append(
                Saved(session.project_id, session.session_id, phase, agent, rel, content, expected)
            )

        def checkpoint_with(session: Session, phase: int, contents: dict[str, str]) -> None:
            pending = []
            for agent, content in contents.items():
                rel = f"{session.phase_rel(phase)}/{agent}.md"
                expected = git_add_semantics(run, rel, content.encode())
                pending.append(
                    Saved(
                        session.project_id, session.session_id, phase, agent, rel, content, expected
                    )
                )
            session.save_checkpoint(
                phase,
                status="completed",
                outputs=[{"agent": a, "content": c} for a, c in contents.items()],
            )
            run.saved.extend(pending)

        with Store.open(run.root) as store:
            between()
            if run.scenario.shallow:
                output(store.session("project-origin", "s0"), 1, "crlf_agent", CRLF)
            first = store.create_session("project-a", "s1", idea="first idea")
            output(first, 1, "lf_agent", LF)
            between()
            output(first, 1, "crlf_agent", CRLF)
            checkpoint_with(first, 1, {"mixed_agent": MIXED, "cr_agent": LONE_CR})
            between()
            first.save_feedback(1, approved=True, comments="Looks right.")
            second = store.create_session("project-b", "s2", idea="second idea")
            output(second, 1, "crlf_agent", CRLF)
            output(second, 1, "mixed_agent", MIXED)
            between()
            # Back into the first, now an existing session beside another one (an earlier
            # bug: with autocrlf this raised UnrecordedEditError).
            output(first, 2, "market_research", MIXED)
            second.save_checkpoint(1, status="completed")
            second.save_feedback(1, approved=True, comments="Fine too.")
            between()
            checkpoint_with(first, 2, {"competitor_scan": CRLF})
            output(second, 2, "market_research", LF)
            output(second, 2, "competitor_scan", CRLF)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(tmp_path_factory.mktemp("beside-git"))


@pytest.fixture(params=NAMES)
def run(request: pytest.FixtureRequest, runs: Runs, monkeypatch: pytest.MonkeyPatch) -> Run:
    built = runs.get(request.param)
    # The test's own git calls and any Store it opens see the scenario's configuration.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", built.env["GIT_CONFIG_GLOBAL"])
    return built


def test_mixed_run_of_saves_succeeds(run: Run) -> None:
    assert run.error is None, run.error
    assert len(run.saved) >= 10


def test_status_and_diffs_are_empty(run: Run) -> None:
    run.require_store()
    status = run.git("--no-optional-locks", "status", "--porcelain", "--untracked-files=all")
    assert status.stdout.decode() == "", status.stdout.decode()
    assert run.git("--no-optional-locks", "diff").stdout == b""
    assert run.git("--no-optional-locks", "diff", "--cached").stdout == b""


def test_index_stat_data_matches_the_files(run: Run) -> None:
    """``git diff-files`` (no refresh) lists nothing: git needs no re-hash to trust the index.

    ctime is left out (``core.trustctime=false``): a file staged as a temp file and renamed
    into place gets a new ctime, so an entry may carry the temp file's ctime (one-second
    granularity; it would make this test flaky, and git recovers by re-hashing).
    """
    run.require_store()
    stale = run.git(
        "-c", "core.trustctime=false", "--no-optional-locks", "diff-files", "--name-only"
    ).stdout.decode()
    assert stale == "", (
        "entries git sees as changed without a refresh (stat data differs, or the entry is "
        f"racily clean and git's clean of the file is not the blob):\n{stale}"
    )


def test_fsck_strict_is_clean(run: Run) -> None:
    run.require_store()
    proc = run.git("fsck", "--strict", "--no-dangling", "--no-progress", check=False)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    assert proc.stdout == b"" and proc.stderr == b"", proc.stdout.decode() + proc.stderr.decode()


def test_really_refresh_finds_nothing(run: Run, tmp_path: Path) -> None:
    """In place (on a copy of the index file) and in a copy of the store (new inodes: git
    re-hashes every file through its filters)."""
    run.require_store()
    index = tmp_path / "index"
    shutil.copy2(run.root / ".git" / "index", index)  # the store's own index stays as written
    for root, env in (
        (run.root, dict(run.env, GIT_INDEX_FILE=str(index))),
        (copy_store(run.root, tmp_path / "copy"), run.env),
    ):
        proc = rgit(root, env, "update-index", "--really-refresh", check=False)
        printed = (proc.stdout + proc.stderr).decode()
        assert proc.returncode == 0, f"{root}:\n{printed}"
        assert printed == "", f"{root}:\n{printed}"


def test_renormalize_changes_nothing(run: Run, tmp_path: Path) -> None:
    run.require_store()
    root = copy_store(run.root, tmp_path / "copy")
    proc = rgit(root, run.env, "add", "--renormalize", ".", check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    status = rgit(root, run.env, "status", "--porcelain", "--untracked-files=all").stdout
    assert status == b"", status.decode()
    assert rgit(root, run.env, "diff", "--cached", "--name-only").stdout == b""


def test_blobs_are_what_git_add_would_store(run: Run) -> None:
    """Index, HEAD and ``git hash-object --path`` of the working-tree file agree, per path."""
    run.require_store()
    staged = parse_ls_files_debug(run.git("ls-files", "-s", "--debug").stdout.decode())
    committed = {}
    for line in run.git("ls-tree", "-r", "HEAD").stdout.decode().splitlines():
        meta, _, path = line.partition("\t")
        committed[path] = meta.split()[2]
    assert set(staged) == set(committed)
    present = sorted(
        p
        for p, e in staged.items()
        if not e["flags"] & CE_SKIP_WORKTREE and (run.root / p).exists()
    )
    assert any(p.startswith("projects/") for p in present)
    hashed = run.git("hash-object", "--stdin-paths", input="\n".join(present).encode() + b"\n")
    would_store = dict(zip(present, hashed.stdout.decode().split(), strict=True))
    wrong = {
        p: (staged[p]["oid"][:10], committed[p][:10], would_store[p][:10])
        for p in present
        if not staged[p]["oid"] == committed[p] == would_store[p]
    }
    assert not wrong, f"path: (index, HEAD, git hash-object --path) differ:\n{wrong}"


def test_saved_content_is_what_git_add_implies(run: Run) -> None:
    """The committed file ends with git's clean form of the content; the API reads that back."""
    run.require_store()
    assert run.saved
    with Store.open(run.root) as store:
        for saved in run.saved:
            blob = run.git("cat-file", "blob", f"HEAD:{saved.rel}").stdout
            assert blob.endswith(saved.expected), (
                f"{saved.rel}: the committed file ends {blob[-len(saved.expected) :]!r}; "
                f"git add stores the content {saved.content!r} as {saved.expected!r}"
            )
            got = store.session(saved.project, saved.session).output(saved.phase, saved.agent)
            assert got is not None, saved.rel
            assert got.content == saved.expected.decode(), (
                f"{saved.rel}: saved {saved.content!r}, read back {got.content!r}, "
                f"git add implies {saved.expected.decode()!r}"
            )


def test_index_version_is_what_git_writes(run: Run, tmp_path: Path) -> None:
    """A fresh index git writes under this configuration has the version mdsessions kept."""
    run.require_store()
    fresh = tmp_path / "fresh-index"
    rgit(run.root, dict(run.env, GIT_INDEX_FILE=str(fresh)), "read-tree", "HEAD")
    expected = index_version(fresh)
    entries = git_view_of_index(run.root, run.env)
    if expected == 2 and any(
        e["flags"] & (CE_SKIP_WORKTREE | CE_INTENT_TO_ADD) for e in entries.values()
    ):
        expected = 3  # extended flags (skip-worktree) need version 3, as git writes them
    assert index_version(run.root / ".git" / "index") == expected


def split_index_written_by_git(tmp_path: Path, env: dict[str, str]) -> Path:
    repo = tmp_path / "split-by-git"
    rgit(tmp_path, env, "init", "-q", str(repo))
    (repo / "a.md").write_text("a\n")
    rgit(repo, env, "add", "a.md")
    rgit(repo, env, "update-index", "--split-index")
    assert b"link" in (repo / ".git" / "index").read_bytes()
    return repo


def read_error(read: Callable[[Path], object], repo: Path) -> BaseException | None:
    try:
        read(repo)
    except Exception as exc:
        return exc
    return None


def pygit2_index(repo: Path) -> dict[str, tuple[int, str]]:
    pygit2 = pytest.importorskip("pygit2")  # the [test] extra
    index = pygit2.Repository(str(repo)).index
    return {e.path: (e.mode, str(e.id)) for e in index}


def dulwich_index(repo: Path) -> dict[str, dict[str, Any]]:
    dulwich_repo = pytest.importorskip("dulwich.repo")  # the [test] extra
    out = {}
    with dulwich_repo.Repo(str(repo)) as opened:
        for path, entry in opened.open_index().items():
            sha = entry.sha.decode() if isinstance(entry.sha, bytes) else str(entry.sha)
            out[path.decode()] = {
                "mode": entry.mode,
                "oid": sha,
                "stage": (entry.flags >> 12) & 3,
                "ctime": tuple(entry.ctime),
                "mtime": tuple(entry.mtime),
                "dev": entry.dev,
                "ino": entry.ino,
                "uid": entry.uid,
                "gid": entry.gid,
                "size": entry.size,
                "valid": bool(entry.flags & 0x8000),
                "skip_worktree": bool(getattr(entry, "extended_flags", 0) & 0x4000),
                "intent_to_add": bool(getattr(entry, "extended_flags", 0) & 0x2000),
            }
    return out


def skip_if_split_and_unreadable(
    run: Run, tmp_path: Path, read: Callable[[Path], object], library: str
) -> None:
    """core.splitIndex: the library must fail on mdsessions' index exactly as on git's own."""
    if run.scenario.name != "split-index":
        return
    by_git = read_error(read, split_index_written_by_git(tmp_path, run.env))
    assert by_git is not None, f"{library} now reads git's split index: drop this skip"
    ours = read_error(read, run.root)
    if ours is None:
        return  # mdsessions' index is not split (or the library reads it): compare
    assert type(ours) is type(by_git), (ours, by_git)
    if library == "libgit2":
        assert str(ours) == str(by_git)
    pytest.skip(f"{library} cannot read a split index git writes either: {by_git}")


def test_index_reads_the_same_in_libgit2(run: Run, tmp_path: Path) -> None:
    run.require_store()
    skip_if_split_and_unreadable(run, tmp_path, pygit2_index, "libgit2")
    by_git = git_view_of_index(run.root, run.env)
    assert pygit2_index(run.root) == {p: (e["mode"], e["oid"]) for p, e in by_git.items()}


def test_index_reads_the_same_in_dulwich(run: Run, tmp_path: Path) -> None:
    run.require_store()
    skip_if_split_and_unreadable(run, tmp_path, dulwich_index, "dulwich")
    by_git = {
        p: {
            "mode": e["mode"],
            "oid": e["oid"],
            "stage": e["stage"],
            "ctime": e["ctime"],
            "mtime": e["mtime"],
            "dev": e["dev"],
            "ino": e["ino"],
            "uid": e["uid"],
            "gid": e["gid"],
            "size": e["size"],
            "valid": bool(e["flags"] & CE_VALID),
            "skip_worktree": bool(e["flags"] & CE_SKIP_WORKTREE),
            "intent_to_add": bool(e["flags"] & CE_INTENT_TO_ADD),
        }
        for p, e in git_view_of_index(run.root, run.env).items()
    }
    assert dulwich_index(run.root) == by_git


def test_untracked_cache_stays_truthful(tmp_path: Path) -> None:
    """With git's untracked cache on, files a person leaves in new session folders show."""
    git(tmp_path, "config", "--global", "core.untrackedCache", "true")
    with Store.init(tmp_path / "store") as store:
        git(store.root, "status", "--porcelain")  # git writes its untracked cache
        session = store.create_session(P, S)
        session.save_agent_output(1, "concept_expansion", "x\n")
        git(store.root, "status", "--porcelain")
        session.save_checkpoint(1, status="completed")
        (session.path / "phase_1_concept" / "scratch.txt").write_text("mine\n")
        (session.path / "notes.txt").write_text("mine\n")
        cached = git(store.root, "status", "--porcelain", "--untracked-files=all")
        uncached = git(
            store.root, "-c", "core.untrackedCache=false", "status", "--porcelain", "-uall"
        )
        assert cached == uncached
        assert "phase_1_concept/scratch.txt" in cached and "notes.txt" in cached


# ------------------------------------------------------------------------------ part B


def commit_attributes(root: Path, text: str) -> None:
    (root / ".gitattributes").write_text(text, encoding="utf-8")
    git(root, "add", ".gitattributes")
    git(root, "commit", "-q", "-m", "attributes")


@pytest.mark.parametrize(
    ("line", "attribute"),
    [
        ("*.md filter=lfs diff=lfs merge=lfs -text\n", "filter"),
        ("*.md ident\n", "ident"),
        ("*.md working-tree-encoding=UTF-16\n", "working-tree-encoding"),
    ],
)
def test_attribute_it_cannot_honour_refuses_the_save(
    tmp_path: Path, line: str, attribute: str
) -> None:
    root = tmp_path / "store"
    with Store.init(root) as store:
        created = store.create_session(P, S)
        # The paths the save writes (read before the attribute exists: reads may refuse too).
        written = [f"{created.phase_rel(1)}/concept_expansion.md", created.manifest_rel]
    commit_attributes(root, line)
    if attribute == "filter":
        # A working driver (git-lfs itself is not installed here): git runs it on add and on
        # a status that re-hashes a racily clean file; mdsessions cannot run it in-process.
        git(root, "config", "filter.lfs.clean", "cat")
        git(root, "config", "filter.lfs.smudge", "cat")
        git(root, "config", "filter.lfs.required", "true")
    before = snapshot(root)
    with Store.open(root) as store, pytest.raises(StoreError) as info:
        store.session(P, S).save_agent_output(1, "concept_expansion", "# Concept\n\ntext\n")
    message = str(info.value)
    assert attribute in message, message
    assert any(rel in message for rel in written), message
    assert snapshot(root) == before


# ------------------------------------------------------------------------------ part C


def commits_since(root: Path, base: str | None) -> list[str]:
    spec = f"{base}..HEAD" if base else "HEAD"
    return git(root, "rev-list", spec).split()


def assert_all_signed(root: Path, commits: list[str]) -> None:
    assert commits
    status = {c: git(root, "log", "-1", "--format=%G?", c).strip() for c in commits}
    unsigned = {c[:10]: s for c, s in status.items() if s != "G"}
    assert not unsigned, f"commits not carrying a good signature (%G?): {unsigned}"
    proc = subprocess.run(
        ["git", "verify-commit", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    shown = git(root, "log", "-1", "--show-signature", "--format=%H")
    assert "Good" in shown or "good" in shown.lower(), shown


def exercise(store: Store) -> None:
    session = store.create_session(P, S)
    session.save_agent_output(1, "concept_expansion", "# Concept\n")
    session.save_checkpoint(1, status="completed")
    session.save_feedback(1, approved=True)


def _need(program: str, package: str) -> None:
    """Skip where a signer is not installed (``.ci/run`` installs it, so CI always runs these)."""
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (Debian: apt-get install {package})")


@pytest.fixture
def ssh_key(tmp_path: Path) -> dict[str, str]:
    _need("ssh-keygen", "openssh-client")
    key = tmp_path / "signing" / "key"
    key.parent.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(key)],
        check=True,
    )
    allowed = tmp_path / "signing" / "allowed_signers"
    public = (key.parent / "key.pub").read_text().split()
    allowed.write_text(f'* namespaces="git" {public[0]} {public[1]}\n')
    return {
        "gpg.format": "ssh",
        "user.signingkey": str(key),
        "gpg.ssh.allowedSignersFile": str(allowed),
    }


@pytest.fixture(scope="module")
def gnupg_home() -> Iterator[tuple[Path, str]]:
    _need("gpg", "gnupg")
    home = Path(tempfile.mkdtemp(prefix="gpg", dir="/tmp"))  # short: gpg-agent's socket path
    home.chmod(0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(
        [
            "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
            "--quick-gen-key", "Test <t@example.com>", "ed25519", "sign", "never",
        ],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--list-keys", "--with-colons"], env=env, check=True, capture_output=True, text=True
    ).stdout
    fingerprint = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr"))
    try:
        yield home, fingerprint
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def openpgp_key(gnupg_home: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    home, fingerprint = gnupg_home
    monkeypatch.setenv("GNUPGHOME", str(home))
    return {"gpg.format": "openpgp", "user.signingkey": fingerprint}


def signing_config(request: pytest.FixtureRequest, kind: str) -> dict[str, str]:
    return dict(request.getfixturevalue(f"{kind}_key"))


@pytest.mark.parametrize("kind", ["ssh", "openpgp"])
@pytest.mark.parametrize("scope", ["local-after-init", "global"])
def test_commits_are_signed_when_the_repository_signs(
    request: pytest.FixtureRequest, tmp_path: Path, isolated_git: Path, kind: str, scope: str
) -> None:
    config = signing_config(request, kind)
    config["commit.gpgsign"] = "true"
    root = tmp_path / "store"
    if scope == "global":
        for key, value in config.items():
            git(tmp_path, "config", "--global", key, value)
        base = None  # Store.init's own commit is signed too
        Store.init(root).close()
    else:
        Store.init(root).close()
        base = git(root, "rev-parse", "HEAD").strip()
        for key, value in config.items():
            git(root, "config", key, value)
    with Store.open(root) as store:
        exercise(store)
    assert_all_signed(root, commits_since(root, base))
    assert_clean(root)


def test_mdsessions_sign_true_signs(ssh_key: dict[str, str], tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store.init(root).close()
    base = git(root, "rev-parse", "HEAD").strip()
    for key, value in ssh_key.items():
        git(root, "config", key, value)
    git(root, "config", "mdsessions.sign", "true")
    assert git(root, "config", "--get", "commit.gpgsign", check=False) == ""
    with Store.open(root) as store:
        exercise(store)
    assert_all_signed(root, commits_since(root, base))


def test_broken_signer_fails_the_save_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Store.init(root) as store:
        store.create_session(P, S)
    signer = tmp_path / "broken-gpg"
    signer.write_text("#!/bin/sh\necho 'gpg: signing failed: no secret key' >&2\nexit 1\n")
    signer.chmod(0o755)
    git(root, "config", "gpg.program", str(signer))
    git(root, "config", "user.signingkey", "ABCDEF0123456789")
    git(root, "config", "commit.gpgsign", "true")
    before = snapshot(root)
    with Store.open(root) as store, pytest.raises(StoreError) as info:
        store.session(P, S).save_agent_output(1, "concept_expansion", "# Concept\n")
    assert "no secret key" in str(info.value)
    assert snapshot(root) == before


# ------------------------------------------------------------------------------ part D

COMMIT_HOOKS = ["pre-commit", "prepare-commit-msg", "commit-msg", "post-commit"]


def install_hooks(
    folder: Path, log: Path, label: str = "", extra: dict[str, str] | None = None
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in COMMIT_HOOKS:
        hook = folder / name
        body = (extra or {}).get(name, "")
        hook.write_text(f"#!/bin/sh\necho '{label}{name}' >> '{log}'\n{body}")
        hook.chmod(0o755)


def store_with_session(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    with Store.init(root) as store:
        session = store.create_session(P, S)
        session.save_agent_output(1, "concept_expansion", "# Concept\n")
    return root


def checkpoint(root: Path) -> Session:
    with Store.open(root) as store:
        session = store.session(P, S)
        session.save_checkpoint(1, status="completed")
        return session


@pytest.mark.parametrize("where", ["git-dir", "core.hooksPath"])
def test_commit_hooks_run_in_order_when_enabled(tmp_path: Path, where: str) -> None:
    root = store_with_session(tmp_path)
    log = tmp_path / "hooks.log"
    git(root, "config", "mdsessions.hooks", "true")
    if where == "git-dir":
        install_hooks(root / ".git" / "hooks", log)
    else:
        folder = tmp_path / "team-hooks"
        install_hooks(folder, log)
        install_hooks(root / ".git" / "hooks", log, label="ignored-")  # git skips these now
        git(root, "config", "core.hooksPath", str(folder))
    checkpoint(root)
    assert log.exists(), "no hook ran"
    assert log.read_text().split() == COMMIT_HOOKS
    assert_clean(root)


def test_rejecting_pre_commit_refuses_the_save_and_changes_nothing(tmp_path: Path) -> None:
    root = store_with_session(tmp_path)
    log = tmp_path / "hooks.log"
    git(root, "config", "mdsessions.hooks", "true")
    install_hooks(
        root / ".git" / "hooks",
        log,
        extra={"pre-commit": "echo 'rejected by policy' >&2\nexit 1\n"},
    )
    before = snapshot(root)
    with pytest.raises(StoreError) as info:
        checkpoint(root)
    assert "rejected by policy" in str(info.value)
    assert snapshot(root) == before
    assert log.exists() and log.read_text().split() == ["pre-commit"]


def test_commit_msg_hook_trailer_lands_in_the_commit(tmp_path: Path) -> None:
    root = store_with_session(tmp_path)
    git(root, "config", "mdsessions.hooks", "true")
    install_hooks(
        root / ".git" / "hooks",
        tmp_path / "hooks.log",
        extra={"commit-msg": "echo 'Reviewed-by: hook' >> \"$1\"\n"},
    )
    checkpoint(root)
    found = trailers(root)
    assert found.get("Reviewed-by") == "hook", git(root, "log", "-1", "--format=%B")
    assert found.get("Mdsessions-Kind") == "checkpoint", found
    assert_clean(root)


def test_hooks_do_not_run_unless_enabled(tmp_path: Path) -> None:
    root = store_with_session(tmp_path)
    log = tmp_path / "hooks.log"
    install_hooks(root / ".git" / "hooks", log)
    checkpoint(root)
    assert not log.exists(), log.read_text()


def test_pre_commit_sees_the_staged_files(tmp_path: Path) -> None:
    root = store_with_session(tmp_path)
    git(root, "config", "mdsessions.hooks", "true")
    listed = tmp_path / "staged.txt"
    copies = tmp_path / "staged"
    copies.mkdir()
    install_hooks(
        root / ".git" / "hooks",
        tmp_path / "hooks.log",
        extra={
            "pre-commit": (
                f"git diff --cached --name-only > '{listed}' || exit 1\n"
                "git diff --cached --name-only | while read -r p; do\n"
                f'  git show ":$p" > \'{copies}\'/"$(echo "$p" | tr / _)" || exit 1\n'
                "done\n"
            )
        },
    )
    session = checkpoint(root)
    assert listed.exists(), "the pre-commit hook did not run"
    changed = git(root, "diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD").split()
    assert f"{session.phase_rel(1)}/checkpoint.md" in changed
    assert listed.read_text().split() == changed
    for rel in changed:
        staged = (copies / rel.replace("/", "_")).read_bytes()
        assert staged == (root / rel).read_bytes(), rel


# ------------------------------------------------------------------------------ part E


def test_new_store_records_its_branch(store: Store) -> None:
    config = tomllib.loads((store.root / "mdsessions.toml").read_text(encoding="utf-8"))
    assert config["store"].get("branch") == "main", config


def test_save_on_another_branch_is_refused(tmp_path: Path) -> None:
    root = store_with_session(tmp_path)
    git(root, "switch", "-q", "-c", "other")
    before = snapshot(root)
    with Store.open(root) as store, pytest.raises(StoreError) as info:
        store.session(P, S).save_agent_output(1, "concept_expansion", "on other\n")
    assert "main" in str(info.value) and "other" in str(info.value), str(info.value)
    assert snapshot(root) == before
    assert git(root, "rev-parse", "main") == git(root, "rev-parse", "other")


def test_detached_head_is_refused(tmp_path: Path) -> None:
    root = store_with_session(tmp_path)
    git(root, "switch", "-q", "--detach")
    before = snapshot(root)
    with Store.open(root) as store, pytest.raises(StoreError) as info:
        store.session(P, S).save_agent_output(1, "concept_expansion", "detached\n")
    assert "main" in str(info.value), str(info.value)
    assert snapshot(root) == before


def test_init_makes_sha1_even_when_git_defaults_to_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_DEFAULT_HASH", "sha256")
    with Store.init(tmp_path / "store") as store:
        assert git(store.root, "rev-parse", "--show-object-format").strip() == "sha1"
        store.create_session(P, S).save_agent_output(1, "concept_expansion", "# Concept\n")
        assert_clean(store.root)


def test_sha256_repository_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "store"
    git(tmp_path, "init", "-q", "--object-format=sha256", str(root))
    (root / "mdsessions.toml").write_text('[store]\nformat = 1\nprojects_dir = "projects"\n')
    git(root, "add", "mdsessions.toml")
    git(root, "commit", "-q", "-m", "a store made by hand")
    before = snapshot(root)
    with pytest.raises(StoreError) as info:
        Store.open(root).close()
    assert "extensions.objectFormat" in str(info.value), str(info.value)
    assert snapshot(root) == before


def test_reftable_repository_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store.init(root).close()
    config = root / ".git" / "config"
    text = config.read_text()
    assert "repositoryformatversion = 0" in text
    text = text.replace("repositoryformatversion = 0", "repositoryformatversion = 1")
    config.write_text(text + "[extensions]\n\trefStorage = reftable\n")
    with pytest.raises(StoreError) as info:
        Store.open(root).close()
    assert "reftable" in str(info.value), str(info.value)


def test_linked_worktree_is_refused_or_works_cleanly(tmp_path: Path) -> None:
    root = store_with_session(tmp_path)
    linked = tmp_path / "linked"
    git(root, "worktree", "add", "-q", str(linked))
    main_before = snapshot(root)
    try:
        store = Store.open(linked)
    except StoreError as exc:
        assert "worktree" in str(exc).lower(), str(exc)
    else:
        with store:
            linked_before = snapshot(linked)
            try:
                store.session(P, S).save_agent_output(1, "concept_expansion", "from linked\n")
            except StoreError as exc:  # e.g. the linked worktree's branch is not the store's
                assert snapshot(linked) == linked_before, str(exc)
            else:
                assert_clean(linked)
                assert (
                    "from linked"
                    in (
                        linked / f"{store.session(P, S).phase_rel(1)}" / "concept_expansion.md"
                    ).read_text()
                )
    assert snapshot(root) == main_before
    assert_clean(root)


def test_a_sparse_index_is_updated_by_git_itself(tmp_path: Path) -> None:
    """A sparse index (``--sparse-index``) is not parsed in-process: git updates it."""
    store = Store.init(tmp_path / "sparse")
    try:
        session = store.create_session("p", "s1")
        git(store.root, "sparse-checkout", "set", "--cone", "--sparse-index", "projects")
        session.save_agent_output(1, "concept_expansion", "# one\r\n")
        session.save_agent_output(1, "concept_expansion", "# two\n")
        session.save_checkpoint(1, status="completed")
        assert session.output(1, "concept_expansion").content == "# two\n"  # type: ignore[union-attr]
        assert git(store.root, "status", "--porcelain") == ""
        assert_clean(store.root)
    finally:
        store.close()


def test_configuration_changes_in_an_included_file_are_seen(tmp_path: Path) -> None:
    """``include.path`` targets are watched like .git/config (hooks turned on there count)."""
    store = Store.init(tmp_path / "inc")
    try:
        session = store.create_session("p", "s1")
        extra = store.root / ".git" / "extra.cfg"
        extra.write_text("[mdsessions]\n", encoding="utf-8")
        git(store.root, "config", "include.path", "extra.cfg")
        marker = tmp_path / "ran"
        hook = store.root / ".git" / "hooks" / "pre-commit"
        hook.write_text(f"#!/bin/sh\necho ran >> '{marker}'\n", encoding="utf-8")
        hook.chmod(0o755)
        session.save_agent_output(1, "a", "# one\n")
        assert not marker.exists()
        extra.write_text("[mdsessions]\n\thooks = true\n", encoding="utf-8")
        session.save_agent_output(1, "a", "# two\n")
        assert marker.read_text(encoding="utf-8") == "ran\n"
    finally:
        store.close()
