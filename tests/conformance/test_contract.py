"""The store contract, stated once and run against every backend (see ``conftest.py``).

Clauses (DESIGN.md "Commits", "History = git"):

1. Every public write is exactly one commit, touching only its session's folder, with the
   subject and ``Mdsessions-*`` trailers plain git can query; a sync carries it unchanged.
2. A write that fails is nothing: it raises an ``MdsessionsError``, and HEAD, ``git status``
   and the working tree are as before (on both sides of a sync); the store stays writable.
3. Reads after writes return what was written: manifest fields, agent output bodies byte for
   byte, feedback, checkpoints, the session listing; a person's edit, recorded, too.
4. ``history.versions`` lists every write of a session, newest first, and old versions read
   back as they were.
5. ``history.restore`` brings an earlier version back as a **new** commit; nothing is
   rewritten and work continues from the restored state.
6. ``history.fork`` makes a new session with the same content and its own id; the original
   is untouched and the two go on independently.
7. Other git tools read the result: ``git fsck --strict`` is clean, ``git log`` shows the
   trailers, an independent YAML parser reads every document.

The edge cases of each verb live in the per-module tests; this file states the contract.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import (
    PERSON,
    assert_all_documents_parse,
    assert_clean,
    author,
    commit_count,
    git,
    head,
    snapshot,
    subject,
    trailers,
)

from mdsessions import (
    AgentOutput,
    FeedbackAction,
    MdsessionsError,
    PhaseStatus,
    ReviewState,
    SessionManifest,
    SessionStatus,
    StoreError,
    UnrecordedEditError,
    history,
)

from .conftest import Backend

P, S = "project-123", "session-456"
FORK = "session-789"
USER = "user-789"
IDEA = "A leaderboard for small gyms: members compete on streaks, not weights."
MANIFEST = "session_manifest.md"
CONCEPT = "phase_1_concept/concept_expansion.md"

# Agent content is not ours: it must come back byte for byte, whatever it looks like.
CONCEPT_V1 = (
    "# Concept\n\n---\nschema: not-frontmatter\n---\n\n{{ not a template }} {% raw %}\n"
    "```python\nprint('fenced')\n```\n\nÜnïcödé ✓ — 東京\n\ttab, trailing space \n"
)
CONCEPT_V2 = "# Concept, narrowed\n\nOne city first.\n"
MARKET = "# Market\n\nGyms: 40k in the EU.\n"
COMPETITORS = "# Competitors\n\n| name | note |\n|---|---|\n| StreakFit | app only |\n"
REVISE = "Too broad: pick one city.\n\n- and say why\n"
APPROVE = "Good. Go on."


# ------------------------------------------------------------------------------ the writes


@dataclass(frozen=True)
class Write:
    """One public write of the scenario and the commit it must make."""

    name: str
    kind: str
    phase: int | None
    do: Callable[[Backend], None]
    agent: str | None = None


def _output(phase: int, agent: str, content: str, tokens: tuple[int, int], cost: float) -> Write:
    return Write(
        f"output {phase} {agent}",
        "agent_output",
        phase,
        lambda b: b.save_agent_output(
            P, S, phase, agent, content, input_tokens=tokens[0], output_tokens=tokens[1], cost=cost
        ),
        agent,
    )


WRITES: tuple[Write, ...] = (
    Write("create", "session", None, lambda b: b.create_session(P, S, idea=IDEA, user_id=USER)),
    _output(1, "concept_expansion", CONCEPT_V1, (1200, 800), 0.0125),
    Write("checkpoint 1", "checkpoint", 1, lambda b: b.save_checkpoint(P, S, 1, "completed")),
    Write("revise 1", "user_feedback", 1, lambda b: b.save_feedback(P, S, 1, "revise", REVISE)),
    _output(1, "concept_expansion", CONCEPT_V2, (300, 200), 0.004),
    Write("checkpoint 1 again", "checkpoint", 1, lambda b: b.save_checkpoint(P, S, 1, "completed")),
    Write("approve 1", "user_feedback", 1, lambda b: b.save_feedback(P, S, 1, "approved", APPROVE)),
    _output(2, "market_intelligence", MARKET, (2000, 1000), 0.03),
    _output(2, "competitor_analysis", COMPETITORS, (1500, 500), 0.02),
    Write("checkpoint 2", "checkpoint", 2, lambda b: b.save_checkpoint(P, S, 2, "completed")),
)
# Indexes into WRITES (and into the commits write_all returns).
FIRST_CHECKPOINT, APPROVED = 2, 6


def write_all(backend: Backend, writes: tuple[Write, ...] = WRITES) -> list[str]:
    """Make the writes; return the writer's HEAD after each one."""
    commits = []
    for write in writes:
        write.do(backend)
        commits.append(head(backend.writer.root))
    return commits


def changed_paths(root: Path, old: str, new: str = "HEAD") -> list[str]:
    return git(root, "diff", "--name-only", "--no-renames", old, new).split()


def tree(root: Path, commit: str, rel: str) -> str:
    """``git ls-tree -r`` of a folder at a commit, paths made relative to the folder."""
    return git(root, "ls-tree", "-r", "--full-tree", commit, "--", rel).replace(f"\t{rel}/", "\t")


def is_ancestor(root: Path, old: str, new: str = "HEAD") -> bool:
    proc = subprocess.run(
        ["git", "merge-base", "--is-ancestor", old, new], cwd=root, capture_output=True, check=False
    )
    return proc.returncode == 0


def assert_one_session_commit(
    backend: Backend, before: str, rel: str, kind: str, session: str = S, status: str = ""
) -> None:
    """HEAD is one new commit on ``before``, touching only ``rel``, with the trailers.

    ``status``: what ``git status --porcelain`` must show afterwards (a person's edits).
    """
    root = backend.writer.root
    assert git(root, "rev-parse", "HEAD~1").strip() == before, "not exactly one new commit"
    assert len(git(root, "rev-list", "--parents", "-1", "HEAD").split()) == 2, "a merge commit"
    changed = changed_paths(root, before)
    assert changed, "an empty commit"
    outside = [p for p in changed if not p.startswith(rel + "/")]
    assert outside == [], f"{kind} commit touches files outside {rel}: {outside}"
    found = trailers(root)
    assert found.get("Mdsessions-Kind") == kind, found
    assert (found.get("Mdsessions-Project"), found.get("Mdsessions-Session")) == (P, session)
    assert f"({P}/{session})" in subject(root), subject(root)
    assert git(root, "status", "--porcelain", "--untracked-files=all") == status


# ------------------------------------------------------------------------------ 1. one commit


def test_every_write_is_one_commit_inside_its_session_folder(backend: Backend) -> None:
    root = backend.writer.root
    rel = backend.writer.session_rel(P, S)
    for write in WRITES:
        before, count = head(root), commit_count(root)
        write.do(backend)
        assert commit_count(root) == count + 1, write.name
        assert_one_session_commit(backend, before, rel, write.kind)
        found = trailers(root)
        expected_phase = None if write.phase is None else str(write.phase)
        assert found.get("Mdsessions-Phase") == expected_phase, (write.name, found)
        assert found.get("Mdsessions-Agent") == write.agent, (write.name, found)
    writer_head = head(root)
    backend.settle()
    # The reader has the very same commits: a sync adds no commit of its own.
    assert head(backend.reader.root) == writer_head
    assert commit_count(backend.reader.root) == commit_count(root)


# ------------------------------------------------------------------------------ 2. or nothing


@dataclass(frozen=True)
class Failure:
    """A write that must fail and what it must raise (seed 003's builtin where it names one).

    Whatever the class, it must also be an ``MdsessionsError`` (one exception root).
    """

    name: str
    do: Callable[[Backend], object]
    raises: type[Exception]
    prepare: Callable[[Backend], None] | None = None


def _first_commit(backend: Backend) -> str:
    return git(backend.writer.root, "rev-list", "--max-parents=0", "HEAD").strip()


def _edit_concept(backend: Backend) -> None:
    """A person edits an agent output in their editor and does not record it."""
    path = backend.session(P, S).path / CONCEPT
    path.write_text(path.read_text(encoding="utf-8") + "\nA person's note.\n", encoding="utf-8")


FAILURES = [
    Failure("bad session id", lambda b: b.create_session(P, "../evil"), ValueError),
    Failure("bad project id", lambda b: b.create_session("a b", "s"), ValueError),
    Failure("session exists", lambda b: b.create_session(P, S), FileExistsError),
    Failure("no such session", lambda b: b.save_checkpoint(P, "nope", 1, "completed"), LookupError),
    Failure(
        "phase not in the mode",
        lambda b: b.save_agent_output(P, S, 4, "product_strategy", "x"),
        ValueError,
    ),
    Failure("phase not a number", lambda b: b.save_checkpoint(P, S, "1", "completed"), ValueError),
    Failure("bad agent id", lambda b: b.save_agent_output(P, S, 1, "a/b", "x"), ValueError),
    Failure("bad status", lambda b: b.save_checkpoint(P, S, 1, "done"), ValueError),
    Failure("bad action", lambda b: b.save_feedback(P, S, 1, "maybe"), ValueError),
    Failure("review before run", lambda b: b.save_feedback(P, S, 2, "approved"), StoreError),
    Failure(
        "overwrite an unrecorded edit",
        lambda b: b.save_agent_output(P, S, 1, "concept_expansion", CONCEPT_V2),
        UnrecordedEditError,
        prepare=_edit_concept,
    ),
    Failure(
        "one bad part of a many-file write",
        lambda b: b.session(P, S).save_checkpoint(
            2,
            status="completed",
            outputs=[
                {"agent": "market_intelligence", "content": MARKET},
                {"agent": "competitor_analysis", "content": COMPETITORS, "input_tokens": -1},
            ],
        ),
        ValueError,
    ),
    Failure(
        "fork onto an existing id", lambda b: history.fork(b.session(P, S), S), FileExistsError
    ),
    Failure(
        "restore to before the session",
        lambda b: history.restore(b.session(P, S), _first_commit(b)),
        StoreError,
    ),
    Failure(
        "restore to an unknown revision",
        lambda b: history.restore(b.session(P, S), "HEAD~99"),
        StoreError,
    ),
]
# A full commit id this store does not have (say, one copied from another machine before it
# synced) must fail as any unknown revision does.
UNKNOWN = "f" * 40
FAILING = [
    *[pytest.param(f, id=f.name) for f in FAILURES],
    pytest.param(
        Failure(
            "restore to an unknown commit id",
            lambda b: history.restore(b.session(P, S), UNKNOWN),
            StoreError,
        ),
        id="restore to an unknown commit id",
    ),
    pytest.param(
        Failure(
            "fork at an unknown commit id",
            lambda b: history.fork(b.session(P, S), FORK, at=UNKNOWN),
            StoreError,
        ),
        id="fork at an unknown commit id",
    ),
]


@pytest.mark.parametrize("failure", FAILING)
def test_a_failing_write_changes_nothing(backend: Backend, failure: Failure) -> None:
    write_all(backend, WRITES[: FIRST_CHECKPOINT + 1])  # phase 1 awaits review
    backend.settle()
    if failure.prepare is not None:
        failure.prepare(backend)
    writer_before = snapshot(backend.writer.root)
    reader_before = snapshot(backend.reader.root)
    manifest_before = backend.session(P, S).manifest()
    with pytest.raises(failure.raises) as raised:
        failure.do(backend)
    assert isinstance(raised.value, MdsessionsError), f"{raised.value!r} is outside the root"
    assert snapshot(backend.writer.root) == writer_before
    assert backend.session(P, S).manifest() == manifest_before
    backend.settle()
    assert snapshot(backend.reader.root) == reader_before
    # Nothing is left half-done (a lock, a journal): the next write is one commit.
    before = head(backend.writer.root)
    WRITES[FIRST_CHECKPOINT + 1].do(backend)
    rel = backend.session(P, S).rel
    assert_one_session_commit(backend, before, rel, "user_feedback", status=writer_before[1])


# ------------------------------------------------------------------------------ 3. reads


def test_reads_after_writes_return_what_was_written(backend: Backend) -> None:
    write_all(backend)
    backend.settle()
    session = backend.read(P, S)
    manifest = session.manifest()
    assert (manifest.project_id, manifest.session_id, manifest.user_id) == (P, S, USER)
    assert (manifest.workflow, manifest.mode, manifest.idea) == ("idea_validation", "mvp", IDEA)
    assert manifest.status is SessionStatus.IN_PROGRESS
    assert manifest.current_phase == 3
    assert [p.number for p in manifest.phases] == [1, 2, 3, 6, 7]
    assert manifest.completed_phases == [1, 2] and manifest.approved_phases == [1]
    phase1, phase2 = manifest.phase(1), manifest.phase(2)
    assert (phase1.status, phase1.review) == (PhaseStatus.COMPLETED, ReviewState.APPROVED)
    assert (phase2.status, phase2.review) == (PhaseStatus.COMPLETED, ReviewState.NOT_REQUIRED)
    assert (phase2.input_tokens, phase2.output_tokens) == (3500, 1500)
    assert phase2.cost == pytest.approx(0.05)
    assert manifest.phase(3).status is PhaseStatus.PENDING

    outputs = {n: {a: o.content for a, o in by.items()} for n, by in session.outputs().items()}
    assert outputs == {
        1: {"concept_expansion": CONCEPT_V2},
        2: {"market_intelligence": MARKET, "competitor_analysis": COMPETITORS},
    }
    market = session.output(2, "market_intelligence")
    assert market is not None
    assert (market.input_tokens, market.output_tokens, market.cost) == (2000, 1000, 0.03)

    for number in (1, 2):
        checkpoint = session.checkpoint(number)
        assert checkpoint is not None and checkpoint.status is PhaseStatus.COMPLETED
    assert session.checkpoint(3) is None
    feedback = session.feedback(1)
    assert feedback is not None
    assert (feedback.action, feedback.approved, feedback.reviewed) == (
        FeedbackAction.APPROVED,
        True,
        True,
    )
    assert feedback.comments.strip() == APPROVE

    listed = [(s.project_id, s.session_id, s.status) for s in backend.reader.list_sessions()]
    assert listed == [(P, S, SessionStatus.IN_PROGRESS)]
    assert backend.reader.find_session(f"{P}/{S}").manifest() == manifest
    assert session.validate() == []


def test_totals_sum_each_phases_latest_run(backend: Backend) -> None:
    """Totals are the sum over phases of each phase's latest run (models.state.totals).

    Phase 1 ran twice (revise in between): its first run is history (``git log``), not part
    of the totals.
    """
    write_all(backend)
    backend.settle()
    totals = backend.read(P, S).manifest().totals
    latest = [(300, 200, 0.004), (2000, 1000, 0.03), (1500, 500, 0.02)]
    assert totals.input_tokens == sum(r[0] for r in latest)
    assert totals.output_tokens == sum(r[1] for r in latest)
    assert totals.cost == pytest.approx(sum(r[2] for r in latest))


def test_a_persons_recorded_edit_is_one_commit_and_reads_back(backend: Backend) -> None:
    """People write too (in their editor); the facade has no verb, so the Store API records."""
    write_all(backend, WRITES[: FIRST_CHECKPOINT + 1])  # phase 1 awaits review
    root = backend.writer.root
    session = backend.session(P, S)
    path = session.path / "phase_1_concept" / "user_feedback.md"
    comment = "Fine by me — ✓\n\n```\n{{ kept as typed }}\n```\n"
    text = path.read_text(encoding="utf-8")
    assert "action: pending" in text and "## User Comments\n" in text
    text = text.replace("action: pending", "action: approved", 1)
    path.write_text(text.replace("## User Comments\n", f"## User Comments\n\n{comment}", 1))
    before = head(root)
    commit = session.record_feedback(1, author=PERSON)
    assert commit == head(root)
    assert_one_session_commit(backend, before, session.rel, "user_feedback")
    assert author(root) == PERSON
    backend.settle()
    assert author(backend.reader.root) == PERSON
    read = backend.read(P, S)
    feedback = read.feedback(1)
    assert feedback is not None and feedback.action is FeedbackAction.APPROVED
    assert comment in feedback.comments
    assert read.manifest().current_phase == 2 and read.manifest().approved_phases == [1]


# ------------------------------------------------------------------------------ 4. history


def test_history_lists_every_write_and_reads_old_versions(backend: Backend) -> None:
    half = APPROVED + 1
    commits = write_all(backend, WRITES[:half])
    backend.settle()
    # Asked once on the reader (a cached log index may now exist), then again after more.
    first = history.versions(backend.read(P, S), limit=None).versions
    assert [v.commit for v in first] == commits[::-1]
    commits += write_all(backend, WRITES[half:])
    backend.settle()
    session = backend.read(P, S)

    page = history.versions(session, limit=None)
    assert [v.commit for v in page.versions] == commits[::-1]
    assert history.versions(backend.session(P, S), limit=None) == page  # the writer agrees
    assert [v.kind for v in page.versions] == [w.kind for w in WRITES][::-1]
    assert [v.phase for v in page.versions] == [w.phase for w in WRITES][::-1]
    assert {(v.project, v.session) for v in page.versions} == {(P, S)}
    log = git(backend.reader.root, "log", "--format=%H", "--", session.rel).split()
    assert [v.commit for v in page.versions] == log

    checkpoints = history.versions(session, kind="checkpoint", limit=None).versions
    expected = [c for c, w in zip(commits, WRITES, strict=True) if w.kind == "checkpoint"][::-1]
    assert [v.commit for v in checkpoints] == expected
    assert [v.commit for v in history.versions(session, phase=2, limit=None).versions] == (
        commits[half:][::-1]
    )

    old = history.load_version(session, CONCEPT, commits[1])
    assert isinstance(old, AgentOutput) and old.content == CONCEPT_V1
    now = history.read_version(session, CONCEPT)
    assert now == (session.path / CONCEPT).read_bytes()
    assert CONCEPT_V2.encode() in now
    with pytest.raises(FileNotFoundError):
        history.read_version(session, "phase_2_market_research/market_intelligence.md", commits[1])


# ------------------------------------------------------------------------------ 5. restore


def test_restore_brings_an_old_version_back_as_a_new_commit(backend: Backend) -> None:
    commits = write_all(backend)
    root = backend.writer.root
    rel = backend.session(P, S).rel
    target = commits[FIRST_CHECKPOINT]  # phase 1, first run, awaiting review
    count = commit_count(root)

    result = history.restore(backend.session(P, S), target)
    assert result.commit == head(root) and result.target == target
    assert commit_count(root) == count + 1
    assert_one_session_commit(backend, commits[-1], rel, "restore")
    # History is never rewritten: every earlier version is still an ancestor of HEAD.
    for commit in commits:
        assert is_ancestor(root, commit), commit
    assert git(root, "diff", "--name-only", target, "HEAD", "--", rel) == ""

    backend.settle()
    reader = backend.reader.root
    assert head(reader) == result.commit
    assert tree(reader, "HEAD", rel) == tree(reader, target, rel)
    session = backend.read(P, S)
    manifest = session.manifest()
    assert manifest.status is SessionStatus.AWAITING_REVIEW and manifest.current_phase == 1
    concept = session.output(1, "concept_expansion")
    assert concept is not None and concept.content == CONCEPT_V1
    assert session.output(2, "market_intelligence") is None
    versions = history.versions(session, limit=None).versions
    assert [v.commit for v in versions] == [result.commit, *commits[::-1]]
    assert versions[0].kind == "restore"

    # Work continues from the restored state, one commit per write.
    before = head(root)
    backend.save_feedback(P, S, 1, "approved", APPROVE)
    assert_one_session_commit(backend, before, rel, "user_feedback")
    backend.settle()
    assert backend.read(P, S).manifest().current_phase == 2


# ------------------------------------------------------------------------------ 6. fork


def test_fork_makes_a_new_session_with_the_same_content(backend: Backend) -> None:
    commits = write_all(backend)
    root = backend.writer.root
    original = backend.session(P, S)
    at = commits[APPROVED]  # phase 1 approved, phase 2 not started

    result = history.fork(original, FORK, at=at)
    new_rel = result.session.rel
    assert result.session.ref == f"{P}/{FORK}" and result.at == at
    assert result.commit == head(root)
    assert_one_session_commit(backend, commits[-1], new_rel, "fork", session=FORK)

    backend.settle()
    fork = backend.read(P, FORK)
    manifest = fork.manifest()
    assert (manifest.project_id, manifest.session_id) == (P, FORK)
    assert manifest.forked_from is not None
    assert (manifest.forked_from.session, manifest.forked_from.commit) == (f"{P}/{S}", at)
    then = history.load_version(backend.read(P, S), MANIFEST, at)
    assert isinstance(then, SessionManifest)
    fields = ("number", "status", "review", "retry_count", "input_tokens", "output_tokens")
    assert [p.model_dump(include=set(fields)) for p in manifest.phases] == [
        p.model_dump(include=set(fields)) for p in then.phases
    ]
    assert (manifest.status, manifest.current_phase) == (then.status, then.current_phase)
    assert {n: {a: o.content for a, o in by.items()} for n, by in fork.outputs().items()} == {
        1: {"concept_expansion": CONCEPT_V2}
    }
    feedback = fork.feedback(1)
    assert feedback is not None and feedback.session_id == FORK
    assert feedback.action is FeedbackAction.APPROVED and feedback.comments.strip() == APPROVE
    source = backend.read(P, S)
    files_then = git(backend.reader.root, "ls-tree", "-r", "--name-only", at, "--", source.rel)
    files_now = git(backend.reader.root, "ls-tree", "-r", "--name-only", "HEAD", "--", fork.rel)
    assert [f[len(source.rel) :] for f in files_then.split()] == [
        f[len(fork.rel) :] for f in files_now.split()
    ]
    assert tree(backend.reader.root, "HEAD", source.rel) == tree(
        backend.reader.root, commits[-1], source.rel
    )
    assert fork.validate() == [] and source.validate() == []

    # The two go on independently: a write to the fork touches the fork only.
    before = head(root)
    backend.save_agent_output(P, FORK, 2, "market_intelligence", "# The fork's market\n")
    assert_one_session_commit(backend, before, new_rel, "agent_output", session=FORK)
    backend.settle()
    mine = backend.read(P, FORK).output(2, "market_intelligence")
    theirs = backend.read(P, S).output(2, "market_intelligence")
    assert mine is not None and mine.content == "# The fork's market\n"
    assert theirs is not None and theirs.content == MARKET


# ------------------------------------------------------------------------------ 7. git tools


def test_other_git_tools_read_the_store(backend: Backend) -> None:
    commits = write_all(backend)
    history.restore(backend.session(P, S), commits[FIRST_CHECKPOINT])
    history.fork(backend.session(P, S), FORK, at=commits[APPROVED])
    backend.settle()
    roots = {backend.writer.root, backend.reader.root}
    for root in roots:
        assert_clean(root)  # git status clean, git fsck --strict silent
        assert_all_documents_parse(root)  # python-frontmatter reads every .md
    for store in (backend.writer, backend.reader):
        report = history.verify(store)
        assert report.ok, report.to_json()
    for bare in backend.remotes:
        fsck = subprocess.run(
            ["git", "fsck", "--strict", "--no-dangling", "--no-progress"],
            cwd=bare,
            capture_output=True,
            text=True,
            check=False,
        )
        assert (fsck.returncode, fsck.stdout, fsck.stderr) == (0, "", ""), bare
        assert git(bare, "rev-parse", "refs/heads/main").strip() == head(backend.reader.root)
    reader = backend.reader.root
    log = git(reader, "log", "--format=%H%x00%s%x00%(trailers:only,unfold)%x01", "HEAD")
    entries = [e.strip("\n").split("\0") for e in log.split("\x01") if e.strip()]
    assert len(entries) == commit_count(reader) == 1 + len(WRITES) + 2
    kinds = []
    for sha, subject_line, trailer_text in entries:
        found = dict(
            line.split(": ", 1) for line in trailer_text.strip().splitlines() if ": " in line
        )
        kinds.append(found.get("Mdsessions-Kind"))
        if found.get("Mdsessions-Kind") == "init":
            continue
        assert found.get("Mdsessions-Project") == P, (sha, subject_line)
        assert found.get("Mdsessions-Session") in (S, FORK), (sha, subject_line)
        assert f"({P}/{found['Mdsessions-Session']})" in subject_line
    assert kinds == ["fork", "restore", *[w.kind for w in WRITES][::-1], "init"]
    grep = git(reader, "log", "--format=%H", "--grep=^Mdsessions-Kind: checkpoint$")
    assert len(grep.split()) == 3
