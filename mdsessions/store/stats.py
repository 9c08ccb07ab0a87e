"""Stats: sessions by status, figures per group, review figures, activity from history.

Seed 000 ``get_analytics``, seed 001 statistics. The figures come from the session index's
facts (:mod:`mdsessions.cache.facts`: the manifests' totals, phase rows and their agents,
validated against the files on every call); review decisions and activity from the
commits' trailers, read through the log index (:mod:`mdsessions.cache.log`). Nothing else
is stored.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mdsessions.cache.sessions import SessionSummary
from mdsessions.errors import StoreError
from mdsessions.models.query import (
    ActivityRow,
    GroupBy,
    ReviewFigures,
    SessionFilter,
    StatsGroup,
    StatsResult,
)
from mdsessions.store.commits import commit_kind
from mdsessions.store.query import find_sessions

if TYPE_CHECKING:
    from mdsessions.store.store import Store

__all__ = ["GROUPS", "median", "percentile", "session_stats"]

GROUPS: tuple[str, ...] = ("model", "agent", "phase", "day", "status")
"""What ``stats --by`` accepts."""
_DECISIONS = {"approved": "approvals", "revise": "revisions", "rejected": "rejections"}
_UTC = _dt.timezone.utc


def median(values: list[float]) -> float | None:
    """The median of ``values`` (mean of the middle two of an even count); ``None`` if empty.

    (Not :mod:`statistics`: its import costs a cold command more than the whole sum.)
    """
    if not values:
        return None
    ordered = sorted(values)
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of ``values`` (``share`` in 0..1); ``None`` if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class _Acc:
    sessions: set[tuple[str, str]] = field(default_factory=set)
    runs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tokens: int = 0
    cost: float = 0.0
    durations: list[float] = field(default_factory=list)

    def add(self, ids: tuple[str, str], figures: list[Any], duration: float | None) -> None:
        self.sessions.add(ids)
        self.runs += 1
        self.input_tokens += figures[0]
        self.output_tokens += figures[1]
        self.tokens += figures[2] or figures[0] + figures[1]
        self.cost += figures[3]
        if duration is not None:
            self.durations.append(float(duration))

    def group(self, key: str) -> StatsGroup:
        return StatsGroup(
            key=key,
            sessions=len(self.sessions),
            runs=self.runs,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            tokens=self.tokens,
            cost=round(self.cost, 6),
            duration_sum=round(sum(self.durations), 3),
            duration_median=median(self.durations),
            duration_p95=percentile(self.durations, 0.95),
        )


_EMPTY: list[Any] = [[], {}, [0, 0, 0, 0.0, 0.0], [], None]


def _groups(summaries: Iterable[SessionSummary], by: str | None) -> tuple[StatsGroup, ...]:
    accs: dict[str, _Acc] = {}
    numbers: dict[str, int] = {}  # a phase group is listed in phase order (its lowest number)
    for s in summaries:
        ids = (s.project_id, s.session_id)
        facts = s.facts_data or _EMPTY
        phases = facts[3]
        if by in ("phase", "model", "agent"):
            for row in phases:
                if by == "phase":
                    key = str(row[1])
                    numbers[key] = min(numbers.get(key, row[0]), row[0])
                    accs.setdefault(key, _Acc()).add(ids, [row[7], row[8], row[9], row[10]], row[6])
                    continue
                for a in row[12]:
                    key = str(a[0]) if by == "agent" else str(a[1] or "unknown")
                    accs.setdefault(key, _Acc()).add(ids, [a[3], a[4], a[5], a[6]], a[7])
            continue
        if by == "status":
            key = s.status.value
        elif by == "day":
            key = s.created.astimezone(_UTC).date().isoformat()
        else:
            key = "all"
        totals = facts[2]
        ran = any(row[6] is not None for row in phases)
        accs.setdefault(key, _Acc()).add(ids, totals[:4], totals[4] if ran else None)
    keys = sorted(accs, key=lambda k: (numbers.get(k, 0), k))
    return tuple(accs[k].group(k) for k in keys)


def _trailers(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.startswith("Mdsessions-"):
            out[key[11:].lower()] = value.strip()
    return out


def _history(
    store: Store, wanted: set[tuple[str, str]] | None, project: str | None
) -> tuple[dict[str, int], list[float], tuple[ActivityRow, ...]]:
    """Decisions, waits (s) and activity from the commits in scope."""
    decisions: Counter[str] = Counter()
    waits: list[float] = []
    activity: Counter[tuple[str, str]] = Counter()
    since: dict[tuple[str, str, str], int] = {}
    for when, text in store.log_index.trailers():
        t = _trailers(text)
        ids = (t.get("project", ""), t.get("session", ""))
        if wanted is not None and ids not in wanted:
            continue
        if project is not None and ids[0] != project:
            continue
        kind = commit_kind(t.get("kind")) or "other"
        day = _dt.datetime.fromtimestamp(when, _UTC).date().isoformat()
        activity[(day, kind)] += 1
        key = (*ids, t.get("phase", ""))
        if kind == "checkpoint" and t.get("session-status") == "awaiting_review":
            since.setdefault(key, when)
        elif kind == "user_feedback" and t.get("status") in _DECISIONS:
            decisions[_DECISIONS[t["status"]]] += 1
            start = since.pop(key, None)
            if start is not None:
                waits.append(float(when - start))
    rows = tuple(
        ActivityRow(day=day, kind=kind, commits=n) for (day, kind), n in sorted(activity.items())
    )
    return dict(decisions), waits, rows


def session_stats(
    store: Store,
    *,
    session: str | None = None,
    project: str | None = None,
    filters: SessionFilter | None = None,
    by: GroupBy | None = None,
    history: bool = True,
    now: _dt.datetime | None = None,
) -> StatsResult:
    """Figures of one session, a project, or every session (``--all``).

    Tokens are counts, cost USD, durations seconds (sum, median, nearest-rank p95).
    Without ``by`` one group ``all`` of session totals; ``status``/``day`` (UTC creation
    day) group sessions; ``phase`` groups phase rows by name; ``model``/``agent`` the agents
    of each phase's latest checkpoint (``unknown`` where no model is recorded).

    Args:
        store: The store.
        session: One session (any name :meth:`Store.find_session` takes).
        project: One project's sessions.
        filters: Only sessions passing these filters (as ``search``).
        by: The grouping: ``model``, ``agent``, ``phase``, ``day``, ``status``.
        history: Also read review decisions and activity from history (the log index).
        now: The time pending reviews are measured to (UTC; default: now).

    Returns:
        Sessions by status, the groups, review figures and activity (commits per kind
        per UTC day).

    Raises:
        StoreError: If ``by`` is not one of :data:`GROUPS`, or both a session and a project
            are given.
        SessionNotFoundError: If ``session`` names no session.
    """
    if by is not None and by not in GROUPS:
        raise StoreError(f"--by {by!r}: expected one of {', '.join(GROUPS)}")
    if session is not None and project is not None:
        raise StoreError("stats: give a session or --project, not both")
    f = filters or SessionFilter()
    if project is not None:
        f = f.model_copy(update={"project": project})
    wanted: set[tuple[str, str]] | None = None
    if session is not None:
        found = store.find_session(session)
        ids = (found.project_id, found.session_id)
        summaries = [
            s for s in find_sessions(store, f.model_copy(update={"project": ids[0]}))
            if (s.project_id, s.session_id) == ids
        ]  # fmt: skip
        wanted, scope = {ids}, f"session {ids[0]}/{ids[1]}"
    else:
        summaries = find_sessions(store, f)
        scope = "all" if f.project is None else f"project {f.project}"
        if f != SessionFilter(project=f.project):
            wanted = {(s.project_id, s.session_id) for s in summaries}
    by_status = Counter(s.status.value for s in summaries)
    moment = (now or _dt.datetime.now(_UTC)).timestamp()
    pending = [
        moment - _stamp(row[5])
        for s in summaries
        for row in (s.facts_data or _EMPTY)[3]
        if row[3] == "pending" and row[5] is not None
    ]
    pending_count = sum(
        1 for s in summaries for row in (s.facts_data or _EMPTY)[3] if row[3] == "pending"
    )
    decisions: dict[str, int] = {}
    waits: list[float] = []
    activity: tuple[ActivityRow, ...] = ()
    if history:
        decisions, waits, activity = _history(store, wanted, f.project)
    review = ReviewFigures(
        **decisions,
        waited_sum=round(sum(waits), 3),
        waited_median=median(waits),
        waited_p95=percentile(waits, 0.95),
        pending=pending_count,
        waiting_sum=round(sum(pending), 3),
    )
    return StatsResult(
        scope=scope,
        by=by,
        sessions=len(summaries),
        by_status=dict(sorted(by_status.items())),
        groups=_groups(summaries, by),
        review=review,
        activity=activity,
    )


def _stamp(text: str) -> float:
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
