"""The document kinds and their models: one table for parsing, rendering and the store.

A document's kind is what its ``schema: mdsessions/<kind>/v1`` line names; each kind has one
pydantic model (:mod:`mdsessions.models.schema`) and one template (``<kind>.md.j2``).
"""

from __future__ import annotations

import fnmatch
from typing import Any, TypeVar

from mdsessions.models.schema import (
    AgentOutput,
    AgentPrompt,
    Checkpoint,
    DocumentKind,
    SessionManifest,
    Transcript,
    UserFeedback,
)

__all__ = [
    "EDITOR_TEMP_PATTERNS",
    "KIND_BY_MODEL",
    "MODEL_BY_KIND",
    "Document",
    "is_editor_temp",
    "kind_of",
]

Document = SessionManifest | Checkpoint | AgentOutput | UserFeedback | AgentPrompt | Transcript
"""Any document model."""

D = TypeVar("D", SessionManifest, Checkpoint, AgentOutput, UserFeedback, AgentPrompt, Transcript)

MODEL_BY_KIND: dict[DocumentKind, type[Document]] = {
    DocumentKind.SESSION_MANIFEST: SessionManifest,
    DocumentKind.CHECKPOINT: Checkpoint,
    DocumentKind.AGENT_OUTPUT: AgentOutput,
    DocumentKind.USER_FEEDBACK: UserFeedback,
    DocumentKind.PROMPT: AgentPrompt,
    DocumentKind.TRANSCRIPT: Transcript,
}
"""The model that holds each kind of document."""

KIND_BY_MODEL: dict[type[Any], DocumentKind] = {v: k for k, v in MODEL_BY_KIND.items()}
"""The kind of each document model (the inverse of :data:`MODEL_BY_KIND`)."""


def kind_of(doc: Document) -> DocumentKind:
    """Return the kind of a document model.

    Args:
        doc: A document model.

    Returns:
        Its kind, e.g. ``DocumentKind.CHECKPOINT`` for a :class:`Checkpoint`.

    Raises:
        KeyError: If ``doc`` is not one of the document models.
    """
    return KIND_BY_MODEL[type(doc)]


EDITOR_TEMP_PATTERNS: tuple[str, ...] = (
    ".*.swp",  # vim swap files (.name.swp, .swo, .swx)
    ".*.swo",
    ".*.swx",
    "*~",  # vim and emacs backups
    ".*.un~",  # vim persistent undo
    "4913",  # vim's "can I write here" probe
    ".#*",  # emacs lock links
    "#*#",  # emacs auto-saves
    "*___jb_tmp___",  # JetBrains safe write
    "*___jb_old___",
    ".*.kate-swp",  # kate swap files
)
"""Temp and backup files editors put beside the file a person edits (``fnmatch`` patterns
matched against a file's name). Never a document, nor a person's edit, in any
store; a new store's ``.gitignore`` lists them too
(:func:`mdsessions.store.config.new_store_files`)."""


def is_editor_temp(path: str) -> bool:
    """Whether a file is an editor's temp or backup file (see :data:`EDITOR_TEMP_PATTERNS`).

    Args:
        path: A file name or a ``/``-separated path (only its last part counts).

    Returns:
        True for e.g. ``.user_feedback.md.swp``, ``user_feedback.md~``, ``.#agent.md``.
    """
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in EDITOR_TEMP_PATTERNS)
