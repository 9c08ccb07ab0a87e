"""Bad input, fuzzed with hypothesis: each input is stored verbatim or refused with a clear
error (an ``MdsessionsError`` naming the problem) — never another exception, never a damaged
store (git status clean, ``git fsck`` clean, ``validate()`` empty, nothing written outside).

Inputs: ids, phase numbers, statuses; frontmatter a person edited (anchors/aliases, alias
bombs, huge keys, wrong types, duplicate keys, a missing closing ``---``, Python tags, deep
nesting); agent output with control characters, CRLF, a BOM, lone surrogates (what invalid
UTF-8 becomes in a ``str``), 50 MB; invalid UTF-8 bytes on disk and through the CLI.

Example counts scale with ``MDSESSIONS_RELIABILITY_SCALE`` (see tests/test_reliability.py).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import assert_clean, git, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdsessions import (
    DocumentError,
    MdsessionsError,
    PhaseStatus,
    Session,
    Store,
    dumps,
    loads,
)
from mdsessions.cli import cli
from mdsessions.models.schema import ID_PATTERN

SCALE = float(os.environ.get("MDSESSIONS_RELIABILITY_SCALE", "0.05") or "0.05")
P, S = "project-123", "session-456"


def examples(full: int, minimum: int) -> Any:
    return settings(
        max_examples=max(minimum, round(full * SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


@pytest.fixture
def session(store: Store) -> Session:
    return store.create_session(P, S, mode="full")


def outside(tmp_path: Path) -> list[str]:
    """What exists next to the store (a write that escaped would show up here)."""
    return sorted(p.name for p in tmp_path.iterdir())


def refused_cleanly(exc: BaseException) -> bool:
    return isinstance(exc, MdsessionsError) and bool(str(exc).strip())


def settle(store: Store) -> None:
    """Wait for background maintenance (``git repack``), which races with ``git fsck``."""
    store.git.wait_for_maintenance(timeout=120)


def clean(store: Store) -> None:
    settle(store)
    assert_clean(store.root)


def last_trailers(root: Path) -> dict[str, str]:
    text = git(root, "log", "-1", "--format=%(trailers:only,unfold)")
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def fresh_session(store: Store) -> Session:
    """A new session for one example (examples must not depend on each other's state)."""
    count = len(list((store.root / "projects").glob(f"{P}/sessions/*")))
    return store.create_session(P, f"example-{count}", mode="full")


# ------------------------------------------------------------------------------ ids

ID_TEXT = st.one_of(
    st.text(max_size=140),
    st.from_regex(ID_PATTERN, fullmatch=True),
    st.sampled_from(["..", ".", "a/b", "../x", ".git", "a..b", "x" * 128, "x" * 129, "-x", "_x"]),
    st.text(alphabet="./\\-_aZ09\x00\n \u2024", max_size=12),
)


@examples(1000, 40)
@given(project=ID_TEXT, session_id=ID_TEXT)
def test_fuzzed_ids_are_stored_inside_or_refused(
    store: Store, tmp_path: Path, project: str, session_id: str
) -> None:
    before, around = snapshot(store.root), outside(tmp_path)
    try:
        created = store.create_session(project, session_id)
    except Exception as exc:
        assert refused_cleanly(exc), repr(exc)
        assert snapshot(store.root) == before
    else:
        assert ID_PATTERN.fullmatch(project) and ID_PATTERN.fullmatch(session_id)
        assert ".." not in project and ".." not in session_id
        assert created.path.resolve().is_relative_to(store.root / "projects")
        assert created.path == store.root / "projects" / project / "sessions" / session_id
        clean(store)
    assert outside(tmp_path) == around


@examples(600, 30)
@given(agent=ID_TEXT)
def test_fuzzed_agent_ids_are_stored_inside_or_refused(
    store: Store, session: Session, tmp_path: Path, agent: str
) -> None:
    before, around = snapshot(store.root), outside(tmp_path)
    try:
        session.save_agent_output(1, agent, f"by {agent!r}\n")
    except Exception as exc:
        assert refused_cleanly(exc), repr(exc)
        assert snapshot(store.root) == before
    else:
        path = session.path / "phase_1_concept" / f"{agent}.md"
        assert path.parent == session.path / "phase_1_concept"
        assert session.output(1, agent).content == f"by {agent!r}\n"  # type: ignore[union-attr]
        clean(store)
    assert outside(tmp_path) == around


# ------------------------------------------------------------------------------ phases, statuses

PHASES = st.one_of(
    st.integers(-3, 10),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not f.is_integer()),
    st.sampled_from([2**63, -(2**63), 10**40, "1", "phase_1", b"1", [1], (1,), None]),
    st.text(max_size=4),
)
"""Phase values; ``True`` and integral floats are left to the explicit test below."""


@examples(600, 40)
@given(phase=PHASES, which=st.sampled_from(["output", "checkpoint"]))
def test_fuzzed_phase_numbers_are_exact_or_refused(store: Store, phase: Any, which: str) -> None:
    """A phase is an int of the session's mode; anything else is refused.  An accepted
    value must be recorded as that int (file, subject, ``Mdsessions-Phase`` trailer)."""
    session = fresh_session(store)
    before = snapshot(store.root)
    try:
        if which == "output":
            session.save_agent_output(phase, "probe", f"phase {phase!r}\n")
        else:
            session.save_checkpoint(phase, status="in_progress", inputs=[repr(phase)])
    except Exception as exc:
        assert refused_cleanly(exc), repr(exc)
        assert snapshot(store.root) == before
        return
    number = int(phase)
    assert type(phase) is int, f"{phase!r} ({type(phase).__name__}) accepted as phase {number}"
    assert last_trailers(store.root).get("Mdsessions-Phase") == str(number)
    assert f"phase {number} " in git(store.root, "log", "-1", "--format=%s")
    assert store.validate() == []
    clean(store)


@pytest.mark.parametrize("phase", [True, 1.0, 2.0], ids=["True", "1.0", "2.0"])
@pytest.mark.parametrize("which", ["output", "checkpoint"])
def test_a_bool_or_float_phase_is_refused_or_recorded_as_an_int(
    store: Store, session: Session, phase: Any, which: str
) -> None:
    """``True == 1`` and ``1.0 == 1`` find phase 1 in the manifest; the commit must then not
    say ``phase True`` / ``Mdsessions-Phase: 1.0`` (git log --grep by phase misses it)."""
    before = snapshot(store.root)
    try:
        if which == "output":
            session.save_agent_output(phase, "probe", "x\n")
        else:
            session.save_checkpoint(phase, status="in_progress")
    except MdsessionsError:
        assert snapshot(store.root) == before
        return
    number = int(phase)
    assert last_trailers(store.root).get("Mdsessions-Phase") == str(number)
    assert f"phase {number} " in git(store.root, "log", "-1", "--format=%s")


STATUSES = st.one_of(
    st.sampled_from(list(PhaseStatus)),
    st.sampled_from([s.value for s in PhaseStatus]),
    st.sampled_from(["COMPLETED", " completed", "completed\n", "done", "", "in-progress"]),
    st.text(max_size=12),
    st.none(),
    st.integers(),
    st.booleans(),
)


@examples(600, 40)
@given(status=STATUSES, which=st.sampled_from(["output", "checkpoint"]))
def test_fuzzed_statuses_are_exact_or_refused(store: Store, status: Any, which: str) -> None:
    session = fresh_session(store)
    before = snapshot(store.root)
    valid = {s.value for s in PhaseStatus}
    try:
        if which == "output":
            session.save_agent_output(1, "probe", f"status {status!r}\n", status=status)
        else:
            session.save_checkpoint(1, status=status, inputs=[repr(status)])
    except Exception as exc:
        assert refused_cleanly(exc), repr(exc)
        assert snapshot(store.root) == before
        return
    value = status.value if isinstance(status, PhaseStatus) else status
    assert value in valid, f"{status!r} accepted"
    assert last_trailers(store.root).get("Mdsessions-Status") == value
    assert store.validate() == []
    clean(store)


@pytest.mark.parametrize("status", ["pending", "skipped", "failed", "in_progress"])
def test_an_output_after_any_accepted_checkpoint_status_keeps_the_store_valid(
    store: Store, session: Session, status: str
) -> None:
    """save_checkpoint accepts every PhaseStatus; the next agent output of that phase must
    not leave checkpoint.md and the manifest disagreeing (validate() is the store's own
    definition of sound)."""
    session.save_checkpoint(1, status=status)
    assert store.validate() == []
    session.save_agent_output(1, "concept_expansion", "next run of the agent\n")
    assert store.validate() == []


# ------------------------------------------------------------------------------ frontmatter

BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
        for i in range(8)
    ]
)

FRONTMATTER_MUTATIONS = st.one_of(
    st.just(("append", "anchor: &x value\nalias: *x")),
    st.just(("append", BILLION_LAUGHS)),
    st.just(("append", "merge: &base {a: 1}\nother:\n  <<: *base")),
    st.builds(lambda n: ("append", "k" * n + ": v"), st.sampled_from([64, 1025, 5000, 300_000])),
    st.builds(lambda n: ("append", "big: " + "v" * n), st.sampled_from([1000, 300_000])),
    st.just(("append", "[" * 5000 + "]" * 5000)),
    st.just(("append", "deep: " + "[" * 2000)),
    st.just(("append", "deep: " + "[{a: " * 1000 + "}]" * 1000)),
    st.just(("append", "? [complex, key]\n: value")),
    st.just(("append", "tag: !!python/object/apply:os.system ['true']")),
    st.just(("append", "bin: !!binary aGVsbG8=")),
    st.just(("append", "date: 2024-01-01")),
    st.just(("append", "\t tab: indented")),
    st.just(("duplicate", "")),
    st.just(("drop-closing", "")),
    st.just(("drop-opening", "")),
    st.just(("bom", "")),
    st.just(("crlf", "")),
    st.just(("cr-only", "")),
    st.just(("nul", "")),
    st.tuples(
        st.just("retype"),
        st.one_of(
            st.sampled_from(
                [
                    "[]",
                    "{}",
                    "[1, 2]",
                    "{a: b}",
                    "null",
                    "~",
                    "''",
                    "-1",
                    "1e999",
                    ".nan",
                    "yes",
                    "'x'",
                    "0x1F",
                    "2024-01-01T00:00:00",
                    "!!str 5",
                    "|\n  block",
                    ">-\n  fold",
                    '"\\x00"',
                    '"\\ud800"',
                    "&a 1",
                    "*a",
                    "'" + "x" * 300_000 + "'",
                ]
            ),
            st.text(max_size=20),
        ),
    ),
    st.tuples(st.just("insert"), st.text(max_size=40)),
)


def mutate(text: str, mutation: tuple[str, str], pick: int) -> str:
    """Apply one mutation to a document's frontmatter (pick chooses a line)."""
    kind, arg = mutation
    lines = text.split("\n")
    close = lines.index("---", 1)
    fm = list(range(1, close))
    line = fm[pick % len(fm)]
    if kind == "append":
        lines[close:close] = arg.split("\n")
    elif kind == "duplicate":
        lines.insert(line, lines[line])
    elif kind == "drop-closing":
        del lines[close]
    elif kind == "drop-opening":
        del lines[0]
    elif kind == "retype":
        key = lines[line].partition(":")[0]
        lines[line] = f"{key}: {arg}"
    elif kind == "insert":
        lines.insert(line, arg)
    out = "\n".join(lines)
    if kind == "bom":
        out = "\ufeff" + out
    elif kind == "crlf":
        out = out.replace("\n", "\r\n")
    elif kind == "cr-only":
        out = out.replace("\n", "\r")
    elif kind == "nul":
        out = out.replace("\n", "\n\x00", 1)
    return out


def sample_documents(session: Session) -> dict[str, str]:
    """One document of each kind, as the store wrote them (store-relative path -> text)."""
    session.save_agent_output(1, "concept_expansion", "# Concept\n\nbody\n")
    session.save_checkpoint(1, status="completed")
    store = session.store
    return {
        rel: (store.root / rel).read_text(encoding="utf-8")
        for rel in (
            session.manifest_rel,
            f"{session.phase_rel(1)}/checkpoint.md",
            f"{session.phase_rel(1)}/concept_expansion.md",
            f"{session.phase_rel(1)}/user_feedback.md",
        )
    }


@pytest.fixture
def documents(session: Session) -> dict[str, str]:
    return sample_documents(session)


@examples(4000, 300)
@given(
    which=st.integers(0, 3),
    mutations=st.lists(FRONTMATTER_MUTATIONS, min_size=1, max_size=3),
    pick=st.integers(0, 1000),
)
def test_fuzzed_frontmatter_parses_or_is_a_document_error(
    documents: dict[str, str], which: int, mutations: list[tuple[str, str]], pick: int
) -> None:
    rel, text = list(documents.items())[which]
    for mutation in mutations:
        try:
            text = mutate(text, mutation, pick)
        except ValueError:  # the closing --- is gone already
            break
    started = time.monotonic()
    try:
        doc = loads(text, path=rel)
    except Exception as exc:
        assert isinstance(exc, DocumentError), repr(exc)[:500]
        message = str(exc)
        assert rel in message and len(message) < 2000, message[:500]
    else:
        again = loads(dumps(doc), path=rel)
        assert again == doc
    assert time.monotonic() - started < 5, "parsing took too long"


NESTING = {
    "flow sequences": "deep: " + "[" * 100_000 + "]" * 100_000,
    "unclosed flow sequences": "deep: " + "[" * 60_000,
    "flow mappings": "deep: " + "{a: " * 50_000 + "}" * 50_000,
}


def _in_a_child(call: Any) -> tuple[int, str]:
    """Run ``call()`` in a forked child: (wait status, what it reported)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(rfd)
            try:
                call()
                report = "returned"
            except BaseException as exc:
                report = f"{type(exc).__name__}: {str(exc)[:300]}"
            os.write(wfd, report.encode())
        finally:
            os._exit(0)
    os.close(wfd)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(rfd, "rb") as fh:
        return status, fh.read().decode()


@pytest.mark.parametrize("shape", list(NESTING))
def test_deeply_nested_frontmatter_is_a_document_error_not_a_crash(
    documents: dict[str, str], shape: str
) -> None:
    """~100 kB of nesting (under the 256 kB frontmatter limit) must not take the process
    down; run in a forked child so that a crash fails this test, not the whole run."""
    rel, text = list(documents.items())[1]
    edited = text.replace("\n---\n", "\n" + NESTING[shape] + "\n---\n", 1)
    status, report = _in_a_child(lambda: loads(edited, path=rel))
    assert os.WIFEXITED(status), (
        f"loads() killed the process with signal {os.WTERMSIG(status)} "
        f"({signal.Signals(os.WTERMSIG(status)).name})"
    )
    assert report.startswith("DocumentError"), report


def test_deeply_nested_edit_does_not_crash_validate(store: Store, session: Session) -> None:
    docs = sample_documents(session)
    rel = list(docs)[3]
    path = store.root / rel
    path.write_text(docs[rel].replace("\n---\n", "\n" + NESTING["flow sequences"] + "\n---\n", 1))
    status, report = _in_a_child(store.validate)
    assert os.WIFEXITED(status), f"validate() killed the process (signal {os.WTERMSIG(status)})"
    assert report == "returned", report


@examples(300, 20)
@given(
    which=st.integers(0, 3),
    mutation=FRONTMATTER_MUTATIONS,
    pick=st.integers(0, 1000),
)
def test_a_fuzzed_edit_never_damages_the_store(
    store: Store, tmp_path: Path, which: int, mutation: tuple[str, str], pick: int
) -> None:
    """A person saves a broken (or odd) document: reads report it, saves refuse clearly or
    leave the edit alone, record_edits records it or rejects it; the store stays sound."""
    sid = f"s{len(list((store.root / 'projects').glob(f'{P}/sessions/*')))}"
    session = store.create_session(P, sid, mode="full")
    docs = sample_documents(session)
    rel, text = list(docs.items())[which]
    try:
        edited = mutate(text, mutation, pick)
    except ValueError:
        return
    path = store.root / rel
    path.write_bytes(edited.encode("utf-8", "surrogatepass"))
    head = git(store.root, "rev-parse", "HEAD")
    for read in (store.validate, store.unrecorded_edits, session.validate):
        read()  # never raises
    for call in (
        lambda: session.save_agent_output(1, "probe", "probe\n"),
        lambda: session.save_checkpoint(1, status="in_progress"),
    ):
        before = snapshot(store.root)
        try:
            call()
        except Exception as exc:
            assert refused_cleanly(exc), repr(exc)[:500]
            assert snapshot(store.root) == before
        assert path.read_bytes() == edited.encode("utf-8", "surrogatepass"), "edit overwritten"
    try:
        sha, rejected = store.record_edits([rel])
    except Exception as exc:
        pytest.fail(f"record_edits raised {exc!r}")
    if sha is None:
        assert [e.path for e in rejected] == [rel]
        path.write_text(text, encoding="utf-8")  # the person reverts
        assert git(store.root, "status", "--porcelain", "--", rel) == ""
    else:
        assert git(store.root, "rev-parse", "HEAD") != head
        assert store.validate() == []
    clean(store)


# ------------------------------------------------------------------------------ agent output

CONTENT_PIECES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "\r\n",
            "\r",
            "\n",
            "\ufeff",
            "\x00",
            "\x1b[31m",
            "\x07",
            "\x7f",
            "\x85",
            "\u2028",
            "\u2029",
            "\u202e",
            "---",
            "---\n",
            "\n---\n",
            "## Output\n",
            "{{ x }}",
            "{% if %}",
            "```",
            "🎉",
            "\U0010ffff",
            " \t ",
            "\\",
            "'",
            '"',
        ]
    ),
    st.characters(codec=None, categories=["Cc", "Cf", "Zl", "Zp", "Co", "Cn"]),
)
CONTENT = st.lists(CONTENT_PIECES, max_size=12).map("".join)


def has_surrogate(text: str) -> bool:
    return re.search("[\ud800-\udfff]", text) is not None


@examples(1500, 60)
@given(content=CONTENT)
def test_fuzzed_agent_output_is_verbatim_or_refused(
    store: Store, session: Session, content: str
) -> None:
    before = snapshot(store.root)
    try:
        session.save_agent_output(1, "fuzz", content)
    except Exception as exc:
        assert refused_cleanly(exc), f"{type(exc).__name__}: {exc}"
        assert has_surrogate(content), f"refused valid text {content!r}: {exc}"
        assert snapshot(store.root) == before
        return
    raw = (session.path / "phase_1_concept" / "fuzz.md").read_bytes()
    marker = b"\n## Output\n\n"
    assert raw[raw.index(marker) + len(marker) :] == content.encode("utf-8")
    with Store.open(store.root) as fresh:
        assert fresh.session(P, S).output(1, "fuzz").content == content  # type: ignore[union-attr]
    clean(store)


@examples(600, 30)
@given(model=CONTENT, error=CONTENT, tool=CONTENT)
def test_fuzzed_agent_metadata_is_exact_or_refused(
    store: Store, session: Session, model: str, error: str, tool: str
) -> None:
    before = snapshot(store.root)
    try:
        session.save_agent_output(
            1, "meta", "x\n", model=model or None, error=error or None, tools_used=[tool]
        )
    except Exception as exc:
        assert refused_cleanly(exc), f"{type(exc).__name__}: {exc}"
        assert snapshot(store.root) == before
        return
    with Store.open(store.root) as fresh:
        out = fresh.session(P, S).output(1, "meta")
    assert out is not None
    assert out.model == (model or None)
    assert out.error == (error or None)
    assert out.tools_used == [tool]
    assert store.validate() == []
    clean(store)


@examples(600, 30)
@given(user_id=CONTENT, tag=CONTENT, idea=CONTENT)
def test_fuzzed_session_fields_are_exact_or_refused(
    store: Store, user_id: str, tag: str, idea: str
) -> None:
    """create_session: a refusal is an MdsessionsError naming the field (not pydantic's
    ValidationError), and what is accepted reads back as given in a fresh process."""
    sid = f"fields-{len(list((store.root / 'projects').glob(f'{P}/sessions/*')))}"
    before = snapshot(store.root)
    try:
        store.create_session(P, sid, user_id=user_id or None, tags=[tag], idea=idea)
    except Exception as exc:
        assert refused_cleanly(exc), f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
        assert snapshot(store.root) == before
        return
    with Store.open(store.root) as fresh:
        manifest = fresh.session(P, sid).manifest()
        assert fresh.session(P, sid).validate() == []
    assert manifest.user_id == (user_id or None)
    assert manifest.idea == idea
    assert manifest.tags == [tag]
    clean(store)


SURROGATE_TEXT = b"valid \xff\xfe invalid".decode("utf-8", "surrogateescape")
SURROGATE_CALLS: dict[str, tuple[Any, Any]] = {
    # name: (the save, how to read the value back if it was stored)
    "agent output": (
        lambda s: s.save_agent_output(1, "bad", SURROGATE_TEXT),
        lambda s: s.output(1, "bad").content,
    ),
    "lone surrogate": (
        lambda s: s.save_agent_output(1, "bad", "\ud800"),
        lambda s: s.output(1, "bad").content,
    ),
    "agent error": (
        lambda s: s.save_agent_output(1, "bad", "x", error=SURROGATE_TEXT),
        lambda s: s.output(1, "bad").error,
    ),
    "checkpoint error": (
        lambda s: s.save_checkpoint(1, status="failed", errors=[SURROGATE_TEXT]),
        lambda s: s.checkpoint(1).errors[0],
    ),
    "feedback comments": (
        lambda s: s.save_feedback(1, action="revise", comments=SURROGATE_TEXT),
        lambda s: s.feedback(1).comments,
    ),
    "session idea": (
        lambda s: s.store.create_session(P, "other", idea=SURROGATE_TEXT),
        lambda s: s.store.session(P, "other").manifest().idea,
    ),
}


@pytest.mark.parametrize("call", list(SURROGATE_CALLS))
def test_surrogates_are_refused_with_a_document_error(
    store: Store, session: Session, call: str
) -> None:
    """What invalid UTF-8 becomes in a str (``surrogateescape``, a lone surrogate) cannot be
    written as UTF-8 text: a DocumentError naming the field (not a UnicodeEncodeError), or,
    where the format can escape it (YAML ``"\\udcff"``), stored and read back as given."""
    save, read = SURROGATE_CALLS[call]
    if call == "feedback comments":  # a phase that has not run has nothing to review
        session.save_checkpoint(1, status="completed")
    before = snapshot(store.root)
    try:
        save(session)
    except Exception as exc:
        assert isinstance(exc, DocumentError), f"{type(exc).__name__}: {exc}"
        assert snapshot(store.root) == before
        return
    with Store.open(store.root) as fresh:
        try:
            back = read(fresh.session(P, S))
        except MdsessionsError as exc:
            pytest.fail(f"accepted and committed, but a fresh reader cannot read it: {exc}")
        assert back == SURROGATE_TEXT
    assert store.validate() == []
    clean(store)


@pytest.mark.slow
def test_a_50_mb_agent_output_round_trips(store: Store, session: Session) -> None:
    unit = "line with CRLF\r\n\ufeffBOM inside, ctrl \x01\x1b[0m, {{ x }}\n---\n## Output\n🎉 "
    content = "\ufeff" + unit * (50 * 2**20 // len(unit.encode("utf-8")))
    assert len(content.encode("utf-8")) > 49 * 2**20
    session.save_agent_output(1, "huge", content, output_tokens=10**7)
    rel = f"{session.phase_rel(1)}/huge.md"
    raw = (store.root / rel).read_bytes()
    marker = b"\n## Output\n\n"
    assert raw[raw.index(marker) + len(marker) :] == content.encode("utf-8")
    with Store.open(store.root) as fresh:
        assert fresh.session(P, S).output(1, "huge").content == content  # type: ignore[union-attr]
        assert fresh.read_at("HEAD", rel) == raw
    session.save_checkpoint(1, status="completed")
    assert store.validate() == []
    clean(store)


CLI_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["1", "0", "-1", "7", "99", "1.5", "True", "", "--", "-", "..", "a/b"]),
)


@examples(800, 25)
@given(
    agent=CLI_TEXT,
    phase=CLI_TEXT,
    status=CLI_TEXT,
    content=CONTENT,
    which=st.sampled_from(["output", "checkpoint", "show", "status"]),
)
def test_fuzzed_cli_arguments_never_end_in_a_traceback(
    store: Store, session: Session, agent: str, phase: str, status: str, content: str, which: str
) -> None:
    """Whatever is typed: exit 0, 1 (``Error: …``) or 2 (usage), never an uncaught exception,
    and a refused command changes nothing."""
    ref = f"{P}/{S}"
    args = {
        "output": ["output", ref, phase, agent, "-", "--status", status],
        "checkpoint": ["checkpoint", ref, phase, "--status", status],
        "show": ["show", ref, phase, agent],
        "status": ["status", agent],
    }[which]
    before = snapshot(store.root)
    result = CliRunner().invoke(cli, ["--store", str(store.root), *args], input=content)
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
    assert result.exit_code in (0, 1, 2), result.output
    if result.exit_code:
        assert snapshot(store.root) == before
        assert result.exit_code == 2 or result.stderr.startswith("Error:"), result.stderr
    clean(store)


# ---------------------------------------------------------------------------- invalid UTF-8 on disk


def test_invalid_utf8_through_the_cli_is_a_clear_error(
    store: Store, session: Session, tmp_path: Path
) -> None:
    source = tmp_path / "output.md"
    source.write_bytes(b"# ok\nthen \xc3\x28 broken \xff\n")
    before = snapshot(store.root)
    for args in (
        ["output", f"{P}/{S}", "1", "agent", str(source)],
        ["output", f"{P}/{S}", "1", "agent", "-"],
    ):
        result = CliRunner().invoke(
            cli, ["--store", str(store.root), *args], input=source.read_bytes()
        )
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("Error:") and "UTF-8" in result.stderr
        assert isinstance(result.exception, SystemExit)
    assert snapshot(store.root) == before


@pytest.mark.parametrize(
    "damage",
    [
        b"\xff\xfe\x00\x00",  # not UTF-8 at all
        b"\xc3\x28",  # a broken sequence
        b"\xed\xa0\x80",  # an encoded surrogate
        b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    ],
)
def test_a_document_with_invalid_utf8_on_disk_is_reported_not_fatal(
    store: Store, session: Session, damage: bytes
) -> None:
    session.save_agent_output(1, "concept_expansion", "fine\n")
    path = session.path / "phase_1_concept" / "concept_expansion.md"
    path.write_bytes(path.read_bytes().replace(b"fine", b"fi" + damage + b"ne"))
    rel = path.relative_to(store.root).as_posix()
    with pytest.raises(DocumentError, match="UTF-8"):
        session.output(1, "concept_expansion")
    problems = store.validate()
    assert [p.path for p in problems] == [rel]
    assert [e.path for e in store.unrecorded_edits()] == [rel]
    sha, rejected = store.record_edits()
    assert sha is None and [e.path for e in rejected] == [rel]
    before = snapshot(store.root)
    with pytest.raises(MdsessionsError):  # the checkpoint would read the broken output
        session.save_checkpoint(1, status="completed")
    assert snapshot(store.root) == before
    session.save_agent_output(1, "another", "still works\n")  # other writes go on
    subprocess.run(["git", "checkout", "--", rel], cwd=store.root, check=True)
    clean(store)
