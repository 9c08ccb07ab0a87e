"""The store: the public ``Store`` and ``Session`` API over one git repository.

Every public write is one commit or nothing (DESIGN.md "The store", "Commits").

One job per module:

* :mod:`.store` — :class:`~mdsessions.store.store.Store`: open/init, reading and rendering
  documents, committing, sessions and the review inbox;
* :mod:`.session` — :class:`~mdsessions.store.session.Session`: one session's reads and saves;
* :mod:`.paths` — the layout: file names, folders, ids, document names;
* :mod:`.commits` — the commit message format (subject, body, ``Mdsessions-*`` trailers);
* :mod:`.writes` — planned writes: render before the lock, re-plan when the session changed;
* :mod:`.outputs` — agent outputs and a checkpoint's agent table from a runner's values;
* :mod:`.edits` — people's unrecorded edits, and recording them;
* :mod:`.integrity` — a session's documents and manifest checked against each other;
* :mod:`.workflows` — the workflows a store finds by name, registered when used;
* :mod:`.checks` — values checked on their way in (fields, statuses, bytes → text);
* :mod:`.config` — ``mdsessions.toml``: read, edit a key in place, merge key by key.

The session status rules the writes apply are :mod:`mdsessions.models.state`.

Imports: :mod:`mdsessions.cache`, :mod:`mdsessions.documents`, :mod:`mdsessions.models`,
:mod:`mdsessions.git`, :mod:`mdsessions.errors`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Session", "Store"]

_WHERE = {"Session": "session", "Store": "store"}


def __getattr__(name: str) -> Any:
    # Imported on first use (PEP 562), so importing one module of the package stays light.
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mdsessions.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from mdsessions.store.session import Session
    from mdsessions.store.store import Store
