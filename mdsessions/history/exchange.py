"""Export and import sessions: JSON, JSON Lines, CSV, and bundles of their history.

Formats (seeds 000 ``export_sessions``, 001 export; issue 14 item 5):

* **JSON** (``format="json"``): one object ``{"format": "mdsessions/export/v1",
  "sessions": [SESSION, …]}``, indented by two spaces, ending in a newline.
* **JSON Lines** (``format="jsonl"``): one SESSION object a line, each with
  ``"format": "mdsessions/export-session/v1"``.
* A SESSION is ``project_id``, ``session_id``, ``workflow``, ``mode``, ``status``,
  ``created``, ``updated`` (UTC ISO-8601), ``tags`` (read from the manifest, for people and
  tools), then ``files``: every file of the session folder as committed at ``HEAD``, in path
  order, as ``{"path": "phase_1_concept/checkpoint.md", "text": "…"}`` (UTF-8 text, byte for
  byte) or ``{"path": …, "base64": "…"}`` for bytes that are not UTF-8. The files are the
  truth; an import writes them back unchanged, so export → import into an empty store →
  export gives the same bytes. Sessions are in project, creation time, session id order;
  nothing store-specific (commit ids, paths on disk, the time of the export) is written.
* **CSV** (``format="csv"``): a header row, then one row per phase (``rows="phase"``,
  :data:`PHASE_COLUMNS`) or per agent output (``rows="agent"``, :data:`AGENT_COLUMNS`);
  times UTC ISO-8601, durations in seconds, cost in USD, tags joined by ``;``, an empty
  cell for a missing value. CSV is for spreadsheets: it cannot be imported.

A bundle (:func:`export_bundle`) holds the chosen sessions' full history: the commits
that touched their folders, replayed with only those folders in their trees; a second
store takes it in with :func:`import_bundle` (one merge commit).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from mdsessions.documents.frontmatter import Document, loads
from mdsessions.errors import (
    DocumentError,
    InvalidArgumentError,
    SessionExistsError,
    StoreError,
)
from mdsessions.git import extract
from mdsessions.history.common import _blob, _decode
from mdsessions.models.results import Result
from mdsessions.models.schema import AgentOutput, SessionManifest
from mdsessions.store.commits import commit_message
from mdsessions.store.links import render_session
from mdsessions.store.paths import ARCHIVE_DIR, CHECKPOINT, FEEDBACK, MANIFEST, PROMPTS_DIR
from mdsessions.store.store import Identity, Session, Store, check_id

__all__ = [
    "AGENT_COLUMNS",
    "EXPORT_FORMAT",
    "PHASE_COLUMNS",
    "ExportResult",
    "ImportResult",
    "ImportedSession",
    "export_bundle",
    "export_sessions",
    "import_bundle",
    "import_sessions",
    "select_sessions",
]

ExportFormat = Literal["json", "jsonl", "csv"]
RowKind = Literal["phase", "agent"]

#: The ``format`` of a JSON export; each JSON Lines record says ``…/export-session/v1``.
EXPORT_FORMAT = "mdsessions/export/v1"
_LINE_FORMAT = "mdsessions/export-session/v1"

#: CSV columns of ``rows="phase"``: the session, then its phase row of the manifest.
PHASE_COLUMNS: tuple[str, ...] = (
    "project_id",
    "session_id",
    "workflow",
    "mode",
    "session_status",
    "tags",
    "created",
    "updated",
    "phase",
    "phase_slug",
    "phase_name",
    "phase_status",
    "review",
    "started",
    "completed",
    "duration",
    "retry_count",
    "input_tokens",
    "output_tokens",
    "tokens",
    "cost",
)

#: CSV columns of ``rows="agent"``: one agent output document (``phase_N_slug/{agent}.md``).
AGENT_COLUMNS: tuple[str, ...] = (
    "project_id",
    "session_id",
    "phase",
    "phase_slug",
    "agent",
    "status",
    "model",
    "executed",
    "duration",
    "input_tokens",
    "output_tokens",
    "tokens",
    "cost",
    "retry_count",
    "exit_status",
    "path",
)


class ExportResult(Result):
    """What :func:`export_sessions` wrote."""

    format: Literal["json", "jsonl", "csv", "bundle"]
    """``json``, ``jsonl``, ``csv``, or ``bundle`` (:func:`export_bundle`)."""
    sessions: tuple[str, ...]
    """``project/session`` of each session exported, in export order."""
    rows: int
    """Records written: sessions (JSON, JSON Lines), CSV rows (header left out), or the
    commits of a bundle (the sessions' full history)."""
    path: Path | None = None
    """The file written (absolute), or ``null`` when the text was returned only."""
    commit: str | None = None
    """A bundle's branch tip (full id); ``null`` for other formats."""
    branch: str | None = None
    """The branch a bundle holds (``refs/heads/…``); ``null`` for other formats."""
    text: str = Field(default="", exclude=True)
    """The export itself."""


class ImportedSession(Result):
    """One session an import committed."""

    session: str
    """``project/session`` in this store."""
    source: str
    """``project/session`` in the export (differs when renamed)."""
    commit: str
    """Full id of its import commit."""
    files: int
    """Files written."""


class ImportResult(Result):
    """What :func:`import_sessions` (one commit per session) or :func:`import_bundle` committed."""

    imported: tuple[ImportedSession, ...]
    """The sessions, in the export's order (a bundle's: by project and id)."""
    bundle_commit: str | None = None
    """A bundle's tip (full id), now in this store's history; ``null`` for a JSON import."""


# -- selecting -----------------------------------------------------------------------------


def select_sessions(
    store: Store,
    *,
    sessions: Sequence[Session] = (),
    project: str | None = None,
    status: Sequence[str] = (),
    tag: Sequence[str] = (),
) -> list[Session]:
    """The sessions an export or bundle takes, in project, creation time, session id order.

    Args:
        store: The store.
        sessions: These sessions (then the filters narrow them further); none: every session.
        project: Only this project.
        status: Only sessions in one of these statuses (manifest values, e.g. ``completed``).
        tag: Only sessions carrying every one of these tags.

    Returns:
        The sessions.

    Raises:
        InvalidIdentifierError: A bad project id.
    """
    wanted = {s.ref for s in sessions}
    out = []
    for summary in store.list_sessions(project):  # the session index: no manifest parsed
        if wanted and summary.ref not in wanted:
            continue
        if status and summary.status.value not in status:
            continue
        if tag and any(t not in summary.frontmatter().get("tags", []) for t in tag):
            continue
        out.append(Session(store, summary.project_id, summary.session_id))
    return out


# -- export --------------------------------------------------------------------------------


def _session_files(store: Store, session: Session, commit: str) -> dict[str, bytes]:
    prefix = session.rel + "/"
    tree = store.git.list_tree(commit, session.rel)
    if session.manifest_rel not in tree:
        raise StoreError(
            f"session {session.ref} has no committed manifest at HEAD ({session.manifest_rel})"
        )
    return {rel[len(prefix) :]: _blob(store.git, sha) for rel, sha in sorted(tree.items())}


def _record(session: Session, files: dict[str, bytes]) -> dict[str, Any]:
    manifest = loads(_decode(files[MANIFEST], session.manifest_rel), path=session.manifest_rel)
    assert isinstance(manifest, SessionManifest)
    head = manifest.model_dump(mode="json", by_alias=True)
    entries: list[dict[str, str]] = []
    for rel, data in files.items():
        try:
            entries.append({"path": rel, "text": data.decode("utf-8")})
        except UnicodeDecodeError:
            entries.append({"path": rel, "base64": base64.b64encode(data).decode("ascii")})
    record: dict[str, Any] = {
        key: head[key]
        for key in ("project_id", "session_id", "workflow", "mode", "status", "created", "updated")
    }
    record["tags"] = head.get("tags", [])
    record["files"] = entries
    return record


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _phase_rows(manifest: SessionManifest) -> Iterable[list[str]]:
    head = manifest.model_dump(mode="json")
    for phase in head["phases"]:
        values = {
            "project_id": head["project_id"],
            "session_id": head["session_id"],
            "workflow": head["workflow"],
            "mode": head["mode"],
            "session_status": head["status"],
            "tags": head.get("tags", []),
            "created": head["created"],
            "updated": head["updated"],
            "phase": phase["number"],
            "phase_slug": phase["slug"],
            "phase_name": phase["name"],
            "phase_status": phase["status"],
            **{k: phase.get(k) for k in PHASE_COLUMNS[12:]},
        }
        yield [_cell(values[c]) for c in PHASE_COLUMNS]


def _agent_rows(session: Session, files: dict[str, bytes]) -> list[list[str]]:
    """One row per agent output of the session, by phase number then agent."""
    found: list[tuple[int, str, list[str]]] = []
    for rel, data in files.items():
        parts = rel.split("/")
        if len(parts) != 2 or parts[1] in (MANIFEST, FEEDBACK, CHECKPOINT):
            continue
        if parts[0] == PROMPTS_DIR or not parts[1].endswith(".md"):
            continue
        try:
            doc = loads(_decode(data, f"{session.rel}/{rel}"), path=f"{session.rel}/{rel}")
        except DocumentError:
            continue
        if not isinstance(doc, AgentOutput):
            continue
        out = doc.model_dump(mode="json")
        values = {
            **{k: out.get(k) for k in AGENT_COLUMNS},
            "phase_slug": parts[0].split("_", 2)[-1],
            "tokens": doc.input_tokens + doc.output_tokens,
            "path": f"{session.rel}/{rel}",
        }
        found.append((doc.phase, doc.agent, [_cell(values[c]) for c in AGENT_COLUMNS]))
    return [row for _phase, _agent, row in sorted(found, key=lambda f: f[:2])]


def export_sessions(
    store: Store,
    sessions: Sequence[Session],
    *,
    format: ExportFormat = "json",
    rows: RowKind = "phase",
    path: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Export sessions as committed at ``HEAD`` (see the module docstring for the formats).

    Args:
        store: The store.
        sessions: The sessions (e.g. from :func:`select_sessions`), in export order.
        format: ``json``, ``jsonl`` or ``csv``.
        rows: For CSV: one row per ``phase`` or per ``agent`` output.
        path: Write the export to this file (atomically: a temporary file renamed);
            ``None``: return it only (``ExportResult.text``).

    Returns:
        The sessions exported, the record count and the text.

    Raises:
        InvalidArgumentError: An unknown format or row kind (nothing written).
        StoreError: The store has no commit, or a session has no committed manifest.
        DocumentError: A committed manifest does not parse (naming it).
    """
    if format not in ("json", "jsonl", "csv"):
        raise InvalidArgumentError(f"invalid format {format!r}: expected json, jsonl or csv")
    if rows not in ("phase", "agent"):
        raise InvalidArgumentError(f"invalid rows {rows!r}: expected phase or agent")
    head = store.git.head()
    if head is None:
        raise StoreError(f"{store.root}: nothing to export (no commit yet)")
    count = 0
    records: list[dict[str, Any]] = []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if format == "csv":
        writer.writerow(PHASE_COLUMNS if rows == "phase" else AGENT_COLUMNS)
    for session in sessions:
        files = _session_files(store, session, head)
        if format == "csv":
            if rows == "phase":
                manifest = loads(_decode(files[MANIFEST], session.manifest_rel))
                assert isinstance(manifest, SessionManifest)
                found = list(_phase_rows(manifest))
            else:
                found = _agent_rows(session, files)
            writer.writerows(found)
            count += len(found)
        else:
            records.append(_record(session, files))
            count += 1
    if format == "json":
        text = json.dumps(
            {"format": EXPORT_FORMAT, "sessions": records}, ensure_ascii=False, indent=2
        )
        text += "\n"
    elif format == "jsonl":
        text = "".join(
            json.dumps({"format": _LINE_FORMAT, **r}, ensure_ascii=False, separators=(",", ":"))
            + "\n"
            for r in records
        )
    else:
        text = buffer.getvalue()
    target = None
    if path is not None:
        target = Path(path).resolve()
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(text.encode("utf-8"))
            tmp.replace(target)
        finally:
            if tmp.exists():
                tmp.unlink()
    return ExportResult(
        format=format,
        sessions=tuple(s.ref for s in sessions),
        rows=count,
        path=target,
        text=text,
    )


# -- import --------------------------------------------------------------------------------


def _read_records(text: str, source: str) -> list[dict[str, Any]]:
    """The SESSION objects of a JSON or JSON Lines export (checked for shape)."""
    stripped = text.lstrip()
    records: list[Any]
    if not stripped:
        raise InvalidArgumentError(f"{source}: empty; expected a JSON or JSON Lines export")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and whole.get("format") == EXPORT_FORMAT:
        records = whole.get("sessions")  # type: ignore[assignment]
        if not isinstance(records, list):
            raise InvalidArgumentError(f"{source}: 'sessions' must be a list")
    elif isinstance(whole, dict) and whole.get("format") == _LINE_FORMAT:
        records = [whole]
    else:
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgumentError(
                    f"{source}: line {number}: not JSON ({exc.msg}); expected a JSON export "
                    f"('format': '{EXPORT_FORMAT}') or JSON Lines of sessions"
                ) from None
            if not isinstance(item, dict) or item.get("format") != _LINE_FORMAT:
                raise InvalidArgumentError(
                    f"{source}: line {number}: expected an object with 'format': '{_LINE_FORMAT}'"
                )
            records.append(item)
    for number, item in enumerate(records, 1):
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"{source}: session {number}: expected an object")
    return records


def _record_files(item: dict[str, Any], where: str) -> dict[str, bytes]:
    """The files of one SESSION (path relative to the session folder → bytes), checked."""
    entries = item.get("files")
    if not isinstance(entries, list) or not entries:
        raise InvalidArgumentError(f"{where}: 'files' must be a non-empty list")
    out: dict[str, bytes] = {}
    for entry in entries:
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel:
            raise InvalidArgumentError(f"{where}: each file needs a relative 'path'")
        if any(part in ("", ".", "..") or part.startswith(".git") for part in rel.split("/")):
            raise InvalidArgumentError(f"{where}: file path {rel!r} leaves the session folder")
        if rel in out:
            raise InvalidArgumentError(f"{where}: file {rel!r} appears twice")
        if isinstance(entry.get("text"), str):
            try:
                out[rel] = entry["text"].encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidArgumentError(f"{where}: {rel}: text is not valid UTF-8") from None
        elif isinstance(entry.get("base64"), str):
            try:
                out[rel] = base64.b64decode(entry["base64"], validate=True)
            except (binascii.Error, ValueError):
                raise InvalidArgumentError(f"{where}: {rel}: 'base64' is not base64") from None
        else:
            raise InvalidArgumentError(f"{where}: {rel}: expected 'text' or 'base64'")
    if MANIFEST not in out:
        raise InvalidArgumentError(f"{where}: no {MANIFEST} among its files")
    return out


def _exists(store: Store, project_id: str, session_id: str) -> bool:
    head = store.git.head()
    for folder in ("sessions", ARCHIVE_DIR):
        rel = store.rel(project_id, folder, session_id)
        if (store.root / rel).exists():
            return True
        if head is not None and store.git.entry(head, rel) is not None:
            return True
    return False


def _rewrite(
    store: Store, files: dict[str, bytes], rel: str, project_id: str, session_id: str
) -> dict[str, bytes]:
    """The documents of a renamed session, ids rewritten and rendered again (as a fork does)."""
    docs: dict[str, Document] = {}
    out: dict[str, bytes] = {}
    names: dict[int, str] = {}
    for name, data in files.items():
        if not name.endswith(".md"):
            out[name] = data
            continue
        doc = loads(_decode(data, f"{rel}/{name}"), path=f"{rel}/{name}")
        doc.session_id = session_id
        doc.project_id = project_id
        if isinstance(doc, SessionManifest):
            names = {p.number: p.name for p in doc.phases}
        docs[name] = doc
    out.update(render_session(store, docs, names))  # the whole session is in docs
    return dict(sorted(out.items()))


def _plan_import(
    store: Store, records: list[dict[str, Any]], source: str, rename: bool
) -> list[tuple[str, str, str, str, dict[str, bytes]]]:
    """Every session checked before anything is written.

    Returns:
        ``(project, id, source ref, status, files)`` of each session to commit.
    """
    planned: list[tuple[str, str, str, str, dict[str, bytes]]] = []
    taken: set[tuple[str, str]] = set()
    clashes = []
    for number, item in enumerate(records, 1):
        where = f"{source}: session {number}"
        project_id, session_id = item.get("project_id"), item.get("session_id")
        for key, value in (("project_id", project_id), ("session_id", session_id)):
            if not isinstance(value, str):
                raise InvalidArgumentError(f"{where}: '{key}' must be a string")
        assert isinstance(project_id, str) and isinstance(session_id, str)
        check_id(project_id, "project id")
        check_id(session_id, "session id")
        files = _record_files(item, where)
        rel = store.session_rel(project_id, session_id)
        status = ""
        for name, data in files.items():
            if not name.endswith(".md"):
                continue
            try:
                doc = loads(_decode(data, f"{rel}/{name}"), path=f"{rel}/{name}")
            except DocumentError as exc:
                raise DocumentError(
                    f"{where}: {exc.reason}", path=exc.path, line=exc.line, field=exc.field
                ) from None
            ids = (getattr(doc, "project_id", None), getattr(doc, "session_id", None))
            if ids != (project_id, session_id):
                raise InvalidArgumentError(
                    f"{where}: {name} belongs to {ids[0]}/{ids[1]}, not {project_id}/{session_id}"
                )
            if isinstance(doc, SessionManifest):
                status = doc.status.value
        ref = f"{project_id}/{session_id}"
        new_id = session_id
        if _exists(store, project_id, session_id) or (project_id, session_id) in taken:
            if not rename:
                clashes.append(ref)
                continue
            n = 2
            while (
                _exists(store, project_id, f"{session_id}-{n}")
                or (
                    project_id,
                    f"{session_id}-{n}",
                )
                in taken
            ):
                n += 1
            new_id = check_id(f"{session_id}-{n}", "session id")
            files = _rewrite(store, files, rel, project_id, new_id)
        taken.add((project_id, new_id))
        planned.append((project_id, new_id, ref, status, files))
    if clashes:
        raise SessionExistsError(
            f"{source}: {len(clashes)} session(s) already exist in this store: "
            + ", ".join(clashes[:10])
            + ("…" if len(clashes) > 10 else "")
            + "; import with --rename to give them new ids. Nothing was imported."
        )
    return planned


def import_sessions(
    store: Store,
    source: str | os.PathLike[str],
    *,
    rename: bool = False,
    author: Identity | str | None = None,
) -> ImportResult:
    """Import a JSON or JSON Lines export (:func:`export_sessions`): one commit per session.

    Every session is checked first (shape, ids, every document parses and names its
    session, no id clash); on any problem nothing is written. Files are written byte for
    byte as exported, so exporting them again gives the same records. Each commit is
    ``import(p/s): from an export (N files)``, ``Mdsessions-Kind: import``.

    Args:
        store: The store to import into.
        source: The export file.
        rename: Give a session whose id is taken (live or archived) the first free id
            ``{id}-2``, ``{id}-3`` … (its documents' ids rewritten) instead of refusing.
        author: Commit author (default: git's user, else the login).

    Returns:
        The sessions imported and their commits.

    Raises:
        InvalidArgumentError: The file is not an export (naming the line, session, field).
        DocumentError: A document in it does not parse (naming it).
        SessionExistsError: A session id is taken and ``rename`` is false.
        InvalidIdentifierError: A bad project or session id.
    """
    where = str(source)
    try:
        text = Path(source).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InvalidArgumentError(f"{where}: no such file") from None
    except UnicodeDecodeError:
        raise InvalidArgumentError(f"{where}: not UTF-8 text; expected a JSON export") from None
    records = _read_records(text, where)
    who = store.person(author)
    done: list[ImportedSession] = []
    with store.writing():
        for project_id, session_id, ref, status, files in _plan_import(
            store, records, where, rename
        ):
            rel = store.session_rel(project_id, session_id)
            sha = store.commit(
                {f"{rel}/{name}": data for name, data in files.items()},
                message=commit_message(
                    f"import({project_id}/{session_id}): from an export ({len(files)} files)",
                    f"Imported from {ref} in {Path(source).name}."
                    if ref != f"{project_id}/{session_id}"
                    else "",
                    kind="import",
                    project=project_id,
                    session=session_id,
                    session_status=status or None,
                ),
                author=who,
            )
            if sha is None:  # pragma: no cover - a new folder always changes the tree
                raise StoreError(f"import of {ref} recorded nothing")
            done.append(
                ImportedSession(
                    session=f"{project_id}/{session_id}", source=ref, commit=sha, files=len(files)
                )
            )
    return ImportResult(imported=tuple(done))


# -- bundles -------------------------------------------------------------------------------


def export_bundle(
    store: Store,
    sessions: Sequence[Session],
    path: str | os.PathLike[str],
    *,
    at: str = "HEAD",
) -> ExportResult:
    """Write a verified git bundle of sessions with their full history.

    Every commit that touched one of the sessions' folders up to ``at`` is replayed with
    only those folders in its tree (author, committer, dates, messages and trailers kept)
    in a scratch repository, and bundled from there as ``refs/heads/{store branch}``: the
    bundle holds no other session and no prerequisite, ``git bundle verify`` accepts it on
    its own, and a second store takes it in with :func:`import_bundle` (or ``git pull FILE
    main --allow-unrelated-histories``). The store is only read.

    Args:
        store: The store.
        sessions: The sessions (their folders at ``at``).
        path: The ``.bundle`` file to write (replaced if it exists).
        at: The commit whose history is taken (default ``HEAD``).

    Returns:
        The file, the sessions, the bundle's tip and its commit count (``rows``).

    Raises:
        InvalidArgumentError: No session given.
        StoreError: A session is not in the tree at ``at``, or git fails.
    """
    if not sessions:
        raise InvalidArgumentError("no session to bundle: name sessions or a filter")
    commit = store.git.resolve_quick(at)
    return _bundle(store, {s.ref: s.rel for s in sessions}, path, commit)


def _bundle(
    store: Store, folders: dict[str, str], path: str | os.PathLike[str], commit: str
) -> ExportResult:
    """A verified bundle of session folders' history (``project/session`` → folder) at a commit.

    Raises:
        StoreError: A session is not in the tree at ``commit``, or git fails.
    """
    for ref, rel in folders.items():
        if store.git.entry(commit, f"{rel}/{MANIFEST}") is None:
            raise StoreError(f"session {ref} is not at {commit[:12]} ({rel}/{MANIFEST})")
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tip, count = extract.bundle_folders(
        store.git, target, commit=commit, folders=list(folders.values()), branch=store.branch
    )
    return ExportResult(
        format="bundle",
        sessions=tuple(folders),
        rows=count,
        path=target,
        commit=tip,
        branch=f"refs/heads/{store.branch}",
    )


def import_bundle(
    store: Store, bundle: str | os.PathLike[str], *, author: Identity | str | None = None
) -> ImportResult:
    """Take in a bundle of :func:`export_bundle`: its history joins this store's, one merge commit.

    The bundle's branch is fetched, and one merge commit (parents ``HEAD`` and the bundle's
    tip) adds the sessions' folders as they are at the tip; ``git log -- <session>`` then
    shows their whole history. ``Mdsessions-Kind: import``.

    Args:
        store: The store to bring the sessions into.
        bundle: The ``.bundle`` file.
        author: Commit author (default: git's user, else the login).

    Returns:
        The sessions (each with the one merge commit) and the bundle's tip.

    Raises:
        StoreError: Not a complete bundle of one branch, or its tree holds anything but
            session folders.
        SessionExistsError: One of its sessions exists here already (nothing changed).
    """
    source = Path(bundle).resolve()
    if not source.is_file():
        raise InvalidArgumentError(f"{source}: no such bundle file")
    git = store.git
    who = store.person(author)
    with store.writing():
        tip = extract.fetch_bundle_tip(git, source)
        ref = f"refs/mdsessions/import/{tip}"
        try:
            files = git.list_tree(tip)
            found: dict[str, str] = {}
            for rel in files:
                parts = rel.split("/")
                base = [] if store.projects_dir == "." else store.projects_dir.split("/")
                inner = parts[len(base) :]
                if parts[: len(base)] != base or len(inner) < 4 or inner[1] != "sessions":
                    raise StoreError(f"{source}: {rel} is not inside a session folder")
                found[store.session_rel(inner[0], inner[2])] = f"{inner[0]}/{inner[2]}"
            clashes = [ref_ for rel, ref_ in found.items() if _exists(store, *ref_.split("/"))]
            if clashes:
                raise SessionExistsError(
                    f"{source}: session(s) already in this store: {', '.join(sorted(clashes))}; "
                    "nothing was imported"
                )
            names = ", ".join(sorted(found.values()))
            sha = git.commit_merge(
                tip,
                blobs=files,
                message=commit_message(
                    f"import: {len(found)} session(s) with their history from {source.name}",
                    f"Sessions: {names}.",
                    kind="import",
                    bundle_commit=tip,
                ),
                author=who,
                committer=store.author,
            )
        finally:
            # Only while it is still the ref this import fetched (the old value is checked).
            git.git("update-ref", "-d", ref, tip, check=False)
    counts: dict[str, int] = {}
    for rel in files:
        key = next(r for r in found if rel.startswith(r + "/"))
        counts[found[key]] = counts.get(found[key], 0) + 1
    return ImportResult(
        imported=tuple(
            ImportedSession(session=ref, source=ref, commit=sha, files=counts[ref])
            for ref in sorted(counts)
        ),
        bundle_commit=tip,
    )
