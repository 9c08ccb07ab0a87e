"""``run``'s progress on stderr, drawn from the runner's events (:class:`mdsessions.RunEvent`).

On a terminal: a live row per phase drawn with rich (spinner, agents done of the phase's,
the agent running, elapsed time, tokens, cost), left on screen when the phase ends. Not on a
terminal (a log, a pipe, CI): one plain line as each phase and agent starts and ends,
prefixed with the time since the run began::

    [   0.0s] phase 1 Concept Expansion: started, 2 agents
    [   0.0s]   1/2 concept_expansion: started
    [   2.1s]   1/2 concept_expansion: completed in 2.1s, 1,234 tokens, $0.0012
    [   2.1s]   2/2 market_analyst: kept from an earlier run
    [   2.2s] phase 1 Concept Expansion: completed in 2.2s, 1,234 tokens, $0.0012

Only ids, numbers and figures are shown, never content. rich is imported only when a live
row is drawn (``mdsessions --help`` and plain lines do not load it).

Imports: :mod:`click`; rich when drawing on a terminal; the public API for types only.
"""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from mdsessions import RunEvent

__all__ = ["RunProgress"]


def _figures(tokens: int, cost: float) -> str:
    """``, 1,234 tokens, $0.0012`` (each only when not zero)."""
    out = ""
    if tokens:
        out += f", {tokens:,} tokens"
    if cost:
        out += f", ${cost:.4f}"
    return out


class RunProgress:
    """Shows a run's progress on stderr; call it as ``Runner(on_event=…)``; :meth:`close` after.

    Args:
        live: Draw live rows with rich (stderr is a terminal); False: plain lines.
        color: Colour (None: rich decides from the terminal and ``NO_COLOR``).
        stream: Where plain lines go (default: ``sys.stderr`` when called).
    """

    def __init__(
        self, *, live: bool, color: bool | None = None, stream: IO[str] | None = None
    ) -> None:
        self.live = live
        self.color = color
        self.stream = stream
        self.began = time.monotonic()
        self.phase_tokens = 0
        self.phase_cost = 0.0
        self._progress: Any = None
        self._task: Any = None

    @classmethod
    def for_terminal(cls, *, color: bool | None = None) -> RunProgress:
        """Live rows when stderr is a terminal, plain lines otherwise.

        Args:
            color: As for the constructor.

        Returns:
            The progress.
        """
        return cls(live=sys.stderr.isatty(), color=color)

    def __call__(self, event: RunEvent) -> None:
        """Show one event."""
        kind = event.kind.value
        if kind == "phase_started":
            self.phase_tokens, self.phase_cost = 0, 0.0
        elif kind == "agent_completed":
            self.phase_tokens += event.tokens
            self.phase_cost += event.cost
        if self.live:
            self._draw(event, kind)
        else:
            self._line(event, kind)

    # -- plain lines ------------------------------------------------------------------------

    def _line(self, event: RunEvent, kind: str) -> None:
        stamp = f"[{time.monotonic() - self.began:7.1f}s]"
        phase = f"phase {event.phase} {event.phase_name}"
        agent = f"  {event.agent_index}/{event.agent_count} {event.agent}"
        took = f" in {event.duration:.1f}s" if event.duration is not None else ""
        text = {
            "phase_started": f"{phase}: started, {event.agent_count} "
            + ("agent" if event.agent_count == 1 else "agents"),
            "phase_completed": f"{phase}: completed{took}"
            + _figures(self.phase_tokens, self.phase_cost),
            "agent_started": f"{agent}: started",
            "agent_completed": f"{agent}: completed{took}" + _figures(event.tokens, event.cost),
            "agent_skipped": f"{agent}: kept from an earlier run",
            "agent_failed": f"{agent}: failed{took.replace(' in ', ' after ')}",
        }.get(kind, f"{phase}: {kind}")
        click.echo(f"{stamp} {text}", file=self.stream or sys.stderr)

    # -- live rows --------------------------------------------------------------------------

    def _start(self, event: RunEvent) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(
            stderr=True,
            no_color=self.color is False,
            force_terminal=True if self.color else None,
            highlight=False,
        )
        self._progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=12),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[agent]}"),
            TextColumn("{task.fields[figures]}"),
            console=console,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            f"phase {event.phase} {event.phase_name}",
            total=event.agent_count or None,
            agent="",
            figures="",
        )

    def _draw(self, event: RunEvent, kind: str) -> None:
        if kind == "phase_started":
            self.close()
            self._start(event)
            return
        if self._progress is None:
            return
        figures = _figures(self.phase_tokens, self.phase_cost).lstrip(", ")
        update = self._progress.update
        if kind == "agent_started":
            update(self._task, agent=f"{event.agent}", figures=figures)
        elif kind in ("agent_completed", "agent_skipped"):
            update(self._task, advance=1, agent="", figures=figures)
        elif kind == "agent_failed":
            update(self._task, agent=f"[red]{event.agent} failed[/]", figures=figures)
            self.close()
        elif kind == "phase_completed":
            update(self._task, completed=event.agent_count, agent="", figures=figures)
            self.close()
        if self._progress is not None:
            self._progress.refresh()  # each event shows, however short the agent

    def close(self) -> None:
        """Stop drawing (the rows drawn stay on screen); safe to call twice."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
