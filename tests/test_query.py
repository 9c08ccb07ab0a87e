"""Search, stats and ``list --tag`` (issue 14 items 2-4), on real stores with real git."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mdsessions import (
    SessionFilter,
    Store,
    StoreError,
    find_sessions,
    history,
    search_sessions,
    session_stats,
)
from mdsessions.cli import cli
from tests.helpers import git, snapshot

UTC = _dt.timezone.utc


def _run(store: Store, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--store", str(store.root), *args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    if code == 0:
        assert "Traceback" not in result.stderr
    return result.stdout if code == 0 else result.stderr


def _populate(store: Store) -> None:
    """Three sessions: one ran phase 1 with two agents and was approved, one awaits review."""
    a = store.create_session("demo", "s1", tags=["pilot"])
    store.create_session("demo", "s2", tags=["pilot", "beta"], mode="full")
    c = store.create_session("other", "s3")
    a.save_checkpoint(
        1,
        status="completed",
        duration=10.0,
        outputs=[
            {
                "agent": "concept_expansion",
                "content": "The pricing model is freemium.\nSecond line\n",
                "input_tokens": 1000,
                "output_tokens": 500,
                "cost": 0.01,
                "model": "gpt-4o",
                "duration": 4.0,
            },
            {
                "agent": "critic",
                "content": "No pricing here? yes pricing.\n",
                "input_tokens": 200,
                "output_tokens": 100,
                "cost": 0.002,
                "model": "claude-3",
                "duration": 6.0,
            },
        ],
    )
    a.save_feedback(1, action="approved")
    c.save_checkpoint(
        1,
        status="completed",
        duration=30.0,
        outputs=[{"agent": "concept_expansion", "content": "Other idea\n", "model": "gpt-4o",
                  "input_tokens": 10, "output_tokens": 5, "cost": 0.001, "duration": 30.0}],
    )  # fmt: skip


def _refs(summaries: list) -> list[str]:
    return [s.ref for s in summaries]


# ---------------------------------------------------------------------------- the manifest


def test_phase_rows_keep_each_agent_model_and_usage(store: Store) -> None:
    _populate(store)
    manifest = store.session("demo", "s1").manifest()
    row = manifest.phase(1)
    assert [(a.name, a.model, a.input_tokens, a.output_tokens, a.cost, a.duration)
            for a in row.agents] == [
        ("concept_expansion", "gpt-4o", 1000, 500, 0.01, 4.0),
        ("critic", "claude-3", 200, 100, 0.002, 6.0),
    ]  # fmt: skip
    checkpoint = store.session("demo", "s1").checkpoint(1)
    assert checkpoint is not None
    assert [r.model for r in checkpoint.agents] == ["gpt-4o", "claude-3"]
    # Sessions that never ran an agent keep their manifests without the new keys.
    fresh = (store.root / "projects/demo/sessions/s2/session_manifest.md").read_text()
    assert "agents:" not in fresh and "model:" not in fresh
    assert not history.verify(store).problems


# ---------------------------------------------------------------------------- filters


def test_filters_over_every_session(store: Store) -> None:
    _populate(store)
    assert _refs(find_sessions(store)) == ["demo/s1", "demo/s2", "other/s3"]
    assert _refs(find_sessions(store, SessionFilter(tags=("pilot",)))) == ["demo/s1", "demo/s2"]
    assert _refs(find_sessions(store, SessionFilter(tags=("pilot", "beta")))) == ["demo/s2"]
    assert _refs(find_sessions(store, SessionFilter(project="other"))) == ["other/s3"]
    assert _refs(find_sessions(store, SessionFilter(mode="full"))) == ["demo/s2"]
    assert _refs(find_sessions(store, SessionFilter(model="gpt-4o"))) == ["demo/s1", "other/s3"]
    assert _refs(find_sessions(store, SessionFilter(model="claude-3"))) == ["demo/s1"]
    assert _refs(find_sessions(store, SessionFilter(agent="critic"))) == ["demo/s1"]
    assert _refs(find_sessions(store, SessionFilter(phase="1"))) == ["demo/s1", "other/s3"]
    assert _refs(find_sessions(store, SessionFilter(status=("awaiting_review",)))) == ["other/s3"]
    assert _refs(find_sessions(store, SessionFilter(workflow="nope"))) == []
    future = _dt.datetime.now(UTC) + _dt.timedelta(days=1)
    assert _refs(find_sessions(store, SessionFilter(since=future))) == []
    assert len(find_sessions(store, SessionFilter(until=future))) == 3


def test_metadata_filter(store: Store) -> None:
    store.create_session("demo", "s1", metadata={"team": "x", "budget": 250})
    store.create_session("demo", "s2", metadata={"team": "y"})
    store.create_session("demo", "s3")
    assert _refs(find_sessions(store, SessionFilter(metadata=(("team", "x"),)))) == ["demo/s1"]
    assert _refs(find_sessions(store, SessionFilter(metadata=(("team", "z"),)))) == []
    store.session("demo", "s2").set_metadata({"team": "x"})
    found = find_sessions(store, SessionFilter(metadata=(("team", "x"),)))
    assert _refs(found) == ["demo/s1", "demo/s2"]


def test_stats_by_phase_lists_phases_in_their_order(store: Store) -> None:
    session = store.create_session("demo", "s1", mode="full")
    for number in (1, 2, 3, 4, 5, 6):
        session.save_checkpoint(number, status="completed")
    keys = [g.key for g in session_stats(store, by="phase").groups]
    assert keys == [session.phase_entry(n).name for n in (1, 2, 3, 4, 5, 6)]
    assert keys != sorted(keys)  # "Business Planning" (5) comes after "Product Strategy" (4)


def test_filters_see_an_unrecorded_edit_and_survive_a_new_process(store: Store) -> None:
    _populate(store)
    assert _refs(find_sessions(store, SessionFilter(tags=("late",)))) == []
    path = store.root / "projects/other/sessions/s3/session_manifest.md"
    text = path.read_text()
    assert "tags: []" in text
    path.write_text(text.replace("tags: []", "tags:\n- late"))  # a person's editor, in place
    assert _refs(find_sessions(store, SessionFilter(tags=("late",)))) == ["other/s3"]
    # A new process reads the snapshot the index wrote (facts included) and checks it.
    code = (
        "import sys; from mdsessions import Store, SessionFilter, find_sessions;"
        "st = Store.open(sys.argv[1]);"
        "print([s.ref for s in find_sessions(st, SessionFilter(model='claude-3'))],"
        " [s.ref for s in find_sessions(st, SessionFilter(tags=('late',)))])"
    )
    for _ in range(2):  # the second reads the snapshot the first wrote
        out = subprocess.run(
            [sys.executable, "-c", code, str(store.root)], capture_output=True, text=True,
            check=True, cwd=Path(__file__).resolve().parents[1],
        ).stdout  # fmt: skip
        assert out.strip() == "['demo/s1'] ['other/s3']"
    assert store.list_sessions()[2].facts.tags == ("late",)
    facts = store.list_sessions()[0].facts
    assert (facts.input_tokens, facts.output_tokens, facts.cost) == (1200, 600, 0.012)
    assert [(p.number, p.review, [a.model for a in p.agents]) for p in facts.phases] == [
        (1, "approved", ["gpt-4o", "claude-3"])
    ]


# ---------------------------------------------------------------------------- text search


def test_text_search_is_git_grep(store: Store) -> None:
    _populate(store)
    result = search_sessions(store, "pricing")
    lines = [f"{m.path}:{m.line}:{m.text}" for m in result.matches]
    expected = git(store.root, "grep", "-n", "pricing", "--", "projects/").splitlines()
    assert lines == expected and len(lines) == 2
    assert [(h.project, h.session) for h in result.sessions] == [("demo", "s1")]
    lines_only = search_sessions(store, "pricing", hits=False)
    assert lines_only.sessions == () and lines_only.matches == result.matches
    assert search_sessions(store, "PRICING").matches == ()
    assert len(search_sessions(store, "PRICING", ignore_case=True).matches) == 2
    assert len(search_sessions(store, "pric(ing|e)", regex=True).matches) == 2
    # Filters limit the lines to the sessions that pass them.
    assert search_sessions(store, "pricing", filters=SessionFilter(project="other")).matches == ()
    hits = search_sessions(store, "Other idea", filters=SessionFilter(model="gpt-4o"))
    assert {m.session for m in hits.matches} == {"s3"}
    assert (
        search_sessions(store, "Other idea", filters=SessionFilter(tags=("pilot",))).matches == ()
    )


def test_text_search_at_a_commit(store: Store) -> None:
    _populate(store)
    before = git(store.root, "rev-parse", "HEAD").strip()
    session = store.session("other", "s3")
    session.save_agent_output(1, "concept_expansion", "A rewritten idea\n")
    assert search_sessions(store, "Other idea").matches == ()
    old = search_sessions(store, "Other idea", at=before)
    assert old.at == before
    assert [(m.session, m.text) for m in old.matches] == [("s3", "Other idea")]
    state = snapshot(store.root)
    with pytest.raises(StoreError, match="--at 'no-such-commit'"):
        search_sessions(store, "idea", at="no-such-commit")
    assert snapshot(store.root) == state


# ---------------------------------------------------------------------------- stats


def test_stats_groups_review_and_activity(store: Store) -> None:
    _populate(store)
    whole = session_stats(store)
    assert whole.sessions == 3
    assert whole.by_status == {"awaiting_review": 1, "created": 1, "in_progress": 1}
    (group,) = whole.groups
    assert (group.key, group.input_tokens, group.output_tokens, group.cost) == (
        "all", 1210, 605, 0.013
    )  # fmt: skip
    assert (group.duration_sum, group.duration_median, group.duration_p95) == (40.0, 20.0, 30.0)
    by_model = {g.key: g for g in session_stats(store, by="model").groups}
    assert set(by_model) == {"gpt-4o", "claude-3"}
    assert (by_model["gpt-4o"].runs, by_model["gpt-4o"].sessions) == (2, 2)
    assert by_model["gpt-4o"].input_tokens == 1010
    assert by_model["gpt-4o"].duration_p95 == 30.0
    by_agent = {g.key: g.tokens for g in session_stats(store, by="agent").groups}
    assert by_agent == {"concept_expansion": 1515, "critic": 300}
    phases = session_stats(store, by="phase").groups
    assert [(g.key, g.runs) for g in phases] == [(phases[0].key, 2)]
    assert {g.key for g in session_stats(store, by="status").groups} == set(whole.by_status)
    assert len(session_stats(store, by="day").groups) >= 1
    review = whole.review
    assert (review.approvals, review.revisions, review.rejections, review.pending) == (1, 0, 0, 1)
    assert review.waited_median is not None and review.waited_median >= 0
    kinds = {}
    for row in whole.activity:
        kinds[row.kind] = kinds.get(row.kind, 0) + row.commits
    assert sum(kinds.values()) == int(git(store.root, "rev-list", "--count", "HEAD"))
    assert kinds["session"] == 3 and kinds["user_feedback"] == 1
    one = session_stats(store, session="demo/s1", by="agent")
    assert one.scope == "session demo/s1" and one.sessions == 1
    assert {row.kind for row in one.activity} == {"session", "checkpoint", "user_feedback"}
    project = session_stats(store, filters=SessionFilter(project="other"))
    assert project.scope == "project other" and project.sessions == 1
    assert project.review.approvals == 0
    with pytest.raises(StoreError, match="--by 'size'"):
        session_stats(store, by="size")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- the CLI


def test_cli_search_stats_and_list_tag(store: Store) -> None:
    _populate(store)
    state = snapshot(store.root)
    out = _run(store, "search", "pricing")
    assert (
        out.splitlines() == git(store.root, "grep", "-n", "pricing", "--", "projects/").splitlines()
    )
    listed = _run(store, "search", "--tag", "pilot", "--status", "created")
    assert "s2" in listed and "s1" not in listed
    data = json.loads(_run(store, "search", "pricing", "--project", "demo", "--json"))
    assert [m["line"] for m in data["matches"]] and data["sessions"][0]["session"] == "s1"
    assert "demo" in _run(store, "list", "--tag", "beta") and "s1" not in _run(
        store, "list", "--tag", "beta"
    )
    assert json.loads(_run(store, "list", "--tag", "pilot", "--json"))[1]["session"] == "s2"
    table = _run(store, "stats", "--all", "--by", "model")
    assert "gpt-4o" in table and "claude-3" in table and "review:" in table
    rows = list(csv.reader(io.StringIO(_run(store, "stats", "--by", "agent", "--csv"))))
    assert rows[0][:3] == ["key", "sessions", "runs"] and {r[0] for r in rows[1:]} == {
        "concept_expansion", "critic"
    }  # fmt: skip
    stats = json.loads(_run(store, "stats", "demo/s1", "--json"))
    assert stats["scope"] == "session demo/s1" and stats["review"]["approvals"] == 1
    assert "--by" in _run(store, "stats", "--by", "size", code=2)
    assert "--since" in _run(store, "search", "--since", "yesterday", code=2)
    assert "--meta" in _run(store, "search", "--meta", "novalue", code=2)
    assert "--status" in _run(store, "stats", "--status", "done", code=2)
    assert "Error:" in _run(store, "search", "x", "--at", "nope", code=1)
    assert "Error:" in _run(store, "stats", "demo/none", code=1)
    assert snapshot(store.root) == state  # read commands change nothing
    assert not history.verify(store).problems


def test_a_snapshot_with_bad_facts_is_rebuilt(store: Store) -> None:
    from mdsessions.cache.sessions import _pack, _unpack

    _populate(store)
    assert _refs(find_sessions(store, SessionFilter(agent="critic"))) == ["demo/s1"]
    path = store.session_index.snapshot_path
    snap, columns = _unpack(path.read_bytes())
    assert len(snap["facts"]) == 3 and columns["facts"] == [0, 1, 2]
    columns["facts"][0] = 99  # a number past the table: not a snapshot this version wrote
    path.write_bytes(_pack(snap, columns))
    with Store.open(store.root) as again:
        assert _refs(find_sessions(again, SessionFilter(agent="critic"))) == ["demo/s1"]
        assert _refs(find_sessions(again, SessionFilter(tags=("beta",)))) == ["demo/s2"]
