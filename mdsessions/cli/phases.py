# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""Writing a phase by hand: ``checkpoint``, ``output`` and ``feedback`` (one commit each)."""

from __future__ import annotations

from typing import Any

import click

from mdsessions.cli.app import author_option, open_store, store_option
from mdsessions.cli.args import read_input, text_or_file
from mdsessions.cli.output import review_hint, session_summary

__all__ = ["checkpoint_command", "feedback_command", "output_command"]


@click.command("checkpoint")
@click.argument("session_ref", metavar="SESSION")
@click.argument("phase", type=int)
@click.option(
    "--status",
    required=True,
    metavar="STATUS",
    help="pending, in_progress, completed, failed or skipped.",
)
@click.option("--started", metavar="TIME", help="Start time, UTC ISO-8601.")
@click.option("--completed", metavar="TIME", help="End time (default: now, when finished).")
@click.option("--duration", type=float, metavar="SEC", help="Seconds (default: end - start).")
@click.option(
    "--execution-mode",
    default="single",
    show_default=True,
    metavar="MODE",
    help="How the agents ran: single, sequential, parallel, …",
)
@click.option("--error", "errors", multiple=True, metavar="MSG", help="An error (repeatable).")
@click.option("--retry-count", type=int, metavar="N", help="Run number of the phase.")
@click.option(
    "--review/--no-review",
    default=None,
    help="Force or suppress the review gate (default: the workflow's).",
)
@store_option()
@click.pass_context
def checkpoint_command(
    ctx: click.Context,
    session_ref: str,
    phase: int,
    status: str,
    started: str | None,
    completed: str | None,
    duration: float | None,
    execution_mode: str,
    errors: tuple[str, ...],
    retry_count: int | None,
    review: bool | None,
) -> None:
    """Save a phase checkpoint and update the manifest, as one commit.

    The agents of the checkpoint are taken from the phase's saved outputs. A
    completed phase with a review gate waits for the reviewer.

    \b
    Example:
        mdsessions checkpoint project-123/session-456 1 --status in_progress
        mdsessions checkpoint project-123/session-456 1 --status completed --duration 42.5
    """
    store = open_store(ctx)
    session = store.find_session(session_ref)
    doc = session.save_checkpoint(
        phase,
        status=status,
        started=started,
        completed=completed,
        duration=duration,
        execution_mode=execution_mode,
        errors=errors,
        retry_count=retry_count,
        request_review=review,
    )
    manifest = session.manifest()
    click.echo(
        f"{session.ref}: phase {doc.phase} {doc.phase_name} {doc.status.value}; "
        + session_summary(session, manifest)
    )
    if manifest.status.value == "awaiting_review" and manifest.current_phase == phase:
        click.echo("\n".join(review_hint(store, session, phase)))


@click.command("output")
@click.argument("session_ref", metavar="SESSION")
@click.argument("phase", type=int)
@click.argument("agent")
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option(
    "--status",
    metavar="STATUS",
    help="completed (default), failed, … (the agent run's status).",
)
@click.option("--model", metavar="MODEL", help="Model id.")
@click.option("--input-tokens", type=int, default=0, metavar="N", help="Prompt tokens.")
@click.option("--output-tokens", type=int, default=0, metavar="N", help="Completion tokens.")
@click.option("--cost", type=float, default=0.0, metavar="USD", help="Cost in USD.")
@click.option("--duration", type=float, metavar="SEC", help="Seconds the agent ran.")
@click.option("--tool", "tools", multiple=True, metavar="TOOL", help="A tool used (repeatable).")
@click.option("--error", metavar="MSG", help="What went wrong (for a failed run).")
@store_option()
@click.pass_context
def output_command(
    ctx: click.Context,
    session_ref: str,
    phase: int,
    agent: str,
    source: str,
    status: str | None,
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    cost: float,
    duration: float | None,
    tools: tuple[str, ...],
    error: str | None,
) -> None:
    """Save an agent's output (markdown from FILE, or stdin) as one commit.

    The content is stored verbatim, byte for byte (UTF-8; line endings kept).

    \b
    Example:
        mdsessions output project-123/session-456 1 concept_expansion concept.md
        llm "Expand this idea" | mdsessions output session-456 1 concept_expansion - \\
            --model gpt-4o --input-tokens 812 --output-tokens 1540 --cost 0.0123
    """
    content = read_input(source)
    store = open_store(ctx)
    session = store.find_session(session_ref)
    options: dict[str, Any] = {}
    if status is not None:
        options["status"] = status
    doc = session.save_agent_output(
        phase,
        agent,
        content,
        duration=duration,
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
        tools_used=tools,
        error=error,
        **options,
    )
    rel = f"{session.phase_rel(phase)}/{doc.agent}.md"
    click.echo(f"{session.ref}: phase {doc.phase} {doc.agent} {doc.status.value} ({rel})")


@click.command("feedback")
@click.argument("session_ref", metavar="SESSION")
@click.argument("phase", type=int)
@click.option("--approve", is_flag=True, help="Approve: the next phase can start.")
@click.option("--reject", is_flag=True, help="Reject: the session ends.")
@click.option("--revise", is_flag=True, help="Ask for a revision: the phase runs again.")
@click.option("--comment", metavar="TEXT", help="Comments (stored verbatim).")
@click.option("--comment-file", metavar="FILE|-", help="Read the comments from a file.")
@click.option(
    "--change", "changes", multiple=True, metavar="TEXT", help="A requested change (repeatable)."
)
@click.option("--reviewer", metavar='"NAME <EMAIL>"', help="The reviewer recorded in the file.")
@click.option(
    "--keep-downstream",
    is_flag=True,
    help="With --revise: leave later phases as they are instead of marking them stale "
    "(they would otherwise run again and be reviewed again).",
)
@author_option("Commit author (default: the reviewer, else git's user).")
@store_option()
@click.pass_context
def feedback_command(
    ctx: click.Context,
    session_ref: str,
    phase: int,
    approve: bool,
    reject: bool,
    revise: bool,
    comment: str | None,
    comment_file: str | None,
    changes: tuple[str, ...],
    reviewer: str | None,
    keep_downstream: bool,
    author: str | None,
) -> None:
    """Record a reviewer's decision on a phase, as one commit.

    Give exactly one of --approve, --revise or --reject. (People may instead
    edit the phase's user_feedback.md and run `mdsessions record`.)

    \b
    Example:
        mdsessions feedback project-123/session-456 1 --approve --reviewer "Ann <ann@example.com>"
        mdsessions feedback session-456 1 --revise --comment "Focus on students" \\
            --change "audience: students" --change "shorter"
        mdsessions feedback session-456 3 --revise --keep-downstream   # 4… stay as they are
    """
    if approve + reject + revise != 1:
        raise click.UsageError("give exactly one of --approve, --revise or --reject")
    if keep_downstream and not revise:
        raise click.UsageError("--keep-downstream goes with --revise")
    comments = text_or_file(comment, comment_file, "comment")
    store = open_store(ctx)
    session = store.find_session(session_ref)
    decision: dict[str, Any] = (
        {"approved": True} if approve else {"action": "rejected" if reject else "revise"}
    )
    doc = session.save_feedback(
        phase,
        comments=comments,
        requested_changes=list(changes) if changes else None,
        reviewer=reviewer,
        author=author,
        keep_downstream=keep_downstream,
        **decision,
    )
    manifest = session.manifest()
    click.echo(
        f"{session.ref}: phase {doc.phase} {doc.phase_name} {doc.decision().value}; "
        + session_summary(session, manifest)
    )
