"""Export and import (JSON, JSON Lines, CSV) and bundles of chosen sessions' history.

Real repositories in ``tmp_path``; git is never mocked. Issue 14 item 5: export → import
into an empty store → export is byte for byte the same; import is one commit per session
and refuses id clashes unless renaming; bad input changes nothing; ``verify`` stays clean.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import PERSON, assert_clean, commit_count, git, snapshot, trailers

from mdsessions import (
    AgentContext,
    DocumentError,
    Runner,
    SessionExistsError,
    Store,
    StoreError,
    history,
    idea_validation,
    loads,
)
from mdsessions.cli import cli
from mdsessions.errors import InvalidArgumentError

AGENT_NAMES = [name for phase in idea_validation().phases for name in phase.agents]


def _agent(name: str) -> Callable[[AgentContext], str]:
    def run(ctx: AgentContext) -> str:
        return f"# {name} ü — 日本\n\n---\n{{{{ not a template }}}}\n```\ncode\n```\n{ctx.idea}\n"

    return run


def fill(store: Store) -> None:
    """p1/s1 run to phase 3 (reviewed once), p1/s2 tagged, p2/s3 new."""
    runner = Runner(store, agents={n: _agent(n) for n in AGENT_NAMES})
    session = runner.start("p1", "s1", idea="gyms: streaks, not weights").session
    session.save_feedback(1, approved=True, comments="Looks *good*\n---\n", author=PERSON)
    runner.run(session)
    store.create_session("p1", "s2", tags=["keep", "q4"], idea="second")
    store.create_session("p2", "s3")


@pytest.fixture
def filled(store: Store) -> Store:
    fill(store)
    return store


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[Store]:
    other = Store.init(tmp_path / "empty")
    try:
        yield other
    finally:
        other.close()


def export_text(store: Store, fmt: str = "json", **filters: object) -> str:
    sessions = history.select_sessions(store, **filters)  # type: ignore[arg-type]
    return history.export_sessions(store, sessions, format=fmt).text  # type: ignore[arg-type]


def assert_verified(store: Store) -> None:
    report = history.verify(store)
    assert report.problems == (), report.problems
    assert_clean(store.root)


# ------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_export_import_export_is_byte_for_byte(
    filled: Store, empty: Store, tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / f"all.{fmt}"
    first = history.export_sessions(
        filled,
        history.select_sessions(filled),
        format=fmt,  # type: ignore[arg-type]
        path=path,
    )
    assert first.sessions == ("p1/s1", "p1/s2", "p2/s3") and first.rows == 3
    assert path.read_text(encoding="utf-8") == first.text
    before = commit_count(empty.root)
    result = history.import_sessions(empty, path, author=PERSON)
    assert [i.session for i in result.imported] == ["p1/s1", "p1/s2", "p2/s3"]
    assert commit_count(empty.root) == before + 3  # one commit per session
    for item in result.imported:
        found = trailers(empty.root, item.commit)
        assert found["Mdsessions-Kind"] == "import"
        assert f"{found['Mdsessions-Project']}/{found['Mdsessions-Session']}" == item.session
    assert export_text(empty, fmt) == first.text
    # Every file of every session is the same blob on both sides.
    for ref in first.sessions:
        rel = filled.find_session(ref).rel
        assert git(empty.root, "rev-parse", f"HEAD:{rel}") == git(
            filled.root, "rev-parse", f"HEAD:{rel}"
        )
    assert_verified(empty)


def test_an_imported_fork_verifies_clean(filled: Store, empty: Store, tmp_path: Path) -> None:
    history.fork(filled.find_session("p1/s1"), "s1-fork")
    path = tmp_path / "fork.json"
    history.export_sessions(filled, [filled.find_session("p1/s1-fork")], path=path)
    history.import_sessions(empty, path)
    assert empty.find_session("p1/s1-fork").manifest().forked_from is not None
    assert_verified(empty)  # forked_from names a commit of the other store: an import's


def test_json_export_holds_every_file_verbatim(filled: Store) -> None:
    document = json.loads(export_text(filled, project="p1"))
    assert document["format"] == history.EXPORT_FORMAT
    s1 = document["sessions"][0]
    assert (s1["project_id"], s1["session_id"], s1["status"]) == ("p1", "s1", "awaiting_review")
    rel = filled.find_session("p1/s1").rel
    on_disk = {
        p: (filled.root / rel / p).read_text(encoding="utf-8")
        for p in git(filled.root, "ls-files", "--", rel).replace(rel + "/", "").split()
    }
    assert {f["path"]: f["text"] for f in s1["files"]} == on_disk
    assert [f["path"] for f in s1["files"]] == sorted(on_disk)
    s2 = document["sessions"][1]
    assert s2["tags"] == ["keep", "q4"]


def test_bytes_that_are_not_utf8_travel_as_base64(
    filled: Store, empty: Store, tmp_path: Path
) -> None:
    rel = filled.find_session("p1/s2").rel
    (filled.root / rel / "logo.bin").write_bytes(b"\x89PNG\xff\x00\xfe")
    git(filled.root, "add", rel)
    git(filled.root, "commit", "-q", "-m", "a picture")
    text = export_text(filled, "jsonl", tag=["keep"])
    (line,) = text.splitlines()
    assert {"path": "logo.bin", "base64": "iVBOR/8A/g=="} in json.loads(line)["files"]
    (tmp_path / "s2.jsonl").write_text(text, encoding="utf-8")
    history.import_sessions(empty, tmp_path / "s2.jsonl")
    assert (empty.root / rel / "logo.bin").read_bytes() == b"\x89PNG\xff\x00\xfe"
    assert export_text(empty, "jsonl") == text


def test_selection_by_project_status_tag_and_names(filled: Store) -> None:
    def refs(**filters: object) -> list[str]:
        return [s.ref for s in history.select_sessions(filled, **filters)]  # type: ignore[arg-type]

    assert refs() == ["p1/s1", "p1/s2", "p2/s3"]
    assert refs(project="p2") == ["p2/s3"]
    assert refs(status=["created"]) == ["p1/s2", "p2/s3"]
    assert refs(tag=["keep", "q4"]) == ["p1/s2"]
    assert refs(tag=["keep", "nope"]) == []
    assert refs(sessions=[filled.find_session("s3")], status=["created"]) == ["p2/s3"]


# ----------------------------------------------------------------------------- CSV


def test_csv_one_row_per_phase(filled: Store) -> None:
    text = export_text(filled, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0].keys()) == history.PHASE_COLUMNS
    phases = {m.session_id: len(m.phases) for m in filled.sessions()}
    assert len(rows) == sum(phases.values())
    first = rows[0]
    assert (first["project_id"], first["session_id"], first["phase"]) == ("p1", "s1", "1")
    assert (first["phase_status"], first["review"]) == ("completed", "approved")
    assert first["completed"].endswith("Z") and float(first["cost"]) == 0.0
    tagged = [r for r in rows if r["session_id"] == "s2"]
    assert {r["tags"] for r in tagged} == {"keep;q4"}
    assert {r["started"] for r in tagged} == {""}  # a missing value is an empty cell


def test_csv_one_row_per_agent_output(filled: Store) -> None:
    sessions = history.select_sessions(filled)
    result = history.export_sessions(filled, sessions, format="csv", rows="agent")
    rows = list(csv.DictReader(io.StringIO(result.text)))
    assert tuple(rows[0].keys()) == history.AGENT_COLUMNS
    outputs = [
        p
        for p in git(filled.root, "ls-files", "projects/p1/sessions/s1").split()
        if p.count("/") == 5 and p.rsplit("/", 1)[1] not in ("checkpoint.md", "user_feedback.md")
    ]
    assert sorted(r["path"] for r in rows) == sorted(outputs) and result.rows == len(rows)
    row = next(r for r in rows if r["agent"] == "concept_expansion")
    assert (row["phase"], row["phase_slug"], row["status"]) == ("1", "concept", "completed")
    assert row["tokens"] == str(int(row["input_tokens"]) + int(row["output_tokens"]))


# ----------------------------------------------------------------- clashes and bad input


def test_an_id_clash_refuses_the_whole_import(filled: Store, tmp_path: Path) -> None:
    path = tmp_path / "all.json"
    history.export_sessions(filled, history.select_sessions(filled), path=path)
    before = snapshot(filled.root)
    with pytest.raises(SessionExistsError) as caught:
        history.import_sessions(filled, path)
    assert str(caught.value) == (
        f"{path}: 3 session(s) already exist in this store: p1/s1, p1/s2, p2/s3; import "
        "with --rename to give them new ids. Nothing was imported."
    )
    assert snapshot(filled.root) == before


def test_rename_gives_free_ids_and_rewrites_the_documents(filled: Store, tmp_path: Path) -> None:
    path = tmp_path / "all.json"
    history.export_sessions(filled, history.select_sessions(filled, project="p1"), path=path)
    filled.create_session("p1", "s1-2")  # taken: the next free id is s1-3
    result = history.import_sessions(filled, path, rename=True)
    assert [(i.source, i.session) for i in result.imported] == [
        ("p1/s1", "p1/s1-3"),
        ("p1/s2", "p1/s2-2"),
    ]
    renamed = filled.find_session("p1/s1-3")
    assert renamed.manifest().session_id == "s1-3"
    for path_ in (renamed.path).rglob("*.md"):
        doc = loads(path_.read_text(encoding="utf-8"))
        assert (doc.project_id, doc.session_id) == ("p1", "s1-3")
    original = filled.find_session("p1/s1")
    out = "phase_1_concept/concept_expansion.md"
    assert (
        loads((renamed.path / out).read_text()).content
        == loads(  # type: ignore[union-attr]
            (original.path / out).read_text()
        ).content
    )  # type: ignore[union-attr]
    assert_verified(filled)


def _export_doc(filled: Store) -> dict[str, object]:
    text = export_text(filled, sessions=[filled.find_session("p1/s2")])
    document: dict[str, object] = json.loads(text)
    return document


def _session_of(document: dict[str, object]) -> dict[str, object]:
    sessions = document["sessions"]
    assert isinstance(sessions, list)
    first: dict[str, object] = sessions[0]
    return first


def _files(document: dict[str, object]) -> list[dict[str, str]]:
    files = _session_of(document)["files"]
    assert isinstance(files, list)
    return files


BAD: list[tuple[str, Callable[[dict[str, object]], object], type[Exception], str]] = [
    ("not an export", lambda d: {"hello": 1}, InvalidArgumentError, "line 1: expected an object"),
    (
        "no manifest",
        lambda d: _files(d).clear() or _files(d).append({"path": "x.md", "text": "x"}),
        InvalidArgumentError,
        "no session_manifest.md among its files",
    ),
    (
        "path leaves the session",
        lambda d: _files(d).append({"path": "../../p9/sessions/x/a.md", "text": "x"}),
        InvalidArgumentError,
        "leaves the session folder",
    ),
    (
        "a bad id",
        lambda d: _session_of(d).update(session_id="../x"),
        Exception,
        "invalid session id '../x'",
    ),
    (
        "a document that does not parse",
        lambda d: _files(d)[0].update(text="---\nschema: nope\n---\n"),
        DocumentError,
        "session 1",
    ),
    (
        "a document of another session",
        lambda d: _session_of(d).update(session_id="other"),
        InvalidArgumentError,
        "session_manifest.md belongs to p1/s2, not p1/other",
    ),
    (
        "neither text nor base64",
        lambda d: _files(d)[0].pop("text"),
        InvalidArgumentError,
        "expected 'text' or 'base64'",
    ),
]


@pytest.mark.parametrize(("what", "damage", "error", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_changes_nothing(
    filled: Store,
    empty: Store,
    tmp_path: Path,
    what: str,
    damage: Callable[[dict[str, object]], object],
    error: type[Exception],
    message: str,
) -> None:
    document = _export_doc(filled)
    replaced = damage(document)
    if isinstance(replaced, dict):
        document = replaced
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    before = snapshot(empty.root)
    with pytest.raises(error) as caught:
        history.import_sessions(empty, path)
    assert message in str(caught.value), (what, str(caught.value))
    assert snapshot(empty.root) == before


def test_not_json_at_all_names_the_line(empty: Store, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"format": "mdsessions/export-session/v1"\nnope\n', encoding="utf-8")
    before = snapshot(empty.root)
    with pytest.raises(InvalidArgumentError, match=r"bad.jsonl: line 1: not JSON"):
        history.import_sessions(empty, path)
    with pytest.raises(InvalidArgumentError, match="no such file"):
        history.import_sessions(empty, tmp_path / "missing.json")
    assert snapshot(empty.root) == before


def test_a_later_bad_session_stops_the_first_from_being_imported(
    filled: Store, empty: Store, tmp_path: Path
) -> None:
    lines = export_text(filled, "jsonl").splitlines()
    broken = json.loads(lines[2])
    broken["files"][0]["text"] = "no frontmatter"
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([lines[0], lines[1], json.dumps(broken)]) + "\n", encoding="utf-8")
    before = snapshot(empty.root)
    with pytest.raises(DocumentError):
        history.import_sessions(empty, path)
    assert snapshot(empty.root) == before


def test_bad_format_or_rows(filled: Store) -> None:
    sessions = history.select_sessions(filled)
    with pytest.raises(InvalidArgumentError, match="expected json, jsonl or csv"):
        history.export_sessions(filled, sessions, format="xml")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="expected phase or agent"):
        history.export_sessions(filled, sessions, format="csv", rows="x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bundles


def _bundle_paths(bundle: Path, tmp_path: Path) -> list[str]:
    scratch = tmp_path / "scratch"
    git(tmp_path, "init", "-q", "--bare", str(scratch))
    git(scratch, "fetch", "-q", str(bundle), "refs/heads/main:refs/heads/main")
    return git(scratch, "ls-tree", "-r", "--name-only", "main").split()


def test_a_bundle_holds_the_chosen_sessions_full_history_only(
    filled: Store, empty: Store, tmp_path: Path
) -> None:
    s1 = filled.find_session("p1/s1")
    before = snapshot(filled.root)
    bundle = tmp_path / "s1.bundle"
    made = history.export_bundle(filled, [s1], bundle)
    assert snapshot(filled.root) == before  # the store is only read
    assert made.format == "bundle" and made.branch == "refs/heads/main"
    source_commits = git(filled.root, "rev-list", "--count", "HEAD", "--", s1.rel).strip()
    assert made.rows == int(source_commits)
    # Verified on its own: no prerequisites, so any repository can take it.
    lone = tmp_path / "lone"
    git(tmp_path, "init", "-q", str(lone))
    git(lone, "bundle", "verify", "-q", str(bundle))
    assert all(p.startswith(s1.rel + "/") for p in _bundle_paths(bundle, tmp_path))

    result = history.import_bundle(empty, bundle, author=PERSON)
    ((item),) = result.imported
    assert (item.session, item.commit) == ("p1/s1", git(empty.root, "rev-parse", "HEAD").strip())
    assert trailers(empty.root)["Mdsessions-Kind"] == "import"
    assert git(empty.root, "rev-parse", f"HEAD:{s1.rel}") == git(
        filled.root, "rev-parse", f"HEAD:{s1.rel}"
    )

    # The whole history came along: the same subjects, in the same order.
    def subjects(root: Path) -> list[str]:
        return git(root, "log", "--format=%s", "HEAD", "--", s1.rel).splitlines()

    assert subjects(empty.root) == subjects(filled.root)  # (git log simplifies the merge away)
    assert_verified(empty)

    before = snapshot(empty.root)
    with pytest.raises(SessionExistsError, match="already in this store: p1/s1"):
        history.import_bundle(empty, bundle)
    assert snapshot(empty.root) == before
    assert git(empty.root, "for-each-ref", "refs/mdsessions/") == ""


def test_plain_git_can_pull_a_bundle(filled: Store, tmp_path: Path) -> None:
    bundle = tmp_path / "two.bundle"
    chosen = [filled.find_session("p1/s2"), filled.find_session("p2/s3")]
    history.export_bundle(filled, chosen, bundle)
    plain = tmp_path / "plain"
    git(tmp_path, "init", "-q", str(plain))
    git(plain, "commit", "-q", "--allow-empty", "-m", "start")
    git(plain, "pull", "-q", "--no-rebase", "--allow-unrelated-histories", str(bundle), "main")
    assert (plain / chosen[0].manifest_rel).read_bytes() == (
        filled.root / chosen[0].manifest_rel
    ).read_bytes()


def test_bad_bundles_change_nothing(filled: Store, empty: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="no session to bundle"):
        history.export_bundle(filled, [], tmp_path / "x.bundle")
    not_a_bundle = tmp_path / "x.bundle"
    not_a_bundle.write_text("# v2 git bundle\nnonsense\n", encoding="utf-8")
    before = snapshot(empty.root)
    with pytest.raises(StoreError, match="git bundle verify failed"):
        history.import_bundle(empty, not_a_bundle)
    whole = tmp_path / "whole"
    history.create_backup(filled, whole)
    (backup,) = whole.glob("*.bundle")
    with pytest.raises(StoreError):  # a whole store's bundle: not only session folders
        history.import_bundle(empty, backup)
    assert snapshot(empty.root) == before
    assert git(empty.root, "for-each-ref", "refs/mdsessions/") == ""


# ------------------------------------------------------------------------------- CLI


def run_cli(store: Store, *argv: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--store", str(store.root), *argv])
    assert result.exit_code == code, (argv, result.stdout, result.stderr)
    return result.stdout if code == 0 else result.stderr


def test_cli_round_trip_as_real_processes(filled: Store, empty: Store, tmp_path: Path) -> None:
    def mdsessions(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mdsessions", "--store", str(root), *argv],
            capture_output=True,
            text=True,
            encoding="utf-8",
            check=False,
        )

    out = mdsessions(filled.root, "export", "--all", "--format", "jsonl")
    assert out.returncode == 0, out.stderr
    (tmp_path / "all.jsonl").write_text(out.stdout, encoding="utf-8")
    imported = mdsessions(empty.root, "import", str(tmp_path / "all.jsonl"))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines()[0].startswith("p1/s1  ")
    again = mdsessions(empty.root, "export", "--all", "--format", "jsonl")
    assert again.stdout == out.stdout
    clash = mdsessions(empty.root, "import", str(tmp_path / "all.jsonl"))
    assert clash.returncode == 1 and clash.stderr.startswith("Error: ")
    assert "--rename" in clash.stderr


def test_cli_export_needs_a_selection_and_csv_prints(filled: Store) -> None:
    result = CliRunner().invoke(cli, ["--store", str(filled.root), "export"])
    assert result.exit_code == 2 and "--all" in result.stderr
    argv = ["--store", str(filled.root), "export", "--all", "--bundle", "b", "--format", "csv"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2 and "leave out -o, --format and --rows" in result.stderr
    text = run_cli(filled, "export", "--project", "p2", "--format", "csv")
    assert text.splitlines()[0] == ",".join(history.PHASE_COLUMNS)
    assert len(text.splitlines()) == 1 + len(filled.find_session("p2/s3").manifest().phases)
    text = run_cli(filled, "export", "--tag", "keep", "--format", "csv", "--rows", "agent")
    assert text.splitlines() == [",".join(history.AGENT_COLUMNS)]


def test_cli_bundle_export_and_import(filled: Store, empty: Store, tmp_path: Path) -> None:
    bundle = tmp_path / "b.bundle"
    out = run_cli(filled, "export", "p1/s1", "--bundle", str(bundle))
    assert out.strip().endswith(str(bundle)) and "commit(s)" in out
    out = run_cli(empty, "import", str(bundle), "--json")
    assert (
        json.loads(out)["bundle_commit"]
        == git(tmp_path, "bundle", "list-heads", str(bundle)).split()[0]
    )
    assert_verified(empty)
