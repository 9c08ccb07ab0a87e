# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""``backup``: git bundles of the whole store (``create``, ``list``, ``prune``, ``restore``)."""

from __future__ import annotations

import click

from mdsessions.cli.app import MdsessionsGroup, fail, json_option, open_store, store_option
from mdsessions.cli.output import Progress, echo_model, note, short_time, size, table

__all__ = ["backup_create", "backup_group", "backup_list", "backup_prune", "backup_restore"]


@click.group("backup", cls=MdsessionsGroup)
def backup_group() -> None:
    """Back up a store to git bundles, list, prune and restore them.

    \b
    Example:
        mdsessions backup create
        mdsessions backup restore .mdsessions/backups/x.bundle ../restored
    """


def _default_dir(ctx: click.Context, directory: str | None) -> str:
    if directory is not None:
        return directory
    from mdsessions import history

    return str(history.backup_dir(open_store(ctx)))


@backup_group.command("create")
@click.argument("directory", required=False, metavar="[DIR]")
@json_option()
@store_option()
@click.pass_context
def backup_create(ctx: click.Context, directory: str | None, as_json: bool) -> None:
    """Write a verified bundle of the whole store (git bundle create --all).

    DIR defaults to the store's .mdsessions/backups/ (ignored by git).
    Prints the bundle's path.

    \b
    Example:
        mdsessions backup create
        mdsessions backup create /mnt/backups --json
    """
    from mdsessions import history

    store = open_store(ctx)
    bars = Progress()
    try:
        backup = history.create_backup(store, directory, progress=bars)
    finally:
        bars.close()
    if as_json:
        echo_model(backup)
        return
    click.echo(str(backup.path))


@backup_group.command("list")
@click.argument("directory", required=False, metavar="[DIR]")
@json_option()
@store_option()
@click.pass_context
def backup_list(ctx: click.Context, directory: str | None, as_json: bool) -> None:
    """List the bundles in DIR (default: the store's backup folder), newest first.

    \b
    Example:
        mdsessions backup list /mnt/backups
        mdsessions backup list --json
    """
    from mdsessions import history

    found = history.list_backups(_default_dir(ctx, directory))
    if as_json:
        echo_model(found)
        return
    if not found:
        note("no backups")
        return
    rows = [[short_time(b.created), size(b.size), b.head or "-", str(b.path)] for b in found]
    click.echo(table(["created (UTC)", "size", "head", "file"], rows, right=[1]))


@backup_group.command("prune")
@click.argument("directory", required=False, metavar="[DIR]")
@click.option("--keep", type=click.IntRange(min=0), metavar="N", help="Keep the N newest bundles.")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Delete bundles older than DAYS days.",
)
@json_option()
@store_option()
@click.pass_context
def backup_prune(
    ctx: click.Context,
    directory: str | None,
    keep: int | None,
    older_than: float | None,
    as_json: bool,
) -> None:
    """Delete old bundles from DIR: all but the newest N, or those older than DAYS.

    \b
    Example:
        mdsessions backup prune /mnt/backups --keep 7
        mdsessions backup prune --older-than 30
    """
    from mdsessions import history

    if (keep is None) == (older_than is None):
        raise click.UsageError("give exactly one of --keep N or --older-than DAYS")
    removed = history.prune_backups(_default_dir(ctx, directory), keep=keep, older_than=older_than)
    if as_json:
        echo_model(removed)
        return
    for b in removed:
        click.echo(f"deleted {b.path}")
    if not removed:
        note("nothing to prune")


@backup_group.command("restore")
@click.argument("bundle", metavar="BUNDLE")
@click.argument("dest", metavar="DEST")
@json_option()
def backup_restore(bundle: str, dest: str, as_json: bool) -> None:
    """Restore a store from a bundle into a new folder DEST, then verify it.

    Every ref is restored as it was; main is checked out; git fsck and the
    documents are checked (exit status 1 if a problem is found).

    \b
    Example:
        mdsessions backup restore /mnt/backups/store-20241124T100200Z-1a2b3c4d5e6f.bundle \\
            restored-store
    """
    from mdsessions import history

    bars = Progress()
    try:
        result = history.restore_backup(bundle, dest, progress=bars)
    finally:
        bars.close()
    if as_json:
        echo_model(result)
    else:
        for problem in result.problems:
            click.echo(str(problem))
        click.echo(f"restored {result.path} at {result.head[:10]} ({len(result.refs)} ref(s))")
    if result.problems:
        fail(f"{len(result.problems)} problem(s) in the restored store")
