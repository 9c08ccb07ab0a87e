"""Crashes and races with a person's git in between (found in review of issue 10/11).

Each test kills a real writer process (``os._exit`` at a chosen step, what ``kill -9``
leaves) or runs a person's plain git at the worst moment, then checks that only what is
provably mdsessions' own is touched and that nothing anyone wrote is lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import REPO_ROOT, assert_clean, git

from mdsessions import Store
from mdsessions.store import store as store_module

P, S = "p", "s"


def _killed_child(root: Path, body: str) -> int:
    """Run ``body`` in a child process (``root`` as ``sys.argv[1]``); return its status."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body), str(root)], env=env, check=False
    )
    return proc.returncode


def test_a_crashed_commit_with_a_person_commit_on_top_is_finished(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store.init(root).create_session(P, S)
    status = _killed_child(
        root,
        """
        import os, sys
        from mdsessions import Store
        from mdsessions.git import refs as _refs
        real = _refs.RefStore.cas
        def cas(self, *args, **kwargs):
            real(self, *args, **kwargs)
            os._exit(9)  # killed right after the branch moved, before the files
        _refs.RefStore.cas = cas
        Store.open(sys.argv[1]).session("p", "s").save_agent_output(1, "concept", "# saved\\n")
        """,
    )
    assert status == 9
    (root / "notes.txt").write_text("a person's note\n", encoding="utf-8")
    git(root, "add", "notes.txt")
    git(root, "commit", "-qm", "person: notes")
    with Store.open(root) as store:  # recovery finishes the save under the person's commit
        output = store.session(P, S).output(1, "concept")
        assert output is not None and output.content == "# saved\n"
    assert (root / "notes.txt").read_text(encoding="utf-8") == "a person's note\n"
    assert_clean(root)


def test_a_journal_torn_while_rewritten_leaves_no_lock_behind(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store.init(root).create_session(P, S)
    git(root, "config", "mdsessions.hooks", "true")
    hook = root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    hook.chmod(0o755)
    status = _killed_child(
        root,
        """
        import os, sys
        from mdsessions import Store
        from mdsessions.git import journal as _journal
        calls = [0]
        real = _journal.Journal.write
        def write(self, entry):
            calls[0] += 1
            if calls[0] == 2:  # the rewrite naming the signed/hooked commit: torn
                os.open(self.path, os.O_WRONLY | os.O_TRUNC)
                os._exit(9)
            real(self, entry)
        _journal.Journal.write = write
        Store.open(sys.argv[1]).session("p", "s").save_agent_output(1, "concept", "# x\\n")
        """,
    )
    assert status == 9
    assert (root / ".git" / "index.lock").exists()  # the dead writer's, through its claim
    with Store.open(root, lock_timeout=5) as store:
        assert not (root / ".git" / "index.lock").exists()
        store.session(P, S).save_agent_output(1, "concept", "# again\n")
    assert not list(root.rglob("*.mdstmp"))
    assert not list((root / ".git" / "mdsessions").glob("claim-*"))
    assert_clean(root)


def test_a_person_commit_between_plan_and_commit_is_planned_on(
    store: Store, monkeypatch: object
) -> None:
    session = store.create_session(P, S)
    session.save_checkpoint(1, status="in_progress")
    checkpoint = store.root / session.phase_rel(1) / "checkpoint.md"
    real_apply = store_module.Session._apply
    done: list[bool] = []

    def apply(self: store_module.Session, plan: object) -> object:
        if not done:  # a person's commit lands after the plan, before the commit
            done.append(True)
            text = checkpoint.read_text(encoding="utf-8")
            checkpoint.write_text(text + "\nA person's note on the EU numbers.\n", "utf-8")
            git(store.root, "commit", "-qam", "person: a note on phase 1")
        return real_apply(self, plan)  # type: ignore[arg-type]

    store_module.Session._apply = apply  # type: ignore[method-assign]
    try:
        session.save_checkpoint(1, status="completed")
    finally:
        store_module.Session._apply = real_apply  # type: ignore[method-assign]
    rel = f"{session.phase_rel(1)}/checkpoint.md"
    assert "A person's note on the EU numbers." in git(store.root, "show", f"HEAD:{rel}")
    assert "status: completed" in git(store.root, "show", f"HEAD:{rel}")
    assert_clean(store.root)


def test_recording_an_edit_never_writes_back_over_a_newer_save(store: Store) -> None:
    session = store.create_session(P, S)
    session.save_agent_output(1, "concept", "# v0\n")
    target = store.root / session.phase_rel(1) / "concept.md"
    target.write_text(target.read_text(encoding="utf-8").replace("# v0", "# v1"), "utf-8")
    inode = target.stat().st_ino
    real_commit = store.git.commit

    def commit(*args: object, **kwargs: object) -> object:
        # The editor saves again while the first save is being recorded.
        target.write_text(target.read_text(encoding="utf-8").replace("# v1", "# v2"), "utf-8")
        return real_commit(*args, **kwargs)  # type: ignore[arg-type]

    store.git.commit = commit  # type: ignore[method-assign]
    try:
        sha, rejected = store.record_edits()
    finally:
        store.git.commit = real_commit  # type: ignore[method-assign]
    assert sha is not None and rejected == []
    assert "# v1" in git(store.root, "show", f"HEAD:{session.phase_rel(1)}/concept.md")
    assert "# v2" in target.read_text(encoding="utf-8")  # the newer save is still there
    assert target.stat().st_ino == inode  # the file was not replaced under the editor
    assert git(store.root, "status", "--porcelain").strip().startswith("M")
