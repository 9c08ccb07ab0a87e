"""History: versions, diff, restore, fork, verify, maintenance, backups, remotes and sync.

Every function takes a :class:`~mdsessions.Store` or :class:`~mdsessions.Session` and is a
git operation underneath (DESIGN.md "History = git").

Imports: :mod:`mdsessions.store` and the layers below it.
"""

from mdsessions.history.core import *  # noqa: F403
from mdsessions.history.core import __all__ as __all__
