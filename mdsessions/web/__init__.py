"""The review desk: a local web page over a store (``mdsessions serve``, extra ``mdsessions[web]``).

The page reads the store and writes nothing of its own: every decision made on it is the same
``user_feedback.md`` edit and the same commit an editor review makes (:func:`mdsessions.decide`).
There is no database and no session state on the server; git is the truth, as everywhere.

Modules: :mod:`~mdsessions.web.app` (the Starlette application), :mod:`~mdsessions.web.security`
(bind rules, token, CSRF, Host check, headers), :mod:`~mdsessions.web.render` (templates and the
markdown sanitizer), :mod:`~mdsessions.web.review` (inbox, phase page, decisions, live events)
and :mod:`~mdsessions.web.pages` (session page, documents at a version, diffs, search).
"""

from __future__ import annotations

__all__: list[str] = []
