"""A rebuildable index of session manifests: listing and the inbox of 10,000 sessions quickly.

Parsing a manifest costs about a millisecond (YAML + validation), so a store of 10,000
sessions would take seconds to list. This index keeps, per manifest, the few fields a listing
or the inbox needs, and proves on every call that they still describe the files:

* **Folders.** The listing of the projects folder and of each ``{project}/sessions/`` folder
  is kept with the folder's identity (mtime, ctime, inode). Adding, removing or renaming an
  entry changes a folder's mtime, so an unchanged identity means an unchanged listing and no
  ``scandir`` is needed (about 20 stats instead of listing 10,000 entries).
* **Manifests.** Every manifest of a listed session folder is ``stat``-ed on every call
  (10,000 stats: the largest part of a warm call, ~25-40 ms). Its identity (mtime, ctime,
  inode, size) must equal the one recorded when its content was last read. Nothing cheaper
  sees a person's editor saving *in place*: that changes only the file's own inode, not its
  folder nor git's index. ctime cannot be set by a program, so an in-place edit that keeps
  the size and restores the mtime is still seen; only a change that keeps all four (same
  size, mtime, ctime and inode: an edit within the same clock tick as the recorded state) is
  not, which is git's limit too and what the racy rule covers.
* **Racily clean.** As in git, an identity is only trusted when the file (or folder) was last
  changed at least :data:`RACY_NS` before the moment it was checked; until then it is checked
  again on every call by reading the file and comparing a BLAKE2b digest of its bytes (no
  parse unless the bytes changed). A changed identity is also first checked by digest, so a
  ``touch`` or a ``git checkout`` that rewrites identical bytes costs a read, not a parse.
* **Inbox.** For each phase awaiting review the agent outputs (``*.md`` of the phase folder
  other than ``checkpoint.md`` and ``user_feedback.md``) are kept with the phase folder's
  identity, validated like the session folders: one stat per waiting phase.

Why not fewer checks: directory mtimes miss in-place saves; ``HEAD`` and git's index miss
every unrecorded edit; the writer's own knowledge misses every other writer (and the digest
check already makes the writer's just-written manifest cost a read, not a parse). Measured
at 10,000 sessions (2 vCPUs, one busy): the stats ~37 ms, a ``scandir`` of all session
folders ~5 ms, each manifest read + parse ~1 ms.

In memory the index keeps the summaries it built (frozen, so the same objects are returned
again while their manifest is unchanged) and the listing order; a call that finds nothing
changed costs the stats and a list copy. On disk, in ``.mdsessions/cache/`` (gitignored):

* ``sessions.idx``: a snapshot of everything above, read whole by a new process: a magic
  line, the JSON part's length, the JSON (columns, not one object per session) and the
  integer columns as 64-bit arrays (see :func:`_pack`). Rewritten (temp file + rename) at
  the end of a call that found a change.
* ``sessions.sqlite3``: each manifest version's frontmatter YAML by digest, read only by
  :meth:`SessionSummary.frontmatter` (which validates it again and returns it as JSON data).
  The YAML, not the JSON: the first listing after a clone parses 10,000 manifests and
  serializing each again would cost a fifth of that call, for a method a listing does not
  call. Written in one transaction, :data:`_BATCH` texts at a time, so a rebuild never
  holds them all in memory.

After a clone (no cache) the first listing reads and parses every manifest: the YAML by the
fast reader of our own emitter's layout (:func:`mdsessions.documents.yaml.fast_load`, with
the same result as the strict loader), each distinct phase row validated once
(:func:`_row`): ~0.2-0.3 ms a manifest on a busy 2-core VM, ~5x less than before.

Building 10,000 summaries in a new process is the other large cost (~15 ms): they are made
without the frozen dataclass's ``__init__`` and with the cyclic garbage collector paused
(see :func:`_collector_paused`). The files stay the truth: a missing, damaged, foreign or
older-schema cache is ignored and rebuilt; a store whose cache cannot be written is served
from memory (the first call of each process then parses every manifest).
"""

from __future__ import annotations

import array
import contextlib
import datetime as _dt
import gc
import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from pydantic import ValidationError

from mdsessions.cache.facts import SessionFacts, facts_of, is_facts
from mdsessions.cache.facts import decode as decode_facts
from mdsessions.documents.frontmatter import decode, load_as, read_fields
from mdsessions.documents.kinds import is_editor_temp
from mdsessions.errors import DocumentError
from mdsessions.git import repo as _git
from mdsessions.models.schema import (
    DocumentKind,
    PhaseEntry,
    ReviewState,
    SessionManifest,
    SessionStatus,
    Totals,
)

__all__ = [
    "RACY_NS",
    "SessionIndex",
    "SessionSummary",
    "StoreLayout",
    "Waiting",
    "phase_outputs",
    "summarize",
]

#: An identity is trusted only if its mtime and ctime are this much older than the check (ns).
RACY_NS = 2_000_000_000

MANIFEST = "session_manifest.md"
FEEDBACK = "user_feedback.md"
_NOT_OUTPUTS = ("checkpoint.md", FEEDBACK)
_MAGIC = b"mdsessions session index 3\n"  # first line of the snapshot file
#: The snapshot's integer columns and their array typecodes (see ``_pack``).
_INT_COLUMNS = {
    "mtime": "q", "ctime": "q", "ino": "Q", "size": "Q", "kind": "q", "order": "q", "facts": "q"
}  # fmt: skip
_BATCH = 1000  # frontmatter texts held in memory before they are sent to the file
_DB_VERSION = 3  # PRAGMA user_version of the frontmatter file; any other: dropped, rebuilt
_UTC = _dt.timezone.utc
_MIN_TIME = _dt.datetime.min.replace(tzinfo=_UTC)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_STATUS = {s.value: s for s in SessionStatus}
_from_iso = _dt.datetime.fromisoformat
_new = object.__new__
_NONE = type(None)

#: ``(project_id, session_id, phase, phase name, waiting since (UTC) or None,
#: feedback path, output paths)`` of one phase awaiting review (paths store-relative).
Waiting = tuple[str, str, int, str, _dt.datetime | None, str, tuple[str, ...]]

FileIdent = tuple[int, int, int, int]  # (mtime_ns, ctime_ns, inode, size)
DirIdent = tuple[int, int, int]  # (mtime_ns, ctime_ns, inode)
Phase = tuple[int, str, str, _dt.datetime | None]  # (number, name, folder, completed)
Known = tuple[DirIdent | None, tuple[str, ...]]  # (trusted phase-folder identity, outputs)


@dataclass(frozen=True)
class SessionSummary:
    """What a listing shows of one session (from its manifest).

    Two summaries are equal when the attributes below are.

    Attributes:
        project_id: Project id.
        session_id: Session id.
        workflow: Workflow name.
        mode: Execution mode.
        status: Session status.
        current_phase: The phase the session is at, or ``None``.
        created: When it was created (UTC).
        updated: When its manifest last changed (UTC).
        waiting: Phases awaiting review: ``(number, name, folder, completed UTC or None)``.
        path: Store-relative path of the manifest.

    What search and stats read (tags, metadata, totals, phase rows with their agents) is in
    :attr:`facts`, taken from the same parse (:mod:`mdsessions.cache.facts`).
    """

    project_id: str
    session_id: str
    workflow: str
    mode: str
    status: SessionStatus
    current_phase: int | None
    created: _dt.datetime
    updated: _dt.datetime
    waiting: tuple[tuple[int, str, str, _dt.datetime | None], ...]
    path: str
    facts_data: list[Any] | None = field(default=None, repr=False, compare=False)
    """The facts as the index keeps them (JSON-ready; see :mod:`mdsessions.cache.facts`).

    Read-only: sessions with equal facts share one list."""
    _frontmatter: str = field(default="", repr=False, compare=False)
    _key: str = field(default="", repr=False, compare=False)
    _source: _Frontmatters | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        """``project_id/session_id``."""
        return f"{self.project_id}/{self.session_id}"

    @property
    def facts(self) -> SessionFacts:
        """Tags, metadata, totals and started phase rows with their agents (typed).

        Raises:
            DocumentError: As :meth:`frontmatter`, if the facts must be made again from it.
            OSError: As :meth:`frontmatter`.
        """
        if self.facts_data is not None:
            with contextlib.suppress(ValueError, TypeError, IndexError, KeyError):
                return decode_facts(self.facts_data)
        manifest = SessionManifest.model_validate(self.frontmatter())
        return decode_facts(facts_of(manifest))

    @property
    def tags(self) -> tuple[str, ...]:
        """The session's tags."""
        return self.facts.tags

    def frontmatter(self) -> dict[str, Any]:
        """The manifest's whole frontmatter (JSON-ready), as :meth:`SessionManifest.frontmatter`.

        It is the frontmatter of the manifest version this summary was made from, kept in
        the index's cache; if that version is no longer cached (the manifest changed since
        and the cache was compacted) it is the manifest as it is now.

        Raises:
            ValueError: If the summary was built by hand without a frontmatter.
            DocumentError: If the version is gone and the manifest no longer parses.
            OSError: If the version is gone and the manifest cannot be read.
        """
        text = self._frontmatter
        if not text and self._source is not None:
            text = self._source.text(self._key, self.path)
        data: dict[str, Any] = json.loads(text)
        return data

    def __getstate__(self) -> dict[str, Any]:
        """Pickle state: the frontmatter is included and the cache reference dropped."""
        state = dict(self.__dict__)
        if state.get("_source") is not None:
            state["_frontmatter"] = json.dumps(self.frontmatter(), ensure_ascii=False)
            state["_source"] = None
        return state


#: Sets a (frozen) summary's whole ``__dict__``: the fastest way to fill one (see ``_build``).
_set_dict = SessionSummary.__dict__["__dict__"].__set__


def _time(text: str | None) -> _dt.datetime | None:
    return _from_iso(text.replace("Z", "+00:00")) if text else None


def _fields(manifest: SessionManifest) -> tuple[Any, ...]:
    """A manifest's listed fields.

    The times are the model's (UTC, whole seconds: what the frontmatter's ISO text reads
    back as).

    Returns:
        ``(project_id, session_id, workflow, mode, status, current_phase, created, updated,
        waiting phases, facts)``.
    """
    pending = ReviewState.PENDING
    waiting = tuple(
        (p.number, p.name, p.directory, p.completed) for p in manifest.phases if p.review is pending
    )
    return (
        manifest.project_id,
        manifest.session_id,
        manifest.workflow,
        manifest.mode,
        manifest.status,
        manifest.current_phase,
        manifest.created,
        manifest.updated,
        waiting,
        facts_of(manifest),
    )


def _json(manifest: SessionManifest) -> str:
    """A manifest's whole frontmatter as JSON text.

    pydantic's serializer: ``json.loads`` of it equals :meth:`SessionManifest.frontmatter`,
    at a fraction of the cost of ``json.dumps`` of that.
    """
    return manifest.model_dump_json(by_alias=True, exclude=manifest._body_fields)


_rows: dict[tuple[type, tuple[str, ...], tuple[Any, ...], tuple[type, ...]], Any] = {}
_ROWS_MAX = 4096


def _row(model: type[PhaseEntry] | type[Totals], row: Any) -> Any:
    """A manifest's phase row (or totals) validated once per distinct row.

    The rows of a store's manifests repeat (phases not started are the same in every
    session of a workflow and mode; so are zero totals), and validating them is most of a
    manifest's validation. The key keeps each value's type (``1``, ``1.0`` and ``True`` are
    equal in Python, not to the validator). The instances are shared: only for manifests
    that are read for their fields and dropped (:func:`_read_manifest`).

    Returns:
        The model instance, or ``row`` itself if it is not a mapping of plain values (the
        manifest's validation then refuses it).

    Raises:
        ValidationError: The row is not valid (nor would it be in the manifest).
    """
    if type(row) is not dict:
        return row
    values = tuple(row.values())
    try:
        key = (model, tuple(row), values, tuple(map(type, values)))
        entry = _rows.get(key)
    except TypeError:  # an unhashable value (a list, a mapping): every field is a scalar
        return row
    if entry is None:
        entry = model.model_validate(row)
        if len(_rows) >= _ROWS_MAX:
            _rows.clear()
        _rows[key] = entry
    return entry


def _read_manifest(data: bytes, rel: str) -> tuple[tuple[Any, ...], str] | None:
    """A manifest file's listed fields and frontmatter YAML; ``None`` if it does not load.

    The same outcome as ``load_as(SessionManifest, data.decode(), path=rel)`` (the same
    checks by :func:`read_fields`, then the model's validation), faster on a store of
    many sessions: each distinct phase row (and totals) is validated once (:func:`_row`).
    """
    try:
        _, fields, yaml_text = read_fields(
            data.decode("utf-8"), path=rel, kind=DocumentKind.SESSION_MANIFEST
        )
        phases = fields.get("phases")
        if type(phases) is list:
            fields["phases"] = [_row(PhaseEntry, row) for row in phases]
        if "totals" in fields:
            fields["totals"] = _row(Totals, fields["totals"])
        manifest = SessionManifest.model_validate(fields)
    except (DocumentError, UnicodeDecodeError, ValidationError):
        return None
    return _fields(manifest), yaml_text


def _json_of_yaml(yaml_text: str, rel: str) -> str:
    """The frontmatter JSON of a manifest version kept as its frontmatter YAML.

    Raises:
        DocumentError: If it does not load (it did when it was kept).
    """
    return _json(load_as(SessionManifest, f"---\n{yaml_text}---\n", path=rel))


def summarize(manifest: SessionManifest, rel: str) -> SessionSummary:
    """The summary of a parsed manifest (``rel``: its store-relative path)."""
    pid, sid, workflow, mode, status, current, created, updated, waiting, facts = _fields(manifest)
    text = _json(manifest)
    return SessionSummary(
        pid,
        sid,
        workflow,
        mode,
        status,
        current,
        created or _MIN_TIME,
        updated or _MIN_TIME,
        waiting,
        rel,
        facts,
        _frontmatter=text,
    )


def phase_outputs(root: Path, folder: str) -> tuple[str, ...]:
    """The agent outputs of a phase folder: its ``*.md`` but checkpoint, feedback, editors' files.

    Args:
        root: The store root.
        folder: Store-relative path of the phase folder.

    Returns:
        Store-relative paths, sorted (empty if the folder does not exist).
    """
    return tuple(
        p.relative_to(root).as_posix()
        for p in sorted((root / folder).glob("*.md"))
        if p.name not in _NOT_OUTPUTS and not is_editor_temp(p.name)  # emacs' .#agent.md
    )


class _Project:
    """The indexed state of one ``{project}/sessions/`` folder: one column per field.

    Columns (lists, one item per entry of the folder) rather than an object per session: a
    new process takes them from the snapshot as they are, and the per-call loop walks them.
    The manifest identity recorded when its bytes were last read is four columns (mtime,
    ctime, inode, size), all ``None`` where it is not trusted yet (so it never matches).
    An entry has a summary when its ``kind`` is not ``None``; ``pid``/``sid`` are ``None``
    where the manifest's ids equal the folder names.
    """

    COLUMNS = (
        "names",
        "paths",
        "mtime",
        "ctime",
        "ino",
        "size",
        "digests",
        "kind",
        "pid",
        "sid",
        "current",
        "created",
        "updated",
        "created_iso",
        "updated_iso",
        "waiting",
        "outputs",
        "facts",
        "summaries",
    )
    __slots__ = ("built", "folder", "listing", "name", *COLUMNS)

    def __init__(self, name: str, folder: str) -> None:
        self.name = name
        self.folder = folder  # absolute path of {project}/sessions
        self.listing: DirIdent | None = None  # the folder's trusted identity, if any
        self.built = True  # every entry with a summary has its SessionSummary
        self.names: list[str] = []  # every entry of the folder (sorted)
        self.paths: list[str] = []  # absolute manifest path
        self.mtime: list[int | None] = []
        self.ctime: list[int | None] = []
        self.ino: list[int | None] = []
        self.size: list[int | None] = []
        self.digests: list[str | None] = []  # digest of the bytes last read; None: no file
        self.kind: list[int | None] = []  # (workflow, mode, status) number; None: no summary
        self.pid: list[str | None] = []
        self.sid: list[str | None] = []
        self.current: list[int | None] = []
        self.created: list[_dt.datetime | None] = []
        self.updated: list[_dt.datetime | None] = []
        self.created_iso: list[str | None] = []  # the same as text, for the snapshot
        self.updated_iso: list[str | None] = []
        self.waiting: list[tuple[Phase, ...]] = []
        self.outputs: list[list[Known | None] | None] = []  # per waiting phase, when known
        self.facts: list[list[Any] | None] = []  # search and stats facts (cache/facts.py)
        self.summaries: list[SessionSummary | None] = []

    def relist(self, names: list[str]) -> None:
        """Take a new folder listing, keeping what is known of the entries that remain."""
        old = {n: i for i, n in enumerate(self.names)}
        keep = [old.get(n) for n in names]
        for column in self.COLUMNS[2:]:
            values = getattr(self, column)
            empty: Any = () if column == "waiting" else None
            setattr(self, column, [empty if i is None else values[i] for i in keep])
        self.names = names
        self.paths = [f"{self.folder}/{n}/{MANIFEST}" for n in names]

    def clear(self, i: int) -> None:
        """Entry ``i`` has no manifest (or none that could be read)."""
        self.trust(i, None)
        self.digests[i] = None
        self.set_summary(i, None, ())

    def trust(self, i: int, ident: FileIdent | None) -> bool:
        """Record entry ``i``'s trusted manifest identity (or none); whether it changed."""
        old = (self.mtime[i], self.ctime[i], self.ino[i], self.size[i])
        new = ident or (None, None, None, None)
        self.mtime[i], self.ctime[i], self.ino[i], self.size[i] = new
        return old != new

    def set_summary(self, i: int, kind: int | None, values: tuple[Any, ...]) -> None:
        """Entry ``i`` has these listed fields (``kind`` ``None``: no summary)."""
        self.kind[i] = kind
        if kind is None:
            self.pid[i] = self.sid[i] = self.current[i] = None
            self.created[i] = self.updated[i] = None
            self.created_iso[i] = self.updated_iso[i] = None
            self.waiting[i] = ()
            self.facts[i] = None
        else:
            pid, sid, _, _, _, current, created, updated, waiting, facts = values
            self.facts[i] = facts
            self.pid[i] = None if pid == self.name else pid
            self.sid[i] = None if sid == self.names[i] else sid
            self.current[i], self.created[i], self.updated[i] = current, created, updated
            self.created_iso[i] = created and created.isoformat()
            self.updated_iso[i] = updated and updated.isoformat()
            self.waiting[i] = waiting
        self.outputs[i] = self.summaries[i] = None
        self.built = False


class _Frontmatters:
    """Each manifest version's frontmatter (YAML text) by digest: ``sessions.sqlite3``.

    Shared by an index and the summaries it makes (which keep only this small object, not
    the index or the store, alive). Texts parsed but not yet written stay in ``pending``.
    """

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self.root = root
        self.pending: dict[str, str] = {}  # parsed, not yet written
        self._read: dict[str, str] | None = None  # read from the file (on first need)
        self._writes = 0  # successful writes by this process
        self._read_at = -1  # value of _writes when _read was read
        self._lock = threading.Lock()
        self._batch: sqlite3.Connection | None = None  # the open write transaction, if any
        self._batch_failed = False  # the file could not be written: pending stays in memory

    def __copy__(self) -> _Frontmatters:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Frontmatters:
        return self  # copying a summary must not copy the cache

    def text(self, key: str, rel: str) -> str:
        """The frontmatter JSON of the manifest version with digest ``key`` (at ``rel``).

        Made from the version's YAML when it is kept, else from the manifest as it is now.

        Raises:
            DocumentError: If that version is gone and the manifest no longer parses.
            OSError: If that version is gone and the manifest cannot be read.
        """
        with self._lock:
            text = self.pending.get(key)
            if text is None and self._read is not None:
                text = self._read.get(key)
            if text is None and self._read_at != self._writes:
                self._read, self._read_at = self._read_all(), self._writes
                text = self._read.get(key)
        if text is not None:
            return _json_of_yaml(text, rel)
        decoded = decode((self.root / rel).read_bytes(), rel)
        return _json(load_as(SessionManifest, decoded, path=rel))

    def add(self, key: str, text: str) -> None:
        """Keep a parsed version's text; every :data:`_BATCH` texts, send them to the file.

        Sent texts go into one write transaction that :meth:`write` commits (or
        :meth:`abort` rolls back), so a rebuild of 10,000 manifests holds at most
        :data:`_BATCH` texts in memory, not 10,000 (~2 KB each).
        """
        with self._lock:
            self.pending[key] = text
            if len(self.pending) < _BATCH or self._batch_failed:
                return
            pending = self.pending
            try:
                if self._batch is None:
                    conn = self._connect()
                    try:
                        conn.execute("BEGIN IMMEDIATE")
                    except BaseException:
                        conn.close()
                        raise
                    self._batch = conn
                self._batch.executemany(
                    "INSERT OR IGNORE INTO frontmatter VALUES (?, ?)", pending.items()
                )
            except (OSError, sqlite3.Error):
                self._abort()  # the file cannot be written now: memory serves (see write)
                self._batch_failed = True
                return
            self.pending = {}

    def abort(self) -> None:
        """Roll back the texts sent to the file and not committed.

        They are lost: each is the parse of a manifest, made again from the file when asked.
        """
        with self._lock:
            self._abort()

    def _abort(self) -> None:
        conn, self._batch = self._batch, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            conn.close()

    def keep_only(self, live: set[str]) -> None:
        """Forget pending texts of versions no manifest has any more."""
        with self._lock:
            self.pending = {k: v for k, v in self.pending.items() if k in live}

    def write(self, live: set[str]) -> None:
        """Write the pending texts; drop versions no manifest has if they are many.

        Commits the transaction :meth:`add` opened, if any, with the rest in it.

        Raises:
            OSError, sqlite3.Error: The file cannot be written (the texts stay pending;
                those :meth:`add` sent are rolled back).
        """
        with self._lock:
            pending = dict(self.pending)
            conn, self._batch = self._batch, None
            self._batch_failed = False
        if not pending and conn is None:
            return
        try:
            if conn is None:
                conn = self._connect()
                conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR IGNORE INTO frontmatter VALUES (?, ?)", pending.items())
            (count,) = conn.execute("SELECT count(*) FROM frontmatter").fetchone()
            if count > 2 * len(live) + 100:
                # Versions no manifest has any more: keep the file from growing without end.
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS live (key TEXT PRIMARY KEY)")
                conn.execute("DELETE FROM live")
                conn.executemany("INSERT INTO live VALUES (?)", ((k,) for k in live))
                conn.execute("DELETE FROM frontmatter WHERE key NOT IN (SELECT key FROM live)")
            conn.execute("COMMIT")
        except BaseException:
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            if conn is not None:
                conn.close()
        with self._lock:
            for key in pending:
                self.pending.pop(key, None)
            self._writes += 1

    def _read_all(self) -> dict[str, str]:
        if not self.path.is_file():
            return {}
        try:
            conn = sqlite3.connect(self.path.as_uri() + "?mode=ro", uri=True, timeout=30)
        except sqlite3.Error:
            return {}
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] != _DB_VERSION:
                return {}
            return {str(k): str(v) for k, v in conn.execute("SELECT key, data FROM frontmatter")}
        except sqlite3.Error:
            return {}
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        """Open the file for writing, made (again) in this version's schema if it is not.

        Raises:
            OSError, sqlite3.Error: It cannot be opened or made.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=5, isolation_level=None)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError:
            conn.close()  # not a database (e.g. damaged): only a cache, start it again
            self.path.unlink(missing_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=5, isolation_level=None)
            version = 0
        try:
            conn.execute("PRAGMA synchronous = OFF")  # a cache: a torn file is detected, rebuilt
            if version != _DB_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("PRAGMA user_version").fetchone()[0] != _DB_VERSION:
                    for table in ("manifests", "frontmatter"):  # v1 had "manifests"
                        conn.execute(f"DROP TABLE IF EXISTS {table}")
                    conn.execute("CREATE TABLE frontmatter (key TEXT PRIMARY KEY, data TEXT)")
                    conn.execute(f"PRAGMA user_version = {_DB_VERSION}")
                    conn.execute("COMMIT")
                    conn.execute("VACUUM")  # give back the space of an older schema's tables
                else:
                    conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn


#: The listing order: runs of ``(project folder, its entry numbers)`` (see ``_sorted``).
Runs = list[tuple[_Project, list[int]]]


class StoreLayout(Protocol):
    """Where a store's sessions are: all the index needs of a store (a ``Store`` is one)."""

    @property
    def root(self) -> Path:
        """The store's root folder (absolute)."""

    @property
    def projects_dir(self) -> str:
        """The store-relative folder of ``{project_id}/sessions/…`` (``.``: the root)."""


class SessionIndex:
    """Manifest summaries of a store, validated against the files on every call.

    Thread-safe; any number of processes may use the same cache files (each validates what
    it reads; the last snapshot written wins).

    Args:
        store: Where the store's sessions are (read once, here).
        path: The SQLite file of frontmatter texts; the snapshot is the same path with the
            suffix ``.idx`` (both created with their folder when first written).
        racy_ns: How long after its last change (ns) a file's or folder's identity is
            trusted (git's racily-clean rule); until then its content is compared instead.
    """

    def __init__(self, store: StoreLayout, path: Path, *, racy_ns: int = RACY_NS) -> None:
        self.root = store.root
        self.projects_dir = store.projects_dir
        self.path = path
        self.racy_ns = racy_ns
        self._lock = threading.RLock()
        if self.projects_dir == ".":
            self._base, self._prefix = str(self.root), ""
        else:
            self._base = f"{self.root}/{self.projects_dir}"
            self._prefix = self.projects_dir + "/"
        self._loaded = False
        self._reset()
        self._fm = _Frontmatters(path, self.root)

    def _reset(self) -> None:
        self._base_listing: DirIdent | None = None
        self._base_names: list[str] = []
        self._projects: dict[str, _Project] = {}
        self._kinds: list[tuple[str, str, SessionStatus]] = []
        self._kind_codes: dict[tuple[str, str, SessionStatus], int] = {}
        # Equal facts of new parses share one list (the snapshot stores each distinct once).
        self._facts_pool: dict[str, list[Any]] = {}
        self._order: Runs | None = None  # entries with a summary, in listing order
        self._listed: list[SessionSummary] | None = None  # every summary, in order
        self._inbox: list[tuple[str, Waiting]] | None = None  # (project folder, item), sorted
        self._dirty = False  # the snapshot on disk is behind memory

    # -- public -------------------------------------------------------------------------

    def summaries(self, project_id: str | None = None) -> list[SessionSummary]:
        """Every session's summary (a manifest that fails to parse is skipped).

        Args:
            project_id: Only this project's sessions (the ``{project}`` folder's name).

        Returns:
            Summaries ordered by project, creation time, session id.

        Raises:
            OSError: Only if reading the store's files fails in an unexpected way (the
                cache's own errors are never raised: it is rebuilt or kept in memory).
        """
        with self._lock:
            self._refresh(project_id)
            if project_id is None:
                if self._listed is None:
                    self._listed = self._summaries_of(self._sorted())
                out = list(self._listed)
            else:
                project = self._projects.get(project_id)
                out = self._summaries_of([r for r in self._sorted() if r[0] is project])
            self._save()
            return out

    def waiting(self, project_id: str | None = None) -> list[Waiting]:
        """Every phase awaiting review, with its outputs, oldest first.

        Args:
            project_id: Only this project's sessions (the ``{project}`` folder's name).

        Returns:
            Items ordered by waiting since (``None`` as 1970), project, session, phase.

        Raises:
            OSError: As :meth:`summaries`.
        """
        with self._lock:
            self._refresh(project_id)
            now = time.time_ns()
            for project, entries in self._sorted():
                if project_id is None or project.name == project_id:
                    waiting = project.waiting
                    for i in entries:
                        if waiting[i]:
                            self._check_outputs(project, i, now)
            if self._inbox is None:
                self._inbox = self._inbox_items()
            if project_id is None:
                out = [item for _, item in self._inbox]
            else:
                out = [item for name, item in self._inbox if name == project_id]
            self._save()
            return out

    # -- validation -----------------------------------------------------------------------

    def _trusted(self, now: int, mtime_ns: int, ctime_ns: int) -> bool:
        return now - max(mtime_ns, ctime_ns) > self.racy_ns

    def _refresh(self, project_id: str | None) -> None:
        """Bring the entries of every (or one) project up to date with the files."""
        if not self._loaded:
            self._loaded = True
            with _collector_paused():
                self._load()
        now = time.time_ns()  # before any stat: a later change is never older than this
        try:
            names = self._check_base(now) if project_id is None else [project_id]
            for name in names:
                project = self._projects.get(name)
                if project is None:
                    project = _Project(name, f"{self._base}/{name}/sessions")
                    self._check_project(project, now)
                    if project.names:  # a filtered call may name a project that is not there
                        self._projects[name] = project
                        self._changed()
                else:
                    self._check_project(project, now)
        except BaseException:
            self._fm.abort()  # no write transaction is left open on the file
            raise

    def _changed(self) -> None:
        """Something listed changed: drop the derived lists, write the snapshot later."""
        self._order = self._listed = self._inbox = None
        self._dirty = True

    def _check_base(self, now: int) -> list[str]:
        try:
            st = os.stat(self._base)  # noqa: PTH116 (str paths throughout: see the hot loop)
            ident: DirIdent | None = (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        except OSError:
            ident = None
        if ident is None or ident != self._base_listing:
            names: list[str] = []
            if ident is not None:
                try:
                    with os.scandir(self._base) as entries:
                        names = sorted(
                            e.name for e in entries if e.is_dir() and not e.name.startswith(".")
                        )
                except OSError:
                    names = []
            trusted = ident if ident is not None and self._trusted(now, *ident[:2]) else None
            if names != self._base_names or trusted != self._base_listing:
                self._dirty = True
            self._base_names, self._base_listing = names, trusted
        gone = set(self._projects) - set(self._base_names)
        if gone:
            for name in gone:
                del self._projects[name]
            self._changed()
        return self._base_names

    def _check_project(self, project: _Project, now: int) -> None:
        try:
            st = os.stat(project.folder)  # noqa: PTH116
            ident: DirIdent | None = (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        except OSError:
            ident = None
        if ident is None or ident != project.listing:
            names: list[str] = []
            if ident is not None:
                try:
                    with os.scandir(project.folder) as entries:
                        names = sorted(e.name for e in entries)
                except OSError:
                    names = []
            if names != project.names:
                project.relist(names)
                self._changed()
            trusted = ident if ident is not None and self._trusted(now, *ident[:2]) else None
            if trusted != project.listing:
                project.listing = trusted
                self._dirty = True
        # The hot loop: one stat per session folder (os.stat, not pathlib: ~10,000 per call).
        stat = os.stat
        mtime, ctime, ino, size = project.mtime, project.ctime, project.ino, project.size
        for i, path in enumerate(project.paths):
            try:
                st = stat(path)
            except OSError:
                if project.digests[i] is not None:
                    project.clear(i)
                    self._changed()
                continue
            if (
                st.st_mtime_ns != mtime[i]
                or st.st_ctime_ns != ctime[i]
                or st.st_ino != ino[i]
                or st.st_size != size[i]
            ):
                self._reread(project, i, st, now)

    def _reread(self, project: _Project, i: int, st: os.stat_result, now: int) -> None:
        """Check a manifest whose identity is new or untrusted: by digest, then by parsing."""
        ident = (st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size)
        try:
            data = _read_file(project.paths[i], st.st_size)
        except OSError:
            if project.digests[i] is not None:
                project.clear(i)
                self._changed()
            return
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        if digest != project.digests[i]:
            rel = f"{self._prefix}{project.name}/sessions/{project.names[i]}/{MANIFEST}"
            read = _read_manifest(data, rel)
            if read is None:
                project.set_summary(i, None, ())  # not listed; kept so it is not parsed again
            else:
                values, text = read
                key = json.dumps(values[9], separators=(",", ":"))
                values = (*values[:9], self._facts_pool.setdefault(key, values[9]))
                kind = self._kind(values[2], values[3], values[4])
                project.set_summary(i, kind, values)
                self._fm.add(digest, text)
            project.digests[i] = digest
            self._changed()
        if project.trust(i, ident if self._trusted(now, ident[0], ident[1]) else None):
            self._dirty = True

    def _kind(self, workflow: str, mode: str, status: SessionStatus) -> int:
        key = (workflow, mode, status)
        code = self._kind_codes.get(key)
        if code is None:
            code = self._kind_codes[key] = len(self._kinds)
            self._kinds.append(key)
        return code

    def _check_outputs(self, project: _Project, i: int, now: int) -> None:
        """Validate (or find) the outputs of each waiting phase of entry ``i``."""
        waiting = project.waiting[i]
        outputs = project.outputs[i]
        if outputs is None:
            outputs = project.outputs[i] = [None] * len(waiting)
        session = f"{self._prefix}{project.name}/sessions/{project.names[i]}"
        for k, (_, _, folder, _) in enumerate(waiting):
            try:
                st = os.stat(f"{project.folder}/{project.names[i]}/{folder}")  # noqa: PTH116
                ident: DirIdent | None = (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            except OSError:
                ident = None
            known = outputs[k]
            if ident is not None and known is not None and known[0] == ident:
                continue
            found = phase_outputs(self.root, f"{session}/{folder}")
            trusted = ident if ident is not None and self._trusted(now, *ident[:2]) else None
            if known is None or known[1] != found:
                self._inbox = None
            if known != (trusted, found):
                self._dirty = True
            outputs[k] = (trusted, found)

    # -- derived lists ---------------------------------------------------------------------

    def _build(self, p: _Project) -> None:
        """Build the missing summaries of a project's entries.

        This is the other half of a new process's first listing (with the stats), so it
        avoids the frozen dataclass's ``__init__`` (one ``object.__setattr__`` call per field)
        and fills the instance's ``__dict__`` directly with exactly the dataclass's fields
        (``tests/test_cache.py`` checks it against ``__init__``): about twice as fast.
        """
        kinds = self._kinds
        prefix = f"{self._prefix}{p.name}/sessions/"
        name = p.name
        summaries = p.summaries
        facts = p.facts
        for i, (made, kind, pid, sid, current, created, updated, waiting, folder, key) in enumerate(
            zip(
                summaries,
                p.kind,
                p.pid,
                p.sid,
                p.current,
                p.created,
                p.updated,
                p.waiting,
                p.names,
                p.digests,
                strict=True,
            )
        ):
            if made is not None or kind is None:
                continue
            workflow, mode, status = kinds[kind]
            summary = _new(SessionSummary)
            _set_dict(
                summary,
                {
                    "project_id": name if pid is None else pid,
                    "session_id": folder if sid is None else sid,
                    "workflow": workflow,
                    "mode": mode,
                    "status": status,
                    "current_phase": current,
                    "created": created or _MIN_TIME,
                    "updated": updated or _MIN_TIME,
                    "waiting": waiting,
                    "path": f"{prefix}{folder}/{MANIFEST}",
                    "facts_data": facts[i],
                    "_frontmatter": "",
                    "_key": key,
                    "_source": self._fm,
                },
            )
            summaries[i] = summary
        p.built = True

    def _summaries_of(self, runs: Runs) -> list[SessionSummary]:
        """The summaries of the entries of ``runs``, in that order."""
        out: list[SessionSummary | None] = []
        with _collector_paused():
            for project, entries in runs:
                if not project.built:
                    self._build(project)
                out.extend(map(project.summaries.__getitem__, entries))
        # Every entry of an order has a kind, so _build made its summary.
        return cast("list[SessionSummary]", out)

    def _sorted(self) -> Runs:
        """Entries with a summary ordered by project id, creation time, session id.

        As runs ``(project folder, its entries)``: with every project id in its own folder
        (the usual case) one run per folder, so a new process holds ~10 objects for the
        order of 10,000 sessions rather than 10,000 pairs.
        """
        if self._order is None:
            keyed = [
                (
                    p.name if p.pid[i] is None else p.pid[i],
                    p.created[i] or _MIN_TIME,
                    p.names[i] if p.sid[i] is None else p.sid[i],
                    n,
                    i,
                    p,
                )
                for n, p in enumerate(self._projects.values())
                for i, kind in enumerate(p.kind)
                if kind is not None
            ]
            keyed.sort(key=lambda k: k[:5])
            runs: Runs = []
            for key in keyed:
                if not runs or runs[-1][0] is not key[5]:
                    runs.append((key[5], []))
                runs[-1][1].append(key[4])
            self._order = runs
        return self._order

    def _inbox_items(self) -> list[tuple[str, Waiting]]:
        items: list[tuple[str, Waiting]] = []
        for p, entries in self._sorted():
            for i in entries:
                waiting, outputs = p.waiting[i], p.outputs[i]
                if not waiting or outputs is None:
                    continue
                pid = p.name if p.pid[i] is None else p.pid[i]
                sid = p.names[i] if p.sid[i] is None else p.sid[i]
                assert pid is not None and sid is not None
                session = f"{self._prefix}{p.name}/sessions/{p.names[i]}"
                for (number, name, folder, since), known in zip(waiting, outputs, strict=True):
                    if known is not None:
                        feedback = f"{session}/{folder}/{FEEDBACK}"
                        item = (pid, sid, number, name, since, feedback, known[1])
                        items.append((p.name, item))
        items.sort(key=lambda t: (t[1][4] or _EPOCH, t[1][0], t[1][1], t[1][2]))
        return items

    # -- the cache file -----------------------------------------------------------------

    def _snapshot(self) -> tuple[dict[str, Any], dict[str, list[int]]]:
        """Everything the index knows: JSON-ready values and integer columns.

        Per project folder (JSON): its listing and the columns of :class:`_Project` (times
        as ISO text; ``project_id``/``session_id`` only where they differ from the folder
        names, ``waiting`` and ``outputs`` sparse as ``[entry, value]``, outputs as names
        inside their phase folder; ``untrusted``: the entries without a trusted identity;
        ``valid``: how many entries have a summary). ``runs`` is the listing order as
        ``[project number, how many entries]`` (see :meth:`_sorted`). ``facts`` lists each
        distinct facts value once (:mod:`mdsessions.cache.facts`; of 10,000 sessions most
        share theirs with others, and parsing each again would cost more than the rest).

        Returns:
            The JSON part, and the integer columns over every entry of every project in the
            JSON's project order: ``mtime``, ``ctime``, ``ino``, ``size`` (0 where untrusted),
            ``kind`` (-1: no summary), ``facts`` (the number in ``facts``; -1: none) and
            ``order`` (the entries of the runs). Parsing
            60,000 integers from JSON would cost more than all the rest of the snapshot.
        """
        runs = self._sorted()
        projects = list(self._projects.values())
        number = {id(p): n for n, p in enumerate(projects)}
        columns: dict[str, list[int]] = {k: [] for k in _INT_COLUMNS}
        table: dict[int, int] = {}  # id of a facts list -> its number in "facts"
        distinct: list[list[Any]] = []
        for _, entries in runs:
            columns["order"].extend(entries)
        encoded = []
        for p in projects:
            for name in ("mtime", "ctime", "ino", "size"):
                values = getattr(p, name)
                columns[name].extend([0 if v is None else v for v in values])
            columns["kind"].extend(-1 if k is None else k for k in p.kind)
            for f in p.facts:
                if f is None:
                    columns["facts"].append(-1)
                else:
                    n = table.get(id(f))
                    if n is None:
                        n = table[id(f)] = len(distinct)
                        distinct.append(f)
                    columns["facts"].append(n)
            outputs = []
            for i, known in enumerate(p.outputs):
                if known is not None:
                    cut = f"{self._prefix}{p.name}/sessions/{p.names[i]}/"
                    outputs.append(
                        [
                            i,
                            [
                                None if k is None else [k[0], [o.removeprefix(cut) for o in k[1]]]
                                for k in known
                            ],
                        ]
                    )
            encoded.append(
                {
                    "name": p.name,
                    "listing": p.listing,
                    "names": p.names,
                    "untrusted": [i for i, m in enumerate(p.mtime) if m is None],
                    "digests": p.digests,
                    "project_id": [[i, v] for i, v in enumerate(p.pid) if v is not None],
                    "session_id": [[i, v] for i, v in enumerate(p.sid) if v is not None],
                    "current_phase": p.current,
                    "created": p.created_iso,
                    "updated": p.updated_iso,
                    "waiting": [
                        [i, [[n, t, f, d and d.isoformat()] for n, t, f, d in w]]
                        for i, w in enumerate(p.waiting)
                        if w
                    ],
                    "outputs": outputs,
                }
            )
        snapshot = {
            "projects_dir": self.projects_dir,
            "base": self._base_listing,
            "base_names": self._base_names,
            "kinds": [[w, m, s.value] for w, m, s in self._kinds],
            "projects": encoded,
            "runs": [[number[id(p)], len(entries)] for p, entries in runs],
            "facts": distinct,
        }
        return snapshot, columns

    def _load(self) -> None:
        """Adopt the snapshot file, if there is a usable one (else start empty)."""
        try:
            data = self.snapshot_path.read_bytes()
        except OSError:
            return
        try:
            self._adopt(*_unpack(data))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
            self._reset()  # not a snapshot this version wrote (damaged, foreign): rebuild

    def _adopt(self, snap: dict[str, Any], columns: dict[str, list[Any]]) -> None:
        """Take a snapshot's state (see :meth:`_snapshot`), checking every value's type.

        Raises:
            ValueError, TypeError, KeyError, IndexError, AttributeError: A snapshot that is
                not what :meth:`_snapshot` writes.
        """
        if snap["projects_dir"] != self.projects_dir:
            return
        kinds = [(str(w), str(m), _STATUS[s]) for w, m, s in snap["kinds"]]
        table = snap["facts"]
        if not all(map(is_facts, table)):
            raise ValueError("snapshot facts that are not facts")
        if columns["kind"] and not -1 <= min(columns["kind"]) <= max(columns["kind"]) < len(kinds):
            raise ValueError("a snapshot kind out of range")
        projects: list[_Project] = []
        times: dict[str | None, _dt.datetime | None] = {None: None}
        start = 0
        for data in snap["projects"]:
            name, names = data["name"], data["names"]
            if not _plain_names([name]) or not _plain_names(names):
                raise ValueError("a folder name that is not one plain path component")
            p = _Project(name, f"{self._base}/{name}/sessions")
            n = len(names)
            end = start + n
            p.mtime, p.ctime = columns["mtime"][start:end], columns["ctime"][start:end]
            p.ino, p.size = columns["ino"][start:end], columns["size"][start:end]
            kind: list[int | None] = columns["kind"][start:end]
            if len(p.size) != n:
                raise ValueError("fewer numbers than entries")
            start = end
            for i in data["untrusted"]:
                p.mtime[i] = p.ctime[i] = p.ino[i] = p.size[i] = None
            while -1 in kind:
                kind[kind.index(-1)] = None  # rare: entries without a summary
            digests = data["digests"]
            current, created, updated = data["current_phase"], data["created"], data["updated"]
            if any(len(c) != n for c in (digests, current, created, updated)):
                raise ValueError("snapshot columns of different lengths")
            for column, types in ((digests, str), (current, int), (created, str), (updated, str)):
                if not set(map(type, column)) <= {types, _NONE}:
                    raise TypeError("a snapshot column with values of another type")
            for text in set(created).union(updated).difference(times):
                times[text] = _from_iso(text)
            pid: list[str | None] = [None] * n
            for i, value in data["project_id"]:
                pid[i] = str(value)
            sid: list[str | None] = [None] * n
            for i, value in data["session_id"]:
                sid[i] = str(value)
            waiting: list[tuple[Phase, ...]] = [()] * n
            for i, phases in data["waiting"]:
                waiting[i] = tuple(
                    (int(a), str(b), str(c), None if d is None else _from_iso(d))
                    for a, b, c, d in phases
                )
            outputs: list[list[Known | None] | None] = [None] * n
            for i, known in data["outputs"]:
                session = f"{self._prefix}{name}/sessions/{names[i]}/"
                found: list[Known | None] = [
                    None if k is None else (_dir(k[0]), tuple(session + str(o) for o in k[1]))
                    for k in known
                ]
                if len(found) != len(waiting[i]):
                    raise ValueError("outputs that do not fit the waiting phases")
                outputs[i] = found
            p.listing = _dir(data["listing"])
            p.built = False
            p.names = names
            p.paths = [f"{p.folder}/{s}/{MANIFEST}" for s in names]
            p.digests, p.kind, p.current, p.pid, p.sid = digests, kind, current, pid, sid
            p.created = list(map(times.__getitem__, created))
            p.updated = list(map(times.__getitem__, updated))
            p.created_iso, p.updated_iso = created, updated
            p.waiting, p.outputs = waiting, outputs
            p.facts = [None if f < 0 else table[f] for f in columns["facts"][start - n : start]]
            p.summaries = [None] * n
            projects.append(p)
        if start != len(columns["mtime"]):
            raise ValueError("more numbers than entries")
        runs: Runs = []
        listed: dict[int, list[int]] = {id(p): [] for p in projects}
        done = 0
        for number, count in snap["runs"]:
            project = projects[number]
            entries = columns["order"][done : done + count]
            if len(entries) != count or count < 1:
                raise ValueError("a run of the order that is empty or truncated")
            done += count
            runs.append((project, entries))
            listed[id(project)].extend(entries)
        if done != len(columns["order"]):
            raise ValueError("more numbers than entries in the order")
        for p in projects:  # the order holds each entry with a summary once, and no other
            entries = listed[id(p)]
            if len(set(entries)) != len(entries) or len(entries) != len(p.kind) - p.kind.count(
                None
            ):
                raise ValueError("an order that is not the entries with a summary")
            if entries and (min(entries) < 0 or None in map(p.kind.__getitem__, entries)):
                raise ValueError("an order that names an entry without a summary")
        base_names = snap["base_names"]
        if not _plain_names(base_names) or any(n.startswith(".") for n in base_names):
            raise ValueError("a project folder name that is not one plain path component")
        if len({p.name for p in projects}) != len(projects):
            raise ValueError("a project folder twice")
        self._base_listing = _dir(snap["base"])
        self._base_names = list(base_names)
        self._projects = {p.name: p for p in projects}
        self._kinds = kinds
        self._kind_codes = {k: n for n, k in enumerate(kinds)}
        self._order = runs

    @property
    def snapshot_path(self) -> Path:
        """The snapshot file, next to the SQLite file (``sessions.idx``)."""
        return self.path.with_suffix(".idx")

    def _save(self) -> None:
        """Write the snapshot (and new frontmatter) if memory is ahead of the files."""
        if not self._dirty:
            return
        live = {
            d
            for p in self._projects.values()
            for d, k in zip(p.digests, p.kind, strict=True)
            if k is not None and d is not None
        }
        self._fm.keep_only(live)
        try:
            self._fm.write(live)  # first: what the snapshot refers to
            _write_file(self.snapshot_path, _pack(*self._snapshot()))
        except (OSError, sqlite3.Error):
            # Read-only store, full disk, busy for long: memory serves. Not retried until
            # something changes again (each try costs a snapshot); pending frontmatter stays.
            pass
        self._dirty = False


def _pack(snapshot: dict[str, Any], columns: dict[str, list[int]]) -> bytes:
    """The snapshot file: a magic line, the JSON's length in bytes, the JSON, the columns.

    The integer columns follow the JSON as little-endian 64-bit arrays (typecodes and
    lengths in the JSON's ``"columns"``: inode and size unsigned, the rest signed).
    """
    arrays = {k: array.array(_INT_COLUMNS[k], v) for k, v in columns.items()}
    layout = [[k, len(a)] for k, a in arrays.items()]
    text = json.dumps({**snapshot, "columns": layout}, ensure_ascii=False, separators=(",", ":"))
    data = text.encode("utf-8")
    if sys.byteorder != "little":  # pragma: no cover (no big-endian CI)
        for a in arrays.values():
            a.byteswap()
    return b"".join([_MAGIC, f"{len(data)}\n".encode("ascii"), data, *map(bytes, arrays.values())])


def _unpack(data: bytes) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Split a snapshot file (see :func:`_pack`).

    Raises:
        ValueError: Not a snapshot file of this version, or a truncated one.
    """
    if not data.startswith(_MAGIC):
        raise ValueError("not a session index snapshot of this version")
    start = data.index(b"\n", len(_MAGIC)) + 1
    end = start + int(data[len(_MAGIC) : start - 1])
    snapshot = json.loads(data[start:end])
    if not isinstance(snapshot, dict):
        raise ValueError("a snapshot that is not a JSON object")
    columns: dict[str, list[Any]] = {}
    for name, count in snapshot.pop("columns"):
        a = array.array(_INT_COLUMNS[name])
        if a.itemsize != 8:  # pragma: no cover (every supported platform)
            raise ValueError("no 64-bit array type")
        a.frombytes(data[end : end + 8 * count])
        if len(a) != count:
            raise ValueError("a truncated snapshot")
        if sys.byteorder != "little":  # pragma: no cover
            a.byteswap()
        columns[name] = a.tolist()
        end += 8 * count
    if end != len(data) or set(columns) != set(_INT_COLUMNS):
        raise ValueError("a snapshot with other columns than expected")
    return snapshot, columns


def _read_file(path: str, size: int) -> bytes:
    """A file's bytes, ``size`` being what a ``stat`` just said (the whole file if it grew).

    ``os.open``/``os.read``: no buffered file object for a small file read whole, ~2x
    cheaper than ``open().read()`` (10,000 manifests are read after a clone).

    Raises:
        OSError: It cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        data = os.read(fd, size + 1)  # a short read is the end of a regular file
        if len(data) > size:  # it grew since the stat: read to its end
            parts = [data]
            while chunk := os.read(fd, 1 << 16):
                parts.append(chunk)
            data = b"".join(parts)
        return data
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    """Write ``path`` whole with :func:`_git.atomic_write` (no fsync: it is a cache).

    A crash may lose the new file (the old one stays) but never leaves half of one; temp files
    a crashed writer left beside it are removed once they are an hour old.

    Raises:
        OSError: The folder cannot be created or written.
    """
    folder = path.parent
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        hour_ago = time.time() - 3600
        for entry in entries:  # left by a writer that crashed
            if entry.name.startswith(f".{path.name}.") and entry.name.endswith(_git.TMP_SUFFIX):
                if entry.stat().st_mtime < hour_ago:
                    Path(entry.path).unlink(missing_ok=True)
    _git.atomic_write(path, data)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while many long-lived objects are made.

    A new process's first listing makes ~30,000 container objects (10,000 summaries and
    their ``__dict__``, identity tuples) that all survive; as they accumulate CPython runs
    full collections that scan the whole heap (pydantic, GitPython, …) and find nothing:
    measured, that doubled the time to build the summaries. Reference counting frees
    temporaries as usual; the collector is enabled again on exit, if it was enabled.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _plain_names(names: list[Any]) -> bool:
    """Whether a snapshot's folder names are each one path component (not ``.``/``..``)."""
    joined = "\0".join(names)  # TypeError if one is not a string
    return "/" not in joined and not {"", ".", ".."} & set(names)


def _dir(value: Any) -> DirIdent | None:
    if value is None:
        return None
    mtime, ctime, ino = value
    return (int(mtime), int(ctime), int(ino))
