"""The document kinds and their models: one table for parsing, rendering and the store.

A document's kind is what its ``schema: mdsessions/<kind>/v1`` line names; each kind has one
pydantic model (:mod:`mdsessions.models.schema`) and one template (``<kind>.md.j2``).
"""

from __future__ import annotations

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

__all__ = ["KIND_BY_MODEL", "MODEL_BY_KIND", "Document", "kind_of"]

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
