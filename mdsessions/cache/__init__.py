"""Caches: rebuildable indexes over the store (session listing, commit log).

Every file here can be deleted at any time; it is rebuilt from git and the work tree and
validated against them on each read.

Imports: :mod:`mdsessions.documents`, :mod:`mdsessions.models`, :mod:`mdsessions.git`,
:mod:`mdsessions.errors`.
"""
