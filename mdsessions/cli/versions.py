# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""Time travel: ``log``, ``versions``, ``diff``, ``restore`` and ``fork``."""

from __future__ import annotations

import click

from mdsessions.cli.app import author_option, json_option, open_store, store_option
from mdsessions.cli.output import arrow, echo_model, short_time, styled, table

__all__ = ["diff_command", "fork_command", "log_command", "restore_command", "versions_command"]


@click.command("log")
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
        from mdsessions import history

        echo_model([history.Version.from_commit(c) for c in commits])
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


@click.command("versions")
@click.argument("session_ref", metavar="SESSION")
@click.argument("phase_arg", type=int, required=False, metavar="[PHASE]")
@click.argument("document", required=False, metavar="[DOC]")
@click.option("--phase", type=int, metavar="N", help="Only commits of phase N (Mdsessions-Phase).")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    metavar="KIND",
    help="Only commits of this kind: session, checkpoint, agent_output, user_feedback, edit, "
    "restore, fork, merge (repeatable).",
)
@click.option("--author", metavar="TEXT", help="Only commits whose author contains TEXT.")
@click.option("--since", metavar="TIME", help="Only commits at or after TIME (UTC ISO-8601).")
@click.option("--until", metavar="TIME", help="Only commits at or before TIME (UTC ISO-8601).")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    metavar="N",
    help="Versions per page.",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Skip N matching versions (the next page's offset is printed).",
)
@json_option()
@store_option()
@click.pass_context
def versions_command(
    ctx: click.Context,
    session_ref: str,
    phase_arg: int | None,
    document: str | None,
    phase: int | None,
    kinds: tuple[str, ...],
    author: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List the versions (commits) of a session, a phase or a document, newest first.

    With PHASE: the phase folder's history; with PHASE DOC (checkpoint,
    feedback or an agent id): that document's. Filters are applied before
    paging, so --limit/--offset pages stay exact.

    \b
    Example:
        mdsessions versions project-123/session-456 --kind checkpoint --limit 10
        mdsessions versions session-456 1 concept_expansion --json
        mdsessions versions session-456 --phase 3 --since 2024-11-24 --offset 20
    """
    from mdsessions import history

    store = open_store(ctx)
    session = store.find_session(session_ref)
    path = None
    if phase_arg is not None:
        path = (
            session.document_rel(phase_arg, document)
            if document is not None
            else session.phase_rel(phase_arg)
        )
    page = history.versions(
        session,
        path,
        phase=phase,
        kind=list(kinds) or None,
        author=author,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    if as_json:
        echo_model(page)
        return
    rows = [
        [
            click.style(v.commit[:10], fg="yellow"),
            short_time(v.time),
            v.kind or "-",
            str(v.phase) if v.phase is not None else "-",
            styled(v.status) if v.status else "-",
            v.author,
            v.subject,
        ]
        for v in page.versions
    ]
    if rows:
        headers = ["commit", "time (UTC)", "kind", "phase", "status", "author", "subject"]
        click.echo(table(headers, rows, right=[3]))
    else:
        click.echo("no versions", err=True)
    if page.next_offset is not None:
        click.echo(f"more: --offset {page.next_offset}", err=True)


@click.command("diff")
@click.argument("session_ref", metavar="SESSION")
@click.argument("old", metavar="A")
@click.argument("new", required=False, default="HEAD", metavar="[B]")
@click.option("--stat", is_flag=True, help="Print the summary instead of the patch.")
@json_option()
@store_option()
@click.pass_context
def diff_command(
    ctx: click.Context, session_ref: str, old: str, new: str, stat: bool, as_json: bool
) -> None:
    """Compare a session at two checkpoints (commits A and B, default HEAD).

    Prints the unified diff of its markdown; --stat prints a summary instead:
    files added/modified/deleted, phases and their status and review
    transitions, the session's status. --json has both (the patch unless --stat).

    \b
    Example:
        mdsessions diff project-123/session-456 HEAD~5
        mdsessions diff session-456 1a2b3c4d 5e6f7a8b --stat
        mdsessions diff session-456 HEAD~3 --json
    """
    from mdsessions import history

    store = open_store(ctx)
    session = store.find_session(session_ref)
    result = history.diff(session, old, new, patch=not stat)
    if as_json:
        echo_model(result)
        return
    if not stat:
        if result.patch:
            click.echo(result.patch, nl=False)
        else:
            click.echo("no changes", err=True)
        return
    lines = [f"{session.ref}  {result.old[:10]}..{result.new[:10]}"]
    lines.append(
        f"session  {arrow(result.status_before, result.status_after)}"
        f" (phase {arrow(result.current_phase_before, result.current_phase_after)})"
    )
    cut = len(session.rel) + 1
    for p in result.phases:
        lines.append(
            f"phase {p.phase} {p.name or ''}: {arrow(p.status_before, p.status_after)}, "
            f"review {arrow(p.review_before, p.review_after)}"
        )
        lines += [
            f"  {f.change:<9} {f.path[cut:]}  +{f.insertions} -{f.deletions}" for f in p.files
        ]
    for f in result.files:
        if f.phase is None:
            lines.append(f"  {f.change:<9} {f.path[cut:]}  +{f.insertions} -{f.deletions}")
    plus = sum(f.insertions for f in result.files)
    minus = sum(f.deletions for f in result.files)
    lines.append(f"{len(result.files)} file(s) changed, +{plus} -{minus}")
    click.echo("\n".join(lines))


@click.command("restore")
@click.argument("session_ref", metavar="SESSION")
@click.argument("commit", metavar="[COMMIT]", required=False)
@click.option(
    "--phase",
    type=int,
    metavar="N",
    help="Restore phase N (and the phases after it, which build on it) only.",
)
@click.option(
    "--force", is_flag=True, help="Overwrite the session's unrecorded edits instead of failing."
)
@click.option(
    "--from-bundle",
    "bundle",
    metavar="FILE",
    help="Bring a deleted session back as it is in this bundle (mdsessions delete --bundle).",
)
@author_option("Commit author (default: git's user, else the login).")
@json_option()
@store_option()
@click.pass_context
def restore_command(
    ctx: click.Context,
    session_ref: str,
    commit: str | None,
    phase: int | None,
    force: bool,
    bundle: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Restore a session (or one phase) to a checkpoint, or bring a removed one back.

    With COMMIT, the files as they were at COMMIT are written back and
    recorded; history is never rewritten. With --phase N, phase N and the
    later phases take their state at COMMIT (earlier phases keep theirs)
    and the runner continues from there. Refuses, changing nothing, when the
    session has unrecorded edits, unless --force.

    Without COMMIT, a session that is not in the store comes back in one
    commit: an archived one moves back from archive/, a deleted one
    (named PROJECT/SESSION) takes its files from the commit before its
    deletion, or from the bundle given with --from-bundle.

    \b
    Example:
        mdsessions restore project-123/session-456 1a2b3c4d
        mdsessions restore session-456 HEAD~4 --phase 3 --force
        mdsessions restore project-123/session-456 --from-bundle old.bundle
    """
    from mdsessions import history

    store = open_store(ctx)
    if commit is None:
        if phase is not None or force:
            raise click.UsageError("--phase and --force need a COMMIT")
        back = history.bring_back(store, session_ref, bundle=bundle, author=author)
        if as_json:
            echo_model(back)
            return
        where = {"archive": "the archive", "history": "history", "bundle": "the bundle"}
        click.echo(
            f"{back.session}: brought back from {where.get(back.source, back.source)} "
            f"({back.target[:8]}) in {str(back.commit)[:10]}; session {back.status}"
        )
        return
    if bundle is not None:
        raise click.UsageError("--from-bundle brings a removed session back: leave out COMMIT")
    session = store.find_session(session_ref)
    result = history.restore(session, commit, phase=phase, force=force, author=author)
    if as_json:
        echo_model(result)
        return
    what = "session" if phase is None else f"phase {phase}"
    if result.commit is None:
        click.echo(f"{session.ref}: {what} already as at {result.target[:8]}; nothing to do")
    else:
        extra = ""
        if len(result.reset_phases) > 1:
            extra = f"; phases {', '.join(map(str, result.reset_phases))} reset"
        click.echo(
            f"{session.ref}: restored {what} to {result.target[:8]} in "
            f"{result.commit[:10]}{extra}; session {result.status}"
        )
    if result.overwritten:
        click.echo("overwrote unrecorded edits: " + ", ".join(result.overwritten), err=True)


@click.command("fork")
@click.argument("session_ref", metavar="SESSION")
@click.argument("new_id", metavar="NEW_ID")
@click.option("--project", metavar="PROJECT", help="The new session's project (default: same).")
@click.option(
    "--at", "commit", default="HEAD", show_default=True, metavar="COMMIT", help="Fork as of."
)
@author_option("Commit author (default: git's user, else the login).")
@json_option()
@store_option()
@click.pass_context
def fork_command(
    ctx: click.Context,
    session_ref: str,
    new_id: str,
    project: str | None,
    commit: str,
    author: str | None,
    as_json: bool,
) -> None:
    """Fork a session at a checkpoint into a new session id, as one commit.

    The new session holds the files as they were at COMMIT, with its own ids
    and forked_from naming the source; the original is untouched. Prints
    PROJECT/NEW_ID.

    \b
    Example:
        mdsessions fork project-123/session-456 session-457 --at HEAD~6
        mdsessions fork session-456 try-students --project project-999
    """
    from mdsessions import history

    store = open_store(ctx)
    session = store.find_session(session_ref)
    result = history.fork(session, new_id, project=project, at=commit, author=author)
    if as_json:
        echo_model(result)
        return
    click.echo(result.session.ref)
