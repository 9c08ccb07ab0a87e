"""Shell completion of session names (click's completion; issue 14 item 7).

click completes commands and options by itself; this module adds session names to every
argument named ``session_ref`` (``SESSION`` in the help of ``status``, ``show``, ``run`` …):
:func:`complete_sessions_everywhere` gives each such argument the :class:`SessionName`
type, which accepts any text (the library resolves it: :meth:`mdsessions.Store.find_session`)
and completes from :meth:`mdsessions.Store.session_names`. Turning completion on is one
line in the shell's startup file (README "Shell completion")::

    eval "$(_MDSESSIONS_COMPLETE=bash_source mdsessions)"    # ~/.bashrc
    eval "$(_MDSESSIONS_COMPLETE=zsh_source mdsessions)"     # ~/.zshrc
    _MDSESSIONS_COMPLETE=fish_source mdsessions | source     # fish: completions/mdsessions.fish
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import CompletionItem

from mdsessions.cli.app import store_path

__all__ = ["SESSION_NAME", "SessionName", "complete_sessions_everywhere"]

#: The name of the arguments that take a session (``SESSION`` in ``--help``).
SESSION_ARGUMENT = "session_ref"


class SessionName(click.ParamType):  # type: ignore[type-arg]  # click 8.2+ is generic
    """A session name (``PROJECT/SESSION``, ``PROJECT/latest``, an id or a unique prefix).

    Converts nothing (the library resolves names and reports close matches); completes the
    names of the store given by ``--store``, ``$MDSESSIONS_STORE`` or the current folder.
    """

    name = "session"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Return the text as given."""
        return value

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        """Session names that start with ``incomplete`` (none when there is no store)."""
        from mdsessions import MdsessionsError, Store

        path = store_path(ctx) or os.environ.get("MDSESSIONS_STORE") or "."
        try:
            with Store.open(path) as store:
                names = store.session_names(incomplete)
        except (MdsessionsError, OSError):
            return []
        return [CompletionItem(name) for name in names]


SESSION_NAME = SessionName()


def complete_sessions_everywhere(group: click.Group) -> None:
    """Give every ``session_ref`` argument of ``group`` (and its sub-groups) completion.

    Args:
        group: The command group; its commands are changed in place.
    """
    for command in group.commands.values():
        if isinstance(command, click.Group):
            complete_sessions_everywhere(command)
            continue
        for param in command.params:
            if isinstance(param, click.Argument) and param.name == SESSION_ARGUMENT:
                param.type = SESSION_NAME
