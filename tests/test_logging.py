"""Progress and logs: the runner's events, the ``mdsessions.*`` loggers, the CLI's output options.

Issue 15 item 5. The runner reports a :class:`RunEvent` at each phase and agent start and end;
the package logs each operation (store writes, runner steps, recovery, sync, maintenance,
backups) through stdlib logging with ids and figures only; the command line has ``-q``/``-v``,
``--log-json`` (``MDSESSIONS_LOG=json``) and ``--color``/``--no-color`` on every command,
honours ``NO_COLOR``, and ``run`` shows progress on stderr (live rows on a terminal, plain
lines otherwise). tests/test_security.py checks that no content or secret reaches a log.
"""

from __future__ import annotations

import json
import logging
import os
import pty
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from helpers import REPO_ROOT, command_agent, git, head

from mdsessions import (
    AgentContext,
    AgentFailedError,
    AgentResult,
    RunEvent,
    RunEventKind,
    Runner,
    Store,
    history,
)
from mdsessions.cli import cli

P, S = "proj", "s1"
K = RunEventKind


def write_workflow(path: Path, phases: int = 4, agents: int = 1, code: str = "") -> Path:
    """A workflow of ``phases`` phases without review gates, ``agents`` command agents each."""
    code = code or "import sys; sys.stdin.read(); print('# out')"
    lines = [
        '[workflow]\nname = "plain"\ndefault_mode = "all"\n',
        f"[modes]\nall = {list(range(1, phases + 1))}\n",
    ]
    for n in range(1, phases + 1):
        names = [f"agent{n}_{i}" for i in range(1, agents + 1)]
        lines.append(
            f'[[phases]]\nnumber = {n}\nslug = "p{n}"\nname = "Phase {n}"\n'
            f"agents = {json.dumps(names)}\n"
        )
        lines += [f"[agents.{name}]\n{command_agent(code)}\n" for name in names]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record of the ``mdsessions`` loggers at INFO and above, while the test runs."""
    found: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(record)

    logger = logging.getLogger("mdsessions")
    handler, level = Keep(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield found
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def ops(found: list[logging.LogRecord], operation: str) -> list[logging.LogRecord]:
    return [r for r in found if getattr(r, "operation", None) == operation]


# ------------------------------------------------------------------------------ runner events


def test_the_runner_reports_each_phase_and_agent_start_and_end(
    store: Store, tmp_path: Path
) -> None:
    events: list[RunEvent] = []

    def agent(ctx: AgentContext) -> AgentResult:
        return AgentResult(content="# out\n", input_tokens=10, output_tokens=5, cost=0.25)

    workflow = write_workflow(tmp_path / "wf.toml", phases=2, agents=2)
    names = ["agent1_1", "agent1_2", "agent2_1", "agent2_2"]
    runner = Runner(store, workflow, agents=dict.fromkeys(names, agent), on_event=events.append)
    result = runner.start(P, S, idea="x")
    assert result.phases_run == (1, 2)
    assert [(e.kind, e.phase, e.agent) for e in events] == [
        (K.PHASE_STARTED, 1, None),
        (K.AGENT_STARTED, 1, "agent1_1"),
        (K.AGENT_COMPLETED, 1, "agent1_1"),
        (K.AGENT_STARTED, 1, "agent1_2"),
        (K.AGENT_COMPLETED, 1, "agent1_2"),
        (K.PHASE_COMPLETED, 1, None),
        (K.PHASE_STARTED, 2, None),
        (K.AGENT_STARTED, 2, "agent2_1"),
        (K.AGENT_COMPLETED, 2, "agent2_1"),
        (K.AGENT_STARTED, 2, "agent2_2"),
        (K.AGENT_COMPLETED, 2, "agent2_2"),
        (K.PHASE_COMPLETED, 2, None),
    ]
    done = events[4]
    assert (done.agent_index, done.agent_count, done.tokens, done.cost) == (2, 2, 15, 0.25)
    assert done.ref == f"{P}/{S}" and done.phase_name == "Phase 1"
    assert done.duration is not None and done.duration >= 0
    assert events[0].duration is None and events[5].duration is not None


def test_a_failed_agent_is_reported_and_the_retry_reports_what_it_keeps(
    store: Store, tmp_path: Path
) -> None:
    events: list[RunEvent] = []
    calls: list[str] = []

    def flaky(ctx: AgentContext) -> str:
        calls.append(ctx.agent_name)
        if len(calls) == 2:
            raise RuntimeError("transient")
        return "# out\n"

    workflow = write_workflow(tmp_path / "wf.toml", phases=1, agents=2)
    agents = {"agent1_1": flaky, "agent1_2": flaky}
    runner = Runner(store, workflow, agents=agents, on_event=events.append)
    with pytest.raises(AgentFailedError):
        runner.start(P, S, idea="x")
    assert [e.kind for e in events][-1] is K.AGENT_FAILED
    assert events[-1].agent == "agent1_2" and events[-1].duration is not None
    events.clear()
    runner.run(f"{P}/{S}")
    assert [(e.kind, e.agent) for e in events] == [
        (K.PHASE_STARTED, None),
        (K.AGENT_SKIPPED, "agent1_1"),
        (K.AGENT_STARTED, "agent1_2"),
        (K.AGENT_COMPLETED, "agent1_2"),
        (K.PHASE_COMPLETED, None),
    ]


def test_runner_events_are_logged(store: Store, records: list[logging.LogRecord]) -> None:
    session = Runner(store, agents={"concept_expansion": lambda ctx: "# c\n"}).start(P, S, idea="x")
    assert session.waiting_for_review == 1
    started, completed = ops(records, "run.agent_started"), ops(records, "run.agent_completed")
    assert len(started) == len(completed) == 1
    record: Any = completed[0]
    assert record.name == "mdsessions.runner"
    assert (record.session, record.phase, record.agent) == (f"{P}/{S}", 1, "concept_expansion")
    assert record.duration_ms >= 0 and record.tokens == 0 and record.cost_usd == 0


# ------------------------------------------------------------------------------ store logs


def test_each_store_write_is_logged_with_session_commit_and_duration(
    store: Store, records: list[logging.LogRecord]
) -> None:
    session = store.create_session(P, S)
    session.save_agent_output(1, "concept_expansion", "# body\n")
    session.save_checkpoint(1, status="completed")
    writes = [r for r in records if r.name == "mdsessions.store"]
    assert [getattr(r, "operation", None) for r in writes] == [
        "session",
        "agent_output",
        "checkpoint",
    ]
    last: Any = writes[-1]
    assert last.session == f"{P}/{S}" and last.phase == 1 and last.status == "completed"
    assert last.commit == head(store.root).strip() and isinstance(last.duration_ms, float)
    assert last.files >= 2
    assert last.getMessage().startswith(f"checkpoint {P}/{S}: commit {last.commit[:12]}")


def test_nothing_is_logged_at_the_default_level(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mdsessions"):
        store.create_session(P, S).save_checkpoint(1, status="completed")
    assert caplog.records == []


def test_recovery_is_logged_as_a_warning(store: Store, records: list[logging.LogRecord]) -> None:
    store.create_session(P, S)
    root = store.root
    store.close()
    journal = root / ".git" / "mdsessions" / "journal.json"
    journal.write_text("{torn", encoding="utf-8")  # a writer killed while writing it
    with Store.open(root) as reopened:
        reopened.session(P, S).save_checkpoint(1, status="in_progress")
    found = ops(records, "recover")
    assert found and found[0].levelno == logging.WARNING
    assert found[0].name == "mdsessions.git.recovery"
    assert not journal.exists()


def test_push_pull_maintenance_and_backups_are_logged(
    store: Store, tmp_path: Path, remotes_dir: Path, records: list[logging.LogRecord]
) -> None:
    store.create_session(P, S)
    history.add_remote(store, "origin", str(remotes_dir / "store.git"))
    history.push(store, "origin")
    clone = history.clone(str(remotes_dir / "store.git"), tmp_path / "clone")
    try:
        clone.session(P, S).save_checkpoint(1, status="in_progress")
        history.push(clone, "origin")
    finally:
        clone.close()
    history.pull(store, "origin")
    history.maintenance(store)
    history.create_backup(store, tmp_path / "backups")
    (push, *_) = ops(records, "push")
    assert push.name == "mdsessions.history.remotes"
    (pull,) = ops(records, "pull")
    assert pull.action == "fast-forward"
    assert pull.commit == head(store.root).strip()
    steps = {r.operation for r in records if r.name == "mdsessions.history.maintenance"}
    assert steps == {"maintenance.pack-refs", "maintenance.repack", "maintenance.commit-graph"}
    assert ops(records, "backup")
    assert all(str(remotes_dir) not in r.getMessage() for r in records)  # no URL is logged


# ------------------------------------------------------------------------------ CLI options


def invoke(args: list[str], *, env: dict[str, str] | None = None, color: bool = False) -> Any:
    return CliRunner().invoke(cli, args, env=env, color=color)


def _all_commands(command: click.Command, path: str = "") -> Iterator[tuple[str, click.Command]]:
    yield path or "mdsessions", command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _all_commands(sub, f"{path} {name}".strip())


def test_every_command_takes_the_output_options() -> None:
    for name, command in _all_commands(cli):
        opts = {o for p in command.params for o in getattr(p, "opts", ())}
        secondary = {o for p in command.params for o in getattr(p, "secondary_opts", ())}
        assert {"-q", "--quiet", "-v", "--verbose", "--log-json", "--color"} <= opts, name
        assert "--no-color" in secondary, name


def test_verbose_logs_each_operation_and_quiet_silences(store: Store) -> None:
    root = str(store.root)
    quiet = invoke(["--store", root, "new", P, S, "--idea", "x"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    loud = invoke(["checkpoint", f"{P}/{S}", "1", "--status", "in_progress", "--store", root, "-v"])
    assert loud.exit_code == 0, loud.output
    assert f"INFO mdsessions.store: checkpoint {P}/{S}: commit " in loud.stderr
    both = invoke(["-q", "status", f"{P}/{S}", "--store", root, "-v"])
    assert both.exit_code == 2 and "-q/--quiet and -v/--verbose" in both.stderr


def test_the_cli_leaves_the_logging_configuration_as_it_found_it(store: Store) -> None:
    logger = logging.getLogger("mdsessions")
    before = (list(logger.handlers), logger.level)
    result = invoke(["-vv", "--log-json", "list", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert (list(logger.handlers), logger.level) == before


@pytest.mark.parametrize(
    ("args", "env", "coloured"),
    [
        ([], {}, True),
        ([], {"NO_COLOR": "1"}, False),
        (["--no-color"], {}, False),
        (["--color"], {"NO_COLOR": "1"}, True),
        (["--no-color", "--color"], {}, True),  # the last one given wins
    ],
)
def test_no_color_and_the_color_options(
    store: Store, args: list[str], env: dict[str, str], coloured: bool
) -> None:
    store.create_session(P, S)
    # color=True: as on a terminal (CliRunner would strip colours otherwise).
    result = invoke(["status", f"{P}/{S}", "--store", str(store.root), *args], env=env, color=True)
    assert result.exit_code == 0, result.output
    assert ("\x1b[" in result.stdout) is coloured


# ------------------------------------------------------------------------------ run as a process


def run_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mdsessions", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
        check=False,
        timeout=120,
    )


def test_a_four_phase_run_prints_a_line_as_each_phase_and_agent_starts_and_ends(
    store: Store, tmp_path: Path
) -> None:
    workflow = write_workflow(tmp_path / "wf.toml", phases=4)
    proc = run_process(
        "run", "--new", P, "--idea", "x", "--workflow", str(workflow), cwd=store.root
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 4 * 4, proc.stderr  # phase start/end + agent start/end, 4 phases
    for n in range(1, 5):
        assert any(f"] phase {n} Phase {n}: started, 1 agent" in line for line in lines)
        assert any(f"] phase {n} Phase {n}: completed in " in line for line in lines)
        assert any(f"]   1/1 agent{n}_1: completed in " in line for line in lines)
    assert all(line.startswith("[") and "s] " in line for line in lines)
    assert "ran phases 1, 2, 3, 4; session completed" in proc.stdout
    quiet = run_process(
        "run", "--new", P, "--idea", "x", "--workflow", str(workflow), "-q", cwd=store.root
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    as_json = run_process(
        "run", "--new", P, "--idea", "x", "--workflow", str(workflow), "--json", cwd=store.root
    )
    assert as_json.returncode == 0 and as_json.stderr == ""
    assert json.loads(as_json.stdout)["phases_run"] == [1, 2, 3, 4]


@pytest.mark.parametrize("how", ["--log-json", "MDSESSIONS_LOG=json"])
def test_log_json_writes_json_lines(store: Store, tmp_path: Path, how: str) -> None:
    workflow = write_workflow(tmp_path / "wf.toml", phases=2)
    args = ["run", "--new", P, S, "--idea", "x", "--workflow", str(workflow), "--json"]
    env = {"MDSESSIONS_LOG": "json"} if how.startswith("MDSESSIONS_LOG") else {}
    proc = run_process(*args, *([how] if how == "--log-json" else []), cwd=store.root, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(x) for x in lines)
    writes = [x for x in lines if x["logger"] == "mdsessions.store"]
    commits = git(store.root, "log", "--format=%H", "--reverse").split()[1:]
    assert [x["commit"] for x in writes] == commits  # every write, in order, with its commit
    assert all(x["session"] == f"{P}/{S}" and x["duration_ms"] >= 0 for x in writes)
    steps = [x["operation"] for x in lines if x["logger"] == "mdsessions.runner"]
    assert steps == 2 * [
        "run.phase_started",
        "run.agent_started",
        "run.agent_completed",
        "run.phase_completed",
    ]


def _on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run the CLI with stderr on a pseudo-terminal; what it drew there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdsessions", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TERM": "xterm", **env},
    )
    os.close(follower)
    drawn = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process ended
            break
        if not chunk:
            break
        drawn += chunk
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    return drawn.decode("utf-8", "replace")


@pytest.mark.parametrize("no_color", [False, True])
def test_live_progress_on_a_terminal(store: Store, tmp_path: Path, no_color: bool) -> None:
    workflow = write_workflow(tmp_path / "wf.toml", phases=2, agents=2)
    env = {"NO_COLOR": "1"} if no_color else {"NO_COLOR": ""}
    drawn = _on_a_terminal(
        ["run", "--new", P, "--idea", "x", "--workflow", str(workflow)], store.root, env
    )
    assert "phase 1 Phase 1" in drawn and "phase 2 Phase 2" in drawn
    assert "2/2" in drawn and "agent1_2" in drawn
    assert "[" not in drawn.replace("\x1b[", "")  # live rows, not the plain lines
    # NO_COLOR takes colours away (bold may stay: https://no-color.org).
    colours = [code for code in ("\x1b[32m", "\x1b[33m", "\x1b[90m") if code in drawn]
    assert (colours == []) is no_color, colours


def test_help_does_not_import_rich_or_logging() -> None:
    code = (
        "import sys\nfrom mdsessions.cli import main\n"
        "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('rich', 'logging', 'pythonjsonlogger') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=True,
    )
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "-v, --verbose" in proc.stdout and "--no-color" in proc.stdout


def test_quiet_silences_notes_on_stderr(store: Store) -> None:
    root = str(store.root)
    assert invoke(["record", "--store", root]).stderr == "nothing to record\n"
    quiet = invoke(["record", "--store", root, "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_debug_adds_the_writer_lock_wait(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="mdsessions"):
        store.create_session(P, S)
    locks: list[Any] = [r for r in caplog.records if getattr(r, "operation", None) == "lock"]
    assert len(locks) == 1
    assert locks[0].name == "mdsessions.git.repo" and locks[0].duration_ms >= 0
