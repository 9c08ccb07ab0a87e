"""Tests for mdsessions.models.state: the session state machine, as pure functions (no git)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdsessions import (
    AgentRun,
    Checkpoint,
    FeedbackAction,
    PhaseEntry,
    PhaseStatus,
    ReviewState,
    SessionManifest,
    SessionStatus,
)
from mdsessions.models import state
from mdsessions.models.schema import Totals

NOW = dt.datetime(2024, 11, 24, 10, 0, tzinfo=dt.timezone.utc)
LATER = NOW + dt.timedelta(minutes=5)


def manifest(
    gates: Sequence[bool] = (True, True, False), numbers: Sequence[int] = ()
) -> SessionManifest:
    """A new session's manifest: one row per gate (True: the phase has a review gate)."""
    numbers = list(numbers) or list(range(1, len(gates) + 1))
    rows = [
        PhaseEntry(
            number=n,
            slug=f"p{n}",
            name=f"Phase {n}",
            review=ReviewState.REQUIRED if gate else ReviewState.NOT_REQUIRED,
        )
        for n, gate in zip(numbers, gates, strict=True)
    ]
    return SessionManifest(
        project_id="p",
        session_id="s",
        created=NOW,
        updated=NOW,
        current_phase=numbers[0],
        phases=rows,
    )


def checkpoint(
    phase: int,
    status: PhaseStatus,
    *,
    retry: int = 0,
    tokens: tuple[int, int] = (0, 0),
    cost: float = 0.0,
    duration: float | None = None,
) -> Checkpoint:
    """A phase checkpoint with one agent run carrying the metrics."""
    return Checkpoint(
        project_id="p",
        session_id="s",
        phase=phase,
        phase_name=f"Phase {phase}",
        phase_slug=f"p{phase}",
        status=status,
        started=NOW,
        completed=LATER if status in (PhaseStatus.COMPLETED, PhaseStatus.FAILED) else None,
        duration=duration,
        retry_count=retry,
        agents=[
            AgentRun(agent_name="a", input_tokens=tokens[0], output_tokens=tokens[1], cost=cost)
        ],
    )


def where(m: SessionManifest) -> tuple[SessionStatus, int | None]:
    return m.status, m.current_phase


def run(m: SessionManifest, phase: int, *, retry: int = 0) -> bool:
    """What a runner does for one phase: outputs, checkpoint in progress, checkpoint completed."""
    state.start_phase(m, phase, has_checkpoint=False, now=NOW)
    state.advance(m, checkpoint(phase, PhaseStatus.IN_PROGRESS, retry=retry))
    return state.advance(m, checkpoint(phase, PhaseStatus.COMPLETED, retry=retry))


# -- transitions ------------------------------------------------------------------------------


def test_a_new_session_is_created_at_its_first_phase() -> None:
    m = manifest()
    state.derive_status(m)
    assert where(m) == (SessionStatus.CREATED, 1)
    assert m.totals == Totals()
    assert state.next_to_run(m) is m.phases[0]
    assert state.awaiting_review(m) is None


def test_an_output_starts_its_phase_and_the_session() -> None:
    m = manifest()
    state.start_phase(m, 1, has_checkpoint=False, now=NOW)
    assert (m.phases[0].status, m.phases[0].started) == (PhaseStatus.IN_PROGRESS, NOW)
    assert where(m) == (SessionStatus.IN_PROGRESS, 1)
    state.start_phase(m, 1, has_checkpoint=False, now=LATER)
    assert m.phases[0].started == NOW  # the first output's time stays the start


def test_after_a_checkpoint_an_output_leaves_the_phase_status_to_it() -> None:
    m = manifest()
    state.start_phase(m, 1, has_checkpoint=True, now=NOW)
    assert m.phases[0].status is PhaseStatus.PENDING
    assert where(m) == (SessionStatus.CREATED, 1)


def test_pending_running_completed_awaiting_review_approved() -> None:
    m = manifest((True, True))
    state.advance(m, checkpoint(1, PhaseStatus.PENDING))
    assert where(m) == (SessionStatus.CREATED, 1)
    assert state.advance(m, checkpoint(1, PhaseStatus.IN_PROGRESS)) is False
    assert where(m) == (SessionStatus.IN_PROGRESS, 1)
    assert state.advance(m, checkpoint(1, PhaseStatus.COMPLETED)) is True
    row = m.phases[0]
    assert (row.status, row.review) == (PhaseStatus.COMPLETED, ReviewState.PENDING)
    assert (row.started, row.completed) == (NOW, LATER)
    assert where(m) == (SessionStatus.AWAITING_REVIEW, 1)
    assert state.apply_feedback(m, 1, FeedbackAction.APPROVED) == []
    assert row.review is ReviewState.APPROVED
    assert where(m) == (SessionStatus.IN_PROGRESS, 2)
    assert m.approved_phases == [1]


def test_every_phase_done_completes_the_session() -> None:
    m = manifest((True, False, True))
    assert run(m, 1) is True
    state.apply_feedback(m, 1, FeedbackAction.APPROVED)
    assert run(m, 2) is False  # no gate: straight on
    assert m.phases[1].review is ReviewState.NOT_REQUIRED
    assert where(m) == (SessionStatus.IN_PROGRESS, 3)
    assert run(m, 3) is True
    assert where(m) == (SessionStatus.AWAITING_REVIEW, 3)
    state.apply_feedback(m, 3, FeedbackAction.APPROVED)
    assert where(m) == (SessionStatus.COMPLETED, None)
    assert state.is_closed(m)
    assert m.completed_phases == [1, 2, 3]


def test_changes_requested_rerun_the_phase_with_the_next_retry_count() -> None:
    m = manifest((True, True))
    run(m, 1)
    assert state.next_retry_count(m.phases[0]) == 0
    state.apply_feedback(m, 1, FeedbackAction.REVISE)
    row = m.phases[0]
    assert row.review is ReviewState.REVISE
    assert where(m) == (SessionStatus.IN_PROGRESS, 1)
    assert state.next_to_run(m) is row
    retry = state.next_retry_count(row)
    assert retry == 1
    state.advance(m, checkpoint(1, PhaseStatus.IN_PROGRESS, retry=retry))
    assert (row.retry_count, row.review) == (1, ReviewState.REQUIRED)  # the gate re-arms
    assert state.next_retry_count(row) == 1  # an interrupted revision resumes as run 1
    assert state.advance(m, checkpoint(1, PhaseStatus.COMPLETED, retry=retry)) is True
    assert where(m) == (SessionStatus.AWAITING_REVIEW, 1)
    state.apply_feedback(m, 1, FeedbackAction.REVISE)
    assert state.next_retry_count(row) == 2


def test_rejection_ends_the_session() -> None:
    m = manifest()
    run(m, 1)
    state.apply_feedback(m, 1, FeedbackAction.REJECTED)
    assert m.phases[0].review is ReviewState.REJECTED
    assert where(m) == (SessionStatus.REJECTED, None)
    assert state.is_closed(m)


def test_a_pending_decision_changes_nothing() -> None:
    m = manifest()
    run(m, 1)
    before = m.model_copy(deep=True)
    state.apply_feedback(m, 1, FeedbackAction.PENDING)
    assert m == before


def test_a_revision_makes_later_phases_that_ran_stale() -> None:
    m = manifest((True, True, False, True))
    for n in (1, 2):
        run(m, n)
        state.apply_feedback(m, n, FeedbackAction.APPROVED)
    run(m, 3)
    assert where(m) == (SessionStatus.IN_PROGRESS, 4)
    assert state.apply_feedback(m, 1, FeedbackAction.REVISE) == [2, 3]
    rows = {p.number: p for p in m.phases}
    assert [rows[n].status for n in (2, 3, 4)] == [
        PhaseStatus.STALE,
        PhaseStatus.STALE,
        PhaseStatus.PENDING,  # never ran: nothing to invalidate
    ]
    assert rows[2].stale_reason == rows[3].stale_reason == "phase 1 revised"
    assert rows[2].review is ReviewState.REQUIRED  # reviewed again
    assert rows[3].review is ReviewState.NOT_REQUIRED  # no gate stays no gate
    assert where(m) == (SessionStatus.IN_PROGRESS, 1)
    run(m, 1, retry=state.next_retry_count(rows[1]))
    state.apply_feedback(m, 1, FeedbackAction.APPROVED)
    assert where(m) == (SessionStatus.IN_PROGRESS, 2)  # the stale phases run again, in order
    assert state.next_retry_count(rows[2]) == 1
    state.advance(m, checkpoint(2, PhaseStatus.IN_PROGRESS, retry=1))
    assert rows[2].status is PhaseStatus.IN_PROGRESS
    assert m.phase(2).stale_reason is None


def test_keep_downstream_leaves_later_phases_as_they_are() -> None:
    m = manifest((True, False, False))
    run(m, 1)
    state.apply_feedback(m, 1, FeedbackAction.APPROVED)
    run(m, 2)
    assert state.apply_feedback(m, 1, FeedbackAction.REVISE, keep_downstream=True) == []
    assert m.phases[1].status is PhaseStatus.COMPLETED
    assert where(m) == (SessionStatus.IN_PROGRESS, 1)


def test_a_failed_run_fails_the_session_at_its_phase() -> None:
    m = manifest((False, False))
    state.start_phase(m, 1, has_checkpoint=False, now=NOW)
    state.advance(m, checkpoint(1, PhaseStatus.FAILED))
    assert where(m) == (SessionStatus.FAILED, 1)
    assert state.next_retry_count(m.phases[0]) == 1
    # An output of the retry does not change the phase (its checkpoint says failed), so
    # the session stays failed until the retry's checkpoint says otherwise.
    state.start_phase(m, 1, has_checkpoint=True, now=LATER)
    assert where(m) == (SessionStatus.FAILED, 1)
    state.advance(m, checkpoint(1, PhaseStatus.IN_PROGRESS, retry=1))
    assert where(m) == (SessionStatus.IN_PROGRESS, 1)


def test_a_failed_run_re_arms_a_waiting_review() -> None:
    m = manifest((True, True))
    run(m, 1)
    state.advance(m, checkpoint(1, PhaseStatus.FAILED, retry=1))
    assert m.phases[0].review is ReviewState.REQUIRED
    assert where(m) == (SessionStatus.FAILED, 1)


def test_a_revision_that_fails_is_still_a_revision() -> None:
    m = manifest((True, True))
    run(m, 1)
    state.apply_feedback(m, 1, FeedbackAction.REVISE)
    state.advance(m, checkpoint(1, PhaseStatus.FAILED, retry=1))
    assert m.phases[0].review is ReviewState.REVISE
    assert where(m) == (SessionStatus.FAILED, 1)


def test_skipped_phases_count_as_done() -> None:
    m = manifest((False, False, False))
    run(m, 1)
    state.advance(m, checkpoint(2, PhaseStatus.SKIPPED))
    assert where(m) == (SessionStatus.IN_PROGRESS, 3)
    state.advance(m, checkpoint(3, PhaseStatus.SKIPPED))
    assert where(m) == (SessionStatus.COMPLETED, None)


def test_the_review_gate_can_be_forced_or_suppressed() -> None:
    m = manifest((False, True))
    assert state.advance(m, checkpoint(1, PhaseStatus.COMPLETED), review=True) is True
    assert where(m) == (SessionStatus.AWAITING_REVIEW, 1)
    state.apply_feedback(m, 1, FeedbackAction.APPROVED)
    assert state.advance(m, checkpoint(2, PhaseStatus.COMPLETED), review=False) is False
    assert m.phases[1].review is ReviewState.NOT_REQUIRED
    assert where(m) == (SessionStatus.COMPLETED, None)


def test_suppressing_the_gate_answers_a_revision_request() -> None:
    m = manifest((True, False))
    run(m, 1)
    state.apply_feedback(m, 1, FeedbackAction.REVISE)
    state.advance(m, checkpoint(1, PhaseStatus.COMPLETED, retry=1), review=False)
    assert m.phases[0].review is ReviewState.NOT_REQUIRED
    assert where(m) == (SessionStatus.IN_PROGRESS, 2)


def test_a_waiting_review_comes_before_a_phase_to_run() -> None:
    m = manifest((True, True, True))
    for n in (1, 2):
        run(m, n)
        state.apply_feedback(m, n, FeedbackAction.APPROVED)
    run(m, 3)
    state.apply_feedback(m, 1, FeedbackAction.REVISE, keep_downstream=True)
    assert where(m) == (SessionStatus.AWAITING_REVIEW, 3)  # the runner stops at the gate


def test_the_session_follows_its_mode_numbers() -> None:
    m = manifest((False, False, False), numbers=(1, 3, 6))
    state.derive_status(m)
    assert state.phase_after(m, 1) is m.phases[1]
    assert state.phase_after(m, 6) is None
    run(m, 1)
    assert where(m) == (SessionStatus.IN_PROGRESS, 3)


def test_an_unknown_phase_is_a_key_error() -> None:
    m = manifest()
    with pytest.raises(KeyError):
        state.start_phase(m, 9, has_checkpoint=False, now=NOW)
    with pytest.raises(KeyError):
        state.advance(m, checkpoint(9, PhaseStatus.COMPLETED))
    with pytest.raises(KeyError):
        state.apply_feedback(m, 9, FeedbackAction.APPROVED)


# -- totals -----------------------------------------------------------------------------------


def test_totals_sum_tokens_cost_and_durations_of_the_rows() -> None:
    m = manifest((False, False, False))
    state.advance(
        m, checkpoint(1, PhaseStatus.COMPLETED, tokens=(1200, 800), cost=0.0125, duration=30.5)
    )
    state.advance(
        m, checkpoint(2, PhaseStatus.COMPLETED, tokens=(100, 50), cost=0.0005, duration=9.25)
    )
    assert m.totals == Totals(
        tokens=2150, input_tokens=1300, output_tokens=850, cost=0.013, duration=39.75
    )
    assert m.phases[2].duration is None  # counts 0 s
    assert state.totals(m.phases) == m.totals


def test_a_rerun_replaces_the_rows_metrics_in_the_totals() -> None:
    m = manifest((True,))
    state.advance(m, checkpoint(1, PhaseStatus.COMPLETED, tokens=(10, 10), cost=1.0))
    state.apply_feedback(m, 1, FeedbackAction.REVISE)
    state.advance(m, checkpoint(1, PhaseStatus.COMPLETED, retry=1, tokens=(5, 5), cost=0.5))
    assert (m.totals.tokens, m.totals.cost) == (10, 0.5)


def test_take_metrics_updates_one_row_and_the_totals() -> None:
    m = manifest((False, False))
    state.take_metrics(m, checkpoint(2, PhaseStatus.COMPLETED, tokens=(3, 4), cost=0.25))
    row = m.phases[1]
    assert (row.tokens, row.input_tokens, row.output_tokens, row.cost) == (7, 3, 4, 0.25)
    assert m.totals == Totals(tokens=7, input_tokens=3, output_tokens=4, cost=0.25)


def test_history_derives_with_the_same_rules() -> None:
    from mdsessions.history.restore import derive_status as _derive_status

    m = manifest()
    run(m, 1)
    m.status, m.current_phase, m.totals = SessionStatus.CREATED, 3, Totals(tokens=99)
    expected = m.model_copy(deep=True)
    state.derive_status(expected)
    _derive_status(m)
    assert m == expected


# -- step by step == derived from the table ---------------------------------------------------

_SAVED = [s for s in PhaseStatus if s is not PhaseStatus.STALE]  # the store refuses "stale"

_event = st.one_of(
    st.tuples(st.just("output"), st.integers(0, 6)),
    st.tuples(
        st.just("checkpoint"),
        st.integers(0, 6),
        st.sampled_from(_SAVED),
        st.sampled_from([None, None, True, False]),
        st.integers(0, 3),
        st.integers(0, 5000),
        st.floats(0, 100, allow_nan=False),
    ),
    st.tuples(
        st.just("feedback"), st.integers(0, 6), st.sampled_from(FeedbackAction), st.booleans()
    ),
)


def _apply(m: SessionManifest, event: tuple[object, ...], saved: set[int]) -> None:
    """Apply one event as the store would (refusing what the store refuses)."""
    if state.is_closed(m):
        return  # the store takes no writes
    kind, index = event[0], event[1]
    assert isinstance(index, int)
    row = m.phases[index % len(m.phases)]
    if kind == "output":
        state.start_phase(m, row.number, has_checkpoint=row.number in saved, now=NOW)
    elif kind == "checkpoint":
        _, _, status, review, retry, tokens, duration = event
        assert isinstance(status, PhaseStatus) and isinstance(retry, int)
        assert isinstance(tokens, int) and isinstance(duration, float)
        cp = checkpoint(row.number, status, retry=retry, tokens=(tokens, 1), duration=duration)
        state.advance(m, cp, review=review if isinstance(review, bool) else None)
        saved.add(row.number)
    else:
        _, _, decision, keep = event
        assert isinstance(decision, FeedbackAction)
        if row.status in (PhaseStatus.PENDING, PhaseStatus.SKIPPED):
            return  # the store refuses: nothing to review
        state.apply_feedback(m, row.number, decision, keep_downstream=bool(keep))


def _check(m: SessionManifest) -> None:
    # The session status follows from the phase table alone.
    table_only = SessionManifest(
        project_id=m.project_id,
        session_id=m.session_id,
        created=NOW,
        updated=NOW,
        phases=[p.model_copy() for p in m.phases],
    )
    state.derive_status(table_only)
    assert (m.status, m.current_phase, m.totals) == (
        table_only.status,
        table_only.current_phase,
        table_only.totals,
    )
    # … and follows the rules of the module's table.
    assert (m.current_phase is None) == (m.status in state.CLOSED)
    waiting = state.awaiting_review(m)
    rejected = any(p.review is ReviewState.REJECTED for p in m.phases)
    assert (m.status is SessionStatus.AWAITING_REVIEW) == (waiting is not None and not rejected)
    if m.status is SessionStatus.COMPLETED:
        assert all(p.status in state.DONE for p in m.phases)
    for p in m.phases:
        assert (p.stale_reason is not None) == (p.status is PhaseStatus.STALE)


@settings(max_examples=300, deadline=None)
@given(
    gates=st.lists(st.booleans(), min_size=1, max_size=7),
    events=st.lists(_event, max_size=40),
)
def test_step_by_step_equals_derived_from_the_phase_table(
    gates: list[bool], events: list[tuple[object, ...]]
) -> None:
    m = manifest(gates)
    state.derive_status(m)
    saved: set[int] = set()
    for event in events:
        _apply(m, event, saved)
        _check(m)


@settings(max_examples=200, deadline=None)
@given(
    gates=st.lists(st.booleans(), min_size=1, max_size=7),
    outcomes=st.lists(st.booleans(), max_size=60),
    decisions=st.lists(st.sampled_from(FeedbackAction), max_size=60),
)
def test_a_runner_walk_reaches_an_end_or_a_gate_by_the_rules(
    gates: list[bool], outcomes: list[bool], decisions: list[FeedbackAction]
) -> None:
    """Run phases as the runner does (next_to_run, retries), failing and reviewing at random."""
    m = manifest(gates)
    state.derive_status(m)
    outcome, decision = iter(outcomes), iter(decisions)
    for _ in range(200):
        if state.is_closed(m):
            break
        waiting = state.awaiting_review(m)
        if waiting is not None:
            assert where(m) == (SessionStatus.AWAITING_REVIEW, waiting.number)
            choice = next(decision, FeedbackAction.APPROVED)
            state.apply_feedback(m, waiting.number, choice)
            if choice is FeedbackAction.REJECTED:
                assert where(m) == (SessionStatus.REJECTED, None)
            elif choice is FeedbackAction.REVISE:
                assert where(m) == (SessionStatus.IN_PROGRESS, waiting.number)
            elif choice is FeedbackAction.PENDING:
                # Nobody decided: a patient reviewer approves next time.
                state.apply_feedback(m, waiting.number, FeedbackAction.APPROVED)
            continue
        todo = state.next_to_run(m)
        assert todo is not None and m.current_phase == todo.number
        retry = state.next_retry_count(todo)
        state.start_phase(
            m, todo.number, has_checkpoint=todo.status is not PhaseStatus.PENDING, now=NOW
        )
        state.advance(m, checkpoint(todo.number, PhaseStatus.IN_PROGRESS, retry=retry))
        assert where(m) == (SessionStatus.IN_PROGRESS, todo.number)
        if next(outcome, True):
            gated = state.advance(m, checkpoint(todo.number, PhaseStatus.COMPLETED, retry=retry))
            assert gated == (todo.review is ReviewState.PENDING)
        else:
            state.advance(m, checkpoint(todo.number, PhaseStatus.FAILED, retry=retry))
            assert where(m) == (SessionStatus.FAILED, todo.number)
        _check(m)
    assert m.status in state.CLOSED
    if m.status is SessionStatus.COMPLETED:
        reviewed = [p.number for p, gate in zip(m.phases, gates, strict=True) if gate]
        assert m.approved_phases == reviewed


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_costs_and_durations_are_finite(value: float) -> None:
    from pydantic import TypeAdapter, ValidationError

    from mdsessions.models.schema import USD, Seconds

    for kind in (USD, Seconds):
        with pytest.raises(ValidationError):
            TypeAdapter(kind).validate_python(value)
    assert TypeAdapter(USD).validate_python(0.1234567) == 0.123457
