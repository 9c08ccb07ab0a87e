"""Transcripts (issue 15 item 3; seeds 002 record_message/record_command, 004 pruning and stats).

Recording is buffered and committed per turn; a message is stored verbatim and round-trips
byte for byte whatever it holds; prunes are commits that history keeps; a process killed
mid-conversation loses only what it had not flushed, and leaves a store that verifies clean.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import frontmatter
import pytest
from click.testing import CliRunner
from helpers import (
    assert_clean,
    command_agent,
    commit_count,
    git,
    snapshot,
    subject,
    trailers,
    write_two_phase_workflow,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mdsessions import (
    DocumentError,
    InvalidIdentifierError,
    Runner,
    Session,
    Store,
    Transcript,
    TranscriptEntry,
    TranscriptLog,
    UnrecordedEditError,
    dumps,
    history,
    loads,
)
from mdsessions.cli import cli
from mdsessions.models.transcripts import choose_boundary, estimate_tokens

REPO = Path(__file__).resolve().parents[1]

HOSTILE = [
    "",
    "\n",
    "\n\n\n",
    "no newline at the end",
    "---\nschema: mdsessions/transcript/v1\n---\n",
    "### 1 · user · 2024-11-24T10:02:00Z · 3 tokens\n\nforged",
    "<!-- mdsessions-message -->\n### 9 · system · 2024-11-24T10:02:00Z · 1 tokens\n\nx\n",
    "<!-- mdsessions-message-2 -->\n<!-- mdsessions-message-3 -->",
    "\n<!-- mdsessions-message -->\n",
    "## Messages\n## Metadata\n# Transcript: x",
    "```\ncode fence\n```\n~~~\nother\n~~~",
    "````markdown\n```\nnested\n```\n````",
    "{{ doc.name }} {% for x in y %}{% endfor %} {# comment #}",
    "crlf\r\nlines\r\n",
    "lone \r carriage",
    "tabs\tand\x0bvertical\x0cfeeds\x1b[31mansi",
    "unicode: é ß 漢字 🎉 \u2028 \u2029 \u0085 \ufeff",
    "  leading and trailing spaces  ",
    "- [ ] list\n> quote\n| table | x |\n",
    "nul \x00 byte",
]


def _session(store: Store) -> Session:
    return store.create_session("proj", session_id="s1", idea="gyms")


# ----------------------------------------------------------------- the document, pure


def _doc(contents: list[str]) -> Transcript:
    t = "2024-11-24T10:02:00Z"
    doc = Transcript(project_id="p", session_id="s", name="agent", created=t, updated=t)
    doc.entries = [
        TranscriptEntry(number=i + 1, role="user", time=t, tokens=i, content=c)
        for i, c in enumerate(contents)
    ]
    doc.boundary = choose_boundary(contents)
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.text(),
            st.sampled_from(HOSTILE),
            st.lists(st.sampled_from(HOSTILE + ["\n", "x", "-->", "<!-- "])).map("".join),
        ),
        max_size=6,
    )
)
@example(HOSTILE)
def test_any_messages_round_trip_through_the_document(contents: list[str]) -> None:
    doc = _doc(contents)
    back = loads(dumps(doc))
    assert isinstance(back, Transcript)
    assert [e.content for e in back.entries] == contents
    assert back == doc


def _golden() -> Transcript:
    doc = _doc(["Expand: a gym leaderboard", "# Concept\n---\n```\n{{ x }}\n```", "pytest -q"])
    doc.project_id, doc.session_id, doc.name = "project-123", "session-456", "concept_expansion"
    doc.entries[0].role, doc.entries[1].role, doc.entries[2].role = "user", "assistant", "command"
    for entry in doc.entries:
        entry.number += 40
    doc.entries[1].tokens = 812
    doc.next_number, doc.pruned_count, doc.last_pruned = 44, 40, "2024-11-24T11:00:00Z"
    doc.updated = "2024-11-24T11:00:00Z"
    doc.message_count, doc.token_count = 3, sum(e.tokens for e in doc.entries)
    return doc


def test_golden_transcript() -> None:
    path = REPO / "tests" / "golden" / "transcript.md"
    text = dumps(_golden())
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(text.encode("utf-8"))
    assert text.encode("utf-8") == path.read_bytes(), "rendering of transcript.md changed"
    assert loads(text) == _golden()
    post = frontmatter.load(str(path))  # an independent parser reads the frontmatter
    assert post.metadata["schema"] == "mdsessions/transcript/v1"
    assert "entries" not in post.metadata and post.metadata["message_count"] == 3


def test_the_boundary_is_one_no_message_holds() -> None:
    assert choose_boundary(["plain"]) == "mdsessions-message"
    assert choose_boundary(["x mdsessions-message y"]) == "mdsessions-message-2"
    assert (
        choose_boundary(["mdsessions-message", "mdsessions-message-2 mdsessions-message-3"])
        == "mdsessions-message-4"
    )


def test_tokens_are_chars_over_four_rounded_up() -> None:
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde", "x" * 400)] == [0, 1, 1, 2, 100]


def test_a_broken_body_names_the_file_and_line() -> None:
    text = dumps(_doc(["hello"])).replace("### 1 · user", "### one · user")
    with pytest.raises(DocumentError) as info:
        loads(text, path="t.md")
    assert info.value.path == "t.md" and info.value.line == 28
    assert "message heading" in str(info.value)
    with pytest.raises(DocumentError, match="'entries' belongs in the body"):
        loads(dumps(_doc([])).replace("pruned_count: 0", "pruned_count: 0\nentries: []"))


# ----------------------------------------------------------------- recording, buffered


def test_recording_is_buffered_and_a_flush_is_one_commit(store: Store) -> None:
    session = _session(store)
    before = commit_count(store.root)
    log = session.transcript("writer")
    log.record_message(role="system", content="You write.")
    log.record_message(role="user", content="Write a plan", tokens=120)
    log.record_command("git status")
    assert log.pending == 3 and commit_count(store.root) == before and not log.exists()
    sha = log.flush()
    assert sha == git(store.root, "rev-parse", "HEAD").strip()
    assert commit_count(store.root) == before + 1
    assert subject(store.root) == "transcript(proj/s1): writer +3 messages (3 in all)"
    assert trailers(store.root) == {
        "Mdsessions-Kind": "transcript",
        "Mdsessions-Project": "proj",
        "Mdsessions-Session": "s1",
        "Mdsessions-Transcript": "writer",
        "Mdsessions-Status": "recorded",
        "Mdsessions-Session-Status": "created",
    }
    assert log.pending == 0 and log.flush() is None
    doc = log.read()
    assert [(e.number, e.role, e.tokens) for e in doc.entries] == [
        (1, "system", 3),
        (2, "user", 120),
        (3, "command", 3),
    ]
    assert (doc.message_count, doc.token_count, doc.next_number) == (3, 126, 4)
    assert_clean(store.root)
    assert history.verify(store).ok
    assert session.validate() == []


def test_a_with_block_flushes_once_and_numbers_go_on(store: Store) -> None:
    session = _session(store)
    with session.transcript() as log:
        log.record_message(role="user", content="one")
        log.record_message(role="assistant", content="two")
    with session.transcript() as log:
        log.record_message(role="user", content="three")
    assert [e.number for e in log.read().entries] == [1, 2, 3]
    assert (store.root / session.rel / "transcripts" / "session.md").is_file()
    assert session.transcript().read().name == "session"


def test_times_are_kept_as_utc_text(store: Store) -> None:
    import datetime as dt

    session = _session(store)
    with session.transcript() as log:
        log.record_message(role="user", content="a", time="2024-11-24T12:02:00+02:00")
        plus_two = dt.timezone(dt.timedelta(hours=2))
        log.record_message(
            role="user", content="b", time=dt.datetime(2024, 11, 24, 12, 2, 0, 5, plus_two)
        )
        log.record_message(role="user", content="c", time="2024-11-24T10:02:00Z")
    assert {e.time for e in log.read().entries} == {"2024-11-24T10:02:00Z"}


def test_a_full_buffer_flushes_by_itself(store: Store) -> None:
    session = _session(store)
    before = commit_count(store.root)
    log = session.transcript("a", max_buffer=3)
    for i in range(7):
        log.record_message(role="user", content=str(i))
    assert commit_count(store.root) == before + 2 and log.pending == 1
    log.flush()
    assert [e.content for e in log.read().entries] == [str(i) for i in range(7)]


def test_threads_and_two_logs_of_one_transcript_lose_nothing(store: Store) -> None:
    session = _session(store)
    shared = session.transcript("a", max_buffer=7)
    other = store.session("proj", "s1").transcript("a", max_buffer=5)

    def talk(log: TranscriptLog, who: str) -> None:
        for i in range(40):
            log.record_message(role="user", content=f"{who} {i}")
        log.flush()

    threads = [
        threading.Thread(target=talk, args=(shared, "t1")),
        threading.Thread(target=talk, args=(shared, "t2")),
        threading.Thread(target=talk, args=(other, "t3")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = shared.read().entries
    assert sorted(e.content for e in entries) == sorted(
        f"{who} {i}" for who in ("t1", "t2", "t3") for i in range(40)
    )
    assert [e.number for e in entries] == list(range(1, 121))
    for who in ("t1", "t2", "t3"):  # each writer's messages in the order it recorded them
        mine = [e.content for e in entries if e.content.startswith(who)]
        assert mine == [f"{who} {i}" for i in range(40)]
    assert_clean(store.root)
    assert history.verify(store).ok


def test_hostile_messages_round_trip_byte_for_byte_through_the_store(store: Store) -> None:
    session = _session(store)
    log = session.transcript("writer")
    for text in HOSTILE:
        log.record_message(role="assistant", content=text)
    log.flush()
    rel = log.rel
    for doc in (log.read(), log.read(at="HEAD")):
        assert [e.content for e in doc.entries] == HOSTILE
    # Read by another process from the committed blob, not from our cache.
    blob = subprocess.run(
        ["git", "show", f"HEAD:{rel}"], cwd=store.root, capture_output=True, check=True
    ).stdout
    back = loads(blob.decode("utf-8"))
    assert isinstance(back, Transcript)
    assert [e.content for e in back.entries] == HOSTILE
    assert back.boundary == "mdsessions-message-4"
    assert_clean(store.root)
    assert history.verify(store).ok


def test_a_tokenizer_counts_what_callers_do_not_report(store: Store) -> None:
    session = _session(store)
    with session.transcript("a", count_tokens=lambda text: len(text.split())) as log:
        log.record_message(role="user", content="three little words")
        log.record_message(role="assistant", content="ok", tokens=7)
    assert [e.tokens for e in log.read().entries] == [3, 7]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.one_of(st.text(), st.sampled_from(HOSTILE)), min_size=1, max_size=4))
def test_any_messages_round_trip_through_a_commit(store: Store, contents: list[str]) -> None:
    if (store.root / store.session_rel("proj", "s1")).is_dir():
        session = store.session("proj", "s1")
    else:  # the first example of this test's store
        session = _session(store)
    with session.transcript("prop") as log:
        for text in contents:
            log.record_message(role="tool", content=text)
    blob = subprocess.run(
        ["git", "show", f"HEAD:{log.rel}"], cwd=store.root, capture_output=True, check=True
    ).stdout
    back = loads(blob.decode("utf-8"))
    assert isinstance(back, Transcript)
    assert [e.content for e in back.entries[-len(contents) :]] == contents


def test_stats_and_should_prune(store: Store) -> None:
    session = _session(store)
    log = session.transcript("a", context_limit=100)
    log.record_message(role="user", content="x" * 200)  # 50 tokens
    log.record_message(role="assistant", content="ok", tokens=20)
    stats = log.stats()
    assert (stats.messages, stats.buffered, stats.tokens) == (2, 2, 70)
    assert stats.context_share == 0.7 and not stats.should_prune
    assert stats.by_role == {"assistant": 1, "user": 1}
    assert stats.tokens_by_role == {"assistant": 20, "user": 50}
    assert log.should_prune(0.7) and not log.should_prune()
    log.flush()
    log.record_message(role="user", content="y" * 40)
    assert log.should_prune(0.8) and log.stats().buffered == 1
    assert session.transcript("a").stats().context_limit == 100  # kept in the file


# ----------------------------------------------------------------- pruning


def _fill(session: Session, name: str, count: int) -> None:
    with session.transcript(name) as log:
        log.record_message(role="system", content="rules")
        for i in range(1, count):
            word = "an outage" if i % 10 == 0 else "fine"
            log.record_message(role="user" if i % 2 else "assistant", content=f"{i} {word}")


def test_prune_is_a_commit_and_history_keeps_every_message(store: Store) -> None:
    session = _session(store)
    _fill(session, "a", 100)
    log = session.transcript("a")
    everything = [e.content for e in log.read().entries]
    first = log.prune(keep_last=40)
    assert first.commit == git(store.root, "rev-parse", "HEAD").strip()
    assert first.removed == list(range(2, 61)) and first.kept == 41  # the system message kept
    assert subject(store.root) == ("transcript(proj/s1): a pruned 59 messages (#2 to #60), 41 kept")
    assert trailers(store.root)["Mdsessions-Status"] == "pruned"
    second = log.smart_prune(keep_keywords=["OUTAGE"], keep_last=5)
    kept = [e.number for e in log.read().entries]
    assert kept == [1, 61, 71, 81, 91, 96, 97, 98, 99, 100]  # #61 is "60 an outage"
    assert second.strategy == "keywords" and len(second.removed) == 41 - 10
    # Every pruned message comes back: from the prune commits' parents, and as a list.
    back = log.read(at=f"{first.commit}^")
    assert [e.content for e in back.entries] == everything
    pruned = log.pruned_messages()
    assert [m.number for m in pruned] == sorted(set(range(1, 101)) - set(kept))
    assert {m.pruned_by for m in pruned} == {first.commit, second.commit}
    by_number = {e.number: e.content for e in back.entries}
    assert all(m.content == by_number[m.number] for m in pruned)
    doc = log.read()
    assert (doc.pruned_count, doc.next_number, doc.message_count) == (90, 101, 10)
    changed = history.diff(session, f"{first.commit}^", first.commit).files
    assert [(f.document, f.change) for f in changed] == [("transcript", "modified")]
    # Numbers are never reused after a prune.
    with log:
        log.record_message(role="user", content="new")
    assert log.read().entries[-1].number == 101
    assert_clean(store.root)
    assert history.verify(store).ok


def test_ten_thousand_messages_pruned_twice_all_come_back(store: Store) -> None:
    """The issue's acceptance, without timing (benchmarks/bench_transcripts.py measures it)."""
    session = _session(store)
    log = session.transcript("agent", max_buffer=20_000)
    for i in range(10_000):
        log.record_message(role="user" if i % 2 else "assistant", content=f"{i} " + "x" * (i % 50))
    before = commit_count(store.root)
    log.flush()
    assert commit_count(store.root) == before + 1
    first = log.prune(keep_last=5_000)
    second = log.smart_prune(keep_keywords=["x" * 49], keep_last=100)
    assert len(first.removed) == 5_000 and commit_count(store.root) == before + 3
    kept = log.read().entries
    assert len(kept) == 100 + len({*range(5_001, 10_001, 50)} - {*range(9_901, 10_001)})
    pruned = log.pruned_messages()
    assert len(pruned) == 10_000 - len(kept) == len(first.removed) + len(second.removed)
    assert [m.content for m in pruned[:2]] == ["0 ", "1 x"]
    recovered = {m.number: m.content for m in pruned} | {e.number: e.content for e in kept}
    assert [recovered[n] for n in range(1, 10_001)] == [
        f"{i} " + "x" * (i % 50) for i in range(10_000)
    ]
    assert history.verify(store).ok


def test_fork_and_restore_carry_transcripts(store: Store) -> None:
    session = _session(store)
    _fill(session, "a", 10)
    before_prune = git(store.root, "rev-parse", "HEAD").strip()
    session.transcript("a").prune(keep_last=2)
    forked = history.fork(session, "s2", at=before_prune)
    copy = store.session("proj", "s2").transcript("a").read()
    assert (copy.session_id, copy.message_count) == ("s2", 10)
    assert store.session("proj", "s2").validate() == []
    assert forked.commit == git(store.root, "rev-parse", "HEAD").strip()
    history.restore(session, before_prune)  # the pruned messages back, as a new commit
    assert session.transcript("a").read().message_count == 10
    assert history.verify(store).ok
    assert_clean(store.root)


def test_a_prune_with_nothing_to_remove_makes_no_commit(store: Store) -> None:
    session = _session(store)
    _fill(session, "a", 5)
    before = snapshot(store.root)
    result = session.transcript("a").prune(keep_last=10)
    assert result.commit is None and result.removed == [] and result.kept == 5
    assert snapshot(store.root) == before


def test_a_prune_commits_the_buffer_first(store: Store) -> None:
    session = _session(store)
    before = commit_count(store.root)
    log = session.transcript("a")
    for i in range(6):
        log.record_message(role="user", content=str(i))
    result = log.prune(keep_last=2)
    assert commit_count(store.root) == before + 2 and log.pending == 0
    assert result.removed == [1, 2, 3, 4] and [e.content for e in log.read().entries] == ["4", "5"]
    assert subject(store.root, "HEAD~1") == "transcript(proj/s1): a +6 messages (6 in all)"
    assert subject(store.root) == "transcript(proj/s1): a pruned 4 messages (#1 to #4), 2 kept"
    assert [m.number for m in log.pruned_messages()] == [1, 2, 3, 4]  # history holds them
    log.record_message(role="user", content="6")
    kept_all = log.prune(keep_last=5)  # the buffer is committed; nothing is removed
    assert kept_all.removed == [] and kept_all.commit is None
    assert subject(store.root) == "transcript(proj/s1): a +1 message (3 in all)"
    assert trailers(store.root)["Mdsessions-Status"] == "recorded"
    assert commit_count(store.root) == before + 3


# ----------------------------------------------------------------- bad input changes nothing


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda log: log.record_message(role="User!", content="x"), "role"),
        (lambda log: log.record_message(role="user", content="\ud800"), "content"),
        (lambda log: log.record_message(role="user", content=b"x"), "content"),
        (lambda log: log.record_message(role="user", content="x", tokens=-1), "tokens"),
        (lambda log: log.record_message(role="user", content="x", time="yesterday"), "time"),
        (
            lambda log: log.record_message(role="user", content="x", time="2024-13-01T00:00:00Z"),
            "time",
        ),
        (lambda log: log.prune(keep_last=-1), "keep_last"),
        (lambda log: log.smart_prune(keep_keywords="error"), "keep_keywords"),
        (lambda log: log.stats(threshold=1.5), "threshold"),
        (lambda log: log.should_prune(0), "threshold"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(store: Store, call, field) -> None:  # type: ignore[no-untyped-def]
    session = _session(store)
    _fill(session, "a", 3)
    log = session.transcript("a")
    before = snapshot(store.root)
    with pytest.raises(DocumentError) as info:
        call(log)
    assert info.value.field == field
    assert log.pending == 0
    assert snapshot(store.root) == before


def test_bad_names_and_options(store: Store) -> None:
    session = _session(store)
    with pytest.raises(InvalidIdentifierError, match="invalid transcript name '../x'"):
        session.transcript("../x")
    with pytest.raises(DocumentError) as info:
        session.transcript("a", max_buffer=0)
    assert info.value.field == "max_buffer"


def test_a_persons_unrecorded_edit_is_not_overwritten(store: Store) -> None:
    session = _session(store)
    _fill(session, "a", 2)
    log = session.transcript("a")
    path = store.root / log.rel
    path.write_text(path.read_text(encoding="utf-8") + "a person's note\n", encoding="utf-8")
    log.record_message(role="user", content="more")
    before = snapshot(store.root)
    with pytest.raises(UnrecordedEditError):
        log.flush()
    assert snapshot(store.root) == before and log.pending == 1  # kept for the next flush


def test_a_persons_committed_edit_is_kept_by_the_next_flush(store: Store) -> None:
    session = _session(store)
    log = session.transcript("a")
    with log:
        log.record_message(role="user", content="typo here")
    path = store.root / log.rel
    path.write_text(path.read_text("utf-8").replace("typo here", "fixed by hand"), "utf-8")
    git(store.root, "commit", "-qam", "a person's fix")
    with log:  # the same log object: what it remembers of its last write is not reused
        log.record_message(role="user", content="next")
    assert [e.content for e in log.read().entries] == ["fixed by hand", "next"]


def test_a_broken_transcript_is_reported_by_validate(store: Store) -> None:
    session = _session(store)
    _fill(session, "a", 2)
    rel = session.transcript("a").rel
    path = store.root / rel
    path.write_text(path.read_text(encoding="utf-8").replace("· 2 tokens", "· x tokens"))
    git(store.root, "commit", "-qam", "break it")
    (problem,) = session.validate()
    assert problem.path == rel and "message heading" in problem.reason
    copy = store.root / session.rel / "transcripts" / "b.md"
    git(store.root, "checkout", "HEAD~1", "--", rel)
    copy.write_bytes(path.read_bytes())
    git(store.root, "add", "-A")
    git(store.root, "commit", "-qm", "copy it")
    (problem,) = session.validate()
    assert problem.path.endswith("transcripts/b.md") and "does not match its file" in problem.reason


# ----------------------------------------------------------------- crashes: a real kill

CHILD = textwrap.dedent(
    """
    import sys, time
    from mdsessions import Store
    store = Store.open(sys.argv[1])
    log = store.session("proj", "s1").transcript("agent")
    mode, turn = sys.argv[2], int(sys.argv[3])
    if mode == "unflushed":
        for i in range(turn):
            log.record_message(role="user", content=f"kept {i}")
        log.flush()
        for i in range(turn):
            log.record_message(role="user", content=f"lost {i}")
        print("ready", flush=True)
        time.sleep(60)
    else:  # flush turn after turn until killed
        n = 0
        while True:
            for i in range(turn):
                log.record_message(role="user", content=f"turn {n} message {i}\\n---\\n")
            log.flush()
            n += 1
            print(n, flush=True)
    """
)


def _child(store: Store, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store.root), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_killed_process_loses_only_what_it_had_not_flushed(store: Store) -> None:
    _session(store)
    proc = _child(store, "unflushed", "3")
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reopened = Store.open(store.root)
    log = reopened.session("proj", "s1").transcript("agent")
    assert [e.content for e in log.read().entries] == ["kept 0", "kept 1", "kept 2"]
    assert_clean(store.root)
    assert history.verify(reopened).ok


@pytest.mark.parametrize("delay", [0.0, 0.013, 0.037])
def test_a_process_killed_while_flushing_leaves_whole_turns(store: Store, delay: float) -> None:
    _session(store)
    proc = _child(store, "turns", "7")
    assert proc.stdout is not None
    for _ in range(3):
        proc.stdout.readline()
    time.sleep(delay)  # somewhere inside a later turn's flush, or between two
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reopened = Store.open(store.root)
    assert history.verify(reopened).ok
    assert_clean(store.root)
    entries = reopened.session("proj", "s1").transcript("agent").read().entries
    assert len(entries) >= 21 and len(entries) % 7 == 0
    assert [e.number for e in entries] == list(range(1, len(entries) + 1))
    assert all(e.content.endswith("\n---\n") for e in entries)


# ----------------------------------------------------------------- the runner's hook


def test_the_runner_records_each_command_agent_call(store: Store, tmp_path: Path) -> None:
    echo = command_agent("import sys; print('# Plan\\n---\\n' + sys.stdin.read()[:20])")
    workflow = write_two_phase_workflow(tmp_path / "wf.toml", name="tiny", first=echo, second=echo)
    result = Runner(store, workflow, transcripts=True).start("proj", idea="gyms {{ x }}")
    session = result.session
    log = session.transcript("writer")
    entries = log.read().entries
    output = session.output(1, "writer")
    assert output is not None
    roles = [e.role for e in entries]
    assert roles[-2:] == ["user", "assistant"]
    assert entries[-1].content == output.content
    prompt = (store.root / session.phase_rel(1) / "prompts" / "writer.md").read_text("utf-8")
    assert entries[-2].content in prompt and "gyms {{ x }}" in entries[-2].content
    assert trailers(store.root, "HEAD~1")["Mdsessions-Kind"] in {"transcript", "checkpoint"}
    assert_clean(store.root)
    assert history.verify(store).ok


def test_the_runner_records_a_failed_call_as_an_error(store: Store, tmp_path: Path) -> None:
    bad = command_agent("import sys; sys.stderr.write('boom'); sys.exit(3)")
    workflow = write_two_phase_workflow(tmp_path / "wf.toml", name="tiny", first=bad, second=bad)
    with pytest.raises(Exception, match="failed"):
        Runner(store, workflow, transcripts=True).start("proj", session_id="s1", idea="x")
    entries = store.session("proj", "s1").transcript("writer").read().entries
    assert entries[-1].role == "error" and "3" in entries[-1].content
    assert history.verify(store).ok


def test_without_the_option_the_runner_records_no_transcript(store: Store, tmp_path: Path) -> None:
    echo = command_agent("print('ok')")
    workflow = write_two_phase_workflow(tmp_path / "wf.toml", name="tiny", first=echo, second=echo)
    result = Runner(store, workflow).start("proj", idea="x")
    assert not (result.session.path / "transcripts").exists()


# ----------------------------------------------------------------- the command line


def _cli(store: Store, *args: str, code: int = 0, input: str | None = None) -> str:
    result = CliRunner().invoke(cli, ["--store", str(store.root), *args], input=input)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result.stdout if code == 0 else result.stderr


def test_the_transcript_commands(store: Store) -> None:
    _session(store)
    _cli(store, "transcript", "add", "proj/s1", "w", "--role", "user", input="hi\n---\n")
    _cli(store, "transcript", "add", "proj/s1", "w", "--role", "assistant", "--text", "error!")
    added = json.loads(
        _cli(
            store,
            "transcript",
            "add",
            "proj/s1",
            "w",
            "--role",
            "command",
            "--text",
            "ls",
            "--json",
        )
    )
    assert (added["messages"], added["name"], added["project"]) == (3, "w", "proj")
    (listed,) = json.loads(_cli(store, "transcript", "list", "proj/s1", "--json"))
    assert listed["name"] == "w" and listed["tokens"] == 2 + 2 + 1
    stats = json.loads(_cli(store, "transcript", "stats", "proj/s1", "w", "--json"))
    assert stats["should_prune"] is False and stats["by_role"]["command"] == 1
    assert "tokens:   5 of 120000" in _cli(store, "transcript", "stats", "proj/s1", "w")
    small = json.loads(
        _cli(store, "transcript", "stats", "proj/s1", "w", "--context-limit", "5", "--json")
    )
    assert (small["context_share"], small["should_prune"]) == (1.0, True)
    shown = json.loads(_cli(store, "transcript", "show", "proj/s1", "w", "--json"))
    assert [e["content"] for e in shown["entries"]] == ["hi\n---\n", "error!", "ls"]
    assert _cli(store, "transcript", "show", "proj/s1", "w").startswith("#1 user ")
    skipped = json.loads(
        _cli(store, "transcript", "prune", "proj/s1", "w", "--if-over", "0.5", "--json")
    )
    assert skipped["commit"] is None
    pruned = json.loads(
        _cli(store, "transcript", "prune", "proj/s1", "w", "--keep-last", "1", "--smart", "--json")
    )
    assert pruned["removed"] == [1] and pruned["kept"] == 2
    back = json.loads(
        _cli(store, "transcript", "show", "proj/s1", "w", "--at", pruned["commit"] + "^", "--json")
    )
    assert back["entries"][0]["content"] == "hi\n---\n"
    (gone,) = json.loads(_cli(store, "transcript", "pruned", "proj/s1", "w", "--json"))
    assert (gone["number"], gone["content"], gone["pruned_by"]) == (
        1,
        "hi\n---\n",
        pruned["commit"],
    )
    text = _cli(store, "transcript", "prune", "proj/s1", "w", "--keep-last", "0")
    assert "pruned 2 message(s)" in text and "--at" in text
    assert _cli(store, "transcript", "list", "proj/s1").splitlines()[0].split() == [
        "NAME",
        "MESSAGES",
        "TOKENS",
        "CONTEXT",
        "PRUNED",
    ]
    assert_clean(store.root)
    assert json.loads(_cli(store, "verify", "--json"))["valid"] is True


def test_run_with_transcripts(store: Store, tmp_path: Path) -> None:
    echo = command_agent("import sys; sys.stdin.read(); print('# Draft')")
    workflow = write_two_phase_workflow(tmp_path / "wf.toml", name="tiny", first=echo, second=echo)
    _cli(
        store,
        "run",
        "--new",
        "proj",
        "s1",
        "--idea",
        "gyms",
        "--workflow",
        str(workflow),
        "--transcripts",
    )
    (listed,) = json.loads(_cli(store, "transcript", "list", "proj/s1", "--json"))
    assert (listed["name"], listed["by_role"]) == ("writer", {"assistant": 1, "user": 1})
    shown = json.loads(_cli(store, "transcript", "show", "proj/s1", "writer", "--json"))
    assert shown["entries"][-1]["content"] == "# Draft\n"
    assert history.verify(store).ok


def test_transcript_command_errors(store: Store) -> None:
    _session(store)
    before = snapshot(store.root)
    err = _cli(store, "transcript", "add", "proj/s1", "--role", "Bad Role", "--text", "x", code=1)
    assert err.startswith("Error:") and "role" in err
    err = _cli(store, "transcript", "show", "proj/s1", "--at", "nope", code=1)
    assert err.startswith("Error:") and "'nope' does not name a commit" in err
    err = _cli(store, "transcript", "show", "proj/s9", code=1)
    assert err.startswith("Error:")
    err = _cli(store, "transcript", "stats", "proj/s1", "writer", code=1)
    assert err == (
        "Error: no transcript 'writer' in proj/s1 "
        "(no projects/proj/sessions/s1/transcripts/writer.md); it has none yet\n"
    )
    _cli(store, "transcript", "add", "proj/s1", "a", "--role", "user", "--text", "x")
    before = snapshot(store.root)
    err = _cli(store, "transcript", "prune", "proj/s1", "b", code=1)
    assert err.endswith("its transcripts: a\n")
    err = _cli(store, "transcript", "show", "proj/s1", "a", "--at", "HEAD~1", code=1)
    assert err.startswith("Error:") and "does not exist at" in err
    assert snapshot(store.root) == before
