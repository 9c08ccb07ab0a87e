"""Security: path traversal and symlinks, content never evaluated, sandboxed store templates,
safe YAML only, hooks of a cloned store off unless enabled, no secrets in logs.

Complements tests/test_git.py (session/phase/file symlinks refused for ``save_agent_output``,
non-plain paths refused by the git layer, hooks never run in a fresh store).
"""

from __future__ import annotations

import ast
import contextlib
import io
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO_ROOT, assert_clean, git, snapshot, tree_digest

from mdsessions import (
    AgentContext,
    AgentFailedError,
    CommandAgent,
    DocumentError,
    InvalidIdentifierError,
    MdsessionsError,
    Runner,
    Session,
    Store,
    StoreError,
    history,
    idea_validation,
)
from mdsessions.documents import yaml as _yaml

P, S = "project-123", "session-456"
SECRET = "sk-live-" + "4f9Xq2ZL7uVb0T3kRw8YhN1cJ6mPa5Ed"
AGENT_NAMES = [name for phase in idea_validation().phases for name in phase.agents]


@pytest.fixture
def session(store: Store) -> Session:
    return store.create_session(P, S, mode="full")


def outside_digest(tmp_path: Path, store: Store) -> str:
    """Everything under tmp_path except the store itself (to see writes that escaped)."""
    parts = []
    for path in sorted(tmp_path.rglob("*")):
        if store.root in (path, *path.parents) or path.name == "gitconfig":
            continue
        parts.append(path.relative_to(tmp_path).as_posix())
        if path.is_file() and not path.is_symlink():
            parts.append(str(hash(path.read_bytes())))
    return "\n".join(parts)


# ------------------------------------------------------------------------------ path traversal

BAD_IDS = [
    "..",
    "../outside",
    "a/../../b",
    "a/b",
    "/etc",
    ".git",
    ".hidden",
    "a..b",
    "a\\..\\b",
    "a\x00b",
    "\u2024\u2024",  # one dot leader twice: looks like '..'
    "a\nb",
    "-rf",
    "",
    "x" * 129,
    "séance",
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_that_could_leave_the_store_are_refused(
    store: Store, session: Session, tmp_path: Path, bad: str
) -> None:
    before = snapshot(store.root)
    outside = outside_digest(tmp_path, store)
    calls: list[Callable[[], Any]] = [
        lambda: store.create_session(bad, "s"),
        lambda: store.create_session(P, bad),
        lambda: store.session(bad, S),
        lambda: store.session(P, bad),
        lambda: store.find_session(bad),
        lambda: session.save_agent_output(1, bad, "x\n"),
        lambda: session.output(1, bad),
    ]
    for call in calls:
        with pytest.raises((InvalidIdentifierError, MdsessionsError)) as info:
            call()
        assert isinstance(info.value, (InvalidIdentifierError, MdsessionsError))
    assert snapshot(store.root) == before
    assert outside_digest(tmp_path, store) == outside


def _move_outside(folder: Path, outside: Path) -> None:
    """Replace ``folder`` by a symlink to a copy of it outside the store."""
    shutil.copytree(folder, outside, symlinks=True)
    shutil.rmtree(folder)
    folder.symlink_to(outside, target_is_directory=True)


@pytest.mark.parametrize("level", ["projects", "project", "sessions"])
def test_a_symlinked_parent_folder_is_refused(
    store: Store, session: Session, tmp_path: Path, level: str
) -> None:
    folder = {
        "projects": store.root / "projects",
        "project": store.root / "projects" / P,
        "sessions": store.root / "projects" / P / "sessions",
    }[level]
    outside = tmp_path / f"outside-{level}"
    _move_outside(folder, outside)
    before_outside = tree_digest(outside)
    head_before = git(store.root, "rev-parse", "HEAD")
    for call in (
        lambda: store.create_session(P, "another"),
        lambda: session.save_agent_output(1, "concept_expansion", "escape?\n"),
        lambda: session.save_checkpoint(1, status="completed"),
    ):
        with pytest.raises(StoreError, match="symbolic link"):
            call()
    assert tree_digest(outside) == before_outside
    assert git(store.root, "rev-parse", "HEAD") == head_before


def test_every_write_through_a_symlinked_session_folder_is_refused(
    store: Store, session: Session, tmp_path: Path
) -> None:
    """test_git covers save_agent_output; here: checkpoint, feedback, record, runner, restore."""
    session.save_agent_output(1, "concept_expansion", "first\n")
    first = git(store.root, "rev-parse", "HEAD").strip()
    session.save_checkpoint(1, status="completed")
    outside = tmp_path / "outside"
    _move_outside(session.path, outside)
    feedback = outside / "phase_1_concept" / "user_feedback.md"
    feedback.write_text(
        feedback.read_text(encoding="utf-8").replace("\napproved: false\n", "\napproved: true\n"),
        encoding="utf-8",
    )
    before_outside = tree_digest(outside)
    head_before = git(store.root, "rev-parse", "HEAD")
    runner = Runner(store, agents={n: (lambda ctx: "# out\n") for n in AGENT_NAMES})
    calls: list[Callable[[], Any]] = [
        lambda: session.save_checkpoint(1, status="in_progress"),
        lambda: session.save_feedback(1, action="approved"),
        lambda: session.record_feedback(1),
        lambda: store.record_edits(),
        lambda: runner.run(session),
        lambda: history.restore(session, first, force=True),
    ]
    for call in calls:
        with contextlib.suppress(MdsessionsError, OSError):
            call()  # refused (or nothing to do): what matters is where bytes went
    assert tree_digest(outside) == before_outside, "a write went through the symlink"
    assert git(store.root, "rev-parse", "HEAD") == head_before


def test_recovery_does_not_write_through_a_symlink_swapped_in_after_a_crash(
    store: Store, session: Session, tmp_path: Path
) -> None:
    """A writer dies after the branch moved; before the next writer rolls the operation
    forward, the session folder is replaced by a symlink to a folder outside the store.
    Recovery must not write (or delete temp files) through it."""
    rel_session = session.path
    store.close()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            from mdsessions.git import refs as _refs

            original = _refs.RefStore.cas

            def cas_then_die(self: Any, *args: Any, **kwargs: Any) -> None:
                original(self, *args, **kwargs)
                os.kill(os.getpid(), signal.SIGKILL)

            _refs.RefStore.cas = cas_then_die  # type: ignore[method-assign]
            with Store.open(store.root) as child:
                child.session(P, S).save_agent_output(1, "concept_expansion", "rolled\n")
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), "the writer was not killed"
    assert (store.root / ".git" / "mdsessions" / "journal.json").exists()
    outside = tmp_path / "outside"
    _move_outside(rel_session, outside)
    before_outside = tree_digest(outside)
    with contextlib.suppress(MdsessionsError):  # refusing (at open or at the write) is right
        with Store.open(store.root) as again, again.writing():
            pass
    assert tree_digest(outside) == before_outside, "recovery wrote through the symlink"
    assert not (outside / "phase_1_concept" / "concept_expansion.md").exists()


def test_a_symlink_a_person_adds_is_not_recorded_with_outside_content(
    store: Store, session: Session, tmp_path: Path
) -> None:
    """record_edits must not follow a symlink out of the store and commit what it finds."""
    victim_store = Store.init(tmp_path / "other")
    victim = victim_store.create_session(P, "secret-session")
    victim.save_agent_output(1, "plans", f"confidential {SECRET}\n")
    target = victim.path / "phase_1_concept" / "plans.md"
    victim_store.close()
    folder = session.path / "phase_1_concept"
    folder.mkdir(exist_ok=True)
    (folder / "plans.md").symlink_to(target)
    with contextlib.suppress(StoreError):  # refusing is right; committing the bytes is not
        store.record_edits()
    committed = git(store.root, "log", "-p", "--all")
    assert SECRET not in committed, "content from outside the store was committed"
    assert "plans.md" not in git(store.root, "ls-tree", "-r", "--name-only", "HEAD")


# ------------------------------------------------------------------------------ templates

PAYLOADS = [
    "{{ 7 * 7 }}",
    "{% for i in range(3) %}loop{% endfor %}",
    "{{ cycler.__init__.__globals__.os.system('touch {marker}') }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% include '/etc/passwd' %}",
    "{{ self._TemplateReference__context }}",
    "{% raw %}{{ raw }}{% endraw %}",
    "{# comment #}",
]


def test_content_is_never_evaluated_as_a_template(
    store: Store, session: Session, tmp_path: Path
) -> None:
    marker = tmp_path / "evaluated"
    text = "\n".join(p.replace("{marker}", str(marker)) for p in PAYLOADS) + "\n"
    one_line = " ".join(p.replace("{marker}", str(marker)) for p in PAYLOADS)
    idea_store = store.create_session(P, "ideas", idea=text, user_id=one_line, tags=[one_line])
    session.save_agent_output(
        1, "concept_expansion", text, model=one_line, tools_used=[one_line], error=text
    )
    session.save_checkpoint(1, status="completed", inputs=[one_line], errors=[text])
    session.save_feedback(1, action="revise", comments=text, requested_changes=[one_line])
    assert not marker.exists(), "a template in the content ran"
    assert session.output(1, "concept_expansion").content == text  # type: ignore[union-attr]
    assert session.output(1, "concept_expansion").model == one_line  # type: ignore[union-attr]
    assert session.feedback(1).comments == text  # type: ignore[union-attr]
    assert session.checkpoint(1).errors == [text]  # type: ignore[union-attr]
    assert idea_store.manifest().idea == text
    assert idea_store.manifest().tags == [one_line]
    raw = (session.path / "phase_1_concept" / "concept_expansion.md").read_text(encoding="utf-8")
    # "49" may appear in a timestamp; what must never appear is the evaluated expression.
    assert "{{ 7 * 7 }}" in raw
    assert not re.search(r"(?m)^49$|: 49$|- 49$|\b49 {%", raw)
    assert "loop" not in raw.replace("{% for i in range(3) %}loop{% endfor %}", "")
    assert_clean(store.root)
    assert store.validate() == []


STORE_TEMPLATES = {
    "mro walk": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals": "{{ cycler.__init__.__globals__.os.system('touch {marker}') }}",
    "lipsum globals": "{{ lipsum.__globals__['os'].system('touch {marker}') }}",
    "format string": "{{ '{0.__class__}'.format(doc) }}",
    "context": "{{ self._TemplateReference__context }}",
    "include absolute": "{% include '/etc/passwd' %}",
    "include traversal": "{% include '../../../../../../../../etc/passwd' %}",
    "huge range": "{% for i in range(10**9) %}x{% endfor %}",
    "zero division": "{{ 1 // 0 }}",
    "undefined name": "{{ no_such_variable }}",
}


@pytest.mark.parametrize("name", list(STORE_TEMPLATES))
def test_a_store_supplied_template_runs_sandboxed(
    store: Store, session: Session, tmp_path: Path, name: str
) -> None:
    """A hostile ``.mdsessions/templates/*.md.j2`` (e.g. from a cloned store) gets a clear
    DocumentError naming the template; it runs nothing, reads nothing, writes nothing."""
    marker = tmp_path / "template-ran"
    folder = store.root / ".mdsessions" / "templates"
    folder.mkdir(parents=True)
    (folder / "agent_output.md.j2").write_text(
        "---\n{{ frontmatter }}\n---\n" + STORE_TEMPLATES[name].replace("{marker}", str(marker))
    )
    git(store.root, "add", ".mdsessions/templates")
    git(store.root, "commit", "-q", "-m", "a store template")
    before = snapshot(store.root)
    with Store.open(store.root) as fresh:
        with pytest.raises(DocumentError) as info:
            fresh.session(P, S).save_agent_output(1, "concept_expansion", "x\n")
        assert "agent_output.md.j2" in str(info.value)
    assert not marker.exists()
    assert snapshot(store.root) == before


def test_a_store_template_cannot_change_what_is_recorded(store: Store, session: Session) -> None:
    """A template whose output does not parse back to the same document is refused."""
    folder = store.root / ".mdsessions" / "templates"
    folder.mkdir(parents=True)
    (folder / "agent_output.md.j2").write_text(
        "---\n{{ frontmatter | replace('agent: concept_expansion', 'agent: someone_else') }}\n"
        "---\n## Output\n\n{{ doc.content }}"
    )
    git(store.root, "add", ".mdsessions/templates")
    git(store.root, "commit", "-q", "-m", "a store template")
    before = snapshot(store.root)
    with Store.open(store.root) as fresh, pytest.raises(DocumentError):
        fresh.session(P, S).save_agent_output(1, "concept_expansion", "x\n")
    assert snapshot(store.root) == before


# ------------------------------------------------------------------------------ YAML


def test_yaml_is_safe_loaded_only(store: Store, session: Session, tmp_path: Path) -> None:
    """Python tags in a person's edit run nothing; the file is refused, the store unchanged."""
    marker = tmp_path / "yaml-ran"
    session.save_checkpoint(1, status="completed")
    feedback = session.path / "phase_1_concept" / "user_feedback.md"
    original = feedback.read_text(encoding="utf-8")
    head_before = git(store.root, "rev-parse", "HEAD")
    for tag in (
        f"!!python/object/apply:os.system ['touch {marker}']",
        f"!!python/object/new:subprocess.check_output [['touch', '{marker}']]",
        "!!python/name:os.system",
        "!!python/module:os",
    ):
        assert original.count("\nretry_count:") == 1
        feedback.write_text(original.replace("\nretry_count:", f"\nreviewer: {tag}\nretry_count:"))
        with pytest.raises(DocumentError):
            session.feedback(1)
        sha, rejected = store.record_edits()
        assert sha is None and [e.path for e in rejected] == [
            feedback.relative_to(store.root).as_posix()
        ]
        assert store.validate() != []
        assert not marker.exists()
    feedback.write_text(original)
    assert git(store.root, "rev-parse", "HEAD") == head_before
    assert_clean(store.root)


def test_no_unsafe_yaml_loader_in_the_library() -> None:
    """Statically: no yaml.load/full_load/unsafe_load with a non-safe loader anywhere."""
    unsafe = {"Loader", "FullLoader", "UnsafeLoader", "CLoader", "CFullLoader", "CUnsafeLoader"}
    found = []
    for path in sorted((REPO_ROOT / "mdsessions").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in unsafe | {
                "full_load",
                "unsafe_load",
                "load_all",
                "full_load_all",
                "unsafe_load_all",
            }:
                found.append(f"{path.name}:{node.lineno}: {node.attr}")
    assert found == []
    base = _yaml._StrictLoader.__mro__
    assert yaml.SafeLoader in base or getattr(yaml, "CSafeLoader", None) in base


def test_every_yaml_load_during_a_workflow_uses_a_safe_loader(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At run time: spy on yaml.load/yaml.parse while a whole workflow runs."""
    seen: list[type] = []
    real_load, real_parse = yaml.load, yaml.parse

    def spy_load(stream: Any, Loader: type) -> Any:  # noqa: N803 - PyYAML's name
        seen.append(Loader)
        return real_load(stream, Loader=Loader)

    def spy_parse(stream: Any, Loader: type = yaml.Loader) -> Any:  # noqa: N803
        seen.append(Loader)
        return real_parse(stream, Loader=Loader)

    monkeypatch.setattr(yaml, "load", spy_load)
    monkeypatch.setattr(yaml, "parse", spy_parse)
    runner = Runner(store, agents={n: (lambda ctx: "# out &a *b\n") for n in AGENT_NAMES})
    result = runner.start(P, S, idea="an idea with & and * in it", mode="mvp")
    session = result.session
    session.save_feedback(1, approved=True)
    runner.run(session)
    store.validate()
    # What mdsessions writes is read by the fast path (no PyYAML); a person's flow-style
    # edit is not, and goes to PyYAML's loader:
    assert _yaml.load("requested_changes: [a, b]\n") == {"requested_changes": ["a", "b"]}
    safe = tuple(c for c in (yaml.SafeLoader, getattr(yaml, "CSafeLoader", None)) if c)
    assert seen, "no YAML was read at all?"
    assert all(issubclass(loader, safe) for loader in seen), {c.__name__ for c in seen}


# ------------------------------------------------------------------------------ hooks


def _install_hooks(git_dir: Path, marker: Path) -> None:
    hooks = git_dir / "hooks"
    hooks.mkdir(parents=True, exist_ok=True)
    for name in (
        "pre-commit",
        "commit-msg",
        "post-commit",
        "post-checkout",
        "post-merge",
        "pre-push",
        "reference-transaction",
        "post-index-change",
        "pre-auto-gc",
        "post-rewrite",
    ):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\necho {name} >> '{marker}'\n")
        hook.chmod(0o755)


def _exercise(clone: Store, remote: str) -> None:
    """Every kind of git work the library does on a store."""
    session = clone.session(P, S)
    session.save_agent_output(1, "concept_expansion", "from the clone\n")
    session.save_checkpoint(1, status="completed")
    feedback = session.path / "phase_1_concept" / "user_feedback.md"
    feedback.write_text(
        feedback.read_text(encoding="utf-8").replace("\napproved: false\n", "\napproved: true\n"),
        encoding="utf-8",
    )
    clone.unrecorded_edits()
    clone.record_edits()
    clone.log()
    clone.validate()
    history.verify(clone)
    history.push(clone, remote)
    history.pull(clone, remote)


@pytest.fixture
def origin(store: Store, session: Session, tmp_path: Path) -> Path:
    session.save_agent_output(1, "concept_expansion", "original\n")
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(store.root), str(bare)], check=True)
    return bare


def test_hooks_of_a_cloned_store_do_not_run(
    origin: Path, tmp_path: Path, isolated_git: Path
) -> None:
    marker = tmp_path / "hooks-ran"
    # Hooks arrive with the clone (a template folder of the person's, or copied along):
    template = tmp_path / "git-template"
    _install_hooks(template, marker)
    # ... and global configuration trying to turn them on must not count either.
    with isolated_git.open("a") as fh:
        fh.write(f"[init]\n\ttemplateDir = {template}\n[mdsessions]\n\thooks = true\n")
    clone = history.clone(str(origin), tmp_path / "clone")
    try:
        assert (clone.root / ".git" / "hooks" / "pre-push").exists()
        _install_hooks(clone.root / ".git", marker)
        _exercise(clone, "origin")
    finally:
        clone.close()
    assert not marker.exists(), marker.read_text()


def test_hooks_run_once_the_store_itself_enables_them(origin: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hooks-ran"
    clone = history.clone(str(origin), tmp_path / "clone")
    clone.close()
    _install_hooks(clone.root / ".git", marker)
    git(clone.root, "config", "mdsessions.hooks", "true")
    with Store.open(clone.root) as enabled:
        enabled.session(P, S).save_agent_output(1, "concept_expansion", "hooks on\n")
        history.push(enabled, "origin")
    assert marker.exists() and "pre-push" in marker.read_text()


# ------------------------------------------------------------------------------ secrets in logs


@contextlib.contextmanager
def all_logging_at_debug() -> Iterator[io.StringIO]:
    """Route every logger (GitPython's, watchdog's, the library's) at DEBUG into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    root = logging.getLogger()
    old_level = root.level
    loggers = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)]
    old = [(lg, lg.level, lg.disabled) for lg in loggers]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for lg in loggers:
        lg.setLevel(logging.NOTSET)
        lg.disabled = False
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for lg, level, disabled in old:
            lg.setLevel(level)
            lg.disabled = disabled


def test_no_secret_or_agent_output_in_logs_or_messages(
    store: Store, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    body = f"# Result\n\nThe key is {SECRET}.\n" + "Lots of agent output. " * 400
    failing = tmp_path / "failing_agent.py"
    failing.write_text(
        f"import sys\nprint({body!r})\nprint('stderr {SECRET}', file=sys.stderr)\nsys.exit(3)\n"
    )
    succeeding = CommandAgent([sys.executable, "-c", f"print({body!r})"])

    def python_agent(ctx: AgentContext) -> str:
        return body

    names = AGENT_NAMES
    agents: dict[str, Any] = {n: python_agent for n in names}
    agents[names[1]] = succeeding
    raised: list[str] = []
    with all_logging_at_debug() as logs:
        runner = Runner(store, agents=agents)
        result = runner.start(P, S, idea=f"an idea mentioning {SECRET}", mode="full")
        session = result.session
        session.save_feedback(1, approved=True, comments=f"reviewer pasted {SECRET}")
        runner.run(session)
        failing_runner = Runner(
            store, agents={**agents, names[0]: CommandAgent([sys.executable, str(failing)])}
        )
        try:
            failing_runner.start(P, "failing", idea="x", mode="full")
        except AgentFailedError as exc:
            raised.append(str(exc))
        store.log()
        store.validate()
        history.verify(store)
        with contextlib.suppress(MdsessionsError):
            session.save_agent_output(1, "bad/agent", body)  # an error path
    captured = capfd.readouterr()
    assert raised, "the failing agent did not fail"
    for where, text in (
        ("logging", logs.getvalue()),
        ("stdout", captured.out),
        ("stderr", captured.err),
        ("AgentFailedError", "\n".join(raised)),
        ("commit messages", git(store.root, "log", "--format=%B")),
    ):
        assert SECRET not in text, f"the secret appears in {where}"
        assert "Lots of agent output." not in text, f"agent output appears in {where}"
    # Files that are not documents: reflogs, the journal, caches, git's own files.
    for path in [*(store.root / ".git").rglob("*"), *(store.root / ".mdsessions").rglob("*")]:
        if path.is_file() and "objects" not in path.relative_to(store.root).parts:
            if path.name == "index":
                continue
            assert SECRET.encode() not in path.read_bytes(), path


def test_the_cli_prints_no_agent_output(store: Store, session: Session) -> None:
    from click.testing import CliRunner

    from mdsessions.cli import cli

    body = f"# Result\n\nThe key is {SECRET}.\n"
    ref = f"{P}/{S}"
    commands = [
        ["output", ref, "1", "concept_expansion", "-", "--model", "m"],
        ["checkpoint", ref, "1", "--status", "completed"],
        ["status", ref],
        ["status", ref, "--json"],
        ["log", ref],
        ["list"],
        ["validate"],
        ["inbox"],
        ["edits"],
        ["output", ref, "1", "bad/agent", "-"],  # an error path
        ["output", ref, "99", "agent", "-"],  # another
    ]
    for args in commands:
        result = CliRunner().invoke(cli, ["--store", str(store.root), *args], input=body)
        assert isinstance(result.exception, (SystemExit, type(None))), result.exception
        assert SECRET not in result.stdout + result.stderr, (args, result.output)
    assert session.output(1, "concept_expansion").content == body  # type: ignore[union-attr]


# ------------------------------------------------------------- secrets in operation logs (H7)


def _cli_process(store_root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``python -m mdsessions`` with ``args`` in the store; its stderr (where logs go)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mdsessions", *args],
        cwd=store_root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
        check=False,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def test_no_secret_or_content_in_the_cli_operation_logs(store: Store, tmp_path: Path) -> None:
    """Every operation the command line logs, at debug, as text and as JSON lines: a run
    whose idea, outputs, a failing agent's stderr and a reviewer's comments hold the secret,
    then pull, push, maintenance and a backup to a remote whose path holds it too."""
    body = f"# Result\n\nThe key is {SECRET}.\n" + "Lots of agent output. " * 50
    good = f"import sys; sys.stdin.read(); print({body!r})"
    bad = (
        f"import sys; sys.stdin.read(); print({body!r}); "
        f"print({SECRET!r}, file=sys.stderr); sys.exit(3)"
    )
    workflow = tmp_path / "wf.toml"
    workflow.write_text(
        '[workflow]\nname = "w"\ndefault_mode = "all"\n[modes]\nall = [1, 2]\n'
        '[[phases]]\nnumber = 1\nslug = "a"\nname = "A"\nreview = true\nagents = ["good"]\n'
        '[[phases]]\nnumber = 2\nslug = "b"\nname = "B"\nagents = ["bad"]\n'
        f'[agents.good]\ncommand = [{json_str(sys.executable)}, "-c", {json_str(good)}]\n'
        f'[agents.bad]\ncommand = [{json_str(sys.executable)}, "-c", {json_str(bad)}]\n',
        encoding="utf-8",
    )
    remote = tmp_path / f"remote-{SECRET}.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    ref = f"{P}/{S}"
    for mode in (["-vv"], ["-vv", "--log-json"]):
        sid = f"{S}-{len(mode)}"
        ref = f"{P}/{sid}"
        steps = [
            ["run", "--new", P, sid, "--idea", f"idea with {SECRET}", "--workflow", str(workflow)],
            ["feedback", ref, "1", "--approve", "--comment", f"pasted {SECRET}"],
            ["run", ref, "--workflow", str(workflow)],  # phase 2's agent fails
            ["remote", "add", f"o{len(mode)}", str(remote)],
            ["push", f"o{len(mode)}"],
            ["pull", f"o{len(mode)}"],
            ["maintenance"],
            ["backup", "create", str(tmp_path / "backups")],
        ]
        for args in steps:
            out = _cli_process(store.root, *args, *mode)
            assert SECRET not in out, (args, out)
            assert "Lots of agent output." not in out, (args, out)
        assert "backup" in out  # the last step logged


def json_str(text: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML)."""
    import json

    return json.dumps(text)


def test_no_secret_in_the_logs_of_sync_recovery_maintenance_and_backups(
    store: Store, tmp_path: Path
) -> None:
    """The library's own logging at debug (every logger routed) while a session holding
    the secret is pushed to, cloned from and pulled from a remote whose path holds it,
    recovered after a torn journal, maintained and backed up."""
    remote = tmp_path / f"remote-{SECRET}.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    with all_logging_at_debug() as logs:
        session = store.create_session(P, S)
        session.save_agent_output(1, "concept_expansion", f"the key {SECRET}\n")
        history.add_remote(store, "origin", str(remote))
        history.push(store, "origin")
        with history.clone(str(remote), tmp_path / "clone") as clone:
            clone.session(P, S).save_agent_output(1, "concept_expansion", f"{SECRET} again\n")
            history.push(clone, "origin")
        history.pull(store, "origin")
        (store.root / ".git" / "mdsessions" / "journal.json").write_text("{torn")
        session.save_checkpoint(1, status="in_progress")  # recovers first
        history.maintenance(store)
        history.create_backup(store, tmp_path / "backups")
    text = logs.getvalue()
    assert "mdsessions.history.sync" in text and "mdsessions.git.recovery" in text
    assert SECRET not in text
    assert "the key" not in text
