"""The store's layout: file names, folders, ids, and where a session's documents live.

Layout (seed 003; DESIGN.md "The store")::

    mdsessions.toml                                  the store's configuration (tracked)
    workflows/{name}.toml                            copies of workflows registered from outside
    {projects_dir}/{project_id}/sessions/{session_id}/
    {projects_dir}/{project_id}/archive/{session_id}/   an archived session (same files)
        session_manifest.md
        phase_{N}_{slug}/checkpoint.md · {agent}.md … · user_feedback.md
        phase_{N}_{slug}/prompts/{agent}.md          the prompt each agent was given
        transcripts/{name}.md                        an agent's (or the session's) messages

Every id is checked (:func:`check_id`) before it becomes part of a path, so a path built from
ids stays inside the store.
"""

from __future__ import annotations

import re

from mdsessions.errors import InvalidIdentifierError
from mdsessions.models.schema import ID_PATTERN

__all__ = [
    "ARCHIVE_DIR",
    "BRANCH_RE",
    "CHECKPOINT",
    "CONFIG_FILE",
    "DEFAULT_BRANCH",
    "FEEDBACK",
    "MANIFEST",
    "PROMPTS_DIR",
    "TRANSCRIPTS_DIR",
    "WORKFLOWS_DIR",
    "check_id",
    "document_file",
]

#: The folder of a project's archived sessions, beside its ``sessions/`` folder.
ARCHIVE_DIR = "archive"
#: The store's configuration at its root (tracked in git).
CONFIG_FILE = "mdsessions.toml"
#: A session's manifest, in the session folder.
MANIFEST = "session_manifest.md"
#: A phase's checkpoint, in the phase folder.
CHECKPOINT = "checkpoint.md"
#: A phase's user feedback, in the phase folder.
FEEDBACK = "user_feedback.md"
#: The folder of a phase that holds the prompt each agent was given (``{agent}.md``).
PROMPTS_DIR = "prompts"
#: The folder of a session that holds its transcripts (``{name}.md``: an agent id or ``session``).
TRANSCRIPTS_DIR = "transcripts"
#: The branch a new store is created on and writes to (``[store] branch``).
DEFAULT_BRANCH = "main"
#: Store-relative folder holding copies of workflow files registered from outside the store
#: (``workflows/<name>.toml``), so every clone can resume every session.
WORKFLOWS_DIR = "workflows"
#: A branch name the ``[store] branch`` setting accepts (a plain name such as ``main``).
BRANCH_RE = re.compile(r"(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<![./])")


def check_id(value: str, what: str) -> str:
    """Validate a project, session or agent id.

    Args:
        value: The id.
        what: ``"project id"``, ``"session id"`` or ``"agent id"`` for the message.

    Returns:
        The id unchanged.

    Raises:
        InvalidIdentifierError: Naming the argument and the expected form.
    """
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value) or ".." in value:
        raise InvalidIdentifierError(
            f"invalid {what} {value!r}: expected 1-128 characters of letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (no '/', no '..', no leading dot)"
        )
    return value


def document_file(document: str | None = None) -> str:
    """The file name, in a phase folder, of a document named the way people name it.

    Args:
        document: ``"checkpoint"`` (also the default), ``"feedback"`` or
            ``"user_feedback"``, or an agent id (with or without ``.md``).

    Returns:
        ``checkpoint.md``, ``user_feedback.md`` or ``{agent}.md``.

    Raises:
        InvalidIdentifierError: If ``document`` is none of these (e.g. a path).
    """
    name = document or "checkpoint"
    if name in ("feedback", "user_feedback"):
        return FEEDBACK
    if name == "checkpoint":
        return CHECKPOINT
    if name.endswith(".md"):
        name = name[:-3]
    if not ID_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidIdentifierError(
            f"invalid document {document!r}: expected checkpoint, feedback or an agent id "
            "(a file name in the phase folder)"
        )
    return f"{name}.md"
