"""Saves while a person runs plain git in the same repository (issue 10).

The first test runs ``benchmarks/beside_git.py``'s scenario at test size: a separate process
loops plain git (commit of the person's note, ``git stash`` / ``git stash pop`` of their own
uncommitted edit, ``git gc --auto``, ``git repack -ad``, ``git pack-refs --all``,
``git status``) while this process makes 80 saves; nothing acknowledged may be lost, the index
and the object store stay sound, the person's work survives, and a save that fails does so
rarely, with a retryable error that says to try again.

The second checks a crashed writer's recovery beside a *live* ``index.lock`` of another git
process: a writer is SIGKILLed in the middle of a commit (journal left behind), the person
removes the stale lock as git tells them to, commits their own note (the branch moves), stages
an edit, and runs a git command that holds ``index.lock``; opening the store must leave that
lock, the person's commit and their staged edit alone.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import git

import mdsessions
from benchmarks.beside_git import format_details, format_table, problems, run_once
from mdsessions import Store

PROJECT = "p"
SESSION = "s"
AGENT = "concept_expansion"

# --------------------------------------------------------------------- saves beside plain git


def test_saves_beside_plain_git_lose_nothing(tmp_path: Path) -> None:
    result = run_once(tmp_path / "run", saves=80, scenario="full", seed=10, pause=0.005)
    found = problems(result, max_failed_fraction=0.05)
    assert not found, (
        f"library {Path(mdsessions.__file__).parent}: "
        f"{len(found)} problem(s) with a person's plain git beside the saves:\n- "
        + "\n- ".join(found[:25])
        + "\n\n"
        + format_table([result])
        + "\n"
        + format_details([result])
    )


# --------------------------------------------------------------------- recovery vs a live lock

CRASHING_WRITER = r"""
import sys
from mdsessions import Store

store = Store.open(sys.argv[1])
session = store.session(sys.argv[2], sys.argv[3])
print("ready", flush=True)
i = 0
while True:
    i += 1
    session.save_agent_output(1, sys.argv[4], f"# Crashing writer\n\nsave {i}\n" + "x" * i)
"""


def _child_env() -> dict[str, str]:
    """This environment, with the library this test imported first on the child's path."""
    env = dict(os.environ)
    library = str(Path(mdsessions.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (library, env.get("PYTHONPATH")) if p)
    return env


def _journals(root: Path) -> list[Path]:
    return sorted((root / ".git" / "mdsessions").glob("journal*"))


def _branch_unmoved(root: Path) -> bool:
    """The journal's branch is still at the commit the writer started from, files and index too.

    Read from the journal where it names ``old`` and ``ref`` (every format so far); and in any
    case nothing under ``projects/`` differs from HEAD in the index or the working tree.
    """
    for journal in _journals(root):
        try:
            data = json.loads(journal.read_bytes())
            old, ref = data["old"], data["ref"]
        except (ValueError, TypeError, KeyError):
            continue
        now = git(root, "rev-parse", "--verify", "--quiet", ref, check=False).strip() or None
        if now != old:
            return False
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    for args in (["diff", "--quiet", "HEAD"], ["diff", "--cached", "--quiet", "HEAD"]):
        proc = subprocess.run(
            ["git", *args, "--", "projects"], cwd=str(root), env=env, capture_output=True
        )
        if proc.returncode != 0:
            return False
    return True


def crash_writer(root: Path, rng: random.Random, agent_rel: str) -> str:
    """Leave a crashed writer's journal: SIGKILL a writer in the middle of a commit.

    The child saves in a loop; when a journal appears it is stopped (SIGSTOP), and killed if
    the journal is still there and the branch has not moved yet (else it goes on), a random
    0-3 ms after the journal was seen. When no such moment comes within 20 s (a future journal
    by another name), the journal is written by hand in the format of ``_git.recover``.

    Returns:
        ``"killed"`` or ``"written"``.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, str(root), PROJECT, SESSION, AGENT],
        cwd=str(root.parent),  # not the checkout: ``-c`` puts the working folder on sys.path
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read() if proc.stderr else ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            if not _journals(root):
                continue
            time.sleep(rng.uniform(0, 0.003))
            os.kill(proc.pid, signal.SIGSTOP)
            os.waitpid(proc.pid, os.WUNTRACED)
            if _journals(root) and _branch_unmoved(root):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return "killed"
            os.kill(proc.pid, signal.SIGCONT)
            while _journals(root) and time.monotonic() < deadline:
                pass  # let that commit finish; wait for the next one
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    Store.open(root).close()  # recover whatever the last kill left
    head = git(root, "rev-parse", "HEAD").strip()
    journal = root / ".git" / "mdsessions" / "journal.json"
    journal.write_text(json.dumps({"old": head, "ref": "refs/heads/main", "paths": [agent_rel]}))
    return "written"


EDITOR = """#!/bin/sh
touch "{started}"
while [ ! -e "{release}" ]; do sleep 0.02; done
echo "person: a note written while the runner restarted" > "$1"
"""


@pytest.mark.parametrize("holder", ["lock-file", "git-commit"])
def test_recovery_leaves_a_live_index_lock_and_foreign_commit_alone(
    tmp_path: Path, holder: str
) -> None:
    root = tmp_path / "store"
    store = Store.init(root)
    session = store.create_session(PROJECT, SESSION)
    session.save_agent_output(1, AGENT, "# Concept\n\nfirst\n")
    agent_rel = f"{session.phase_rel(1)}/{AGENT}.md"
    (root / "notes").mkdir()
    (root / "notes" / "person.md").write_text("# Notes\n")
    git(root, "add", "notes/person.md")
    git(root, "commit", "-q", "-m", "person: notes")
    store.close()

    how = crash_writer(root, random.Random(holder), agent_rel)
    git_dir = root / ".git"
    assert _journals(root), "no journal left by the crashed writer"
    journal_before = {p.name: p.read_bytes() for p in _journals(root)}

    # The person: removes the stale locks the dead writer left (as git's message says), commits
    # their own note (the branch moves: a foreign commit), stages an edit of the file the
    # writer was saving, then a git command holds index.lock while it works.
    stale = []
    for lock in (git_dir / "index.lock", git_dir / "refs" / "heads" / "main.lock"):
        if lock.exists():
            lock.unlink()
            stale.append(lock.name)
    with (root / "notes" / "person.md").open("a") as fh:
        fh.write("after the crash\n")
    git(root, "add", "notes/person.md")
    git(root, "commit", "-q", "-m", "person: after the crash")
    foreign = git(root, "rev-parse", "HEAD").strip()
    with (root / agent_rel).open("a") as fh:
        fh.write("\nA reviewer's note, staged.\n")
    git(root, "add", agent_rel)
    staged = git(root, "ls-files", "-s", "--", agent_rel)
    edited = (root / agent_rel).read_bytes()
    reflog = git(root, "reflog", "show", "--format=%H %gs", "HEAD")

    person_git: subprocess.Popen[bytes] | None = None
    lock = git_dir / "index.lock"
    release = tmp_path / "release"
    fd = -1
    if holder == "lock-file":
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, (git_dir / "index").read_bytes())
    else:
        with (root / "notes" / "person.md").open("a") as fh:
            fh.write("while the runner restarts\n")
        editor = tmp_path / "editor.sh"
        started = tmp_path / "editor-started"
        editor.write_text(EDITOR.format(release=release, started=started))
        editor.chmod(0o755)
        person_git = subprocess.Popen(
            ["git", "-c", f"core.editor={editor}", "commit", "notes/person.md"],
            cwd=str(root),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10  # the editor runs once git has written index.lock
        while not started.exists() and time.monotonic() < deadline and person_git.poll() is None:
            time.sleep(0.01)
        assert lock.exists(), "git commit did not take index.lock (or did not start the editor)"
    lock_identity = (lock.stat().st_ino, lock.read_bytes())

    found: list[str] = []
    opened_with: str = "opened"
    try:
        try:
            Store.open(root, lock_timeout=3).close()  # recovers the crashed writer on open
        except mdsessions.MdsessionsError as exc:
            opened_with = f"{type(exc).__name__}: {exc}"
        if not lock.exists():
            found.append("recovery removed the index.lock another process holds")
        elif (lock.stat().st_ino, lock.read_bytes()) != lock_identity:
            found.append("recovery replaced the index.lock another process holds")
        if git(root, "rev-parse", "HEAD").strip() != foreign:
            found.append("the branch moved away from the person's commit")
        if git(root, "reflog", "show", "--format=%H %gs", "HEAD") != reflog:
            found.append("recovery moved HEAD (its reflog grew)")
        if git(root, "ls-files", "-s", "--", agent_rel) != staged:
            found.append(
                f"recovery rolled the person's commit 'forward' over {agent_rel}: the index "
                f"entry of the person's staged edit changed ({staged.strip()} -> "
                f"{git(root, 'ls-files', '-s', '--', agent_rel).strip()})"
            )
        if (root / agent_rel).read_bytes() != edited:
            found.append(f"recovery rewrote {agent_rel}, which holds the person's edit")
    finally:
        if fd != -1:
            os.close(fd)
            lock.unlink(missing_ok=True)  # the holder gives up, as git does on an error
        if person_git is not None:
            release.touch()
            out, err = person_git.communicate(timeout=30)
            if person_git.returncode != 0:
                found.append(
                    f"the person's git commit failed once the editor closed "
                    f"(rc {person_git.returncode}): {err.decode(errors='replace').strip()}"
                )
            elif git(root, "rev-parse", "HEAD^").strip() != foreign:
                found.append("the person's git commit did not land on their previous commit")
    fsck = subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling", "--no-progress"],
        cwd=str(root),
        capture_output=True,
        text=True,
    )
    if fsck.returncode != 0:
        found.append(f"git fsck: {fsck.stdout}{fsck.stderr}")
    assert not found, (
        f"library {Path(mdsessions.__file__).parent}; "
        f"crashed writer's journal ({how}; {sorted(journal_before)}; stale locks the person "
        f"removed: {stale or 'none'}); Store.open: {opened_with}\n- " + "\n- ".join(found)
    )
