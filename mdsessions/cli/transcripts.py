# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""``transcript``: a session's transcripts (``list``, ``show``, ``stats``, ``add``, ``prune`` …)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mdsessions.cli.app import MdsessionsGroup, fail, json_option, open_store, store_option
from mdsessions.cli.args import read_input
from mdsessions.cli.output import echo_model, table

if TYPE_CHECKING:
    from mdsessions import TranscriptLog

__all__ = [
    "transcript_add",
    "transcript_group",
    "transcript_list",
    "transcript_prune",
    "transcript_pruned",
    "transcript_show",
    "transcript_stats",
]

_NAME = click.argument("name", required=False, default="session", metavar="[NAME]")
_SESSION = click.argument("session_ref", metavar="SESSION")


def _log(
    ctx: click.Context,
    session_ref: str,
    name: str,
    *,
    create: bool = False,
    context_limit: int | None = None,
) -> TranscriptLog:
    """The transcript NAME of SESSION; one that does not exist is an error unless ``create``."""
    from mdsessions import TranscriptLog

    session = open_store(ctx).find_session(session_ref)
    log = session.transcript(name, context_limit=context_limit)
    if not create and not log.exists():
        names = TranscriptLog.names(session)
        fail(
            f"no transcript {name!r} in {session.ref} (no {log.rel}); "
            + (f"its transcripts: {', '.join(names)}" if names else "it has none yet")
        )
    return log


@click.group("transcript", cls=MdsessionsGroup)
def transcript_group() -> None:
    """An agent's (or the session's) messages and commands: show, measure, prune.

    A transcript is transcripts/NAME.md in the session folder (NAME an agent id,
    or "session"): each message a section with its number, role, time and tokens.
    Pruned messages stay in history: `transcript show --at COMMIT^` or
    `transcript pruned` brings them back.

    \b
    Example:
        mdsessions transcript show proj/s1 concept_expansion
        mdsessions transcript prune proj/s1 concept_expansion --keep-last 50
    """


@transcript_group.command("list")
@_SESSION
@json_option()
@store_option()
@click.pass_context
def transcript_list(ctx: click.Context, session_ref: str, as_json: bool) -> None:
    """List a session's transcripts with their messages, tokens and context share.

    \b
    Example:
        mdsessions transcript list proj/s1
        mdsessions transcript list proj/s1 --json
    """
    from mdsessions import TranscriptLog

    session = open_store(ctx).find_session(session_ref)
    found = [session.transcript(name).stats() for name in TranscriptLog.names(session)]
    if as_json:
        echo_model(found)
        return
    rows = [
        (s.name, str(s.messages), str(s.tokens), f"{100 * s.context_share:.1f}%", str(s.pruned))
        for s in found
    ]
    click.echo(table(["NAME", "MESSAGES", "TOKENS", "CONTEXT", "PRUNED"], rows, right=(1, 2, 3, 4)))


@transcript_group.command("show")
@_SESSION
@_NAME
@click.option("--at", "at", metavar="COMMIT", help="The transcript as it was at COMMIT.")
@json_option()
@store_option()
@click.pass_context
def transcript_show(
    ctx: click.Context, session_ref: str, name: str, at: str | None, as_json: bool
) -> None:
    """Print a transcript's messages (each verbatim), now or at a commit.

    Each message is printed after a line "#NUMBER ROLE TIME (TOKENS tokens)".
    With --at COMMIT^ of a prune's commit, the messages it removed are back.

    \b
    Example:
        mdsessions transcript show proj/s1 concept_expansion
        mdsessions transcript show proj/s1 concept_expansion --at HEAD~1 --json
    """
    doc = _log(ctx, session_ref, name, create=at is not None).read(at=at)
    if as_json:
        echo_model(doc)
        return
    for entry in doc.entries:
        click.echo(f"#{entry.number} {entry.role} {entry.time} ({entry.tokens} tokens)")
        click.echo(entry.content)


@transcript_group.command("stats")
@_SESSION
@_NAME
@click.option(
    "--threshold",
    type=float,
    default=0.8,
    show_default=True,
    help="Share of the context limit at which it should be pruned.",
)
@click.option("--context-limit", type=int, metavar="TOKENS", help="Measure against this limit.")
@json_option()
@store_option()
@click.pass_context
def transcript_stats(
    ctx: click.Context,
    session_ref: str,
    name: str,
    threshold: float,
    context_limit: int | None,
    as_json: bool,
) -> None:
    """Messages, tokens (reported, else characters / 4) and the share of the context limit.

    \b
    Example:
        mdsessions transcript stats proj/s1 concept_expansion
        mdsessions transcript stats proj/s1 --context-limit 200000 --json
    """
    stats = _log(ctx, session_ref, name, context_limit=context_limit).stats(threshold=threshold)
    if as_json:
        echo_model(stats)
        return
    roles = ", ".join(f"{role} {count}" for role, count in stats.by_role.items()) or "-"
    click.echo(f"{stats.path}")
    click.echo(f"messages: {stats.messages} ({roles})")
    click.echo(
        f"tokens:   {stats.tokens} of {stats.context_limit} "
        f"({100 * stats.context_share:.1f}%, prune at {100 * stats.threshold:g}%: "
        f"{'yes' if stats.should_prune else 'no'})"
    )
    click.echo(f"pruned:   {stats.pruned}")


@transcript_group.command("add")
@_SESSION
@_NAME
@click.option("--role", required=True, metavar="ROLE", help="user, assistant, system, command …")
@click.option("--text", metavar="TEXT", help="The message (default: read FILE or stdin).")
@click.option("--file", "path", metavar="FILE", default="-", help="Read the message from FILE.")
@click.option("--tokens", type=int, metavar="N", help="Tokens reported (default: chars / 4).")
@json_option()
@store_option()
@click.pass_context
def transcript_add(
    ctx: click.Context,
    session_ref: str,
    name: str,
    role: str,
    text: str | None,
    path: str,
    tokens: int | None,
    as_json: bool,
) -> None:
    """Record one message (verbatim) in a transcript: one commit.

    \b
    Example:
        echo "ls -la" | mdsessions transcript add proj/s1 --role command
        mdsessions transcript add proj/s1 writer --role user --text "Go on"
    """
    log = _log(ctx, session_ref, name, create=True)
    content = text if text is not None else read_input(path)
    log.record_message(role=role, content=content, tokens=tokens)
    log.flush()
    stats = log.stats()
    if as_json:
        echo_model(stats)
        return
    click.echo(f"{stats.path}: {stats.messages} message(s), {stats.tokens} tokens")


@transcript_group.command("prune")
@_SESSION
@_NAME
@click.option(
    "--keep-last", type=int, default=50, show_default=True, help="Newest messages to keep."
)
@click.option(
    "--keyword",
    "keywords",
    multiple=True,
    metavar="WORD",
    help="Also keep messages naming WORD (repeatable; implies --smart).",
)
@click.option(
    "--smart",
    is_flag=True,
    help="Keep messages naming a keyword (default: critical, escalation, failed, error, "
    "down, outage).",
)
@click.option(
    "--if-over",
    type=float,
    metavar="SHARE",
    help="Prune only when the tokens reach SHARE of the context limit (e.g. 0.8).",
)
@json_option()
@store_option()
@click.pass_context
def transcript_prune(
    ctx: click.Context,
    session_ref: str,
    name: str,
    keep_last: int,
    keywords: tuple[str, ...],
    smart: bool,
    if_over: float | None,
    as_json: bool,
) -> None:
    """Remove old messages as one commit; history keeps every one of them.

    System messages are always kept.

    \b
    Example:
        mdsessions transcript prune proj/s1 concept_expansion --keep-last 20
        mdsessions transcript prune proj/s1 --smart --keyword outage --if-over 0.8
    """
    from mdsessions import PruneResult

    log = _log(ctx, session_ref, name)
    strategy = "keywords" if smart or keywords else "recent"
    if if_over is not None and not log.should_prune(if_over):
        result = PruneResult(session=log.session.ref, name=log.name, commit=None, strategy=strategy)
    elif strategy == "keywords":
        result = (
            log.smart_prune(keep_keywords=list(keywords), keep_last=keep_last)
            if keywords
            else log.smart_prune(keep_last=keep_last)
        )
    else:
        result = log.prune(keep_last=keep_last)
    if as_json:
        echo_model(result)
        return
    if result.commit is None:
        click.echo(f"nothing to prune in {log.rel}")
        return
    click.echo(
        f"pruned {len(result.removed)} message(s) ({result.removed_tokens} tokens); "
        f"{result.kept} kept ({result.tokens} tokens); commit {result.commit[:12]}"
    )
    click.echo(
        f"they are in history: mdsessions transcript show {log.session.ref} "
        f"{log.name} --at {result.commit[:12]}^"
    )


@transcript_group.command("pruned")
@_SESSION
@_NAME
@json_option()
@store_option()
@click.pass_context
def transcript_pruned(ctx: click.Context, session_ref: str, name: str, as_json: bool) -> None:
    """Every message prunes removed, read back from history, with the prune's commit.

    \b
    Example:
        mdsessions transcript pruned proj/s1 concept_expansion
    """
    found = _log(ctx, session_ref, name).pruned_messages()
    if as_json:
        echo_model(found)
        return
    for message in found:
        click.echo(
            f"#{message.number} {message.role} {message.time} ({message.tokens} tokens, "
            f"pruned by {message.pruned_by[:12]})"
        )
        click.echo(message.content)
