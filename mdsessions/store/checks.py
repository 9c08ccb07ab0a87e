"""Values checked on their way into the store: a caller's fields, a status, a file's bytes.

Each check turns a bad value into a :class:`~mdsessions.errors.DocumentError` that names what
is wrong and where: the field (``status``, ``agents.0.cost``) or the file and line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from mdsessions.documents.frontmatter import decode, load_as
from mdsessions.errors import DocumentError
from mdsessions.models.schema import (
    AgentOutput,
    AgentPrompt,
    AgentRun,
    Checkpoint,
    PhaseStatus,
    SessionManifest,
    Transcript,
    TranscriptEntry,
    UserFeedback,
)

__all__ = ["D", "build", "build_status", "decode"]

D = TypeVar("D", SessionManifest, Checkpoint, AgentOutput, UserFeedback, AgentPrompt, Transcript)
"""A document model the store reads and writes."""

M = TypeVar(
    "M",
    SessionManifest,
    AgentOutput,
    Checkpoint,
    UserFeedback,
    AgentRun,
    AgentPrompt,
    Transcript,
    TranscriptEntry,
)


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


#: Pauses (seconds) before reading a document that did not parse again, to tell a file
#: torn by a racing ``git checkout``/``stash`` (it changes meanwhile) from an invalid one.
_REREAD_WAITS = (0.01, 0.03, 0.1)


def parse_rereading(
    rel: str, data: bytes, model: type[D], read: Callable[[str], bytes]
) -> tuple[bytes, D]:
    """Parse ``data`` (the working-tree file ``rel``) as ``model``, reading it again while torn.

    git checkout, reset and stash write working-tree files in place: a read racing one sees
    a torn file. A file that changes while we look is read again (up to three short pauses,
    0.14 s in all); one that stays the same is really invalid.

    Args:
        rel: The store-relative path (named in errors).
        data: The bytes read.
        model: The document model.
        read: Reads ``rel`` again.

    Returns:
        The bytes that parsed and the document.

    Raises:
        DocumentError: The file does not parse or validate (and did not change meanwhile).
        FileNotFoundError: It disappeared meanwhile.
    """
    for wait in _REREAD_WAITS:
        try:
            return data, load_as(model, decode(data, rel), path=rel)
        except DocumentError:
            time.sleep(wait)
            again = read(rel)
            if again == data:
                raise
            data = again
    return data, load_as(model, decode(data, rel), path=rel)
