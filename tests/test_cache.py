"""The rebuildable caches under .mdsessions/cache/ agree with the files and with git."""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import types
from pathlib import Path

import pytest
from helpers import git

from mdsessions import SessionStatus, SessionSummary, Store, history
from mdsessions.cache import sessions as _sessionindex
from mdsessions.cache.sessions import summarize
from mdsessions.store import store as store_module


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


# ------------------------------------------------ the session index: listing and inbox at scale
#
# The index (mdsessions/cache/sessions.py) trusts a file's identity (mtime, ctime, inode, size)
# only when the file was last changed RACY_NS (2 s) before the check; until then it compares
# bytes. Files written by a test are always that fresh, so the tests that exercise the trusted
# path (no read at all) set ``racy_ns = 0`` and, before changing a file, wait until the file
# system clock has moved past the file's last change (``_tick``), which is what the racy rule
# otherwise guarantees. No test asserts a duration.

CACHE = Path(".mdsessions") / "cache"
MANIFEST = "session_manifest.md"


def _tick(path: Path, probe: Path) -> None:
    """Wait until a file written now gets a later ctime than ``path`` has (one clock tick)."""
    before = path.stat().st_ctime_ns
    while True:
        probe.write_bytes(b"tick")
        if probe.stat().st_ctime_ns > before:
            return


def _trusting(store: Store) -> Store:
    """The store, with its index trusting identities at once (see the note above)."""
    store.session_index.racy_ns = 0
    return store


def _reference(store: Store, project_id: str | None = None) -> list[tuple[object, ...]]:
    """What a listing must show, from parsing every manifest (the index is not used)."""
    return [
        _fields_of(summarize(m, store.rel(m.project_id, "sessions", m.session_id, MANIFEST)))
        for m in store.sessions(project_id)
    ]


def _fields_of(summary: SessionSummary) -> tuple[object, ...]:
    """Every public field (the dataclass's own ``==`` leaves out nothing public either)."""
    public = [f.name for f in dataclasses.fields(summary) if not f.name.startswith("_")]
    return tuple(getattr(summary, name) for name in public)


def _listed(store: Store, project_id: str | None = None) -> list[tuple[object, ...]]:
    return [_fields_of(s) for s in store.list_sessions(project_id)]


def _awaiting(store: Store, project: str, sid: str) -> None:
    session = store.create_session(project, sid)
    session.save_agent_output(1, "concept_expansion", f"# {sid}")
    session.save_checkpoint(1, status="completed")


def _inbox(store: Store) -> list[tuple[object, ...]]:
    return [tuple(i.model_dump().values()) for i in store.inbox()]


def _manifest(store: Store, project: str, sid: str) -> Path:
    return store.root / "projects" / project / "sessions" / sid / "session_manifest.md"


def test_listing_matches_a_full_parse_in_order_and_by_project(store: Store) -> None:
    for project, sid in [("b", "s2"), ("a", "s9"), ("b", "s1"), ("a", "s0"), ("c", "x")]:
        store.create_session(project, sid)
    _awaiting(store, "a", "w")
    assert _listed(store) == _reference(store)
    for project in ("a", "b", "c", "missing"):
        assert _listed(store, project) == _reference(store, project)
    fresh = Store.open(store.root)  # a new process: from the snapshot file
    assert _listed(fresh) == _reference(store)
    assert _listed(fresh, "b") == _reference(store, "b")
    assert [s.path for s in fresh.list_sessions("a")] == [
        f"projects/a/sessions/{row[1]}/session_manifest.md" for row in _reference(store, "a")
    ]


def test_a_new_process_with_a_warm_cache_parses_nothing(store: Store) -> None:
    store.session_index.racy_ns = 10**18  # see below; the same in both, so no trust flips
    for k in range(5):
        store.create_session("p", f"s{k}")
    _awaiting(store, "p", "w")
    first = store.list_sessions()
    store.inbox()
    assert store.session_index._fm.pending == {}  # written with the snapshot
    snapshot = (store.root / CACHE / "sessions.idx").stat()
    fresh = Store.open(store.root)
    # Never trusting an identity here: every manifest is read and compared by digest, and
    # nothing changes the snapshot (a parse would, and so would an identity turning trusted).
    fresh.session_index.racy_ns = 10**18
    again = fresh.list_sessions()
    assert again == first
    assert fresh.inbox() == store.inbox()
    after = (store.root / CACHE / "sessions.idx").stat()
    assert (after.st_ino, after.st_mtime_ns) == (snapshot.st_ino, snapshot.st_mtime_ns)
    assert fresh.session_index._fm.pending == {}  # nothing was parsed
    assert [s.frontmatter() for s in again] == [s.frontmatter() for s in first]


def test_summaries_are_exactly_what_the_dataclass_makes(store: Store) -> None:
    _awaiting(store, "p", "w")
    store.list_sessions()
    fast = Store.open(store.root).list_sessions()[0]  # built by _build from the snapshot
    made = SessionSummary(**{f.name: getattr(fast, f.name) for f in dataclasses.fields(fast)})
    assert vars(fast) == vars(made)
    assert fast == made and hash(fast) == hash(made) and repr(fast) == repr(made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.mode = "x"  # type: ignore[misc]
    manifest = store.session("p", "w").manifest()
    assert fast.frontmatter() == manifest.frontmatter()
    assert fast.waiting == ((1, "Concept Expansion", "phase_1_concept", fast.updated),)
    # Copies and pickles carry the frontmatter, not the index.
    for other in (copy.copy(fast), copy.deepcopy(fast), pickle.loads(pickle.dumps(fast))):
        assert other == fast and other.frontmatter() == manifest.frontmatter()
    assert pickle.loads(pickle.dumps(fast))._source is None
    assert dataclasses.asdict(fast)["session_id"] == "w"


def test_the_index_needs_only_where_the_sessions_are(store: Store, tmp_path: Path) -> None:
    """The cache takes a root and a projects folder (``StoreLayout``), not a ``Store``."""
    store.create_session("p", "a")
    layout = types.SimpleNamespace(root=store.root, projects_dir=store.projects_dir)
    index = _sessionindex.SessionIndex(layout, tmp_path / "cache" / "sessions.sqlite3")
    assert [s.ref for s in index.summaries()] == ["p/a"]
    assert index.summaries() == store.list_sessions()


def test_index_constants_match_the_store() -> None:
    assert _sessionindex.MANIFEST == store_module.MANIFEST
    assert _sessionindex.FEEDBACK == store_module.FEEDBACK
    assert _sessionindex._NOT_OUTPUTS == (store_module.CHECKPOINT, store_module.FEEDBACK)


@pytest.mark.parametrize("new_process", [False, True])
def test_an_in_place_edit_with_same_size_and_restored_mtime_is_seen(
    store: Store, tmp_path: Path, new_process: bool
) -> None:
    _trusting(store).create_session("p", "s")
    store.create_session("p", "t")
    path = _manifest(store, "p", "s")
    assert [s.mode for s in store.list_sessions()] == ["mvp", "mvp"]
    index = store.session_index
    assert index._projects["p"].mtime[0] is not None  # trusted: the next call only stats
    _tick(path, tmp_path / "probe")
    st = path.stat()
    with path.open("r+b") as f:  # in place: same inode, same size
        data = f.read()
        f.seek(0)
        f.write(data.replace(b"mode: mvp", b"mode: xyz"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the mtime put back
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    )
    assert after.st_ctime_ns != st.st_ctime_ns  # what gives it away (programs cannot set it)
    lister = _trusting(Store.open(store.root)) if new_process else store
    assert [s.mode for s in lister.list_sessions()] == ["xyz", "mvp"]
    assert lister.list_sessions()[0].frontmatter()["mode"] == "xyz"


def test_an_edit_right_after_a_listing_is_seen_by_the_racy_rule(store: Store) -> None:
    # A manifest changed less than the racy window (2 s by default; 60 s here, so that a slow
    # machine cannot age the file past it) before the check is compared by its bytes on every
    # call, so even a change that kept every part of its identity would be seen.
    store.session_index.racy_ns = 60 * 10**9
    store.create_session("p", "s")
    path = _manifest(store, "p", "s")
    assert store.list_sessions()[0].mode == "mvp"
    assert store.session_index._projects["p"].mtime[0] is None  # not trusted yet
    path.write_bytes(path.read_bytes().replace(b"mode: mvp", b"mode: xyz"))
    assert store.list_sessions()[0].mode == "xyz"
    _age(path, 10)  # an old mtime does not make it trusted: its ctime is new
    assert store.list_sessions()[0].mode == "xyz"
    assert store.session_index._projects["p"].mtime[0] is None


def test_an_editor_save_by_rename_is_seen(store: Store, tmp_path: Path) -> None:
    _trusting(store).create_session("p", "s")
    path = _manifest(store, "p", "s")
    assert store.list_sessions()[0].mode == "mvp"
    _tick(path, tmp_path / "probe")
    st = path.stat()
    temp = path.with_name(".session_manifest.md.swp")
    temp.write_bytes(path.read_bytes().replace(b"mode: mvp", b"mode: xyz"))
    os.utime(temp, ns=(st.st_atime_ns, st.st_mtime_ns))
    temp.replace(path)
    assert store.list_sessions()[0].mode == "xyz"


def test_git_checkout_and_reset_of_other_commits_are_seen(store: Store, tmp_path: Path) -> None:
    session = _trusting(store).create_session("p", "s")
    old = git(store.root, "rev-parse", "HEAD").strip()
    session.save_agent_output(1, "concept_expansion", "x")
    session.save_checkpoint(1, status="completed")
    store.create_session("p", "later")
    assert sorted((s.session_id, s.status.value) for s in store.list_sessions()) == [
        ("later", "created"),
        ("s", "awaiting_review"),
    ]
    assert [i.session_id for i in store.inbox()] == ["s"]
    _tick(_manifest(store, "p", "s"), tmp_path / "probe")
    git(store.root, "checkout", "-q", old)
    assert [(s.session_id, s.status.value) for s in store.list_sessions()] == [("s", "created")]
    assert store.inbox() == []
    assert _listed(Store.open(store.root)) == _reference(store)
    _tick(_manifest(store, "p", "s"), tmp_path / "probe")
    git(store.root, "checkout", "-q", "main")
    assert sorted(s.session_id for s in store.list_sessions()) == ["later", "s"]
    assert [i.session_id for i in store.inbox()] == ["s"]
    _tick(_manifest(store, "p", "s"), tmp_path / "probe")
    git(store.root, "reset", "-q", "--hard", old)
    assert _listed(store) == _reference(store)
    assert store.inbox() == []


def test_deleted_and_added_sessions_and_projects_are_seen(store: Store, tmp_path: Path) -> None:
    _trusting(store)
    for sid in ("a", "b", "c"):
        store.create_session("p", sid)
    store.create_session("q", "z")
    assert [s.ref for s in store.list_sessions()] == ["p/a", "p/b", "p/c", "q/z"]
    probe = tmp_path / "probe"
    _tick(store.root / "projects" / "p" / "sessions", probe)
    git(store.root, "rm", "-rq", "projects/p/sessions/b")
    git(store.root, "commit", "-qm", "drop b")
    assert [s.ref for s in store.list_sessions()] == ["p/a", "p/c", "q/z"]
    _tick(store.root / "projects" / "q", probe)
    shutil.rmtree(store.root / "projects" / "q")  # a whole project, not through git
    assert [s.ref for s in store.list_sessions()] == ["p/a", "p/c"]
    other = Store.open(store.root)  # another writer (its own index)
    other.create_session("r", "new")
    other.create_session("p", "d")
    assert [s.ref for s in store.list_sessions()] == ["p/a", "p/c", "p/d", "r/new"]
    assert [s.ref for s in store.list_sessions("r")] == ["r/new"]


def test_a_manifest_written_into_an_existing_folder_is_seen(store: Store, tmp_path: Path) -> None:
    _trusting(store).create_session("p", "a")
    folder = store.root / "projects" / "p" / "sessions" / "b"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a session yet")
    assert [s.session_id for s in store.list_sessions()] == ["a"]
    assert store.session_index._projects["p"].listing is not None  # the listing is trusted
    _tick(store.root / "projects" / "p" / "sessions", tmp_path / "probe")
    text = _manifest(store, "p", "a").read_text(encoding="utf-8")
    (folder / "session_manifest.md").write_text(text.replace("session_id: a", "session_id: b"))
    assert [s.session_id for s in store.list_sessions()] == ["a", "b"]


def test_a_session_added_by_another_process_is_seen(store: Store) -> None:
    store.create_session("p", "a")
    assert [s.session_id for s in store.list_sessions()] == ["a"]
    script = (
        "import sys; from mdsessions import Store; s = Store.open(sys.argv[1]); "
        "s.create_session('p', 'b'); s.list_sessions(); "
        "m = s.session('p', 'a').path / 'session_manifest.md'; "
        "m.write_text(m.read_text().replace('mode: mvp', 'mode: xyz'))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", script, str(store.root)], check=True, env=env)
    assert [(s.session_id, s.mode) for s in store.list_sessions()] == [("a", "xyz"), ("b", "mvp")]
    assert _listed(Store.open(store.root)) == _reference(store)


def test_inbox_follows_outputs_written_and_removed_in_a_waiting_phase(
    store: Store, tmp_path: Path
) -> None:
    _awaiting(_trusting(store), "p", "w")
    folder = store.root / "projects" / "p" / "sessions" / "w" / "phase_1_concept"
    rel = "projects/p/sessions/w/phase_1_concept"
    assert store.inbox()[0].outputs == (f"{rel}/concept_expansion.md",)
    _tick(folder, tmp_path / "probe")
    (folder / "another_agent.md").write_text("# more")
    assert store.inbox()[0].outputs == (f"{rel}/another_agent.md", f"{rel}/concept_expansion.md")
    fresh = _trusting(Store.open(store.root))
    assert fresh.inbox() == store.inbox()
    _tick(folder, tmp_path / "probe")
    (folder / "concept_expansion.md").unlink()
    assert store.inbox()[0].outputs == (f"{rel}/another_agent.md",)
    assert fresh.inbox()[0].outputs == (f"{rel}/another_agent.md",)
    store.session("p", "w").save_feedback(1, approved=True, reviewer="R <r@example.com>")
    assert store.inbox() == [] and fresh.inbox() == []


def test_a_broken_manifest_is_skipped_until_it_is_fixed(store: Store) -> None:
    store.create_session("p", "a")
    store.create_session("p", "b")
    path = _manifest(store, "p", "b")
    good = path.read_bytes()
    path.write_bytes(good.replace(b"status: created", b"status: [unclosed"))
    assert [s.session_id for s in store.list_sessions()] == ["a"]
    assert [s.session_id for s in Store.open(store.root).list_sessions()] == ["a"]
    path.write_bytes(b"\xff\xfe not utf-8")
    assert [s.session_id for s in store.list_sessions()] == ["a"]
    path.write_bytes(good)
    assert [s.session_id for s in store.list_sessions()] == ["a", "b"]


@pytest.mark.parametrize(
    "damage",
    ["deleted", "garbage", "truncated", "bad json", "wrong types", "other projects_dir"],
)
def test_a_missing_or_damaged_snapshot_is_rebuilt(store: Store, damage: str) -> None:
    for k in range(3):
        store.create_session("p", f"s{k}")
    _awaiting(store, "q", "w")
    expected, inbox = _listed(store), _inbox(store)
    snap = store.root / CACHE / "sessions.idx"
    data = snap.read_bytes()
    magic = _sessionindex._MAGIC
    if damage == "deleted":
        snap.unlink()
    elif damage == "garbage":
        snap.write_bytes(b"\x00garbage" * 100)
    elif damage == "truncated":
        snap.write_bytes(data[: len(data) - 7])
    elif damage == "bad json":
        snap.write_bytes(magic + b"5\n{[}]}")
    else:
        snapshot, columns = _sessionindex._unpack(data)
        if damage == "wrong types":
            snapshot["projects"][0]["current_phase"][0] = "one"
        else:
            snapshot["projects_dir"] = "elsewhere"
        snap.write_bytes(_sessionindex._pack(snapshot, columns))
    fresh = Store.open(store.root)
    assert _listed(fresh) == expected
    assert _inbox(fresh) == inbox
    assert [s.frontmatter()["session_id"] for s in fresh.list_sessions()] == [
        "s0",
        "s1",
        "s2",
        "w",
    ]
    assert _sessionindex._unpack(snap.read_bytes())[0]["projects_dir"] == "projects"  # rewritten


def test_a_damaged_or_older_frontmatter_file_is_rebuilt(store: Store) -> None:
    store.create_session("p", "s")
    store.list_sessions()
    db = store.root / CACHE / "sessions.sqlite3"
    db.write_bytes(b"not a database" * 100)
    fresh = Store.open(store.root)
    (summary,) = fresh.list_sessions()
    assert summary.frontmatter()["session_id"] == "s"  # falls back to the manifest
    (store.root / CACHE / "sessions.idx").unlink()  # next write re-creates both files
    again = Store.open(store.root)
    again.list_sessions()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == _sessionindex._DB_VERSION
        assert conn.execute("SELECT count(*) FROM frontmatter").fetchone()[0] == 1


def test_a_cache_of_the_older_schema_is_replaced(store: Store) -> None:
    store.create_session("p", "s")
    cache = store.root / CACHE
    cache.mkdir(parents=True, exist_ok=True)
    db = cache / "sessions.sqlite3"
    with sqlite3.connect(db) as conn:  # what the first version of the index wrote
        conn.execute(
            "CREATE TABLE manifests (rel TEXT PRIMARY KEY, ident TEXT NOT NULL, "
            "checked_ns INTEGER NOT NULL, summary TEXT NOT NULL, frontmatter TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO manifests VALUES ('projects/p/sessions/s/session_manifest.md', "
            "'1:2:3:4', 0, '[\"p\", \"s\", \"stale\"]', '{}')"
        )
    conn.close()
    fresh = Store.open(store.root)
    (summary,) = fresh.list_sessions()
    assert summary.workflow == "idea_validation"
    assert summary.frontmatter()["workflow"] == "idea_validation"
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "manifests" not in tables and "frontmatter" in tables


def test_a_store_whose_cache_cannot_be_written_is_listed_from_memory(store: Store) -> None:
    _awaiting(store, "p", "w")
    store.create_session("p", "s")
    cache = store.root / CACHE
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("a file where the cache folder should be")
    fresh = Store.open(store.root)
    assert _listed(fresh) == _reference(store)
    assert [i.session_id for i in fresh.inbox()] == ["w"]
    assert {s.session_id: s for s in fresh.list_sessions()}["w"].frontmatter()["mode"] == "mvp"
    path = _manifest(store, "p", "s")
    path.write_bytes(path.read_bytes().replace(b"mode: mvp", b"mode: xyz"))
    assert {s.session_id: s.mode for s in fresh.list_sessions()} == {"w": "mvp", "s": "xyz"}
    assert _listed(fresh) == _reference(store)
    assert cache.read_text() == "a file where the cache folder should be"


def test_listing_leaves_the_garbage_collector_as_it_was(store: Store) -> None:
    store.create_session("p", "s")
    assert gc.isenabled()
    Store.open(store.root).list_sessions()
    assert gc.isenabled()
    gc.disable()
    try:
        Store.open(store.root).list_sessions()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_frontmatter_of_a_replaced_version_falls_back_to_the_file(store: Store) -> None:
    store.create_session("p", "s")
    (old,) = Store.open(store.root).list_sessions()
    (store.root / CACHE / "sessions.sqlite3").unlink()  # the version's row is gone
    path = _manifest(store, "p", "s")
    path.write_bytes(path.read_bytes().replace(b"mode: mvp", b"mode: xyz"))
    assert old.mode == "mvp"
    assert old.frontmatter()["mode"] == "xyz"  # documented: the manifest as it is now
    assert json.loads(json.dumps(old.frontmatter())) == old.frontmatter()


# ------------------------------------------------------------------ cold: the first listing


def _sample_sessions(store: Store) -> None:
    """Sessions of every listed shape: fresh, awaiting review, in progress after a review,
    forked, with a multi-line idea, and a manifest a person broke."""
    store.create_session("p", "fresh", idea="one line")
    store.create_session("p", "full", mode="full", idea="two\nlines: here\n")
    _awaiting(store, "p", "waiting")
    _awaiting(store, "q", "reviewed")
    reviewed = store.session("q", "reviewed")
    reviewed.save_feedback(1, approved=True)
    history.fork(reviewed, "forked")
    broken = store.create_session("q", "broken")
    path = broken.path / MANIFEST
    path.write_text(path.read_text().replace("mode: mvp", "mode: [mvp"))
    git(store.root, "commit", "-qam", "a person's bad edit")


def test_the_first_listing_after_a_clone_is_the_warm_listing(store: Store, tmp_path: Path) -> None:
    """A clone has no cache: its first listing parses every manifest (fast YAML path, phase
    rows validated once) and must give exactly what a warm cache gives, frontmatter too."""
    _sample_sessions(store)
    warm = store.list_sessions()
    assert _fields_of_all(warm) == _reference(store)  # the store's own: a full parse
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(store.root), str(clone))
    assert not (clone / CACHE).exists()
    with Store.open(clone) as cloned:
        first = cloned.list_sessions()
        assert _fields_of_all(first) == _fields_of_all(warm)
        assert [s.frontmatter() for s in first] == [s.frontmatter() for s in warm]
        assert _inbox(cloned) == _inbox(store)
        assert {s.session_id for s in first} == {"fresh", "full", "waiting", "reviewed", "forked"}
    with Store.open(clone) as again:  # a new process: from the cache files
        second = again.list_sessions()
        assert _fields_of_all(second) == _fields_of_all(warm)
        assert [s.frontmatter() for s in second] == [s.frontmatter() for s in warm]
        for summary, manifest in zip(second, again.sessions(), strict=True):
            assert summary.frontmatter() == manifest.frontmatter()


def _fields_of_all(summaries: list[SessionSummary]) -> list[tuple[object, ...]]:
    return [_fields_of(s) for s in summaries]


def test_reading_a_manifest_for_the_index_agrees_with_load_as(store: Store) -> None:
    """``_read_manifest`` (phase rows and totals validated once each) gives load_as's
    outcome."""
    from mdsessions.documents.frontmatter import load_as
    from mdsessions.errors import DocumentError
    from mdsessions.models.schema import SessionManifest

    _sample_sessions(store)
    texts = [p.read_bytes() for p in sorted(store.root.glob("projects/*/sessions/*/" + MANIFEST))]
    good = texts[0].decode()
    texts += [
        t.encode()
        for t in (
            good.replace("- number: 1", "- number: 1.0"),  # a float where an int is
            good.replace("- number: 1", "- number: true"),  # equal in Python to 1
            good.replace("- number: 1", "- number: 0"),  # invalid (ge=1)
            good.replace("  retry_count: 0", "  retry_count: -1", 1),
            good.replace("  cost: 0.0", "  cost: []", 1),  # unhashable
            good.replace("  slug: concept", "  slug: concept\n  extra: 1"),
            good.replace("phases:\n", "phases: 3\nx:\n"),
            good.replace("totals:\n  tokens: 0", "totals:\n  tokens: 1.5"),
            good.replace("totals:\n  tokens: 0", "totals:\n  tokens: true"),
            good.replace("totals:\n  tokens: 0", "totals:\n  tokens: -1"),
            good.replace("totals:\n  tokens: 0", "totals: []\nx:\n  tokens: 0"),
            good.replace("status: created", "status: nope", 1),
            good.replace("---\n", "", 1),
            good.replace("idea:", "notes: x\nidea:"),  # a body field in the frontmatter
            "---\nschema: mdsessions/checkpoint/v1\n---\n",
        )
    ]
    texts.append(b"\xff\xfe not utf-8")
    assert len(set(texts)) == len(texts)  # every edit changed something
    for _ in range(2):  # the second time from the phase memo
        for data in texts:
            try:
                doc = load_as(SessionManifest, data.decode("utf-8"), path="m.md")
                expected: object = _sessionindex._fields(doc)
            except (DocumentError, UnicodeDecodeError):
                expected = None
            got = _sessionindex._read_manifest(data, "m.md")
            assert (got and got[0]) == expected


def test_a_rebuild_streams_frontmatter_into_one_transaction(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most _BATCH texts are held in memory; the file gets them all, committed at the end
    (a failure on the way rolls back and leaves no write transaction open)."""
    for k in range(7):
        store.create_session("p", f"s{k}")
    monkeypatch.setattr(_sessionindex, "_BATCH", 2)
    held: list[int] = []
    real_add = _sessionindex._Frontmatters.add

    def add(self: _sessionindex._Frontmatters, key: str, text: str) -> None:
        real_add(self, key, text)
        held.append(len(self.pending))

    monkeypatch.setattr(_sessionindex._Frontmatters, "add", add)
    (store.root / CACHE).mkdir(parents=True, exist_ok=True)
    fresh = Store.open(store.root)
    try:
        assert len(fresh.list_sessions()) == 7
        assert held and max(held) < 2
    finally:
        fresh.close()
    with sqlite3.connect(store.root / CACHE / "sessions.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM frontmatter").fetchone()[0] == 7

    shutil.rmtree(store.root / CACHE)
    failing = Store.open(store.root)
    index = failing.session_index
    calls = 0
    real_reread = _sessionindex.SessionIndex._reread

    def reread(self: _sessionindex.SessionIndex, *args: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 6:
            raise OSError("disk gone")
        real_reread(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_sessionindex.SessionIndex, "_reread", reread)
    try:
        with pytest.raises(OSError, match="disk gone"):
            index.summaries()  # (Store.list_sessions would answer from a full parse)
        assert index._fm._batch is None  # rolled back and closed
        with sqlite3.connect(store.root / CACHE / "sessions.sqlite3", timeout=0) as conn:
            conn.execute("BEGIN IMMEDIATE")  # nobody holds the write lock
            assert conn.execute("SELECT count(*) FROM frontmatter").fetchone()[0] == 0
            conn.execute("ROLLBACK")
    finally:
        failing.close()


def test_a_manifest_is_read_whole_whatever_its_stat_said(tmp_path: Path) -> None:
    path = tmp_path / "m.md"
    path.write_bytes(b"x" * 200_000)
    for size in (0, 10, 199_999, 200_000, 300_000):  # grew, same, shrank since the stat
        assert _sessionindex._read_file(str(path), size) == b"x" * 200_000
    with pytest.raises(FileNotFoundError):
        _sessionindex._read_file(str(tmp_path / "gone.md"), 1)
