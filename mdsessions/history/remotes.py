"""Remotes: add, remove and list them; clone a store; push to it.

``clone`` checks out the store's branch whatever the remote's ``HEAD`` says; ``push`` pushes
the set-aside refs with the branch.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mdsessions.errors import (
    InvalidIdentifierError,
    PushRejectedError,
    StoreError,
    StoreNotFoundError,
)
from mdsessions.git import transport
from mdsessions.history.setaside import (
    SET_ASIDE_PREFIX,
    SET_ASIDE_REFSPEC,
)
from mdsessions.store.store import (
    CONFIG_FILE,
    DEFAULT_BRANCH,
    Store,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from mdsessions.history.common import _REMOTE_RE
from mdsessions.models.results import Result

__all__ = [
    "PushRejectedError",
    "PushResult",
    "Remote",
    "add_remote",
    "clone",
    "list_remotes",
    "push",
    "remotes",
    "remove_remote",
]

_log = logging.getLogger(__name__)


def _check_remote(name: str) -> str:
    if not _REMOTE_RE.fullmatch(name) or ".." in name or name.endswith((".lock", ".")):
        raise InvalidIdentifierError(
            f"invalid remote name {name!r}: expected letters, digits, '.', '_' or '-'"
        )
    return name


def add_remote(store: Store, name: str, url: str) -> None:
    """Add a git remote (``git remote add NAME URL``): a bare repository, a server, a path.

    Raises:
        InvalidIdentifierError: A bad name.
        StoreError: The remote exists already (git's message).
    """
    transport.add_remote(store.git, _check_remote(name), url)


def remove_remote(store: Store, name: str) -> None:
    """Remove a git remote and its remote-tracking refs.

    Raises:
        StoreError: No such remote.
    """
    transport.remove_remote(store.git, _check_remote(name))


def list_remotes(store: Store) -> list[Remote]:
    """The store's remotes, in git's order (``git remote -v``).

    Args:
        store: The store.

    Returns:
        Each remote's name and fetch URL.
    """
    return [Remote(name=name, url=url) for name, url in transport.list_remotes(store.git)]


def remotes(store: Store) -> dict[str, str]:
    """The store's remotes as a mapping: name → fetch URL (:func:`list_remotes`)."""
    return {remote.name: remote.url for remote in list_remotes(store)}


def _humanish(url: str) -> str:
    """The folder ``git clone`` would make for ``url`` (``…/store.git`` → ``store``)."""
    text = url.rstrip("/").removesuffix("/.git")
    name = re.split(r"[/:\\]", text)[-1].removesuffix(".git")
    return name or "store"


def _configured_branch(root: Path, commit: str) -> str | None:
    """``[store] branch`` of ``mdsessions.toml`` at ``commit`` (default ``main``).

    ``None`` when the commit has no readable ``mdsessions.toml``.
    """
    data = transport.file_at(root, commit, CONFIG_FILE)
    if data is None:
        return None
    try:
        config = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    store_cfg = config.get("store", {})
    branch = store_cfg.get("branch", DEFAULT_BRANCH) if isinstance(store_cfg, dict) else None
    return branch if isinstance(branch, str) else DEFAULT_BRANCH


def _pick_branch(root: Path, url: str, heads: Mapping[str, str], preferred: str | None) -> str:
    """The store's branch: the one ``mdsessions.toml`` names, else the one that holds it.

    Raises:
        StoreNotFoundError: The remote has no branch, or none holds ``mdsessions.toml``.
    """
    if not heads:
        raise StoreNotFoundError(
            f"{url} has no branch yet (an empty repository); on the machine that has the "
            f"store run 'mdsessions remote add origin {url}' and 'mdsessions push', then "
            "clone again"
        )
    order = [b for b in (preferred, DEFAULT_BRANCH) if b is not None and b in heads]
    order += [b for b in sorted(heads) if b not in order]
    holding = []
    for candidate in order:
        configured = _configured_branch(root, heads[candidate])
        if configured is None:
            continue
        holding.append(candidate)
        if configured in heads and _configured_branch(root, heads[configured]) is not None:
            return configured
    if holding:
        return holding[0]
    raise StoreNotFoundError(
        f"{url} holds no mdsessions store: none of its branches ({', '.join(sorted(heads))}) "
        f"has {CONFIG_FILE}"
    )


def clone(
    url: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    remote: str = "origin",
    **options: Any,
) -> Store:
    """Clone a store from any remote git understands and open it, ready to run and sync.

    The store's branch is found whatever the remote's ``HEAD`` says (a bare repository made
    with plain ``git init --bare`` names ``master``): the branch ``mdsessions.toml``
    ``[store] branch`` names (default ``main``), else the remote branch that holds
    ``mdsessions.toml``. That branch is checked out and tracks ``REMOTE/<branch>``; the
    versions other machines set aside (``refs/mdsessions/set-aside/*``) are fetched too.

    Args:
        url: Any URL git takes: a path, ``file://``, ``git://``, ``ssh://``/``host:path``,
            ``https://``.
        dest: A new (or empty) folder; default the name ``git clone`` would pick
            (``…/team-store.git`` → ``team-store``).
        remote: The name of the remote in the clone.
        **options: Passed to :class:`~mdsessions.Store`.

    Returns:
        The open store.

    Raises:
        StoreNotFoundError: The remote is empty or holds no mdsessions store (the new
            folder is removed).
        StoreError: git failed (unreachable remote, authentication), or ``dest`` is not
            empty.

    Example:
        >>> store = history.clone("git@server:team/store.git", "store")   # doctest: +SKIP
        >>> store.branch                                                   # doctest: +SKIP
        'main'
    """
    _check_remote(remote)
    target = Path(dest if dest is not None else _humanish(url)).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StoreError(f"{target} exists and is not empty; clone into a new folder")
    created = not target.exists()
    try:
        preferred = transport.clone_bare_checkout(url, target, origin=remote)
        heads = transport.remote_branches(target, remote)
        branch = _pick_branch(target, url, heads, preferred)
        transport.track_branch(target, branch, heads[branch], remote=remote, drop=preferred)
        fetched = transport.fetch(target, remote, [f"+{SET_ASIDE_REFSPEC}"])
        if not fetched.ok:
            raise StoreError(f"fetch from {remote} failed: {fetched.message}")
        return Store(target, **options)
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        elif target.is_dir():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
        raise


class PushResult(Result):
    """What :func:`push` did."""

    remote: str
    """The remote's name."""
    branch: str
    """The branch pushed, e.g. ``main``."""
    action: str
    """``created``, ``pushed`` or ``up-to-date``."""
    commit: str
    """Full id of the commit the remote's branch is at now."""
    refs: tuple[str, ...] = ()
    """Set-aside refs (``refs/mdsessions/set-aside/…``) the remote did not have and now has."""
    refs_refused: tuple[str, ...] = ()
    """Set-aside refs the remote refused (its copy points elsewhere, or the server does not
    take such refs); they stay here."""


class Remote(Result):
    """A git remote of the store."""

    name: str
    """The remote's name, e.g. ``origin``."""
    url: str
    """Its URL (a path, ``file://``, ``ssh``, ``https://`` …)."""


def push(store: Store, remote: str = "origin") -> PushResult:
    """Push the store's branch (never forced) and the set-aside refs to a remote.

    ``git push REMOTE main:main 'refs/mdsessions/set-aside/*:refs/mdsessions/set-aside/*'``:
    the versions sync set aside here become findable on every machine that pulls.

    Args:
        store: The store.
        remote: A remote name (see :func:`add_remote`).

    Returns:
        What happened.

    Raises:
        PushRejectedError: The remote has commits this store lacks (pull or sync first).
        StoreError: Any other git failure (unreachable remote, permissions).
    """
    began = time.perf_counter()
    git = store.git
    ref = git.head_ref()
    branch = ref.removeprefix("refs/heads/")
    head = git.head()
    if head is None:
        raise StoreError(f"{store.root}: nothing to push (no commit yet)")
    outcome = transport.push(git, _check_remote(remote), [f"{ref}:{ref}", SET_ASIDE_REFSPEC])
    pushed: list[str] = []
    refused: list[str] = []
    for line in outcome.lines:
        if line.target.startswith(SET_ASIDE_PREFIX):
            if line.flag == "*":
                pushed.append(line.target)
            elif line.flag == "!":
                refused.append(line.target)
    mine = outcome.line_for(ref)
    if mine is None:
        raise StoreError(f"push to {remote} failed: {outcome.stderr or outcome.stdout.strip()}")
    flag = mine.flag
    if flag == "!":
        raise PushRejectedError(
            f"push to {remote} rejected: {remote}/{branch} has commits this store does "
            f"not have; run 'mdsessions pull {remote}' (or 'mdsessions sync {remote}') "
            f"first ({mine.summary})"
        )
    action = {"*": "created", "=": "up-to-date"}.get(flag, "pushed")
    if _log.isEnabledFor(logging.INFO):
        ms = round((time.perf_counter() - began) * 1000, 1)
        _log.info(
            "push %s/%s: %s (%.1f ms)",
            remote,
            branch,
            action,
            ms,
            extra={"operation": "push", "remote": remote, "action": action, "commit": head}
            | {"refs": len(pushed), "refs_refused": len(refused), "duration_ms": ms},
        )
    return PushResult(
        remote=remote,
        branch=branch,
        action=action,
        commit=head,
        refs=tuple(pushed),
        refs_refused=tuple(refused),
    )
