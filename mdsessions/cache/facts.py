"""What search and stats read of a manifest, kept by the session index beside its summary.

The session index (:mod:`mdsessions.cache.sessions`) validates every manifest by its file
identity on every call; the facts below are taken from the same parse and stored in the
same snapshot, so they are exactly as fresh as the listing: no second cache, no second
validation rule. They are a compact JSON-ready list (what the snapshot holds)::

    [tags, metadata, totals, phases, ended]

* ``tags``: list of text; ``metadata``: the manifest's free-form mapping (JSON values);
* ``totals``: ``[input_tokens, output_tokens, tokens, cost USD, duration s]``;
* ``phases``: one row per phase that has started or has a review state other than
  ``not_required``/``required`` (a phase not started has no figures)::

      [number, name, status, review, started, completed, duration s,
       input_tokens, output_tokens, tokens, cost USD, retry_count, agents]

  with times as UTC ISO-8601 text or ``null`` and ``agents`` one
  ``[name, model, status, input_tokens, output_tokens, tokens, cost, duration]`` per agent
  of the phase's latest checkpoint (``PhaseEntry.agents``);
* ``ended``: when the session ended (UTC ISO-8601) or ``null``.

:func:`decode` turns it into typed tuples (:class:`SessionFacts`).
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, NamedTuple

from mdsessions.models.schema import PhaseStatus, ReviewState, SessionManifest

__all__ = ["AgentFacts", "PhaseFacts", "SessionFacts", "decode", "facts_of", "is_facts"]

_QUIET = (ReviewState.NOT_REQUIRED, ReviewState.REQUIRED)


class AgentFacts(NamedTuple):
    """One agent of a phase's latest checkpoint (tokens, cost USD, duration seconds)."""

    name: str
    model: str | None
    status: str
    input_tokens: int
    output_tokens: int
    tokens: int
    cost: float
    duration: float | None


class PhaseFacts(NamedTuple):
    """One phase row that has started (times UTC, duration seconds, cost USD)."""

    number: int
    name: str
    status: str
    review: str
    started: _dt.datetime | None
    completed: _dt.datetime | None
    duration: float | None
    input_tokens: int
    output_tokens: int
    tokens: int
    cost: float
    retry_count: int
    agents: tuple[AgentFacts, ...]


class SessionFacts(NamedTuple):
    """What search and stats read of one session (tokens, cost USD, duration seconds)."""

    tags: tuple[str, ...]
    metadata: dict[str, Any]
    input_tokens: int
    output_tokens: int
    tokens: int
    cost: float
    duration: float
    phases: tuple[PhaseFacts, ...]
    ended: _dt.datetime | None


def _iso(value: _dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: str | None) -> _dt.datetime | None:
    return None if text is None else _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def facts_of(manifest: SessionManifest) -> list[Any]:
    """The facts of a parsed manifest, as the snapshot keeps them (see the module docstring)."""
    metadata: Any = getattr(manifest, "metadata", None) or {}
    if metadata:  # kept verbatim in the manifest; JSON values here (dates as text)
        metadata = json.loads(json.dumps(metadata, default=str))
    t = manifest.totals
    phases = [
        [
            p.number,
            p.name,
            p.status.value,
            p.review.value,
            _iso(p.started),
            _iso(p.completed),
            p.duration,
            p.input_tokens,
            p.output_tokens,
            p.tokens,
            p.cost,
            p.retry_count,
            [
                [
                    a.name,
                    a.model,
                    a.status.value,
                    a.input_tokens,
                    a.output_tokens,
                    a.tokens,
                    a.cost,
                    a.duration,
                ]
                for a in p.agents
            ],
        ]
        for p in manifest.phases
        if p.status is not PhaseStatus.PENDING or p.review not in _QUIET
    ]
    ended = getattr(manifest, "ended", None)
    return [
        list(manifest.tags),
        metadata,
        [t.input_tokens, t.output_tokens, t.tokens, t.cost, t.duration],
        phases,
        _iso(ended) if isinstance(ended, _dt.datetime) else None,
    ]


def is_facts(value: object) -> bool:
    """Whether a value read from a snapshot has the outer shape of facts (else: rebuild)."""
    return (
        type(value) is list
        and len(value) == 5
        and type(value[0]) is list
        and type(value[1]) is dict
        and type(value[2]) is list
        and type(value[3]) is list
    )


def decode(raw: list[Any]) -> SessionFacts:
    """Typed facts of the JSON-ready list :func:`facts_of` made.

    Raises:
        ValueError, TypeError, IndexError: If ``raw`` is not such a list.
    """
    tags, metadata, totals, phases, ended = raw
    return SessionFacts(
        tuple(str(t) for t in tags),
        dict(metadata),
        int(totals[0]),
        int(totals[1]),
        int(totals[2]),
        float(totals[3]),
        float(totals[4]),
        tuple(
            PhaseFacts(
                int(p[0]),
                str(p[1]),
                str(p[2]),
                str(p[3]),
                _time(p[4]),
                _time(p[5]),
                None if p[6] is None else float(p[6]),
                int(p[7]),
                int(p[8]),
                int(p[9]),
                float(p[10]),
                int(p[11]),
                tuple(
                    AgentFacts(
                        str(a[0]),
                        None if a[1] is None else str(a[1]),
                        str(a[2]),
                        int(a[3]),
                        int(a[4]),
                        int(a[5]),
                        float(a[6]),
                        None if a[7] is None else float(a[7]),
                    )
                    for a in p[12]
                ),
            )
            for p in phases
        ),
        _time(ended),
    )
