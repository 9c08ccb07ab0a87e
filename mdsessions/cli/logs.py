"""The options every command takes for what it says besides its result, and the logging they set.

``-q``/``--quiet``, ``-v``/``--verbose`` (repeatable), ``--log-json`` and
``--color``/``--no-color`` are added to the group and to every command
(:func:`add_output_options`, called by :mod:`mdsessions.cli`), so they work before or after
the command name (``mdsessions -v run …`` or ``mdsessions run … -v``). The options only
record what they ask; colour and logging are set as the command itself starts, so
``--help`` loads nothing more.

* Logging: the package's ``mdsessions.*`` loggers go to stderr through one handler, at
  WARNING by default, ERROR with ``-q``, INFO with ``-v`` (each operation: store writes,
  runner phases and agents, recovery, sync, maintenance), DEBUG with ``-vv``. ``--log-json``
  (or ``MDSESSIONS_LOG=json``) writes them as JSON lines through python-json-logger, at INFO
  unless ``-q`` or ``-vv`` says otherwise. The handler is removed when the command ends.
* Colour: on when stdout is a terminal, off with ``NO_COLOR`` set (https://no-color.org) or
  ``--no-color``; ``--color`` forces it on.
* ``-q`` also turns off progress (``run``, git's progress bars) and hints on stderr.

Imports: :mod:`click`, and :mod:`logging` / python-json-logger when a command runs (not for
``--help``).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import logging

__all__ = [
    "LOG_ENV",
    "OutputSettings",
    "add_output_options",
    "color_enabled",
    "is_quiet",
    "settings",
]

LOG_ENV = "MDSESSIONS_LOG"
"""``MDSESSIONS_LOG=json``: log JSON lines, as ``--log-json`` (``text``: the default)."""

_KEY = "mdsessions.output"
_WRAPPED = "_mdsessions_output_options"
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JSON_FORMAT = "{levelname}{name}{message}"
_JSON_RENAMES = {"levelname": "level", "name": "logger"}


class OutputSettings:
    """What the output options of a command line asked for (group and command together).

    (A plain class: :mod:`dataclasses` would cost ``mdsessions --help`` an import.)
    """

    def __init__(self) -> None:
        self.verbose = 0
        """How many ``-v`` were given."""
        self.quiet = False
        """``-q`` was given."""
        self.log_json = False
        """``--log-json`` was given."""
        self.color: bool | None = None
        """``--color`` (True) / ``--no-color`` (False); None: decide from the terminal."""
        self.handler: Any = None
        """The handler installed on the ``mdsessions`` logger (removed when the command ends)."""
        self.level_before: int | None = None
        """The ``mdsessions`` logger's level before the command."""

    @property
    def json_logs(self) -> bool:
        """JSON lines: ``--log-json`` or ``MDSESSIONS_LOG=json``."""
        return self.log_json or os.environ.get(LOG_ENV, "").strip().lower() == "json"

    @property
    def level(self) -> int:
        """The level of the ``mdsessions`` loggers (a :mod:`logging` level number)."""
        if self.quiet:
            return 40  # ERROR
        if self.verbose >= 2:
            return 10  # DEBUG
        if self.verbose == 1 or self.json_logs:
            return 20  # INFO
        return 30  # WARNING


def settings(ctx: click.Context | None = None) -> OutputSettings:
    """The output settings of the running command line (made on first use).

    Args:
        ctx: Any context of the command line (default: the current one).

    Returns:
        The settings, shared by every context of the command line.
    """
    if ctx is None:
        ctx = click.get_current_context(silent=True)
        if ctx is None:
            return OutputSettings()
    found = ctx.meta.get(_KEY)
    if found is None:
        found = ctx.meta[_KEY] = OutputSettings()
    assert isinstance(found, OutputSettings)
    return found


def is_quiet(ctx: click.Context | None = None) -> bool:
    """Whether ``-q`` was given: no progress and no hints on stderr.

    Args:
        ctx: Any context of the command line (default: the current one).

    Returns:
        True with ``-q``.
    """
    return settings(ctx).quiet


def color_enabled(ctx: click.Context | None = None) -> bool | None:
    """Whether to colour output: ``--color``/``--no-color``, else off when ``NO_COLOR`` is set.

    Args:
        ctx: Any context of the command line (default: the current one).

    Returns:
        True or False when decided; None: colour when writing to a terminal.
    """
    chosen = settings(ctx).color
    if chosen is not None:
        return chosen
    return False if os.environ.get("NO_COLOR") else None


def _formatter(json_lines: bool) -> logging.Formatter:
    import logging
    import time

    if json_lines:
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(_JSON_FORMAT, style="{", rename_fields=_JSON_RENAMES, timestamp="time")
    formatter = logging.Formatter(_TEXT_FORMAT, datefmt="%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    return formatter


def _apply(ctx: click.Context) -> None:
    """Set colour and logging from the options of the group and the command (as it starts)."""
    import logging

    current = settings(ctx)
    if current.quiet and current.verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose: give one, not both")
    color = color_enabled(ctx)
    node: click.Context | None = ctx
    while node is not None:  # contexts made later (the command's) inherit it
        node.color = color
        node = node.parent
    logger = logging.getLogger("mdsessions")
    if current.handler is None:
        current.level_before = logger.level
        current.handler = logging.StreamHandler(sys.stderr)  # the command's stderr
        _add_redaction(current.handler)
        logger.addHandler(current.handler)
        ctx.find_root().call_on_close(lambda: _remove(current))
    current.handler.setFormatter(_formatter(current.json_logs))
    logger.setLevel(current.level)


def _add_redaction(handler: logging.Handler) -> None:
    """Redact each record the handler writes, with the public API's ``RedactingFilter``.

    Records hold ids and figures only; this is the second line of defence. (Looked up by
    name: ``mdsessions.RedactingFilter`` comes with the redaction of issue 15 item 4.)
    """
    import mdsessions

    make = getattr(mdsessions, "RedactingFilter", None)
    if make is not None:
        handler.addFilter(make())


def _remove(current: OutputSettings) -> None:
    import logging

    logger = logging.getLogger("mdsessions")
    if current.handler is not None:
        logger.removeHandler(current.handler)
        current.handler = None
    if current.level_before is not None:
        logger.setLevel(current.level_before)


def _verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    settings(ctx).verbose += value or 0


def _quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    settings(ctx).quiet |= bool(value)


def _log_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    settings(ctx).log_json |= bool(value)


def _color(ctx: click.Context, _param: click.Parameter, value: bool | None) -> None:
    if value is not None:
        settings(ctx).color = value


def _configured(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` run after colour and logging are set from the options (not for --help)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        _apply(click.get_current_context())
        return callback(*args, **kwargs)

    functools.update_wrapper(run, callback)
    setattr(run, _WRAPPED, True)
    return run


def _options() -> list[click.Option]:
    return [
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_quiet,
            help="Say less: no progress or hints on stderr; log errors only.",
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_verbose,
            help="Log each operation on stderr (-vv: debug).",
        ),
        click.Option(
            ["--log-json"],
            is_flag=True,
            expose_value=False,
            callback=_log_json,
            help=f"Log JSON lines on stderr (also {LOG_ENV}=json).",
        ),
        click.Option(
            ["--color/--no-color"],
            default=None,
            expose_value=False,
            callback=_color,
            help="Colour the output (default: on a terminal, unless NO_COLOR is set).",
        ),
    ]


def add_output_options(commands: Iterable[click.Command]) -> None:
    """Give each command (and each command of a group, recursively) the output options.

    Args:
        commands: The group and the commands, e.g. ``(cli, *COMMANDS)``.
    """
    for command in commands:
        names = {name for param in command.params for name in getattr(param, "opts", ())}
        if "--quiet" not in names:
            command.params.extend(_options())
        if isinstance(command, click.Group):
            add_output_options(command.commands.values())
        elif command.callback is not None and not hasattr(command.callback, _WRAPPED):
            command.callback = _configured(command.callback)
