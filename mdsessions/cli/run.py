# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""``run``: a session's phases with the workflow's agents, up to a review gate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mdsessions.cli.app import (
    idea_options,
    json_option,
    open_store,
    session_options,
    store_option,
    workflow_option,
)
from mdsessions.cli.args import text_or_file
from mdsessions.cli.logs import color_enabled, is_quiet
from mdsessions.cli.output import echo_model, review_hint

if TYPE_CHECKING:
    from mdsessions import Session, Store
    from mdsessions.cli.progress import RunProgress

__all__ = ["run_command"]


def _refuse_new_options(
    session_ref: str | None,
    idea: str | None,
    idea_file: str | None,
    mode: str | None,
    user_id: str | None,
    tags: tuple[str, ...],
) -> None:
    """A run that continues a session takes none of ``--new``'s options, and needs a SESSION."""
    given = [
        name
        for name, value in (
            ("--idea", idea),
            ("--idea-file", idea_file),
            ("--mode", mode),
            ("--user-id", user_id),
            ("--tag", tags or None),
        )
        if value is not None
    ]
    if given:
        raise click.UsageError(f"{', '.join(given)}: only with --new PROJECT")
    if session_ref is None:
        raise click.UsageError("give a SESSION to continue, or --new PROJECT")


@click.command("run")
@click.argument("session_ref", required=False, metavar="[SESSION]")
@click.option(
    "--new",
    "new_project",
    metavar="PROJECT",
    help="Start a new session of PROJECT (SESSION is then its optional id).",
)
@workflow_option()
@click.option("--max-phases", type=int, metavar="N", help="Stop after running N phases.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="At a review gate, wait up to SECONDS for the reviewer's saved decision and go on.",
)
@click.option(
    "--wait-lock",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="When another runner is running the session, wait up to SECONDS for it "
    "(default: exit at once, naming it).",
)
@click.option(
    "--max-cost-usd",
    type=click.FloatRange(min=0),
    metavar="USD",
    help="Stop before a phase that would take the session's cost over USD "
    "(replaces the workflow's [budget] max_cost_usd).",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=0),
    metavar="N",
    help="Stop before a phase that would take the session's tokens over N.",
)
@click.option(
    "--transcripts",
    is_flag=True,
    help="Also record each agent call (prompt, reply) in transcripts/AGENT.md.",
)
@idea_options()
@session_options()
@json_option()
@store_option()
@click.pass_context
def run_command(
    ctx: click.Context,
    session_ref: str | None,
    new_project: str | None,
    workflow: str | None,
    max_phases: int | None,
    wait: float | None,
    wait_lock: float,
    max_cost_usd: float | None,
    max_tokens: int | None,
    transcripts: bool,
    idea: str | None,
    idea_file: str | None,
    mode: str | None,
    user_id: str | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run a session's phases with the workflow's agents, up to a review gate.

    A run first records a reviewer's edit of a pending user_feedback.md, then
    runs phases until one waits for review, the session ends, or an agent fails
    (exit status 1; run again to retry). Stopping at a review gate is success.

    Progress goes to stderr: a live row per phase on a terminal (agents done,
    the agent running, elapsed time, tokens, cost), else a line as each phase
    and agent starts and ends; none with -q or --json.

    \b
    Example:
        mdsessions run --new demo --idea-file idea.md --workflow workflow.toml
        mdsessions run demo/session-20241124-100200-ab12 --workflow workflow.toml
        mdsessions run demo/s1 --wait 3600     # wait for each review, then go on
        mdsessions run demo/s1 --wait-lock 600 # queue behind another runner (cron)
        mdsessions run demo/s1 --max-cost-usd 0.50   # stop before going over $0.50
    """
    if new_project is None:
        _refuse_new_options(session_ref, idea, idea_file, mode, user_id, tags)
    idea_text = text_or_file(idea, idea_file, "idea")
    if new_project is not None and idea_text is None:
        raise click.UsageError("--new needs --idea TEXT or --idea-file FILE")
    from mdsessions import Budget, Runner
    from mdsessions.cli.progress import RunProgress

    quiet = as_json or is_quiet(ctx)
    progress = None if quiet else RunProgress.for_terminal(color=color_enabled(ctx))
    if progress is not None:
        ctx.call_on_close(progress.close)  # also when the run fails or is interrupted
    store = open_store(ctx)
    runner = Runner(
        store,
        workflow,
        budget=Budget(max_cost_usd=max_cost_usd, max_tokens=max_tokens),
        transcripts=transcripts,
        on_event=progress,
    )
    waiter = _Waiter(store, wait, quiet=quiet, progress=progress)
    if new_project is None:
        assert session_ref is not None
        waiter.session = store.find_session(session_ref)
        result = runner.run(
            waiter.session,
            max_phases=max_phases,
            wait=wait,
            on_wait=waiter,
            wait_lock=wait_lock,
        )
    else:
        assert idea_text is not None
        result = runner.start(
            new_project,
            session_ref,
            idea=idea_text,
            mode=mode,
            user_id=user_id,
            tags=tags,
            max_phases=max_phases,
            wait=wait,
            on_wait=waiter,
            on_created=waiter.created,
            wait_lock=wait_lock,
        )
    if as_json:
        echo_model(result)
        return
    click.echo(result.message)
    if result.waiting_for_review is not None:
        click.echo("\n".join(review_hint(store, result.session, result.waiting_for_review)))


class _Waiter:
    """Tells the reviewer, while a run waits at a review gate, which file to edit."""

    def __init__(
        self, store: Store, wait: float | None, *, quiet: bool, progress: RunProgress | None
    ) -> None:
        self.store = store
        self.wait = wait
        self.quiet = quiet
        self.progress = progress
        self.session: Session | None = None

    def created(self, session: Session) -> None:
        self.session = session

    def __call__(self, phase: int) -> None:
        if self.quiet or self.session is None or self.wait is None:
            return
        if self.progress is not None:
            self.progress.close()  # the hint goes below the rows drawn
        click.echo("\n".join(review_hint(self.store, self.session, phase)))
        click.echo(f"waiting up to {self.wait:g} s for the review of phase {phase}…", err=True)
