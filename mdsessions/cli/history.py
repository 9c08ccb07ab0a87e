"""The commands over :mod:`mdsessions.history`, in the order ``mdsessions --help`` lists them.

``versions``, ``diff``, ``restore``, ``fork`` (:mod:`.versions`), ``export``, ``import``
(:mod:`.exchange`), ``archive``, ``unarchive``, ``delete``, ``cleanup`` (:mod:`.retention`),
``backup`` (:mod:`.backup`),
``remote``, ``clone``, ``push``, ``pull``, ``sync``, ``set-aside`` (:mod:`.remote`),
``verify`` and ``maintenance`` (:mod:`.maintenance`). ``mdsessions.cli`` registers them on the
``mdsessions`` group; :func:`register` adds them to any other group.
"""

from __future__ import annotations

import click

from mdsessions.cli.backup import backup_group
from mdsessions.cli.exchange import export_command, import_command
from mdsessions.cli.maintenance import maintenance_command, verify_command
from mdsessions.cli.remote import (
    clone_command,
    pull_command,
    push_command,
    remote_group,
    set_aside_command,
    sync_command,
)
from mdsessions.cli.retention import (
    archive_command,
    cleanup_command,
    delete_command,
    unarchive_command,
)
from mdsessions.cli.versions import diff_command, fork_command, restore_command, versions_command

__all__ = ["COMMANDS", "register"]

COMMANDS: tuple[click.Command, ...] = (
    versions_command,
    diff_command,
    restore_command,
    fork_command,
    export_command,
    import_command,
    archive_command,
    unarchive_command,
    delete_command,
    cleanup_command,
    backup_group,
    remote_group,
    clone_command,
    push_command,
    pull_command,
    sync_command,
    set_aside_command,
    verify_command,
    maintenance_command,
)
"""The history commands, in their ``--help`` order."""


def register(group: click.Group) -> None:
    """Add the history commands to a group (again: replacing them).

    Args:
        group: The group, e.g. ``mdsessions.cli.cli``.

    Example:
        ::

            from mdsessions.cli.history import register
            register(cli)
    """
    for command in COMMANDS:
        group.add_command(command)
