# ruff: noqa: D301  (click's "\b" line keeps the paragraph after it from being rewrapped)
"""The ``mdsessions`` click group, its one error mapping, and the options commands share.

Every command module imports from here (never the other way round), and
:mod:`mdsessions.cli` adds their commands to :data:`cli`. Errors are mapped to messages and
exit codes in one place, :meth:`MdsessionsGroup.invoke`:

* ``0`` success (a run that stops at a review gate included);
* ``1`` a user error: :class:`~mdsessions.MdsessionsError`, or an ``OSError`` from the file
  system, as ``Error: <message>`` on stderr, never a traceback;
* ``2`` a usage error (click's own);
* ``130`` interrupted (``Interrupted`` on stderr).

Anything else is a bug in mdsessions: its traceback is shown, after one line asking for a
report. With ``--json`` an error is one JSON object on stderr instead,
``{"error": {"type": "SessionNotFoundError", "message": "…"}}``, with the same exit status.

The library is imported inside the commands, so ``mdsessions --help`` does not load GitPython,
Jinja, YAML or pydantic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from mdsessions import __version__

if TYPE_CHECKING:
    from mdsessions import Store

__all__ = [
    "BUG_REPORT",
    "CommandError",
    "MdsessionsGroup",
    "author_option",
    "cli",
    "error_message",
    "fail",
    "idea_options",
    "json_option",
    "keep_options",
    "open_store",
    "session_options",
    "store_option",
    "store_path",
    "workflow_option",
]

F = TypeVar("F", bound=Callable[..., Any])

_STORE_KEY = "mdsessions.store"
_JSON_KEY = "mdsessions.json"

BUG_REPORT = (
    "mdsessions hit an unexpected error (a bug): please report this bug with the traceback below"
)
"""The stderr line printed before the traceback of an exception that is not the user's to fix."""


class CommandError(click.ClickException):
    """A command's own failure (``Error: <message>``, exit status 1), e.g. problems found."""


def fail(message: str) -> NoReturn:
    """Stop the command with ``Error: <message>`` on stderr and exit status 1.

    Args:
        message: What went wrong, for people.

    Raises:
        CommandError: Always.
    """
    raise CommandError(message)


def error_message(exc: BaseException) -> str | None:
    """The ``Error:`` text for an exception that is the user's to fix, else ``None``.

    Args:
        exc: What a command raised.

    Returns:
        The message of a :class:`~mdsessions.MdsessionsError`, or of an ``OSError`` from the
        file system (``<path>: <reason>`` when it names a path); ``None`` for anything else
        (a bug, which keeps its traceback) and for a broken pipe (click handles it).
    """
    from mdsessions import MdsessionsError, redact

    if isinstance(exc, MdsessionsError):
        return str(exc) or type(exc).__name__  # redacted when it was raised
    if isinstance(exc, BrokenPipeError):
        return None
    if isinstance(exc, OSError):
        if exc.filename is not None and exc.strerror:
            return redact(f"{exc.filename}: {exc.strerror}")
        return redact(str(exc) or type(exc).__name__)
    return None


def _echo_json_error(kind: str, message: str) -> None:
    error = {"error": {"type": kind, "message": message}}
    click.echo(json.dumps(error, ensure_ascii=False), err=True)


class MdsessionsGroup(click.Group):
    """The ``mdsessions`` group: commands in declaration order, errors mapped in one place.

    Sub-groups (``backup``, ``remote``) use this class for the order; only the root group
    maps errors, so each error is reported once.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Commands in the order they are added (a workflow's order, not alphabetical)."""
        return list(self.commands)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse, noting whether ``--json`` is anywhere on the command line (for errors)."""
        if ctx.parent is None:
            words = args[: args.index("--")] if "--" in args else args
            ctx.meta[_JSON_KEY] = "--json" in words
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, mapping its errors to messages and exit statuses.

        Raises:
            click.exceptions.Exit: With status 1 for a user error, 2 for a usage error
                (under ``--json``: after printing the JSON error), 130 on ``KeyboardInterrupt``.
            click.ClickException: For a user error without ``--json`` (click prints
                ``Error: <message>``).
        """
        if ctx.parent is not None:
            return super().invoke(ctx)
        as_json = bool(ctx.meta.get(_JSON_KEY))
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            if not as_json:
                raise
            _echo_json_error(type(exc).__name__, exc.format_message())
            raise click.exceptions.Exit(exc.exit_code) from None
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            if as_json:
                _echo_json_error("KeyboardInterrupt", "Interrupted")
            else:
                click.echo("Interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except Exception as exc:
            message = error_message(exc)
            if message is None:
                if not isinstance(exc, BrokenPipeError):
                    click.echo(BUG_REPORT, err=True)
                raise
            if as_json:
                _echo_json_error(type(exc).__name__, message)
                raise click.exceptions.Exit(1) from None
            raise click.ClickException(message) from None


# --------------------------------------------------------------------------------------------
# shared options
# --------------------------------------------------------------------------------------------


def _remember_store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[_STORE_KEY] = value


def store_option(*, envvar: bool = False) -> Callable[[F], F]:
    """``--store PATH``: the store to use (a folder inside it).

    Given on the group (``mdsessions --store S status …``) or after a command
    (``mdsessions status … --store S``); the command's own value wins.

    Args:
        envvar: Also read ``$MDSESSIONS_STORE`` (the group's option only, so that the
            variable never overrides an explicit group option).

    Returns:
        The decorator.
    """
    return click.option(
        "--store",
        metavar="PATH",
        envvar="MDSESSIONS_STORE" if envvar else None,
        show_envvar=envvar,
        expose_value=False,
        callback=_remember_store,
        help="The store (any folder inside it). Default: the current folder.",
    )


def json_option() -> Callable[[F], F]:
    """``--json``: print one JSON document on stdout instead of text (errors: JSON on stderr).

    Returns:
        The decorator; the command gets the flag as ``as_json``.
    """
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (one document on stdout)."
    )


def workflow_option() -> Callable[[F], F]:
    """``--workflow NAME|PATH.toml``.

    Returns:
        The decorator; the command gets ``workflow`` (``None``: the default).
    """
    return click.option(
        "--workflow",
        metavar="NAME|PATH.toml",
        help="Workflow: a name from the store's mdsessions.toml, or a workflow TOML file "
        "(default: idea_validation).",
    )


def author_option(help_text: str) -> Callable[[F], F]:
    """``--author "Name <email>"``: the commit author.

    Args:
        help_text: The option's help.

    Returns:
        The decorator; the command gets ``author``.
    """
    return click.option("--author", metavar='"NAME <EMAIL>"', help=help_text)


def idea_options() -> Callable[[F], F]:
    """``--idea TEXT`` / ``--idea-file FILE|-``: the session's input.

    Returns:
        The decorator; the command gets ``idea`` and ``idea_file``.
    """

    def decorate(func: F) -> F:
        func = click.option(
            "--idea-file",
            metavar="FILE|-",
            help="Read the idea from a file ('-' for stdin), UTF-8.",
        )(func)
        return click.option("--idea", metavar="TEXT", help="The idea (markdown).")(func)

    return decorate


def session_options() -> Callable[[F], F]:
    """``--mode``, ``--user-id`` and ``--tag``: options of a new session.

    Returns:
        The decorator; the command gets ``mode``, ``user_id`` and ``tags``.
    """

    def decorate(func: F) -> F:
        func = click.option(
            "--tag", "tags", multiple=True, metavar="TAG", help="A label (repeatable)."
        )(func)
        func = click.option("--user-id", metavar="USER", help="Who the session is for.")(func)
        return click.option(
            "--mode", metavar="MODE", help="Execution mode, e.g. mvp or full (default: mvp)."
        )(func)

    return decorate


def keep_options() -> Callable[[F], F]:
    """``--keep mine|theirs`` / ``--fork-theirs NEW_ID``: how a pull resolves a conflict.

    Returns:
        The decorator; the command gets ``keep`` and ``fork_theirs``.
    """

    def decorate(func: F) -> F:
        func = click.option(
            "--fork-theirs",
            metavar="NEW_ID",
            help="On a conflict: keep mine, add the remote's version of the session as NEW_ID.",
        )(func)
        return click.option(
            "--keep",
            type=click.Choice(["mine", "theirs"]),
            help="On a conflict (a session changed on both sides): keep this side's version.",
        )(func)

    return decorate


# --------------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------------


def store_path(ctx: click.Context) -> str | None:
    """The ``--store`` (or ``$MDSESSIONS_STORE``) value, if one was given.

    Args:
        ctx: The command's context.

    Returns:
        The path as given, or ``None``.
    """
    value = ctx.meta.get(_STORE_KEY)
    return str(value) if value is not None else None


def open_store(ctx: click.Context) -> Store:
    """Open the store of ``--store`` (else the current folder); closed when the command ends.

    Args:
        ctx: The command's context.

    Returns:
        The open store.

    Raises:
        StoreNotFoundError: If there is no store there.
    """
    from mdsessions import Store

    store = Store.open(store_path(ctx) or ".")
    ctx.call_on_close(store.close)
    return store


# --------------------------------------------------------------------------------------------
# the group
# --------------------------------------------------------------------------------------------


@click.group(
    cls=MdsessionsGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="mdsessions")
@store_option(envvar=True)
def cli() -> None:
    """A git-backed markdown store for phased LLM-agent workflows.

    Every checkpoint is a git commit; sessions are markdown files with YAML
    frontmatter that people review in their own editor; `git log` is the history.

    \b
    Example:
        mdsessions init my-store && cd my-store
        mdsessions run --new demo --idea "A gym leaderboard" --workflow wf.toml
        mdsessions status demo/session-20241124-100200-ab12
    """
