"""Transcripts, the pure part: token estimates, the body's boundary, figures and pruning rules.

Seed 004 (k8s-monitor ``SessionManager``) is the source of the rules: tokens are estimated as
characters ÷ 4 when a provider reported none, a transcript "should be pruned" once its tokens
reach a share (default 0.8) of the context limit, a simple prune keeps the last N messages
and the system messages, and a smart prune also keeps every message that names one of a few
keywords. Nothing here reads a disk or git; :mod:`mdsessions.store.transcripts` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import Field

from mdsessions.models.results import SessionResult
from mdsessions.models.schema import Transcript, TranscriptEntry

__all__ = [
    "DEFAULT_KEEP_LAST",
    "DEFAULT_KEYWORDS",
    "DEFAULT_THRESHOLD",
    "PruneResult",
    "PrunedMessage",
    "TranscriptStats",
    "choose_boundary",
    "estimate_tokens",
    "kept_by_keywords",
    "kept_by_recency",
    "refresh",
    "stats_of",
]

DEFAULT_THRESHOLD = 0.8
"""Share of the context limit at which a transcript should be pruned (seed 004: 80 %)."""

DEFAULT_KEEP_LAST = 50
"""Messages a prune keeps at the end of a transcript (seed 004: the last 50)."""

DEFAULT_KEYWORDS = ("critical", "escalation", "failed", "error", "down", "outage")
"""Words that keep a message through a smart prune (seed 004's list), matched ignoring case."""

BOUNDARY = "mdsessions-message"
"""The marker word of a transcript body; ``-2``, ``-3`` … appended when a message holds it."""


def estimate_tokens(text: str) -> int:
    """Tokens of a text by seed 004's estimate: characters ÷ 4, rounded up.

    Args:
        text: Any text.

    Returns:
        ``ceil(len(text) / 4)`` (``0`` for ``""``).

    Example:
        >>> estimate_tokens("Hello, world")
        3
    """
    return (len(text) + 3) // 4


def choose_boundary(contents: Iterable[str]) -> str:
    """The first boundary word (``mdsessions-message``, then ``…-2``, ``…-3`` …) no text holds.

    The body's marker lines are ``<!-- {boundary} -->``; a boundary that no message contains
    makes every marker line the store's own (the way a MIME multipart boundary is chosen),
    so a message may hold anything, our own headings and marker lines of another boundary
    included.

    Args:
        contents: The messages' texts.

    Returns:
        The boundary word.
    """
    texts = [c for c in contents if BOUNDARY in c]
    if not texts:
        return BOUNDARY
    suffix = 2
    while any(f"{BOUNDARY}-{suffix}" in c for c in texts):
        suffix += 1
    return f"{BOUNDARY}-{suffix}"


def refresh(doc: Transcript) -> Transcript:
    """Set a transcript's figures and boundary from its messages (before it is rendered).

    Args:
        doc: The transcript; changed in place.

    Returns:
        ``doc``: ``message_count``, ``token_count``, ``next_number`` (past the highest number
        ever used) and ``boundary`` agree with ``entries``.
    """
    doc.message_count = len(doc.entries)
    doc.token_count = sum(e.tokens for e in doc.entries)
    if doc.entries:
        doc.next_number = max(doc.next_number, doc.entries[-1].number + 1)
    doc.boundary = choose_boundary(e.content for e in doc.entries)
    return doc


def kept_by_recency(
    entries: Sequence[TranscriptEntry], *, keep_last: int, keep_system: bool = True
) -> list[TranscriptEntry]:
    """The messages a simple prune keeps (seed 004 ``prune_old_messages``).

    Args:
        entries: The transcript's messages, oldest first.
        keep_last: How many of the newest messages to keep (``0``: none).
        keep_system: Keep every ``system`` message too (seed 004 keeps the system message).

    Returns:
        The kept messages, in their order.
    """
    start = max(0, len(entries) - keep_last)
    return [e for i, e in enumerate(entries) if i >= start or (keep_system and e.role == "system")]


def kept_by_keywords(
    entries: Sequence[TranscriptEntry],
    *,
    keywords: Sequence[str],
    keep_last: int,
    keep_system: bool = True,
) -> list[TranscriptEntry]:
    """The messages a smart prune keeps (seed 004 ``smart_prune``).

    Args:
        entries: The transcript's messages, oldest first.
        keywords: A message whose text contains one of these (ignoring case) is kept.
        keep_last: How many of the newest messages to keep whatever they say.
        keep_system: Keep every ``system`` message too.

    Returns:
        The kept messages, in their order.
    """
    words = [k.casefold() for k in keywords if k]
    recent = {
        e.number for e in kept_by_recency(entries, keep_last=keep_last, keep_system=keep_system)
    }
    return [
        e for e in entries if e.number in recent or any(w in e.content.casefold() for w in words)
    ]


class TranscriptStats(SessionResult):
    """A transcript's figures (seed 004 ``get_session_stats``): ``transcript stats --json``."""

    name: str
    """The transcript's name (an agent id, or ``session``)."""
    path: str
    """Store-relative path of the transcript file."""
    messages: int
    """Messages (and commands) it holds now, recorded ones waiting for a flush included."""
    buffered: int = 0
    """Of ``messages``, those recorded in this process and not committed yet."""
    tokens: int
    """Tokens of those messages: what providers reported, else characters ÷ 4."""
    context_limit: int
    """Tokens of context the transcript is measured against."""
    context_share: float
    """``tokens / context_limit`` (``0.85`` is 85 %)."""
    threshold: float
    """The share at which it should be pruned."""
    should_prune: bool
    """``context_share >= threshold``."""
    by_role: dict[str, int] = Field(default_factory=dict)
    """Messages per role (``user``, ``assistant``, ``command`` …)."""
    tokens_by_role: dict[str, int] = Field(default_factory=dict)
    """Tokens per role."""
    pruned: int = 0
    """Messages removed by prunes so far (all of them still in history)."""
    first_number: int | None = None
    """Number of the oldest message kept (``null``: empty)."""
    last_number: int | None = None
    """Number of the newest message (``null``: empty)."""


def stats_of(
    doc: Transcript, *, path: str, threshold: float, buffered: Sequence[TranscriptEntry] = ()
) -> TranscriptStats:
    """The figures of a transcript and the messages waiting to be added to it.

    Args:
        doc: The transcript as committed.
        path: Its store-relative path.
        threshold: The share of the context limit at which it should be pruned (0-1].
        buffered: Messages recorded and not committed yet.

    Returns:
        The statistics.
    """
    entries = [*doc.entries, *buffered]
    by_role: dict[str, int] = {}
    tokens_by_role: dict[str, int] = {}
    for e in entries:
        by_role[e.role] = by_role.get(e.role, 0) + 1
        tokens_by_role[e.role] = tokens_by_role.get(e.role, 0) + e.tokens
    tokens = sum(tokens_by_role.values())
    share = tokens / doc.context_limit
    return TranscriptStats(
        session=f"{doc.project_id}/{doc.session_id}",
        name=doc.name,
        path=path,
        messages=len(entries),
        buffered=len(buffered),
        tokens=tokens,
        context_limit=doc.context_limit,
        context_share=round(share, 6),
        threshold=threshold,
        should_prune=share >= threshold,
        by_role=dict(sorted(by_role.items())),
        tokens_by_role=dict(sorted(tokens_by_role.items())),
        pruned=doc.pruned_count,
        first_number=entries[0].number if entries else None,
        last_number=entries[-1].number if entries else None,
    )


class PrunedMessage(SessionResult):
    """A message a prune removed, as history keeps it (``transcript show --pruned``)."""

    name: str
    """The transcript's name."""
    number: int
    """The message's number (never reused)."""
    role: str
    """Its role."""
    time: str
    """When it was recorded, UTC ISO-8601."""
    tokens: int
    """Its tokens."""
    content: str
    """Its text, verbatim."""
    pruned_by: str
    """The prune commit that removed it; the message is in that commit's parent."""


class PruneResult(SessionResult):
    """What a prune did (``transcript prune --json``)."""

    name: str
    """The transcript's name."""
    commit: str | None
    """The prune's commit (``null``: nothing to prune, no prune commit)."""
    strategy: str
    """``recent`` (keep the last N) or ``keywords`` (smart prune)."""
    removed: list[int] = Field(default_factory=list)
    """Numbers of the messages removed (their text stays in ``{commit}^``)."""
    removed_tokens: int = 0
    """Tokens of the removed messages."""
    kept: int = 0
    """Messages left."""
    tokens: int = 0
    """Tokens left."""
