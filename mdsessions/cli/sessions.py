# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""Sessions: ``init``, ``new``, ``list``, ``status``, ``show`` and ``validate``."""

from __future__ import annotations

import click

from mdsessions.cli.app import (
    fail,
    idea_options,
    json_option,
    open_store,
    session_options,
    store_option,
    store_path,
    workflow_option,
)
from mdsessions.cli.args import text_or_file
from mdsessions.cli.output import (
    echo_json,
    echo_model,
    echo_session_entries,
    review_hint,
    seconds,
    short_time,
    styled,
    table,
)

__all__ = [
    "init_command",
    "list_command",
    "new_command",
    "show_command",
    "status_command",
    "validate_command",
]


@click.command("init")
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

    store = Store.init(path or store_path(ctx) or ".", projects_dir=projects_dir)
    ctx.call_on_close(store.close)
    click.echo(str(store.root))


@click.command("new")
@click.argument("project")
@click.argument("session_id", required=False, metavar="[SESSION]")
@workflow_option()
@session_options()
@click.option(
    "--meta",
    "meta",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata, kept verbatim (repeatable).",
)
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
    meta: tuple[str, ...],
    idea: str | None,
    idea_file: str | None,
) -> None:
    """Create a session (its manifest and phase table) as one commit.

    SESSION defaults to session-YYYYmmdd-HHMMSS-xxxx (UTC). Prints
    PROJECT/SESSION.

    \b
    Example:
        mdsessions new project-123 session-456 --mode full --idea "A gym leaderboard"
        mdsessions new project-123 --idea-file idea.md --tag pilot --meta customer=acme
    """
    from mdsessions.cli.lifecycle import parse_meta

    metadata = parse_meta(meta)
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
        metadata=metadata,
    )
    click.echo(session.ref)


@click.command("list")
@click.option("--project", metavar="PROJECT", help="Only this project's sessions.")
@click.option(
    "--status",
    metavar="STATUS",
    help="Only sessions with this status: created, in_progress, awaiting_review, completed, "
    "rejected or failed.",
)
@click.option("--archived", is_flag=True, help="List the archived sessions instead.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Only sessions with this tag (repeat: with every one of them).",
)
@json_option()
@store_option()
@click.pass_context
def list_command(
    ctx: click.Context,
    project: str | None,
    status: str | None,
    archived: bool,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """List the sessions of the store.

    \b
    Example:
        mdsessions list
        mdsessions list --project project-123 --status awaiting_review --json
        mdsessions list --archived
        mdsessions list --tag pilot
    """
    from mdsessions import SessionFilter, SessionStatus, find_sessions

    if status is not None:
        allowed = [s.value for s in SessionStatus]
        if status not in allowed:
            raise click.BadParameter(
                f"{status!r} is not one of {', '.join(allowed)}", param_hint="'--status'"
            )
    store = open_store(ctx)
    if archived:
        from mdsessions import history

        manifests = [
            m
            for m in history.archived_sessions(store, project)
            if (status is None or m.status.value == status) and set(tags) <= set(m.tags)
        ]
    else:
        manifests = find_sessions(
            store,
            SessionFilter(project=project, status=(status,) if status else (), tags=tags),
        )
    if as_json:
        echo_session_entries(manifests)  # streamed; SessionEntry of docs/json.md
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


@click.command("status")
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
        # SessionState of docs/json.md, without importing the models of every command's JSON
        # (mdsessions.cli.schemas imports the history API): tests/test_cli.py checks it is
        # exactly what SessionState(...).model_dump(mode="json", by_alias=True) gives.
        echo_json(
            {
                "project": session.project_id,
                "session": session.session_id,
                "path": session.manifest_rel,
                "manifest": manifest.model_dump(mode="json", by_alias=True),
            }
        )
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
    if manifest.paused is not None:
        lines.insert(2, f"paused    {short_time(manifest.paused)} UTC (resume: mdsessions resume)")
    if manifest.ended is not None:
        why = f": {manifest.end_reason}" if manifest.end_reason else ""
        lines.insert(2, f"ended     {short_time(manifest.ended)} UTC{why}")
    stale = [p for p in manifest.phases if p.status.value == "stale"]
    if stale:
        lines += ["", *(f"stale     phase {p.number}: {p.stale_reason}; runs again" for p in stale)]
    click.echo("\n".join(lines))
    if manifest.status.value == "awaiting_review" and current is not None:
        click.echo("\n".join(["", *review_hint(store, session, current)]))


@click.command("show")
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
    rel = session.document_rel(phase, document)
    data = store.read_at(commit, rel) if commit else (store.root / rel).read_bytes()
    if not as_json:
        with click.open_file("-", "wb") as out:
            out.write(data)
            out.flush()
        return
    from mdsessions import DocumentKind, loads
    from mdsessions.cli.schemas import DocumentView

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{rel}: not valid UTF-8 (byte {exc.start})")
    doc = loads(text, path=rel)
    echo_model(
        DocumentView(
            project=session.project_id,
            session=session.session_id,
            phase=phase,
            kind=DocumentKind(doc.schema_.split("/")[1]),
            path=rel,
            document=doc,
        )
    )


@click.command("validate")
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
        from mdsessions.cli.schemas import ValidationReport

        echo_model(ValidationReport(valid=not problems, session_count=count, problems=problems))
    else:
        for problem in problems:
            click.echo(str(problem))
    if problems:
        fail(f"{len(problems)} problem(s) found")
    if not as_json:
        click.echo(f"ok: {count} session(s) valid")
