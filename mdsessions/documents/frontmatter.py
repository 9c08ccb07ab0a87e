"""Frontmatter I/O: documents to markdown text and back, mirroring ``json``.

:func:`dumps` turns a model into markdown text, :func:`loads` turns text back into the model,
and ``loads(dumps(doc)) == doc`` for every valid model.

The frontmatter goes through python-frontmatter's handler interface: :class:`StrictYAMLHandler`
is a ``frontmatter.default_handlers.YAMLHandler`` whose ``split`` finds the ``---`` fences,
``load`` is the strict reader of :mod:`mdsessions.documents.yaml` (no aliases, no duplicate
keys, size and depth limits, errors naming the file's line) and ``export`` the deterministic
emitter. Passed to python-frontmatter (``frontmatter.loads(text, handler=StrictYAMLHandler())``)
it reads the metadata as :func:`loads` does.

File formats (seed 003, extended with YAML frontmatter carrying ``schema``):

* ``session_manifest.md`` — Metadata, Phase Status table, Current Phase, Metrics, Notes.
* ``checkpoint.md`` — Metadata, Agents in Phase, Inputs, Outputs, Metrics, Next Phase, Notes.
* ``{agent}.md`` — Metadata, Execution Details, then ``## Output`` and the agent's content
  verbatim to the end of the file.
* ``user_feedback.md`` — the decision in the frontmatter (``approved``, ``action``,
  ``requested_changes`` last, as ``- `` lines), then Outputs (links) and User Comments
  (verbatim, to the end of the file). Files written before 0.3 repeat the decision in the
  body (Review Status, Requested Changes, Action Taken) and still read.

Content that is not ours (agent output, a person's comments and notes) is passed to the
template as data: it is never evaluated as a template and round-trips byte for byte.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mdsessions.documents import yaml as _yaml
from mdsessions.documents.kinds import KIND_BY_MODEL, MODEL_BY_KIND, D, Document, kind_of
from mdsessions.documents.templates import Renderer, package_template_dir
from mdsessions.errors import DocumentError
from mdsessions.models.schema import DocumentKind, UserFeedback

if TYPE_CHECKING:
    from frontmatter import Post

__all__ = [
    "Document",
    "decode",
    "Renderer",
    "StrictYAMLHandler",  # noqa: F822 (made on first access: see __getattr__)
    "dumps",
    "kind_of",
    "load_as",
    "loads",
    "package_template_dir",
    "requested_changes_in_body",
    "split",
]

SCHEMA_RE = re.compile(r"mdsessions/([a-z_]+)/v(\d+)")

_FENCE = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)


# --------------------------------------------------------------------------------------------
# the frontmatter: split, read, written
# --------------------------------------------------------------------------------------------


def split(text: str, path: str | None = None) -> tuple[str, str, int]:
    """Split a document into its frontmatter YAML and its body.

    The first line must be a ``---`` fence (after an optional byte-order mark; trailing
    blanks and a CRLF line end allowed), the next such line closes the frontmatter; the
    body is everything after it, exactly as written.

    Args:
        text: The whole file.
        path: The file name, for error messages.

    Returns:
        ``(yaml_text, body, body_first_line)``; ``body_first_line`` is 1-based.

    Raises:
        DocumentError: If the text does not open with a ``---`` line or never closes it.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    first = _FENCE.match(text)
    if first is None or first.start() != 0:
        raise DocumentError(
            "expected the file to start with a '---' line opening the YAML frontmatter",
            path=path,
            line=1,
        )
    start = first.end() + 1
    closing = _closing_fence(text, start) if start <= len(text) else None
    if closing is None:
        body_line = _body_start(text[start:] if start <= len(text) else "")
        if body_line is None:
            raise DocumentError(
                "no closing '---' line for the YAML frontmatter opened by the '---' on line 1",
                path=path,
                line=1,
            )
        raise DocumentError(
            "missing the closing '---' line of the YAML frontmatter opened on line 1: the "
            f"body seems to start here; put a '---' line before line {body_line}",
            path=path,
            line=body_line,
        )
    yaml_text = text[start : closing.start()]
    body = text[closing.end() + 1 :] if closing.end() < len(text) else ""
    body_line = text.count("\n", 0, closing.end()) + 2
    return yaml_text, body, body_line


def _closing_fence(text: str, start: int) -> re.Match[str] | None:
    """``_FENCE.search(text, start)`` (``start`` at a line start), found by ``str.find``.

    The multi-line pattern tries every position of the frontmatter; only lines that start
    with ``---`` can match, and ``str.find`` finds those ~20x faster.
    """
    pos = start
    while True:
        if text.startswith("---", pos):
            found = _FENCE.match(text, pos)
            if found is not None:
                return found
        pos = text.find("\n---", pos)
        if pos < 0:
            return None
        pos += 1


_YAML_KEY = re.compile(r"""(?:[^\s#'"\-?:][^:\n]*|"[^"\n]*"|'[^'\n]*')[ \t]*:(?:[ \t]|\r?$)""")
_MD_HEADING = re.compile(r"#{1,6}[ \t]+\S")


def _body_start(yaml_text: str, *, strict: bool = False) -> int | None:
    """Where the body of a document seems to start when its closing ``---`` is missing.

    The first markdown heading (``# Title``) after the frontmatter's first ``key: value``
    line, else the first line after one that YAML would not read as part of the mapping
    (not a key, an indented or ``- `` continuation, a comment or a blank). A heading before
    the first key is a YAML comment (the feedback template writes its instructions so).

    Args:
        yaml_text: What follows the opening ``---`` line (the file's line 2 on).
        strict: Only a heading followed by a blank line (as every template writes its
            title) counts: the text did parse up to a ``---``, so a line without ``:`` is
            more likely a typo in the frontmatter than the start of the body.

    Returns:
        The file's 1-based line number, or ``None`` when nothing looks like a body.
    """
    seen_key = False
    lines = yaml_text.split("\n")
    for number, line in enumerate(lines, 2):
        if _YAML_KEY.match(line):
            seen_key = True
        elif not seen_key or not line.strip() or line[0] in " \t":
            continue
        elif _MD_HEADING.match(line):
            after = lines[number - 1] if number - 1 < len(lines) else ""
            if not strict or not after.strip():
                return number
        elif not strict and (not line.startswith(("#", "- ")) or line.rstrip() == "-"):
            return number
    return None


def _no_options(kwargs: dict[str, object]) -> None:
    if kwargs:
        raise TypeError(f"StrictYAMLHandler takes no options, got {', '.join(sorted(kwargs))}")


def _load_yaml(fm: str, path: str | None) -> dict[str, Any]:
    """Read the frontmatter YAML strictly (see :func:`mdsessions.documents.yaml.load`).

    Raises:
        DocumentError: For YAML that does not parse or is refused (an alias, a duplicate
            key, too large, too deep), naming the file's line, or that is not a mapping.
    """
    try:
        data = _yaml.load(fm)
    except _yaml.YAMLSyntaxError as exc:
        line = exc.line + 1 if exc.line is not None else None  # + the opening '---' line
        body_line = _body_start(fm, strict=True)
        if body_line is not None and (line is None or body_line <= line):
            # A '---' further down (a markdown rule in the body) closed the frontmatter: the
            # error is the body read as YAML; the fence missing before it is the problem.
            raise DocumentError(
                "missing the closing '---' line of the YAML frontmatter opened on line 1: "
                f"the body seems to start here; put a '---' line before line {body_line} "
                f"(read as YAML, the body gives: {exc})",
                path=path,
                line=body_line,
            ) from None
        raise DocumentError(f"invalid YAML frontmatter: {exc}", path=path, line=line) from None
    if not isinstance(data, dict):
        raise DocumentError(
            "expected the frontmatter to be a mapping of 'key: value' lines", path=path, line=2
        )
    return data


def _handler_class() -> type:
    """Make :class:`StrictYAMLHandler` (python-frontmatter is imported here, on first use)."""
    from frontmatter.default_handlers import YAMLHandler

    class StrictYAMLHandler(YAMLHandler):
        r"""python-frontmatter's YAML handler with mdsessions' strict reader and emitter.

        Args:
            path: The store-relative file name that errors name, or ``None``.

        Example:
            >>> import frontmatter
            >>> post = frontmatter.loads("---\nphase: 1\n---\nbody\n", handler=StrictYAMLHandler())
            >>> post.metadata
            {'phase': 1}
            >>> frontmatter.dumps(post, handler=StrictYAMLHandler())
            '---\nphase: 1\n---\nbody'
        """

        FM_BOUNDARY = _FENCE
        START_DELIMITER = END_DELIMITER = "---"

        def __init__(self, path: str | None = None) -> None:
            super().__init__()
            self.path = path

        def split(self, text: str) -> tuple[str, str]:
            """Split a document into its frontmatter YAML and its body (see :func:`split`).

            Args:
                text: The whole file.

            Returns:
                ``(yaml_text, body)``.

            Raises:
                DocumentError: If the ``---`` fences are missing.
            """
            yaml_text, body, _ = split(text, self.path)
            return yaml_text, body

        def load(self, fm: str, **kwargs: object) -> dict[str, Any]:
            """Read the frontmatter YAML strictly (see :func:`mdsessions.documents.yaml.load`).

            Args:
                fm: The YAML between the fences (its first line is the file's line 2).
                **kwargs: None are taken (PyYAML's ``Loader`` cannot be changed).

            Returns:
                The mapping, keys in the file's order.

            Raises:
                DocumentError: For YAML that does not parse or is refused (an alias, a duplicate
                    key, too large, too deep), naming the file's line, or that is not a mapping.
                TypeError: If options are passed.
            """
            _no_options(kwargs)
            return _load_yaml(fm, self.path)

        def export(self, metadata: dict[str, object], **kwargs: object) -> str:
            """Write frontmatter as block-style YAML, the same mapping always as the same bytes.

            Args:
                metadata: str keys to None/bool/int/float/str or lists and mappings of those.
                **kwargs: None are taken.

            Returns:
                The YAML text without a trailing newline (see
                :func:`mdsessions.documents.yaml.dump_mapping`).

            Raises:
                TypeError: If options are passed.
            """
            _no_options(kwargs)
            return _yaml.dump_mapping(metadata)

        def format(self, post: Post, **kwargs: object) -> str:
            """Join a post's frontmatter and content exactly: ``---``, YAML, ``---``, content.

            Unlike python-frontmatter's default, nothing is stripped: the content is written as
            it is, to its last byte.

            Args:
                post: The metadata and content.
                **kwargs: None are taken.

            Returns:
                The document text.

            Raises:
                TypeError: If options are passed.
            """
            _no_options(kwargs)
            return f"---\n{self.export(post.metadata)}\n---\n{post.content}"

    return StrictYAMLHandler


def __getattr__(name: str) -> Any:
    """``StrictYAMLHandler``, made on first access.

    Importing python-frontmatter (and PyYAML with it) would cost every command, and most
    never use the handler.
    """
    if name == "StrictYAMLHandler":
        handler = _handler_class()
        globals()[name] = handler
        return handler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_default_renderer: Renderer | None = None


def dumps(doc: Document, renderer: Renderer | None = None, **context: Any) -> str:
    """Render a document with the default templates (or ``renderer``).

    Args:
        doc: The model to render.
        renderer: A store's renderer; the package defaults when ``None``.
        **context: Extra template variables.

    Returns:
        The markdown text.

    Raises:
        DocumentError: If the template fails.
    """
    # Not frontmatter.dumps(Post(body, **metadata), handler=...): the kind's template lays out
    # the whole file, fences included (the feedback template writes its instructions as YAML
    # comments inside them; a store's template may lay the file out its own way). Between the
    # fences it puts the same deterministic emitter's YAML as StrictYAMLHandler.export.
    global _default_renderer
    if renderer is None:
        if _default_renderer is None:
            _default_renderer = Renderer()
        renderer = _default_renderer
    return renderer.render(doc, **context)


# --------------------------------------------------------------------------------------------
# parsing the body and validating
# --------------------------------------------------------------------------------------------


def _line_of_key(yaml_text: str, key: str) -> int | None:
    match = re.search(rf"^{re.escape(key)}[ \t]*:", yaml_text, re.MULTILINE)
    if match is None:
        return None
    return yaml_text.count("\n", 0, match.start()) + 2  # +1 for 1-based, +1 for the '---' line


@functools.cache
def _heading_re(title: str) -> re.Pattern[str]:
    return re.compile(rf"^## {re.escape(title)}[ \t]*\r?\n", re.MULTILINE)


def _heading(body: str, title: str, *, last: bool = False) -> re.Match[str] | None:
    pattern = _heading_re(title)
    if not last:  # the first: tried only where a line starts "## {title}" (str.find)
        marker = f"## {title}"
        pos = 0
        while True:
            if body.startswith(marker, pos):
                found = pattern.match(body, pos)
                if found is not None:
                    return found
            pos = body.find("\n" + marker, pos)
            if pos < 0:
                return None
            pos += 1
    matches = list(pattern.finditer(body))
    return matches[-1] if matches else None


def _strip_section(text: str, newline: str) -> str:
    r"""Undo the template's framing of a person's section.

    The templates write a blank line, the text, its line end and a blank line; remove one
    leading and at most two trailing line ends so that the text round-trips exactly, and a
    hand-edited section without blank lines still reads. ``newline`` is the framing's line
    end (``\n``, or ``\r\n`` in a file an editor saved with CRLF), so a ``\r`` that belongs
    to the text is kept.
    """
    if text.startswith(newline):
        text = text[len(newline) :]
    for _ in range(2):
        if text.endswith(newline):
            text = text[: -len(newline)]
    return text


def _newline(heading: re.Match[str]) -> str:
    return "\r\n" if heading.group(0).endswith("\r\n") else "\n"


def _notes(body: str) -> str:
    # Notes is the last section and ours come before it: its first heading starts it, and
    # everything after (a "## Notes" line a person wrote included) is the person's text.
    match = _heading(body, "Notes")
    if match is None:
        return ""
    return _strip_section(body[match.end() :], _newline(match))


def _agent_content(body: str, path: str | None, body_line: int, title: str = "Output") -> str:
    """The verbatim text after the first ``## {title}`` heading, to the end of the file."""
    match = _heading(body, title)
    if match is None:
        raise DocumentError(f"missing the '## {title}' section", path=path, line=body_line)
    rest = body[match.end() :]
    for lead in ("\r\n", "\n"):
        if rest.startswith(lead):
            return rest[len(lead) :]
    return rest


_ENTRY_HEADING = re.compile(r"### ([0-9]+) · ([^ ]+) · ([^ ]+) · ([0-9]+) tokens")


def _transcript_entries(
    body: str, boundary: object, path: str | None, body_line: int
) -> list[dict[str, Any]]:
    r"""The messages of a transcript's body (``templates/transcript.md.j2``).

    Each message is ``\n<!-- {boundary} -->\n### {n} · {role} · {time} · {tokens} tokens``,
    a blank line, the content verbatim and one line end. No content contains the boundary
    (the store picks it so), so every marker is ours and the content between two of them
    is exactly what was recorded.
    """
    if not isinstance(boundary, str):
        boundary = "mdsessions-message"
    parts = body.split(f"\n<!-- {boundary} -->\n")
    line = body_line + parts[0].count("\n") + 1
    entries: list[dict[str, Any]] = []
    for part in parts[1:]:
        heading, sep, rest = part.partition("\n")
        found = _ENTRY_HEADING.fullmatch(heading)
        if found is None or not sep or not rest.startswith("\n") or not rest.endswith("\n"):
            raise DocumentError(
                "expected a message heading '### {number} · {role} · {time} · {tokens} "
                "tokens', a blank line, the message and a line end after the marker "
                f"'<!-- {boundary} -->'",
                path=path,
                line=line + 1,
                field="entries",
            )
        entries.append(
            {
                "number": int(found.group(1)),
                "role": found.group(2),
                "time": found.group(3),
                "tokens": int(found.group(4)),
                "content": rest[1:-1],
            }
        )
        line += part.count("\n") + 1
    return entries


def is_old_feedback_body(body: str) -> bool:
    """Whether a feedback body has the layout from before issue 16 (the decision repeated).

    That is: a ``## Review Status`` section before ``## User Comments`` (then
    ``## Requested Changes`` and ``## Action Taken``).
    """
    status = _heading(body, "Review Status")
    if status is None:
        return False
    comments = _heading(body, "User Comments")
    return comments is None or status.start() < comments.start()


_ITEM = re.compile(r"^\s*[-*+]\s+(.*\S)\s*$")
_NEXT_HEADING = re.compile(r"^## ", re.MULTILINE)


def requested_changes_in_body(body: str) -> tuple[list[str], int, int] | None:
    """The ``- `` lines of the body's last ``## Requested Changes`` section, if it has one.

    Args:
        body: A feedback file's body.

    Returns:
        ``(changes, heading offset, offset of the first change or of the heading)`` (offsets
        in ``body``, characters), or ``None`` when the body has no such section.
    """
    heading = _heading(body, "Requested Changes", last=True)
    if heading is None:
        return None
    section = body[heading.end() :]
    following = _NEXT_HEADING.search(section)
    if following is not None:
        section = section[: following.start()]
    changes: list[str] = []
    first = heading.start()
    offset = heading.end()
    for line in section.splitlines(keepends=True):
        item = _ITEM.match(line)
        if item:
            if not changes:
                first = offset
            changes.append(re.sub(r"^Change \d+:\s*", "", item.group(1)))
        offset += len(line)
    return changes, heading.start(), first


def _feedback_body(body: str) -> tuple[str, list[str]]:
    """A feedback body's comments, and the requested changes an old body lists.

    Today's body (``templates/user_feedback.md.j2``) ends with ``## User Comments``: the
    comments are everything after it, verbatim, less the template's framing (one line end
    before, one after). An old body (:func:`is_old_feedback_body`) is read as it was written.
    """
    start = _heading(body, "User Comments")
    if not is_old_feedback_body(body):
        if start is None:
            return "", []
        rest, newline = body[start.end() :], _newline(start)
        if rest.startswith(newline):
            rest = rest[len(newline) :]
        return (rest[: -len(newline)] if rest.endswith(newline) else rest), []
    comments = ""
    changes_at = _heading(body, "Requested Changes", last=True)
    if start is not None:
        end = (
            changes_at.start()
            if changes_at is not None and changes_at.start() > start.end()
            else None
        )
        if end is None:
            action = _heading(body, "Action Taken", last=True)
            end = (
                action.start() if action is not None and action.start() > start.end() else len(body)
            )
        comments = _strip_section(body[start.end() : end], _newline(start))
    listed = requested_changes_in_body(body)
    changes = listed[0] if listed is not None else []
    return comments, changes


def _validation_error(exc: ValidationError, yaml_text: str, path: str | None) -> DocumentError:
    first = exc.errors()[0]
    loc = [str(part) for part in first.get("loc", ())]
    field = ".".join(loc) if loc else None
    line = _line_of_key(yaml_text, loc[0]) if loc else None
    message = first.get("msg", "invalid value")
    if first.get("type") == "missing":
        message = "required field is missing"
    elif "input" in first and first.get("type") != "extra_forbidden" and "got " not in message:
        message = f"{message} (got {first['input']!r})"
    elif first.get("type") == "extra_forbidden":
        message = "unknown field (not part of this document's schema)"
    count = len(exc.errors())
    if count > 1:
        message += f" (and {count - 1} more problem{'s' if count > 2 else ''})"
    return DocumentError(message, path=path, line=line, field=field)


def loads(
    text: str,
    *,
    path: str | None = None,
    kind: DocumentKind | None = None,
) -> Document:
    """Parse a document's text into its model.

    Args:
        text: The whole file, as written by :func:`dumps` or edited by a person.
        path: The store-relative file name, used in error messages.
        kind: The expected kind; when given, a document of another kind is an error.

    Returns:
        A :class:`SessionManifest`, :class:`Checkpoint`, :class:`AgentOutput`,
        :class:`UserFeedback` or :class:`AgentPrompt`.

    Raises:
        DocumentError: Naming the file, the line and the field, for broken YAML, a missing or
            unknown ``schema``, a wrong kind, or a field that fails validation.
    """
    model, data, yaml_text = read_fields(text, path=path, kind=kind)
    try:
        doc = model.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, yaml_text, path) from None
    if isinstance(doc, UserFeedback):
        try:
            doc.decision()
        except ValueError as exc:
            raise DocumentError(
                str(exc), path=path, line=_line_of_key(yaml_text, "action"), field="action"
            ) from None
    return doc


def read_fields(
    text: str,
    *,
    path: str | None = None,
    kind: DocumentKind | None = None,
) -> tuple[type[Document], dict[str, Any], str]:
    """The first half of :func:`loads`: a document's fields, checked up to model validation.

    The frontmatter is read, its ``schema`` checked, and the fields the body carries added
    (``notes``, an output's ``content``, a feedback's ``comments``). :func:`loads` then
    validates them with the model.

    Args:
        text: The whole file.
        path: The store-relative file name, used in error messages.
        kind: The expected kind; when given, a document of another kind is an error.

    Returns:
        ``(model class, fields, frontmatter YAML text)``.

    Raises:
        DocumentError: As :func:`loads`, for everything but the model's validation.
    """
    # The handler's steps (split, then load), not frontmatter.loads(text, handler=...):
    # python-frontmatter rewrites the text before a handler sees it (CRLF to LF; the file's
    # and the body's leading and trailing whitespace stripped), so an agent's output or a
    # person's notes would not round-trip byte for byte. It also reads a file whose fences
    # are missing as "no frontmatter" (the error here names the line), and passes the
    # metadata to Post as keyword arguments (a "content:" or "1:" key would be a TypeError,
    # not a DocumentError naming the field).
    yaml_text, body, body_line = split(text, path)
    data = _load_yaml(yaml_text, path)
    schema = data.get("schema")
    match = SCHEMA_RE.fullmatch(schema) if isinstance(schema, str) else None
    if match is None:
        raise DocumentError(
            "expected 'schema: mdsessions/<kind>/v1'"
            + (f", got {schema!r}" if schema is not None else " (field missing)"),
            path=path,
            line=_line_of_key(yaml_text, "schema") or 2,
            field="schema",
        )
    try:
        found = DocumentKind(match.group(1))
    except ValueError:
        raise DocumentError(
            f"unknown document kind {match.group(1)!r}; expected one of "
            + ", ".join(k.value for k in DocumentKind),
            path=path,
            line=_line_of_key(yaml_text, "schema"),
            field="schema",
        ) from None
    if match.group(2) != "1":
        raise DocumentError(
            f"unsupported schema version v{match.group(2)}; this mdsessions reads v1",
            path=path,
            line=_line_of_key(yaml_text, "schema"),
            field="schema",
        )
    if kind is not None and found is not kind:
        raise DocumentError(
            f"expected a {kind.value} document, found {found.value}",
            path=path,
            line=_line_of_key(yaml_text, "schema"),
            field="schema",
        )
    for body_field in ("notes", "content", "comments", "user", "entries"):
        if body_field in data:
            raise DocumentError(
                f"'{body_field}' belongs in the body, not in the frontmatter",
                path=path,
                line=_line_of_key(yaml_text, body_field),
                field=body_field,
            )
    if found is DocumentKind.AGENT_OUTPUT:
        data["content"] = _agent_content(body, path, body_line)
    elif found is DocumentKind.PROMPT:
        data["user"] = _agent_content(body, path, body_line, "User")
    elif found is DocumentKind.TRANSCRIPT:
        data["entries"] = _transcript_entries(body, data.get("boundary"), path, body_line)
    elif found is DocumentKind.USER_FEEDBACK:
        comments, changes = _feedback_body(body)
        data["comments"] = comments
        if not data.get("requested_changes"):
            data["requested_changes"] = changes
    else:
        data["notes"] = _notes(body)
    return MODEL_BY_KIND[found], data, yaml_text


def load_as(model: type[D], text: str, *, path: str | None = None) -> D:
    """Parse text that must be of the given model's kind.

    Args:
        model: ``SessionManifest``, ``Checkpoint``, ``AgentOutput`` or ``UserFeedback``.
        text: The file text.
        path: The file name for error messages.

    Returns:
        The parsed model.

    Raises:
        DocumentError: As :func:`loads`.
    """
    doc = loads(text, path=path, kind=KIND_BY_MODEL[model])
    assert isinstance(doc, model)
    return doc


def decode(data: bytes, rel: str) -> str:
    """A document file's bytes as text.

    Args:
        data: The file's content (from the working tree or a commit).
        rel: Its store-relative path, for the error.

    Returns:
        The UTF-8 text.

    Raises:
        DocumentError: If it is not valid UTF-8, naming the file, the line and the byte
            offset of the first bad byte.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DocumentError(f"not valid UTF-8 (byte {exc.start})", path=rel, line=line) from None
