"""Tests for mdsessions.git.repo: path safety, identities, hooks, log/trailers, env, locking."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import (
    PERSON,
    REPO_ROOT,
    RUNNER,
    assert_clean,
    author,
    commit_count,
    git,
    head,
    snapshot,
    tree_digest,
)

from mdsessions import (
    Identity,
    LockTimeoutError,
    Session,
    Store,
    StoreError,
    UnrecordedEditError,
)
from mdsessions.git import fsutil as _fsutil
from mdsessions.git import objects as _objects
from mdsessions.git import recovery as _recovery
from mdsessions.git.repo import atomic_write, blob_sha

P, S = "project-123", "session-456"


@pytest.fixture
def session(store: Store) -> Session:
    return store.create_session(P, S)


# ------------------------------------------------------------------------------ paths


def test_symlinked_session_folder_is_refused(
    store: Store, session: Session, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    shutil.copytree(session.path, outside)
    before_outside = tree_digest(outside)
    shutil.rmtree(session.path)
    session.path.symlink_to(outside, target_is_directory=True)
    head_before = git(store.root, "rev-parse", "HEAD")
    with pytest.raises(StoreError) as info:
        session.save_agent_output(1, "concept_expansion", "must not escape\n")
    assert "symbolic link" in str(info.value)
    assert tree_digest(outside) == before_outside
    assert not (outside / "phase_1_concept").exists()
    assert git(store.root, "rev-parse", "HEAD") == head_before


def test_symlinked_phase_folder_is_refused(store: Store, session: Session, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (session.path / "phase_1_concept").symlink_to(outside, target_is_directory=True)
    head_before = git(store.root, "rev-parse", "HEAD")
    for call in (
        lambda: session.save_agent_output(1, "concept_expansion", "x\n"),
        lambda: session.save_checkpoint(1, status="completed"),
    ):
        with pytest.raises(StoreError):
            call()
    assert list(outside.iterdir()) == []
    assert git(store.root, "rev-parse", "HEAD") == head_before


def test_symlinked_file_is_refused(store: Store, session: Session, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    folder = session.path / "phase_1_concept"
    folder.mkdir()
    (folder / "concept_expansion.md").symlink_to(victim)
    with pytest.raises(StoreError):
        session.save_agent_output(1, "concept_expansion", "overwrite?\n")
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("rel", ["../escape.md", "/abs.md", "a//b.md", ".git/config", "a/./b", ""])
def test_commit_refuses_paths_that_are_not_plain(store: Store, rel: str) -> None:
    before = snapshot(store.root)
    with pytest.raises(StoreError), store.git.writer():
        store.git.commit(
            {rel: b"x"},
            message="nope",
            author=Identity("a", "a@b"),
            committer=Identity("a", "a@b"),
        )
    assert snapshot(store.root) == before


# ------------------------------------------------------------------------------ identities


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Test Person <person@example.com>", ("Test Person", "person@example.com")),
        ("  Spaced   Name   <x@y>  ", ("Spaced   Name", "x@y")),
        ("Ünïcödé Nämé <u@example.org>", ("Ünïcödé Nämé", "u@example.org")),
        ("mdsessions <mdsessions@localhost>", ("mdsessions", "mdsessions@localhost")),
        ("Empty Email <>", ("Empty Email", "")),
    ],
)
def test_identity_parse(text: str, expected: tuple[str, str]) -> None:
    identity = Identity.parse(text)
    assert tuple(identity) == expected
    assert str(Identity.parse(str(identity))) == str(identity)


@pytest.mark.parametrize(
    "text",
    [
        "no email",
        "<only@email>",
        "Name <a@b> trailing",
        "Name <a <b>>",
        "Name <a b>",
        "Name <a\n@b>",
        "",
    ],
)
def test_identity_parse_refuses_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        Identity.parse(text)


def test_identity_checked() -> None:
    assert Identity("A", "a@b").checked() == Identity("A", "a@b")
    for bad in (
        Identity("", "a@b"),
        Identity("A\nB", "a@b"),
        Identity("A", "a>b"),
        Identity(" ", "x"),
    ):
        with pytest.raises(ValueError):
            bad.checked()


def test_store_author_option(tmp_path: Path) -> None:
    with Store.init(tmp_path / "s", author="Bot Runner <bot@example.com>") as store:
        store.create_session(P, S)
        assert author(store.root) == "Bot Runner <bot@example.com>"


def test_runner_commits_do_not_depend_on_a_git_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-gitconfig"
    empty.write_text("[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("EMAIL", "")
    with Store.init(tmp_path / "s") as store:
        session = store.create_session(P, S)
        session.save_agent_output(1, "a", "x\n")
        assert author(store.root) == RUNNER
        assert_clean(store.root)


# ------------------------------------------------------------------------------ hooks

HOOKS = [
    "pre-commit",
    "commit-msg",
    "post-commit",
    "reference-transaction",
    "post-index-change",
    "post-checkout",
]


def test_repository_hooks_never_run(store: Store, session: Session, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    hooks = store.root / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in HOOKS:
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\necho {name} >> '{marker}'\nexit 1\n")
        hook.chmod(0o755)
    # The hooks are live for plain git.
    subprocess.run(["git", "update-index", "--refresh"], cwd=store.root, capture_output=True)
    if not marker.exists():
        pytest.skip("this git does not run post-index-change; cannot prove hooks are live")
    marker.unlink()

    session.save_agent_output(1, "concept_expansion", "x\n")
    session.save_checkpoint(1, status="completed")
    feedback = session.path / "phase_1_concept" / "user_feedback.md"
    feedback.write_text(
        feedback.read_text(encoding="utf-8").replace("\napproved: false\n", "\napproved: true\n"),
        encoding="utf-8",
    )
    store.unrecorded_edits()
    store.record_edits()
    store.log()
    store.validate()
    assert not marker.exists(), marker.read_text()


def test_commits_go_through_even_when_hooks_would_refuse(store: Store, session: Session) -> None:
    hook = store.root / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    before = commit_count(store.root)
    session.save_agent_output(1, "a", "x\n")
    assert commit_count(store.root) == before + 1


# ------------------------------------------------------------------------------ log / trailers


def test_log_parses_trailers(store: Store, session: Session) -> None:
    session.save_agent_output(1, "concept_expansion", "x\n")
    session.save_checkpoint(1, status="completed")
    session.save_feedback(1, approved=True)
    commits = store.log()
    assert len(commits) == 5
    newest = commits[0]
    assert newest.author == PERSON
    assert newest.trailer("Mdsessions-Kind") == "user_feedback"
    assert newest.trailer("mdsessions-phase") == "1"  # keys are case-insensitive
    assert newest.trailer("Mdsessions-Status") == "approved"
    assert newest.trailer("Missing") is None
    assert newest.sha == git(store.root, "rev-parse", "HEAD").strip()
    assert newest.subject == git(store.root, "log", "-1", "--format=%s").strip()
    assert newest.time.endswith("Z")
    kinds = [c.trailer("Mdsessions-Kind") for c in commits]
    assert kinds == ["user_feedback", "checkpoint", "agent_output", "session", "init"]
    assert all(c.author == RUNNER for c in commits[1:])
    history = session.history()
    assert [c.sha for c in history] == [c.sha for c in commits[:4]]
    assert store.log(max_count=2, skip=1) == commits[1:3]


def test_log_limited_to_paths(store: Store, session: Session) -> None:
    session.save_agent_output(1, "a", "x\n")
    session.save_agent_output(1, "b", "y\n")
    rel = f"{session.phase_rel(1)}/a.md"
    commits = store.log(paths=[rel])
    assert len(commits) == 1
    assert commits[0].trailer("Mdsessions-Agent") == "a"


def test_read_at_returns_old_versions(store: Store, session: Session) -> None:
    session.save_agent_output(1, "a", "first\n")
    first = git(store.root, "rev-parse", "HEAD").strip()
    session.save_agent_output(1, "a", "second\n")
    rel = f"{session.phase_rel(1)}/a.md"
    old = store.read_at(first, rel)
    assert (
        old
        == subprocess.run(
            ["git", "show", f"{first}:{rel}"], cwd=store.root, capture_output=True, check=True
        ).stdout
    )
    assert old.endswith(b"\n## Output\n\nfirst\n")
    with pytest.raises(FileNotFoundError):
        store.read_at(first, f"{session.phase_rel(1)}/missing.md")
    with pytest.raises(StoreError):
        store.read_at("no-such-rev", rel)


# ------------------------------------------------------------------------------ environment


def test_callers_git_environment_does_not_leak(
    store: Store, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    git(decoy, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(decoy / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(decoy))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "other-index"))
    session.save_agent_output(1, "a", "x\n")
    store.log()
    assert store.unrecorded_edits() == []
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_WORK_TREE")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert git(decoy, "rev-list", "--all").strip() == ""
    assert_clean(store.root)


# ------------------------------------------------------------------------------ writes


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "folder" / "file.md"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.md"]


def test_blob_sha_matches_git(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = "héllo\r\n---\n".encode()
    path.write_bytes(data)
    expected = subprocess.run(
        ["git", "hash-object", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert blob_sha(data).hex() == expected


def test_staged_change_blocks_a_save(store: Store, session: Session) -> None:
    session.save_agent_output(1, "a", "x\n")
    rel = f"{session.phase_rel(1)}/a.md"
    path = store.root / rel
    path.write_text(path.read_text(encoding="utf-8") + "more\n", encoding="utf-8")
    git(store.root, "add", rel)
    staged = path.read_bytes()
    with pytest.raises(UnrecordedEditError) as info:
        session.save_agent_output(1, "a", "y\n")
    assert "staged" in str(info.value)
    assert path.read_bytes() == staged


def test_untracked_file_in_the_way_blocks_a_save(store: Store, session: Session) -> None:
    folder = session.path / "phase_1_concept"
    folder.mkdir()
    mine = folder / "concept_expansion.md"
    mine.write_text("my own draft\n")
    with pytest.raises(UnrecordedEditError) as info:
        session.save_agent_output(1, "concept_expansion", "x\n")
    assert "concept_expansion.md" in str(info.value)
    assert mine.read_text() == "my own draft\n"


LOCK_HOLDER = textwrap.dedent(
    """
    import sys, time
    from mdsessions import Store
    store = Store.open(sys.argv[1])
    with store.git.writer():
        print("locked", flush=True)
        time.sleep(30)
    """
)


def test_lock_timeout_is_a_clear_error(store: Store, session: Session) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(store.root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"locked"
        impatient = Store(store.root, lock_timeout=0.3)
        before = snapshot(store.root)
        with pytest.raises(LockTimeoutError) as info:
            impatient.session(P, S).save_agent_output(1, "a", "x\n")
        assert isinstance(info.value, TimeoutError)
        assert "lock" in str(info.value)
        assert snapshot(store.root) == before
        impatient.close()
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    session.save_agent_output(1, "a", "after the holder died\n")
    assert_clean(store.root)


# ------------------------------------------------------------------------------ living with git


def test_saves_work_after_git_gc_packs_refs_and_objects(store: Store, session: Session) -> None:
    session.save_agent_output(1, "a", "before gc\n")
    git(store.root, "gc", "-q", "--prune=now")
    assert not (store.root / ".git" / "refs" / "heads" / "main").exists()
    session.save_agent_output(1, "b", "after gc\n")
    assert session.output(1, "a").content == "before gc\n"  # type: ignore[union-attr]
    assert git(store.root, "log", "-1", "--format=%s").startswith("agent_output(")
    assert_clean(store.root)


def test_a_persons_own_git_commit_between_saves(store: Store, session: Session) -> None:
    session.save_agent_output(1, "a", "x\n")
    (store.root / "NOTES.txt").write_text("my own file\n")
    git(store.root, "add", "NOTES.txt")
    git(store.root, "commit", "-q", "-m", "my notes")
    mine = git(store.root, "rev-parse", "HEAD").strip()
    session.save_agent_output(1, "b", "y\n")
    assert git(store.root, "rev-parse", "HEAD~1").strip() == mine
    assert "NOTES.txt" in git(store.root, "ls-tree", "--name-only", "HEAD")
    assert_clean(store.root)


def test_detached_head_is_refused(store: Store, session: Session) -> None:
    git(store.root, "checkout", "-q", "--detach")
    before = snapshot(store.root)
    with pytest.raises(StoreError, match="detached"):
        session.save_agent_output(1, "a", "x\n")
    assert snapshot(store.root) == before


def _children() -> set[str]:
    """Pid and command of this process's children (from /proc)."""
    me = str(os.getpid())
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me:
            found.add(stat.split(")", 1)[0])
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_no_git_processes_or_file_handles_leak(tmp_path: Path) -> None:
    fds_before = len(list(Path("/proc/self/fd").iterdir()))
    children_before = _children()
    store = Store.init(tmp_path / "leak")
    session = store.create_session(P, S)
    for i in range(20):
        session.save_agent_output(1, f"a{i % 3}", f"x{i}\n")
        session.outputs()
        session.checkpoint(1)
        store.log(max_count=3)
    store.read_at("HEAD", f"{session.phase_rel(1)}/a0.md")
    store.close()
    assert _children() - children_before == set()
    assert len(list(Path("/proc/self/fd").iterdir())) <= fds_before


# ------------------------------------------------------------------------------ big trees


def test_big_trees_spliced_in_place_equal_what_git_writes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of 600 entries: the ids of changed entries are spliced into the old tree's
    bytes; every tree must still be exactly git's (same id as ``git mktree`` gives), also
    after additions, deletions and a file replaced by a folder, and ``git fsck`` is clean."""
    import random

    rng = random.Random(5)
    names = [f"s{k:04d}" for k in range(600)]
    full_serialisations: list[int] = []
    serialize = _objects.serialize_tree

    def counting(entries: _objects.TreeEntries) -> bytes:
        if len(entries) >= 512:
            full_serialisations.append(len(entries))
        return serialize(entries)

    monkeypatch.setattr(_objects, "serialize_tree", counting)

    def commit(files: dict[str, bytes | None], message: str) -> None:
        with store.git.writer():
            store.git.commit(files, message=message, author=store.author, committer=store.author)

    commit({f"big/{n}/a.md": f"{n}\n".encode() for n in names}, "many")
    state = {n: f"{n}\n" for n in names}
    for step in range(12):
        files: dict[str, bytes | None] = {}
        for n in rng.sample(names, 3):  # replacements: the splice path
            state[n] = f"{n} {step}\n"
            files[f"big/{n}/a.md"] = state[n].encode()
        if step % 4 == 3:  # an addition and a deletion: the full path
            new = f"n{step:04d}"
            names.append(new)
            state[new] = "new\n"
            files[f"big/{new}/a.md"] = b"new\n"
            gone = names.pop(0)
            del state[gone]
            files[f"big/{gone}/a.md"] = None
        if step == 6:  # a file and a folder named alike sort differently in git
            files["big/s0300.md"] = b"file beside the folder s0300/\n"
        full_serialisations.clear()
        commit(files, f"step {step}")
        spliced = step % 4 != 3 and step != 6
        assert full_serialisations == ([] if spliced else [len(state) + (step >= 6)])
        listing = git(store.root, "ls-tree", "HEAD:big")
        # Re-create the tree with git itself: same entries, git's order and bytes.
        remade = subprocess.run(
            ["git", "mktree"],
            cwd=store.root,
            input=listing,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert remade == git(store.root, "rev-parse", "HEAD:big").strip()
        for n in rng.sample(sorted(state), 5):
            assert git(store.root, "show", f"HEAD:big/{n}/a.md") == state[n]
    assert (
        subprocess.run(
            ["git", "fsck", "--strict", "--no-dangling"], cwd=store.root, capture_output=True
        ).returncode
        == 0
    )
    assert_clean(store.root)


def test_an_object_folder_removed_by_a_concurrent_prune_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`git prune-packed` (run by a concurrent repack) removes empty object folders, also
    between our mkdir and our open: the write makes the folder again and succeeds."""
    target = tmp_path / "objects" / "ab" / "tmp_obj_test"
    real_open = os.open
    calls: list[str] = []

    def racing_open(path: str, flags: int, mode: int = 0o777) -> int:
        calls.append(str(path))
        if len(calls) == 2:  # the folder was just made: a prune removes it again
            Path(path).parent.rmdir()
        return real_open(path, flags, mode)

    monkeypatch.setattr(_fsutil.os, "open", racing_open)
    _fsutil.write_new(target, b"object bytes", 0o444, fsync=False)
    monkeypatch.undo()
    assert len(calls) == 3
    assert target.read_bytes() == b"object bytes"


def test_naming_a_dropped_commit_leaves_heads_reflog_alone(store: Store) -> None:
    """A ref other than the checked-out branch is logged in its own reflog only (as git does):
    ``git reflog`` (HEAD's) must not gain a line for ``refs/mdsessions/dropped/…``."""
    store.create_session("p", "s")
    sha = head(store.root)
    before = (store.root / ".git" / "logs" / "HEAD").read_text()
    _recovery.keep_dropped(store.git, sha, store.author)
    assert (store.root / ".git" / "logs" / "HEAD").read_text() == before
    assert git(store.root, "rev-parse", f"refs/mdsessions/dropped/{sha}").strip() == sha
    logged = (store.root / ".git" / "logs" / "refs" / "mdsessions" / "dropped" / sha).read_text()
    assert logged.split()[1] == sha
