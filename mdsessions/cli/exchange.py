# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""``export`` and ``import``: sessions as JSON, JSON Lines or CSV, and bundles of their history."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mdsessions.cli.app import author_option, json_option, open_store, store_option
from mdsessions.cli.output import echo_model

if TYPE_CHECKING:
    from mdsessions import Session, Store

__all__ = ["export_command", "import_command", "selection_options", "select"]

F = TypeVar("F", bound=Callable[..., Any])


def selection_options() -> Callable[[F], F]:
    """``[SESSION]… --project --status --tag --all``: which sessions a command takes.

    Returns:
        The decorator; the command gets ``session_refs``, ``project``, ``status``, ``tag``
        and ``all_sessions``.
    """

    def apply(f: F) -> F:
        f = click.option("--all", "all_sessions", is_flag=True, help="Every session of the store.")(
            f
        )
        f = click.option(
            "--tag", multiple=True, metavar="TAG", help="Only sessions with this tag (repeatable)."
        )(f)
        f = click.option(
            "--status",
            multiple=True,
            metavar="STATUS",
            help="Only sessions in this status (repeatable: any of them).",
        )(f)
        f = click.option("--project", metavar="PROJECT", help="Only this project's sessions.")(f)
        return click.argument("session_refs", nargs=-1, metavar="[SESSION]...")(f)

    return apply


def select(
    store: Store,
    session_refs: tuple[str, ...],
    project: str | None,
    status: tuple[str, ...],
    tag: tuple[str, ...],
    all_sessions: bool,
) -> list[Session]:
    """The sessions named, filtered (``--all``: every one).

    Raises:
        click.UsageError: Nothing named and no filter and no ``--all``.
    """
    from mdsessions import history

    if not (session_refs or project or status or tag or all_sessions):
        raise click.UsageError("name sessions, give --project/--status/--tag, or --all")
    named = [store.find_session(ref) for ref in session_refs]
    return history.select_sessions(store, sessions=named, project=project, status=status, tag=tag)


@click.command("export")
@selection_options()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "jsonl", "csv"]),
    default="json",
    show_default=True,
    help="JSON (one document), JSON Lines (a session a line) or CSV (see --rows).",
)
@click.option(
    "--rows",
    type=click.Choice(["phase", "agent"]),
    default="phase",
    show_default=True,
    help="CSV: one row per phase or per agent output.",
)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE (default: print on stdout).")
@click.option(
    "--bundle",
    metavar="FILE",
    help="Write a verified git bundle of the sessions with their full history instead.",
)
@json_option()
@store_option()
@click.pass_context
def export_command(
    ctx: click.Context,
    session_refs: tuple[str, ...],
    project: str | None,
    status: tuple[str, ...],
    tag: tuple[str, ...],
    all_sessions: bool,
    fmt: str,
    rows: str,
    output: str | None,
    bundle: str | None,
    as_json: bool,
) -> None:
    """Export sessions as JSON, JSON Lines or CSV, or bundle their history.

    The sessions are read as committed at HEAD. JSON and JSON Lines hold
    every file of each session byte for byte (mdsessions import takes them);
    CSV has one row per phase (--rows phase) or per agent output (--rows
    agent), columns documented in the README. --bundle FILE writes a git
    bundle of the sessions' own history (only their folders) that another
    store takes in with mdsessions import FILE. --json reports what was
    written (with -o or --bundle).

    \b
    Example:
        mdsessions export --all -o sessions.json
        mdsessions export --project project-123 --format csv --rows agent
        mdsessions export project-123/session-456 --bundle s456.bundle
    """
    from mdsessions import history

    if bundle is not None and (output is not None or fmt != "json" or rows != "phase"):
        raise click.UsageError("--bundle FILE writes a bundle: leave out -o, --format and --rows")
    if as_json and output is None and bundle is None:
        raise click.UsageError("--json reports a file written: give -o FILE or --bundle FILE")
    store = open_store(ctx)
    sessions = select(store, session_refs, project, status, tag, all_sessions)
    if bundle is not None:
        result = history.export_bundle(store, sessions, bundle)
    else:
        result = history.export_sessions(
            store,
            sessions,
            format=fmt,  # type: ignore[arg-type]
            rows=rows,  # type: ignore[arg-type]
            path=output,
        )
        if output is None:
            click.echo(result.text, nl=False)
            return
    if as_json:
        echo_model(result)
        return
    what = f"{result.rows} commit(s)" if bundle is not None else f"{result.rows} record(s)"
    click.echo(f"{len(result.sessions)} session(s), {what} -> {result.path}")


@click.command("import")
@click.argument("source", metavar="FILE", type=click.Path(dir_okay=False))
@click.option(
    "--rename",
    is_flag=True,
    help="Give a session whose id is taken the first free id ID-2, ID-3… instead of failing.",
)
@author_option("Commit author (default: git's user, else the login).")
@json_option()
@store_option()
@click.pass_context
def import_command(
    ctx: click.Context, source: str, rename: bool, author: str | None, as_json: bool
) -> None:
    """Import a JSON/JSON Lines export, or a bundle, into this store.

    An export (mdsessions export --format json|jsonl) becomes one commit per
    session, its files byte for byte; a session whose id is taken refuses
    the whole import (nothing written) unless --rename. A bundle
    (mdsessions export --bundle) brings the sessions with their whole
    history, in one merge commit. Prints each session imported.

    \b
    Example:
        mdsessions import sessions.json
        mdsessions import sessions.jsonl --rename --json
        mdsessions import s456.bundle
    """
    from mdsessions import history

    store = open_store(ctx)
    with Path(source).open("rb") as handle:
        start = handle.read(16)
    if start.startswith((b"# v2 git bundle", b"# v3 git bundle")):
        result = history.import_bundle(store, source, author=author)
    else:
        result = history.import_sessions(store, source, rename=rename, author=author)
    if as_json:
        echo_model(result)
        return
    for item in result.imported:
        renamed = f" (was {item.source})" if item.source != item.session else ""
        click.echo(f"{item.session}{renamed}  {item.commit[:10]}  {item.files} file(s)")
