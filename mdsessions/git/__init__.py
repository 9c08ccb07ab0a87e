"""The git layer: the only package that runs git or imports GitPython.

Small verbs over one repository, behind one facade, and the parts that do the work (each
module imports only those listed before it):

- :mod:`.process`: git child processes with a clean environment (``run_git``, progress);
- :mod:`.fsutil`: new files, atomic writes and the atomic replace;
- :mod:`.lock`: the store's writer lock and run locks (``flock``);
- :mod:`.config`: the effective git configuration, cached by file ``stat``;
- :mod:`.convert`: line-end conversion as ``git add`` and ``git checkout`` do it;
- :mod:`.indexblocks`: an unsplit index's entries as compact byte blocks, resumable SHA-1;
- :mod:`.index`: the index file, read and written in-process as git would write it;
- :mod:`.objects`: object ids, trees, commit bytes, the loose-object database;
- :mod:`.refs`: refs read and moved by compare-and-swap under git's lock protocol;
- :mod:`.journal`: the crash journal, lock claims, what a process remembers of its writes;
- :mod:`.worktree`: the working tree and index as ``git add``/``git checkout`` leave them;
- :mod:`.commit`: the commit path, merge commits, fast-forwards, hooks and signing;
- :mod:`.recovery`: finishing a crashed writer's operation, putting back what racing git
  commands dropped;
- :mod:`.repo`: :class:`~.repo.GitRepo`, the facade the layers above use, and
  ``init_repository``/``find_repository``;
- :mod:`.transport`: remotes, clone, fetch, push and bundles, their output parsed;
- :mod:`.maintain`: ``fsck``, object counts, packing, the commit-graph;
- :mod:`.diff`: ``git diff`` line counts and patches limited to a folder.

Imports: :mod:`mdsessions.errors` only.
"""
