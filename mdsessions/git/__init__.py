"""The git layer: the only package that runs git or imports GitPython.

Small verbs over one repository (:mod:`.repo`): read and write objects, move refs under
git's own lock protocol, the journal that makes a commit atomic and recoverable, the index
file (:mod:`.index`), line-end conversion as ``git add`` does it (:mod:`.convert`), atomic
file writes (:mod:`.fsutil`) and the store's writer lock (:mod:`.lock`).

Imports: :mod:`mdsessions.errors` only.
"""
