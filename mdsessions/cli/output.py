"""How commands print: JSON documents, aligned tables, status colours, times, sizes, paths.

Imports: :mod:`click`, :mod:`mdsessions.cli.args`, :mod:`mdsessions.cli.logs` and, for types
only, the public API.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import click

from mdsessions.cli.args import inside
from mdsessions.cli.logs import is_quiet

if TYPE_CHECKING:
    from mdsessions import Session, SessionManifest, SessionSummary, Store

__all__ = [
    "REVIEW_HINT",
    "UTC_FORMAT",
    "Progress",
    "age",
    "arrow",
    "display_path",
    "SESSION_ENTRY_FIELDS",
    "echo_json",
    "echo_model",
    "echo_session_entries",
    "note",
    "review_hint",
    "seconds",
    "session_summary",
    "short_time",
    "size",
    "styled",
    "table",
]

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""How times are printed: UTC ISO-8601 with ``Z`` (``2024-11-24T10:02:00Z``)."""

REVIEW_HINT = "set approved: true (or action: revise / reject) and run again"
"""What a reviewer does in a ``user_feedback.md``, printed under its path."""

_STATUS_COLOURS = {
    "stale": "yellow",
    "completed": "green",
    "approved": "green",
    "in_progress": "yellow",
    "awaiting_review": "yellow",
    "pending": "yellow",
    "revise": "yellow",
    "failed": "red",
    "rejected": "red",
    "created": "cyan",
    "skipped": "bright_black",
    "required": "bright_black",
    "not_required": "bright_black",
}


def echo_json(data: Any) -> None:
    """Print one JSON document (UTF-8, not ASCII-escaped, keys in their given order).

    Args:
        data: Anything :func:`json.dumps` takes.
    """
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


class Dumpable(Protocol):
    """A pydantic model: a result of the public API, or an output model of the CLI."""

    def model_dump(self, *, mode: str, by_alias: bool) -> dict[str, Any]:
        """The model as data (``mode="json"``: JSON-ready)."""
        ...


def echo_model(value: Dumpable | Sequence[Dumpable]) -> None:
    """Print a result, or a list of results, as ``--json`` does (docs/json.md).

    Args:
        value: A pydantic model (or a sequence of them), dumped by alias in JSON mode.
    """
    if isinstance(value, Sequence):
        echo_json([item.model_dump(mode="json", by_alias=True) for item in value])
    else:
        echo_json(value.model_dump(mode="json", by_alias=True))


SESSION_ENTRY_FIELDS = (
    "project",
    "session",
    "workflow",
    "mode",
    "status",
    "current_phase",
    "created",
    "updated",
    "path",
)
"""The fields of ``mdsessions.cli.schemas.SessionEntry`` in order (a test checks they match)."""

_STREAM_CHUNK = 64 * 1024  # characters written to stdout at a time


def echo_session_entries(summaries: Iterable[SessionSummary]) -> None:
    """Print ``list --json``: a JSON array of ``SessionEntry`` (docs/json.md), streamed.

    The bytes are exactly :func:`echo_json` of the list (``indent=2``, not ASCII-escaped,
    a final newline), but each entry is written as it is made (64 KB at a time) rather
    than the whole document built first: a listing of 10,000 sessions holds no more than
    the summaries themselves. No pydantic model is made for the entries.

    Args:
        summaries: The sessions to print, in order.
    """
    quote = encode_basestring  # what json.dumps(ensure_ascii=False) uses
    texts: dict[_dt.datetime, str] = {}  # a session's two times are often the same
    utc_zone = _dt.timezone.utc

    def utc(when: _dt.datetime) -> str:
        if when.tzinfo is not utc_zone:  # (equal instants in other zones print otherwise)
            return quote(when.strftime(UTC_FORMAT))
        text = texts.get(when)
        if text is None:
            text = texts[when] = quote(when.strftime(UTC_FORMAT))
        return text

    parts: list[str] = []
    size = 0
    first = True
    for summary in summaries:
        current = summary.current_phase
        entry = (
            ("[\n  {\n" if first else ",\n  {\n")
            + f'    "project": {quote(summary.project_id)},\n'
            + f'    "session": {quote(summary.session_id)},\n'
            + f'    "workflow": {quote(summary.workflow)},\n'
            + f'    "mode": {quote(summary.mode)},\n'
            + f'    "status": {quote(summary.status.value)},\n'
            + f'    "current_phase": {"null" if current is None else int.__repr__(current)},\n'
            + f'    "created": {utc(summary.created)},\n'
            + f'    "updated": {utc(summary.updated)},\n'
            + f'    "path": {quote(summary.path)}\n'
            + "  }"
        )
        first = False
        parts.append(entry)
        size += len(entry)
        if size >= _STREAM_CHUNK:
            click.echo("".join(parts), nl=False)  # as echo_json writes (and flushes)
            parts, size = [], 0
    parts.append("[]" if first else "\n]")
    click.echo("".join(parts))


def note(text: str) -> None:
    """Print a note for people on stderr (e.g. ``nothing to record``), unless ``-q`` was given.

    Args:
        text: One line.
    """
    if not is_quiet():
        click.echo(text, err=True)


def styled(value: str, text: str | None = None) -> str:
    """Colour a status value (click drops the colour when stdout is not a terminal).

    Args:
        value: A status or review value, e.g. ``completed``.
        text: What to show instead of ``value`` (in ``value``'s colour).

    Returns:
        The text with colour codes, or as is for a value without a colour.
    """
    colour = _STATUS_COLOURS.get(value)
    shown = value if text is None else text
    return click.style(shown, fg=colour) if colour else shown


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """Format an aligned text table; cells of the ``right`` columns are right-aligned.

    Cells may hold colour codes: widths are computed on the visible text.

    Args:
        headers: Column titles (printed bold).
        rows: The cells, row by row.
        right: Indexes of the right-aligned columns.

    Returns:
        The table's lines, joined by newlines, without a trailing newline.
    """
    rows = [list(r) for r in rows]
    right = set(right)

    def visible(cell: str) -> int:  # (unstyle, a regex, only where there is a colour code)
        return len(click.unstyle(cell)) if "\x1b" in cell else len(cell)

    sizes = [[visible(cell) for cell in row] for row in rows]
    widths = [visible(h) for h in headers]
    for row_sizes in sizes:
        for i, n in enumerate(row_sizes):
            if n > widths[i]:
                widths[i] = n

    def line(cells: Sequence[str], lengths: Sequence[int]) -> str:
        out = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - lengths[i])
            out.append(pad + cell if i in right else cell + pad)
        return "  ".join(out).rstrip()

    head = [click.style(h, bold=True) for h in headers]
    lines = [line(head, [visible(h) for h in head])]
    lines += [line(r, n) for r, n in zip(rows, sizes, strict=True)]
    return "\n".join(lines)


def short_time(value: _dt.datetime | str | None) -> str:
    """``2024-11-24T10:02:00Z`` → ``2024-11-24 10:02`` (UTC); ``None`` → ``-``.

    Args:
        value: A UTC time, or its ISO-8601 text.

    Returns:
        The time to the minute.
    """
    if value is None:
        return "-"
    text = value if isinstance(value, str) else value.strftime(UTC_FORMAT)
    return text.replace("T", " ")[:16]


def seconds(value: float | None) -> str:
    """A duration for people: ``4.2s``, ``3m07s``, ``1h02m``; ``None`` → ``-``.

    Args:
        value: Seconds.

    Returns:
        The duration.
    """
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def age(delta: _dt.timedelta) -> str:
    """How long something has waited: ``12 min``, ``3 h 5 min``, ``4 days``.

    Args:
        delta: The time waited.

    Returns:
        The age, to the minute.
    """
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} days"


def size(n: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ``3.2 MiB``.

    Args:
        n: Bytes.

    Returns:
        The size in binary units.
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def arrow(before: object, after: object) -> str:
    """``a -> b`` for a change, ``a`` when nothing changed (``-`` stands for ``None``).

    Args:
        before: The old value.
        after: The new value.

    Returns:
        The transition.
    """
    left = "-" if before is None else str(before)
    right = "-" if after is None else str(after)
    return left if left == right else f"{left} -> {right}"


def display_path(store: Store, rel: str) -> str:
    """A store-relative path as people type it.

    Args:
        store: The store.
        rel: A store-relative path.

    Returns:
        The path relative to the current folder when that is inside the store, else absolute.
    """
    target = store.root / rel
    try:
        return os.path.relpath(target) if inside(Path.cwd().resolve(), store.root) else str(target)
    except ValueError:  # pragma: no cover - another drive (Windows)
        return str(target)


def session_summary(session: Session, manifest: SessionManifest) -> str:
    """``session in_progress at phase 2 (Market Research)`` and the like.

    Args:
        session: The session.
        manifest: Its manifest.

    Returns:
        The session's status and current phase.
    """
    text = f"session {manifest.status.value}"
    if manifest.current_phase is not None:
        name = next((p.name for p in manifest.phases if p.number == manifest.current_phase), "")
        text += f" at phase {manifest.current_phase}" + (f" ({name})" if name else "")
    return text


def review_hint(store: Store, session: Session, phase: int) -> list[str]:
    """The lines that tell a reviewer which file to edit.

    Args:
        store: The store.
        session: The session.
        phase: The phase awaiting review.

    Returns:
        The lines, without newlines.
    """
    rel = session.document_rel(phase, "feedback")
    return [
        f"review: {display_path(store, rel)}",
        f"  {REVIEW_HINT}",
        f"  (or: mdsessions feedback {session.ref} {phase} --approve | --revise | --reject)",
    ]


class Progress:
    """git's progress as click progress bars on stderr, when stderr is a terminal.

    Not on a terminal (a log, a pipe, a test), or with ``-q``, nothing is drawn at all. Call
    it as a :data:`mdsessions.history.ProgressCallback`; :meth:`close` when done.
    """

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty() and not is_quiet()
        self.bar: Any = None
        self.stage: str | None = None
        self.done = 0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        """Advance the bar of ``stage`` to ``done`` of ``total`` (a new stage: a new bar)."""
        if not self.enabled or total is None or total <= 0:
            return
        if stage != self.stage:
            self.close()
            self.bar = click.progressbar(length=total, label=stage, file=sys.stderr)
            self.bar.__enter__()
            self.stage, self.done = stage, 0
        self.bar.update(max(0, done - self.done))
        self.done = done

    def close(self) -> None:
        """Finish the current bar, if any."""
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
