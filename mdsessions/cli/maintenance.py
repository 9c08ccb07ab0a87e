# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""The store's health: ``verify`` and ``maintenance``."""

from __future__ import annotations

import click

from mdsessions.cli.app import fail, json_option, open_store, store_option
from mdsessions.cli.output import echo_model, size

__all__ = ["maintenance_command", "verify_command"]


@click.command("verify")
@json_option()
@store_option()
@click.pass_context
def verify_command(ctx: click.Context, as_json: bool) -> None:
    """Check the store: git fsck, documents, manifests, commit trailers vs paths.

    Prints one line per problem (file or commit, and the reason) and exits
    with status 1 if there is any.

    \b
    Example:
        mdsessions verify
        mdsessions verify --json
    """
    from mdsessions import history

    report = history.verify(open_store(ctx))
    if as_json:
        echo_model(report)
    else:
        for problem in report.problems:
            click.echo(str(problem))
    if report.problems:
        fail(f"{len(report.problems)} problem(s)")
    if not as_json:
        click.echo(f"ok: {report.commits} commit(s), {report.sessions} session(s) verified")


@click.command("maintenance")
@json_option()
@store_option()
@click.pass_context
def maintenance_command(ctx: click.Context, as_json: bool) -> None:
    """Pack refs and loose objects, write the commit-graph (safe while writers run).

    Makes history queries (versions, log) faster on long histories.

    \b
    Example:
        mdsessions maintenance
    """
    from mdsessions import history

    report = history.maintenance(open_store(ctx))
    if as_json:
        echo_model(report)
        return
    steps = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in report.steps)
    click.echo(
        f"{steps}; loose objects {report.loose_before} -> {report.loose_after}, "
        f"{report.packs} pack(s), {size(report.size_after)}"
    )
