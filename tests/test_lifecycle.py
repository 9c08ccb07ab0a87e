"""Lifecycle, tags, metadata and session names (issue 14 items 1, 2 and 7), on real git.

Every write is one commit with its ``Mdsessions-Kind`` trailer and leaves ``verify`` clean;
every refused write leaves HEAD, the index, the status and the working tree as they were.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import (
    PERSON,
    assert_clean,
    command_agent,
    commit_count,
    git,
    snapshot,
    subject,
    trailers,
    write_two_phase_workflow,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdsessions import (
    DocumentError,
    InvalidIdentifierError,
    Runner,
    SessionManifest,
    SessionNotFoundError,
    SessionStatus,
    Store,
    StoreError,
    history,
)
from mdsessions.cli import cli
from mdsessions.errors import InvalidArgumentError
from mdsessions.models import state

P = "demo"
S1 = "session-20261202-211204-b43c"
S2 = "session-20261203-090000-77aa"

ECHO = "import sys; sys.stdin.read(); print('# Draft')"


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    """Two phases of command agents; phase 1 has a review gate."""
    return write_two_phase_workflow(
        tmp_path / "wf.toml", name="tiny", first=command_agent(ECHO), second=command_agent(ECHO)
    )


@pytest.fixture
def two(store: Store, workflow: Path) -> Iterator[Store]:
    """A store with two sessions of project ``demo`` (S1 created first) and one of ``other``."""
    store.create_session(P, S1, workflow=workflow)
    store.create_session(P, S2, workflow=workflow)
    store.create_session("other", "s1", workflow=workflow)
    yield store


def verify_clean(store: Store) -> None:
    report = history.verify(store)
    assert report.problems == (), report.problems
    assert_clean(store.root)


def invoke(store: Store, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--store", str(store.root), *args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    if code in (0, 1):
        assert "Traceback" not in result.stderr
    return result


def manifest_text(store: Store, project: str, session: str) -> str:
    path = store.root / store.session_rel(project, session) / "session_manifest.md"
    return path.read_text(encoding="utf-8")


# ----------------------------------------------------------------------- the state machine


def _manifest() -> SessionManifest:
    import datetime as dt

    from mdsessions import PhaseEntry

    now = dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc)
    return SessionManifest(
        project_id="p",
        session_id="s",
        created=now,
        updated=now,
        phases=[PhaseEntry(number=1, slug="a", name="A"), PhaseEntry(number=2, slug="b", name="B")],
    )


def test_pause_resume_end_are_marks_over_the_phase_table() -> None:
    import datetime as dt

    now = dt.datetime(2026, 12, 2, 10, tzinfo=dt.timezone.utc)
    m = _manifest()
    state.derive_status(m)
    assert (m.status, m.current_phase) == (SessionStatus.CREATED, 1)
    state.pause(m, now=now)
    assert (m.status, m.current_phase, m.paused) == (SessionStatus.PAUSED, 1, now)
    with pytest.raises(ValueError, match="already paused"):
        state.pause(m, now=now)
    again = m.model_copy(deep=True)
    state.derive_status(again)  # what verify recomputes
    assert (again.status, again.current_phase) == (m.status, m.current_phase)
    state.resume(m)
    assert (m.status, m.paused) == (SessionStatus.CREATED, None)
    with pytest.raises(ValueError, match="not paused"):
        state.resume(m)
    state.end(m, now=now, reason="no budget")
    assert (m.status, m.current_phase, m.ended, m.end_reason) == (
        SessionStatus.CANCELLED,
        None,
        now,
        "no budget",
    )
    assert state.is_closed(m)
    with pytest.raises(ValueError, match="ended already"):
        state.end(m, now=now)
    with pytest.raises(ValueError, match="cancelled"):
        state.pause(m, now=now)


def test_a_session_ended_after_its_last_phase_stays_completed() -> None:
    import datetime as dt

    from mdsessions import PhaseStatus

    m = _manifest()
    for row in m.phases:
        row.status = PhaseStatus.COMPLETED
    state.derive_status(m)
    state.end(m, now=dt.datetime(2026, 12, 2, tzinfo=dt.timezone.utc))
    assert m.status is SessionStatus.COMPLETED and m.ended is not None


def test_manifests_that_use_none_of_it_are_byte_identical(store: Store) -> None:
    """New fields are left out when empty: a new session's manifest is what 0.1 wrote."""
    session = store.create_session(P, S1)
    text = manifest_text(store, P, S1)
    for field in ("paused:", "ended:", "end_reason:", "metadata:"):
        assert f"\n{field}" not in text
    session.pause()
    session.resume()
    resumed = manifest_text(store, P, S1)
    strip = [line for line in text.splitlines() if not line.startswith(("updated:", "- Last"))]
    after = [line for line in resumed.splitlines() if not line.startswith(("updated:", "- Last"))]
    assert strip == after


# ----------------------------------------------------------------------------- lifecycle


def test_pause_resume_end_each_one_commit(two: Store) -> None:
    store = two
    session = store.find_session(f"{P}/{S1}")
    before = commit_count(store.root)
    paused = session.pause()
    assert (paused.status.before, paused.status.after, paused.current_phase) == (
        "created",
        "paused",
        1,
    )
    assert commit_count(store.root) == before + 1
    assert trailers(store.root)["Mdsessions-Kind"] == "pause"
    assert trailers(store.root)["Mdsessions-Session-Status"] == "paused"
    assert subject(store.root) == f"pause({P}/{S1}): paused"
    assert git(store.root, "log", "-1", "--format=%an <%ae>").strip() == PERSON
    assert git(store.root, "show", "--name-only", "--format=", "HEAD").split() == [
        f"projects/{P}/sessions/{S1}/session_manifest.md"
    ]
    text = manifest_text(store, P, S1)
    assert "\nstatus: paused\n" in text and "\npaused: '" in text and "- Paused: " in text
    verify_clean(store)

    resumed = session.resume()
    assert (resumed.status.after, resumed.paused) == ("created", None)
    assert trailers(store.root)["Mdsessions-Kind"] == "resume"
    verify_clean(store)

    ended = session.end(reason="superseded by " + S2)
    assert (ended.status.after, ended.current_phase, ended.end_reason) == (
        "cancelled",
        None,
        f"superseded by {S2}",
    )
    assert trailers(store.root)["Mdsessions-Kind"] == "end"
    assert subject(store.root) == f"end({P}/{S1}): ended: superseded by {S2}"
    text = manifest_text(store, P, S1)
    assert "\nended: '" in text and f"\nend_reason: superseded by {S2}\n" in text
    assert commit_count(store.root) == before + 3
    verify_clean(store)


@pytest.mark.parametrize(
    ("steps", "error", "message"),
    [
        (["resume"], StoreError, f"cannot resume session {P}/{S1}: it is not paused"),
        (["pause", "pause"], StoreError, f"cannot pause session {P}/{S1}: it is already paused"),
        (["end", "end"], StoreError, f"cannot end session {P}/{S1}: it was ended already"),
        (["end", "pause"], StoreError, "it is cancelled; only a running session can be paused"),
        (["end", "resume"], StoreError, "it is not paused (status cancelled)"),
    ],
)
def test_a_refused_transition_changes_nothing(
    two: Store, steps: list[str], error: type[Exception], message: str
) -> None:
    session = two.find_session(f"{P}/{S1}")
    for step in steps[:-1]:
        getattr(session, step)()
    before = snapshot(two.root)
    with pytest.raises(error, match=re.escape(message)):
        getattr(session, steps[-1])()
    assert snapshot(two.root) == before
    verify_clean(two)


def test_a_bad_reason_or_tag_or_metadata_changes_nothing(two: Store) -> None:
    session = two.find_session(S1)
    before = snapshot(two.root)
    with pytest.raises(DocumentError, match="end_reason"):
        session.end(reason="two\nlines")
    with pytest.raises(InvalidArgumentError, match="invalid tag ' x'"):
        session.add_tags([" x"])
    with pytest.raises(DocumentError, match="field 'tags.0'"):
        session.add_tags(["two\nlines"])
    with pytest.raises(InvalidArgumentError, match="no tag given"):
        session.add_tags([])
    with pytest.raises(InvalidArgumentError, match="has no tag 'q3' \\(its tags: none\\)"):
        session.remove_tags(["q3"])
    with pytest.raises(DocumentError, match="metadata"):
        session.set_metadata({"bad\nkey": "v"})
    with pytest.raises(DocumentError, match="finite"):
        session.set_metadata({"x": float("nan")})
    with pytest.raises(InvalidArgumentError, match="nothing to change"):
        session.set_metadata({})
    with pytest.raises(InvalidArgumentError, match="has no metadata key 'team'"):
        session.set_metadata(remove=["team"])
    with pytest.raises(InvalidArgumentError, match="both set and removed"):
        session.set_metadata({"a": "1"}, remove=["a"])
    assert snapshot(two.root) == before


def test_a_cancelled_session_takes_no_more_writes_but_keeps_its_tags(two: Store) -> None:
    session = two.find_session(S1)
    session.end()
    with pytest.raises(StoreError, match="cancelled and takes no more writes"):
        session.save_agent_output(1, "writer", "late")
    session.add_tags(["archive-me"])  # organising old work still works
    assert session.tags().tags == ("archive-me",)
    verify_clean(two)


# --------------------------------------------------------------------- runner and inbox


def test_the_runner_refuses_a_paused_session_and_says_how_to_resume(two: Store) -> None:
    session = two.find_session(S1)
    session.pause()
    runner = Runner(two)
    before = snapshot(two.root)
    with pytest.raises(StoreError) as info:
        runner.run(session)
    assert f"session {P}/{S1} is paused since " in str(info.value)
    assert f"`mdsessions resume {P}/{S1}`" in str(info.value)
    assert snapshot(two.root) == before
    result = invoke(two, "run", f"{P}/{S1}", code=1)
    assert f"resume it with `mdsessions resume {P}/{S1}`" in result.stderr
    session.resume()
    assert runner.run(session).waiting_for_review == 1
    verify_clean(two)


def test_inbox_leaves_paused_sessions_out_unless_asked(two: Store) -> None:
    runner = Runner(two)
    runner.run(f"{P}/{S1}")
    runner.run(f"{P}/{S2}")
    assert [i.session_id for i in two.inbox()] == [S1, S2]
    paused = two.find_session(S1).pause()
    assert paused.status.before == "awaiting_review" and paused.current_phase == 1
    assert [i.session_id for i in two.inbox()] == [S2]
    assert [i.session_id for i in two.inbox(P)] == [S2]
    assert [i.session_id for i in two.inbox(paused=True)] == [S1, S2]
    assert [i["session"] for i in json.loads(invoke(two, "inbox", "--json").stdout)] == [S2]
    text = invoke(two, "inbox")
    assert "1 phase(s) of paused sessions not shown (--paused shows them)" in text.stderr
    assert S2 in text.stdout and S1 not in text.stdout
    shown = json.loads(invoke(two, "inbox", "--paused", "--json").stdout)
    assert [i["session"] for i in shown] == [S1, S2]
    # A reviewer may still decide on a paused session; it stays paused.
    two.find_session(S1).save_feedback(1, action="approved")
    assert two.find_session(S1).status is SessionStatus.PAUSED
    verify_clean(two)
    assert two.find_session(S1).resume().status.after == "in_progress"
    verify_clean(two)


# ------------------------------------------------------------------------ tags, metadata


def test_tags_add_remove_list(two: Store) -> None:
    session = two.find_session(S1)
    before = commit_count(two.root)
    added = session.add_tags(["pilot", "q3", "pilot"])
    assert (added.tags, added.added, added.committed) == (("pilot", "q3"), ("pilot", "q3"), True)
    assert trailers(two.root)["Mdsessions-Kind"] == "tag"
    assert subject(two.root) == f"tag({P}/{S1}): tags +pilot +q3"
    again = session.add_tags(["q3"])
    assert (again.added, again.committed) == ((), False)
    assert commit_count(two.root) == before + 1  # nothing to change: no commit
    removed = session.remove_tags(["pilot"])
    assert (removed.tags, removed.removed) == (("q3",), ("pilot",))
    assert session.tags().tags == ("q3",)
    assert "\ntags:\n- q3\n" in manifest_text(two, P, S1)
    verify_clean(two)


def test_metadata_is_kept_verbatim(store: Store) -> None:
    meta = {"customer": "Acme, Inc.", "budget": "10", "n": 3, "nested": {"a": [1, "two", None]}}
    session = store.create_session(P, S1, metadata=meta)
    assert session.metadata().metadata == meta
    assert list(session.manifest().metadata) == list(meta)
    verify_clean(store)
    result = session.set_metadata({"budget": "250", "owner": "ann"}, remove=["n"])
    assert result.changed == ("budget", "owner", "n") and result.committed
    assert trailers(store.root)["Mdsessions-Kind"] == "metadata"
    assert session.metadata().metadata == {
        "customer": "Acme, Inc.",
        "budget": "250",
        "nested": {"a": [1, "two", None]},
        "owner": "ann",
    }
    same = session.set_metadata({"owner": "ann"})
    assert (same.changed, same.committed) == ((), False)
    # An independent parser reads the same mapping.
    import frontmatter

    post = frontmatter.load(str(store.root / session.manifest_rel))
    assert post.metadata["metadata"] == session.metadata().metadata
    verify_clean(store)


# -------------------------------------------------------------------------------- names


def test_names_resolve_prefixes_latest_and_bare_ids(two: Store) -> None:
    def ref(name: str) -> str:
        return two.find_session(name).ref

    assert ref(f"{P}/{S1}") == f"{P}/{S1}"
    assert ref(S1) == f"{P}/{S1}"
    assert ref("session-20261202") == f"{P}/{S1}"
    assert ref(f"{P}/session-20261203") == f"{P}/{S2}"
    assert ref("dem/session-20261203") == f"{P}/{S2}"  # a unique project prefix
    assert ref(f"{P}/latest") == f"{P}/{S2}"
    assert ref("other/latest") == "other/s1"
    assert ref("s1") == "other/s1"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "session-2026",
            "'session-2026' matches 2 sessions: demo/session-20261202-211204-b43c, "
            "demo/session-20261203-090000-77aa; type more of the id or write PROJECT/SESSION",
        ),
        (f"{P}/session", f"'{P}/session' matches 2 sessions: "),
        ("sesion-20261202-211204-b43c", "close matches: demo/session-20261202-211204-b43c"),
        (f"{P}/sesion-20261203", "(expected projects/demo/sessions/sesion-20261203/"),
        ("nope", "no session 'nope' in "),
        ("dmeo/latest", "; close matches: demo/"),
    ],
)
def test_unknown_or_ambiguous_names_list_close_matches(two: Store, name: str, message: str) -> None:
    before = snapshot(two.root)
    with pytest.raises(SessionNotFoundError) as info:
        two.find_session(name)
    assert message in str(info.value)
    assert snapshot(two.root) == before


def test_an_archived_session_names_unarchive(two: Store) -> None:
    (two.root / "projects" / P / "archive").mkdir()
    (two.root / "projects" / P / "sessions" / S1).rename(two.root / "projects" / P / "archive" / S1)
    with pytest.raises(SessionNotFoundError, match=f"run `mdsessions unarchive {P}/{S1}`"):
        two.find_session(S1)
    with pytest.raises(SessionNotFoundError, match=f"{P}/{S1} is archived"):
        two.find_session(f"{P}/session-20261202")


def test_names_refuse_invalid_ids(two: Store) -> None:
    with pytest.raises(InvalidIdentifierError):
        two.find_session("../x")
    with pytest.raises(InvalidIdentifierError):
        two.find_session(f"{P}/a/b")


def test_session_names_for_completion(two: Store) -> None:
    assert two.session_names("") == ["demo/", "other/", "s1", S1, S2]
    assert two.session_names("d") == ["demo/"]
    assert two.session_names("demo/") == [f"{P}/latest", f"{P}/{S1}", f"{P}/{S2}"]
    assert two.session_names("demo/session-20261203") == [f"{P}/{S2}"]
    assert two.session_names("nope/") == []


def test_shell_completion_as_a_real_process(two: Store) -> None:
    """bash completion of ``mdsessions status demo/`` through click's protocol."""
    env = {
        **os.environ,
        "_MDSESSIONS_COMPLETE": "bash_complete",
        "COMP_WORDS": "mdsessions status demo/",
        "COMP_CWORD": "2",
        "MDSESSIONS_STORE": str(two.root),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", "from mdsessions.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.stdout.splitlines() == [
        "plain,demo/latest",
        f"plain,demo/{S1}",
        f"plain,demo/{S2}",
    ], proc.stderr
    env["COMP_WORDS"] = "mdsessions pa"
    env["COMP_CWORD"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", "from mdsessions.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.stdout.splitlines() == ["plain,pause"]


# ----------------------------------------------------------------------------------- CLI


def test_cli_lifecycle_tags_and_meta(two: Store) -> None:
    store = two
    out = invoke(store, "new", P, "s3", "--meta", "team=growth", "--meta", "budget=10=x")
    assert out.stdout == f"{P}/s3\n"
    assert store.find_session("s3").metadata().metadata == {"team": "growth", "budget": "10=x"}
    verify_clean(store)

    out = invoke(store, "pause", f"{P}/s3")
    assert out.stdout.startswith(f"{P}/s3: paused (was created), phase 1\n")
    assert f"resume it with: mdsessions resume {P}/s3" in out.stdout
    verify_clean(store)
    doc = json.loads(invoke(store, "resume", "s3", "--json").stdout)
    assert (doc["action"], doc["status"], doc["paused"]) == (
        "resume",
        {"before": "paused", "after": "created"},
        None,
    )
    verify_clean(store)
    doc = json.loads(invoke(store, "end", "s3", "--reason", "dup", "--json").stdout)
    assert (doc["status"]["after"], doc["end_reason"]) == ("cancelled", "dup")
    assert doc["ended"].endswith("Z")
    verify_clean(store)

    assert invoke(store, "tag", "add", "s3", "pilot", "q3").stdout == "pilot\nq3\n"
    verify_clean(store)
    assert invoke(store, "tag", "remove", "s3", "q3").stdout == "pilot\n"
    doc = json.loads(invoke(store, "tag", "list", "s3", "--json").stdout)
    assert doc["tags"] == ["pilot"] and doc["committed"] is False
    verify_clean(store)

    assert invoke(store, "meta", "s3").stdout == "team: growth\nbudget: 10=x\n"
    doc = json.loads(invoke(store, "meta", "s3", "owner=ann", "--unset", "team", "--json").stdout)
    assert doc["metadata"] == {"budget": "10=x", "owner": "ann"}
    assert doc["changed"] == ["owner", "team"]
    assert trailers(store.root)["Mdsessions-Kind"] == "metadata"
    verify_clean(store)


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (["pause", "nope"], 1, "Error: no session 'nope' in "),
        (["resume", S1], 1, f"Error: cannot resume session {P}/{S1}: it is not paused"),
        (["tag", "remove", S1, "x"], 1, f"Error: session {P}/{S1} has no tag 'x'"),
        (["tag", "add", S1], 2, "Missing argument 'TAG...'"),
        (["meta", S1, "novalue"], 2, "expected KEY=VALUE, got 'novalue'"),
        (["new", P, "s9", "--meta", "=v"], 2, "expected KEY=VALUE, got '=v'"),
        (["end", S1, "--reason", "a\nb"], 1, "field 'end_reason'"),
        (["meta", S1, "--unset", "x"], 1, f"session {P}/{S1} has no metadata key 'x'"),
    ],
)
def test_cli_bad_input_changes_nothing(two: Store, args: list[str], code: int, stderr: str) -> None:
    before = snapshot(two.root)
    result = invoke(two, *args, code=code)
    assert stderr in result.stderr
    assert snapshot(two.root) == before


def test_every_new_command_has_help_with_an_example(two: Store) -> None:
    for args in (
        ["pause"],
        ["resume"],
        ["end"],
        ["tag"],
        ["tag", "add"],
        ["tag", "remove"],
        ["tag", "list"],
        ["meta"],
    ):
        text = invoke(two, *args, "--help").stdout
        assert "Example:" in text, args


def test_list_status_accepts_the_new_statuses(two: Store) -> None:
    two.find_session(S1).pause()
    two.find_session(S2).end()
    assert [e.session_id for e in two.list_sessions() if e.status is SessionStatus.PAUSED] == [S1]
    rows = json.loads(invoke(two, "list", "--status", "cancelled", "--json").stdout)
    assert [r["session"] for r in rows] == [S2]


def test_a_fork_of_a_cancelled_session_starts_afresh(two: Store) -> None:
    session = two.find_session(S1)
    session.pause()
    session.end(reason="wrong direction")
    forked = history.fork(session, "s9")
    manifest = forked.session.manifest()
    assert (manifest.status, manifest.paused, manifest.ended, manifest.end_reason) == (
        SessionStatus.CREATED,
        None,
        None,
        None,
    )
    assert two.find_session(S1).status is SessionStatus.CANCELLED
    verify_clean(two)


TRICKY = {
    "yes": "yes",
    "null": "null",
    "num": "1e3",
    "colon": "a: b",
    "hash": "# not a comment",
    "empty": "",
    "spaces": "  padded  ",
    "quote": 'it\'s "quoted"',
    "unicode": "Zürich ✓",
    "true": True,
    "int": -7,
    "float": 2.5,
    "none": None,
    "list": ["a", "", "1"],
    "map": {"k": {"deep": "v"}},
    "multi": "line one\nline two\n",
}


def test_tricky_metadata_reads_back_through_every_reader(store: Store) -> None:
    """The strict reader, the listing's fast reader and python-frontmatter agree."""
    import frontmatter

    session = store.create_session(P, S1, metadata=TRICKY)
    assert session.manifest().metadata == TRICKY
    (summary,) = store.list_sessions()
    assert summary.frontmatter()["metadata"] == TRICKY
    post = frontmatter.load(str(store.root / session.manifest_rel))
    assert post.metadata["metadata"] == TRICKY
    verify_clean(store)


_KEYS = st.text(min_size=1, max_size=12).filter(lambda k: k.strip() and k.isprintable())
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.dictionaries(_KEYS, _VALUES, max_size=5))
def test_metadata_round_trips_verbatim(metadata: dict[str, object]) -> None:
    """``loads(dumps(manifest))`` keeps any JSON-like metadata, and the fast reader agrees."""
    from mdsessions import dumps, loads
    from mdsessions.documents.frontmatter import split
    from mdsessions.documents.yaml import fast_load

    try:
        manifest = _manifest()
        manifest.metadata = metadata
    except ValueError:
        return  # a key or text the manifest refuses (a line break): refused, not mangled
    text = dumps(manifest)
    back = loads(text, path=None)
    assert back.metadata == metadata
    fast = fast_load(split(text)[0])
    if fast is not None:
        assert fast.get("metadata", {}) == metadata


def test_a_session_paused_while_it_runs_stops_before_its_next_phase(
    two: Store, workflow: Path
) -> None:
    """Someone pauses the session while phase 1's agent runs: the run stops, paused."""

    def writer(context: object) -> str:
        Store.open(two.root).find_session(S1).pause()  # another person, another Store
        return "# Draft"

    result = Runner(two, agents={"writer": writer}).run(f"{P}/{S1}")
    assert result.status is SessionStatus.PAUSED
    assert result.phases_run == (1,)
    session = two.find_session(S1)
    assert session.checkpoint(1) is not None and session.checkpoint(1).status.value == "completed"
    assert session.manifest().current_phase == 1  # awaiting its review once resumed
    verify_clean(two)
    assert session.resume().status.after == "awaiting_review"
    verify_clean(two)
