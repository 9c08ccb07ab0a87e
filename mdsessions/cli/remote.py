# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""Many machines: ``remote``, ``clone``, ``push``, ``pull``, ``sync`` and ``set-aside``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mdsessions.cli.app import (
    MdsessionsGroup,
    author_option,
    json_option,
    keep_options,
    open_store,
    store_option,
)
from mdsessions.cli.output import arrow, echo_model, note, short_time, styled, table

if TYPE_CHECKING:
    from mdsessions.history import PullResult, PushResult, SetAside

__all__ = [
    "clone_command",
    "pull_command",
    "push_command",
    "remote_add",
    "remote_group",
    "remote_list",
    "remote_remove",
    "set_aside_command",
    "sync_command",
]


@click.group("remote", cls=MdsessionsGroup)
def remote_group() -> None:
    """Manage the git remotes a store syncs with.

    \b
    Example:
        mdsessions remote add origin git@example.com:team/store.git
        mdsessions remote list
    """


@remote_group.command("add")
@click.argument("name")
@click.argument("url")
@store_option()
@click.pass_context
def remote_add(ctx: click.Context, name: str, url: str) -> None:
    """Add a remote NAME at URL (a bare repository, a git server, a path).

    \b
    Example:
        mdsessions remote add origin /srv/git/store.git
    """
    from mdsessions import history

    history.add_remote(open_store(ctx), name, url)
    click.echo(f"{name} {url}")


@remote_group.command("list")
@json_option()
@store_option()
@click.pass_context
def remote_list(ctx: click.Context, as_json: bool) -> None:
    """List the remotes and their URLs.

    \b
    Example:
        mdsessions remote list --json
    """
    from mdsessions import history

    found = history.list_remotes(open_store(ctx))
    if as_json:
        echo_model(found)
        return
    for remote in found:
        click.echo(f"{remote.name}\t{remote.url}")


@remote_group.command("remove")
@click.argument("name")
@store_option()
@click.pass_context
def remote_remove(ctx: click.Context, name: str) -> None:
    """Remove the remote NAME.

    \b
    Example:
        mdsessions remote remove origin
    """
    from mdsessions import history

    history.remove_remote(open_store(ctx), name)


def _echo_aside(aside: SetAside, indent: str = "    ") -> None:
    """Where a set-aside version is, and the command that brings it back."""
    whose = {"mine": "this store's", "theirs": "the remote's"}.get(aside.side or "", "a")
    state = f", {aside.status}" if aside.status else ""
    click.echo(f"{indent}set aside: {aside.ref} ({whose} version{state})")
    if aside.session is not None:
        click.echo(
            f"{indent}get it back: {aside.get_back}  "
            f"(or make it current: mdsessions restore {aside.session} {aside.commit[:12]})"
        )
    else:
        click.echo(f"{indent}see it: {aside.get_back}")


def _echo_pull(result: PullResult) -> None:
    """One line for the pull, then per session and per store file what changed."""
    remote = result.remote
    head = (result.commit or "")[:10]
    if result.action == "merged":
        click.echo(f"merged {remote}/{result.branch} in {head}")
    elif result.action == "fast-forward":
        click.echo(f"fast-forward to {remote}/{result.branch} ({head})")
    elif result.action == "remote-empty":
        click.echo(f"{remote} has no branch {result.branch} yet")
    else:
        click.echo(f"up to date with {remote}/{result.branch}")
    for c in result.changes:
        status = arrow(c.status_before, c.status_after)
        phase = arrow(c.phase_before, c.phase_after)
        state = f"{status}, phase {phase}"
        text = {
            "added": f"added from {remote} ({c.status_after or '-'}, phase "
            f"{'-' if c.phase_after is None else c.phase_after})",
            "updated": f"updated from {remote}: {state}",
            "deleted": f"deleted by {remote}",
            "replaced": f"REPLACED by {remote}'s version, which does not include this "
            f"store's: {state}",
            "kept-mine": f"changed on both sides: kept mine ({state}); {remote}'s version "
            "set aside",
            "kept-theirs": f"changed on both sides: kept {remote}'s ({state}); mine set aside",
            "forked": f"changed on both sides: kept mine; {remote}'s version added as "
            f"session {c.fork}",
        }.get(c.change, f"{c.change}: {state}")
        click.echo(f"  {c.session}: {text}")
        if c.change == "replaced" and c.fork:
            click.echo(f"    this store's version also lives on as session {c.fork}")
        if c.set_aside is not None:
            _echo_aside(c.set_aside)
    for f in result.files:
        keys = f" ({', '.join(f.keys)})" if f.keys else ""
        text = {
            "merged": f"merged key by key: {', '.join(f.keys)} from {remote}",
            "replaced": f"REPLACED by {remote}'s version, which does not include this store's",
            "kept-mine": f"changed on both sides{keys}: kept mine; {remote}'s set aside",
            "kept-theirs": f"changed on both sides{keys}: kept {remote}'s; mine set aside",
        }.get(f.change, f"{f.change} from {remote}")
        click.echo(f"  {f.path}: {text}")
        if f.set_aside is not None:
            _echo_aside(f.set_aside)
    for line in result.warnings:
        click.echo(f"Warning: {line}", err=True)


def _echo_push(result: PushResult) -> None:
    """What was pushed where, and (on stderr) what the remote refused."""
    click.echo(f"{result.action}: {result.remote}/{result.branch} at {result.commit[:10]}")
    for ref in result.refs:
        click.echo(f"  pushed {ref}")
    for ref in result.refs_refused:
        click.echo(f"Warning: {result.remote} refused {ref}; it stays here", err=True)


@click.command("push")
@click.argument("remote", required=False, default="origin", metavar="[REMOTE]")
@json_option()
@store_option()
@click.pass_context
def push_command(ctx: click.Context, remote: str, as_json: bool) -> None:
    """Push the store's branch to REMOTE (default origin); never forced.

    Fails (exit 1) when the remote has commits this store does not have:
    pull or sync first.

    \b
    Example:
        mdsessions push
        mdsessions push backup-server --json
    """
    from mdsessions import history

    result = history.push(open_store(ctx), remote)
    if as_json:
        echo_model(result)
        return
    _echo_push(result)


@click.command("pull")
@click.argument("remote", required=False, default="origin", metavar="[REMOTE]")
@keep_options()
@author_option("Author of a merge commit (default: git's user, else the login).")
@json_option()
@store_option()
@click.pass_context
def pull_command(
    ctx: click.Context,
    remote: str,
    keep: str | None,
    fork_theirs: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Fetch REMOTE (default origin) and merge it, session by session.

    Sessions changed on one side only merge cleanly; mdsessions.toml merges
    key by key. A session changed on both sides (or a key set to different
    values) stops the pull (exit 1, nothing changed) and names it; pull
    again with --keep mine, --keep theirs or --fork-theirs NEW_ID. The
    version not kept is set aside under refs/mdsessions/set-aside/ and
    listed with the command that brings it back. A session whose remote
    version does not include this store's (the other side kept theirs over
    it) is a warning on stderr; this store's version is set aside first.

    \b
    Example:
        mdsessions pull
        mdsessions pull origin --fork-theirs session-456-theirs
    """
    from mdsessions import history

    if keep is not None and fork_theirs is not None:
        raise click.UsageError("give --keep or --fork-theirs, not both")
    result = history.pull(
        open_store(ctx), remote, keep=keep, fork_theirs=fork_theirs, author=author
    )
    if as_json:
        echo_model(result)
        for line in result.warnings:  # loud on stderr in JSON mode too
            click.echo(f"Warning: {line}", err=True)
        return
    _echo_pull(result)


@click.command("sync")
@click.argument("remote", required=False, default="origin", metavar="[REMOTE]")
@keep_options()
@author_option("Author of a merge commit (default: git's user, else the login).")
@json_option()
@store_option()
@click.pass_context
def sync_command(
    ctx: click.Context,
    remote: str,
    keep: str | None,
    fork_theirs: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    """Pull from REMOTE (default origin), then push to it (the set-aside refs too).

    Prints, per session, what the pull changed and what it set aside, with the
    command that brings it back; a session whose new version does not include
    this store's is a warning on stderr (this store's version is kept under
    refs/mdsessions/set-aside/ first). When the remote moves before the push,
    pulls again (up to 3 rounds). Conflicts as for pull.

    \b
    Example:
        mdsessions sync
        mdsessions sync origin --keep mine --json
    """
    from mdsessions import history

    if keep is not None and fork_theirs is not None:
        raise click.UsageError("give --keep or --fork-theirs, not both")
    pulled, pushed = history.sync(
        open_store(ctx),
        remote,
        keep=keep,
        fork_theirs=fork_theirs,
        author=author,
        on_pull=None if as_json else _echo_pull,
    )
    if as_json:
        from mdsessions.cli.schemas import SyncResult

        echo_model(SyncResult(pull=pulled, push=pushed))
        for line in pulled.warnings:  # loud on stderr in JSON mode too
            click.echo(f"Warning: {line}", err=True)
        return
    _echo_push(pushed)


@click.command("clone")
@click.argument("url", metavar="URL")
@click.argument("directory", required=False, metavar="[DIR]")
@json_option()
@click.pass_context
def clone_command(ctx: click.Context, url: str, directory: str | None, as_json: bool) -> None:
    """Clone a store from URL into DIR, ready to run and sync (a second machine).

    URL is anything git takes: a path, file://, git://, ssh (host:path) or
    https://. The store's branch is checked out whatever the remote's HEAD
    names (a bare repository from plain 'git init --bare' names master): the
    branch mdsessions.toml names (default main), else the one that holds
    mdsessions.toml. It tracks origin; the versions other machines set aside
    are fetched too. DIR defaults to the URL's last part without .git.

    \b
    Example:
        mdsessions clone git@server:team/store.git
        mdsessions clone /srv/git/store.git my-store --json
    """
    from mdsessions import history

    store = history.clone(url, directory)
    ctx.call_on_close(store.close)
    sessions = store.list_sessions()
    aside = history.list_set_aside(store)
    latest = store.log(max_count=1)
    head = latest[0].sha if latest else None
    if as_json:
        from mdsessions.cli.schemas import CloneResult

        echo_model(
            CloneResult(
                path=str(store.root),
                url=url,
                remote="origin",
                branch=store.branch,
                upstream=f"origin/{store.branch}",
                commit=head,
                session_count=len(sessions),
                set_aside=aside,
            )
        )
        return
    click.echo(
        f"cloned {url} into {store.root}: branch {store.branch} tracking "
        f"origin/{store.branch} at {(head or '')[:10]}, {len(sessions)} session(s)"
        + (f", {len(aside)} version(s) set aside (mdsessions set-aside)" if aside else "")
    )


@click.command("set-aside")
@click.argument("session_ref", required=False, metavar="[SESSION]")
@json_option()
@store_option()
@click.pass_context
def set_aside_command(ctx: click.Context, session_ref: str | None, as_json: bool) -> None:
    """List the versions sync set aside (refs/mdsessions/set-aside/), newest first.

    A pull or sync sets a version aside when a conflict is resolved with
    --keep, or when the remote's version of a session does not include this
    store's. Each is listed with the command that brings it back: fork it
    into a new session, or restore it as the session's current state.

    \b
    Example:
        mdsessions set-aside
        mdsessions set-aside project-123/session-456 --json
    """
    from mdsessions import history

    store = open_store(ctx)
    key = None
    if session_ref is not None:
        key = session_ref if session_ref == "_store" else store.find_session(session_ref).ref
    found = history.list_set_aside(store, key)
    if as_json:
        echo_model(found)
        return
    if not found:
        note("nothing set aside")
        return
    rows = [
        [
            a.session or "(store files)",
            click.style(a.commit[:12], fg="yellow"),
            short_time(a.time) if a.time else "-",
            styled(a.status) if a.status else "-",
            a.get_back,
        ]
        for a in found
    ]
    click.echo(table(["session", "commit", "time (UTC)", "status", "get it back"], rows))
