"""The links between a session's documents: what their templates need to write them.

Documents link to each other with relative markdown links, in their bodies only (the
frontmatter never changes for them): the manifest's phase table links each phase's
``checkpoint.md``, a checkpoint links its outputs and its ``user_feedback.md``, and a
feedback file's ``## Outputs`` lists the outputs under review. Which of those files exist
is not part of a document's model, so the templates receive it as context
(``checkpoints``, ``feedback``, ``outputs``: see :mod:`mdsessions.documents.templates`),
computed here from the files of the write and, for the others, the working tree.

Links are written, never read: the parsers read what people write (older files without
links included) exactly as before.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mdsessions.documents.frontmatter import loads
from mdsessions.errors import DocumentError
from mdsessions.models.schema import Checkpoint, SessionManifest, UserFeedback
from mdsessions.store.paths import CHECKPOINT, FEEDBACK

if TYPE_CHECKING:
    from mdsessions.store.store import Store

__all__ = ["link_contexts", "output_files", "render_session", "store_contexts"]

Exists = Callable[[str], bool]
ReadCheckpoint = Callable[[str], "Checkpoint | None"]


def _nothing(_rel: str) -> None:
    return None


def link_contexts(
    files: Mapping[str, Any],
    given: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    exists: Exists = lambda _rel: False,
    read_checkpoint: ReadCheckpoint = _nothing,
) -> dict[str, dict[str, Any]]:
    """The template context of every manifest, checkpoint and feedback among ``files``.

    Args:
        files: Path → document, raw bytes or ``None`` (deleted), as a write commits them; the
            paths share one base (store-relative, or relative to a session folder).
        given: Context the caller passes already (e.g. ``next_name``); it wins over ours.
        exists: Whether a path that is not among ``files`` exists (default: no).
        read_checkpoint: The checkpoint at a path that is not among ``files``, or ``None``.

    Returns:
        Path → template variables (the given ones for the other paths, unchanged).
    """
    out = {rel: dict(context) for rel, context in (given or {}).items()}

    def present(rel: str) -> bool:
        return files[rel] is not None if rel in files else exists(rel)

    def checkpoint(rel: str) -> Checkpoint | None:
        if rel not in files:
            return read_checkpoint(rel)
        value = files[rel]
        if isinstance(value, bytes):
            try:
                parsed = loads(value.decode("utf-8"), path=rel)
            except (DocumentError, UnicodeDecodeError):
                return None
            return parsed if isinstance(parsed, Checkpoint) else None
        return value if isinstance(value, Checkpoint) else None

    for rel, doc in files.items():
        folder = posixpath.dirname(rel)
        auto: dict[str, Any]
        if isinstance(doc, SessionManifest):
            auto = {
                "checkpoints": [
                    p.directory
                    for p in doc.phases
                    if present(posixpath.join(folder, p.directory, CHECKPOINT))
                ]
            }
        elif isinstance(doc, Checkpoint):
            auto = {"feedback": FEEDBACK if present(posixpath.join(folder, FEEDBACK)) else ""}
        elif isinstance(doc, UserFeedback):
            found = checkpoint(posixpath.join(folder, CHECKPOINT))
            auto = {"outputs": output_files(found) if found is not None else []}
        else:
            continue
        out[rel] = {**auto, **out.get(rel, {})}
    return out


def output_files(checkpoint: Checkpoint) -> list[str]:
    """The output files a checkpoint lists, relative to its phase folder, in its order."""
    return [a.output_file or f"{a.agent_name}.md" for a in checkpoint.agents]


def store_contexts(
    store: Store,
    files: Mapping[str, Any],
    given: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`link_contexts` for a write to ``store``: other files as in its working tree."""

    def read_checkpoint(rel: str) -> Checkpoint | None:
        try:
            return store.read_doc(rel, Checkpoint)
        except (FileNotFoundError, DocumentError):
            return None

    return link_contexts(
        files,
        given,
        exists=lambda rel: (store.root / rel).is_file(),
        read_checkpoint=read_checkpoint,
    )


def render_session(
    store: Store, docs: Mapping[str, Any], phase_names: Mapping[int, str]
) -> dict[str, bytes]:
    """Render every document of one whole session (a fork, an import) with its links.

    Args:
        store: The store whose templates render.
        docs: Path → document: all of the session's documents, so links need no disk.
        phase_names: Phase number → name (a checkpoint's "Next Phase" line).

    Returns:
        Path → rendered bytes, in the order of ``docs``.
    """
    contexts = link_contexts(docs)
    out: dict[str, bytes] = {}
    for rel, doc in docs.items():
        context = contexts.get(rel, {})
        if isinstance(doc, Checkpoint):
            context["next_name"] = phase_names.get(doc.next_phase, "") if doc.next_phase else ""
        out[rel] = store.render(doc, **context)
    return out
