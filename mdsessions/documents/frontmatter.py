"""Render the four documents from Jinja templates and parse them back into models.

The I/O mirrors ``json``: :func:`dumps` turns a model into markdown text, :func:`loads`
turns text back into the model, and ``loads(dumps(doc)) == doc`` for every valid model.

File formats (seed 003, extended with YAML frontmatter carrying ``schema``):

* ``session_manifest.md`` — Metadata, Phase Status table, Current Phase, Metrics, Notes.
* ``checkpoint.md`` — Metadata, Agents in Phase, Inputs, Outputs, Metrics, Next Phase, Notes.
* ``{agent}.md`` — Metadata, Execution Details, then ``## Output`` and the agent's content
  verbatim to the end of the file.
* ``user_feedback.md`` — Review Status, User Comments (verbatim), Requested Changes (one
  ``- `` line each), Action Taken.

Content that is not ours (agent output, a person's comments and notes) is passed to the
template as data: it is never evaluated as a template and round-trips byte for byte.
"""

from __future__ import annotations

import importlib.resources
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from mdsessions.documents import yaml as _yaml
from mdsessions.errors import DocumentError
from mdsessions.models.schema import (
    AgentOutput,
    AgentPrompt,
    Checkpoint,
    DocumentKind,
    SessionManifest,
    UserFeedback,
)

__all__ = [
    "Document",
    "Renderer",
    "dumps",
    "kind_of",
    "loads",
    "package_template_dir",
]

Document = SessionManifest | Checkpoint | AgentOutput | UserFeedback | AgentPrompt
D = TypeVar("D", SessionManifest, Checkpoint, AgentOutput, UserFeedback, AgentPrompt)

MODEL_BY_KIND: dict[DocumentKind, type[Document]] = {
    DocumentKind.SESSION_MANIFEST: SessionManifest,
    DocumentKind.CHECKPOINT: Checkpoint,
    DocumentKind.AGENT_OUTPUT: AgentOutput,
    DocumentKind.USER_FEEDBACK: UserFeedback,
    DocumentKind.PROMPT: AgentPrompt,
}
KIND_BY_MODEL: dict[type[Any], DocumentKind] = {v: k for k, v in MODEL_BY_KIND.items()}
TEMPLATE_BY_KIND = {kind: f"{kind.value}.md.j2" for kind in DocumentKind}
SCHEMA_RE = re.compile(r"mdsessions/([a-z_]+)/v(\d+)")

_FENCE = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)


def package_template_dir() -> Path:
    """The default templates: ``mdsessions/templates`` in a wheel, ``templates/`` in a checkout."""
    installed = Path(str(importlib.resources.files("mdsessions"))) / "templates"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "templates"


def kind_of(doc: Document) -> DocumentKind:
    """Return the kind of a document model."""
    return KIND_BY_MODEL[type(doc)]


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Block-style YAML with multi-line strings as ``|`` literals."""


def _str_representer(dumper: Any, data: str) -> Any:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def _dump_frontmatter(data: Mapping[str, Any]) -> str:
    return _yaml.dump_mapping(dict(data))


def _time(value: Any) -> str:
    if value is None:
        return "-"
    return _yaml.format_time(value)


def _seconds(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    return f"{number:g}s"


def _quote(value: Any) -> str:
    lines = str(value).splitlines() or [""]
    return "\n".join("> " + line if line else ">" for line in lines)


def _title_case(value: Any) -> str:
    return " ".join(part.capitalize() for part in re.split(r"[_\-\s]+", str(value)) if part)


class Renderer:
    """Renders documents with one sandboxed Jinja environment.

    Templates are looked up first in ``override_dir`` (a store's ``.mdsessions/templates/``)
    and then in the package's templates.  The environment is sandboxed (a store's templates
    are not trusted code) and uses ``StrictUndefined`` (a misspelt variable is an error).

    Args:
        override_dir: A folder whose ``*.md.j2`` files replace the defaults, or ``None``.
    """

    def __init__(self, override_dir: Path | None = None) -> None:
        # Jinja2 is imported here, not with the module: commands that only read documents
        # (status, list, show) never pay for it.
        from jinja2 import (  # noqa: PLC0415
            ChoiceLoader,
            Environment,
            FileSystemLoader,
            StrictUndefined,
        )
        from jinja2.sandbox import SandboxedEnvironment  # noqa: PLC0415

        self.overridden = frozenset(
            path.name for path in (override_dir.glob("*.md.j2") if override_dir else ())
        )
        options: dict[str, Any] = {
            "undefined": StrictUndefined,
            "autoescape": False,
            "keep_trailing_newline": True,
            "auto_reload": False,
        }
        package = FileSystemLoader(str(package_template_dir()))
        # The package's own templates are trusted code and render without the sandbox's
        # per-attribute checks (~30 % of a render); a store's templates are not, and they,
        # with anything they include, render in the sandbox.
        self._trusted: Any = Environment(loader=package, **options)
        self._env: Any = self._trusted
        if self.overridden:
            assert override_dir is not None
            self._env = SandboxedEnvironment(
                loader=ChoiceLoader([FileSystemLoader(str(override_dir)), package]), **options
            )
        for env in {id(self._trusted): self._trusted, id(self._env): self._env}.values():
            env.filters.update(time=_time, seconds=_seconds, quote=_quote, title_case=_title_case)
        self._lock = threading.Lock()

    def render(self, doc: Document, **context: Any) -> str:
        """Render a document to markdown text.

        Args:
            doc: The model to render.
            **context: Extra template variables (e.g. ``next_name`` for a checkpoint).

        Returns:
            The full file text: ``---`` frontmatter ``---`` then the body.

        Raises:
            DocumentError: If the template fails or the result does not parse back.
        """
        from jinja2 import TemplateError  # noqa: PLC0415 - imported with the environment

        kind = kind_of(doc)
        name = TEMPLATE_BY_KIND[kind]
        try:
            env = self._env if name in self.overridden else self._trusted
            with self._lock:
                template = env.get_template(name)
            context.setdefault("next_name", "")
            text: str = template.render(
                doc=doc, frontmatter=_dump_frontmatter(doc.frontmatter()), **context
            )
        except TemplateError as exc:
            raise DocumentError(f"template {name} failed: {exc}") from exc
        except Exception as exc:  # a store's template is foreign code: any failure is its own
            raise DocumentError(f"template {name} failed: {type(exc).__name__}: {exc}") from exc
        return text


_default_renderer: Renderer | None = None


def dumps(doc: Document, renderer: Renderer | None = None, **context: Any) -> str:
    """Render a document with the default templates (or ``renderer``).

    Args:
        doc: The model to render.
        renderer: A store's renderer; the package defaults when ``None``.
        **context: Extra template variables.

    Returns:
        The markdown text.
    """
    global _default_renderer
    if renderer is None:
        if _default_renderer is None:
            _default_renderer = Renderer()
        renderer = _default_renderer
    return renderer.render(doc, **context)


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------


def split(text: str, path: str | None = None) -> tuple[str, str, int]:
    """Split a document into its frontmatter YAML and its body.

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
    closing = _FENCE.search(text, start) if start <= len(text) else None
    if closing is None:
        raise DocumentError(
            "missing the closing '---' line of the YAML frontmatter", path=path, line=1
        )
    yaml_text = text[start : closing.start()]
    body = text[closing.end() + 1 :] if closing.end() < len(text) else ""
    body_line = text.count("\n", 0, closing.end()) + 2
    return yaml_text, body, body_line


def _line_of_key(yaml_text: str, key: str) -> int | None:
    match = re.search(rf"^{re.escape(key)}[ \t]*:", yaml_text, re.MULTILINE)
    if match is None:
        return None
    return yaml_text.count("\n", 0, match.start()) + 2  # +1 for 1-based, +1 for the '---' line


def _heading(body: str, title: str, *, last: bool = False) -> re.Match[str] | None:
    matches = list(re.finditer(rf"^## {re.escape(title)}[ \t]*\r?\n", body, re.MULTILINE))
    if not matches:
        return None
    return matches[-1] if last else matches[0]


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


def _feedback_body(body: str) -> tuple[str, list[str]]:
    comments = ""
    start = _heading(body, "User Comments")
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
    changes: list[str] = []
    if changes_at is not None:
        section = body[changes_at.end() :]
        next_heading = re.search(r"^## ", section, re.MULTILINE)
        if next_heading is not None:
            section = section[: next_heading.start()]
        for line in section.splitlines():
            item = re.match(r"^\s*[-*+]\s+(.*\S)\s*$", line)
            if item:
                text = re.sub(r"^Change \d+:\s*", "", item.group(1))
                changes.append(text)
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
        A :class:`SessionManifest`, :class:`Checkpoint`, :class:`AgentOutput` or
        :class:`UserFeedback`.

    Raises:
        DocumentError: Naming the file, the line and the field, for broken YAML, a missing or
            unknown ``schema``, a wrong kind, or a field that fails validation.
    """
    yaml_text, body, body_line = split(text, path)
    try:
        data = _yaml.load(yaml_text)
    except _yaml.YAMLSyntaxError as exc:
        line = exc.line + 1 if exc.line is not None else None  # + the opening '---' line
        raise DocumentError(f"invalid YAML frontmatter: {exc}", path=path, line=line) from None
    if not isinstance(data, dict):
        raise DocumentError(
            "expected the frontmatter to be a mapping of 'key: value' lines", path=path, line=2
        )
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
    for body_field in ("notes", "content", "comments", "user"):
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
    elif found is DocumentKind.USER_FEEDBACK:
        comments, changes = _feedback_body(body)
        data["comments"] = comments
        if not data.get("requested_changes"):
            data["requested_changes"] = changes
    else:
        data["notes"] = _notes(body)
    model = MODEL_BY_KIND[found]
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
