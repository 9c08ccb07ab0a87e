"""The review desk: a local web page over a store (``mdsessions serve``, extra ``mdsessions[web]``).

The page reads the store and writes nothing of its own: every decision made on it is the same
``user_feedback.md`` edit and the same commit an editor review makes (:func:`mdsessions.decide`).
There is no database and no session state on the server; git is the truth, as everywhere.

Modules: :mod:`~mdsessions.web.app` (the Starlette application), :mod:`~mdsessions.web.security`
(bind rules, token, CSRF, Host check, headers), :mod:`~mdsessions.web.render` (templates and the
markdown sanitizer), :mod:`~mdsessions.web.review` (inbox, phase page, decisions, ``/events``),
:mod:`~mdsessions.web.live` (the store's changes as server-sent events) and
:mod:`~mdsessions.web.pages` (session page, documents at a version, diffs, search).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["ChangeFeed", "create_app", "needs_token", "new_secret"]

# What ``mdsessions serve`` (the CLI) uses, imported lazily (PEP 562) like ``mdsessions``.
_WHERE = {
    "ChangeFeed": "live",
    "create_app": "app",
    "needs_token": "security",
    "new_secret": "security",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mdsessions.web' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


if TYPE_CHECKING:
    from mdsessions.web.app import create_app
    from mdsessions.web.live import ChangeFeed
    from mdsessions.web.security import needs_token, new_secret
