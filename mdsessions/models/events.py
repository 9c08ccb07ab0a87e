"""What the runner reports while it runs: a :class:`RunEvent` at each phase and agent start and end.

A :class:`~mdsessions.Runner` given ``on_event`` calls it with one event as each phase and
each agent starts and ends; the command line draws its progress from them
(``mdsessions run``), and the runner logs the same events (``mdsessions.runner``). An event
carries ids, numbers and figures only, never content (no output, prompt or error text).

Pure: imports nothing but the standard library (:mod:`logging`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

__all__ = ["RunEvent", "RunEventHandler", "RunEventKind", "log_event"]

_log = logging.getLogger("mdsessions.runner")


class RunEventKind(str, Enum):
    """When a :class:`RunEvent` is sent."""

    PHASE_STARTED = "phase_started"
    """A phase starts (its agents are about to run)."""
    PHASE_COMPLETED = "phase_completed"
    """A phase's checkpoint was saved as completed."""
    AGENT_STARTED = "agent_started"
    """An agent is called."""
    AGENT_COMPLETED = "agent_completed"
    """An agent's output was saved (with its tokens, cost and duration)."""
    AGENT_SKIPPED = "agent_skipped"
    """An agent's output saved before an interruption is kept: the agent does not run again."""
    AGENT_FAILED = "agent_failed"
    """An agent failed; its failure is recorded and the run stops (``AgentFailedError``)."""

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class RunEvent:
    """One step of a run, as the runner reports it to ``Runner(on_event=…)``.

    Attributes:
        kind: What happened.
        project_id: Project id.
        session_id: Session id.
        phase: The phase number.
        phase_name: The phase's name, e.g. ``Concept Expansion``.
        agent: The agent's id (agent events only).
        agent_index: The agent's place in its phase, from 1 (agent events only; 0 otherwise).
        agent_count: How many agents the phase has.
        duration: Seconds the agent (or the phase, for ``phase_completed``) took; ``None``
            for start events.
        input_tokens: Prompt tokens (``agent_completed``).
        output_tokens: Completion tokens (``agent_completed``).
        cost: USD (``agent_completed``).
    """

    kind: RunEventKind
    project_id: str
    session_id: str
    phase: int
    phase_name: str
    agent: str | None = None
    agent_index: int = 0
    agent_count: int = 0
    duration: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    @property
    def ref(self) -> str:
        """``project/session``."""
        return f"{self.project_id}/{self.session_id}"

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


RunEventHandler = Callable[[RunEvent], None]
"""What ``Runner(on_event=…)`` takes: called with each event, in the runner's thread."""


def log_event(event: RunEvent) -> None:
    """Log a run event on the ``mdsessions.runner`` logger at INFO.

    A failed agent is INFO too: the run raises ``AgentFailedError``, which says it once.

    The record's extra fields: ``operation`` (``run.<kind>``), ``session``
    (``project/session``), ``phase``, ``agent``, ``duration_ms`` and, for a completed agent,
    ``tokens`` and ``cost_usd``. Nothing is built when the level is off.

    Args:
        event: The event.
    """
    if not _log.isEnabledFor(logging.INFO):
        return
    what = event.kind.value.replace("_", " ")
    where = f"phase {event.phase}" + (f" agent {event.agent}" if event.agent else "")
    extra: dict[str, object] = {
        "operation": f"run.{event.kind.value}",
        "session": event.ref,
        "phase": event.phase,
    }
    text = f"{event.ref} {where}: {what.split(' ', 1)[1]}"
    if event.agent:
        extra["agent"] = event.agent
    if event.duration is not None:
        extra["duration_ms"] = round(event.duration * 1000, 1)
        text += f" in {event.duration:.3f} s"
    if event.kind is RunEventKind.AGENT_COMPLETED:
        extra["tokens"] = event.tokens
        extra["cost_usd"] = event.cost
        text += f", {event.tokens} tokens, ${event.cost:.4f}"
    _log.info(text, extra=extra)
