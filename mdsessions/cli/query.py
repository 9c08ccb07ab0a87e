# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""Many sessions at once: ``search`` and ``stats``."""

from __future__ import annotations

import csv
import datetime as _dt
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mdsessions.cli.app import json_option, open_store, store_option
from mdsessions.cli.output import echo_model, seconds, short_time, styled, table

if TYPE_CHECKING:
    from mdsessions import SessionFilter, StatsResult

__all__ = ["search_command", "stats_command"]

F = TypeVar("F", bound=Callable[..., Any])

GROUPS = ("model", "agent", "phase", "day", "status")
CSV_COLUMNS = (
    "key",
    "sessions",
    "runs",
    "input_tokens",
    "output_tokens",
    "tokens",
    "cost",
    "duration_sum",
    "duration_median",
    "duration_p95",
)
"""The columns of ``stats --csv``: one row per group (cost USD, durations seconds)."""


def _time(option: str, value: str | None) -> _dt.datetime | None:
    """``--since``/``--until``: a UTC day or ISO-8601 time (``Z`` or an offset; none: UTC)."""
    if value is None:
        return None
    try:
        when = _dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a UTC day (2024-11-24) or ISO-8601 time (2024-11-24T10:00:00Z)",
            param_hint=f"'{option}'",
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=_dt.timezone.utc)


def _metadata(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="'--meta'")
        out.append((key, value))
    return tuple(out)


def filter_options(func: F) -> F:
    """The metadata filters ``search`` and ``stats`` share (see ``SessionFilter``)."""
    options = [
        click.option("--project", metavar="PROJECT", help="Only this project's sessions."),
        click.option(
            "--status",
            "statuses",
            multiple=True,
            metavar="STATUS",
            help="Only sessions with this status, e.g. awaiting_review (repeat: any of them).",
        ),
        click.option(
            "--tag",
            "tags",
            multiple=True,
            metavar="TAG",
            help="Only sessions with this tag (repeat: with every one).",
        ),  # fmt: skip
        click.option("--mode", metavar="MODE", help="Only sessions of this execution mode."),
        click.option("--workflow", metavar="NAME", help="Only sessions of this workflow."),
        click.option("--model", metavar="MODEL", help="Only sessions where an agent ran MODEL."),
        click.option("--agent", metavar="AGENT", help="Only sessions where AGENT ran."),
        click.option("--phase", metavar="N|NAME", help="Only sessions where this phase started."),
        click.option("--since", metavar="TIME", help="Only sessions created at or after TIME."),
        click.option("--until", metavar="TIME", help="Only sessions created before TIME."),
        click.option(
            "--meta",
            "metas",
            multiple=True,
            metavar="KEY=VALUE",
            help="Only sessions whose metadata has KEY equal to VALUE (repeatable).",
        ),  # fmt: skip
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _filters(kw: dict[str, Any]) -> SessionFilter:
    from mdsessions import SessionFilter, SessionStatus

    statuses = kw.pop("statuses")
    allowed = [s.value for s in SessionStatus]
    for status in statuses:
        if status not in allowed:
            raise click.BadParameter(
                f"{status!r} is not one of {', '.join(allowed)}", param_hint="'--status'"
            )
    return SessionFilter(
        project=kw.pop("project"),
        status=statuses,
        tags=kw.pop("tags"),
        mode=kw.pop("mode"),
        workflow=kw.pop("workflow"),
        model=kw.pop("model"),
        agent=kw.pop("agent"),
        phase=kw.pop("phase"),
        since=_time("--since", kw.pop("since")),
        until=_time("--until", kw.pop("until")),
        metadata=_metadata(kw.pop("metas")),
    )


@click.command("search")
@click.argument("text", required=False, metavar="[TEXT]")
@filter_options
@click.option("--at", metavar="COMMIT", help="Search the documents at COMMIT (default: as now).")
@click.option("-E", "--regex", is_flag=True, help="TEXT is an extended regular expression.")
@click.option("-i", "--ignore-case", is_flag=True, help="Match regardless of case.")
@json_option()
@store_option()
@click.pass_context
def search_command(
    ctx: click.Context,
    /,
    text: str | None,
    at: str | None,
    regex: bool,
    ignore_case: bool,
    as_json: bool,
    **kw: Any,
) -> None:
    """Find sessions by their metadata and, with TEXT, the lines of their documents.

    With TEXT, prints each matching line as git grep -n does: PATH:LINE:TEXT
    (COMMIT:PATH:LINE:TEXT with --at), only in sessions passing the filters.
    Without TEXT, lists the sessions passing the filters.

    \b
    Example:
        mdsessions search --tag pilot --status completed
        mdsessions search "pricing model" --project demo --phase 2
        mdsessions search "pricing" --at HEAD~5 --json
    """
    from mdsessions import search_sessions

    filters = _filters(kw)
    store = open_store(ctx)
    result = search_sessions(
        store, text, filters=filters, at=at, regex=regex, ignore_case=ignore_case, hits=as_json
    )
    if as_json:
        echo_model(result)
        return
    if text is not None:
        prefix = f"{at}:" if at is not None else ""
        for m in result.matches:
            click.echo(f"{prefix}{m.path}:{m.line}:{m.text}")
        if not result.matches:
            click.echo("no matches", err=True)
        return
    if not result.sessions:
        click.echo("no sessions", err=True)
        return
    rows = [
        [h.project, h.session, h.workflow, h.mode, styled(h.status), short_time(h.created),
         ",".join(h.tags)]
        for h in result.sessions
    ]  # fmt: skip
    headers = ["project", "session", "workflow", "mode", "status", "created (UTC)", "tags"]
    click.echo(table(headers, rows))


def _usd(value: float) -> str:
    return f"{value:.4f}"


def _echo_stats(result: StatsResult) -> None:
    click.echo(f"{result.scope}: {result.sessions} session(s)")
    status_rows = [[styled(k), str(n)] for k, n in result.by_status.items()]
    click.echo(table(["status", "sessions"], status_rows, right=[1]))
    click.echo("")
    rows = [
        [g.key, str(g.sessions), str(g.runs), str(g.input_tokens), str(g.output_tokens),
         _usd(g.cost), seconds(g.duration_sum), seconds(g.duration_median),
         seconds(g.duration_p95)]
        for g in result.groups
    ]  # fmt: skip
    headers = [result.by or "group", "sessions", "runs", "tokens in", "tokens out",
               "cost USD", "duration", "median", "p95"]  # fmt: skip
    click.echo(table(headers, rows, right=range(1, 9)))
    r = result.review
    click.echo("")
    click.echo(
        f"review: {r.approvals} approved, {r.revisions} revise, {r.rejections} rejected; "
        f"waited {seconds(r.waited_sum)} (median {seconds(r.waited_median)}, "
        f"p95 {seconds(r.waited_p95)}); {r.pending} pending, waiting {seconds(r.waiting_sum)}"
    )
    if result.activity:
        click.echo("")
        activity = [[a.day, a.kind, str(a.commits)] for a in result.activity]
        click.echo(table(["day (UTC)", "kind", "commits"], activity, right=[2]))


@click.command("stats")
@click.argument("session_ref", required=False, metavar="[SESSION]")
@click.option("--all", "everything", is_flag=True, help="Every session (the default).")
@click.option("--by", type=click.Choice(GROUPS), help="Group the figures by this.")
@filter_options
@click.option("--csv", "as_csv", is_flag=True, help="Print the groups as CSV.")
@json_option()
@store_option()
@click.pass_context
def stats_command(
    ctx: click.Context,
    /,
    session_ref: str | None,
    everything: bool,
    by: str | None,
    as_csv: bool,
    as_json: bool,
    **kw: Any,
) -> None:
    """Figures of a session, a project or the whole store.

    Sessions by status; tokens in/out, cost (USD) and durations (sum, median,
    p95, seconds) per group; review figures; commits per kind per UTC day.
    --csv prints one row per group: key, sessions, runs, input_tokens,
    output_tokens, tokens, cost, duration_sum, duration_median, duration_p95.

    \b
    Example:
        mdsessions stats --all --by model
        mdsessions stats --project demo --by day --csv
        mdsessions stats demo/latest --json
    """
    from mdsessions import session_stats

    if everything and (session_ref is not None or kw["project"] is not None):
        raise click.UsageError("--all counts every session: give no SESSION or --project")
    filters = _filters(kw)
    store = open_store(ctx)
    result = session_stats(store, session=session_ref, filters=filters, by=by)  # type: ignore[arg-type]
    if as_json:
        echo_model(result)
    elif as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for g in result.groups:
            data = g.model_dump()
            writer.writerow(["" if data[c] is None else data[c] for c in CSV_COLUMNS])
        click.echo(out.getvalue(), nl=False)
    else:
        _echo_stats(result)
