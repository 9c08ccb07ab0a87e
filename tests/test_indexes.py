"""The rebuildable caches under .mdsessions/cache/ agree with the files and with git."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import git

from mdsessions import SessionStatus, Store, history


def _age(path: Path, seconds: float) -> None:
    """Make a file look older, as if it had been written ``seconds`` ago."""
    st = path.stat()
    then = st.st_mtime_ns - int(seconds * 1e9)
    os.utime(path, ns=(then, then))


def test_listing_follows_new_changed_and_removed_sessions(store: Store) -> None:
    a = store.create_session("p", "a")
    store.create_session("p", "b")
    assert [s.session_id for s in store.list_sessions()] == ["a", "b"]
    a.save_agent_output(1, "concept_expansion", "x")
    a.save_checkpoint(1, status="completed")
    listed = {s.session_id: s for s in store.list_sessions()}
    assert listed["a"].status is SessionStatus.AWAITING_REVIEW
    assert [w[0] for w in listed["a"].waiting] == [1]
    assert [(i.session_id, i.phase) for i in store.inbox()] == [("a", 1)]
    git(store.root, "rm", "-rq", "projects/p/sessions/b")
    git(store.root, "commit", "-qm", "drop b")
    assert [s.session_id for s in store.list_sessions()] == ["a"]
    assert (store.root / ".mdsessions" / "cache" / "sessions.sqlite3").is_file()
    assert git(store.root, "status", "--porcelain") == ""


def test_a_same_size_edit_is_seen_even_with_an_unchanged_timestamp(store: Store) -> None:
    session = store.create_session("p", "s")
    path = session.path / "session_manifest.md"
    _age(path, 10)  # old enough that the index trusts its timestamp
    assert store.list_sessions()[0].mode == "mvp"
    st = path.stat()
    path.write_text(path.read_text().replace("mode: mvp", "mode: xyz"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    assert store.list_sessions()[0].mode == "xyz"  # the ctime/inode changed: re-read


def test_listing_of_a_store_with_a_damaged_cache_rebuilds_it(store: Store) -> None:
    store.create_session("p", "s")
    store.list_sessions()
    cache = store.root / ".mdsessions" / "cache" / "sessions.sqlite3"
    cache.write_bytes(b"not a database" * 100)
    fresh = Store.open(store.root)
    assert [s.session_id for s in fresh.list_sessions()] == ["s"]


def test_versions_follow_new_commits_and_a_reset_branch(store: Store) -> None:
    session = store.create_session("p", "s")
    for i in range(3):
        session.save_agent_output(1, "concept_expansion", f"v{i}")
    shas = [v.commit for v in history.versions(session, limit=None).versions]
    assert shas == git(store.root, "log", "--format=%H", "--", session.rel).split()
    git(store.root, "reset", "-q", "--hard", "HEAD~2")
    store.close()
    reopened = Store.open(store.root)
    again = [v.commit for v in history.versions(reopened.session("p", "s"), limit=None).versions]
    assert again == git(store.root, "log", "--format=%H", "--", session.rel).split()
    assert len(again) == len(shas) - 2


def test_versions_work_in_a_store_the_cache_cannot_be_written_in(store: Store) -> None:
    session = store.create_session("p", "s")
    session.save_agent_output(1, "concept_expansion", "x")
    cache = store.root / ".mdsessions" / "cache"
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("a file where the cache folder should be")
    found = history.versions(session, limit=None).versions
    assert [v.commit for v in found] == git(
        store.root, "log", "--format=%H", "--", session.rel
    ).split()
    assert [s.session_id for s in store.list_sessions()] == ["s"]
