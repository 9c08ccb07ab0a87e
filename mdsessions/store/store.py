"""The public API's entry point: :class:`Store`, one git repository holding sessions.

Every mutating call is exactly one git commit, or nothing: the manifest is read, modified and
written under the store's writer lock, the documents are rendered from the templates, and the
git layer records them in one commit with the ``Mdsessions-*`` trailers of DESIGN.md.

The other modules of :mod:`mdsessions.store` do one job each for it (see the package's
docstring); the session status rules are :mod:`mdsessions.models.state`.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from mdsessions.cache.log import LogIndex
from mdsessions.cache.sessions import SessionIndex, SessionSummary, phase_outputs, summarize
from mdsessions.documents.frontmatter import Document, Renderer, kind_of, loads
from mdsessions.documents.frontmatter import split as split_frontmatter
from mdsessions.documents.yaml import MAX_FRONTMATTER_BYTES
from mdsessions.errors import (
    DocumentError,
    InvalidIdentifierError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
    StoreNotFoundError,
)
from mdsessions.git import repo as _git
from mdsessions.git.objects import SizedLRU
from mdsessions.git.repo import CommitInfo, Identity
from mdsessions.models.results import Result
from mdsessions.models.schema import (
    PhaseEntry,
    ReviewState,
    SessionManifest,
    SessionStatus,
    UTCTime,
    utc_now,
)
from mdsessions.models.workflow import Workflow
from mdsessions.store import edits, links, names
from mdsessions.store.checks import D, build, decode, parse_rereading
from mdsessions.store.commits import RUNNER_IDENTITY, commit_message, log_commit
from mdsessions.store.config import new_store_files, read_store_config
from mdsessions.store.edits import EditedFile
from mdsessions.store.integrity import Problem
from mdsessions.store.lifecycle import without_paused

# Names imported "as" themselves are re-exported: other modules import them from here.
from mdsessions.store.paths import CHECKPOINT as CHECKPOINT
from mdsessions.store.paths import CONFIG_FILE as CONFIG_FILE
from mdsessions.store.paths import DEFAULT_BRANCH as DEFAULT_BRANCH
from mdsessions.store.paths import FEEDBACK as FEEDBACK
from mdsessions.store.paths import MANIFEST as MANIFEST
from mdsessions.store.paths import WORKFLOWS_DIR as WORKFLOWS_DIR
from mdsessions.store.paths import check_id as check_id
from mdsessions.store.secrets import redact_document, redact_file, store_redactor
from mdsessions.store.session import Session
from mdsessions.store.workflows import WorkflowRegistry

__all__ = [
    "Commit",
    "EditedFile",
    "Identity",
    "InboxItem",
    "Problem",
    "Session",
    "SessionSummary",
    "Store",
]

Commit = CommitInfo


class InboxItem(Result):
    """A phase waiting for its reviewer (:meth:`Store.inbox`)."""

    project_id: str = Field(serialization_alias="project")
    """Project id."""
    session_id: str = Field(serialization_alias="session")
    """Session id."""
    phase: int
    """Phase number."""
    phase_name: str
    """Phase name."""
    waiting_since: UTCTime | None
    """When the phase completed and the review began (UTC)."""
    feedback: str = Field(serialization_alias="feedback_path")
    """Store-relative path of the ``user_feedback.md`` to edit."""
    outputs: tuple[str, ...] = Field(serialization_alias="output_paths")
    """Store-relative paths of the phase's agent outputs to read."""


# The parsed-document cache: 8 MB (estimated: ~1,000 documents of 2 KB); a document costs
# 1 KB + 4x its file (tracemalloc: 2.2-3.3x for manifests, checkpoints, agent outputs).
DOC_CACHE_BYTES, DOC_ENTRY_COST, DOC_COST_FACTOR = 8 * 1024 * 1024, 1024, 4


class Store:
    """A git-backed markdown store (one git repository).

    Use :meth:`init` to create one and :meth:`open` to open one. Stores are safe to share
    between threads and processes: writers serialize on an inter-process lock, readers do not.

    Args:
        root: The repository's working-tree root.
        lock_timeout: Seconds a write waits for the writer lock before ``LockTimeoutError``.
        durable: fsync objects, refs, the index and files on every write (slower; see
            docs/performance.md). ``None``: the store's ``durable`` setting in the ``[store]``
            table of ``mdsessions.toml`` (default false), so the command line follows it too.
        author: The identity of the runner's commits
            (default ``mdsessions <mdsessions@localhost>``).

    Attributes:
        root: The repository's working-tree root (absolute).
        projects_dir: Store-relative folder of ``{project_id}/sessions/…`` (``"."``: root).
        branch: The branch mdsessions writes to (``[store] branch``).
        author: The identity of the runner's commits (author and committer).
        redactor: Secrets out of every document, file and message it commits (``[redaction]``).
        git: The repository's git verbs (:class:`mdsessions.git.repo.GitRepo`), for the
            layers above the store: history reads versions and diffs, bundles, pushes,
            fetches and merges through it. A write of the store itself goes through
            :meth:`commit` (rendered documents, the writer lock, one commit).

    Example:
        >>> store = Store.init("my-store")                             # doctest: +SKIP
        >>> s = store.create_session("project-123", "session-456")     # doctest: +SKIP
        >>> s.save_agent_output(1, "concept_expansion", "# Concept…")  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        lock_timeout: float = 60.0,
        durable: bool | None = None,
        author: Identity | str | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        config = read_store_config(self.root)
        self.projects_dir = config.projects_dir
        self.branch = config.branch
        if durable is None:
            durable = config.durable()
        self.git = _git.GitRepo(
            self.root, lock_timeout=lock_timeout, durable=durable, branch=self.branch
        )
        self._workflows = WorkflowRegistry(self.root, config.data, self.git)
        self.redactor = store_redactor(config.path, config.data)
        if isinstance(author, str):
            author = Identity.parse(author)
        self.author = (author or RUNNER_IDENTITY).checked()
        self.git.identity = self.author
        # A crashed writer's leftovers, and saves a racing git command dropped, are put
        # right now if no writer is active (else that writer does it first).
        self.git.recover_on_open()
        self._renderer: Renderer | None = None
        # Parsed documents by path, checked against the file's bytes; bounded in bytes.
        self._cache: SizedLRU[str, tuple[bytes, type[Document], dict[str, Any]]]
        self._cache = SizedLRU(DOC_CACHE_BYTES)
        self._log_index: LogIndex | None = None
        self._session_index: SessionIndex | None = None

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str] = ".",
        *,
        projects_dir: str = "projects",
        **options: Any,
    ) -> Store:
        """Create a store: a git repository with ``mdsessions.toml`` and ``.gitignore``.

        Initialising an existing store is a no-op that opens it.

        Args:
            path: The folder (created if missing).
            projects_dir: Store-relative folder that holds ``{project_id}/sessions/…``
                (``"."`` for the store root itself).
            **options: Passed to :class:`Store` (``lock_timeout``, ``durable``, ``author``).

        Returns:
            The open store.

        Raises:
            StoreError: If ``path`` is a git repository that is not a store, or git fails.
        """
        root = Path(path).resolve()
        if (root / CONFIG_FILE).is_file() and (root / ".git").is_dir():
            return cls(root, **options)
        if (root / ".git").exists():
            raise StoreError(
                f"{root} is already a git repository but not an mdsessions store; "
                "use an empty folder (mdsessions keeps its own repository)"
            )
        _git.init_repository(root, branch=DEFAULT_BRANCH)
        git = _git.GitRepo(root, branch=DEFAULT_BRANCH)
        files = new_store_files(projects_dir, DEFAULT_BRANCH)
        with git.writer():
            git.commit(
                files,
                message=commit_message("init: mdsessions store", kind="init"),
                author=RUNNER_IDENTITY,
                committer=RUNNER_IDENTITY,
                check_edits=False,
            )
        git.close()
        return cls(root, **options)

    @classmethod
    def open(cls, path: str | os.PathLike[str] = ".", **options: Any) -> Store:
        """Open the store at or above ``path`` (found the way git finds a repository).

        Args:
            path: A folder inside the store.
            **options: Passed to :class:`Store`.

        Returns:
            The open store.

        Raises:
            StoreNotFoundError: If no enclosing git repository holds ``mdsessions.toml``.
        """
        start = Path(path)
        if not start.exists():
            raise StoreNotFoundError(f"{start}: no such folder")
        root = _git.find_repository(start)
        if root is None:
            raise StoreNotFoundError(
                f"{start.resolve()} is not inside an mdsessions store (no git repository found); "
                "run 'mdsessions init' first"
            )
        return cls(root, **options)

    def close(self) -> None:
        """Release git child processes and caches. The store may be used again afterwards."""
        self.git.close()
        self._cache.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- helpers used by Session ----------------------------------------------------------

    @property
    def renderer(self) -> Renderer:
        """The Jinja renderer (the store's ``.mdsessions/templates/`` override the defaults)."""
        if self._renderer is None:
            self._renderer = Renderer(self.root / ".mdsessions" / "templates")
        return self._renderer

    def rel(self, *parts: str) -> str:
        """Join parts into a store-relative ``/`` path below the projects folder."""
        base = [] if self.projects_dir == "." else [self.projects_dir]
        return "/".join([*base, *parts])

    def read_text(self, rel: str) -> str:
        """Read a working-tree file as UTF-8 text.

        Raises:
            FileNotFoundError: If it does not exist.
            DocumentError: If it is not valid UTF-8.
        """
        return decode(self.git.read_worktree(rel), rel)

    def read_doc(self, rel: str, model: type[D]) -> D:
        """Read and parse a document from the working tree (parsed form cached by content).

        Raises:
            FileNotFoundError: If the file does not exist.
            DocumentError: If it does not parse or validate.
        """
        data = self.git.read_worktree(rel)
        hit = self._cache.get(rel)
        if hit is not None and hit[0] == data and hit[1] is model:
            return model.model_validate(hit[2])  # a fresh copy the caller may change
        data, doc = parse_rereading(rel, data, model, self.git.read_worktree)
        self._remember(rel, data, doc, model)
        return doc

    def _remember(self, rel: str, data: bytes, doc: Document, model: Any = None) -> None:
        cost = DOC_ENTRY_COST + DOC_COST_FACTOR * len(data)
        self._cache.put(rel, (data, model or type(doc), doc.model_dump(by_alias=True)), cost)

    def render(self, doc: Document, **context: Any) -> bytes:
        """Render a document; output of a store's own templates must parse back to the same model.

        Raises:
            DocumentError: If a (store-supplied) template produced a file that does not
                round-trip; nothing is written in that case.
        """
        probe = json.dumps(doc.model_dump(mode="json"), ensure_ascii=False)
        text = self.renderer.render(doc, **context)
        try:
            probe.encode("utf-8")  # the fields, whatever the template escapes
            encoded = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise DocumentError(
                f"the {kind_of(doc).value} holds U+{ord(exc.object[exc.start]):04X}, a lone "
                "surrogate that UTF-8 cannot store; pass text decoded from valid UTF-8"
            ) from None
        head = split_frontmatter(text)[0].encode("utf-8")
        if len(head) > MAX_FRONTMATTER_BYTES:
            raise DocumentError(
                f"the {kind_of(doc).value} frontmatter would be {len(head)} bytes, over "
                f"the {MAX_FRONTMATTER_BYTES}-byte limit; shorten the long field (an idea, an "
                "error message, a list)"
            )
        if not self.renderer.overridden:
            return encoded  # the package templates round-trip (tests/test_documents.py)
        back = loads(text, path=None)
        if back != doc:
            raise DocumentError(
                "the template output does not parse back to the same document; check the "
                "store's templates in .mdsessions/templates/"
            )
        return encoded

    def commit(
        self,
        files: Mapping[str, Document | bytes | None],
        *,
        message: str,
        author: Identity | None = None,
        check_edits: bool = True,
        context: Mapping[str, Mapping[str, Any]] | None = None,
        in_place: Mapping[str, os.stat_result] | None = None,
    ) -> str | None:
        """Render documents and record them (and raw bytes) as one commit, under :meth:`writing`.

        Returns:
            The new commit id, or ``None`` when nothing changed.
        """
        raw, docs = self._render_files(files, context)
        # A file redacted on its way in is written back, so the working tree matches the commit.
        in_place = {r: st for r, st in (in_place or {}).items() if raw.get(r) is files.get(r)}
        return self._commit_rendered(
            raw, docs, message=message, author=author, check_edits=check_edits, in_place=in_place
        )

    def _render_files(
        self,
        files: Mapping[str, Document | bytes | None],
        context: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> tuple[dict[str, bytes | None], dict[str, Document]]:
        raw: dict[str, bytes | None] = {}
        docs: dict[str, Document] = {}
        context = links.store_contexts(self, files, context)  # the documents' links
        for rel, value in files.items():
            if value is None:
                raw[rel] = value
            elif isinstance(value, bytes):
                raw[rel] = redact_file(value, self.redactor, rel=rel)
            else:
                value = redact_document(value, self.redactor, rel=rel)
                raw[rel] = self.render(value, **(context or {}).get(rel, {}))
                docs[rel] = value
        return raw, docs

    def _commit_rendered(
        self,
        raw: Mapping[str, bytes | None],
        docs: Mapping[str, Document],
        *,
        message: str,
        author: Identity | None,
        check_edits: bool,
        planned_on: str | None = None,
        in_place: Mapping[str, os.stat_result] | None = None,
    ) -> str | None:
        began = time.perf_counter()
        sha = self.git.commit(
            raw,
            message=self.redactor.redact(message),
            author=author or self.author,
            committer=self.author,
            check_edits=check_edits,
            planned_on=planned_on,
            in_place=in_place,
        )
        for rel, doc in docs.items():
            self._remember(rel, raw[rel] or b"", doc)  # a document always renders to bytes
        log_commit(message, sha, began, files=len(raw))
        return sha

    @property
    def log_index(self) -> LogIndex:
        """The store's history index (a rebuildable cache in ``.mdsessions/cache/``)."""
        if self._log_index is None:
            self._log_index = LogIndex(
                self.git, self.root / ".mdsessions" / "cache" / "log.sqlite3"
            )
        return self._log_index

    def writing(self) -> Any:
        """The writer lock as a context manager (re-entrant in one thread)."""
        return self.git.writer()

    def registered_workflows(self) -> dict[str, Path]:
        """The ``[workflows]`` table of ``mdsessions.toml``: name → file (resolved).

        Re-read whenever the file changed (a pull may have brought registrations).
        """
        return self._workflows.registered()

    def workflow(self, name: str | Path | Workflow | None) -> Workflow:
        """Find a workflow by name (``mdsessions.toml`` ``[workflows]``), path or object.

        A workflow registered from a file outside the store is read from its copy in the
        store (``workflows/<name>.toml``); on the machine that registered it, from the
        original file while that still holds the same bytes, so Python agents beside it
        import as they did.

        Args:
            name: A registered or built-in name, a TOML path, a :class:`Workflow`, or
                ``None`` for the default (``idea_validation``).

        Returns:
            The workflow.

        Raises:
            WorkflowError: If it cannot be found or is invalid.
        """
        return self._workflows.find(name)

    # -- sessions -------------------------------------------------------------------------

    def session_rel(self, project_id: str, session_id: str) -> str:
        """Store-relative folder of a session (ids validated)."""
        return self.rel(
            check_id(project_id, "project id"), "sessions", check_id(session_id, "session id")
        )

    def create_session(
        self,
        project_id: str,
        session_id: str | None = None,
        *,
        workflow: str | Path | Workflow | None = None,
        mode: str | None = None,
        user_id: str | None = None,
        idea: str | None = None,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        author: Identity | None = None,
    ) -> Session:
        """Create a session: its manifest and the phase table of its mode, in one commit.

        Args:
            project_id: Project id (``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``).
            session_id: Session id; default ``session-YYYYmmdd-HHMMSS-xxxx`` (UTC).
            workflow: Workflow name, TOML path or object (default ``idea_validation``).
            mode: Execution mode (default: the workflow's default, ``mvp``).
            user_id: Who the session is for (seed 003 ``user_id``).
            idea: The input the runner gives the agents (markdown).
            tags: Free-form labels.
            metadata: Free-form ``key: value`` pairs, kept verbatim (``metadata``).
            author: Commit author (default: the store's runner identity).

        Returns:
            The new session.

        Raises:
            InvalidIdentifierError: A bad project or session id.
            WorkflowError: An unknown workflow or mode.
            SessionExistsError: The session already exists (nothing changed).
        """
        if session_id is None:
            session_id = (
                "session-" + utc_now().strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()
            )
        rel = self.session_rel(project_id, session_id)
        wf = self.workflow(workflow)
        mode = mode or wf.default_mode
        phases = wf.phases_for(mode)
        if user_id is not None and ("\n" in user_id or "\r" in user_id):
            raise InvalidIdentifierError(f"invalid user id {user_id!r}: expected one line")
        now = utc_now()
        manifest = build(
            SessionManifest,
            project_id=project_id,
            session_id=session_id,
            user_id=user_id,
            workflow=wf.name,
            mode=mode,
            status=SessionStatus.CREATED,
            created=now,
            updated=now,
            current_phase=phases[0].number,
            phases=[
                PhaseEntry(
                    number=p.number,
                    slug=p.slug,
                    name=p.name,
                    review=ReviewState.REQUIRED if p.review else ReviewState.NOT_REQUIRED,
                )
                for p in phases
            ],
            tags=list(tags),
            metadata=dict(metadata or {}),
            idea=idea,
        )
        session = Session(self, project_id, session_id)
        with self.writing():
            if (self.root / rel / MANIFEST).exists():
                raise SessionExistsError(f"session {project_id}/{session_id} already exists")
            files: dict[str, Document | bytes | None] = {f"{rel}/{MANIFEST}": manifest}
            recorded, outside = self._workflows.registration(wf)
            files.update(recorded)
            self.commit(
                files,
                message=commit_message(
                    f"session({project_id}/{session_id}): created ({wf.name}, {mode})",
                    kind="session",
                    project=project_id,
                    session=session_id,
                    status=manifest.status.value,
                ),
                author=author,
            )
            if outside is not None:
                self._workflows.remember_source(wf.name, outside)
        return session

    def session(self, project_id: str, session_id: str) -> Session:
        """Return an existing session.

        Raises:
            InvalidIdentifierError: A bad id.
            SessionNotFoundError: No such session.
        """
        rel = self.session_rel(project_id, session_id)
        if not (self.root / rel / MANIFEST).is_file():
            raise SessionNotFoundError(
                f"no session {project_id}/{session_id} in {self.root} (expected {rel}/{MANIFEST})"
            )
        return Session(self, project_id, session_id)

    def find_session(self, ref: str) -> Session:
        """Resolve ``PROJECT/SESSION``, ``PROJECT/latest``, a bare id or a unique prefix.

        Raises:
            InvalidIdentifierError: A part of ``ref`` is not an id.
            SessionNotFoundError: None or several match (see :func:`names.resolve`).
        """
        return Session(self, *names.resolve(self, ref))

    def session_names(self, prefix: str = "") -> list[str]:
        """Session names starting with ``prefix``, sorted (shell completion: ``names.complete``)."""
        return names.complete(self, prefix)

    def _manifest_paths(self, project_id: str | None = None) -> list[Path]:
        base = self.root if self.projects_dir == "." else self.root / self.projects_dir
        project = check_id(project_id, "project id") if project_id else "*"
        return sorted(base.glob(f"{project}/sessions/*/{MANIFEST}"))

    def sessions(self, project_id: str | None = None) -> list[SessionManifest]:
        """Every session's manifest, ordered by project then creation time.

        Args:
            project_id: Only this project's sessions.

        Returns:
            Manifests (a file that fails to parse is skipped; :meth:`validate` reports it).
        """
        out = []
        for path in self._manifest_paths(project_id):
            rel = path.relative_to(self.root).as_posix()
            try:
                out.append(self.read_doc(rel, SessionManifest))
            except (DocumentError, OSError):
                continue
        out.sort(key=lambda m: (m.project_id, m.created, m.session_id))
        return out

    def iter_sessions(self, project_id: str | None = None) -> Iterator[Session]:
        """Every session as a :class:`Session`."""
        for path in self._manifest_paths(project_id):
            yield Session(self, path.parent.parent.parent.name, path.parent.name)

    def list_sessions(self, project_id: str | None = None) -> list[SessionSummary]:
        """Every session's summary, fast on large stores (a validated cache).

        Every call checks the files (one stat per session, one per folder) and parses again
        only manifests whose bytes changed, so an edit made by anyone is seen at once. The
        index is a cache in ``.mdsessions/cache/``; a store it cannot be written in is listed
        from memory after a first full parse (see :mod:`mdsessions.cache.sessions`).

        Args:
            project_id: Only this project's sessions.

        Returns:
            Summaries ordered by project, creation time, session id (a manifest that fails to
            parse is skipped; :meth:`validate` reports it).

        Raises:
            InvalidIdentifierError: A bad project id.
        """
        if project_id is not None:
            check_id(project_id, "project id")
        try:
            return self.session_index.summaries(project_id)
        except (OSError, sqlite3.Error):
            return [
                summarize(m, self.rel(m.project_id, "sessions", m.session_id, MANIFEST))
                for m in self.sessions(project_id)
            ]

    @property
    def session_index(self) -> SessionIndex:
        """The manifest summary cache (``.mdsessions/cache/sessions.sqlite3``)."""
        if self._session_index is None:
            self._session_index = SessionIndex(
                self, self.root / ".mdsessions" / "cache" / "sessions.sqlite3"
            )
        return self._session_index

    def inbox(self, project_id: str | None = None, *, paused: bool = False) -> list[InboxItem]:
        """Every phase awaiting review across the store, oldest first.

        Served by the same validated cache as :meth:`list_sessions`, which also keeps each
        waiting phase's outputs (checked with one stat of the phase folder per call).

        Args:
            project_id: Only this project's sessions.
            paused: Include the phases of paused sessions (left out by default).

        Returns:
            One item per waiting phase, ordered by ``waiting_since`` (then project, session,
            phase).

        Raises:
            InvalidIdentifierError: A bad project id.
        """
        if project_id is not None:
            check_id(project_id, "project id")
        try:
            items = [
                InboxItem(
                    project_id=project,
                    session_id=session,
                    phase=number,
                    phase_name=name,
                    waiting_since=since,
                    feedback=feedback,
                    outputs=outputs,
                )
                for project, session, number, name, since, feedback, outputs in (
                    self.session_index.waiting(project_id)
                )
            ]
            return items if paused else without_paused(self, items, project_id)
        except (OSError, sqlite3.Error):
            pass
        items = []
        for summary in self.list_sessions(project_id):
            for number, name, directory, completed in summary.waiting:
                folder = self.rel(summary.project_id, "sessions", summary.session_id, directory)
                items.append(
                    InboxItem(
                        project_id=summary.project_id,
                        session_id=summary.session_id,
                        phase=number,
                        phase_name=name,
                        waiting_since=completed,
                        feedback=f"{folder}/{FEEDBACK}",
                        outputs=phase_outputs(self.root, folder),
                    )
                )
        epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
        items.sort(key=lambda i: (i.waiting_since or epoch, i.project_id, i.session_id, i.phase))
        return items if paused else without_paused(self, items, project_id)

    # -- edits made by people -------------------------------------------------------------

    def unrecorded_edits(self) -> list[EditedFile]:
        """Files below the projects folder that differ from the last commit.

        Returns:
            One entry per changed file with whether it validates.
        """
        return edits.unrecorded_edits(self)

    def record_edits(
        self,
        paths: Sequence[str] | None = None,
        *,
        author: Identity | str | None = None,
        message: str | None = None,
    ) -> tuple[str | None, list[EditedFile]]:
        """Record people's edits: valid files become one commit authored by the person.

        A feedback file's decision is applied to the session manifest in the same commit.
        Files that do not validate stay uncommitted, untouched, and are returned.

        Args:
            paths: Only these store-relative paths (default: every edited file).
            author: The person (``Name <email>``); default: the feedback's reviewer, else
                git's ``user.name``/``user.email``, else the login name.
            message: Commit subject (default: one naming the files).

        Returns:
            ``(commit id or None, the files left unrecorded with their errors)``.

        Raises:
            DocumentError: Never for a single bad file (it is returned instead).
        """
        return edits.record_edits(self, paths, author=author, message=message)

    def person(
        self, author: Identity | str | None = None, reviewers: Sequence[str] = ()
    ) -> Identity:
        """The identity a person's commit is authored by (a review, a recorded edit, a restore).

        Args:
            author: The person: an :class:`Identity` or ``"Name <email>"``; ``None`` (or
                ``""``) to find one.
            reviewers: Names recorded in the feedback being committed (``reviewer``), tried
                in order when ``author`` is not given.

        Returns:
            ``author``; else the first reviewer written ``Name <email>``; else git's
            ``user.name``/``user.email`` of the store; else the first reviewer's name (or the
            login name) with ``<login>@localhost``.

        Raises:
            ValueError: ``author`` is not ``Name <email>``, or holds a line break.
        """
        if isinstance(author, Identity):
            return author.checked()
        if isinstance(author, str) and author:
            return Identity.parse(author).checked()
        for reviewer in reviewers:
            try:
                return Identity.parse(reviewer).checked()
            except ValueError:
                continue
        configured = self.git.config_identity()
        if configured is not None:
            return configured
        name = reviewers[0] if reviewers else None
        try:
            login = getpass.getuser()
        except (KeyError, OSError):  # pragma: no cover - no passwd entry
            login = "reviewer"
        return Identity(name or login, f"{login}@localhost")

    # -- integrity ------------------------------------------------------------------------

    def validate(self) -> list[Problem]:
        """Validate every session: documents parse, manifest agrees with checkpoints.

        Returns:
            Every problem found (empty when the store is sound).
        """
        problems: list[Problem] = []
        for session in self.iter_sessions():
            problems.extend(session.validate())
        return problems

    def log(
        self,
        *,
        paths: Sequence[str] = (),
        max_count: int | None = None,
        skip: int = 0,
    ) -> list[CommitInfo]:
        """The store's history, newest first, trailers parsed (path-limited ``git log``)."""
        return self.git.log(paths, max_count=max_count, skip=skip)

    def read_at(self, commit: str, rel: str) -> bytes:
        """A file's content at a commit (``git show commit:path``).

        Raises:
            StoreError: If the commit is unknown.
            FileNotFoundError: If the file did not exist at that commit.
        """
        sha = self.git.resolve(commit)
        data = self.git.read_file(sha, rel)
        if data is None:
            raise FileNotFoundError(f"{rel} does not exist at {sha[:12]}")
        return data
