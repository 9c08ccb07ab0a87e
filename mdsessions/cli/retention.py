# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""``archive``, ``unarchive``, ``delete`` and ``cleanup``: retention, each one commit."""

from __future__ import annotations

import click

from mdsessions.cli.app import author_option, json_option, open_store, store_option
from mdsessions.cli.exchange import select, selection_options
from mdsessions.cli.output import echo_model

__all__ = ["archive_command", "cleanup_command", "delete_command", "unarchive_command"]


@click.command("archive")
@selection_options()
@author_option("Commit author (default: git's user, else the login).")
@json_option()
@store_option()
@click.pass_context
def archive_command(
    ctx: click.Context,
    session_refs: tuple[str, ...],
    project: str | None,
    status: tuple[str, ...],
    tag: tuple[str, ...],
    all_sessions: bool,
    author: str | None,
    as_json: bool,
) -> None:
    """Move sessions to their project's archive/ folder, in one commit.

    Archived sessions leave list, inbox and the session index; git records
    the move (a rename). mdsessions list --archived lists them; mdsessions
    unarchive (or restore) moves them back.

    \b
    Example:
        mdsessions archive project-123/session-456
        mdsessions archive --project project-123 --status completed
    """
    from mdsessions import history

    store = open_store(ctx)
    sessions = select(store, session_refs, project, status, tag, all_sessions)
    if not sessions:
        click.echo("no session matches; nothing archived", err=True)
        return
    result = history.archive(store, sessions, author=author)
    if as_json:
        echo_model(result)
        return
    click.echo(f"archived {', '.join(result.sessions)} in {result.commit[:10]}")


@click.command("unarchive")
@click.argument("session_refs", nargs=-1, required=True, metavar="SESSION...")
@author_option("Commit author (default: git's user, else the login).")
@json_option()
@store_option()
@click.pass_context
def unarchive_command(
    ctx: click.Context, session_refs: tuple[str, ...], author: str | None, as_json: bool
) -> None:
    """Move archived sessions back to their project's sessions/ folder, in one commit.

    SESSION is PROJECT/SESSION, a bare session id or a unique prefix of an
    archived session.

    \b
    Example:
        mdsessions unarchive project-123/session-456
    """
    from mdsessions import history

    store = open_store(ctx)
    result = history.unarchive(store, list(session_refs), author=author)
    if as_json:
        echo_model(result)
        return
    click.echo(f"unarchived {', '.join(result.sessions)} in {result.commit[:10]}")


@click.command("delete")
@click.argument("session_refs", nargs=-1, required=True, metavar="SESSION...")
@click.option(
    "--bundle",
    metavar="FILE",
    help="First write the sessions' full history to this verified bundle.",
)
@author_option("Commit author (default: git's user, else the login).")
@json_option()
@store_option()
@click.pass_context
def delete_command(
    ctx: click.Context,
    session_refs: tuple[str, ...],
    bundle: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Delete sessions in one commit; history keeps them.

    mdsessions restore PROJECT/SESSION brings one back from the commit
    before the delete, or with --from-bundle FILE from the bundle.

    \b
    Example:
        mdsessions delete project-123/session-456 --bundle old.bundle
    """
    from mdsessions import history

    store = open_store(ctx)
    sessions = [store.find_session(ref) for ref in session_refs]
    result = history.delete(store, sessions, bundle=bundle, author=author)
    if as_json:
        echo_model(result)
        return
    click.echo(f"deleted {', '.join(result.sessions)} in {result.commit[:10]}")
    if result.bundle is not None:
        click.echo(f"history bundled in {result.bundle.path}")


@click.command("cleanup")
@click.option(
    "--older-than",
    required=True,
    metavar="AGE",
    help="Sessions last updated more than AGE ago: 30d, 12h, 2w, 90m, 1y.",
)
@click.option("--status", multiple=True, metavar="STATUS", help="Only this status (repeatable).")
@click.option("--project", metavar="PROJECT", help="Only this project's sessions.")
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Per project, keep the N most recently updated sessions (that match --status).",
)
@click.option("--archive", "action", flag_value="archive", help="Archive them.")
@click.option("--delete", "action", flag_value="delete", help="Delete them.")
@click.option("--bundle", metavar="FILE", help="With --delete: bundle their history first.")
@click.option(
    "--archived",
    is_flag=True,
    help="Choose among the archived sessions instead (with --delete).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing.")
@author_option("Commit author (default: git's user, else the login).")
@json_option()
@store_option()
@click.pass_context
def cleanup_command(
    ctx: click.Context,
    older_than: str,
    status: tuple[str, ...],
    project: str | None,
    keep_last: int,
    action: str | None,
    bundle: str | None,
    archived: bool,
    dry_run: bool,
    author: str | None,
    as_json: bool,
) -> None:
    """Archive or delete old sessions, in one commit.

    A session is old when its manifest was last updated more than AGE ago.
    A delete keeps the sessions in history; --bundle FILE also writes their
    history to a verified bundle first (nothing is deleted if that fails).
    --archived --delete deletes old sessions from the archive.

    \b
    Example:
        mdsessions cleanup --older-than 30d --status completed --archive --dry-run
        mdsessions cleanup --older-than 90d --keep-last 5 --delete --bundle old.bundle
        mdsessions cleanup --older-than 1y --archived --delete --bundle attic.bundle
    """
    from mdsessions import history

    if action is None:
        raise click.UsageError("choose --archive or --delete")
    store = open_store(ctx)
    result = history.cleanup(
        store,
        older_than=older_than,
        action=action,  # type: ignore[arg-type]
        status=status,
        project=project,
        keep_last=keep_last,
        bundle=bundle,
        dry_run=dry_run,
        archived=archived,
        author=author,
    )
    if as_json:
        echo_model(result)
        return
    verb = {"archive": "archive", "delete": "delete"}[result.action]
    if not result.sessions:
        click.echo(f"nothing to {verb}", err=True)
        return
    for ref in result.sessions:
        click.echo(f"{'would ' + verb if result.dry_run else verb}  {ref}")
    if result.commit is not None:
        click.echo(f"{len(result.sessions)} session(s) in {result.commit[:10]}", err=True)
