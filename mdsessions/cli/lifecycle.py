# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""A session's lifecycle, tags and metadata: ``pause``, ``resume``, ``end``, ``tag``, ``meta``.

Each write is one commit (``Mdsessions-Kind: pause|resume|end|tag|metadata``) authored by
the person (``--author``, else git's user); each command prints what it did, or its result
as JSON with ``--json``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from mdsessions.cli.app import MdsessionsGroup, author_option, json_option, open_store, store_option
from mdsessions.cli.output import echo_model, short_time, styled

if TYPE_CHECKING:
    from mdsessions import LifecycleResult

__all__ = [
    "end_command",
    "meta_command",
    "parse_meta",
    "pause_command",
    "resume_command",
    "tag_group",
]

_SESSION = click.argument("session_ref", metavar="SESSION")


def parse_meta(pairs: tuple[str, ...], option: str = "--meta") -> dict[str, str]:
    """``KEY=VALUE`` words as a mapping: split at the first ``=``, the value verbatim.

    Args:
        pairs: The words, e.g. ``("team=growth", "budget=10")``.
        option: The option or argument named in an error.

    Returns:
        ``{"team": "growth", "budget": "10"}`` (text values; a later key wins).

    Raises:
        click.BadParameter: A word without ``=`` or with an empty key (exit status 2).
    """
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=repr(option))
        out[key.strip()] = value
    return out


def _report(result: LifecycleResult, as_json: bool) -> None:
    if as_json:
        echo_model(result)
        return
    line = f"{result.project}/{result.session}: {styled(result.status.after or '')}"
    if result.status.before != result.status.after:
        line += f" (was {result.status.before})"
    if result.current_phase is not None:
        line += f", phase {result.current_phase}"
    if result.ended is not None:
        line += f"; ended {short_time(result.ended)} UTC"
        if result.end_reason:
            line += f": {result.end_reason}"
    click.echo(line)
    if result.action == "pause":
        click.echo(f"resume it with: mdsessions resume {result.project}/{result.session}")


@click.command("pause")
@_SESSION
@author_option("Commit author (default: git's user).")
@json_option()
@store_option()
@click.pass_context
def pause_command(ctx: click.Context, session_ref: str, author: str | None, as_json: bool) -> None:
    """Pause a session: the runner leaves it alone until it is resumed.

    One commit (Mdsessions-Kind: pause). The session keeps its current phase;
    `inbox` leaves its phases out unless --paused is given.

    \b
    Example:
        mdsessions pause demo/latest
    """
    session = open_store(ctx).find_session(session_ref)
    _report(session.pause(author=author), as_json)


@click.command("resume")
@_SESSION
@author_option("Commit author (default: git's user).")
@json_option()
@store_option()
@click.pass_context
def resume_command(ctx: click.Context, session_ref: str, author: str | None, as_json: bool) -> None:
    """Resume a paused session (one commit, Mdsessions-Kind: resume).

    \b
    Example:
        mdsessions resume demo/session-20261202 && mdsessions run demo/session-20261202
    """
    session = open_store(ctx).find_session(session_ref)
    _report(session.resume(author=author), as_json)


@click.command("end")
@_SESSION
@click.option("--reason", metavar="TEXT", help="Why the session ends (one line).")
@author_option("Commit author (default: git's user).")
@json_option()
@store_option()
@click.pass_context
def end_command(
    ctx: click.Context, session_ref: str, reason: str | None, author: str | None, as_json: bool
) -> None:
    """End a session: `cancelled` if phases were left, else it keeps `completed`.

    One commit (Mdsessions-Kind: end); the manifest records `ended` (UTC) and
    `end_reason`. A cancelled session takes no more writes.

    \b
    Example:
        mdsessions end demo/s1 --reason "superseded by demo/s2"
    """
    session = open_store(ctx).find_session(session_ref)
    _report(session.end(reason=reason, author=author), as_json)


@click.group("tag", cls=MdsessionsGroup)
def tag_group() -> None:
    """Add, remove or list a session's tags (each change one commit, Mdsessions-Kind: tag).

    \b
    Example:
        mdsessions tag add demo/s1 pilot q3
        mdsessions tag list demo/s1 --json
    """


def _echo_tags(result: Any, as_json: bool) -> None:
    if as_json:
        echo_model(result)
        return
    for tag in result.tags:
        click.echo(tag)
    if not result.tags:
        click.echo(f"{result.project}/{result.session} has no tags", err=True)


@tag_group.command("add")
@_SESSION
@click.argument("tags", nargs=-1, required=True, metavar="TAG...")
@author_option("Commit author (default: git's user).")
@json_option()
@store_option()
@click.pass_context
def tag_add_command(
    ctx: click.Context, session_ref: str, tags: tuple[str, ...], author: str | None, as_json: bool
) -> None:
    """Add tags to a session; prints its tags. Tags it has already are kept as they are.

    \b
    Example:
        mdsessions tag add demo/s1 pilot q3
    """
    session = open_store(ctx).find_session(session_ref)
    _echo_tags(session.add_tags(list(tags), author=author), as_json)


@tag_group.command("remove")
@_SESSION
@click.argument("tags", nargs=-1, required=True, metavar="TAG...")
@author_option("Commit author (default: git's user).")
@json_option()
@store_option()
@click.pass_context
def tag_remove_command(
    ctx: click.Context, session_ref: str, tags: tuple[str, ...], author: str | None, as_json: bool
) -> None:
    """Remove tags from a session; prints the tags left. Each must be one of its tags.

    \b
    Example:
        mdsessions tag remove demo/s1 q3
    """
    session = open_store(ctx).find_session(session_ref)
    _echo_tags(session.remove_tags(list(tags), author=author), as_json)


@tag_group.command("list")
@_SESSION
@json_option()
@store_option()
@click.pass_context
def tag_list_command(ctx: click.Context, session_ref: str, as_json: bool) -> None:
    """Print a session's tags, one a line.

    \b
    Example:
        mdsessions tag list demo/latest
    """
    _echo_tags(open_store(ctx).find_session(session_ref).tags(), as_json)


@click.command("meta")
@_SESSION
@click.argument("pairs", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--unset", "unset", multiple=True, metavar="KEY", help="Remove KEY (repeatable).")
@author_option("Commit author (default: git's user).")
@json_option()
@store_option()
@click.pass_context
def meta_command(
    ctx: click.Context,
    session_ref: str,
    pairs: tuple[str, ...],
    unset: tuple[str, ...],
    author: str | None,
    as_json: bool,
) -> None:
    """Show or change a session's metadata: free-form KEY=VALUE pairs, kept verbatim.

    Without KEY=VALUE or --unset: prints the metadata (`key: value` lines). With
    them: sets and removes keys as one commit (Mdsessions-Kind: metadata), then
    prints the result. Values are stored as text, exactly as typed.

    \b
    Example:
        mdsessions meta demo/s1 customer=acme budget=250
        mdsessions meta demo/s1 --unset budget --json
    """
    values = parse_meta(pairs, "KEY=VALUE")
    session = open_store(ctx).find_session(session_ref)
    if values or unset:
        result = session.set_metadata(values, remove=list(unset), author=author)
    else:
        result = session.metadata()
    if as_json:
        echo_model(result)
        return
    for key, value in result.metadata.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        click.echo(f"{key}: {shown}")
    if not result.metadata:
        click.echo(f"{result.project}/{result.session} has no metadata", err=True)
