"""The results of search and stats (issue 14 items 3, 4): filters, matches, groups, figures.

Seed 000's ``search_sessions`` (filters over every session) and ``get_analytics`` (totals
per group), seed 001's statistics. Units: tokens are counts, cost is USD, durations and
waiting times are seconds, times are UTC ISO-8601. Pure: imports pydantic only.
"""

from __future__ import annotations

import datetime as _dt
from typing import Literal

from pydantic import Field

from mdsessions.models.results import Result

__all__ = [
    "ActivityRow",
    "GroupBy",
    "ReviewFigures",
    "SearchMatch",
    "SearchResult",
    "SessionFilter",
    "SessionHit",
    "StatsGroup",
    "StatsResult",
]

GroupBy = Literal["model", "agent", "phase", "day", "status"]
"""What ``stats --by`` groups figures by."""


class SessionFilter(Result):
    """Metadata filters over every session; a session matches when it passes all that are set.

    Seed 000 ``search_sessions``. Each value left at its default filters nothing.
    """

    project: str | None = None
    """Only this project's sessions."""
    status: tuple[str, ...] = ()
    """Only sessions with one of these statuses."""
    tags: tuple[str, ...] = ()
    """Only sessions with every one of these tags."""
    mode: str | None = None
    """Only sessions of this execution mode."""
    workflow: str | None = None
    """Only sessions of this workflow."""
    model: str | None = None
    """Only sessions where an agent of a phase's latest checkpoint ran this model."""
    agent: str | None = None
    """Only sessions where this agent ran (a phase's latest checkpoint lists it)."""
    phase: str | None = None
    """Only sessions whose current phase has this number or name (or slug-like name)."""
    since: _dt.datetime | None = None
    """Only sessions created at or after this time (UTC)."""
    until: _dt.datetime | None = None
    """Only sessions created before this time (UTC)."""
    metadata: tuple[tuple[str, str], ...] = ()
    """Only sessions whose ``metadata`` has each ``(key, value)`` (the value compared as text)."""


class SessionHit(Result):
    """One session a search found."""

    project: str
    """Project id."""
    session: str
    """Session id."""
    status: str
    """Session status."""
    workflow: str
    """Workflow name."""
    mode: str
    """Execution mode."""
    created: _dt.datetime
    """When it was created (UTC)."""
    tags: tuple[str, ...] = ()
    """Its tags."""
    path: str
    """Store-relative path of its manifest."""


class SearchMatch(Result):
    """One matching line of a document, as ``git grep -n`` prints it."""

    path: str
    """Store-relative path of the document."""
    line: int
    """Line number (1-based)."""
    text: str
    """The line (without its end)."""
    project: str
    """Project id of the session the document belongs to."""
    session: str
    """Session id."""


class SearchResult(Result):
    """What ``search`` found: the sessions passing the filters and, with a text, the lines."""

    text: str | None = None
    """The text searched for (``null``: metadata filters only)."""
    at: str | None = None
    """The commit searched (``null``: the documents as they are in the working tree)."""
    sessions: tuple[SessionHit, ...] = ()
    """Sessions passing the filters (with a text: those with a matching line), listing order."""
    matches: tuple[SearchMatch, ...] = ()
    """Matching lines by path and line number (empty without a text)."""


class StatsGroup(Result):
    """Figures of one group (or of everything when not grouped)."""

    key: str
    """The group: a model, agent, phase name, UTC day, status, or ``all``."""
    sessions: int = 0
    """Sessions contributing to the group."""
    runs: int = 0
    """What was counted: sessions (no grouping, ``day``, ``status``), phase rows (``phase``)
    or agent runs (``model``, ``agent``)."""
    input_tokens: int = 0
    """Input tokens."""
    output_tokens: int = 0
    """Output tokens."""
    tokens: int = 0
    """Tokens (input + output where not given)."""
    cost: float = 0.0
    """Cost in USD."""
    duration_sum: float = 0.0
    """Durations summed, in seconds."""
    duration_median: float | None = None
    """Median duration in seconds (``null``: none known)."""
    duration_p95: float | None = None
    """95th percentile duration in seconds (nearest rank; ``null``: none known)."""


class ReviewFigures(Result):
    """Review figures: decisions from history, what is waiting now from the manifests."""

    approvals: int = 0
    """Approvals recorded (``user_feedback`` commits with status ``approved``)."""
    revisions: int = 0
    """Revisions requested (status ``revise``)."""
    rejections: int = 0
    """Rejections (status ``rejected``)."""
    waited_sum: float = 0.0
    """Seconds from a phase awaiting review to its decision, summed over the decisions."""
    waited_median: float | None = None
    """Median of those waits in seconds."""
    waited_p95: float | None = None
    """95th percentile of those waits in seconds."""
    pending: int = 0
    """Phases awaiting review now."""
    waiting_sum: float = 0.0
    """Seconds the phases awaiting review now have waited (since each completed), summed."""


class ActivityRow(Result):
    """Commits of one kind on one UTC day."""

    day: str
    """UTC day, ``YYYY-MM-DD``."""
    kind: str
    """Commit kind (``Mdsessions-Kind``; ``other`` for commits without one)."""
    commits: int
    """How many."""


class StatsResult(Result):
    """``stats``: sessions by status, figures per group, review figures, activity."""

    scope: str
    """What was counted: ``all``, ``project P`` or ``session P/S``."""
    by: GroupBy | None = None
    """The grouping (``null``: one group ``all``)."""
    sessions: int = 0
    """Sessions counted."""
    by_status: dict[str, int] = Field(default_factory=dict)
    """Sessions per status."""
    groups: tuple[StatsGroup, ...] = ()
    """Figures per group, by key."""
    review: ReviewFigures = Field(default_factory=ReviewFigures)
    """Review figures."""
    activity: tuple[ActivityRow, ...] = ()
    """Commits per kind per UTC day (from history), by day then kind."""
