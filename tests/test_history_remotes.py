"""Tests for push/pull/sync of mdsessions.history through real remotes.

Two transports: a bare repository over ``file://`` and the same bare repository served by
``git daemon`` on 127.0.0.1 (``git://``). No git command is mocked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import PERSON, assert_clean, git, head, snapshot

from mdsessions import (
    AgentContext,
    ConflictError,
    Runner,
    Session,
    SessionStatus,
    Store,
    UnrecordedEditError,
    history,
    idea_validation,
)
from mdsessions.cli import cli
from mdsessions.cli.history import register
from mdsessions.history.sync import SyncConflictError

P, S = "project-123", "session-456"
AGENT_NAMES = [name for phase in idea_validation().phases for name in phase.agents]


def agents(tag: str) -> dict[str, Callable[[AgentContext], str]]:
    """Agents whose output names the machine they ran on."""

    def make(name: str) -> Callable[[AgentContext], str]:
        def agent(ctx: AgentContext) -> str:
            return f"# {name} on {tag}\n\n{ctx.idea}\nretry {ctx.retry_count}\n"

        return agent

    return {name: make(name) for name in AGENT_NAMES}


def step(runner: Runner, session: Session) -> bool:
    """Approve a waiting gate, then run; True once the session is complete."""
    manifest = session.manifest()
    if manifest.status is SessionStatus.COMPLETED:
        return True
    if manifest.status is SessionStatus.AWAITING_REVIEW:
        assert manifest.current_phase is not None
        session.save_feedback(manifest.current_phase, approved=True, author=PERSON)
    return runner.run(session).status is SessionStatus.COMPLETED


def session_files(store: Store, rel: str, rev: str = "HEAD") -> dict[str, bytes]:
    sha = store.git.resolve(rev)
    return {p: store.git.read_object(b)[1] for p, b in store.git.list_tree(sha, rel).items()}


# ------------------------------------------------------------------------------ remotes


@pytest.fixture
def pair(tmp_path: Path, url: str) -> Iterator[tuple[Store, Store]]:
    """Store A (pushed to the remote) and store B (a clone of it)."""
    a = Store.init(tmp_path / "a")
    history.add_remote(a, "origin", url)
    assert history.push(a).action == "created"
    b = history.clone(url, tmp_path / "b")
    try:
        yield a, b
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------------------ syncing


def test_two_clones_write_different_sessions_and_converge(pair: tuple[Store, Store]) -> None:
    a, b = pair
    ra, rb = Runner(a, agents=agents("A")), Runner(b, agents=agents("B"))
    sa = ra.start(P, "alpha", idea="Idea alpha").session
    sb = rb.start(P, "beta", idea="Idea beta").session
    pulled, pushed = history.sync(a)
    assert (pulled.action, pushed.action) == ("up-to-date", "pushed")
    pulled, pushed = history.sync(b)
    assert pulled.action == "merged" and pulled.sessions == (f"{P}/alpha",)
    assert pushed.action == "pushed"
    assert git(b.root, "log", "-1", "--format=%s").strip() == f"merge(origin/main): {P}/alpha"
    assert git(b.root, "rev-list", "--parents", "-1", "HEAD").count(" ") == 2
    done_a = done_b = False
    for _ in range(10):
        done_a = step(ra, sa)
        history.sync(a)
        done_b = step(rb, sb)
        history.sync(b)
        if done_a and done_b:
            break
    assert done_a and done_b
    pulled, _ = history.sync(a)
    assert pulled.action in ("fast-forward", "up-to-date")
    assert head(a.root) == head(b.root) == git(b.root, "rev-parse", "origin/main").strip()
    for store in (a, b):
        for sid in ("alpha", "beta"):
            assert store.session(P, sid).status is SessionStatus.COMPLETED
        assert history.verify(store).ok
        assert_clean(store.root)
    out = a.session(P, "beta").output(7, "final_synthesis")
    assert out is not None and out.content.startswith("# final_synthesis on B")


def test_pull_fast_forwards_and_reports_up_to_date_and_empty(
    tmp_path: Path, pair: tuple[Store, Store], remotes_dir: Path
) -> None:
    a, b = pair
    assert history.pull(b).action == "up-to-date"
    a.create_session(P, S, idea="x")
    history.push(a)
    result = history.pull(b)
    assert result.action == "fast-forward" and result.sessions == (f"{P}/{S}",)
    assert head(b.root) == head(a.root)
    assert b.session(P, S).validate() == []
    assert_clean(b.root)
    git(remotes_dir, "init", "-q", "--bare", "empty.git")
    history.add_remote(a, "empty", str(remotes_dir / "empty.git"))
    assert history.pull(a, "empty").action == "remote-empty"
    assert history.remotes(a) == {"origin": git(a.root, "remote", "get-url", "origin").strip(),
                                  "empty": str(remotes_dir / "empty.git")}  # fmt: skip
    history.remove_remote(a, "empty")
    assert list(history.remotes(a)) == ["origin"]


def test_push_is_refused_when_the_remote_is_ahead(pair: tuple[Store, Store]) -> None:
    a, b = pair
    a.create_session(P, "one")
    history.push(a)
    b.create_session(P, "two")
    before = snapshot(b.root)
    with pytest.raises(ConflictError, match="run 'mdsessions pull origin'"):
        history.push(b)
    assert snapshot(b.root) == before
    history.sync(b)
    assert history.pull(a).action == "fast-forward"
    assert {m.session_id for m in a.sessions()} == {"one", "two"}


def test_pull_never_overwrites_an_unrecorded_edit(pair: tuple[Store, Store]) -> None:
    a, b = pair
    sa = a.create_session(P, S, idea="x")
    history.push(a)
    history.pull(b)
    sa.save_agent_output(1, "concept_expansion", "from A\n")
    history.push(a)
    manifest = b.root / b.session(P, S).manifest_rel
    manifest.write_text(manifest.read_text(encoding="utf-8") + "\nmy note\n", encoding="utf-8")
    before = snapshot(b.root)
    with pytest.raises(UnrecordedEditError, match="session_manifest.md"):
        history.pull(b)
    assert snapshot(b.root) == before


def test_unrelated_stores_merge_when_their_sessions_are_disjoint(
    tmp_path: Path, remotes_dir: Path
) -> None:
    a = Store.init(tmp_path / "a")
    a.create_session(P, "one")
    history.add_remote(a, "origin", str(remotes_dir / "store.git"))
    history.push(a)
    b = Store.init(tmp_path / "b")
    b.create_session(P, "two")
    history.add_remote(b, "origin", str(remotes_dir / "store.git"))
    pulled, _ = history.sync(b)
    assert pulled.action == "merged"
    assert {m.session_id for m in b.sessions()} == {"one", "two"}
    assert history.verify(b).ok
    assert_clean(b.root)


# ------------------------------------------------------------------------------ conflicts


@pytest.fixture
def conflict(pair: tuple[Store, Store]) -> tuple[Store, Store]:
    """The same session changed in A (pushed) and in B (not yet pulled)."""
    a, b = pair
    a.create_session(P, S, idea="The idea")
    history.push(a)
    history.pull(b)
    Runner(a, agents=agents("A")).run(a.session(P, S))
    history.push(a)
    Runner(b, agents=agents("B")).run(b.session(P, S))
    return a, b


def test_same_session_changed_on_both_sides_is_a_conflict_and_nothing_changes(
    conflict: tuple[Store, Store],
) -> None:
    a, b = conflict
    before_a, before_b = snapshot(a.root), snapshot(b.root)
    with pytest.raises(SyncConflictError) as info:
        history.pull(b)
    error = info.value
    assert isinstance(error, ConflictError)
    message = str(error)
    assert f"session {P}/{S}" in message
    assert "phase_1_concept/concept_expansion.md" in message
    assert "--keep mine, --keep theirs or --fork-theirs NEW_ID" in message
    assert "Nothing was changed" in message
    [found] = error.sessions
    assert found.session == f"{P}/{S}"
    assert "phase_1_concept/concept_expansion.md" in found.mine
    assert "phase_1_concept/concept_expansion.md" in found.theirs
    assert snapshot(b.root) == before_b
    assert snapshot(a.root) == before_a
    with pytest.raises(ConflictError):
        history.sync(b)
    assert snapshot(b.root) == before_b


@pytest.mark.parametrize("way", ["mine", "theirs", "fork"])
def test_each_way_out_of_a_conflict(conflict: tuple[Store, Store], way: str) -> None:
    a, b = conflict
    rel = b.session(P, S).rel
    mine = session_files(b, rel)
    theirs_head = head(a.root)
    theirs = session_files(a, rel)
    if way == "fork":
        result = history.resolve(b, fork_theirs="theirs-copy")
    else:
        result = history.resolve(b, keep=way)
    assert result.action == "merged"
    assert git(b.root, "rev-parse", "HEAD^2").strip() == theirs_head
    assert history.verify(b).ok
    assert_clean(b.root)
    if way == "mine":
        assert result.resolved == {f"{P}/{S}": "mine"}
        assert session_files(b, rel) == mine
    elif way == "theirs":
        assert result.resolved == {f"{P}/{S}": "theirs"}
        assert session_files(b, rel) == theirs
    else:
        assert result.forked is not None and result.forked.ref == f"{P}/theirs-copy"
        assert result.resolved == {f"{P}/{S}": f"forked as {P}/theirs-copy"}
        assert session_files(b, rel) == mine
        manifest = result.forked.manifest()
        assert manifest.forked_from is not None
        assert manifest.forked_from.session == f"{P}/{S}"
        assert manifest.forked_from.commit == theirs_head
        copied = result.forked.output(1, "concept_expansion")
        assert copied is not None and copied.content.startswith("# concept_expansion on A")
        assert result.forked.validate() == []
    history.push(b)
    assert history.pull(a).action == "fast-forward"
    assert head(a.root) == head(b.root)
    assert history.verify(a).ok
    assert_clean(a.root)
    # Sessions are single-writer: B carries on with them, A receives the result.
    runner = Runner(b, agents=agents("B"))
    sessions = [b.session(P, S)] + ([b.session(P, "theirs-copy")] if way == "fork" else [])
    for session in sessions:
        for _ in range(10):
            if step(runner, session):
                break
        assert session.status is SessionStatus.COMPLETED
    history.sync(b)
    assert history.pull(a).action == "fast-forward"
    for store in (a, b):
        assert all(
            store.session(P, s.session_id).status is SessionStatus.COMPLETED for s in sessions
        )
        assert history.verify(store).ok
        assert_clean(store.root)


def test_a_store_file_changed_on_both_sides(pair: tuple[Store, Store]) -> None:
    a, b = pair
    # Different keys of mdsessions.toml merge key by key (issue 11) ...
    for store, name in ((a, "wf_a"), (b, "wf_b")):
        config = store.root / "mdsessions.toml"
        config.write_text(config.read_text() + f'{name} = "{name}.toml"\n')
        git(store.root, "commit", "-q", "-am", f"register {name}")
    history.push(a)
    merged = history.pull(b)
    assert merged.action == "merged" and merged.resolved == {}
    text = (b.root / "mdsessions.toml").read_text()
    assert 'wf_a = "wf_a.toml"' in text and 'wf_b = "wf_b.toml"' in text
    history.push(b)
    history.pull(a)
    # ... the same key set to different values is a conflict, named.
    for store, value in ((a, "one.toml"), (b, "two.toml")):
        config = store.root / "mdsessions.toml"
        config.write_text(config.read_text() + f'same = "{value}"\n')
        git(store.root, "commit", "-q", "-am", "register same")
    history.push(a)
    before = snapshot(b.root)
    with pytest.raises(SyncConflictError) as info:
        history.pull(b)
    assert info.value.files == ("mdsessions.toml",)
    assert "store file mdsessions.toml ([workflows] same" in str(info.value)
    assert info.value.keys == ('[workflows] same: mine "two.toml", theirs "one.toml"',)
    with pytest.raises(SyncConflictError, match="--fork-theirs takes one conflicting session"):
        history.pull(b, fork_theirs="x")
    assert snapshot(b.root) == before
    result = history.pull(b, keep="theirs")
    assert result.resolved == {"mdsessions.toml": "theirs"}
    assert 'same = "one.toml"' in (b.root / "mdsessions.toml").read_text()
    [aside] = result.set_aside
    assert aside.session is None and aside.side == "mine"
    assert git(b.root, "show", f"{aside.ref}:mdsessions.toml").count('"two.toml"') == 1
    assert_clean(b.root)


# ------------------------------------------------------------------------------ CLI


def run(*argv: str) -> tuple[int, str, str]:
    if "pull" not in cli.commands:
        register(cli)
    result = CliRunner().invoke(cli, list(argv))
    return result.exit_code, result.stdout, result.stderr


def test_cli_remote_push_pull_sync_and_conflict(
    tmp_path: Path, remotes_dir: Path, conflict: tuple[Store, Store]
) -> None:
    a, b = conflict
    root = str(b.root)
    code, out, _ = run("remote", "add", "mirror", str(remotes_dir / "store.git"), "--store", root)
    assert code == 0 and out.strip().startswith("mirror ")
    code, out, _ = run("remote", "list", "--json", "--store", root)
    assert {r["name"] for r in json.loads(out)} == {"origin", "mirror"}
    code, out, _ = run("remote", "remove", "mirror", "--store", root)
    assert code == 0
    before = snapshot(b.root)
    code, out, err = run("pull", "--store", root)
    assert code == 1
    assert err.startswith(f"Error: pull from origin/main: changed on both sides: session {P}/{S}")
    assert snapshot(b.root) == before
    code, out, err = run("push", "--store", root)
    assert code == 1 and "pull origin" in err
    code, out, err = run("pull", "--keep", "mine", "--fork-theirs", "x", "--store", root)
    assert code == 2
    code, out, err = run("sync", "--keep", "theirs", "--json", "--store", root)
    assert code == 0, err
    data = json.loads(out)
    assert data["pull"]["action"] == "merged" and data["push"]["action"] == "pushed"
    changed = {(c["project"], c["session"]): c["change"] for c in data["pull"]["changes"]}
    assert changed[(P, S)] == "kept-theirs"
    code, out, err = run("pull", "--store", str(a.root))
    assert code == 0 and out.startswith("fast-forward to origin/main")
    code, out, err = run("push", "--store", str(a.root), "--json")
    assert json.loads(out)["action"] == "up-to-date"
    assert_clean(a.root)
    assert_clean(b.root)
