"""Retention: archive, unarchive, delete, cleanup, and bringing sessions back.

Real repositories in ``tmp_path``; git is never mocked. Issue 14 item 6: each write is one
commit with trailers; an archive is a move git sees as a rename; a deleted session comes
back from history and from its bundle identical (the same tree id); bad input changes
nothing; ``verify`` stays clean.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import PERSON, assert_clean, commit_count, git, head, snapshot, subject, trailers
from test_exchange import fill

from mdsessions import (
    SessionExistsError,
    SessionLockedError,
    SessionNotFoundError,
    Store,
    StoreError,
    UnrecordedEditError,
    history,
)
from mdsessions.cli import cli
from mdsessions.errors import InvalidArgumentError


@pytest.fixture
def filled(store: Store) -> Store:
    fill(store)
    return store


def tree(store: Store, rel: str, rev: str = "HEAD") -> str:
    return git(store.root, "rev-parse", f"{rev}:{rel}").strip()


def assert_verified(store: Store) -> None:
    report = history.verify(store)
    assert report.problems == (), report.problems
    assert_clean(store.root)


def listed(store: Store) -> list[str]:
    return [f"{s.project_id}/{s.session_id}" for s in store.list_sessions()]


# --------------------------------------------------------------------- archive/unarchive


def test_archive_is_one_commit_git_sees_as_a_rename(filled: Store) -> None:
    s1 = filled.find_session("p1/s1")
    before_tree = tree(filled, s1.rel)
    count = commit_count(filled.root)
    result = history.archive(filled, [s1], author=PERSON)
    assert result.commit == head(filled.root) and commit_count(filled.root) == count + 1
    assert subject(filled.root) == "archive(p1/s1): archived"
    found = trailers(filled.root)
    assert (found["Mdsessions-Kind"], found["Mdsessions-Project"]) == ("archive", "p1")
    assert found["Mdsessions-Session"] == "s1"
    moves = git(filled.root, "diff", "--find-renames", "--name-status", "HEAD~1", "HEAD")
    assert all(line.startswith("R100\t") for line in moves.splitlines()) and moves
    archived_rel = "projects/p1/archive/s1"
    assert tree(filled, archived_rel) == before_tree
    # Out of list, inbox and the index; list --archived shows it.
    assert "p1/s1" not in listed(filled)
    assert all(item.session_id != "s1" for item in filled.inbox())
    assert [s.session_id for s in history.archived_sessions(filled)] == ["s1"]
    assert_verified(filled)

    back = history.unarchive(filled, ["s1"])  # a bare id (or prefix) names an archived one
    assert back.sessions == ("p1/s1",) and trailers(filled.root)["Mdsessions-Kind"] == "unarchive"
    assert tree(filled, s1.rel) == before_tree and "p1/s1" in listed(filled)
    assert history.archived_sessions(filled) == []
    assert_verified(filled)


def test_inbox_leaves_archived_sessions_out_unless_asked(filled: Store) -> None:
    waiting = [(i.session_id, i.phase) for i in filled.inbox()]
    assert ("s1", 3) in waiting
    history.archive(filled, [filled.find_session("p1/s1")])
    assert all(i.session_id != "s1" for i in filled.inbox())
    (item,) = history.archived_inbox(filled)
    assert (item.project_id, item.session_id, item.phase) == ("p1", "s1", 3)
    assert item.feedback == "projects/p1/archive/s1/phase_3_niche_selection/user_feedback.md"
    assert item.outputs == ("projects/p1/archive/s1/phase_3_niche_selection/niche_selection.md",)
    (shown,) = json.loads(run_cli(filled, "inbox", "--archived", "--json"))
    assert shown["feedback_path"] == item.feedback


def test_archive_several_is_one_commit(filled: Store) -> None:
    sessions = [filled.find_session("p1/s2"), filled.find_session("p2/s3")]
    count = commit_count(filled.root)
    history.archive(filled, sessions)
    assert commit_count(filled.root) == count + 1
    assert subject(filled.root) == "archive: 2 sessions archived"
    assert listed(filled) == ["p1/s1"]
    history.unarchive(filled, ["p1/s2", "p2/s3"])
    assert commit_count(filled.root) == count + 2
    assert_verified(filled)


def test_archive_refuses_an_unrecorded_edit_and_changes_nothing(filled: Store) -> None:
    s2 = filled.find_session("p1/s2")
    manifest = s2.path / "session_manifest.md"
    manifest.write_text(manifest.read_text(encoding="utf-8") + "\nmine\n", encoding="utf-8")
    before = snapshot(filled.root)
    with pytest.raises(UnrecordedEditError):
        history.archive(filled, [s2])
    assert snapshot(filled.root) == before


def test_unarchive_names_what_it_cannot_find(filled: Store) -> None:
    before = snapshot(filled.root)
    with pytest.raises(SessionNotFoundError, match="no archived session 'p1/nope'"):
        history.unarchive(filled, ["p1/nope"])
    history.archive(filled, [filled.find_session("p1/s1"), filled.find_session("p1/s2")])
    before = snapshot(filled.root)
    with pytest.raises(SessionNotFoundError, match=r"several archived sessions match 's'"):
        history.unarchive(filled, ["s"])
    assert snapshot(filled.root) == before


def test_archive_refuses_when_the_archive_holds_the_id(filled: Store) -> None:
    history.archive(filled, [filled.find_session("p1/s2")])
    filled.create_session("p1", "s2")
    before = snapshot(filled.root)
    with pytest.raises(SessionExistsError, match="projects/p1/archive/s2 exists already"):
        history.archive(filled, [filled.find_session("p1/s2")])
    with pytest.raises(SessionExistsError):
        history.unarchive(filled, ["p1/s2"])
    assert snapshot(filled.root) == before


# ---------------------------------------------------------------- delete and bring back


def test_a_deleted_session_comes_back_from_history_identical(filled: Store) -> None:
    s1 = filled.find_session("p1/s1")
    before_tree = tree(filled, s1.rel)
    count = commit_count(filled.root)
    deleted = history.delete(filled, [s1], author=PERSON)
    assert commit_count(filled.root) == count + 1 and deleted.bundle is None
    assert trailers(filled.root)["Mdsessions-Kind"] == "delete"
    assert not s1.path.exists() and "p1/s1" not in listed(filled)
    assert_verified(filled)

    back = history.bring_back(filled, "p1/s1")
    before_delete = git(filled.root, "rev-parse", f"{deleted.commit}^").strip()
    assert (back.source, back.target) == ("history", before_delete)
    assert commit_count(filled.root) == count + 2
    found = trailers(filled.root)
    assert (found["Mdsessions-Kind"], found["Mdsessions-Restored-From"]) == ("restore", back.target)
    assert tree(filled, s1.rel) == before_tree
    assert back.status == "awaiting_review" and len(back.written) == len(
        git(filled.root, "ls-files", s1.rel).split()
    )
    assert_verified(filled)


def test_a_deleted_session_comes_back_from_its_bundle_identical(
    filled: Store, tmp_path: Path
) -> None:
    s1 = filled.find_session("p1/s1")
    before_tree = tree(filled, s1.rel)
    bundle = tmp_path / "bundles" / "s1.bundle"
    deleted = history.delete(filled, [s1], bundle=bundle)
    assert deleted.bundle is not None and deleted.bundle.path == bundle.resolve()
    assert f"History bundled first in s1.bundle ({deleted.bundle.commit})." in git(
        filled.root, "log", "-1", "--format=%b"
    )
    # The bundle is all there is of it: drop the history too (a fresh store).
    fresh = Store.init(tmp_path / "fresh")
    try:
        back = history.bring_back(fresh, "p1/s1", bundle=bundle)
        assert (back.source, back.target) == ("bundle", deleted.bundle.commit)
        assert tree(fresh, s1.rel) == before_tree
        assert_verified(fresh)
    finally:
        fresh.close()
    history.bring_back(filled, "p1/s1", bundle=bundle)
    assert tree(filled, s1.rel) == before_tree
    assert_verified(filled)


def test_an_archived_session_comes_back_with_restore(filled: Store) -> None:
    s2 = filled.find_session("p1/s2")
    before_tree = tree(filled, s2.rel)
    history.archive(filled, [s2])
    back = history.bring_back(filled, "p1/s2")
    assert back.source == "archive" and tree(filled, s2.rel) == before_tree
    assert trailers(filled.root)["Mdsessions-Kind"] == "unarchive"


def test_bring_back_refuses_what_it_cannot(filled: Store, tmp_path: Path) -> None:
    before = snapshot(filled.root)
    with pytest.raises(SessionExistsError, match="is in the store"):
        history.bring_back(filled, "p1/s1")
    with pytest.raises(SessionExistsError, match="session p1/s1 is in the store"):
        history.bring_back(filled, "s1")
    with pytest.raises(SessionNotFoundError, match="no session p1/never"):
        history.bring_back(filled, "p1/never")
    with pytest.raises(SessionNotFoundError, match="PROJECT/SESSION"):
        history.bring_back(filled, "never")
    bundle = tmp_path / "s2.bundle"
    history.export_bundle(filled, [filled.find_session("p1/s2")], bundle)
    assert snapshot(filled.root) == before
    history.delete(filled, [filled.find_session("p2/s3")])
    before = snapshot(filled.root)
    with pytest.raises(SessionNotFoundError, match="is not in the bundle"):
        history.bring_back(filled, "p2/s3", bundle=bundle)
    history.archive(filled, [filled.find_session("p1/s2")])
    with pytest.raises(SessionExistsError, match=r"p1/s2 is archived .*unarchive p1/s2"):
        history.bring_back(filled, "p1/s2", bundle=bundle)
    before = snapshot(filled.root)
    junk = tmp_path / "junk.bundle"
    junk.write_text("not a bundle", encoding="utf-8")
    with pytest.raises(StoreError, match="git bundle verify failed"):
        history.bring_back(filled, "p2/s3", bundle=junk)
    assert snapshot(filled.root) == before


def test_a_failed_bundle_deletes_nothing(filled: Store, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    before = snapshot(filled.root)
    with pytest.raises((OSError, StoreError)):
        history.delete(filled, [filled.find_session("p1/s1")], bundle=blocker / "x.bundle")
    assert snapshot(filled.root) == before


# ---------------------------------------------------------------------------- cleanup


LATER = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(days=40)


def test_cleanup_dry_run_chooses_and_changes_nothing(filled: Store) -> None:
    before = snapshot(filled.root)
    result = history.cleanup(filled, older_than="30d", action="delete", dry_run=True, now=LATER)
    assert result.dry_run and result.sessions == ("p1/s1", "p1/s2", "p2/s3")
    assert result.commit is None and snapshot(filled.root) == before
    assert history.cleanup(filled, older_than="30d", action="archive").sessions == ()
    assert snapshot(filled.root) == before


def test_cleanup_filters_and_keep_last(filled: Store) -> None:
    def chosen(**options: object) -> tuple[str, ...]:
        return history.cleanup(
            filled,
            older_than="30d",
            action="archive",
            dry_run=True,
            now=LATER,
            **options,  # type: ignore[arg-type]
        ).sessions

    assert chosen(status=["created"]) == ("p1/s2", "p2/s3")
    assert chosen(project="p1") == ("p1/s1", "p1/s2")
    kept = history.cleanup(
        filled, older_than="30d", action="archive", dry_run=True, now=LATER, keep_last=1
    )
    newest_p1 = max(filled.sessions("p1"), key=lambda m: (m.updated, m.session_id))
    assert f"p1/{newest_p1.session_id}" not in kept.sessions and "p2/s3" not in kept.sessions
    assert kept.kept == 2 and len(kept.sessions) == 1


def test_cleanup_archive_is_one_commit(filled: Store) -> None:
    count = commit_count(filled.root)
    result = history.cleanup(
        filled, older_than="2w", action="archive", status=["created"], now=LATER
    )
    assert result.commit == head(filled.root) and commit_count(filled.root) == count + 1
    assert listed(filled) == ["p1/s1"]
    assert_verified(filled)


def test_cleanup_delete_with_a_verified_bundle_first(filled: Store, tmp_path: Path) -> None:
    trees = {ref: tree(filled, filled.find_session(ref).rel) for ref in ("p1/s2", "p2/s3")}
    bundle = tmp_path / "old.bundle"
    count = commit_count(filled.root)
    result = history.cleanup(
        filled, older_than="30d", action="delete", status=["created"], bundle=bundle, now=LATER
    )
    assert commit_count(filled.root) == count + 1
    assert trailers(filled.root)["Mdsessions-Kind"] == "delete"
    assert result.bundle is not None and result.bundle.sessions == ("p1/s2", "p2/s3")
    lone = tmp_path / "lone"
    git(tmp_path, "init", "-q", str(lone))
    git(lone, "bundle", "verify", "-q", str(bundle))
    assert listed(filled) == ["p1/s1"]
    assert_verified(filled)
    for ref, before in trees.items():
        history.bring_back(filled, ref, bundle=bundle)
        assert tree(filled, filled.find_session(ref).rel) == before
    assert_verified(filled)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"older_than": "soon"}, "invalid age 'soon'"),
        ({"older_than": "30d", "action": "shred"}, "expected archive or delete"),
        ({"older_than": "30d", "keep_last": -1}, "keep_last must be 0 or more"),
        ({"older_than": "30d", "bundle": "x.bundle"}, "a bundle is written before a delete"),
    ],
)
def test_cleanup_bad_input_changes_nothing(
    filled: Store, options: dict[str, object], message: str
) -> None:
    before = snapshot(filled.root)
    arguments: dict[str, object] = {"action": "archive", "now": LATER, **options}
    with pytest.raises(InvalidArgumentError, match=message):
        history.cleanup(filled, **arguments)  # type: ignore[arg-type]
    assert snapshot(filled.root) == before


def test_parse_age() -> None:
    assert history.parse_age("30d") == 30 * 86400
    assert history.parse_age("12h") == 12 * 3600
    assert history.parse_age("2w") == 14 * 86400
    assert history.parse_age("90m") == 5400
    assert history.parse_age(5) == 5.0


# ------------------------------------------------------------------------------- CLI


def run_cli(store: Store, *argv: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--store", str(store.root), *argv])
    assert result.exit_code == code, (argv, result.stdout, result.stderr)
    return result.stdout if code == 0 else result.stderr


def test_cli_archive_list_unarchive(filled: Store) -> None:
    assert run_cli(filled, "archive", "p1/s2").startswith("archived p1/s2 in ")
    assert "s2" not in run_cli(filled, "list")
    (entry,) = json.loads(run_cli(filled, "list", "--archived", "--json"))
    assert (entry["project"], entry["session"]) == ("p1", "s2")
    assert entry["path"] == "projects/p1/archive/s2/session_manifest.md"
    assert run_cli(filled, "unarchive", "p1/s2").startswith("unarchived p1/s2")
    assert run_cli(filled, "list", "--archived", "--json").strip() == "[]"
    assert_verified(filled)


def test_cli_delete_and_restore_without_commit(filled: Store, tmp_path: Path) -> None:
    s1 = filled.find_session("p1/s1")
    before_tree = tree(filled, s1.rel)
    bundle = tmp_path / "s1.bundle"
    out = run_cli(filled, "delete", "p1/s1", "--bundle", str(bundle))
    assert out.startswith("deleted p1/s1 in ") and str(bundle) in out
    out = run_cli(filled, "restore", "p1/s1")
    assert out.startswith("p1/s1: brought back from history")
    assert tree(filled, s1.rel) == before_tree
    run_cli(filled, "delete", "p1/s1")
    restored = json.loads(
        run_cli(filled, "restore", "p1/s1", "--from-bundle", str(bundle), "--json")
    )
    assert restored["source"] == "bundle" and restored["commit"] == head(filled.root)
    assert tree(filled, s1.rel) == before_tree
    err = run_cli(filled, "restore", "p1/s1", "HEAD", "--from-bundle", str(bundle), code=2)
    assert "leave out COMMIT" in err
    assert_verified(filled)


def test_cli_cleanup(filled: Store) -> None:
    err = run_cli(filled, "cleanup", "--older-than", "30d", code=2)
    assert "choose --archive or --delete" in err
    assert (
        "nothing to archive"
        in CliRunner()
        .invoke(cli, ["--store", str(filled.root), "cleanup", "--older-than", "30d", "--archive"])
        .stderr
    )
    time.sleep(1.1)  # manifest times are whole seconds: let "0s ago" pass for all three
    out = run_cli(filled, "cleanup", "--older-than", "0s", "--archive", "--dry-run")
    assert out.splitlines() == [
        "would archive  p1/s1",
        "would archive  p1/s2",
        "would archive  p2/s3",
    ]
    err = run_cli(filled, "cleanup", "--older-than", "x", "--delete", code=1)
    assert err.startswith("Error: invalid age 'x'")


def test_cleanup_deletes_from_the_archive_and_brings_back(filled: Store, tmp_path: Path) -> None:
    s2 = filled.find_session("p1/s2")
    before_tree = tree(filled, s2.rel)
    history.archive(filled, [s2])
    with pytest.raises(InvalidArgumentError, match="archived sessions can only be deleted"):
        history.cleanup(filled, older_than="1y", action="archive", archived=True)
    dry = history.cleanup(
        filled, older_than="30d", action="delete", archived=True, dry_run=True, now=LATER
    )
    assert dry.sessions == ("p1/s2",)  # only the archived one
    bundle = tmp_path / "attic.bundle"
    count = commit_count(filled.root)
    done = history.cleanup(
        filled, older_than="30d", action="delete", archived=True, bundle=bundle, now=LATER
    )
    assert done.commit == head(filled.root) and commit_count(filled.root) == count + 1
    found = trailers(filled.root)
    assert (found["Mdsessions-Kind"], found["Mdsessions-Session"]) == ("delete", "s2")
    assert history.archived_sessions(filled) == [] and "p1/s2" not in listed(filled)
    assert_verified(filled)
    # From history: the commit before the delete (not the archive move before it).
    back = history.bring_back(filled, "p1/s2")
    assert back.target == git(filled.root, "rev-parse", f"{done.commit}^").strip()
    assert tree(filled, s2.rel) == before_tree
    history.delete(filled, [filled.find_session("p1/s2")])
    history.bring_back(filled, "p1/s2", bundle=bundle)  # the bundle holds archive/s2
    assert tree(filled, s2.rel) == before_tree
    assert_verified(filled)
    assert history.parse_age("1y") == 365 * 86400


_HOLD_RUN_LOCK = """
import sys, time
from mdsessions import Store
store = Store.open(sys.argv[1])
with store.find_session(sys.argv[2]).run_lock():
    print("running", flush=True)
    time.sleep(60)
"""


def test_a_session_a_runner_is_running_is_not_moved_or_deleted(filled: Store) -> None:
    """Archive and delete take the session's run lock: a runner mid-phase keeps its session."""
    import subprocess
    import sys

    runner = subprocess.Popen(
        [sys.executable, "-c", _HOLD_RUN_LOCK, str(filled.root), "p1/s1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert runner.stdout is not None and runner.stdout.readline().strip() == "running"
        before = snapshot(filled.root)
        s1 = filled.find_session("p1/s1")
        later = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(days=1)
        assert (
            "p1/s1"
            in history.cleanup(
                filled, older_than="1h", action="archive", now=later, dry_run=True
            ).sessions
        )
        for attempt in (
            lambda: history.archive(filled, [s1], author=PERSON),
            lambda: history.delete(filled, [s1], author=PERSON),
            lambda: history.cleanup(filled, older_than="1h", action="archive", now=later),
        ):
            with pytest.raises(SessionLockedError, match="p1/s1 is being run by pid"):
                attempt()
            assert snapshot(filled.root) == before
    finally:
        runner.kill()
        runner.wait()
    history.archive(filled, [filled.find_session("p1/s1")], author=PERSON)
    assert "p1/s1" not in listed(filled)
    assert_verified(filled)
