# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""The command line: ``mdsessions <command>``, a thin shell over the public API.

Each command parses its options, opens the store (``--store``, ``$MDSESSIONS_STORE`` or the
current folder), makes one public call and formats the result; ``--json`` prints one JSON
document on stdout instead. Errors are mapped to messages and exit codes in one place,
:class:`MdsessionsGroup`:

* ``0`` success (a run that stops at a review gate included);
* ``1`` a user error: ``Error: <message>`` on stderr, never a traceback;
* ``2`` a usage error (click's own);
* ``130`` interrupted (``Interrupted`` on stderr).

The library is imported inside the commands, so ``mdsessions --help`` does not load GitPython,
Jinja, YAML or pydantic.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from mdsessions import __version__

if TYPE_CHECKING:
    from mdsessions import RunResult, Session, SessionManifest, Store

__all__ = ["MdsessionsGroup", "cli", "error_message", "json_option", "main", "store_option"]

F = TypeVar("F", bound=Callable[..., Any])

_STORE_KEY = "mdsessions.store"
FEEDBACK_FILE = "user_feedback.md"
CHECKPOINT_FILE = "checkpoint.md"
REVIEW_HINT = "set approved: true (or action: revise / reject) and run again"

_STATUS_COLOURS = {
    "stale": "yellow",
    "completed": "green",
    "approved": "green",
    "in_progress": "yellow",
    "awaiting_review": "yellow",
    "pending": "yellow",
    "revise": "yellow",
    "failed": "red",
    "rejected": "red",
    "created": "cyan",
    "skipped": "bright_black",
    "required": "bright_black",
    "not_required": "bright_black",
}


# --------------------------------------------------------------------------------------------
# errors: one place
# --------------------------------------------------------------------------------------------


def error_message(exc: BaseException) -> str | None:
    """The ``Error:`` text for an exception that is the user's to fix, else ``None``.

    Args:
        exc: What a command raised.

    Returns:
        The message for any :class:`~mdsessions.MdsessionsError`, ``ValueError`` or
        ``OSError`` (a missing file, a permission problem); ``None`` for anything else
        (a bug, which keeps its traceback) and for a broken pipe (click handles it).
    """
    from mdsessions import MdsessionsError

    if isinstance(exc, MdsessionsError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, BrokenPipeError):
        return None
    if isinstance(exc, OSError):
        if exc.filename is not None and exc.strerror:
            return f"{exc.filename}: {exc.strerror}"
        return str(exc) or type(exc).__name__
    if isinstance(exc, ValueError):
        return str(exc) or type(exc).__name__
    return None


class MdsessionsGroup(click.Group):
    """The ``mdsessions`` group: commands in declaration order, errors mapped in one place."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Commands in the order they are declared (a workflow's order, not alphabetical)."""
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; turn user errors into ``Error: …`` + exit 1, Ctrl-C into exit 130.

        Raises:
            click.ClickException: For a user error (click prints ``Error: <message>``).
            click.exceptions.Exit: With status 130 on ``KeyboardInterrupt``.
        """
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except Exception as exc:
            message = error_message(exc)
            if message is None:
                raise
            raise click.ClickException(message) from None


def fail(message: str) -> NoReturn:
    """Stop the command with ``Error: <message>`` on stderr and exit status 1.

    Raises:
        click.ClickException: Always.
    """
    raise click.ClickException(message)


# --------------------------------------------------------------------------------------------
# shared options
# --------------------------------------------------------------------------------------------


def _remember_store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[_STORE_KEY] = value


def store_option(*, envvar: bool = False) -> Callable[[F], F]:
    """``--store PATH``: the store to use (a folder inside it).

    Given on the group (``mdsessions --store S status …``) or after a command
    (``mdsessions status … --store S``); the command's own value wins.

    Args:
        envvar: Also read ``$MDSESSIONS_STORE`` (the group's option only, so that the
            variable never overrides an explicit group option).

    Returns:
        The decorator.
    """
    return click.option(
        "--store",
        metavar="PATH",
        envvar="MDSESSIONS_STORE" if envvar else None,
        show_envvar=envvar,
        expose_value=False,
        callback=_remember_store,
        help="The store (any folder inside it). Default: the current folder.",
    )


def json_option() -> Callable[[F], F]:
    """``--json``: print one JSON document on stdout instead of text.

    Returns:
        The decorator.
    """
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (one document on stdout)."
    )


def workflow_option() -> Callable[[F], F]:
    """``--workflow NAME|PATH.toml``.

    Returns:
        The decorator.
    """
    return click.option(
        "--workflow",
        metavar="NAME|PATH.toml",
        help="Workflow: a name from the store's mdsessions.toml, or a workflow TOML file "
        "(default: idea_validation).",
    )


def author_option(help_text: str) -> Callable[[F], F]:
    """``--author "Name <email>"``: the commit author.

    Args:
        help_text: The option's help.

    Returns:
        The decorator.
    """
    return click.option("--author", metavar='"NAME <EMAIL>"', help=help_text)


def idea_options() -> Callable[[F], F]:
    """``--idea TEXT`` / ``--idea-file FILE|-``: the session's input.

    Returns:
        The decorator.
    """

    def decorate(func: F) -> F:
        func = click.option(
            "--idea-file",
            metavar="FILE|-",
            help="Read the idea from a file ('-' for stdin), UTF-8.",
        )(func)
        return click.option("--idea", metavar="TEXT", help="The idea (markdown).")(func)

    return decorate


def session_options() -> Callable[[F], F]:
    """``--mode``, ``--user-id`` and ``--tag``: options of a new session.

    Returns:
        The decorator.
    """

    def decorate(func: F) -> F:
        func = click.option(
            "--tag", "tags", multiple=True, metavar="TAG", help="A label (repeatable)."
        )(func)
        func = click.option("--user-id", metavar="USER", help="Who the session is for.")(func)
        return click.option(
            "--mode", metavar="MODE", help="Execution mode, e.g. mvp or full (default: mvp)."
        )(func)

    return decorate


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def open_store(ctx: click.Context) -> Store:
    """Open the store of ``--store`` (else the current folder); closed when the command ends.

    Args:
        ctx: The command's context.

    Returns:
        The open store.
    """
    from mdsessions import Store

    store = Store.open(ctx.meta.get(_STORE_KEY) or ".")
    ctx.call_on_close(store.close)
    return store


def read_input(source: str) -> str:
    """Read a file (``-`` for stdin) as bytes and decode UTF-8 without translating newlines.

    Args:
        source: A path, or ``-``.

    Returns:
        The text, CRLF and all, exactly as stored.

    Raises:
        click.ClickException: If it is not valid UTF-8 (naming the file, byte and line).
    """
    name = "<stdin>" if source == "-" else source
    with click.open_file(source, "rb") as stream:
        data: bytes = stream.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        fail(f"{name}: not valid UTF-8 (byte {exc.start}, line {line})")


def text_or_file(text: str | None, path: str | None, option: str) -> str | None:
    """The value of a ``--X TEXT`` / ``--X-file FILE`` pair (at most one may be given).

    Raises:
        click.UsageError: If both are given.
    """
    if text is not None and path is not None:
        raise click.UsageError(f"give --{option} or --{option}-file, not both")
    if path is not None:
        return read_input(path)
    return text


def echo_json(data: Any) -> None:
    """Print one JSON document (UTF-8, not ASCII-escaped, keys in their given order)."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def styled(value: str, text: str | None = None) -> str:
    """Colour a status value (click drops the colour when stdout is not a terminal)."""
    colour = _STATUS_COLOURS.get(value)
    shown = value if text is None else text
    return click.style(shown, fg=colour) if colour else shown


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """Format an aligned text table; cells of the ``right`` columns are right-aligned.

    Cells may hold colour codes: widths are computed on the visible text.
    """
    rows = [list(r) for r in rows]
    right = set(right)
    widths = [len(click.unstyle(h)) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(click.unstyle(cell)))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - len(click.unstyle(cell)))
            out.append(pad + cell if i in right else cell + pad)
        return "  ".join(out).rstrip()

    head = line([click.style(h, bold=True) for h in headers])
    return "\n".join([head, *(line(r) for r in rows)])


def short_time(value: _dt.datetime | str | None) -> str:
    """``2024-11-24T10:02:00Z`` → ``2024-11-24 10:02`` (UTC); ``None`` → ``-``."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text.replace("T", " ")[:16]


def seconds(value: float | None) -> str:
    """A duration for people: ``4.2s``, ``3m07s``, ``1h02m``; ``None`` → ``-``."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def display_path(store: Store, rel: str) -> str:
    """A store-relative path as people type it.

    Relative to the current folder when that is inside the store, else absolute.
    """
    target = store.root / rel
    try:
        return os.path.relpath(target) if _inside(Path.cwd().resolve(), store.root) else str(target)
    except ValueError:  # pragma: no cover - another drive (Windows)
        return str(target)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def store_rel(store: Store, path: str) -> str:
    """A path given on the command line as a store-relative ``/`` path.

    Relative paths are taken from the current folder when it is inside the store, else from
    the store's root (so ``--store S record projects/…`` works from anywhere).

    Raises:
        click.ClickException: If the path is outside the store.
    """
    given = Path(path)
    if not given.is_absolute():
        cwd = Path.cwd().resolve()
        given = (cwd if _inside(cwd, store.root) else store.root) / given
    resolved = Path(os.path.normpath(given.absolute()))
    if not _inside(resolved, store.root):
        real = resolved.resolve()
        if not _inside(real, store.root):
            fail(f"{path}: not inside the store {store.root}")
        resolved = real
    return resolved.relative_to(store.root).as_posix()


def session_summary(session: Session, manifest: SessionManifest) -> str:
    """``session in_progress at phase 2 (Market Research)`` and the like."""
    text = f"session {manifest.status.value}"
    if manifest.current_phase is not None:
        name = next((p.name for p in manifest.phases if p.number == manifest.current_phase), "")
        text += f" at phase {manifest.current_phase}" + (f" ({name})" if name else "")
    return text


def review_hint(store: Store, session: Session, phase: int) -> list[str]:
    """The lines that tell a reviewer which file to edit."""
    rel = f"{session.phase_rel(phase)}/{FEEDBACK_FILE}"
    return [
        f"review: {display_path(store, rel)}",
        f"  {REVIEW_HINT}",
        f"  (or: mdsessions feedback {session.ref} {phase} --approve | --revise | --reject)",
    ]


def document_rel(session: Session, phase: int | None, document: str | None) -> str:
    """Store-relative path of a session document.

    The manifest (no phase), or a phase's checkpoint, user feedback or agent output.

    Raises:
        click.ClickException: If ``document`` does not name a file of the phase folder.
    """
    if phase is None:
        return session.manifest_rel
    folder = session.phase_rel(phase)
    name = document or "checkpoint"
    if name in ("feedback", "user_feedback"):
        return f"{folder}/{FEEDBACK_FILE}"
    if name == "checkpoint":
        return f"{folder}/{CHECKPOINT_FILE}"
    if name.endswith(".md"):
        name = name[:-3]
    target = Path(os.path.normpath(session.store.root / folder / f"{name}.md"))
    if (
        "/" in name
        or "\\" in name
        or name.startswith(".")
        or target.parent != (session.store.root / folder)
    ):
        fail(
            f"invalid document {document!r}: expected checkpoint, feedback or an agent id "
            "(a file name in the phase folder)"
        )
    return f"{folder}/{name}.md"


def run_json(result: RunResult) -> dict[str, Any]:
    """The JSON document of ``mdsessions run``."""
    session = result.session
    feedback = (
        f"{session.phase_rel(result.waiting_for_review)}/{FEEDBACK_FILE}"
        if result.waiting_for_review is not None
        else None
    )
    return {
        "session": session.ref,
        "status": result.status.value,
        "phases_run": list(result.phases_run),
        "waiting_for_review": result.waiting_for_review,
        "feedback_file": feedback,
        "recorded_feedback": list(result.recorded_feedback),
        "message": result.message,
    }


# --------------------------------------------------------------------------------------------
# the commands
# --------------------------------------------------------------------------------------------


@click.group(
    cls=MdsessionsGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="mdsessions")
@store_option(envvar=True)
def cli() -> None:
    """A git-backed markdown store for phased LLM-agent workflows.

    Every checkpoint is a git commit; sessions are markdown files with YAML
    frontmatter that people review in their own editor; `git log` is the history.

    \b
    Example:
        mdsessions init my-store && cd my-store
        mdsessions run --new demo --idea "A gym leaderboard" --workflow wf.toml
        mdsessions status demo/session-20241124-100200-ab12
    """


@cli.command("init")
@click.argument("path", required=False, metavar="[PATH]")
@click.option(
    "--projects-dir",
    default="projects",
    show_default=True,
    metavar="DIR",
    help="Store-relative folder of the projects ('.' for the store root).",
)
@click.pass_context
def init_command(ctx: click.Context, path: str | None, projects_dir: str) -> None:
    """Create a store: a git repository with mdsessions.toml.

    PATH defaults to --store, else the current folder. Initialising an existing
    store only opens it. Prints the store's path.

    \b
    Example:
        mdsessions init my-store
    """
    from mdsessions import Store

    store = Store.init(path or ctx.meta.get(_STORE_KEY) or ".", projects_dir=projects_dir)
    ctx.call_on_close(store.close)
    click.echo(str(store.root))


@cli.command("new")
@click.argument("project")
@click.argument("session_id", required=False, metavar="[SESSION]")
@workflow_option()
@session_options()
@idea_options()
@store_option()
@click.pass_context
def new_command(
    ctx: click.Context,
    project: str,
    session_id: str | None,
    workflow: str | None,
    mode: str | None,
    user_id: str | None,
    tags: tuple[str, ...],
    idea: str | None,
    idea_file: str | None,
) -> None:
    """Create a session (its manifest and phase table) as one commit.

    SESSION defaults to session-YYYYmmdd-HHMMSS-xxxx (UTC). Prints
    PROJECT/SESSION.

    \b
    Example:
        mdsessions new project-123 session-456 --mode full --idea "A gym leaderboard"
        mdsessions new project-123 --idea-file idea.md --tag pilot
    """
    idea_text = text_or_file(idea, idea_file, "idea")
    store = open_store(ctx)
    session = store.create_session(
        project,
        session_id,
        workflow=workflow,
        mode=mode,
        user_id=user_id,
        idea=idea_text,
        tags=tags,
    )
    click.echo(session.ref)


@cli.command("list")
@click.option("--project", metavar="PROJECT", help="Only this project's sessions.")
@click.option(
    "--status",
    metavar="STATUS",
    help="Only sessions with this status: created, in_progress, awaiting_review, completed, "
    "rejected or failed.",
)
@json_option()
@store_option()
@click.pass_context
def list_command(
    ctx: click.Context, project: str | None, status: str | None, as_json: bool
) -> None:
    """List the sessions of the store.

    \b
    Example:
        mdsessions list
        mdsessions list --project project-123 --status awaiting_review --json
    """
    from mdsessions import SessionStatus

    if status is not None:
        allowed = [s.value for s in SessionStatus]
        if status not in allowed:
            raise click.BadParameter(
                f"{status!r} is not one of {', '.join(allowed)}", param_hint="'--status'"
            )
    store = open_store(ctx)
    manifests = [
        m for m in store.list_sessions(project) if status is None or m.status.value == status
    ]
    if as_json:
        echo_json([m.frontmatter() for m in manifests])
        return
    if not manifests:
        click.echo("no sessions", err=True)
        return
    rows = [
        [
            m.project_id,
            m.session_id,
            m.workflow,
            m.mode,
            styled(m.status.value),
            str(m.current_phase) if m.current_phase is not None else "-",
            short_time(m.updated),
        ]
        for m in manifests
    ]
    headers = ["project", "session", "workflow", "mode", "status", "phase", "updated (UTC)"]
    click.echo(table(headers, rows, right=[5]))


@cli.command("status")
@click.argument("session_ref", metavar="SESSION")
@json_option()
@store_option()
@click.pass_context
def status_command(ctx: click.Context, session_ref: str, as_json: bool) -> None:
    """Show a session's status and its phase table.

    SESSION is PROJECT/SESSION, or a session id that is unique in the store.

    \b
    Example:
        mdsessions status project-123/session-456
        mdsessions status session-456 --json
    """
    store = open_store(ctx)
    session = store.find_session(session_ref)
    manifest = session.manifest()
    if as_json:
        echo_json({"session": session.ref, **manifest.frontmatter()})
        return
    current = manifest.current_phase
    rows = []
    for p in manifest.phases:
        mark = ">" if p.number == current else " "
        rows.append(
            [
                f"{mark}{p.number}",
                p.name,
                styled(p.status.value),
                styled(p.review.value, "-" if p.review.value == "not_required" else None),
                short_time(p.started),
                short_time(p.completed),
                seconds(p.duration),
                str(p.retry_count),
            ]
        )
    totals = manifest.totals
    lines = [
        f"session   {session.ref}  ({manifest.workflow}, mode {manifest.mode})",
        f"status    {styled(manifest.status.value)}"
        + (f", phase {current}" if current is not None else ""),
        f"updated   {short_time(manifest.updated)} UTC (created {short_time(manifest.created)})",
        "",
        table(
            ["#", "phase", "status", "review", "started", "completed", "duration", "retry"],
            rows,
            right=[0, 6, 7],
        ),
        "",
        f"totals    {totals.input_tokens:,} tokens in, {totals.output_tokens:,} out; "
        f"${totals.cost:.4f}; agent time {seconds(totals.duration)}",
    ]
    stale = [p for p in manifest.phases if p.status.value == "stale"]
    if stale:
        lines += ["", *(f"stale     phase {p.number}: {p.stale_reason}; runs again" for p in stale)]
    click.echo("\n".join(lines))
    if manifest.status.value == "awaiting_review" and current is not None:
        click.echo("\n".join(["", *review_hint(store, session, current)]))


@cli.command("checkpoint")
@click.argument("session_ref", metavar="SESSION")
@click.argument("phase", type=int)
@click.option(
    "--status",
    required=True,
    metavar="STATUS",
    help="pending, in_progress, completed, failed or skipped.",
)
@click.option("--started", metavar="TIME", help="Start time, UTC ISO-8601.")
@click.option("--completed", metavar="TIME", help="End time (default: now, when finished).")
@click.option("--duration", type=float, metavar="SEC", help="Seconds (default: end - start).")
@click.option(
    "--execution-mode",
    default="single",
    show_default=True,
    metavar="MODE",
    help="How the agents ran: single, sequential, parallel, …",
)
@click.option("--error", "errors", multiple=True, metavar="MSG", help="An error (repeatable).")
@click.option("--retry-count", type=int, metavar="N", help="Run number of the phase.")
@click.option(
    "--review/--no-review",
    default=None,
    help="Force or suppress the review gate (default: the workflow's).",
)
@store_option()
@click.pass_context
def checkpoint_command(
    ctx: click.Context,
    session_ref: str,
    phase: int,
    status: str,
    started: str | None,
    completed: str | None,
    duration: float | None,
    execution_mode: str,
    errors: tuple[str, ...],
    retry_count: int | None,
    review: bool | None,
) -> None:
    """Save a phase checkpoint and update the manifest, as one commit.

    The agents of the checkpoint are taken from the phase's saved outputs. A
    completed phase with a review gate waits for the reviewer.

    \b
    Example:
        mdsessions checkpoint project-123/session-456 1 --status in_progress
        mdsessions checkpoint project-123/session-456 1 --status completed --duration 42.5
    """
    store = open_store(ctx)
    session = store.find_session(session_ref)
    doc = session.save_checkpoint(
        phase,
        status=status,
        started=started,
        completed=completed,
        duration=duration,
        execution_mode=execution_mode,
        errors=errors,
        retry_count=retry_count,
        request_review=review,
    )
    manifest = session.manifest()
    click.echo(
        f"{session.ref}: phase {doc.phase} {doc.phase_name} {doc.status.value}; "
        + session_summary(session, manifest)
    )
    if manifest.status.value == "awaiting_review" and manifest.current_phase == phase:
        click.echo("\n".join(review_hint(store, session, phase)))


@cli.command("output")
@click.argument("session_ref", metavar="SESSION")
@click.argument("phase", type=int)
@click.argument("agent")
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option(
    "--status",
    metavar="STATUS",
    help="completed (default), failed, … (the agent run's status).",
)
@click.option("--model", metavar="MODEL", help="Model id.")
@click.option("--input-tokens", type=int, default=0, metavar="N", help="Prompt tokens.")
@click.option("--output-tokens", type=int, default=0, metavar="N", help="Completion tokens.")
@click.option("--cost", type=float, default=0.0, metavar="USD", help="Cost in USD.")
@click.option("--duration", type=float, metavar="SEC", help="Seconds the agent ran.")
@click.option("--tool", "tools", multiple=True, metavar="TOOL", help="A tool used (repeatable).")
@click.option("--error", metavar="MSG", help="What went wrong (for a failed run).")
@store_option()
@click.pass_context
def output_command(
    ctx: click.Context,
    session_ref: str,
    phase: int,
    agent: str,
    source: str,
    status: str | None,
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    cost: float,
    duration: float | None,
    tools: tuple[str, ...],
    error: str | None,
) -> None:
    """Save an agent's output (markdown from FILE, or stdin) as one commit.

    The content is stored verbatim, byte for byte (UTF-8; line endings kept).

    \b
    Example:
        mdsessions output project-123/session-456 1 concept_expansion concept.md
        llm "Expand this idea" | mdsessions output session-456 1 concept_expansion - \\
            --model gpt-4o --input-tokens 812 --output-tokens 1540 --cost 0.0123
    """
    content = read_input(source)
    store = open_store(ctx)
    session = store.find_session(session_ref)
    options: dict[str, Any] = {}
    if status is not None:
        options["status"] = status
    doc = session.save_agent_output(
        phase,
        agent,
        content,
        duration=duration,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
        tools_used=tools,
        error=error,
        **options,
    )
    rel = f"{session.phase_rel(phase)}/{doc.agent}.md"
    click.echo(f"{session.ref}: phase {doc.phase} {doc.agent} {doc.status.value} ({rel})")


@cli.command("feedback")
@click.argument("session_ref", metavar="SESSION")
@click.argument("phase", type=int)
@click.option("--approve", is_flag=True, help="Approve: the next phase can start.")
@click.option("--reject", is_flag=True, help="Reject: the session ends.")
@click.option("--revise", is_flag=True, help="Ask for a revision: the phase runs again.")
@click.option("--comment", metavar="TEXT", help="Comments (stored verbatim).")
@click.option("--comment-file", metavar="FILE|-", help="Read the comments from a file.")
@click.option(
    "--change", "changes", multiple=True, metavar="TEXT", help="A requested change (repeatable)."
)
@click.option("--reviewer", metavar='"NAME <EMAIL>"', help="The reviewer recorded in the file.")
@click.option(
    "--keep-downstream",
    is_flag=True,
    help="With --revise: leave later phases as they are instead of marking them stale "
    "(they would otherwise run again and be reviewed again).",
)
@author_option("Commit author (default: the reviewer, else git's user).")
@store_option()
@click.pass_context
def feedback_command(
    ctx: click.Context,
    session_ref: str,
    phase: int,
    approve: bool,
    reject: bool,
    revise: bool,
    comment: str | None,
    comment_file: str | None,
    changes: tuple[str, ...],
    reviewer: str | None,
    keep_downstream: bool,
    author: str | None,
) -> None:
    """Record a reviewer's decision on a phase, as one commit.

    Give exactly one of --approve, --revise or --reject. (People may instead
    edit the phase's user_feedback.md and run `mdsessions record`.)

    \b
    Example:
        mdsessions feedback project-123/session-456 1 --approve --reviewer "Ann <ann@example.com>"
        mdsessions feedback session-456 1 --revise --comment "Focus on students" \\
            --change "audience: students" --change "shorter"
        mdsessions feedback session-456 3 --revise --keep-downstream   # 4… stay as they are
    """
    if approve + reject + revise != 1:
        raise click.UsageError("give exactly one of --approve, --revise or --reject")
    if keep_downstream and not revise:
        raise click.UsageError("--keep-downstream goes with --revise")
    comments = text_or_file(comment, comment_file, "comment")
    store = open_store(ctx)
    session = store.find_session(session_ref)
    decision: dict[str, Any] = (
        {"approved": True} if approve else {"action": "rejected" if reject else "revise"}
    )
    doc = session.save_feedback(
        phase,
        comments=comments,
        requested_changes=list(changes) if changes else None,
        reviewer=reviewer,
        author=author,
        keep_downstream=keep_downstream,
        **decision,
    )
    manifest = session.manifest()
    click.echo(
        f"{session.ref}: phase {doc.phase} {doc.phase_name} {doc.decision().value}; "
        + session_summary(session, manifest)
    )


@cli.command("log")
@click.argument("session_ref", required=False, metavar="[SESSION]")
@click.option("-n", "--max-count", type=int, metavar="N", help="Show at most N commits.")
@click.option("--skip", type=int, default=0, metavar="N", help="Skip the N newest commits.")
@json_option()
@store_option()
@click.pass_context
def log_command(
    ctx: click.Context,
    session_ref: str | None,
    max_count: int | None,
    skip: int,
    as_json: bool,
) -> None:
    """Show the history (of the store, or of one session), newest first.

    Each commit with its Mdsessions-* trailers (kind, project, session, phase,
    status).

    \b
    Example:
        mdsessions log project-123/session-456 -n 5
        mdsessions log --json
    """
    store = open_store(ctx)
    if session_ref is None:
        commits = store.log(max_count=max_count, skip=skip)
    else:
        commits = store.find_session(session_ref).history(max_count=max_count, skip=skip)
    if as_json:
        echo_json(
            [
                {
                    "sha": c.sha,
                    "time": c.time,
                    "author": c.author,
                    "subject": c.subject,
                    "trailers": dict(c.trailers),
                }
                for c in commits
            ]
        )
        return
    blocks = []
    for c in commits:
        lines = [
            f"{click.style(c.sha[:10], fg='yellow')}  {c.time}  {c.author}",
            f"    {c.subject}",
        ]
        lines += [f"    {key}: {value}" for key, value in c.trailers]
        blocks.append("\n".join(lines))
    if blocks:
        click.echo("\n\n".join(blocks))


@cli.command("show")
@click.argument("session_ref", metavar="SESSION")
@click.argument("phase", type=int, required=False)
@click.argument("document", required=False, metavar="[AGENT|checkpoint|feedback]")
@click.option("--at", "commit", metavar="COMMIT", help="Read the file as of this commit.")
@json_option()
@store_option()
@click.pass_context
def show_command(
    ctx: click.Context,
    session_ref: str,
    phase: int | None,
    document: str | None,
    commit: str | None,
    as_json: bool,
) -> None:
    """Print a session document exactly as stored (or parsed, with --json).

    Without PHASE: the session manifest. With PHASE: its checkpoint (default),
    its user feedback, or an agent's output.

    \b
    Example:
        mdsessions show project-123/session-456
        mdsessions show project-123/session-456 1 concept_expansion
        mdsessions show project-123/session-456 1 feedback --at HEAD~2 --json
    """
    store = open_store(ctx)
    session = store.find_session(session_ref)
    rel = document_rel(session, phase, document)
    data = store.read_at(commit, rel) if commit else (store.root / rel).read_bytes()
    if not as_json:
        with click.open_file("-", "wb") as out:
            out.write(data)
            out.flush()
        return
    from mdsessions import loads

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{rel}: not valid UTF-8 (byte {exc.start})")
    echo_json(loads(text, path=rel).model_dump(mode="json", by_alias=True))


@cli.command("validate")
@click.argument("session_ref", required=False, metavar="[SESSION]")
@json_option()
@store_option()
@click.pass_context
def validate_command(ctx: click.Context, session_ref: str | None, as_json: bool) -> None:
    """Check documents and the manifests' agreement with the checkpoints.

    Prints one `path:line: reason` line per problem and exits with status 1
    if there is any.

    \b
    Example:
        mdsessions validate
        mdsessions validate project-123/session-456 --json
    """
    store = open_store(ctx)
    if session_ref is None:
        problems = store.validate()
        count = sum(1 for _ in store.iter_sessions())
    else:
        problems = store.find_session(session_ref).validate()
        count = 1
    if as_json:
        echo_json(
            {
                "valid": not problems,
                "sessions": count,
                "problems": [
                    {"path": p.path, "line": p.line, "reason": p.reason} for p in problems
                ],
            }
        )
    else:
        for problem in problems:
            click.echo(str(problem))
    if problems:
        fail(f"{len(problems)} problem(s) found")
    if not as_json:
        click.echo(f"ok: {count} session(s) valid")


@cli.command("run")
@click.argument("session_ref", required=False, metavar="[SESSION]")
@click.option(
    "--new",
    "new_project",
    metavar="PROJECT",
    help="Start a new session of PROJECT (SESSION is then its optional id).",
)
@workflow_option()
@click.option("--max-phases", type=int, metavar="N", help="Stop after running N phases.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="At a review gate, wait up to SECONDS for the reviewer's saved decision and go on.",
)
@click.option(
    "--wait-lock",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="When another runner is running the session, wait up to SECONDS for it "
    "(default: exit at once, naming it).",
)
@idea_options()
@session_options()
@json_option()
@store_option()
@click.pass_context
def run_command(
    ctx: click.Context,
    session_ref: str | None,
    new_project: str | None,
    workflow: str | None,
    max_phases: int | None,
    wait: float | None,
    wait_lock: float,
    idea: str | None,
    idea_file: str | None,
    mode: str | None,
    user_id: str | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run a session's phases with the workflow's agents, up to a review gate.

    A run first records a reviewer's edit of a pending user_feedback.md, then
    runs phases until one waits for review, the session ends, or an agent fails
    (exit status 1; run again to retry). Stopping at a review gate is success.

    \b
    Example:
        mdsessions run --new demo --idea-file idea.md --workflow workflow.toml
        mdsessions run demo/session-20241124-100200-ab12 --workflow workflow.toml
        mdsessions run demo/s1 --wait 3600     # wait for each review, then go on
        mdsessions run demo/s1 --wait-lock 600 # queue behind another runner (cron)
    """
    if new_project is None:
        given = [
            name
            for name, value in (
                ("--idea", idea),
                ("--idea-file", idea_file),
                ("--mode", mode),
                ("--user-id", user_id),
                ("--tag", tags or None),
            )
            if value is not None
        ]
        if given:
            raise click.UsageError(f"{', '.join(given)}: only with --new PROJECT")
        if session_ref is None:
            raise click.UsageError("give a SESSION to continue, or --new PROJECT")
    idea_text = text_or_file(idea, idea_file, "idea")
    if new_project is not None and idea_text is None:
        raise click.UsageError("--new needs --idea TEXT or --idea-file FILE")
    from mdsessions import Runner

    store = open_store(ctx)
    runner = Runner(store, workflow)

    def waiting(phase: int) -> None:
        if not as_json:
            click.echo("\n".join(review_hint(store, session, phase)))
            click.echo(f"waiting up to {wait:g} s for the review of phase {phase}…", err=True)

    if new_project is None:
        assert session_ref is not None
        session = store.find_session(session_ref)
    else:
        session = store.create_session(
            new_project,
            session_ref,
            workflow=runner.workflow,
            mode=mode,
            user_id=user_id,
            idea=idea_text,
            tags=tags,
        )
    result = runner.run(
        session, max_phases=max_phases, wait=wait, on_wait=waiting, wait_lock=wait_lock
    )
    if as_json:
        echo_json(run_json(result))
        return
    click.echo(result.message)
    if result.waiting_for_review is not None:
        click.echo("\n".join(review_hint(store, result.session, result.waiting_for_review)))


@cli.command("edits")
@json_option()
@store_option()
@click.pass_context
def edits_command(ctx: click.Context, as_json: bool) -> None:
    """List files people edited and have not recorded yet, and whether they validate.

    \b
    Example:
        mdsessions edits
        mdsessions edits --json
    """
    store = open_store(ctx)
    edits = store.unrecorded_edits()
    if as_json:
        echo_json([{"path": e.path, "change": e.change, "error": e.error} for e in edits])
        return
    if not edits:
        click.echo("no unrecorded edits", err=True)
    for e in edits:
        click.echo(f"{e.change:<9} {display_path(store, e.path)}")
        if e.error:
            click.echo(f"          {click.style('invalid:', fg='red')} {e.error}")


@cli.command("record")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@author_option("The person who edited (default: the feedback's reviewer, else git's user).")
@click.option("-m", "--message", metavar="MSG", help="Commit subject.")
@json_option()
@store_option()
@click.pass_context
def record_command(
    ctx: click.Context,
    paths: tuple[str, ...],
    author: str | None,
    message: str | None,
    as_json: bool,
) -> None:
    """Record people's edits (all, or the PATHs) as one commit by that person.

    A feedback file's decision is applied to the session. Files that do not
    validate stay on disk uncommitted and are listed with their error (exit
    status 1).

    \b
    Example:
        mdsessions record
        mdsessions record projects/demo/sessions/s1/phase_1_concept/user_feedback.md \\
            --author "Ann <ann@example.com>"
    """
    store = open_store(ctx)
    wanted = [store_rel(store, p) for p in paths] if paths else None
    edits = store.unrecorded_edits()
    if wanted is not None:
        unmatched = sorted(set(wanted) - {e.path for e in edits})
        if unmatched:
            fail(f"{', '.join(unmatched)}: no unrecorded edit there (see: mdsessions edits)")
    before = [e for e in edits if wanted is None or e.path in wanted]
    sha, rejected = store.record_edits(wanted, author=author, message=message)
    left = {e.path for e in rejected}
    recorded = [e for e in before if e.path not in left] if sha else []
    if as_json:
        echo_json(
            {
                "commit": sha,
                "recorded": [{"path": e.path, "change": e.change} for e in recorded],
                "unrecorded": [
                    {"path": e.path, "change": e.change, "error": e.error} for e in rejected
                ],
            }
        )
    else:
        if sha:
            click.echo(f"recorded {len(recorded)} file(s) in {sha[:10]}")
            for e in recorded:
                click.echo(f"  {e.change:<9} {display_path(store, e.path)}")
        elif not rejected:
            click.echo("nothing to record", err=True)
        for e in rejected:
            click.echo(f"not recorded: {display_path(store, e.path)}: {e.error}", err=True)
    if rejected:
        fail(f"{len(rejected)} file(s) not recorded: they do not validate (fix and record again)")


@cli.command("inbox")
@click.option("--project", metavar="PROJECT", help="Only this project's sessions.")
@json_option()
@store_option()
@click.pass_context
def inbox_command(ctx: click.Context, project: str | None, as_json: bool) -> None:
    """Every phase awaiting review across the store, oldest first.

    Shows the project, session, phase, how long it has waited, the feedback file
    to edit and the outputs to read.

    \b
    Example:
        mdsessions inbox
        mdsessions inbox --project demo --json
    """
    store = open_store(ctx)
    items = store.inbox(project)
    if as_json:
        echo_json(
            [
                {
                    "project_id": i.project_id,
                    "session_id": i.session_id,
                    "phase": i.phase,
                    "phase_name": i.phase_name,
                    "waiting_since": i.waiting_since.strftime("%Y-%m-%dT%H:%M:%SZ")
                    if i.waiting_since
                    else None,
                    "feedback": i.feedback,
                    "outputs": list(i.outputs),
                }
                for i in items
            ]
        )
        return
    if not items:
        click.echo("nothing awaits review", err=True)
        return
    now = _dt.datetime.now(_dt.timezone.utc)
    rows = []
    for i in items:
        waited = "-" if i.waiting_since is None else _age(now - i.waiting_since)
        rows.append((f"{i.project_id}/{i.session_id}", str(i.phase), i.phase_name, waited))
    click.echo(table(("session", "phase", "name", "waiting"), rows, right=(1,)))
    for i in items:
        click.echo(f"\n{i.project_id}/{i.session_id} phase {i.phase}:")
        click.echo(f"  review  {display_path(store, i.feedback)}")
        for out in i.outputs:
            click.echo(f"  read    {display_path(store, out)}")


def _age(delta: _dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} days"


@cli.command("review")
@click.argument("session_ref", metavar="SESSION")
@click.argument("phase", type=int, required=False)
@click.option("--editor", metavar="CMD", help="The editor (default: $VISUAL, then $EDITOR).")
@author_option("The reviewer (default: the file's reviewer, else git's user.name/user.email).")
@store_option()
@click.pass_context
def review_command(
    ctx: click.Context,
    session_ref: str,
    phase: int | None,
    editor: str | None,
    author: str | None,
) -> None:
    """Open a phase's user_feedback.md in your editor; record your decision on save.

    PHASE defaults to the phase awaiting review. After the editor closes, the
    file is validated and committed as you (git's identity, or --author), and the
    decision is printed; run the session again to go on. An invalid edit is
    reported with file, line and reason and kept in place to fix: run review again.

    \b
    Example:
        mdsessions review demo/s1
        EDITOR=nano mdsessions review demo/s1 3 --author "Ann <ann@example.com>"
    """
    store = open_store(ctx)
    session = store.find_session(session_ref)
    if phase is None:
        waiting = [p.number for p in session.manifest().phases if p.review.value == "pending"]
        if not waiting:
            fail(f"no phase of {session.ref} awaits review; name the PHASE to review")
        phase = waiting[0]
    rel = document_rel(session, phase, "feedback")
    path = store.root / rel
    if not path.is_file():
        fail(f"{rel} does not exist yet: phase {phase} has not reached its review")
    command = editor or os.environ.get("VISUAL") or os.environ.get("EDITOR")
    try:
        click.edit(filename=str(path), editor=command)
    except click.ClickException as exc:
        fail(f"could not start the editor {command or '(default)'}: {exc.format_message()}")
    sha = session.record_feedback(phase, author=author)
    feedback = session.feedback(phase)
    assert feedback is not None
    decision = feedback.decision().value
    if sha is None:
        click.echo(f"{display_path(store, rel)}: unchanged; phase {phase} is still {decision}")
        return
    click.echo(f"phase {phase} of {session.ref}: {decision} (recorded in {sha[:10]})")
    status = session.status.value
    if status in ("in_progress", "awaiting_review"):
        click.echo(f"next: mdsessions run {session.ref}")
    else:
        click.echo(f"session {status}")


@cli.command("watch")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Stop after SECONDS (default: until interrupted).",
)
@author_option("The reviewer to record edits as (default: as for record).")
@store_option()
@click.pass_context
def watch_command(ctx: click.Context, timeout: float | None, author: str | None) -> None:
    """Record every saved user_feedback.md edit as it happens, until interrupted.

    Each save is validated and committed as the reviewer within a second; an
    invalid file is reported with file, line and reason and left to fix.

    \b
    Example:
        mdsessions watch
        mdsessions watch --timeout 3600 --author "Ann <ann@example.com>"
    """
    from mdsessions import FeedbackEvent, FeedbackWatcher

    store = open_store(ctx)

    def report(event: FeedbackEvent) -> None:
        where = display_path(store, event.path)
        if event.error:
            click.echo(f"not recorded: {event.error}", err=True)
        else:
            assert event.commit is not None
            click.echo(f"recorded {where} in {event.commit[:10]}")

    with FeedbackWatcher(store, on_event=report, author=author) as watcher:
        click.echo(f"watching {store.root} for feedback edits (Ctrl-C to stop)", err=True)
        watcher.wait(lambda: False, timeout)


from mdsessions.cli.history import register as _register_history  # noqa: E402

_register_history(cli)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (the ``mdsessions`` console script and ``python -m mdsessions``).

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).
    """
    cli.main(args=list(argv) if argv is not None else None, prog_name="mdsessions")
