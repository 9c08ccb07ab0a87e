# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""``scan``: secrets already committed (file, commit, kind — never the secret)."""

from __future__ import annotations

import click

from mdsessions.cli.app import fail, json_option, open_store, store_option
from mdsessions.cli.output import echo_model

__all__ = ["scan_command"]


@click.command("scan")
@click.option(
    "--history",
    "all_history",
    is_flag=True,
    help="Scan every version reachable from any ref, not only the last commit.",
)
@json_option()
@store_option()
@click.pass_context
def scan_command(ctx: click.Context, all_history: bool, as_json: bool) -> None:
    """Report secrets already committed: file, commit, kind and line, never the secret.

    New text is redacted before it is committed ([redaction] in mdsessions.toml); this
    finds what reached a commit anyway (before redaction, with it turned off, or by a
    person's own git commit). Prints one line per secret, then how to purge them, and
    exits with status 1 if there is any.

    \b
    Example:
        mdsessions scan
        mdsessions scan --history --json
    """
    from mdsessions import history

    report = history.scan(open_store(ctx), history=all_history)
    if as_json:
        echo_model(report)
    else:
        for found in report.findings:
            click.echo(f"{found.path}:{found.line}: {found.kind} (commit {found.commit[:12]})")
        if report.purge:
            click.echo("")
            click.echo(report.purge)
    if report.findings:
        fail(f"{len(report.findings)} secret(s) committed; see above for how to purge them")
    if not as_json:
        where = "history" if report.history else "the last commit"
        click.echo(f"ok: no secret in {report.files} file(s) of {where}")
