"""Values checked on their way into the store: a caller's fields, a status, a file's bytes.

Each check turns a bad value into a :class:`~mdsessions.errors.DocumentError` that names what
is wrong and where: the field (``status``, ``agents.0.cost``) or the file and line.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from mdsessions.documents.frontmatter import decode
from mdsessions.errors import DocumentError
from mdsessions.models.schema import (
    AgentOutput,
    AgentPrompt,
    AgentRun,
    Checkpoint,
    PhaseStatus,
    SessionManifest,
    UserFeedback,
)

__all__ = ["D", "build", "build_status", "decode"]

D = TypeVar("D", SessionManifest, Checkpoint, AgentOutput, UserFeedback, AgentPrompt)
"""A document model the store reads and writes."""

M = TypeVar("M", SessionManifest, AgentOutput, Checkpoint, UserFeedback, AgentRun, AgentPrompt)


def build(model_cls: type[M], /, **fields: Any) -> M:
    """Validate keyword fields into a model.

    Args:
        model_cls: The model (a document, or an agent run of a checkpoint).
        **fields: Its fields.

    Returns:
        The model.

    Raises:
        DocumentError: Naming the first bad field, the reason and the value given.
    """
    try:
        return model_cls.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        got = f" (got {first['input']!r})" if "input" in first else ""
        raise DocumentError(f"{first.get('msg', 'invalid value')}{got}", field=field) from None


def build_status(value: PhaseStatus | str) -> PhaseStatus:
    """A status a caller may save (``stale`` is the store's own verdict, never saved).

    Args:
        value: A :class:`PhaseStatus` or its value (``"completed"`` …).

    Returns:
        The status.

    Raises:
        DocumentError: For ``stale`` or an unknown value, listing the accepted ones.
    """
    allowed = [s for s in PhaseStatus if s is not PhaseStatus.STALE]
    try:
        status = value if isinstance(value, PhaseStatus) else PhaseStatus(str(value))
    except ValueError:
        status = None
    if status not in allowed:
        raise DocumentError(
            f"invalid status {value!r}; expected one of " + ", ".join(s.value for s in allowed),
            field="status",
        )
    return status
