"""The session state machine: how a manifest changes when a phase is saved or reviewed.

One set of rules, used by every path that changes a session (the store's writes, the
recording of a reviewer's edit, a restore, ``verify``'s check):

* the **phase table** (``SessionManifest.phases``) is the state: each row holds its phase's
  status (from the phase's latest checkpoint), its review state, its retry count and its
  metrics;
* an event changes only the row it is about (and, for a revision, the rows downstream):
  :func:`start_phase` (an agent output arrives), :func:`advance` (a checkpoint is saved
  with a status), :func:`apply_feedback` (a reviewer approves, asks for changes or rejects);
* the session's status, current phase and totals always follow from the table
  (:func:`derive_status`), so a manifest built step by step and one recomputed from its
  table agree by construction.

The functions change the manifest they are given, in place, and nothing else: no disk, no
git, no clock (a time is an argument). They raise ``KeyError`` for a phase that is not in
the table; the store turns that into :class:`~mdsessions.errors.PhaseNotFoundError` first.

Status rules (DESIGN.md "Sharing the store": a decision upstream invalidates what was built
on it downstream):

============================  ================================================================
phase table                   session
============================  ================================================================
a phase review ``rejected``   ``rejected``, no current phase
a phase review ``pending``    ``awaiting_review`` at the first such phase
nothing left to run           ``completed``, no current phase
otherwise                     current = :func:`next_to_run`; ``failed`` if that phase failed,
                              ``created`` while no phase ran, else ``in_progress``
============================  ================================================================

Two marks a person sets override that status unless the table says ``completed`` or
``rejected`` (issue 14, seeds 001/002): ``ended`` (:func:`end`) makes the session
``cancelled`` with no current phase; ``paused`` (:func:`pause`) makes it ``paused`` and
keeps its current phase, so :func:`resume` picks up where it stopped.

Example:
    >>> import datetime as dt
    >>> from mdsessions.models.schema import PhaseEntry, SessionManifest
    >>> now = dt.datetime(2024, 11, 24, tzinfo=dt.timezone.utc)
    >>> m = SessionManifest(project_id="p", session_id="s", created=now, updated=now,
    ...     phases=[PhaseEntry(number=1, slug="concept", name="Concept")])
    >>> start_phase(m, 1, has_checkpoint=False, now=now)
    >>> m.status.value, m.current_phase
    ('in_progress', 1)
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable

from mdsessions.models.schema import (
    AgentUsage,
    Checkpoint,
    FeedbackAction,
    PhaseEntry,
    PhaseStatus,
    ReviewState,
    SessionManifest,
    SessionStatus,
    Totals,
)

__all__ = [
    "CLOSED",
    "DONE",
    "advance",
    "apply_feedback",
    "end",
    "awaiting_review",
    "derive_status",
    "is_closed",
    "mark_downstream_stale",
    "next_retry_count",
    "next_to_run",
    "pause",
    "phase_after",
    "resume",
    "start_phase",
    "take_metrics",
    "totals",
]

DONE = frozenset({PhaseStatus.COMPLETED, PhaseStatus.SKIPPED})
"""Phase statuses that need no further run."""

CLOSED = frozenset({SessionStatus.COMPLETED, SessionStatus.REJECTED, SessionStatus.CANCELLED})
"""Session statuses that take no more writes (a new session continues the work)."""


def totals(phases: Iterable[PhaseEntry]) -> Totals:
    """The session totals: the sum over the phase rows.

    Args:
        phases: The manifest's phase rows.

    Returns:
        Tokens (input, output and their total), cost in USD and duration in seconds, each
        the sum of the rows (a row without a duration counts 0 s).
    """
    rows = list(phases)
    return Totals(
        tokens=sum(p.tokens for p in rows),
        input_tokens=sum(p.input_tokens for p in rows),
        output_tokens=sum(p.output_tokens for p in rows),
        cost=sum(p.cost for p in rows),
        duration=sum(p.duration or 0.0 for p in rows),
    )


def is_closed(manifest: SessionManifest) -> bool:
    """Whether the session ended (``completed``, ``rejected``, ``cancelled``): no more writes."""
    return manifest.status in CLOSED


def phase_after(manifest: SessionManifest, number: int) -> PhaseEntry | None:
    """The row of the phase that follows phase ``number`` in the session's mode, if any."""
    return next((p for p in manifest.phases if p.number > number), None)


def awaiting_review(manifest: SessionManifest) -> PhaseEntry | None:
    """The first phase whose review is ``pending`` (the session waits for its reviewer)."""
    return next((p for p in manifest.phases if p.review is ReviewState.PENDING), None)


def next_to_run(manifest: SessionManifest) -> PhaseEntry | None:
    """The first phase that must (re)run: asked to revise, or not completed or skipped.

    Returns:
        Its row, or ``None`` when every phase is done.
    """
    return next(
        (p for p in manifest.phases if p.review is ReviewState.REVISE or p.status not in DONE),
        None,
    )


def next_retry_count(row: PhaseEntry) -> int:
    """The retry count of a phase's next run.

    A run asked for by a revision, or one after a failed or stale run, is a new attempt
    (retry count + 1); a phase that never ran, or whose run was interrupted, keeps its count.

    Args:
        row: The phase's manifest row.

    Returns:
        The retry count to save with the run's checkpoint and outputs.
    """
    again = row.review is ReviewState.REVISE or row.status in (
        PhaseStatus.FAILED,
        PhaseStatus.STALE,
    )
    return row.retry_count + (1 if again else 0)


def derive_status(manifest: SessionManifest) -> None:
    """Set the session status, current phase and totals from the phase table (in place).

    The rules of the module docstring's table; every event function ends with this call, so
    ``derive_status`` of any manifest they produced changes nothing.

    Args:
        manifest: The manifest to update.
    """
    rows = manifest.phases
    manifest.totals = totals(rows)
    rejected = next((p for p in rows if p.review is ReviewState.REJECTED), None)
    waiting = awaiting_review(manifest)
    todo = next_to_run(manifest)
    if rejected is not None:
        manifest.status, manifest.current_phase = SessionStatus.REJECTED, None
    elif waiting is not None:
        manifest.status, manifest.current_phase = SessionStatus.AWAITING_REVIEW, waiting.number
    elif todo is None:
        manifest.status, manifest.current_phase = SessionStatus.COMPLETED, None
    else:
        manifest.current_phase = todo.number
        untouched = all(
            p.status is PhaseStatus.PENDING
            and p.review in (ReviewState.REQUIRED, ReviewState.NOT_REQUIRED)
            for p in rows
        )
        if todo.status is PhaseStatus.FAILED:
            manifest.status = SessionStatus.FAILED
        elif untouched:
            manifest.status = SessionStatus.CREATED
        else:
            manifest.status = SessionStatus.IN_PROGRESS
    if manifest.status in (SessionStatus.COMPLETED, SessionStatus.REJECTED):
        return
    if manifest.ended is not None:
        manifest.status, manifest.current_phase = SessionStatus.CANCELLED, None
    elif manifest.paused is not None:
        manifest.status = SessionStatus.PAUSED


def start_phase(
    manifest: SessionManifest, phase: int, *, has_checkpoint: bool, now: _dt.datetime
) -> None:
    """An agent output of ``phase`` was saved: the phase starts if it had not (in place).

    Before a phase's first checkpoint its outputs mark it ``in_progress`` (started ``now``
    unless it has a start); afterwards its checkpoint alone says its status (the manifest
    row and ``checkpoint.md`` must agree), so an output changes nothing.

    Args:
        manifest: The manifest to update.
        phase: The phase number.
        has_checkpoint: Whether the phase folder holds a ``checkpoint.md``.
        now: The time to record as the phase's start (UTC).

    Raises:
        KeyError: If the phase is not in the table.
    """
    row = manifest.phase(phase)
    if row.status is PhaseStatus.PENDING and not has_checkpoint:
        row.status = PhaseStatus.IN_PROGRESS
        row.started = row.started or now
    derive_status(manifest)


def take_metrics(manifest: SessionManifest, checkpoint: Checkpoint) -> None:
    """Give the phase's row its checkpoint's tokens and cost, and the totals (in place).

    Args:
        manifest: The manifest to update.
        checkpoint: The phase's latest checkpoint.

    Raises:
        KeyError: If the phase is not in the table.
    """
    row = manifest.phase(checkpoint.phase)
    row.tokens = checkpoint.total_tokens
    row.input_tokens = checkpoint.total_input_tokens
    row.output_tokens = checkpoint.total_output_tokens
    row.cost = checkpoint.total_cost
    row.agents = [
        AgentUsage(
            name=a.agent_name,
            model=a.model,
            status=a.status,
            input_tokens=a.input_tokens,
            output_tokens=a.output_tokens,
            tokens=a.tokens or (a.input_tokens + a.output_tokens),
            cost=a.cost,
            duration=a.duration,
        )
        for a in checkpoint.agents
    ]
    manifest.totals = totals(manifest.phases)


def advance(
    manifest: SessionManifest, checkpoint: Checkpoint, *, review: bool | None = None
) -> bool:
    """A phase's checkpoint was saved with a status: its row and the session follow (in place).

    The row takes the checkpoint's status, times, duration, retry count and metrics. Then:

    * ``completed`` with a review gate: the review becomes ``pending`` (the session awaits
      the reviewer); without one, the phase needs no review for this run
      (``not_required``) and the session moves on;
    * ``failed``: a review that was waiting is re-armed (``required``): there is no
      completed run to review;
    * ``pending``, ``in_progress``, ``skipped``: a new run begins, so a waiting review or a
      revision request is re-armed (``required``).

    Args:
        manifest: The manifest to update.
        checkpoint: The saved checkpoint (its ``phase`` names the row).
        review: Force (True) or suppress (False) the review gate; ``None``: the row's gate
            (any review state but ``not_required``).

    Returns:
        Whether the phase now awaits its reviewer (the caller writes a pending
        ``user_feedback.md``).

    Raises:
        KeyError: If the phase is not in the table.
    """
    row = manifest.phase(checkpoint.phase)
    row.status = checkpoint.status
    if row.status is not PhaseStatus.STALE:
        row.stale_reason = None
    row.started = checkpoint.started
    row.completed = checkpoint.completed
    row.duration = checkpoint.duration
    row.retry_count = checkpoint.retry_count
    take_metrics(manifest, checkpoint)
    gate = row.review is not ReviewState.NOT_REQUIRED if review is None else review
    waits = False
    if row.status is PhaseStatus.COMPLETED:
        if gate:
            row.review = ReviewState.PENDING
            waits = True
        elif row.review in (ReviewState.REQUIRED, ReviewState.PENDING, ReviewState.REVISE):
            row.review = ReviewState.NOT_REQUIRED
    elif row.status is PhaseStatus.FAILED:
        if row.review is ReviewState.PENDING:
            row.review = ReviewState.REQUIRED
    elif row.review in (ReviewState.REVISE, ReviewState.PENDING):
        row.review = ReviewState.REQUIRED
    derive_status(manifest)
    return waits


def mark_downstream_stale(manifest: SessionManifest, after: int, reason: str) -> list[int]:
    """Mark every phase after ``after`` that already ran ``stale`` (in place).

    A decision upstream invalidates what was built on it (DESIGN.md "Sharing the store"):
    such phases run again, in order, after ``after``, and a phase with a review gate is
    reviewed again (its review goes back to ``required``). The session status is left to
    the caller (:func:`derive_status`).

    Args:
        manifest: The session manifest to change.
        after: The phase that was revised or restored.
        reason: Why, recorded as each row's ``stale_reason`` (e.g. ``phase 3 revised``).

    Returns:
        The phase numbers marked.
    """
    marked = []
    for row in manifest.phases:
        if row.number <= after or row.status in (PhaseStatus.PENDING, PhaseStatus.SKIPPED):
            continue
        row.status = PhaseStatus.STALE
        row.stale_reason = reason
        if row.review is not ReviewState.NOT_REQUIRED:
            row.review = ReviewState.REQUIRED
        marked.append(row.number)
    return marked


def apply_feedback(
    manifest: SessionManifest,
    phase: int,
    decision: FeedbackAction,
    *,
    keep_downstream: bool = False,
) -> list[int]:
    """A reviewer decided on ``phase``: its review and the session follow (in place).

    * ``approved``: the review is ``approved``; a completed phase lets the next one run;
    * ``revise`` (changes requested): the review is ``revise``; the phase runs again with
      the comments (its next run's retry count is one higher, :func:`next_retry_count`), and
      every later phase that already ran becomes ``stale`` unless ``keep_downstream``;
    * ``rejected``: the review is ``rejected`` and the session ends as rejected;
    * ``pending``: nothing changes.

    Args:
        manifest: The manifest to update.
        phase: The phase reviewed.
        decision: The reviewer's decision (``UserFeedback.decision()``).
        keep_downstream: On ``revise``, leave later phases as they are.

    Returns:
        The phases marked stale (ascending; empty unless a revision marked some).

    Raises:
        KeyError: If the phase is not in the table.
    """
    row = manifest.phase(phase)
    marked: list[int] = []
    if decision is FeedbackAction.APPROVED:
        row.review = ReviewState.APPROVED
    elif decision is FeedbackAction.REVISE:
        row.review = ReviewState.REVISE
        if not keep_downstream:
            marked = mark_downstream_stale(manifest, phase, f"phase {phase} revised")
    elif decision is FeedbackAction.REJECTED:
        row.review = ReviewState.REJECTED
    derive_status(manifest)
    return marked


def pause(manifest: SessionManifest, *, now: _dt.datetime) -> None:
    """A person paused the session: the runner leaves it alone until :func:`resume` (in place).

    Args:
        manifest: The manifest to update.
        now: When (UTC), recorded as ``paused``.

    Raises:
        ValueError: The session is already paused, or it ended (the message says which).
    """
    if manifest.paused is not None:
        raise ValueError(f"it is already paused (since {_time(manifest.paused)})")
    if is_closed(manifest):
        raise ValueError(f"it is {manifest.status.value}; only a running session can be paused")
    manifest.paused = now
    derive_status(manifest)


def resume(manifest: SessionManifest) -> None:
    """A paused session was resumed: its status follows its phase table again (in place).

    Args:
        manifest: The manifest to update.

    Raises:
        ValueError: The session is not paused.
    """
    if manifest.paused is None:
        raise ValueError(f"it is not paused (status {manifest.status.value})")
    manifest.paused = None
    derive_status(manifest)


def end(manifest: SessionManifest, *, now: _dt.datetime, reason: str | None = None) -> None:
    """A person ended the session (in place): ``cancelled`` unless its table says it is done.

    A session whose phase table says ``completed`` or ``rejected`` keeps that status and
    gets its ``ended`` time; any other (a paused one included) becomes ``cancelled``, with no
    current phase, and takes no more writes.

    Args:
        manifest: The manifest to update.
        now: When (UTC), recorded as ``ended``.
        reason: Why (one line), recorded as ``end_reason``.

    Raises:
        ValueError: The session was ended already.
    """
    if manifest.ended is not None:
        raise ValueError(f"it was ended already ({_time(manifest.ended)})")
    manifest.ended = now
    manifest.end_reason = reason or None
    manifest.paused = None
    derive_status(manifest)


def _time(value: _dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
