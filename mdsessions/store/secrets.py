"""Redaction on the store's write path: every document and file a commit records.

:class:`~mdsessions.store.store.Store` calls :func:`redact_document` on each document before
rendering it and :func:`redact_file` on each file it commits as bytes (a person's recorded
edit, a restored version), and redacts the commit message; no other part redacts by hand.

Why a document is redacted as a model, not as rendered text: the marker
``[REDACTED:<kind>]`` starts with ``[``, which in YAML opens a list, so replacing a secret in
rendered frontmatter could change a field's type; the model's strings are redacted, the model
is validated again and rendered, so the file, the commit and the store's cache of parsed
documents all hold the same redacted text.

Why the working tree is rewritten too: the store writes what it commits to the working tree
(temp file + rename), so after a redacted save ``git status`` is clean and the
unrecorded-edits check sees no edit. A person's file (``user_feedback.md`` recorded by
``mdsessions record`` or watch mode) holding a secret is therefore rewritten in place with
the marker: their comments are otherwise kept byte for byte, the secret is not kept
anywhere by mdsessions. Leaving the secret in their file while committing the marker would
make the file differ from its commit forever (``git status`` modified, ``edits`` listing it,
every later write of that phase refused as an unrecorded edit).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mdsessions.documents.frontmatter import Document, loads
from mdsessions.errors import DocumentError, StoreError
from mdsessions.redaction import MARKER_RE, Redactor, configured

__all__ = ["redact_document", "redact_file", "store_redactor"]

_FENCE = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)
# A marker that begins a YAML plain scalar (``key: [REDACTED:x] rest`` or ``- [REDACTED:x]``),
# with the rest of its line: quoted as one single-quoted scalar.
_PLAIN_VALUE = re.compile(r"^(\s*(?:-\s+|[^:\n#'\"]+:\s+))(\[REDACTED:[a-z0-9-]+\][^\r\n]*)", re.M)


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _strings(key, out)
            _strings(item, out)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _strings(item, out)


def _redacted(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, dict):
        return {_redacted(k, redactor): _redacted(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(item, redactor) for item in value]
    if isinstance(value, tuple):
        return tuple(_redacted(item, redactor) for item in value)
    return value


def redact_document(doc: Document, redactor: Redactor, *, rel: str) -> Document:
    """The document with every secret in its fields replaced by ``[REDACTED:<kind>]``.

    Args:
        doc: A document about to be rendered.
        redactor: The store's redactor.
        rel: Its store-relative path (named in errors).

    Returns:
        ``doc`` itself when it holds no secret (or redaction is off), else a new model.

    Raises:
        DocumentError: A field that must keep a format (an id, a time) holds a secret.
    """
    if not redactor.enabled:
        return doc
    data = doc.model_dump(by_alias=True)
    texts: list[str] = []
    _strings(data, texts)
    if not redactor.spans("\n".join(texts)):
        return doc
    try:
        return type(doc).model_validate(_redacted(data, redactor))
    except ValidationError as exc:
        field = ".".join(str(part) for part in exc.errors()[0]["loc"])
        raise DocumentError(
            "must keep its format but holds what looks like a secret; pass the value without it",
            path=rel,
            field=field,
        ) from None


def _quote_plain(head: str) -> str:
    def quote(match: re.Match[str]) -> str:
        value = match.group(2).rstrip()
        return match.group(1) + "'" + value.replace("'", "''") + "'"

    return _PLAIN_VALUE.sub(quote, head)


def redact_file(data: bytes, redactor: Redactor, *, rel: str) -> bytes:
    """A file's bytes with every secret replaced by ``[REDACTED:<kind>]``.

    For a markdown document the frontmatter must still parse after the replacement: a marker
    that would begin a YAML plain scalar is quoted with the rest of its line.

    Args:
        data: The bytes about to be committed.
        redactor: The store's redactor.
        rel: The store-relative path (named in errors).

    Returns:
        ``data`` itself when it holds no secret, is binary (a NUL byte in its first 8,000
        bytes, git's rule) or redaction is off; else the new bytes.

    Raises:
        DocumentError: The document parsed before and cannot be made to parse after (the
            person is asked to remove the secret from the frontmatter by hand).
    """
    if b"\0" in data[:8000]:
        return data  # binary, as git decides: a marker would corrupt it, not hide a secret
    redacted = redactor.redact_bytes(data)
    if redacted is data or not rel.endswith(".md"):
        return redacted
    text = redacted.decode("utf-8", "surrogateescape")
    fences = list(_FENCE.finditer(text, 0, 1 << 20))
    if not text.startswith("---") or len(fences) < 2:
        return redacted
    end = fences[1].start()
    head = text[:end]
    if not MARKER_RE.search(head):
        return redacted
    try:
        loads(data.decode("utf-8"), path=rel)
    except (DocumentError, UnicodeDecodeError):
        return redacted  # it did not parse before either: committed as a file, not a document
    for candidate in (text, _quote_plain(head) + text[end:]):
        try:
            loads(candidate, path=rel)
        except DocumentError:
            continue
        return candidate.encode("utf-8", "surrogateescape")
    raise DocumentError(
        "the frontmatter holds what looks like a secret that cannot be replaced in place; "
        "remove it from the file and save again",
        path=rel,
    )


def store_redactor(path: Path, data: Mapping[str, Any]) -> Redactor:
    """The redactor of a store, from the ``[redaction]`` table of its ``mdsessions.toml``.

    Args:
        path: The ``mdsessions.toml`` file (named in errors).
        data: The parsed file.

    Returns:
        The redactor (see :func:`mdsessions.redaction.configured` for the table).

    Raises:
        StoreError: The table is invalid (the message names the key and what was expected).
    """
    try:
        return configured(data.get("redaction"), where=str(path))
    except ValueError as exc:
        raise StoreError(str(exc)) from None
