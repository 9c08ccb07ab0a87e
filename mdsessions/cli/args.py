"""Command-line arguments turned into what the library takes: texts and paths.

Imports: :mod:`click` and, for types only, the public API.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mdsessions.cli.app import fail

if TYPE_CHECKING:
    from mdsessions import Store

__all__ = [
    "inside",
    "read_input",
    "store_rel",
    "text_or_file",
]


def read_input(source: str) -> str:
    """Read a file (``-`` for stdin) as bytes and decode UTF-8 without translating newlines.

    Args:
        source: A path, or ``-``.

    Returns:
        The text, CRLF and all, exactly as stored.

    Raises:
        CommandError: If it is not valid UTF-8 (naming the file, byte and line).
        OSError: If the file cannot be read.
    """
    name = "<stdin>" if source == "-" else source
    with click.open_file(source, "rb") as stream:
        data: bytes = stream.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        fail(f"{name}: not valid UTF-8 (byte {exc.start}, line {line})")


def text_or_file(text: str | None, path: str | None, option: str) -> str | None:
    """The value of a ``--X TEXT`` / ``--X-file FILE`` pair (at most one may be given).

    Args:
        text: The ``--X`` value.
        path: The ``--X-file`` value (``-`` for stdin).
        option: ``X``, for the usage error.

    Returns:
        The text, the file's text, or ``None`` when neither is given.

    Raises:
        click.UsageError: If both are given.
    """
    if text is not None and path is not None:
        raise click.UsageError(f"give --{option} or --{option}-file, not both")
    if path is not None:
        return read_input(path)
    return text


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or below it (both absolute, already normalised)."""
    return path == root or root in path.parents


def store_rel(store: Store, path: str) -> str:
    """A path given on the command line as a store-relative ``/`` path.

    Relative paths are taken from the current folder when it is inside the store, else from
    the store's root (so ``--store S record projects/…`` works from anywhere).

    Args:
        store: The store.
        path: The path as given.

    Returns:
        The store-relative path.

    Raises:
        CommandError: If the path is outside the store.
    """
    given = Path(path)
    if not given.is_absolute():
        cwd = Path.cwd().resolve()
        given = (cwd if inside(cwd, store.root) else store.root) / given
    resolved = Path(os.path.normpath(given.absolute()))
    if not inside(resolved, store.root):
        real = resolved.resolve()
        if not inside(real, store.root):
            fail(f"{path}: not inside the store {store.root}")
        resolved = real
    return resolved.relative_to(store.root).as_posix()
