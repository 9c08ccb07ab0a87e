"""Tests for mdsessions.store (Store, Session) against real git repositories."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from helpers import (
    PERSON,
    REPO_ROOT,
    RUNNER,
    assert_all_documents_parse,
    assert_clean,
    author,
    commit_count,
    git,
    head,
    parse_independent,
    snapshot,
    subject,
    trailers,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdsessions import (
    DocumentError,
    FeedbackAction,
    Identity,
    InvalidIdentifierError,
    LockTimeoutError,
    MdsessionsError,
    PhaseNotFoundError,
    PhaseStatus,
    ReviewState,
    Session,
    SessionExistsError,
    SessionNotFoundError,
    SessionStatus,
    Store,
    StoreError,
    StoreNotFoundError,
    UnrecordedEditError,
)
from mdsessions.git import fsutil as _fsutil
from mdsessions.git import repo as _git

P, S = "project-123", "session-456"
SESSION_REL = f"projects/{P}/sessions/{S}"
MVP_DIRS = [
    "phase_1_concept",
    "phase_2_market_research",
    "phase_3_niche_selection",
    "phase_6_validation",
    "phase_7_synthesis",
]
FULL_DIRS = [
    "phase_1_concept",
    "phase_2_market_research",
    "phase_3_niche_selection",
    "phase_4_product_strategy",
    "phase_5_business_planning",
    "phase_6_validation",
    "phase_7_synthesis",
]
TRICKY_CONTENT = (
    "# Heading\r\n"
    "---\n"
    "title: not frontmatter\n"
    "---\n"
    "{{ x }} {% raw %}{{ y }}{% endraw %} {# z #}\n"
    "```yaml\n---\nkey: value\n```\n"
    "lone\rcarriage return, emoji 🎉, BOM \ufeff inside, tabs\tand trailing spaces   \n"
    "## Output\n"
    "no final newline"
)


def check_after_call(root: Path) -> None:
    """The invariants after every mutating call."""
    assert_clean(root)
    assert_all_documents_parse(root)


@pytest.fixture
def session(store: Store) -> Session:
    return store.create_session(P, S, user_id="user-789", idea="A gym leaderboard")


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ------------------------------------------------------------------------------ init / open


def test_init_creates_a_clean_store_with_one_commit(store: Store) -> None:
    root = store.root
    assert (root / ".git").is_dir()
    assert (root / "mdsessions.toml").is_file()
    assert commit_count(root) == 1
    assert trailers(root)["Mdsessions-Kind"] == "init"
    assert author(root) == RUNNER
    assert git(root, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert_clean(root)


def test_init_twice_opens_the_same_store(store: Store) -> None:
    again = Store.init(store.root)
    try:
        assert again.root == store.root
        assert commit_count(store.root) == 1
    finally:
        again.close()


def test_open_from_a_subfolder(store: Store, session: Session) -> None:
    opened = Store.open(session.path / "..")
    try:
        assert opened.root == store.root
        assert opened.session(P, S).manifest() == session.manifest()
    finally:
        opened.close()


def test_open_a_folder_that_is_no_store(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(StoreNotFoundError):
        Store.open(plain)
    with pytest.raises(StoreNotFoundError):
        Store.open(tmp_path / "missing")


def test_open_a_git_repository_that_is_no_store(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    with pytest.raises(StoreNotFoundError) as info:
        Store.open(repo)
    assert isinstance(info.value, FileNotFoundError)


def test_init_inside_an_existing_git_repository_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "file.txt").write_text("mine\n")
    with pytest.raises(StoreError):
        Store.init(repo)
    assert not (repo / "mdsessions.toml").exists()
    assert sorted(p.name for p in repo.iterdir()) == [".git", "file.txt"]


# ------------------------------------------------------------------------------ create_session


def test_create_session_writes_the_manifest_in_one_commit(store: Store) -> None:
    before = commit_count(store.root)
    session = store.create_session(P, S, user_id="user-789", mode="mvp", idea="Gyms")
    root = store.root
    assert commit_count(root) == before + 1
    assert subject(root) == f"session({P}/{S}): created (idea_validation, mvp)"
    assert trailers(root) == {
        "Mdsessions-Kind": "session",
        "Mdsessions-Project": P,
        "Mdsessions-Session": S,
        "Mdsessions-Status": "created",
    }
    assert author(root) == RUNNER
    manifest_path = root / SESSION_REL / "session_manifest.md"
    text = manifest_path.read_text(encoding="utf-8")
    for line in [
        "# Session Manifest",
        "## Metadata",
        f"- Session ID: {S}",
        f"- Project ID: {P}",
        "- User ID: user-789",
        "- Workflow Type: idea_validation",
        "- Execution Mode: mvp",
        "- Status: created",
        "## Phase Status",
        "## Current Phase",
        "## Metrics",
    ]:
        assert line in text.split("\n"), line
    meta = parse_independent(manifest_path).metadata
    assert meta["schema"] == "mdsessions/session_manifest/v1"
    assert meta["status"] == "created"
    assert meta["current_phase"] == 1
    manifest = session.manifest()
    assert manifest.idea == "Gyms"
    assert manifest.user_id == "user-789"
    check_after_call(root)


@pytest.mark.parametrize(
    ("mode", "numbers", "dirs"),
    [("mvp", [1, 2, 3, 6, 7], MVP_DIRS), ("full", [1, 2, 3, 4, 5, 6, 7], FULL_DIRS)],
)
def test_phases_of_each_mode(store: Store, mode: str, numbers: list[int], dirs: list[str]) -> None:
    session = store.create_session(P, f"s-{mode}", mode=mode)
    manifest = session.manifest()
    assert manifest.mode == mode
    assert [p.number for p in manifest.phases] == numbers
    assert [p.directory for p in manifest.phases] == dirs
    assert [session.phase_rel(n).rsplit("/", 1)[1] for n in numbers] == dirs
    assert all(p.status is PhaseStatus.PENDING for p in manifest.phases)
    gates = {p.number: p.review for p in manifest.phases}
    assert gates[1] is ReviewState.REQUIRED
    assert gates[2] is ReviewState.NOT_REQUIRED
    # Every phase folder appears once something is saved in it.
    for number in numbers:
        session.save_agent_output(number, "probe", f"phase {number}\n")
    folder = store.root / session.rel
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(dirs)
    check_after_call(store.root)


def test_unknown_mode_is_refused_and_nothing_changes(store: Store) -> None:
    before = snapshot(store.root)
    with pytest.raises(ValueError, match="turbo"):
        store.create_session(P, S, mode="turbo")
    assert snapshot(store.root) == before


def test_default_session_id(store: Store) -> None:
    session = store.create_session(P)
    assert session.session_id.startswith("session-")
    assert store.session(P, session.session_id).manifest().session_id == session.session_id


def test_session_lookup(store: Store, session: Session) -> None:
    assert store.find_session(f"{P}/{S}").ref == f"{P}/{S}"
    assert store.find_session(S).ref == f"{P}/{S}"
    with pytest.raises(SessionNotFoundError):
        store.session(P, "nope")
    with pytest.raises(SessionNotFoundError) as info:
        store.find_session("nope")
    assert isinstance(info.value, LookupError)
    assert [m.session_id for m in store.sessions()] == [S]


def test_document_rel_names_each_document_of_a_session(session: Session) -> None:
    folder = f"{SESSION_REL}/phase_1_concept"
    assert session.document_rel() == f"{SESSION_REL}/session_manifest.md"
    assert session.document_rel(1) == f"{folder}/checkpoint.md"
    assert session.document_rel(1, "feedback") == f"{folder}/user_feedback.md"
    assert session.document_rel(1, "user_feedback") == f"{folder}/user_feedback.md"
    assert session.document_rel(1, "concept_expansion") == f"{folder}/concept_expansion.md"
    assert session.document_rel(1, "concept_expansion.md") == f"{folder}/concept_expansion.md"
    for bad in ("../x", "a/b", ".hidden"):
        with pytest.raises(InvalidIdentifierError, match="invalid document"):
            session.document_rel(1, bad)
    with pytest.raises(PhaseNotFoundError):
        session.document_rel(4)  # not in mode mvp


def test_person_is_the_author_the_reviewer_or_gits_user(store: Store) -> None:
    assert str(store.person("Ana <ana@example.com>")) == str(Identity("Ana", "ana@example.com"))
    assert store.person(Identity("Bo", "bo@example.com")).email == "bo@example.com"
    assert store.person(None, ["just a name", "Cy <cy@example.com>"]).name == "Cy"
    assert f"{store.person(None).name} <{store.person(None).email}>" == PERSON
    with pytest.raises(ValueError):
        store.person("no email here")


def test_commit_message_is_subject_body_and_trailers() -> None:
    from mdsessions.store.commits import commit_message

    message = commit_message(
        "checkpoint(p/s): phase 1 Concept completed",
        "- a body line",
        kind="checkpoint",
        project="p",
        session="s",
        phase=1,
        agent=None,
        session_status="awaiting_review",
    )
    assert message == (
        "checkpoint(p/s): phase 1 Concept completed\n\n- a body line\n\n"
        "Mdsessions-Kind: checkpoint\nMdsessions-Project: p\nMdsessions-Session: s\n"
        "Mdsessions-Phase: 1\nMdsessions-Session-Status: awaiting_review"
    )


def test_undecodable_bytes_name_the_file_line_and_byte_on_every_path() -> None:
    from mdsessions.history.common import _decode
    from mdsessions.store.checks import decode

    for read in (decode, _decode):  # the store's reads, and history's reads of versions
        with pytest.raises(DocumentError) as exc:
            read(b"---\nok\nbad \xff\n", "p/s/session_manifest.md")
        assert (exc.value.path, exc.value.line) == ("p/s/session_manifest.md", 3)
        assert exc.value.reason == "not valid UTF-8 (byte 11)"


# ------------------------------------------------------------------------------ commits


def test_every_save_is_one_commit_with_trailers(store: Store, session: Session) -> None:
    root = store.root

    def one_commit(call, **expected_trailers: str) -> None:  # type: ignore[no-untyped-def]
        before = commit_count(root)
        call()
        assert commit_count(root) == before + 1
        found = trailers(root)
        for key, value in expected_trailers.items():
            assert found.get(key) == value, (key, found)
        assert found["Mdsessions-Project"] == P
        assert found["Mdsessions-Session"] == S
        check_after_call(root)

    one_commit(
        lambda: session.save_checkpoint(1, status="in_progress"),
        **{
            "Mdsessions-Kind": "checkpoint",
            "Mdsessions-Phase": "1",
            "Mdsessions-Status": "in_progress",
        },
    )
    assert author(root) == RUNNER
    one_commit(
        lambda: session.save_agent_output(
            1, "concept_expansion", "# Concept\n", input_tokens=10, output_tokens=5
        ),
        **{"Mdsessions-Phase": "1", "Mdsessions-Status": "completed"},
    )
    assert subject(root) == f"agent_output({P}/{S}): phase 1 concept_expansion completed"
    assert author(root) == RUNNER
    one_commit(
        lambda: session.save_checkpoint(1, status="completed"),
        **{
            "Mdsessions-Kind": "checkpoint",
            "Mdsessions-Phase": "1",
            "Mdsessions-Status": "completed",
        },
    )
    assert subject(root).startswith(f"checkpoint({P}/{S}): phase 1 Concept Expansion completed")
    assert author(root) == RUNNER
    one_commit(
        lambda: session.save_feedback(1, approved=True, comments="Looks great!"),
        **{
            "Mdsessions-Kind": "user_feedback",
            "Mdsessions-Phase": "1",
            "Mdsessions-Status": "approved",
        },
    )
    assert subject(root).startswith(f"user_feedback({P}/{S}): phase 1 Concept Expansion approved")
    assert author(root) == PERSON
    assert git(root, "log", "-1", "--format=%cn <%ce>").strip() == RUNNER


def test_a_checkpoint_with_its_outputs_is_one_commit(store: Store, session: Session) -> None:
    root = store.root
    session.save_agent_output(1, "earlier", "# earlier\n", input_tokens=1, output_tokens=2)
    before = commit_count(root)
    cp = session.save_checkpoint(
        1,
        status="completed",
        request_review=False,
        outputs=[
            {
                "agent": "concept_expansion",
                "content": TRICKY_CONTENT,
                "input_tokens": 1200,
                "output_tokens": 800,
                "cost": 0.0125,
                "model": "m-1",
            },
            {"agent": "critic", "content": "# Critic\n", "status": "failed", "error": "timeout"},
        ],
    )
    assert commit_count(root) == before + 1
    found = trailers(root)
    assert found["Mdsessions-Kind"] == "checkpoint"
    assert found["Mdsessions-Status"] == "completed"
    assert "Mdsessions-Agent" not in found  # two agents: no single agent to name
    changed = set(git(root, "diff", "--name-only", "HEAD~1", "HEAD").split())
    assert changed == {
        f"{SESSION_REL}/session_manifest.md",
        f"{SESSION_REL}/phase_1_concept/checkpoint.md",
        f"{SESSION_REL}/phase_1_concept/concept_expansion.md",
        f"{SESSION_REL}/phase_1_concept/critic.md",
    }
    assert_verbatim(store, session, 1, "concept_expansion", TRICKY_CONTENT)
    out = session.output(1, "critic")
    assert out is not None and out.error == "timeout" and out.status is PhaseStatus.FAILED
    # The agent table holds the earlier output and the new ones, in file order.
    assert [a.agent_name for a in cp.agents] == ["concept_expansion", "critic", "earlier"]
    assert cp.total_input_tokens == 1201 and cp.total_cost == pytest.approx(0.0125)
    manifest = session.manifest()
    assert manifest.phases[0].status is PhaseStatus.COMPLETED
    assert manifest.current_phase == 2
    check_after_call(root)
    assert store.validate() == []

    session.save_checkpoint(2, status="in_progress", outputs=[{"agent": "one", "content": "x"}])
    assert trailers(root)["Mdsessions-Agent"] == "one"


@pytest.mark.parametrize(
    ("outputs", "error", "message"),
    [
        ([{"content": "x"}], DocumentError, "outputs[0]: missing 'agent'"),
        (
            [{"agent": "a", "content": "x"}, {"agent": "b"}],
            DocumentError,
            "outputs[1]: missing 'content'",
        ),
        ([{"agent": "a", "content": "x", "tokens": 3}], DocumentError, "unknown key 'tokens'"),
        (
            [{"agent": "a", "content": "x"}, {"agent": "a", "content": "y"}],
            DocumentError,
            "listed twice",
        ),
        ([{"agent": "../a", "content": "x"}], InvalidIdentifierError, "invalid agent id"),
        ([{"agent": "a", "content": b"x"}], DocumentError, "must be text"),
        ([{"agent": "a", "content": "x", "input_tokens": -1}], DocumentError, "input_tokens"),
        (["a"], DocumentError, "outputs[0]: expected a mapping"),
    ],
)
def test_bad_outputs_of_a_checkpoint_change_nothing(
    store: Store, session: Session, outputs: list[object], error: type[Exception], message: str
) -> None:
    before = snapshot(store.root)
    with pytest.raises(error, match=message.replace("[", "\\[").replace("]", "\\]")):
        session.save_checkpoint(1, status="completed", outputs=outputs)  # type: ignore[arg-type]
    assert snapshot(store.root) == before


def test_trailers_are_queryable_with_plain_git(store: Store, session: Session) -> None:
    session.save_agent_output(1, "concept_expansion", "x\n")
    session.save_checkpoint(1, status="completed")
    found = git(
        store.root,
        "log",
        "--format=%s",
        "--grep=^Mdsessions-Kind: checkpoint$",
        "--regexp-ignore-case",
    ).splitlines()
    assert found and all(line.startswith("checkpoint(") for line in found)


def test_save_without_change_makes_no_empty_commit(store: Store, session: Session) -> None:
    stamp = "2024-11-24T10:00:00Z"
    session.save_agent_output(1, "a", "same\n", executed=stamp)
    before = commit_count(store.root)
    session.save_agent_output(1, "a", "same\n", executed=stamp)
    # Exactly one commit or nothing: never an empty commit.
    if commit_count(store.root) != before:
        assert commit_count(store.root) == before + 1
        assert git(store.root, "diff", "--name-only", "HEAD~1", "HEAD").strip() != ""
    check_after_call(store.root)


# ------------------------------------------------------------------------------ verbatim content


def read_verbatim(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as fh:
        return fh.read()


def assert_verbatim(store: Store, session: Session, phase: int, agent: str, content: str) -> None:
    assert session.output(phase, agent).content == content  # type: ignore[union-attr]
    path = store.root / session.phase_rel(phase) / f"{agent}.md"
    raw = path.read_bytes()
    marker = b"\n## Output\n\n"
    assert raw[raw.index(marker) + len(marker) :] == content.encode("utf-8")
    committed = subprocess.run(
        ["git", "show", f"HEAD:{session.phase_rel(phase)}/{agent}.md"],
        cwd=store.root,
        capture_output=True,
        check=True,
    ).stdout
    assert committed == raw


def test_real_agent_output_round_trips_byte_for_byte(
    store: Store, session: Session, shared_data: Path
) -> None:
    folder = shared_data / "agent_outputs" / "concept_expansion"
    samples = sorted(folder.glob("*.md"))
    assert samples, folder
    for i, sample in enumerate(samples):
        original = read_verbatim(sample)
        agent = f"concept_expansion_{i}" if i else "concept_expansion"
        session.save_agent_output(1, agent, original, model="haytham")
        assert_verbatim(store, session, 1, agent, original)
        assert original.encode("utf-8") == sample.read_bytes()
    check_after_call(store.root)


@pytest.mark.parametrize(
    "content",
    [
        TRICKY_CONTENT,
        "",
        "\n",
        "---\n",
        "---\n---\n",
        "\ufeffstarts with a BOM\n",
        "\r\n\r\nCRLF only\r\n",
        "{% raw %}",
        "{{ doc.content }}{{ frontmatter }}",
        "🎉" * 1000,
    ],
)
def test_self_made_content_round_trips(store: Store, session: Session, content: str) -> None:
    session.save_agent_output(1, "writer", content)
    assert_verbatim(store, session, 1, "writer", content)
    check_after_call(store.root)


# ------------------------------------------------------------------------------ bad input


BAD_IDS = ["a/b", "..", "a..b", ".hidden", "", "-dash", "x" * 129, "sp ace", "new\nline"]


def test_bad_project_or_session_id_changes_nothing(store: Store) -> None:
    before = snapshot(store.root)
    for bad in BAD_IDS:
        with pytest.raises(InvalidIdentifierError) as info:
            store.create_session(bad, S)
        assert isinstance(info.value, ValueError)
        assert "project id" in str(info.value), bad
        with pytest.raises(InvalidIdentifierError) as info:
            store.create_session(P, bad)
        assert "session id" in str(info.value), bad
        with pytest.raises(InvalidIdentifierError):
            store.session(bad, S)
    assert snapshot(store.root) == before


def test_bad_agent_id_changes_nothing(store: Store, session: Session) -> None:
    before = snapshot(store.root)
    for bad in [*BAD_IDS, "checkpoint", "user_feedback"]:
        with pytest.raises(InvalidIdentifierError):
            session.save_agent_output(1, bad, "x")
    assert snapshot(store.root) == before


def test_unknown_phase_changes_nothing(store: Store, session: Session) -> None:
    before = snapshot(store.root)
    for phase in [0, 4, 5, 8, -1]:
        with pytest.raises(PhaseNotFoundError) as info:
            session.save_agent_output(phase, "a", "x")
        assert f"phase {phase}" in str(info.value)
        with pytest.raises(PhaseNotFoundError):
            session.save_checkpoint(phase, status="completed")
        with pytest.raises(PhaseNotFoundError):
            session.save_feedback(phase, approved=True)
    assert snapshot(store.root) == before


def test_invalid_status_changes_nothing(store: Store, session: Session) -> None:
    before = snapshot(store.root)
    with pytest.raises(DocumentError) as info:
        session.save_checkpoint(1, status="done")
    assert info.value.field == "status"
    assert "status" in str(info.value)
    with pytest.raises(DocumentError) as info:
        session.save_agent_output(1, "a", "x", status="done")
    assert info.value.field == "status"
    assert snapshot(store.root) == before


INVALID_FIELDS: list[tuple[str, dict[str, object]]] = [
    ("input_tokens", {"input_tokens": -1}),
    ("output_tokens", {"output_tokens": -5}),
    ("cost", {"cost": -0.01}),
    ("duration", {"duration": -3.0}),
    ("model", {"model": "two\nlines"}),
]


def test_invalid_fields_change_nothing(store: Store, session: Session) -> None:
    before = snapshot(store.root)
    for field, kwargs in INVALID_FIELDS:
        with pytest.raises(DocumentError) as info:
            session.save_agent_output(1, "a", "x", **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
        assert field in str(info.value)
    assert snapshot(store.root) == before


def test_non_text_content_changes_nothing(store: Store, session: Session) -> None:
    before = snapshot(store.root)
    with pytest.raises(DocumentError):
        session.save_agent_output(1, "a", b"bytes")  # type: ignore[arg-type]
    assert snapshot(store.root) == before


def test_existing_session_changes_nothing(store: Store, session: Session) -> None:
    before = snapshot(store.root)
    with pytest.raises(SessionExistsError) as info:
        store.create_session(P, S)
    assert isinstance(info.value, FileExistsError)
    assert snapshot(store.root) == before


def test_contradicting_feedback_changes_nothing(store: Store, session: Session) -> None:
    session.save_checkpoint(1, status="completed")
    before = snapshot(store.root)
    with pytest.raises(DocumentError) as info:
        session.save_feedback(1, approved=True, action="rejected")
    assert info.value.field == "action"
    with pytest.raises(DocumentError) as info:
        session.save_feedback(1, action="perhaps")
    assert info.value.field == "action"
    assert snapshot(store.root) == before


def test_all_errors_share_one_root(store: Store) -> None:
    with pytest.raises(MdsessionsError):
        store.create_session("a/b", S)
    with pytest.raises(MdsessionsError):
        store.session(P, "missing")


# ------------------------------------------------------------------------------ people's edits


def phase1_started(session: Session) -> Path:
    session.save_agent_output(1, "concept_expansion", "# Concept\n")
    session.save_checkpoint(1, status="in_progress")
    return session.store.root / session.phase_rel(1) / "checkpoint.md"


def test_unrecorded_edit_is_never_overwritten(store: Store, session: Session) -> None:
    checkpoint = phase1_started(session)
    rel = checkpoint.relative_to(store.root).as_posix()
    edited = checkpoint.read_bytes().replace(
        b"## Notes\n", b"## Notes\n\nMy own observation, not yet recorded.\n"
    )
    assert edited != checkpoint.read_bytes()
    checkpoint.write_bytes(edited)
    head_before = head(store.root)
    with pytest.raises(UnrecordedEditError) as info:
        session.save_checkpoint(1, status="completed")
    assert rel in str(info.value)
    assert checkpoint.read_bytes() == edited
    assert head(store.root) == head_before
    assert [(e.path, e.change, e.error) for e in store.unrecorded_edits()] == [
        (rel, "modified", None)
    ]


def test_record_edits_commits_valid_edits_as_the_person(store: Store, session: Session) -> None:
    checkpoint = phase1_started(session)
    output = store.root / session.phase_rel(1) / "concept_expansion.md"
    edited = checkpoint.read_bytes().replace(
        b"## Notes\n", b"## Notes\n\nA person's note that must survive.\n"
    )
    checkpoint.write_bytes(edited)
    broken = output.read_bytes().replace(b"status: completed", b"status: [unclosed")
    output.write_bytes(broken)
    sha, rejected = store.record_edits()
    assert sha is not None
    assert author(store.root) == PERSON
    assert git(store.root, "show", "--name-only", "--format=", "HEAD").split() == [
        checkpoint.relative_to(store.root).as_posix()
    ]
    assert [e.path for e in rejected] == [output.relative_to(store.root).as_posix()]
    assert rejected[0].error and "concept_expansion.md" in rejected[0].error
    assert output.read_bytes() == broken
    assert checkpoint.read_bytes() == edited
    assert [e.path for e in store.unrecorded_edits()] == [rejected[0].path]
    # Re-rendering never destroys what the person wrote.
    output.write_bytes(git(store.root, "show", f"HEAD:{rejected[0].path}").encode("utf-8"))
    session.save_checkpoint(1, status="completed")
    assert "A person's note that must survive." in checkpoint.read_text(encoding="utf-8")
    assert session.checkpoint(1).notes == "A person's note that must survive."  # type: ignore[union-attr]
    check_after_call(store.root)


def test_broken_feedback_edit_is_rejected_and_kept(store: Store, session: Session) -> None:
    session.save_checkpoint(1, status="completed")
    feedback = store.root / session.phase_rel(1) / "user_feedback.md"
    broken = feedback.read_bytes().replace(b"approved: false", b"approved: 'yes")
    feedback.write_bytes(broken)
    before_head = head(store.root)
    sha, rejected = store.record_edits()
    assert sha is None
    assert [e.path for e in rejected] == [feedback.relative_to(store.root).as_posix()]
    assert feedback.read_bytes() == broken
    assert head(store.root) == before_head
    with pytest.raises(DocumentError) as info:
        session.record_feedback(1)
    assert "user_feedback.md" in str(info.value)
    assert feedback.read_bytes() == broken
    assert head(store.root) == before_head
    assert session.manifest().phase(1).review is ReviewState.PENDING


def test_contradicting_feedback_edit_is_rejected_naming_action(
    store: Store, session: Session
) -> None:
    session.save_checkpoint(1, status="completed")
    feedback = store.root / session.phase_rel(1) / "user_feedback.md"
    text = feedback.read_text(encoding="utf-8")
    text = text.replace("\napproved: false\n", "\napproved: true\n", 1)
    text = text.replace("\naction: pending\n", "\naction: rejected\n", 1)
    feedback.write_text(text, encoding="utf-8")
    sha, rejected = store.record_edits()
    assert sha is None
    assert len(rejected) == 1 and "action" in (rejected[0].error or "")
    assert feedback.read_text(encoding="utf-8") == text


def test_feedback_edit_recorded_applies_the_decision(store: Store, session: Session) -> None:
    session.save_checkpoint(1, status="completed")
    feedback = store.root / session.phase_rel(1) / "user_feedback.md"
    text = feedback.read_text(encoding="utf-8")
    edited = text.replace("\napproved: false\n", "\napproved: true\n", 1)
    assert edited != text
    feedback.write_text(edited, encoding="utf-8")
    sha = session.record_feedback(1)
    assert sha is not None
    assert author(store.root) == PERSON
    assert trailers(store.root)["Mdsessions-Kind"] == "user_feedback"
    manifest = session.manifest()
    assert manifest.phase(1).review is ReviewState.APPROVED
    assert manifest.status is SessionStatus.IN_PROGRESS
    assert manifest.current_phase == 2
    assert session.record_feedback(1) is None
    check_after_call(store.root)


# ------------------------------------------------------------------------------ review flow


def complete_phase_1(session: Session) -> None:
    session.save_agent_output(1, "concept_expansion", "# Concept\n")
    session.save_checkpoint(1, status="completed")


def test_completed_gate_phase_awaits_review(store: Store, session: Session) -> None:
    complete_phase_1(session)
    manifest = session.manifest()
    assert manifest.status is SessionStatus.AWAITING_REVIEW
    assert manifest.phase(1).review is ReviewState.PENDING
    assert manifest.current_phase == 1
    feedback = session.feedback(1)
    assert feedback is not None
    assert feedback.decision() is FeedbackAction.PENDING
    assert (store.root / session.phase_rel(1) / "user_feedback.md").is_file()
    check_after_call(store.root)


def test_approval_moves_on(store: Store, session: Session) -> None:
    complete_phase_1(session)
    session.save_feedback(1, approved=True, comments="Looks great!")
    manifest = session.manifest()
    assert manifest.status is SessionStatus.IN_PROGRESS
    assert manifest.current_phase == 2
    assert manifest.approved_phases == [1]
    assert session.feedback(1).comments == "Looks great!"  # type: ignore[union-attr]
    check_after_call(store.root)


def test_revise_keeps_the_phase_current(store: Store, session: Session) -> None:
    complete_phase_1(session)
    session.save_feedback(1, action="revise", requested_changes=["Narrow the audience"])
    manifest = session.manifest()
    assert manifest.current_phase == 1
    assert manifest.phase(1).review is ReviewState.REVISE
    assert manifest.status is SessionStatus.IN_PROGRESS
    assert session.feedback(1).requested_changes == ["Narrow the audience"]  # type: ignore[union-attr]
    assert trailers(store.root)["Mdsessions-Status"] == "revise"
    check_after_call(store.root)


def test_reject_ends_the_session(store: Store, session: Session) -> None:
    complete_phase_1(session)
    session.save_feedback(1, action="reject", comments="Not viable.")
    assert session.manifest().status is SessionStatus.REJECTED
    before = snapshot(store.root)
    with pytest.raises(StoreError):
        session.save_agent_output(2, "market_intelligence", "x")
    with pytest.raises(StoreError):
        session.save_checkpoint(2, status="in_progress")
    assert snapshot(store.root) == before
    check_after_call(store.root)


def test_non_gate_phase_advances_and_last_phase_completes(store: Store, session: Session) -> None:
    complete_phase_1(session)
    session.save_feedback(1, approved=True)
    session.save_checkpoint(2, status="completed")
    assert session.manifest().current_phase == 3
    session.save_checkpoint(3, status="completed")
    session.save_feedback(3, approved=True)
    session.save_checkpoint(6, status="completed")
    session.save_feedback(6, approved=True)
    session.save_checkpoint(7, status="completed")
    manifest = session.manifest()
    assert manifest.status is SessionStatus.COMPLETED
    assert manifest.completed_phases == [1, 2, 3, 6, 7]
    assert store.validate() == []
    check_after_call(store.root)


def test_out_of_order_writes_keep_the_manifest_consistent_with_its_phase_table(
    store: Store, session: Session
) -> None:
    """Every write leaves status and current phase as derived from the phase table.

    ``verify`` (and a restore) recompute them from the table with the same rules
    (mdsessions.models.state), so they never contradict what the writes recorded.
    """
    from mdsessions.history import verify

    session.save_checkpoint(1, status="failed", errors=["boom"])
    session.save_agent_output(1, "concept_expansion", "a retry's first output")
    manifest = session.manifest()
    # The checkpoint alone says the phase's status: still failed until the retry's own.
    assert (manifest.status, manifest.current_phase) == (SessionStatus.FAILED, 1)
    session.save_checkpoint(2, status="skipped")
    session.save_checkpoint(3, status="completed", request_review=False)
    manifest = session.manifest()
    assert (manifest.status, manifest.current_phase) == (SessionStatus.FAILED, 1)
    session.save_checkpoint(1, status="completed", request_review=False)
    manifest = session.manifest()
    assert (manifest.status, manifest.current_phase) == (SessionStatus.IN_PROGRESS, 6)
    assert verify(store).problems == ()
    check_after_call(store.root)


# ------------------------------------------------------------------------------ concurrency

WRITER = textwrap.dedent(
    """
    import sys
    from mdsessions import Store
    store = Store.open(sys.argv[1])
    session = store.session(sys.argv[2], sys.argv[3])
    for i in range(10):
        session.save_agent_output(1, f"agent_{i}", f"{sys.argv[3]} output {i}\\n")
    store.close()
    """
)


def test_processes_write_concurrently_without_losing_commits(store: Store) -> None:
    ids = [f"s{i}" for i in range(4)]
    for sid in ids:
        store.create_session(P, sid)
    before = commit_count(store.root)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store.root), P, sid],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for sid in ids
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert commit_count(store.root) == before + 40
    files = git(store.root, "ls-tree", "-r", "--name-only", "HEAD").split()
    for sid in ids:
        for i in range(10):
            assert f"projects/{P}/sessions/{sid}/phase_1_concept/agent_{i}.md" in files
    check_after_call(store.root)
    assert store.validate() == []


def test_threads_write_concurrently_into_one_session(store: Store, session: Session) -> None:
    before = commit_count(store.root)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(10):
                session.save_agent_output(1, f"t{t}_a{i}", f"thread {t} item {i}\n")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert commit_count(store.root) == before + 40
    outputs = session.outputs([1])[1]
    assert len(outputs) == 40
    assert outputs["t3_a9"].content == "thread 3 item 9\n"
    session.save_checkpoint(1, status="in_progress")
    assert len(session.checkpoint(1).agents) == 40  # type: ignore[union-attr]
    check_after_call(store.root)


# ------------------------------------------------------------------------------ crashes

CRASHER = textwrap.dedent(
    """
    import sys
    from mdsessions import Store
    store = Store.open(sys.argv[1])
    session = store.session(sys.argv[2], sys.argv[3])
    print("ready", flush=True)
    i = 0
    while True:
        session.save_agent_output(1, f"a{i % 3}", "x" * 2000 + str(i) + "\\n", input_tokens=i)
        session.save_checkpoint(1, status="in_progress")
        i += 1
    """
)


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_a_recoverable_store(
    store: Store, session: Session
) -> None:
    rng = random.Random(1234)
    root = store.root
    env = subprocess_env()
    for run in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASHER, str(root), P, S],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == b"ready", proc.stderr.read() if proc.stderr else b""
        time.sleep(rng.uniform(0.0, 0.06))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()

        reopened = Store.open(root)
        try:
            again = reopened.session(P, S)
            again.save_agent_output(1, "after", f"after kill {run}\n")
            assert_clean(root)
            assert reopened.validate() == []
            assert again.output(1, "after").content == f"after kill {run}\n"  # type: ignore[union-attr]
            assert not (root / ".git" / "mdsessions" / "journal.json").exists()
            leftovers = [p for p in root.rglob("*.mdstmp")]
            assert leftovers == []
        finally:
            reopened.close()
    assert_all_documents_parse(root)


def journal(store: Store) -> Path:
    return store.root / ".git" / "mdsessions" / "journal.json"


def test_crash_after_the_branch_moved_rolls_forward(
    store: Store, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    rel = f"{session.phase_rel(1)}/extra.md"
    doc = session.save_agent_output(1, "extra", "first\n")
    new_bytes = store.render(doc.model_copy(update={"content": "second\n"}))

    def crash(*_args: object, **_kwargs: object) -> None:
        raise SystemExit("killed")

    old_head = head(store.root)
    # It dies at the first rename after the branch moved: the file into place.
    real_replace = _fsutil.replace

    def crash_on_files(src: Path, dst: Path, **kwargs: bool) -> None:
        if ".git" in Path(dst).parts:
            return real_replace(src, dst, **kwargs)
        crash()

    monkeypatch.setattr(_fsutil, "replace", crash_on_files)
    with pytest.raises(SystemExit), store.git.writer():
        store.git.commit(
            {rel: new_bytes},
            message="crash test\n\nMdsessions-Kind: test",
            author=_git.Identity("mdsessions", "mdsessions@localhost"),
            committer=_git.Identity("mdsessions", "mdsessions@localhost"),
        )
    monkeypatch.undo()
    assert journal(store).exists()
    assert head(store.root) != old_head  # the branch moved, the file did not
    assert b"first" in (store.root / rel).read_bytes()

    session.save_agent_output(1, "other", "next save\n")
    assert not journal(store).exists()
    assert (store.root / rel).read_bytes() == new_bytes
    assert session.output(1, "extra").content == "second\n"  # type: ignore[union-attr]
    assert_clean(store.root)


def test_crash_while_installing_the_index_rolls_back(
    store: Store, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new index goes in place under the verified branch lock, before the branch moves."""
    real_replace = _fsutil.replace
    before = head(store.root)

    def crash_on_index(src: Path, dst: Path, **kwargs: bool) -> None:
        if Path(dst).name == "index":  # the new index into place, the branch not moved yet
            raise SystemExit("killed")
        return real_replace(src, dst, **kwargs)

    monkeypatch.setattr(_fsutil, "replace", crash_on_index)
    with pytest.raises(SystemExit):
        session.save_agent_output(1, "concept_expansion", "never acknowledged\n")
    monkeypatch.undo()
    assert head(store.root) == before
    session.save_agent_output(1, "other", "next\n")
    assert not journal(store).exists()
    assert session.output(1, "concept_expansion") is None
    assert session.output(1, "other").content == "next\n"  # type: ignore[union-attr]
    assert_clean(store.root)
    assert store.validate() == []


def test_crash_after_the_index_before_the_branch_reverts_the_index(
    store: Store, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the new index and the branch: recovery puts the old entries back."""
    real_replace = _fsutil.replace
    before = head(store.root)
    seen: list[str] = []

    def crash_on_ref(src: Path, dst: Path, **kwargs: bool) -> None:
        if Path(dst).name == "main" and seen:  # the index is in place; now the branch
            raise SystemExit("killed")
        if Path(dst).name == "index":
            seen.append("index")
        return real_replace(src, dst, **kwargs)

    monkeypatch.setattr(_fsutil, "replace", crash_on_ref)
    with pytest.raises(SystemExit):
        session.save_agent_output(1, "concept_expansion", "never acknowledged\n")
    monkeypatch.undo()
    assert head(store.root) == before
    assert journal(store).exists()
    assert store.git.recover() is True
    assert_clean(store.root)
    assert session.output(1, "concept_expansion") is None


def test_crash_before_the_branch_moved_rolls_back(store: Store, session: Session) -> None:
    session.save_agent_output(1, "concept_expansion", "kept\n")
    rel = f"{session.phase_rel(1)}/concept_expansion.md"
    target = store.root / rel
    before = snapshot(store.root)
    old = head(store.root)
    # What a writer killed after the journal but before the ref update leaves behind: its
    # temp file and its locks, each lock the same file as its claim in .git/mdsessions/.
    token = "0badc0de0001"
    journal(store).write_text(
        json.dumps(
            {"old": old, "new": "f" * 40, "ref": "refs/heads/main", "paths": [rel], "token": token}
        )
    )
    stale_tmp = target.with_name(f".{target.name}.{token}.mdstmp")
    stale_tmp.write_bytes(b"half written")
    private = store.root / ".git" / "mdsessions"
    (private / f"claim-{token}.index").write_bytes(b"")
    os.link(private / f"claim-{token}.index", store.root / ".git" / "index.lock")
    (private / f"claim-{token}.ref").write_text(old + "\n")
    os.link(private / f"claim-{token}.ref", store.root / ".git" / "refs" / "heads" / "main.lock")

    session.save_agent_output(1, "other", "after\n")
    assert not journal(store).exists()
    assert not stale_tmp.exists()
    assert not (store.root / ".git" / "index.lock").exists()
    assert not (store.root / ".git" / "refs" / "heads" / "main.lock").exists()
    assert not list(private.glob("claim-*"))
    assert git(store.root, "rev-parse", "HEAD~1").strip() == before[0]
    assert session.output(1, "concept_expansion").content == "kept\n"  # type: ignore[union-attr]
    assert_clean(store.root)


def test_recovery_leaves_another_git_process_lock_alone(tmp_path: Path) -> None:
    """A crashed writer's journal does not make a live git's index.lock or ref lock ours."""
    store = Store.init(tmp_path / "store", lock_timeout=0.3)
    try:
        session = store.create_session("p", "s")
        session.save_agent_output(1, "concept_expansion", "kept\n")
        rel = f"{session.phase_rel(1)}/concept_expansion.md"
        old = head(store.root)
        journal(store).write_text(
            json.dumps(
                {"old": old, "new": None, "ref": "refs/heads/main", "paths": [rel], "token": "ab12"}
            )
        )
        index_lock = store.root / ".git" / "index.lock"
        index_lock.write_bytes(b"a person's git commit, still writing")
        with pytest.raises(LockTimeoutError, match="index.lock was held by another git process"):
            session.save_agent_output(1, "other", "after\n")
        assert index_lock.read_bytes() == b"a person's git commit, still writing"
        assert head(store.root) == old
        assert not journal(store).exists()  # the dead writer's journal is handled, though
        index_lock.unlink()  # the person's git finishes
        session.save_agent_output(1, "other", "after\n")
        assert_clean(store.root)
    finally:
        store.close()


def test_recovery_never_rolls_a_foreign_commit_forward(store: Store, session: Session) -> None:
    """A branch moved by someone else after a writer died is theirs: files are left alone."""
    session.save_agent_output(1, "concept_expansion", "kept\n")
    rel = f"{session.phase_rel(1)}/concept_expansion.md"
    old = head(store.root)
    (store.root / "notes.md").write_text("a person's note\n")
    git(store.root, "add", "notes.md")
    git(store.root, "commit", "-q", "-m", "person: a note")
    journal(store).write_text(
        json.dumps(
            {"old": old, "new": "e" * 40, "ref": "refs/heads/main", "paths": [rel], "token": "cd34"}
        )
    )
    person_head = head(store.root)
    assert store.git.recover() is True
    assert head(store.root) == person_head
    assert (store.root / "notes.md").read_text() == "a person's note\n"
    assert_clean(store.root)


def test_torn_journal_is_discarded(store: Store, session: Session) -> None:
    journal(store).write_bytes(b'{"old": "abc", "ne')
    session.save_agent_output(1, "a", "fine\n")
    assert not journal(store).exists()
    assert_clean(store.root)


def test_store_validate_reports_a_broken_file(store: Store, session: Session) -> None:
    complete_phase_1(session)
    assert store.validate() == []
    path = store.root / session.phase_rel(1) / "concept_expansion.md"
    path.write_text(path.read_text(encoding="utf-8").replace("phase: 1\n", "phase: x\n", 1))
    problems = store.validate()
    assert len(problems) == 1
    assert problems[0].path == path.relative_to(store.root).as_posix()
    assert "phase" in problems[0].reason


def test_recording_a_feedback_edit_keeps_everything_the_person_wrote(
    store: Store, session: Session
) -> None:
    """DESIGN: re-rendering a document never destroys text a person wrote in it."""
    session.save_checkpoint(1, status="completed")
    feedback = store.root / session.phase_rel(1) / "user_feedback.md"
    text = feedback.read_text(encoding="utf-8")
    text = text.replace("\napproved: false\n", "\napproved: true\n", 1)
    text = text.replace("## User Comments\n\n", "## User Comments\n\nGood work.\n", 1)
    text += "\n## My checklist\n- [x] read the concept\n- [ ] ask Bob about pricing\n"
    feedback.write_text(text, encoding="utf-8")
    assert session.record_feedback(1) is not None
    assert session.manifest().phase(1).review is ReviewState.APPROVED
    recorded = git(store.root, "show", f"HEAD:{feedback.relative_to(store.root).as_posix()}")
    assert "Good work." in recorded
    assert "ask Bob about pricing" in recorded, "the person's own section was not recorded"
    assert "ask Bob about pricing" in feedback.read_text(encoding="utf-8")


def test_same_size_edit_within_one_timestamp_tick_is_seen(store: Store, session: Session) -> None:
    """An in-place edit that keeps size and mtime (one file-system timestamp tick) is read."""
    session.save_checkpoint(1, status="completed")
    feedback = store.root / session.phase_rel(1) / "user_feedback.md"
    assert session.feedback(1).decision() is FeedbackAction.PENDING  # type: ignore[union-attr]
    st = feedback.stat()
    text = feedback.read_text(encoding="utf-8")
    edited = text.replace("\naction: pending\n", "\naction: approve\n", 1)
    assert len(edited) == len(text) and edited != text
    with feedback.open("r+", encoding="utf-8") as fh:  # same inode, same size
        fh.write(edited)
    os.utime(feedback, ns=(st.st_atime_ns, st.st_mtime_ns))  # same timestamp tick
    assert session.feedback(1).decision() is FeedbackAction.APPROVED  # type: ignore[union-attr]
    assert session.record_feedback(1) is not None
    assert trailers(store.root)["Mdsessions-Status"] == "approved"
    assert session.manifest().phase(1).review is ReviewState.APPROVED


def test_a_deleted_output_is_recorded_as_a_deletion(store: Store, session: Session) -> None:
    session.save_agent_output(1, "draft", "to be removed\n")
    path = store.root / session.phase_rel(1) / "draft.md"
    path.unlink()
    edits = store.unrecorded_edits()
    assert [(e.path, e.change) for e in edits] == [
        (path.relative_to(store.root).as_posix(), "deleted")
    ]
    sha, rejected = store.record_edits()
    assert sha is not None and rejected == []
    assert author(store.root) == PERSON
    assert session.output(1, "draft") is None
    assert_clean(store.root)


def test_two_store_objects_on_one_repository_serialize(store: Store, session: Session) -> None:
    other = Store.open(store.root)
    try:
        before = commit_count(store.root)
        errors: list[BaseException] = []

        def work(target: Store, t: int) -> None:
            try:
                s = target.session(P, S)
                for i in range(5):
                    s.save_agent_output(1, f"o{t}_{i}", f"{t}/{i}\n")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(store if t % 2 else other, t)) for t in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert commit_count(store.root) == before + 20
        assert len(other.session(P, S).outputs([1])[1]) == 20
        check_after_call(store.root)
    finally:
        other.close()


ROUND_TRIP_TEXT = st.lists(
    st.one_of(
        st.sampled_from(
            ["---", "{{ x }}", "{% raw %}", "```", "## Output", "\r\n", "\r", "\n", "\ufeff", "🎉"]
        ),
        st.text(max_size=12),
    ),
    max_size=8,
).map("".join)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(content=ROUND_TRIP_TEXT)
def test_store_round_trips_any_content(store: Store, session: Session, content: str) -> None:
    session.save_agent_output(1, "prop", content)
    assert_verbatim(store, session, 1, "prop", content)


def test_nothing_unreadable_is_ever_committed(store: Store) -> None:
    """A very large idea is refused up front, or written so that a fresh reader can read it."""
    before = snapshot(store.root)
    idea = "word " * 60_000  # 300 kB, larger than the frontmatter limit
    try:
        store.create_session(P, S, idea=idea)
    except DocumentError:
        assert snapshot(store.root) == before
        return
    with Store.open(store.root) as fresh:
        assert fresh.session(P, S).manifest().idea == idea
        assert fresh.validate() == []


def test_durable_mode_follows_the_store_config(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "s")
    assert store.git.durable is False
    store.close()
    config = tmp_path / "s" / "mdsessions.toml"
    text = config.read_text(encoding="utf-8")
    assert "# durable = true" in text  # documented in the file a person opens
    config.write_text(text.replace("# durable = true", "durable = true"), encoding="utf-8")
    git(tmp_path / "s", "commit", "-qam", "durable store")
    with Store.open(tmp_path / "s") as durable:
        assert durable.git.durable is True
        s = durable.create_session(P, S)
        s.save_checkpoint(1, status="in_progress", outputs=[{"agent": "a", "content": "x\n"}])
        check_after_call(durable.root)
    with Store.open(tmp_path / "s", durable=False) as explicit:
        assert explicit.git.durable is False  # the argument wins over the file
    config.write_text(text.replace("# durable = true", 'durable = "yes"'), encoding="utf-8")
    with pytest.raises(StoreError, match=r"\[store\] durable must be true or false"):
        Store.open(tmp_path / "s")


def test_a_write_planned_before_the_lock_is_planned_again_if_the_session_changed(
    store: Store, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """save_checkpoint renders before waiting for the writer lock; if another writer changed
    the session meanwhile, the plan is made again under the lock (no lost update)."""
    planned = threading.Event()
    calls: list[str] = []
    plan = Session._plan

    def counting(self: Session, *args: object, **kwargs: object) -> object:
        result = plan(self, *args, **kwargs)  # type: ignore[arg-type]
        calls.append(threading.current_thread().name)
        planned.set()
        return result

    monkeypatch.setattr(Session, "_plan", counting)
    holding = threading.Event()
    release = threading.Event()

    def other_writer() -> None:
        with store.writing():
            holding.set()
            release.wait(30)
            session.save_agent_output(1, "late_agent", "# arrived while the other waited\n")

    t = threading.Thread(target=other_writer, name="other")
    t.start()
    assert holding.wait(30)
    calls.clear()
    planned.clear()
    result: list[object] = []
    waiter = threading.Thread(
        target=lambda: result.append(session.save_checkpoint(1, status="completed")),
        name="checkpoint",
    )
    waiter.start()
    assert planned.wait(30)  # planned before the lock: without late_agent
    release.set()
    t.join(30)
    waiter.join(30)
    assert calls.count("checkpoint") == 2  # the early plan, and the one under the lock
    cp = session.checkpoint(1)
    assert cp is not None and [a.agent_name for a in cp.agents] == ["late_agent"]
    check_after_call(store.root)
    assert store.validate() == []
