"""Writers: what the writer lock covers, the catch-up after other writers, durable batches.

Issue 13 moved work out of the writer lock (blobs written and the planned-on trees read
before it: ``GitRepo.prepare``), made the catch-up after other mdsessions writers cheap
(``recovery._only_own_since``), read the configuration once per write, and flushes durable
writes in batches (``fsutil.durable_batch``). These tests check that nothing is lost or
mis-ordered by that: real subprocesses, real git, no timing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import REPO_ROOT, assert_clean, commit_count, git, head

from mdsessions import Store
from mdsessions.errors import StoreError
from mdsessions.git import fsutil
from mdsessions.git import recovery as _recovery
from mdsessions.git.repo import GitRepo

P = "acme"

WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from mdsessions import Store
    root, sid, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
    with Store.open(root) as store:
        session = store.session("acme", sid)
        for i in range(n):
            session.save_checkpoint(
                1,
                status="in_progress",
                outputs=[{"agent": "writer", "content": f"{sid} round {i}", "input_tokens": i}],
            )
    """
)


def test_concurrent_writer_processes_lose_nothing(store: Store) -> None:
    """Four processes checkpoint their own sessions at once: every commit lands, in order."""
    sessions = [f"w{k}" for k in range(4)]
    for sid in sessions:
        store.create_session(P, sid)
    before = commit_count(store.root)
    rounds = 6
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(REPO_ROOT), str(store.root), sid, str(rounds)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for sid in sessions
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert commit_count(store.root) == before + rounds * len(sessions)
    for sid in sessions:
        rel = f"{store.session(P, sid).phase_rel(1)}/writer.md"
        assert f"{sid} round {rounds - 1}" in git(store.root, "show", f"HEAD:{rel}")
        # Each process's own commits follow one another in its session's history.
        log = git(store.root, "log", "--format=%H", "--", rel).split()
        assert len(log) == rounds
    assert_clean(store.root)


def test_a_commit_between_prepare_and_the_lock_is_planned_on(store: Store) -> None:
    """A person's commit of the very file lands after the plan's blobs were written early.

    The write is planned again on top of it (``BranchMovedError`` inside), so the person's
    commit stays in the history and the file holds the new save.
    """
    session = store.create_session(P, "s1")
    session.save_agent_output(1, "concept", "first version")
    rel = f"{session.phase_rel(1)}/concept.md"
    real_prepare = GitRepo.prepare
    calls: list[str | None] = []

    def prepare(self: GitRepo, files: object, planned_on: str | None) -> None:
        real_prepare(self, files, planned_on)  # type: ignore[arg-type]
        if not calls:  # once: a person's commit of the same file, after the blobs
            path = store.root / rel
            path.write_text(path.read_text(encoding="utf-8") + "\nA person's line.\n", "utf-8")
            git(store.root, "commit", "-qam", "person: a line in the concept")
        calls.append(planned_on)

    GitRepo.prepare = prepare  # type: ignore[method-assign]
    try:
        session.save_agent_output(1, "concept", "second version")
    finally:
        GitRepo.prepare = real_prepare  # type: ignore[method-assign]
    assert calls  # the plan was made before the lock
    assert "second version" in git(store.root, "show", f"HEAD:{rel}")
    assert git(store.root, "log", "-1", "--format=%s", "HEAD~1").strip() == (
        "person: a line in the concept"
    )
    assert_clean(store.root)


def test_prepare_writes_the_blobs_the_commit_uses(store: Store) -> None:
    session = store.create_session(P, "s1")
    rel = f"{session.phase_rel(1)}/concept.md"
    data = b"content written before the lock\n"
    blob = (
        subprocess.run(
            ["git", "hash-object", "--stdin"], input=data, cwd=store.root, capture_output=True
        )
        .stdout.decode()
        .strip()
    )
    assert git(store.root, "cat-file", "-t", blob, check=False).strip() != "blob"
    store.git.prepare({rel: data, "projects/acme/gone.md": None}, head(store.root))
    assert git(store.root, "cat-file", "-t", blob).strip() == "blob"
    with store.writing():
        store.git.commit({rel: data}, message="m\n", author=store.author, committer=store.author)
    assert git(store.root, "rev-parse", f"HEAD:{rel}").strip() == blob
    assert_clean(store.root)


def test_prepare_reports_nothing_and_the_commit_raises(store: Store) -> None:
    """A path that escapes the store is refused by the commit, not by the early step."""
    store.git.prepare({"../outside.md": b"x"}, head(store.root))
    with store.writing(), pytest.raises(StoreError, match="not a plain store-relative path"):
        store.git.commit(
            {"../outside.md": b"x"},
            message="m\n",
            author=store.author,
            committer=store.author,
        )
    assert not (store.root.parent / "outside.md").exists()


def _stale_index_commit(root: Path, stale_index: Path, rel: str) -> None:
    """A person's ``git commit`` made from an index saved before some mdsessions writes."""
    shutil.copyfile(stale_index, root / ".git" / "index")
    (root / rel).write_text("a person's notes\n", encoding="utf-8")
    git(root, "add", rel)
    git(root, "commit", "-qm", "person: notes")


def test_files_dropped_under_other_writers_commits_are_put_back(tmp_path: Path) -> None:
    """A stale-index commit followed by another writer's commits is still found and undone.

    Writer A saves; a person's ``git commit`` from an index read before A's save drops it;
    writer B (another process's store) commits on top. A's next write walks back through
    B's commits to the person's, sees a commit that is not an mdsessions one, and puts its
    file back.
    """
    root = tmp_path / "store"
    Store.init(root).close()
    a, b = Store.open(root), Store.open(root)
    try:
        sa = a.create_session(P, "a")
        sb = b.create_session(P, "b")
        stale = tmp_path / "stale-index"
        shutil.copyfile(root / ".git" / "index", stale)
        sa.save_agent_output(1, "concept", "A's concept")
        rel = f"{sa.phase_rel(1)}/concept.md"
        _stale_index_commit(root, stale, "notes.md")
        assert git(root, "ls-tree", "HEAD", rel).strip() == ""  # dropped
        for i in range(3):
            sb.save_agent_output(1, "concept", f"B's concept {i}")
        sa.save_checkpoint(1, status="in_progress")
        assert "A's concept" in git(root, "show", f"HEAD:{rel}")
        subjects = git(root, "log", "--format=%s", "-8")
        assert "file(s) a concurrent git command dropped" in subjects
    finally:
        a.close()
        b.close()


def test_other_writers_commits_alone_need_no_restore(tmp_path: Path) -> None:
    """Only mdsessions commits since this process's last: no restore commit, nothing lost."""
    root = tmp_path / "store"
    Store.init(root).close()
    a, b = Store.open(root), Store.open(root)
    try:
        sa = a.create_session(P, "a")
        sb = b.create_session(P, "b")
        sa.save_agent_output(1, "concept", "A's concept")
        last = head(root)
        for i in range(3):
            sb.save_agent_output(1, "concept", f"B's concept {i}")
        assert _recovery._only_own_since(a.git, head(root), last)
        before = commit_count(root)
        sa.save_checkpoint(1, status="in_progress")
        assert commit_count(root) == before + 1
        assert "restore:" not in git(root, "log", "--format=%s", "-6")
        # A person's commit on the way is not skipped.
        git(root, "commit", "-q", "--allow-empty", "-m", "person: nothing")
        sb.save_agent_output(1, "concept", "B's concept 4")
        assert not _recovery._only_own_since(a.git, head(root), a.git.memory.last_installed)
    finally:
        a.close()
        b.close()


def test_the_configuration_is_read_once_per_write(store: Store) -> None:
    """Inside one write the configuration stays as first read; the next write sees a change."""
    repo = store.git
    assert not repo.hooks_enabled
    with store.writing():
        assert not repo.hooks_enabled
        git(store.root, "config", "--local", "mdsessions.hooks", "true")  # a person, meanwhile
        assert not repo.hooks_enabled  # as git does: one command, one configuration
        repo.set_local_config("mdsessions.sign", "false")  # our own change is seen at once
        assert repo.config.get("mdsessions.sign") == "false"
    with store.writing():
        assert repo.hooks_enabled
    assert repo.hooks_enabled


def test_a_durable_batch_flushes_once_at_its_end(tmp_path: Path, monkeypatch: object) -> None:
    flushed: list[Path] = []
    real = fsutil.fsync_dir
    monkeypatch.setattr(fsutil, "fsync_dir", lambda folder: (flushed.append(folder), real(folder)))  # type: ignore[attr-defined]
    (tmp_path / "a").mkdir()
    with fsutil.durable_batch():
        fsutil.write_new(tmp_path / "a" / "one", b"1", 0o644, fsync=True)
        with fsutil.durable_batch():  # joins the outer batch
            fsutil.write_new(tmp_path / "two", b"2", 0o644, fsync=True)
        assert flushed == []
    assert len(flushed) == 1
    assert (tmp_path / "a" / "one").read_bytes() == b"1"
    assert (tmp_path / "two").read_bytes() == b"2"
    # An error inside: nothing flushed, the error goes on; the next batch starts clean.
    flushed.clear()
    with pytest.raises(RuntimeError), fsutil.durable_batch():
        fsutil.write_new(tmp_path / "three", b"3", 0o644, fsync=True)
        raise RuntimeError("abandoned")
    assert flushed == []
    with fsutil.durable_batch():
        pass
    assert flushed == []  # nothing written in it: nothing to flush
    with fsutil.durable_batch(enabled=False):
        fsutil.write_new(tmp_path / "four", b"4", 0o644, fsync=True)
    assert flushed == []


def test_durable_checkpoints_leave_a_complete_store(tmp_path: Path) -> None:
    """Durable mode (batched flushes) writes the same commits, files and index."""
    root = tmp_path / "store"
    Store.init(root).close()
    with Store.open(root, durable=True) as store:
        session = store.create_session(P, "d")
        for i in range(3):
            session.save_checkpoint(
                1,
                status="in_progress",
                outputs=[{"agent": "writer", "content": f"round {i}", "input_tokens": i}],
            )
        rel = f"{session.phase_rel(1)}/writer.md"
    assert "round 2" in git(root, "show", f"HEAD:{rel}")
    leftovers = [p for p in root.rglob(f"*{fsutil.TMP_SUFFIX}")]
    leftovers += list((root / ".git" / "objects").glob("*/tmp_obj_*"))
    assert leftovers == []
    assert not (root / ".git" / "mdsessions" / "journal.json").exists()
    assert_clean(root)


def test_compat_pair_returns_the_files_it_wrote(tmp_path: Path) -> None:
    from mdsessions import CheckpointManager

    manager = CheckpointManager(tmp_path / "projects")
    try:
        folder = manager.create_session("p1", "s1")
        out = manager.save_agent_output("p1", "s1", 1, "concept_expansion", "text")
        ckpt = manager.save_checkpoint("p1", "s1", 1, "in_progress")
        assert out == folder / "phase_1_concept" / "concept_expansion.md"
        assert ckpt == folder / "phase_1_concept" / "checkpoint.md"
        assert out.is_file() and ckpt.is_file() and ckpt.name == "checkpoint.md"
        with pytest.raises(ValueError, match="expected an integer"):
            manager.save_checkpoint("p1", "s1", "1", "completed")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            manager.save_agent_output("p1", "s1", 4, "x", "not in mvp")  # phase 4: full only
        assert manager.load_session("p1", "s1")["current_phase"] == 1
    finally:
        manager.close()


_CLAIM_AND_WAIT = """
import os, signal, sys, time
from pathlib import Path
from mdsessions import Store
store = Store.open(sys.argv[1])
token = store.git.objects.claim_token()
folder = Path(sys.argv[1]) / ".git" / "objects" / "ab"
folder.mkdir(exist_ok=True)
(folder / f"tmp_obj_mds{token}_half").write_bytes(b"half an object")
print(token, flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(60)
"""


def test_temp_objects_of_a_killed_process_go_and_a_living_ones_stay(store: Store) -> None:
    """Objects written before the writer lock (``prepare``) carry a claim the kernel unlocks.

    A process killed while writing one leaves ``tmp_obj_mds<token>_*``; the next open removes
    it because the claim's flock can be taken. A living process's temp object is not touched.
    """
    root = store.root
    store.close()
    script = [sys.executable, "-c", _CLAIM_AND_WAIT, str(root)]
    live = subprocess.Popen([*script, "live"], stdout=subprocess.PIPE, text=True)
    try:
        live_token = live.stdout.readline().strip() if live.stdout else ""
        dead = subprocess.run([*script, "die"], capture_output=True, text=True, timeout=60)
        dead_token = dead.stdout.strip()
        assert dead.returncode == -9 and dead_token and live_token
        objects = root / ".git" / "objects" / "ab"
        private = root / ".git" / "mdsessions"
        assert (objects / f"tmp_obj_mds{dead_token}_half").exists()
        with Store.open(root) as reopened:
            reopened.sessions()
        assert not (objects / f"tmp_obj_mds{dead_token}_half").exists()
        assert not (private / f"objects-{dead_token}.claim").exists()
        assert (objects / f"tmp_obj_mds{live_token}_half").exists()
        assert (private / f"objects-{live_token}.claim").exists()
    finally:
        live.kill()
        live.wait()
    with Store.open(root):
        pass
    assert not (root / ".git" / "objects" / "ab" / f"tmp_obj_mds{live_token}_half").exists()


def test_a_closed_store_leaves_no_object_claim(store: Store) -> None:
    session = store.create_session(P, "s1")
    store.git.prepare({f"{session.phase_rel(1)}/concept.md": b"early\n"}, head(store.root))
    private = store.root / ".git" / "mdsessions"
    assert list(private.glob("objects-*.claim"))
    store.close()
    assert not list(private.glob("objects-*.claim"))


def test_an_audit_is_remembered_until_the_branch_moves_again(tmp_path: Path) -> None:
    """Opening a store after a person's commit audits it once, not at every command.

    The mark names the branch's newest reflog entry; any later move (a racing no-op reset
    that drops a save, here) adds an entry, so the next open audits again and puts the
    dropped save back.
    """
    root = tmp_path / "store"
    with Store.init(root) as store:
        session = store.create_session(P, "s1")
        rel = f"{session.phase_rel(1)}/concept.md"
    (root / "notes.md").write_text("a person's notes\n", encoding="utf-8")
    git(root, "add", "notes.md")
    git(root, "commit", "-qm", "person: notes")
    with Store.open(root) as store:
        assert not _recovery.reflog_asks_for_audit(store.git)  # audited on open, remembered
    with Store.open(root) as store:
        assert not _recovery.reflog_asks_for_audit(store.git)
        before = head(root)
        store.session(P, "s1").save_agent_output(1, "concept", "saved, then dropped\n")
        saved = head(root)
    # git stash's own reset, racing the save: the branch goes back to where it was.
    git(root, "update-ref", "-m", "reset: moving to HEAD", "refs/heads/main", before, saved)
    assert "saved, then dropped" not in git(root, "log", "-1", "-p", "HEAD")
    with Store.open(root) as store:
        assert head(root) != before
        assert "saved, then dropped" in git(root, "show", f"HEAD:{rel}")
        assert not _recovery.reflog_asks_for_audit(store.git)
    assert_clean(root)
