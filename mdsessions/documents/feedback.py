"""A feedback file says each fact once: its body must not contradict its frontmatter.

Today's ``user_feedback.md`` (``templates/user_feedback.md.j2``) holds the decision only in
its frontmatter (``approved``, ``action``, ``requested_changes``); the body holds the title,
the links to the outputs and the reviewer's comments. Files written before issue 16 repeat
the decision in the body (``## Review Status``, ``## Requested Changes``,
``## Action Taken``). Such a file still reads (:func:`mdsessions.documents.frontmatter.loads`),
but a person's edit of it that leaves the two saying different things (``- `` lines under
``## Requested Changes`` while ``requested_changes: []``; ``- Approved: false`` under
``approved: true``) is not recorded: :func:`check_feedback_agrees` names the line and what
to do, and every frontmatter reader (gray-matter, Obsidian, python-frontmatter) then sees
what the reviewer meant.
"""

from __future__ import annotations

import re
from typing import Any

from mdsessions.documents.frontmatter import (
    _load_yaml,
    is_old_feedback_body,
    requested_changes_in_body,
    split,
)
from mdsessions.errors import DocumentError
from mdsessions.models.schema import FeedbackAction

__all__ = ["check_feedback_agrees", "requested_changes_in_body"]


def _as_list(value: Any) -> list[str] | None:
    """The frontmatter's ``requested_changes`` as the model reads it (``None``: not text)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value]
    return None  # not a list of text: the model's own validation names it


def check_feedback_agrees(text: str, path: str | None = None) -> None:
    """Refuse a feedback file whose body contradicts its frontmatter.

    Checked: the ``- `` lines of a ``## Requested Changes`` section in the body against the
    frontmatter's ``requested_changes``; in a file of the old layout, the body's
    ``- Approved:`` and ``- Action:`` lines against ``approved`` and ``action``. A file of
    today's layout with no such section always agrees.

    Args:
        text: The whole file (call after :func:`mdsessions.documents.frontmatter.loads`).
        path: The store-relative file name, for the error.

    Raises:
        DocumentError: Naming the file, the body's line at fault, the field, and how to fix it.
    """
    yaml_text, body, body_line = split(text, path)
    data = _load_yaml(yaml_text, path)

    def line(offset: int) -> int:
        return body_line + body.count("\n", 0, offset)

    listed = requested_changes_in_body(body)
    wanted = _as_list(data.get("requested_changes"))
    if listed is not None and wanted is not None and listed[0] != wanted:
        changes, _heading_at, first = listed
        raise DocumentError(
            f"the body lists {len(changes)} requested change(s) under '## Requested Changes' "
            f"({changes!r}) but the frontmatter's requested_changes is {wanted!r}; frontmatter "
            "readers see only the frontmatter: put each change on a '- ' line right under "
            "'requested_changes:' (quote one holding ': ' or ' #') and delete the "
            "'## Requested Changes' section",
            path=path,
            line=line(first),
            field="requested_changes",
        )
    if not is_old_feedback_body(body):
        return
    for label, key in (("Approved", "approved"), ("Action", "action")):
        found = list(re.finditer(rf"^- {label}:[ \t]*(.*?)[ \t]*\r?$", body, re.MULTILINE))
        if len(found) != 1:
            continue
        said = found[0].group(1)
        value = data.get(key)
        try:
            if key == "approved":
                agrees = said.lower() == ("true" if value is True else "false")
                expected = "true" if value is True else "false"
            else:
                agrees = FeedbackAction.parse(said) is FeedbackAction.parse(value)
                expected = FeedbackAction.parse(value).value
        except ValueError:
            continue  # the frontmatter's own value is wrong: the model's validation names it
        if not agrees:
            raise DocumentError(
                f"the body's '- {label}: {said}' disagrees with the frontmatter's "
                f"'{key}: {expected}'; the frontmatter decides: set this line to "
                f"'- {label}: {expected}' or delete the body's '## Review Status' and "
                "'## Action Taken' sections",
                path=path,
                line=line(found[0].start()),
                field=key,
            )
