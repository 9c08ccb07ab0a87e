"""The JSON the command line prints: one model per command, and docs/json.md made from them.

Most commands print a result the public API returns (a pydantic model, e.g.
:class:`mdsessions.history.VersionPage`); the few that combine several calls print one of the
models below. :data:`OUTPUTS` names, per command, the type of its ``--json`` document;
:func:`json_schema` is the JSON Schema of them all and :func:`markdown` renders docs/json.md::

    python -m mdsessions.cli.schemas > docs/json.md      # the documentation
    python -m mdsessions.cli.schemas --json               # the JSON Schema

Imported only by the commands that print JSON and by the documentation: it loads pydantic.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import re
import sys
from collections.abc import Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from mdsessions import (
    AgentOutput,
    AgentPrompt,
    Checkpoint,
    DocumentKind,
    EditedFile,
    InboxItem,
    LifecycleResult,
    MetadataResult,
    Problem,
    PrunedMessage,
    PruneResult,
    RunResult,
    SearchResult,
    SessionManifest,
    SessionStatus,
    StatsResult,
    TagsResult,
    Transcript,
    TranscriptStats,
    UserFeedback,
    history,
)

__all__ = [
    "OUTPUTS",
    "CloneResult",
    "DocumentView",
    "ErrorDetail",
    "ErrorOutput",
    "RecordResult",
    "SessionEntry",
    "SessionState",
    "SyncResult",
    "ValidationReport",
    "json_schema",
    "main",
    "markdown",
]


class _Output(BaseModel):
    """Base of the command line's own output models: frozen, described by field docstrings.

    The docstrings are read by :func:`json_schema`, not when the class is made.
    """

    model_config = ConfigDict(frozen=True)


class SessionEntry(_Output):
    """One session of a listing."""

    project: str
    """Project id."""
    session: str
    """Session id."""
    workflow: str
    """Workflow name."""
    mode: str
    """Execution mode, e.g. ``mvp``."""
    status: SessionStatus
    """The session's status."""
    current_phase: int | None
    """The phase the session is at, or ``null``."""
    created: str
    """When it was created, UTC ISO-8601 with ``Z``."""
    updated: str
    """When its manifest last changed, UTC ISO-8601 with ``Z``."""
    path: str
    """Store-relative path of its manifest."""


class SessionState(_Output):
    """A session and its manifest, as stored."""

    project: str
    """Project id."""
    session: str
    """Session id."""
    path: str
    """Store-relative path of the manifest."""
    manifest: SessionManifest
    """The manifest: its frontmatter fields, named as in the file, and ``notes`` (its body)."""


class DocumentView(_Output):
    """One document of a session, parsed."""

    project: str
    """Project id."""
    session: str
    """Session id."""
    phase: int | None
    """The phase whose folder holds it, or ``null`` (the manifest)."""
    kind: DocumentKind
    """What the document is."""
    path: str
    """Store-relative path."""
    document: SessionManifest | Checkpoint | AgentOutput | UserFeedback | AgentPrompt
    """The document: its frontmatter fields, named as in the file, and its body field
    (``notes``, ``content``, ``comments`` or ``user``)."""


class ValidationReport(_Output):
    """What ``validate`` found."""

    valid: bool
    """No problem found."""
    session_count: int
    """Sessions checked."""
    problems: tuple[Problem, ...]
    """Each problem with its file, line and reason."""


class RecordResult(_Output):
    """What ``record`` committed, and what it left on disk."""

    commit: str | None
    """Full id of the commit made, or ``null`` when nothing was recorded."""
    recorded: tuple[EditedFile, ...]
    """The files recorded."""
    unrecorded: tuple[EditedFile, ...]
    """The files left uncommitted because they do not validate, each with its error."""


class SyncResult(_Output):
    """What ``sync`` did: the pull, then the push."""

    pull: history.PullResult
    """The pull (several rounds combined when the remote moved before the push)."""
    push: history.PushResult
    """The push."""


class CloneResult(_Output):
    """The store ``clone`` made."""

    path: str
    """The new store's folder (absolute)."""
    url: str
    """The URL cloned from."""
    remote: str
    """The remote it tracks (``origin``)."""
    branch: str
    """The store's branch, checked out."""
    upstream: str
    """The branch it tracks, e.g. ``origin/main``."""
    commit: str | None
    """Full id of the commit checked out (``null``: the store has none)."""
    session_count: int
    """Sessions in the store."""
    set_aside: tuple[history.SetAside, ...]
    """The versions other machines set aside, fetched with the store."""


class ErrorDetail(_Output):
    """What went wrong."""

    type: str
    """The exception's class, e.g. ``SessionNotFoundError``, ``FileNotFoundError``,
    ``UsageError``, ``CommandError`` (a command's own failure) or ``KeyboardInterrupt``."""
    message: str
    """The message, as ``Error:`` would print it."""


class ErrorOutput(_Output):
    """An error under ``--json``: one object on stderr; the exit status as without."""

    error: ErrorDetail
    """The error."""


OUTPUTS: dict[str, Any] = {
    "list": list[SessionEntry],
    "search": SearchResult,
    "stats": StatsResult,
    "status": SessionState,
    "log": list[history.Version],
    "show": DocumentView,
    "validate": ValidationReport,
    "pause": LifecycleResult,
    "resume": LifecycleResult,
    "end": LifecycleResult,
    "tag add": TagsResult,
    "tag remove": TagsResult,
    "tag list": TagsResult,
    "meta": MetadataResult,
    "run": RunResult,
    "edits": list[EditedFile],
    "record": RecordResult,
    "inbox": list[InboxItem],
    "versions": history.VersionPage,
    "diff": history.SessionDiff,
    "restore": history.BringBackResult,
    "fork": history.ForkResult,
    "export": history.ExportResult,
    "import": history.ImportResult,
    "archive": history.MoveResult,
    "unarchive": history.MoveResult,
    "delete": history.MoveResult,
    "cleanup": history.CleanupResult,
    "backup create": history.Backup,
    "backup list": list[history.Backup],
    "backup prune": list[history.Backup],
    "backup restore": history.BackupRestore,
    "remote list": list[history.Remote],
    "clone": CloneResult,
    "push": history.PushResult,
    "pull": history.PullResult,
    "sync": SyncResult,
    "set-aside": list[history.SetAside],
    "transcript list": list[TranscriptStats],
    "transcript show": Transcript,
    "transcript stats": TranscriptStats,
    "transcript add": TranscriptStats,
    "transcript prune": PruneResult,
    "transcript pruned": list[PrunedMessage],
    "verify": history.VerifyReport,
    "maintenance": history.MaintenanceReport,
    "scan": history.ScanReport,
}
"""Each command's ``--json`` document on stdout: a model, or a list of one."""

ERROR = ErrorOutput
"""What every command prints on stderr, under ``--json``, when it fails."""

_REF = "#/$defs/{model}"


def _model(tp: Any) -> type[BaseModel]:
    """The model of an output type (``Model`` or ``list[Model]``)."""
    if get_origin(tp) is list:
        (tp,) = get_args(tp)
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        raise TypeError(f"not a model or a list of one: {tp!r}")
    return tp


def json_schema() -> dict[str, Any]:
    """The JSON Schema of every ``--json`` document, and of the error object.

    Returns:
        ``{"$defs": {model: schema}, "commands": {command: schema}, "error": schema}``, each
        schema of a command a ``$ref`` into ``$defs`` (an array of one for a listing). The
        schemas describe what is printed (pydantic's serialization mode, by alias).
    """
    models = sorted({_model(tp) for tp in OUTPUTS.values()} | {ERROR}, key=lambda m: m.__name__)
    _, defs = models_json_schema(
        [(m, "serialization") for m in models], by_alias=True, ref_template=_REF
    )
    by_name: dict[str, type[BaseModel]] = {}
    for m in models:
        _collect_models(m, by_name)
    for name, schema in defs.get("$defs", {}).items():
        if name in by_name:
            _describe_fields(by_name[name], schema)
    commands: dict[str, Any] = {}
    for command, tp in OUTPUTS.items():
        ref = {"$ref": _REF.format(model=_model(tp).__name__)}
        commands[command] = {"type": "array", "items": ref} if get_origin(tp) is list else ref
    return {
        "$defs": defs.get("$defs", {}),
        "commands": commands,
        "error": {"$ref": _REF.format(model=ERROR.__name__)},
    }


def _collect_models(tp: Any, out: dict[str, type[BaseModel]]) -> None:
    """Every model ``tp`` is or holds (field types, recursively), by class name."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if out.get(tp.__name__) is tp:
            return
        out[tp.__name__] = tp
        for info in tp.model_fields.values():
            _collect_models(info.annotation, out)
        for computed in tp.model_computed_fields.values():
            _collect_models(computed.return_type, out)
        return
    for arg in get_args(tp):
        _collect_models(arg, out)


@functools.cache
def _module_ast(module: str) -> ast.Module:
    return ast.parse(inspect.getsource(sys.modules[module]))


def _field_docstrings(cls: type) -> dict[str, str]:
    """Field name → the docstring under its annotation, for ``cls`` and its bases.

    The model classes of the results (:class:`mdsessions.models.results.Result`) do not
    ask pydantic to read these when they are made (it parses the module's source per
    class, on every command); the schema reads them here, each module parsed once.
    """
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        module = sys.modules.get(base.__module__)
        if (
            module is None
            or base.__module__ in ("builtins", "typing")
            or not hasattr(module, "__file__")
        ):
            continue
        if base.__module__.startswith("pydantic"):
            continue
        try:
            tree = _module_ast(base.__module__)
        except (OSError, TypeError, SyntaxError):
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == base.__qualname__:
                body = node.body
                for stmt, nxt in zip(body, body[1:], strict=False):
                    if (
                        isinstance(stmt, ast.AnnAssign)
                        and isinstance(stmt.target, ast.Name)
                        and isinstance(nxt, ast.Expr)
                        and isinstance(nxt.value, ast.Constant)
                        and isinstance(nxt.value.value, str)
                    ):
                        docs[stmt.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def _describe_fields(cls: type[BaseModel], schema: dict[str, Any]) -> None:
    """Give each property of ``schema`` (of ``cls``) its field docstring, where it has none."""
    props = schema.get("properties", {})
    for name, doc in _field_docstrings(cls).items():
        info = cls.model_fields.get(name)
        if info is None:
            continue
        key = info.serialization_alias or info.alias or name
        prop = props.get(key)
        if isinstance(prop, dict) and "description" not in prop:
            prop["description"] = doc


RULES = """\
# JSON output

Every command that reports takes `--json` and then prints **one JSON document** on stdout
(UTF-8, not ASCII-escaped) instead of text. Under `--json` an error is **one JSON object on
stderr**, `{"error": {"type": "SessionNotFoundError", "message": "…"}}`
([ErrorOutput](#erroroutput)), and the exit status is as without `--json`: 0 success, 1 a user
error, 2 a usage error, 130 interrupted. A command that reports problems (`validate`,
`verify`, `record`, `backup restore`) prints its document and then fails with exit status 1.

This page is generated from the models the commands print
(`python -m mdsessions.cli.schemas > docs/json.md`; `--json` prints the JSON Schema), and
`tests/test_json.py` runs every command below on a real store and checks its output against
that schema.

## Naming

One thing has one name in every document:

"""

NAMES: tuple[tuple[str, str], ...] = (
    ("`project`", "a project id"),
    (
        "`session`",
        "a session id; every object about a session (or a phase, a commit, a run of it) has "
        "`project` and `session` side by side, never `project/session` in one string",
    ),
    (
        "`phase`",
        "a phase number (an integer); its name is `phase_name` (`name` inside a phase's own "
        "object)",
    ),
    (
        "`commit`",
        "a full commit id, 40 hex digits; another commit in the same object is "
        "`<role>_commit` (`old_commit`, `new_commit`, `target_commit`)",
    ),
    (
        "`path`",
        "a store-relative `/` path of a file or folder in the store (`feedback_path`, "
        "`output_paths` for others); for a bundle or a new store's folder, an absolute path",
    ),
    (
        "`kind`",
        "a commit's kind (`init`, `session`, `checkpoint`, `agent_output`, `user_feedback`, "
        "`edit`, `restore`, `fork`, `merge`) or a document's kind (`session_manifest`, "
        "`checkpoint`, `agent_output`, `user_feedback`, `prompt`), spelled as in commit "
        "subjects and `Mdsessions-Kind` trailers",
    ),
    ("`status`, `review`", "the value of a status enum (`in_progress`, `awaiting_review` …)"),
    (
        "times",
        "UTC ISO-8601 text with `Z`, `2024-11-24T10:02:00Z` (`time`, `created`, `updated`, "
        "`started`, `completed`, `waiting_since`)",
    ),
    ("`duration`, `seconds`", "seconds (a number)"),
    ("`cost`", "US dollars (a number)"),
    ("`size`", "bytes (an integer)"),
    ("`*_count`", "how many (an integer): `session_count`, `commit_count`"),
    ("`valid`", "`true` when no problem was found"),
    (
        '`{"before": …, "after": …}`',
        "a value that changed (`status`, `review`, `current_phase` …)",
    ),
)
"""The naming rules of every ``--json`` document: (name, what it always is)."""

AFTER_NAMES = """\
Collections are arrays of objects, never mappings keyed by a name (a remote is
`{"name": …, "url": …}`, a ref `{"name": …, "commit": …}`). A value that is absent is `null`,
never left out. A document printed by `status` (`manifest`) or `show` (`document`) is the
document itself: its frontmatter fields are named as in the file (`project_id`,
`session_id` …), beside the names above.
"""


def _text(description: str | None) -> str:
    """A docstring as one line of markdown (``x`` → `x`, :func:`x` → `x`)."""
    if not description:
        return ""
    text = " ".join(description.split())
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`").replace("|", "\\|")
    return text


def _anchor(name: str) -> str:
    return name.lower()


def _type(schema: dict[str, Any]) -> str:
    """A property's JSON Schema as a short markdown type (``string``, ``array of [X](#x)``)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type(s) for s in schema[key])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, dict) and items:
            return f"array of {_type(items)}"
        return "array"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_type(schema['additionalProperties'])}"
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    return str(kind) if kind else "any value"


def _definition(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    description = _text(schema.get("description"))
    if description:
        lines += [description, ""]
    if "enum" in schema:
        lines += ["One of: " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".", ""]
        return lines
    properties = schema.get("properties", {})
    if properties:
        lines += ["| field | type | description |", "|---|---|---|"]
        for field, prop in properties.items():
            lines.append(f"| `{field}` | {_type(prop)} | {_text(prop.get('description'))} |")
        lines.append("")
    return lines


def markdown() -> str:
    """docs/json.md: the naming rules, each command's document, then every type.

    Returns:
        The page, ending with a newline.
    """
    schema = json_schema()
    lines = [RULES.rstrip("\n"), "", "| name | what it always is |", "|---|---|"]
    lines += [f"| {name} | {meaning} |" for name, meaning in NAMES]
    lines += ["", AFTER_NAMES, "## Commands", "", "| command | prints on stdout |", "|---|---|"]
    for command, spec in schema["commands"].items():
        lines.append(f"| `mdsessions {command} --json` | {_type(spec)} |")
    error = _type(schema["error"])
    lines += ["", f"Under `--json` every command prints on stderr, when it fails: {error}.", ""]
    lines += ["## Types", ""]
    for name, definition in sorted(schema["$defs"].items()):
        lines += _definition(name, definition)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Print docs/json.md, or with ``--json`` the JSON Schema.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--json"]:
        sys.stdout.write(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(markdown())


if __name__ == "__main__":
    main()
