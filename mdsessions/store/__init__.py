"""The store: the public ``Store`` and ``Session`` API over one git repository.

Every public write is one commit or nothing (DESIGN.md "The store", "Commits").

Imports: :mod:`mdsessions.cache`, :mod:`mdsessions.documents`, :mod:`mdsessions.models`,
:mod:`mdsessions.git`, :mod:`mdsessions.errors`.
"""
