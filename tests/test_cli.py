"""Tests for mdsessions.cli: through click's CliRunner and as a real ``python -m mdsessions``.

Real git stores in ``tmp_path``; the caller's git configuration and ``GIT_*`` variables never
leak in. Failures are asserted with their exact ``Error: …`` text and exit status.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import pytest
from click.testing import CliRunner, Result
from helpers import command_agent, python_agent, write_two_phase_workflow

from mdsessions.cli import cli
from mdsessions.cli.app import BUG_REPORT

ROOT = Path(__file__).resolve().parents[1]
PERSON = "Test Person <person@example.com>"
BAD_ID = (
    "expected 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or "
    "digit (no '/', no '..', no leading dot)"
)
AGENT_MODULE = "mdsessions_cli_test_agents"
ECHO_PROMPT = "import sys; print(sys.stdin.read()[:50])"


@pytest.fixture(autouse=True)
def cli_git_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_git: Path
) -> Iterator[None]:
    """conftest's private git config, and no inherited MDSESSIONS_* variables; cwd outside
    any store."""
    for name in list(os.environ):
        if name.startswith("MDSESSIONS_"):
            monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the runner adds workflow folders
    yield
    sys.modules.pop(AGENT_MODULE, None)


def invoke(
    args: Sequence[str],
    *,
    code: int = 0,
    input: bytes | str | None = None,
    store: Path | None = None,
) -> Result:
    """Run the CLI in-process and check its exit status (showing the output if it differs)."""
    argv = ["--store", str(store), *args] if store is not None else list(args)
    result = CliRunner().invoke(cli, argv, input=input)
    assert result.exit_code == code, (
        f"exit {result.exit_code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        f"\nexception: {result.exception!r}"
    )
    if code in (0, 1):
        assert "Traceback" not in result.stderr
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        ), result.exception
    return result


def run_process(
    *args: str, input: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m mdsessions`` as a real process."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "mdsessions", *args],
        input=input,
        capture_output=True,
        cwd=str(cwd) if cwd else None,
        env=env,
        check=False,
        timeout=60,
    )


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=str(root), capture_output=True, text=True, check=True
    ).stdout


def state(root: Path) -> tuple[str, str]:
    """``(HEAD, git status --porcelain)``."""
    return (
        git(root, "rev-parse", "HEAD").strip(),
        git(root, "status", "--porcelain", "--untracked-files=all"),
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    result = invoke(["init", str(tmp_path / "store")])
    root = Path(result.stdout.strip())
    assert root == (tmp_path / "store").resolve()
    return root


@pytest.fixture
def session(store: Path) -> str:
    invoke(["new", "proj", "s1", "--idea", "A gym leaderboard"], store=store)
    return "proj/s1"


SESSION_DIR = "projects/proj/sessions/s1"
FEEDBACK_1 = f"{SESSION_DIR}/phase_1_draft/user_feedback.md"


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    """A two-phase workflow: a Python agent with a review gate, then a command agent."""
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / f"{AGENT_MODULE}.py").write_text(
        textwrap.dedent(
            """\
            import os

            def writer(ctx):
                mode = os.environ.get("CLI_TEST_AGENT", "")
                if mode == "interrupt":
                    raise KeyboardInterrupt
                if mode == "fail":
                    raise RuntimeError("model unavailable")
                note = ctx.feedback_comments or ""
                return f"# Draft {ctx.retry_count}\\r\\n{{{{ x }}}} {ctx.idea}\\r\\n{note}"
            """
        ),
        encoding="utf-8",
    )
    toml = write_two_phase_workflow(
        folder / "tiny.toml",
        name="tiny",
        first=python_agent(f"{AGENT_MODULE}:writer"),
        second=command_agent(ECHO_PROMPT),
    )
    return toml


@pytest.fixture
def waiting(store: Path, workflow: Path) -> str:
    """A ``tiny`` session run up to the review gate of phase 1."""
    invoke(
        ["run", "--new", "proj", "s1", "--idea", "gyms", "--workflow", str(workflow)], store=store
    )
    return "proj/s1"


# ------------------------------------------------------------------------------------ help


def test_every_command_has_help_with_an_example() -> None:
    assert "Example:" in invoke(["--help"]).stdout
    for name, command in cli.commands.items():
        result = invoke([name, "--help"])
        assert "Example:" in result.stdout, name
        assert f"mdsessions {name}" in result.stdout, name
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name), name
        for sub in getattr(command, "commands", {}):
            result = invoke([name, sub, "--help"])
            assert "Example:" in result.stdout, (name, sub)
            assert f"mdsessions {name} {sub}" in result.stdout, (name, sub)
            assert re.fullmatch(r"[a-z]+(-[a-z]+)*", sub), sub


def test_every_read_command_has_json() -> None:
    writes = {"init", "new", "checkpoint", "output", "feedback", "review", "watch", "serve"}
    for name, command in cli.commands.items():
        subs = getattr(command, "commands", None)
        for sub_name, sub in (subs or {name: command}).items():
            if name in writes or (name, sub_name) in {("remote", "add"), ("remote", "remove")}:
                continue
            assert any(p.name == "as_json" for p in sub.params), (name, sub_name)


def test_help_does_not_import_the_heavy_libraries() -> None:
    code = textwrap.dedent(
        """\
        import sys
        from mdsessions.cli import cli
        for args in [["--help"], *[[name, "--help"] for name in cli.commands]]:
            try:
                cli.main(args=args, prog_name="mdsessions")
            except SystemExit as exc:
                assert exc.code == 0, (args, exc.code)
        heavy = sorted(m for m in ("git", "jinja2", "yaml", "pydantic") if m in sys.modules)
        sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY=\n" in proc.stderr, proc.stderr


def test_help_as_a_process_imports_nothing_heavy() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mdsessions", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage: mdsessions" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "click" in imported  # the parse works: click is imported, as a top-level line
    for heavy in ("git", "jinja2", "yaml", "pydantic"):
        assert heavy not in imported


def test_version() -> None:
    assert invoke(["--version"]).stdout.strip() == "mdsessions, version 0.1.0"


def test_usage_errors_exit_2(store: Path, session: str) -> None:
    assert invoke(["nope"], code=2).exit_code == 2
    assert "Error: Missing argument 'SESSION'" in invoke(["status"], code=2, store=store).stderr
    assert (
        "Invalid value for 'PHASE'"
        in invoke(
            ["checkpoint", session, "one", "--status", "completed"], code=2, store=store
        ).stderr
    )
    assert (
        "Missing option '--status'"
        in invoke(["checkpoint", session, "1"], code=2, store=store).stderr
    )


# ------------------------------------------------------------------------------------ init, new


def test_init_is_idempotent_and_refuses_a_foreign_repository(tmp_path: Path, store: Path) -> None:
    assert invoke(["init", str(store)]).stdout.strip() == str(store)
    assert git(store, "log", "--format=%s") == "init: mdsessions store\n"
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    result = invoke(["init", str(other)], code=1)
    assert result.stderr == (
        f"Error: {other.resolve()} is already a git repository but not an mdsessions store; "
        "use an empty folder (mdsessions keeps its own repository)\n"
    )


def test_init_uses_the_store_option(tmp_path: Path) -> None:
    assert invoke(["--store", str(tmp_path / "s2"), "init"]).stdout.strip() == str(
        (tmp_path / "s2").resolve()
    )
    assert (tmp_path / "s2" / "mdsessions.toml").is_file()


def test_new_prints_the_session_and_commits(store: Path, tmp_path: Path) -> None:
    idea = tmp_path / "idea.md"
    idea.write_bytes("Ein Café\r\nfür alle\n".encode())
    result = invoke(
        ["new", "proj", "s1", "--mode", "full", "--idea-file", str(idea), "--tag", "pilot"],
        store=store,
    )
    assert result.stdout == "proj/s1\n"
    assert (
        git(store, "log", "-1", "--format=%s")
        == "session(proj/s1): created (idea_validation, full)\n"
    )
    data = json.loads(invoke(["status", "proj/s1", "--json"], store=store).stdout)["manifest"]
    assert data["idea"] == "Ein Café\r\nfür alle\n"
    assert data["tags"] == ["pilot"]
    assert [p["number"] for p in data["phases"]] == [1, 2, 3, 4, 5, 6, 7]
    generated = invoke(["new", "proj"], store=store).stdout.strip()
    assert generated.startswith("proj/session-")


def test_new_reads_the_idea_from_stdin(store: Path) -> None:
    invoke(["new", "proj", "s1", "--idea-file", "-"], input=b"from stdin\r\n", store=store)
    data = json.loads(invoke(["status", "proj/s1", "--json"], store=store).stdout)["manifest"]
    assert data["idea"] == "from stdin\r\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a/b"], f"invalid project id 'a/b': {BAD_ID}"),
        (["..", "s"], f"invalid project id '..': {BAD_ID}"),
        ([".hidden"], f"invalid project id '.hidden': {BAD_ID}"),
        (["proj", "a..b"], f"invalid session id 'a..b': {BAD_ID}"),
        (
            ["proj", "s", "--mode", "turbo"],
            "invalid execution mode 'turbo'; expected one of full, mvp",
        ),
    ],
)
def test_new_rejects_bad_input_and_changes_nothing(
    store: Path, args: list[str], message: str
) -> None:
    before = state(store)
    result = invoke(["new", *args], code=1, store=store)
    assert result.stderr == f"Error: {message}\n"
    assert result.stdout == ""
    assert state(store) == before


def test_new_twice_is_an_error(store: Path, session: str) -> None:
    result = invoke(["new", "proj", "s1"], code=1, store=store)
    assert result.stderr == "Error: session proj/s1 already exists\n"


def test_idea_and_idea_file_exclude_each_other(store: Path) -> None:
    result = invoke(["new", "p", "--idea", "x", "--idea-file", "-"], code=2, store=store)
    assert "give --idea or --idea-file, not both" in result.stderr


def test_no_store_here(tmp_path: Path) -> None:
    result = invoke(["list"], code=1)
    assert result.stderr == (
        f"Error: {(tmp_path / 'work').resolve()} is not inside an mdsessions store "
        "(no git repository found); run 'mdsessions init' first\n"
    )


def test_store_from_environment_and_from_command_option(store: Path, session: str) -> None:
    result = CliRunner().invoke(cli, ["list"], env={"MDSESSIONS_STORE": str(store)})
    assert result.exit_code == 0, result.stderr
    assert "proj" in result.stdout
    assert "s1" in invoke(["list", "--store", str(store)]).stdout


# ------------------------------------------------------------------------------------ list, status


def test_list_table_and_json(store: Path, session: str) -> None:
    invoke(["new", "other", "s2", "--mode", "full"], store=store)
    lines = invoke(["list"], store=store).stdout.splitlines()
    assert lines[0].split() == ["project", "session", "workflow", "mode", "status", "phase"] + [
        "updated",
        "(UTC)",
    ]
    assert lines[1].split()[:6] == ["other", "s2", "idea_validation", "full", "created", "1"]
    assert lines[2].split()[:5] == ["proj", "s1", "idea_validation", "mvp", "created"]
    data = json.loads(invoke(["list", "--json", "--project", "proj"], store=store).stdout)
    assert [(d["project"], d["session"]) for d in data] == [("proj", "s1")]
    assert set(data[0]) == {
        "project",
        "session",
        "workflow",
        "mode",
        "status",
        "current_phase",
        "created",
        "updated",
        "path",
    }
    assert data[0]["path"] == f"{SESSION_DIR}/session_manifest.md"
    assert json.loads(invoke(["list", "--json", "--status", "completed"], store=store).stdout) == []


def _models_json(value: object) -> str:
    """What ``echo_model`` printed before ``list``/``status`` stopped making these models."""
    return json.dumps(value, ensure_ascii=False, indent=2) + "\n"


def test_list_json_is_streamed_as_exactly_the_models_would_print_it(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The streamed ``list --json`` is byte for byte ``echo_model`` of the SessionEntry list."""
    from mdsessions import Store
    from mdsessions.cli import output
    from mdsessions.cli.output import SESSION_ENTRY_FIELDS
    from mdsessions.cli.schemas import SessionEntry

    monkeypatch.setattr(output, "_STREAM_CHUNK", 700)  # written in several pieces

    assert SESSION_ENTRY_FIELDS == tuple(SessionEntry.model_fields)
    assert invoke(["list", "--json"], store=store).stdout == "[]\n"
    invoke(["new", "proj", "s1", "--idea", 'Ünïcødé "quoted" \\ idea'], store=store)
    invoke(["new", "other", "s.2_x", "--mode", "full"], store=store)
    for k in range(4):
        invoke(["new", "many", f"s{k:03d}"], store=store)
    with Store.open(store) as opened:
        entries = [
            SessionEntry(
                project=m.project_id,
                session=m.session_id,
                workflow=m.workflow,
                mode=m.mode,
                status=m.status,
                current_phase=m.current_phase,
                created=m.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                updated=m.updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
                path=m.path,
            ).model_dump(mode="json", by_alias=True)
            for m in opened.list_sessions()
        ]
    out = invoke(["list", "--json"], store=store).stdout
    assert len(out) > 2 * 700
    assert out == _models_json(entries)
    assert json.loads(out) == entries
    one = invoke(["list", "--json", "--project", "other"], store=store).stdout
    assert one == _models_json([e for e in entries if e["project"] == "other"])


def test_status_json_is_exactly_the_session_state_model(store: Path, session: str) -> None:
    from mdsessions import Store
    from mdsessions.cli.schemas import SessionState

    with Store.open(store) as opened:
        found = opened.find_session(session)
        expected = SessionState(
            project=found.project_id,
            session=found.session_id,
            path=found.manifest_rel,
            manifest=found.manifest(),
        ).model_dump(mode="json", by_alias=True)
    assert invoke(["status", session, "--json"], store=store).stdout == _models_json(expected)


@pytest.mark.parametrize("args", [["list", "--json"], ["list"], ["status", "proj/s1", "--json"]])
def test_list_and_status_import_no_library_they_do_not_use(
    store: Path, session: str, args: list[str]
) -> None:
    """Cold commands: no GitPython, Jinja, PyYAML, python-frontmatter, nor the history API
    and every command's JSON models (``mdsessions.cli.schemas``)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mdsessions", "--store", str(store), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    for heavy in ("git", "jinja2", "yaml", "frontmatter", "mdsessions.cli.schemas"):
        assert heavy not in imported, heavy
    assert "mdsessions.history" not in imported


def test_list_rejects_an_unknown_status(store: Path) -> None:
    result = invoke(["list", "--status", "done"], code=2, store=store)
    assert (
        "Invalid value for '--status': 'done' is not one of created, in_progress" in result.stderr
    )


def test_status_table(store: Path, session: str) -> None:
    out = invoke(["status", session], store=store).stdout
    assert "session   proj/s1  (idea_validation, mode mvp)" in out
    assert "status    created, phase 1" in out
    rows = [line.split() for line in out.splitlines() if line[:2].strip().lstrip(">").isdigit()]
    assert [r[0].lstrip(">") for r in rows] == ["1", "2", "3", "6", "7"]
    assert rows[0][:4] == [">1", "Concept", "Expansion", "pending"]
    assert "totals    0 tokens in, 0 out; $0.0000; agent time 0.0s" in out


def test_status_json_by_unique_session_id(store: Path, session: str) -> None:
    result = json.loads(invoke(["status", "s1", "--json"], store=store).stdout)
    assert (result["project"], result["session"]) == ("proj", "s1")
    assert result["path"] == f"{SESSION_DIR}/session_manifest.md"
    data = result["manifest"]
    assert (data["project_id"], data["session_id"]) == ("proj", "s1")
    assert data["status"] == "created"
    assert data["current_phase"] == 1
    assert (
        data["phases"][0].items()
        >= {
            "number": 1,
            "slug": "concept",
            "name": "Concept Expansion",
            "status": "pending",
            "review": "required",
            "started": None,
            "completed": None,
            "duration": None,
            "retry_count": 0,
        }.items()
    )


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "proj/nope",
            "no session proj/nope in {root} "
            "(expected projects/proj/sessions/nope/session_manifest.md)",
        ),
        ("nope", "no session 'nope' in {root}"),
        ("proj/a/b", f"invalid session id 'a/b': {BAD_ID}"),
        ("../s1", f"invalid project id '..': {BAD_ID}"),
        (".git", f"invalid session id '.git': {BAD_ID}"),
    ],
)
def test_status_of_an_unknown_or_invalid_session(
    store: Path, session: str, ref: str, message: str
) -> None:
    result = invoke(["status", ref], code=1, store=store)
    assert result.stderr == "Error: " + message.format(root=store) + "\n"


# ------------------------------------------------------------------------------------ writes


def test_output_from_stdin_round_trips_bytes(store: Path, session: str) -> None:
    content = "# Résumé\r\n\r\n{{ x }} {% if y %}\r\n---\r\nno newline at end ✓".encode()
    before = git(store, "rev-parse", "HEAD").strip()
    result = invoke(
        [
            "output",
            session,
            "1",
            "concept_expansion",
            "--model",
            "m1",
            "--input-tokens",
            "3",
            "--output-tokens",
            "4",
            "--cost",
            "0.01",
            "--duration",
            "1.5",
            "--tool",
            "web",
        ],
        input=content,
        store=store,
    )
    rel = f"{SESSION_DIR}/phase_1_concept/concept_expansion.md"
    assert result.stdout == f"proj/s1: phase 1 concept_expansion completed ({rel})\n"
    assert git(store, "rev-list", "--count", f"{before}..HEAD").strip() == "1"
    assert state(store)[1] == ""
    raw = (store / rel).read_bytes()
    assert raw.endswith(b"\n" + content)
    data = json.loads(
        invoke(["show", session, "1", "concept_expansion", "--json"], store=store).stdout
    )["document"]
    assert data["content"].encode() == content
    assert (data["model"], data["input_tokens"], data["output_tokens"], data["cost"]) == (
        "m1",
        3,
        4,
        0.01,
    )
    assert data["tools_used"] == ["web"]
    shown = invoke(["show", session, "1", "concept_expansion"], store=store).stdout_bytes
    assert shown == raw


def test_output_from_a_file(store: Path, session: str, tmp_path: Path) -> None:
    source = tmp_path / "out.md"
    source.write_bytes(b"line\r\n")
    invoke(["output", session, "1", "writer", str(source), "--status", "failed"], store=store)
    data = json.loads(invoke(["show", session, "1", "writer", "--json"], store=store).stdout)[
        "document"
    ]
    assert (data["content"], data["status"]) == ("line\r\n", "failed")


def test_output_rejects_invalid_utf8_and_missing_files(
    store: Path, session: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.md"
    bad.write_bytes(b"ok\n\xff\xfe")
    before = state(store)
    result = invoke(["output", session, "1", "a", str(bad)], code=1, store=store)
    assert result.stderr == f"Error: {bad}: not valid UTF-8 (byte 3, line 2)\n"
    result = invoke(["output", session, "1", "a"], code=1, input=b"\xc3(", store=store)
    assert result.stderr == "Error: <stdin>: not valid UTF-8 (byte 0, line 1)\n"
    result = invoke(["output", session, "1", "a", "missing.md"], code=1, store=store)
    assert result.stderr == "Error: missing.md: No such file or directory\n"
    assert state(store) == before


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        ("../escape", f"invalid agent id '../escape': {BAD_ID}"),
        ("checkpoint", "invalid agent id 'checkpoint': the name is reserved"),
    ],
)
def test_output_rejects_bad_agent_ids(store: Path, session: str, agent: str, message: str) -> None:
    before = state(store)
    result = invoke(["output", session, "1", agent], code=1, input="x", store=store)
    assert result.stderr == f"Error: {message}\n"
    assert state(store) == before


def test_checkpoint_waits_for_review_then_feedback_approves(store: Path, session: str) -> None:
    invoke(["output", session, "1", "concept_expansion"], input="# C", store=store)
    result = invoke(
        ["checkpoint", session, "1", "--status", "completed", "--duration", "2"], store=store
    )
    feedback = store / SESSION_DIR / "phase_1_concept" / "user_feedback.md"
    assert result.stdout.splitlines() == [
        "proj/s1: phase 1 Concept Expansion completed; "
        "session awaiting_review at phase 1 (Concept Expansion)",
        f"review: {feedback}",
        "  set approved: true (or action: revise / reject) and run again",
        "  (or: mdsessions feedback proj/s1 1 --approve | --revise | --reject)",
    ]
    assert feedback.is_file()
    result = invoke(
        [
            "feedback",
            session,
            "1",
            "--approve",
            "--comment",
            "Nice {{ x }}",
            "--reviewer",
            "Ann <ann@example.com>",
        ],
        store=store,
    )
    assert result.stdout == (
        "proj/s1: phase 1 Concept Expansion approved; "
        "session in_progress at phase 2 (Market Research)\n"
    )
    assert git(store, "log", "-1", "--format=%an <%ae>").strip() == "Ann <ann@example.com>"
    data = json.loads(invoke(["show", session, "1", "feedback", "--json"], store=store).stdout)[
        "document"
    ]
    assert (data["approved"], data["action"], data["comments"]) == (
        True,
        "approved",
        "Nice {{ x }}",
    )


def test_checkpoint_errors(store: Path, session: str) -> None:
    before = state(store)
    result = invoke(["checkpoint", session, "4", "--status", "completed"], code=1, store=store)
    assert result.stderr == (
        "Error: phase 4 is not part of session proj/s1 (idea_validation, mode mvp: "
        "phases 1, 2, 3, 6, 7)\n"
    )
    result = invoke(["checkpoint", session, "1", "--status", "done"], code=1, store=store)
    assert result.stderr == (
        "Error: field 'status': invalid status 'done'; expected one of pending, in_progress, "
        "completed, failed, skipped\n"
    )
    assert state(store) == before


def test_checkpoint_failed_with_errors(store: Path, session: str) -> None:
    result = invoke(
        [
            "checkpoint",
            session,
            "1",
            "--status",
            "failed",
            "--error",
            "boom",
            "--error",
            "again",
            "--execution-mode",
            "parallel",
            "--retry-count",
            "2",
        ],
        store=store,
    )
    assert (
        result.stdout == "proj/s1: phase 1 Concept Expansion failed; "
        "session failed at phase 1 (Concept Expansion)\n"
    )
    data = json.loads(invoke(["show", session, "1", "--json"], store=store).stdout)["document"]
    assert (data["errors"], data["execution_mode"], data["retry_count"]) == (
        ["boom", "again"],
        "parallel",
        2,
    )


def test_feedback_needs_exactly_one_decision(store: Path, session: str) -> None:
    for args in ([], ["--approve", "--reject"]):
        result = invoke(["feedback", session, "1", *args], code=2, store=store)
        assert "Error: give exactly one of --approve, --revise or --reject" in result.stderr


def test_feedback_revise_with_changes_from_a_comment_file(
    store: Path, session: str, tmp_path: Path
) -> None:
    invoke(["checkpoint", session, "1", "--status", "completed"], store=store)
    comments = tmp_path / "c.md"
    comments.write_bytes(b"Line 1\r\nLine 2\n")
    result = invoke(
        [
            "feedback",
            session,
            "1",
            "--revise",
            "--comment-file",
            str(comments),
            "--change",
            "shorter",
            "--change",
            "audience: students",
            "--author",
            PERSON,
        ],
        store=store,
    )
    assert result.stdout.startswith(
        "proj/s1: phase 1 Concept Expansion revise; session in_progress"
    )
    data = json.loads(invoke(["show", session, "1", "feedback", "--json"], store=store).stdout)[
        "document"
    ]
    assert data["requested_changes"] == ["shorter", "audience: students"]
    assert data["comments"] == "Line 1\r\nLine 2\n"
    assert git(store, "log", "-1", "--format=%an <%ae>").strip() == PERSON


def test_feedback_with_a_bad_author(store: Path, session: str) -> None:
    before = state(store)
    result = invoke(
        ["feedback", session, "1", "--reject", "--author", "nobody"], code=1, store=store
    )
    assert result.stderr == "Error: expected an identity 'Name <email>', got 'nobody'\n"
    assert state(store) == before


# ------------------------------------------------------------------------------------ log, show


def test_log_text_and_json(store: Path, session: str) -> None:
    invoke(["checkpoint", session, "1", "--status", "in_progress"], store=store)
    out = invoke(["log", session, "-n", "1"], store=store).stdout.splitlines()
    sha = git(store, "rev-parse", "HEAD").strip()
    assert out[0].startswith(sha[:10] + "  ")
    assert out[0].endswith("  mdsessions <mdsessions@localhost>")
    assert out[1] == "    checkpoint(proj/s1): phase 1 Concept Expansion in_progress"
    assert "    Mdsessions-Kind: checkpoint" in out
    assert "    Mdsessions-Phase: 1" in out
    data = json.loads(invoke(["log", "--json"], store=store).stdout)
    assert [c["subject"].split("(")[0].split(":")[0] for c in data] == [
        "checkpoint",
        "session",
        "init",
    ]
    assert data[0] == {
        "commit": sha,
        "author": "mdsessions <mdsessions@localhost>",
        "time": data[0]["time"],
        "subject": "checkpoint(proj/s1): phase 1 Concept Expansion in_progress",
        "kind": "checkpoint",
        "project": "proj",
        "session": "s1",
        "phase": 1,
        "agent": None,
        "status": "in_progress",
        "session_status": "in_progress",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data[0]["time"])
    assert data[-1]["kind"] == "init" and data[-1]["project"] is None
    skipped = json.loads(invoke(["log", session, "--skip", "1", "--json"], store=store).stdout)
    assert [c["subject"] for c in skipped] == ["session(proj/s1): created (idea_validation, mvp)"]


def test_show_prints_files_exactly_and_reads_old_versions(store: Path, session: str) -> None:
    manifest = store / SESSION_DIR / "session_manifest.md"
    first = manifest.read_bytes()
    assert invoke(["show", session], store=store).stdout_bytes == first
    invoke(["checkpoint", session, "1", "--status", "in_progress"], store=store)
    assert invoke(["show", session], store=store).stdout_bytes == manifest.read_bytes() != first
    assert invoke(["show", session, "--at", "HEAD~1"], store=store).stdout_bytes == first
    checkpoint = (store / SESSION_DIR / "phase_1_concept" / "checkpoint.md").read_bytes()
    assert invoke(["show", session, "1"], store=store).stdout_bytes == checkpoint
    assert (
        invoke(["show", session, "1", "checkpoint", "--at", "HEAD"], store=store).stdout_bytes
        == checkpoint
    )
    data = json.loads(invoke(["show", session, "--at", "HEAD~1", "--json"], store=store).stdout)[
        "document"
    ]
    assert (data["schema"], data["status"], data["notes"]) == (
        "mdsessions/session_manifest/v1",
        "created",
        "",
    )


def test_show_errors(store: Path, session: str) -> None:
    rel = f"{SESSION_DIR}/phase_1_concept/checkpoint.md"
    result = invoke(["show", session, "1", "--at", "HEAD~1"], code=1, store=store)
    short = git(store, "rev-parse", "HEAD~1").strip()[:12]
    assert result.stderr == f"Error: {rel} does not exist at {short}\n"
    result = invoke(["show", session, "1", "../../s2/x"], code=1, store=store)
    assert result.stderr == (
        "Error: invalid document '../../s2/x': expected checkpoint, feedback or an agent id "
        "(a file name in the phase folder)\n"
    )
    result = invoke(["show", session, "1", "nobody"], code=1, store=store)
    assert result.stderr == (
        f"Error: {store}/{SESSION_DIR}/phase_1_concept/nobody.md: No such file or directory\n"
    )
    result = invoke(["show", session, "--at", "no-such-rev"], code=1, store=store)
    assert result.stderr.startswith("Error: ")
    assert "no-such-rev" in result.stderr


# ------------------------------------------------------------------------------------ validate


def test_validate_ok_and_problems(store: Path, session: str) -> None:
    assert invoke(["validate"], store=store).stdout == "ok: 1 session(s) valid\n"
    assert invoke(["validate", session], store=store).stdout == "ok: 1 session(s) valid\n"
    data = json.loads(invoke(["validate", "--json"], store=store).stdout)
    assert data == {"valid": True, "session_count": 1, "problems": []}
    invoke(["checkpoint", session, "1", "--status", "in_progress"], store=store)
    checkpoint = store / SESSION_DIR / "phase_1_concept" / "checkpoint.md"
    checkpoint.write_text(
        checkpoint.read_text(encoding="utf-8").replace("retry_count: 0", "retry_count: -1", 1),
        encoding="utf-8",
    )
    result = invoke(["validate"], code=1, store=store)
    rel = f"{SESSION_DIR}/phase_1_concept/checkpoint.md"
    assert result.stdout.startswith(f"{rel}:")
    assert "retry_count" in result.stdout
    assert result.stderr == "Error: 1 problem(s) found\n"
    data = json.loads(invoke(["validate", session, "--json"], code=1, store=store).stdout)
    assert data["valid"] is False
    assert data["problems"][0]["path"] == rel
    assert isinstance(data["problems"][0]["line"], int)


# ------------------------------------------------------------------------------------ run


def test_run_stops_at_the_review_gate_then_continues(
    store: Path, workflow: Path, tmp_path: Path
) -> None:
    result = invoke(
        ["run", "--new", "proj", "s1", "--idea", "gyms", "--workflow", str(workflow)], store=store
    )
    feedback = store / FEEDBACK_1
    assert result.stdout.splitlines() == [
        "proj/s1: ran phase 1; waiting for review of phase 1",
        f"review: {feedback}",
        "  set approved: true (or action: revise / reject) and run again",
        "  (or: mdsessions feedback proj/s1 1 --approve | --revise | --reject)",
    ]
    data = json.loads(invoke(["show", "proj/s1", "1", "writer", "--json"], store=store).stdout)[
        "document"
    ]
    assert data["content"] == "# Draft 0\r\n{{ x }} gyms\r\n"
    # The reviewer edits the file in an editor, then runs again.
    text = feedback.read_text(encoding="utf-8")
    feedback.write_text(text.replace("approved: false", "approved: true", 1), encoding="utf-8")
    result = invoke(["run", "proj/s1", "--workflow", str(workflow), "--json"], store=store)
    data = json.loads(result.stdout)
    assert data == {
        "project": "proj",
        "session": "s1",
        "status": "completed",
        "phases_run": [2],
        "waiting_for_review": None,
        "feedback_path": None,
        "recorded_feedback": [1],
        "message": "proj/s1: ran phase 2; session completed",
    }
    final = json.loads(invoke(["show", "proj/s1", "2", "finisher", "--json"], store=store).stdout)[
        "document"
    ]
    assert final["content"].startswith("# Task: Final (phase 2)")
    assert state(store)[1] == ""
    assert invoke(["validate"], store=store).stdout == "ok: 1 session(s) valid\n"


def test_run_json_when_waiting(store: Path, workflow: Path) -> None:
    result = invoke(
        ["run", "--new", "proj", "--idea", "x", "--workflow", str(workflow), "--json"], store=store
    )
    data = json.loads(result.stdout)
    assert data["status"] == "awaiting_review"
    assert data["waiting_for_review"] == 1
    assert data["feedback_path"].endswith("/phase_1_draft/user_feedback.md")
    assert (store / data["feedback_path"]).is_file()


def test_run_with_max_phases_on_a_new_session(store: Path, workflow: Path) -> None:
    result = invoke(
        [
            "run",
            "--new",
            "proj",
            "s1",
            "--idea",
            "x",
            "--workflow",
            str(workflow),
            "--max-phases",
            "0",
        ],
        store=store,
    )
    assert result.stdout == "proj/s1: ran no phase; session created\n"


def test_run_usage_errors(store: Path, workflow: Path) -> None:
    assert (
        "give a SESSION to continue, or --new PROJECT"
        in invoke(["run"], code=2, store=store).stderr
    )
    assert (
        "--new needs --idea TEXT or --idea-file FILE"
        in invoke(["run", "--new", "proj"], code=2, store=store).stderr
    )
    assert (
        "--idea, --mode: only with --new PROJECT"
        in invoke(["run", "proj/s1", "--idea", "x", "--mode", "all"], code=2, store=store).stderr
    )


def test_run_with_a_broken_feedback_edit_changes_nothing(
    store: Path, workflow: Path, waiting: str
) -> None:
    feedback = store / FEEDBACK_1
    lines = feedback.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("approved:"))
    lines[number - 1] = "approved: [true\n"
    feedback.write_text("".join(lines), encoding="utf-8")
    before = state(store)
    result = invoke(["run", waiting, "--workflow", str(workflow)], code=1, store=store)
    assert result.stderr.startswith(f"Error: {FEEDBACK_1}:")
    line = int(result.stderr.split(":")[2])
    assert number <= line <= number + 1
    assert "invalid YAML frontmatter" in result.stderr
    assert result.stdout == ""
    assert state(store) == before
    # `record` leaves it uncommitted too, and says why.
    result = invoke(["record", "--json"], code=1, store=store)
    data = json.loads(result.stdout)
    assert data["commit"] is None
    assert data["recorded"] == []
    assert [e["path"] for e in data["unrecorded"]] == [FEEDBACK_1]
    assert "invalid YAML frontmatter" in data["unrecorded"][0]["error"]
    assert json.loads(result.stderr) == {
        "error": {
            "type": "CommandError",
            "message": "1 file(s) not recorded: they do not validate (fix and record again)",
        }
    }
    assert state(store) == before
    assert "invalid YAML frontmatter" in invoke(["edits"], store=store).stdout


def test_run_records_a_failed_agent(
    store: Path, workflow: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_TEST_AGENT", "fail")
    result = invoke(
        ["run", "--new", "proj", "s1", "--idea", "x", "--workflow", str(workflow)],
        code=1,
        store=store,
    )
    rel = f"{SESSION_DIR}/phase_1_draft/writer.md"
    *progress, error = result.stderr.splitlines()  # progress lines, then the error
    assert error == (
        "Error: agent 'writer' failed in phase 1 (Draft) of proj/s1: RuntimeError: model "
        f"unavailable; recorded in {rel}. Run again to retry the phase."
    )
    assert "]   1/1 writer: failed after " in progress[-1]
    assert (
        json.loads(invoke(["status", "proj/s1", "--json"], store=store).stdout)["manifest"][
            "status"
        ]
        == "failed"
    )
    monkeypatch.delenv("CLI_TEST_AGENT")
    result = invoke(["run", "proj/s1", "--workflow", str(workflow)], store=store)
    assert result.stdout.startswith("proj/s1: ran phase 1; waiting for review of phase 1")


def test_interrupt_exits_130(store: Path, workflow: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_TEST_AGENT", "interrupt")
    result = invoke(
        ["run", "--new", "proj", "s1", "--idea", "x", "--workflow", str(workflow)],
        code=130,
        store=store,
    )
    assert result.stderr.endswith("1/1 writer: started\nInterrupted\n")  # after run's progress


# ------------------------------------------------------------------------------------ edits


def test_edits_and_record(store: Path, waiting: str, tmp_path: Path) -> None:
    assert json.loads(invoke(["edits", "--json"], store=store).stdout) == []
    feedback = store / FEEDBACK_1
    text = feedback.read_text(encoding="utf-8")
    feedback.write_text(
        text.replace("action: pending", "action: revise", 1).replace(
            "## User Comments\n", "## User Comments\n\nMore {{ detail }}, please.\n", 1
        ),
        encoding="utf-8",
    )
    data = json.loads(invoke(["edits", "--json"], store=store).stdout)
    assert data == [{"path": FEEDBACK_1, "change": "modified", "error": None}]
    assert invoke(["edits"], store=store).stdout == f"modified  {feedback}\n"
    result = invoke(["record", str(feedback), "--author", PERSON, "--json"], store=store)
    data = json.loads(result.stdout)
    assert data["commit"] == git(store, "rev-parse", "HEAD").strip()
    assert data["recorded"] == [{"path": FEEDBACK_1, "change": "modified", "error": None}]
    assert data["unrecorded"] == []
    assert git(store, "log", "-1", "--format=%an <%ae>%n%s").splitlines() == [
        PERSON,
        "user_feedback(proj/s1): phase 1 revise",
    ]
    assert state(store)[1] == ""
    assert invoke(["record"], store=store).stderr == "nothing to record\n"


def test_record_paths_relative_to_the_store_and_outside(
    store: Path, waiting: str, tmp_path: Path
) -> None:
    feedback = store / FEEDBACK_1
    feedback.write_text(
        feedback.read_text(encoding="utf-8").replace("approved: false", "approved: true", 1),
        encoding="utf-8",
    )
    result = invoke(["record", "../../etc/passwd"], code=1, store=store)
    assert result.stderr == f"Error: ../../etc/passwd: not inside the store {store}\n"
    result = invoke(["record", FEEDBACK_1, "-m", "approve the draft"], store=store)
    assert result.stdout.splitlines() == [
        f"recorded 1 file(s) in {git(store, 'rev-parse', 'HEAD')[:10]}",
        f"  modified  {feedback}",
    ]
    assert git(store, "log", "-1", "--format=%s%n%an").splitlines() == [
        "approve the draft",
        "Test Person",
    ]


# ------------------------------------------------------------------------------------ process


def test_real_process_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "ps"
    proc = run_process("init", str(root))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == str(root.resolve())
    proc = run_process("new", "proj", "s1", cwd=root)
    assert (proc.returncode, proc.stdout) == (0, b"proj/s1\n"), proc.stderr
    content = b"crlf\r\n{{ x }}\r\n\xe2\x9c\x93 no final newline"
    proc = run_process("output", "s1", "1", "concept_expansion", "-", input=content, cwd=root)
    assert proc.returncode == 0, proc.stderr
    proc = run_process("show", "proj/s1", "1", "concept_expansion", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["document"]["content"].encode() == content
    proc = run_process("status", "proj/s1", "--json", cwd=root)
    assert json.loads(proc.stdout)["manifest"]["status"] == "in_progress"
    assert state(root)[1] == ""


def test_real_process_errors(tmp_path: Path, store: Path, session: str) -> None:
    proc = run_process("--store", str(store), "status", "proj/.x")
    assert proc.returncode == 1
    assert proc.stderr.decode() == f"Error: invalid session id '.x': {BAD_ID}\n"
    assert proc.stdout == b""
    proc = run_process("--store", str(store), "checkpoint", "proj/s1", "1")
    assert proc.returncode == 2
    assert b"Missing option '--status'" in proc.stderr
    proc = run_process("status", "proj/s1", cwd=tmp_path / "work")
    assert proc.returncode == 1
    assert b"Traceback" not in proc.stderr
    assert proc.stderr.startswith(b"Error: ")
    proc = run_process("--store", str(store), "status", "proj/.x", "--json")
    assert (proc.returncode, proc.stdout) == (1, b"")
    assert json.loads(proc.stderr) == {
        "error": {"type": "InvalidIdentifierError", "message": f"invalid session id '.x': {BAD_ID}"}
    }


def test_real_process_json_is_utf8(store: Path) -> None:
    proc = run_process("--store", str(store), "new", "proj", "s1", "--idea", "Café ✓")
    assert proc.returncode == 0, proc.stderr
    proc = run_process("--store", str(store), "status", "proj/s1", "--json")
    assert "Café ✓".encode() in proc.stdout
    assert json.loads(proc.stdout)["manifest"]["idea"] == "Café ✓"


# ------------------------------------------------------------------------------------ errors


def test_json_errors_are_one_object_on_stderr(store: Path, session: str) -> None:
    result = invoke(["status", "proj/nope", "--json"], code=1, store=store)
    assert result.stdout == ""
    assert json.loads(result.stderr) == {
        "error": {
            "type": "SessionNotFoundError",
            "message": f"no session proj/nope in {store} "
            "(expected projects/proj/sessions/nope/session_manifest.md)",
        }
    }
    result = invoke(["show", session, "1", "nobody", "--json"], code=1, store=store)
    error = json.loads(result.stderr)["error"]
    assert error["type"] == "FileNotFoundError"
    assert error["message"].endswith("phase_1_concept/nobody.md: No such file or directory")
    result = invoke(["versions", "--json"], code=2, store=store)
    assert json.loads(result.stderr) == {
        "error": {"type": "MissingParameter", "message": "Missing argument 'SESSION'."}
    }
    # `--json` after `--` is an argument, not the option: the error is text.
    result = invoke(["show", session, "1", "--", "--json"], code=1, store=store)
    assert result.stderr.startswith("Error: ")


@pytest.fixture
def broken_open(monkeypatch: pytest.MonkeyPatch) -> Callable[[BaseException], None]:
    """Make ``Store.open`` raise the given exception (a stand-in for a bug or a Ctrl-C)."""
    from mdsessions import Store

    def breaks(exc: BaseException) -> None:
        def open_(*args: object, **kwargs: object) -> NoReturn:
            raise exc

        monkeypatch.setattr(Store, "open", open_)

    return breaks


def test_a_bug_keeps_its_traceback_and_asks_for_a_report(
    store: Path, broken_open: Callable[[BaseException], None]
) -> None:
    broken_open(ZeroDivisionError("a bug"))
    for args in (["list"], ["list", "--json"]):
        result = CliRunner().invoke(cli, ["--store", str(store), *args])
        assert isinstance(result.exception, ZeroDivisionError)  # re-raised: Python prints it
        assert result.stderr == BUG_REPORT + "\n"
    broken_open(ValueError("not the user's to fix"))  # a plain ValueError is a bug too
    result = CliRunner().invoke(cli, ["--store", str(store), "list"])
    assert isinstance(result.exception, ValueError)
    assert result.stderr == BUG_REPORT + "\n"


def test_ctrl_c_exits_130(store: Path, broken_open: Callable[[BaseException], None]) -> None:
    broken_open(KeyboardInterrupt())
    result = invoke(["list"], code=130, store=store)
    assert result.stderr == "Interrupted\n"
    result = invoke(["list", "--json"], code=130, store=store)
    assert json.loads(result.stderr) == {
        "error": {"type": "KeyboardInterrupt", "message": "Interrupted"}
    }


def test_real_process_bug_report(store: Path) -> None:
    code = textwrap.dedent(
        """\
        import sys
        from mdsessions import Store
        from mdsessions.cli import main

        def broken(*args, **kwargs):
            raise ZeroDivisionError("a bug")

        Store.open = broken
        main(sys.argv[1:])
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--store", str(store), "list"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == BUG_REPORT
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ZeroDivisionError: a bug"


def test_every_error_is_an_mdsessions_error_with_a_builtin_mixin() -> None:
    import mdsessions.errors as errors
    import mdsessions.runner as runner

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.MdsessionsError), name
        if cls is not errors.MdsessionsError:
            builtins = [
                base
                for base in cls.__mro__
                if base.__module__ == "builtins" and base not in (Exception, BaseException, object)
            ]
            assert builtins, f"{name} has no builtin mix-in"
    assert runner.AgentExecutionError is errors.AgentExecutionError
    assert issubclass(errors.AgentExecutionError, RuntimeError)


# ------------------------------------------------------------------------------------ layout

CLI_DIR = ROOT / "mdsessions" / "cli"
PUBLIC = {"mdsessions", "mdsessions.history", "mdsessions.web"}  # web: in `serve` only
HEAVY = {"git", "jinja2", "yaml", "frontmatter"}  # pydantic: only inside commands (see --help)


def _imports(path: Path) -> list[str]:
    """The modules a file imports (``from a import b`` counts as ``a`` and ``a.b``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def test_the_cli_imports_only_the_public_api() -> None:
    for path in sorted(CLI_DIR.glob("*.py")):
        for name in _imports(path):
            root = name.split(".")[0]
            assert root not in HEAVY, (path.name, name)
            if root != "mdsessions" or name.startswith("mdsessions.cli"):
                continue
            module = name if name in PUBLIC else name.rsplit(".", 1)[0]
            assert module in PUBLIC, (path.name, name)


def test_the_cli_modules_import_without_a_cycle() -> None:
    """``app`` imports no other CLI module; command modules never import the package."""
    for path in sorted(CLI_DIR.glob("*.py")):
        own = {n for n in _imports(path) if n.startswith("mdsessions.cli")}
        if path.name == "app.py":
            assert own == set(), own
        elif path.name != "__init__.py":
            assert "mdsessions.cli" not in own, path.name
    code = "import mdsessions.cli.app, mdsessions.cli.history, mdsessions.cli.remote"
    subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True
    )


def test_commands_are_defined_at_module_level() -> None:
    for path in sorted(CLI_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for outer in ast.walk(tree):
            if not isinstance(outer, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(outer):
                if inner is not outer and isinstance(inner, ast.FunctionDef):
                    assert not inner.decorator_list, (path.name, outer.name, inner.name)
