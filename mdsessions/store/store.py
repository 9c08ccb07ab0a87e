"""The public API: :class:`Store` (one git repository) and :class:`Session` (one session in it).

Every mutating call is exactly one git commit, or nothing: the manifest is read, modified and
written under the store's writer lock, the documents are rendered from the templates, and the
git layer records them in one commit with the ``Mdsessions-*`` trailers of DESIGN.md.

Layout (seed 003)::

    {projects_dir}/{project_id}/sessions/{session_id}/
        session_manifest.md
        phase_{N}_{slug}/checkpoint.md · {agent}.md … · user_feedback.md
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import getpass
import json
import os
import re
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mdsessions.cache.log import LogIndex
from mdsessions.cache.sessions import SessionIndex, SessionSummary, phase_outputs, summarize
from mdsessions.documents.frontmatter import Document, Renderer, kind_of, load_as, loads
from mdsessions.documents.frontmatter import split as split_frontmatter
from mdsessions.documents.yaml import MAX_FRONTMATTER_BYTES
from mdsessions.errors import (
    BranchMovedError,
    DocumentError,
    InvalidIdentifierError,
    MdsessionsError,
    PhaseNotFoundError,
    SessionExistsError,
    SessionLockedError,
    SessionNotFoundError,
    StoreError,
    StoreNotFoundError,
    UnrecordedEditError,
)
from mdsessions.git import repo as _git
from mdsessions.git.lock import LockTimeout, RunLock
from mdsessions.git.repo import CommitInfo, Identity
from mdsessions.models import state
from mdsessions.models.schema import (
    ID_PATTERN,
    AgentOutput,
    AgentPrompt,
    AgentRun,
    Checkpoint,
    FeedbackAction,
    PhaseEntry,
    PhaseStatus,
    ReviewState,
    SessionManifest,
    SessionStatus,
    UserFeedback,
    utc_now,
)
from mdsessions.models.workflow import Workflow, resolve_workflow
from mdsessions.store.config import ConfigEditError, set_key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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

CONFIG_FILE = "mdsessions.toml"
MANIFEST = "session_manifest.md"
CHECKPOINT = "checkpoint.md"
FEEDBACK = "user_feedback.md"
RUNNER_IDENTITY = Identity("mdsessions", "mdsessions@localhost")

#: The folder of a phase that holds the prompt each agent was given (``{agent}.md``).
PROMPTS_DIR = "prompts"

#: Times a session write is planned again when a commit made outside mdsessions changed its
#: files while the write was being made (then :class:`BranchMovedError` is raised).
_REPLANS = 3

#: The branch a new store is created on and writes to (``[store] branch``).
DEFAULT_BRANCH = "main"
#: Store-relative folder holding copies of workflow files registered from outside the store
#: (``workflows/<name>.toml``), so every clone can resume every session.
WORKFLOWS_DIR = "workflows"
#: Local git configuration (``.git/config``) naming the file outside the store a registered
#: workflow was copied from on this machine: ``mdsessions-workflow.<name>.source``.
_LOCAL_SOURCE_KEY = "mdsessions-workflow.{name}.source"
_BRANCH_RE = re.compile(r"(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<![./])")

_GITIGNORE = """\
# mdsessions: caches and locks (rebuildable), temp files of atomic writes
/.mdsessions/*
!/.mdsessions/templates/
*.mdstmp
"""

_CONFIG = """\
# mdsessions store configuration (tracked in git).
[store]
format = 1
projects_dir = "{projects_dir}"
branch = "{branch}"   # mdsessions writes only while this branch is checked out
# durable = true   # fsync every write (objects, refs, index, files): slower, survives power loss

# Workflows the runner can find by name: name = "path/to/workflow.toml" (relative to this file).
[workflows]
"""

#: The keys of an ``outputs`` entry of :meth:`Session.save_checkpoint`.
_OUTPUT_KEYS = frozenset(
    {
        "agent",
        "content",
        "status",
        "duration",
        "model",
        "input_tokens",
        "output_tokens",
        "cost",
        "tools_used",
        "executed",
        "retry_count",
        "exit_status",
        "error",
    }
)

T = TypeVar("T")
D = TypeVar("D", SessionManifest, Checkpoint, AgentOutput, UserFeedback, AgentPrompt)


@dataclass(frozen=True)
class Problem:
    """One finding of :meth:`Store.validate` / :meth:`Session.validate`.

    Attributes:
        path: Store-relative file the problem is in.
        reason: What is wrong and what was expected.
        line: 1-based line, when known.
    """

    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class EditedFile:
    """A file in the store that differs from the last commit (a person's unrecorded edit).

    Attributes:
        path: Store-relative path.
        change: ``modified``, ``added`` or ``deleted``.
        error: Why the file does not validate, or ``None`` when it does.
    """

    path: str
    change: str
    error: str | None = None


@dataclass(frozen=True)
class InboxItem:
    """A phase waiting for its reviewer (:meth:`Store.inbox`).

    Attributes:
        project_id: Project id.
        session_id: Session id.
        phase: Phase number.
        phase_name: Phase name.
        waiting_since: When the phase completed and the review began (UTC).
        feedback: Store-relative path of the ``user_feedback.md`` to edit.
        outputs: Store-relative paths of the phase's agent outputs to read.
    """

    project_id: str
    session_id: str
    phase: int
    phase_name: str
    waiting_since: _dt.datetime | None
    feedback: str
    outputs: tuple[str, ...]


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


def _trailers(**values: Any) -> str:
    lines = []
    for key, value in values.items():
        if value is None:
            continue
        name = "Mdsessions-" + "-".join(part.capitalize() for part in key.split("_"))
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def _message(subject: str, body: str = "", **trailers: Any) -> str:
    parts = [subject]
    if body:
        parts.append(body)
    parts.append(_trailers(**trailers))
    return "\n\n".join(parts)


@dataclass(frozen=True)
class _Plan:
    """A rendered write: file bytes (``None``: delete), their documents, the commit message."""

    raw: dict[str, bytes | None]
    docs: dict[str, Document]
    message: str
    author: Identity | None
    check_edits: bool
    planned_on: str | None = None
    """The branch's commit before the plan read the session's files (see ``GitRepo.commit``)."""


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
        config_path = self.root / CONFIG_FILE
        try:
            config = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if (self.root / ".git").exists():
                raise StoreNotFoundError(
                    f"{self.root} is a git repository without {CONFIG_FILE}: if it is a clone "
                    "of a store, the store's branch is not checked out (git switch main, or "
                    "clone with 'mdsessions clone URL'); a new store is made in an empty "
                    "folder with 'mdsessions init'"
                ) from None
            raise StoreNotFoundError(
                f"{self.root} is not an mdsessions store (no {CONFIG_FILE}); run 'mdsessions init'"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise StoreError(f"{config_path}: invalid TOML: {exc}") from None
        store_cfg = config.get("store", {})
        if store_cfg.get("format", 1) != 1:
            raise StoreError(
                f"{config_path}: store format {store_cfg.get('format')} is not supported"
            )
        projects_dir = str(store_cfg.get("projects_dir", "projects")).strip("/") or "."
        if projects_dir != "." and any(p in ("", "..", ".git") for p in projects_dir.split("/")):
            raise StoreError(
                f"{config_path}: projects_dir {projects_dir!r} must stay inside the store"
            )
        self.projects_dir = projects_dir
        branch = store_cfg.get("branch", DEFAULT_BRANCH)
        if not isinstance(branch, str) or not _BRANCH_RE.fullmatch(branch):
            raise StoreError(
                f"{config_path}: [store] branch must be a plain branch name like "
                f'"{DEFAULT_BRANCH}", got {branch!r}'
            )
        self.branch = branch
        self._workflow_paths = self._workflow_table(config)
        self._config_seen = self._config_signature()
        if durable is None:
            durable = store_cfg.get("durable", False)
            if not isinstance(durable, bool):
                raise StoreError(
                    f"{config_path}: [store] durable must be true or false, got {durable!r}"
                )
        self.git = _git.GitRepo(
            self.root, lock_timeout=lock_timeout, durable=durable, branch=self.branch
        )
        if isinstance(author, str):
            author = Identity.parse(author)
        self.author = (author or RUNNER_IDENTITY).checked()
        self.git.identity = self.author
        # A crashed writer's leftovers, and saves a racing git command dropped, are put
        # right now if no writer is active (else that writer does it first).
        self.git.recover_on_open()
        self._renderer: Renderer | None = None
        self._cache: dict[str, tuple[bytes, type[Document], dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()
        self._workflows: dict[str, tuple[tuple[int, int, int], Workflow]] = {}
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
        config = _CONFIG.format(projects_dir=projects_dir.strip("/") or ".", branch=DEFAULT_BRANCH)
        files = {".gitignore": _GITIGNORE.encode(), CONFIG_FILE: config.encode()}
        with git.writer():
            git.commit(
                files,
                message=_message("init: mdsessions store", kind="init"),
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
        with self._cache_lock:
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
        return _decode(self.git.read_worktree(rel), rel)

    def read_doc(self, rel: str, model: type[D]) -> D:
        """Read and parse a document from the working tree (parsed form cached by content).

        Raises:
            FileNotFoundError: If the file does not exist.
            DocumentError: If it does not parse or validate.
        """
        data = self.git.read_worktree(rel)
        with self._cache_lock:
            hit = self._cache.get(rel)
        if hit is not None and hit[0] == data and hit[1] is model:
            return model.model_validate(hit[2])  # a fresh copy the caller may change
        doc = load_as(model, _decode(data, rel), path=rel)
        with self._cache_lock:
            self._cache[rel] = (data, model, doc.model_dump(by_alias=True))
        return doc

    def _remember(self, rel: str, data: bytes, doc: Document) -> None:
        with self._cache_lock:
            self._cache[rel] = (data, type(doc), doc.model_dump(by_alias=True))

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
            return text.encode(
                "utf-8"
            )  # the package templates round-trip (tests/test_documents.py)
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
        for rel, value in files.items():
            if value is None or isinstance(value, bytes):
                raw[rel] = value
            else:
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
        sha = self.git.commit(
            raw,
            message=message,
            author=author or self.author,
            committer=self.author,
            check_edits=check_edits,
            planned_on=planned_on,
            in_place=in_place,
        )
        for rel, doc in docs.items():
            rendered = raw[rel]
            assert rendered is not None
            self._remember(rel, rendered, doc)
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

    def _config_signature(self) -> tuple[int, int, int]:
        try:
            st = (self.root / CONFIG_FILE).stat()
        except OSError:
            return (0, 0, 0)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _workflow_table(self, config: Mapping[str, Any]) -> dict[str, Path]:
        table = config.get("workflows", {})
        if not isinstance(table, dict):
            return {}
        return {str(k): (self.root / str(v)).resolve() for k, v in table.items()}

    def registered_workflows(self) -> dict[str, Path]:
        """The ``[workflows]`` table of ``mdsessions.toml``: name → file (resolved).

        Re-read whenever the file changed (a pull may have brought registrations).
        """
        signature = self._config_signature()
        if signature != self._config_seen:
            try:
                config = tomllib.loads((self.root / CONFIG_FILE).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                return dict(self._workflow_paths)
            self._workflow_paths = self._workflow_table(config)
            self._config_seen = signature
        return dict(self._workflow_paths)

    def _local_workflow_source(self, name: str) -> Path | None:
        value = self.git.config.get(_LOCAL_SOURCE_KEY.format(name=name), local=True)
        return Path(value) if value else None

    def workflow(self, name: str | Path | Workflow | None) -> Workflow:
        """Find a workflow by name (``mdsessions.toml`` ``[workflows]``), path or object.

        A workflow registered from a file outside the store is read from its copy in the
        store (``workflows/<name>.toml``); on the machine that registered it, from the
        original file while that still holds the same bytes, so Python agents beside it
        import as they did.

        Raises:
            WorkflowError: If it cannot be found or is invalid.
        """
        if isinstance(name, Workflow):
            return name
        key = str(name) if name is not None else "idea_validation"
        registered = self.registered_workflows()
        path = registered.get(key)
        if path is None:
            cached = self._workflows.get(key)
            if cached is not None:
                return cached[1]
            wf = resolve_workflow(name)
            self._workflows[key] = ((0, 0, 0), wf)
            return wf
        local = self._local_workflow_source(key)
        if local is not None and local != path:
            try:
                if local.read_bytes() == path.read_bytes():
                    path = local
            except OSError:
                pass
        try:
            st = path.stat()
            signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            signature = (0, 0, 0)
        cached = self._workflows.get(f"{key}\0{path}")
        if cached is not None and cached[0] == signature and signature != (0, 0, 0):
            return cached[1]
        wf = Workflow.from_toml(path)
        self._workflows[f"{key}\0{path}"] = (signature, wf)
        return wf

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
        manifest = _build(
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
            idea=idea,
        )
        session = Session(self, project_id, session_id)
        with self.writing():
            if (self.root / rel / MANIFEST).exists():
                raise SessionExistsError(f"session {project_id}/{session_id} already exists")
            files: dict[str, Document | bytes | None] = {f"{rel}/{MANIFEST}": manifest}
            recorded, outside = self._register_workflow(wf)
            files.update(recorded)
            self.commit(
                files,
                message=_message(
                    f"session({project_id}/{session_id}): created ({wf.name}, {mode})",
                    kind="session",
                    project=project_id,
                    session=session_id,
                    status=manifest.status.value,
                ),
                author=author,
            )
            if outside is not None:
                self._remember_workflow_source(wf.name, outside)
        return session

    def _register_workflow(self, wf: Workflow) -> tuple[dict[str, bytes], Path | None]:
        """The files that record ``wf`` in the store, so every clone finds it by name.

        * A file inside the store is registered by its store-relative path.
        * A file outside the store is copied to ``workflows/<name>.toml`` (updated when the
          file changed since) and that relative path registered; an absolute path never
          reaches ``mdsessions.toml`` (one registered by an older version is replaced).

        Nothing is registered when the workflow has no file, when another file inside the
        store is registered under its name (people sort that out), or when the
        configuration cannot take the key by a line edit.

        Returns:
            Store-relative path → new bytes (``mdsessions.toml`` and the copy), and the
            original file when it lies outside the store (remembered for this machine).
        """
        source = wf.source
        if source is None:
            return {}, None
        registered = self.registered_workflows().get(wf.name)
        try:
            inside = source.relative_to(self.root).as_posix()
        except ValueError:
            inside = None
        if inside is not None:
            if registered is not None:
                return {}, None  # registered already (this file, or another one: left to people)
            config = self._config_with(wf.name, inside)
            return ({CONFIG_FILE: config} if config is not None else {}), None
        copy_rel = f"{WORKFLOWS_DIR}/{wf.name}.toml"
        copy_path = (self.root / copy_rel).resolve()
        if registered is not None and registered != copy_path:
            try:
                registered.relative_to(self.root)
                return {}, None  # another file inside the store has the name: left to people
            except ValueError:
                pass  # an absolute path from an older version: replaced by the copy
        files: dict[str, bytes] = {}
        try:
            data = source.read_bytes()
        except OSError:
            return {}, None
        try:
            current = copy_path.read_bytes()
        except OSError:
            current = None
        if current != data:
            files[copy_rel] = data
        if registered != copy_path:
            config = self._config_with(wf.name, copy_rel)
            if config is None:
                return {}, None
            files[CONFIG_FILE] = config
        return files, source

    def _config_with(self, name: str, rel: str) -> bytes | None:
        """``mdsessions.toml`` with ``[workflows] name = "rel"`` (``None``: cannot be edited)."""
        try:
            current = (self.root / CONFIG_FILE).read_text(encoding="utf-8")
            return set_key(current, "workflows", name, rel).encode("utf-8")
        except (OSError, UnicodeDecodeError, ConfigEditError):
            return None

    def _remember_workflow_source(self, name: str, source: Path) -> None:
        """Note in ``.git/config`` (this machine only) where a copied workflow came from."""
        key = _LOCAL_SOURCE_KEY.format(name=name)
        if self.git.config.get(key, local=True) != str(source):
            with contextlib.suppress(StoreError):
                self.git.set_local_config(key, str(source))

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
        """Resolve ``project/session`` or a bare ``session`` id that is unique in the store.

        Raises:
            SessionNotFoundError: No such session, or a bare id that several projects use.
        """
        if "/" in ref:
            project_id, _, session_id = ref.partition("/")
            return self.session(project_id, session_id)
        check_id(ref, "session id")
        matches = [m for m in self._manifest_paths() if m.parent.name == ref]
        if not matches:
            raise SessionNotFoundError(f"no session {ref!r} in {self.root}")
        if len(matches) > 1:
            projects = sorted(m.parent.parent.parent.name for m in matches)
            raise SessionNotFoundError(
                f"session id {ref!r} exists in several projects ({', '.join(projects)}); "
                "write it as PROJECT/SESSION"
            )
        path = matches[0]
        return Session(self, path.parent.parent.parent.name, ref)

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

    def inbox(self, project_id: str | None = None) -> list[InboxItem]:
        """Every phase awaiting review across the store, oldest first.

        Served by the same validated cache as :meth:`list_sessions`, which also keeps each
        waiting phase's outputs (checked with one stat of the phase folder per call).

        Args:
            project_id: Only this project's sessions.

        Returns:
            One item per waiting phase, ordered by ``waiting_since`` (then project, session,
            phase).

        Raises:
            InvalidIdentifierError: A bad project id.
        """
        if project_id is not None:
            check_id(project_id, "project id")
        try:
            return [InboxItem(*item) for item in self.session_index.waiting(project_id)]
        except (OSError, sqlite3.Error):
            pass
        items: list[InboxItem] = []
        for summary in self.list_sessions(project_id):
            for number, name, directory, completed in summary.waiting:
                folder = self.rel(summary.project_id, "sessions", summary.session_id, directory)
                items.append(
                    InboxItem(
                        summary.project_id,
                        summary.session_id,
                        number,
                        name,
                        completed,
                        f"{folder}/{FEEDBACK}",
                        phase_outputs(self.root, folder),
                    )
                )
        epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
        items.sort(key=lambda i: (i.waiting_since or epoch, i.project_id, i.session_id, i.phase))
        return items

    # -- edits made by people -------------------------------------------------------------

    def unrecorded_edits(self) -> list[EditedFile]:
        """Files below the projects folder that differ from the last commit.

        Returns:
            One entry per changed file with whether it validates.
        """
        base = "" if self.projects_dir == "." else self.projects_dir
        proc = self.git.git(
            "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", base or "."
        )
        out = []
        entries = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
        i = 0
        while i < len(entries):
            item = entries[i]
            i += 1
            if len(item) < 4:
                continue
            code, rel = item[:2], item[3:]
            if code[0] == "R":
                i += 1
            if code == "??":
                change = "added"
            elif "D" in code:
                change = "deleted"
            else:
                change = "modified"
            error = None
            if change != "deleted" and rel.endswith(".md"):
                try:
                    loads(self.read_text(rel), path=rel)
                except (DocumentError, OSError) as exc:
                    error = str(exc)
            out.append(EditedFile(rel, change, error))
        return out

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
        with self.writing():
            edits = self.unrecorded_edits()
            edited = {e.path for e in edits}
            if paths is not None:
                wanted = {p.strip("/") for p in paths}
                edits = [e for e in edits if e.path in wanted]
            rejected = [e for e in edits if e.error]
            valid = [e for e in edits if not e.error]
            if not valid:
                return None, rejected
            files: dict[str, Document | bytes | None] = {}
            reviewers: list[str] = []
            sessions: dict[str, tuple[Session, list[UserFeedback]]] = {}
            as_read: dict[str, tuple[bytes, os.stat_result]] = {}
            for edit in valid:
                if edit.change == "deleted":
                    files[edit.path] = None
                    continue
                with (self.root / edit.path).open("rb") as fh:
                    st = os.fstat(fh.fileno())
                    files[edit.path] = data = fh.read()
                as_read[edit.path] = (data, st)
                if edit.path.endswith("/" + FEEDBACK):
                    fb = self.read_doc(edit.path, UserFeedback)
                    session = Session(self, fb.project_id, fb.session_id)
                    sessions.setdefault(session.rel, (session, []))[1].append(fb)
                    if fb.reviewer:
                        reviewers.append(fb.reviewer)
            contexts: dict[str, Mapping[str, Any]] = {}
            decisions = []
            for session, feedbacks in sessions.values():
                if session.manifest_rel in edited:
                    raise UnrecordedEditError(
                        f"{session.manifest_rel} has edits that are not recorded yet, and "
                        "recording the review must update it; record the manifest first "
                        f"(mdsessions record {session.manifest_rel}) or discard the edit "
                        "(git restore), then record the review"
                    )
                manifest = session.manifest()
                for fb in feedbacks:
                    session.phase_entry(fb.phase, manifest)  # PhaseNotFoundError
                    state.apply_feedback(manifest, fb.phase, fb.decision())
                    decisions.append(f"phase {fb.phase} {fb.decision().value}")
                manifest.updated = utc_now()
                files[session.manifest_rel] = manifest
            who = self._person(author, reviewers)
            for session, feedbacks in sessions.values():
                for fb in feedbacks:
                    rel = f"{session.phase_rel(fb.phase)}/{FEEDBACK}"
                    current = files[rel]
                    if isinstance(current, bytes):
                        files[rel] = _settle_feedback(current, fb, who.name)
            subject = message or (
                f"review({', '.join(sorted({s.ref for s, _ in sessions.values()}))}): "
                + "; ".join(decisions)
                if decisions
                else f"edit: {len(valid)} file(s) recorded by {who.name}"
            )
            # Session trailers only when the commit touches exactly one session.
            first = next(iter(sessions.values())) if len(sessions) == 1 else None
            # A file committed as it was read is not written again (only its index entry):
            # an editor's newer save is never replaced by the bytes read before it.
            in_place = {rel: st for rel, (data, st) in as_read.items() if files.get(rel) == data}
            sha = self.commit(
                files,
                in_place=in_place,
                message=_message(
                    subject,
                    "\n".join(f"- {e.change}: {e.path}" for e in valid),
                    kind="feedback" if decisions else "edit",
                    project=first[0].project_id if first else None,
                    session=first[0].session_id if first else None,
                    phase=first[1][0].phase if first and len(first[1]) == 1 else None,
                    status=first[1][0].decision().value if first and len(first[1]) == 1 else None,
                ),
                author=who,
                check_edits=False,
                context=contexts,
            )
            return sha, rejected

    def _person(self, author: Identity | str | None, reviewers: Sequence[str] = ()) -> Identity:
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


class Session:
    """One session of a store: its manifest, phases, agent outputs and feedback.

    Obtain it from :meth:`Store.create_session`, :meth:`Store.session` or
    :meth:`Store.find_session`. Reads come from the working tree (what a person sees in the
    editor); every save is one commit.
    """

    def __init__(self, store: Store, project_id: str, session_id: str) -> None:
        self.store = store
        self.project_id = project_id
        self.session_id = session_id
        self.rel = store.session_rel(project_id, session_id)

    def __repr__(self) -> str:
        return f"Session({self.project_id!r}, {self.session_id!r})"

    @property
    def ref(self) -> str:
        """``project_id/session_id``."""
        return f"{self.project_id}/{self.session_id}"

    @property
    def path(self) -> Path:
        """Absolute folder of the session."""
        return self.store.root / self.rel

    @property
    def manifest_rel(self) -> str:
        """Store-relative path of ``session_manifest.md``."""
        return f"{self.rel}/{MANIFEST}"

    # -- reading --------------------------------------------------------------------------

    def manifest(self) -> SessionManifest:
        """The session manifest (status, current phase, phase table, totals).

        Raises:
            SessionNotFoundError: If the session no longer exists.
            DocumentError: If the manifest is broken.
        """
        try:
            return self.store.read_doc(self.manifest_rel, SessionManifest)
        except FileNotFoundError:
            raise SessionNotFoundError(
                f"no session {self.ref} (missing {self.manifest_rel})"
            ) from None

    @property
    def status(self) -> SessionStatus:
        """The session status."""
        return self.manifest().status

    @property
    def current_phase(self) -> int | None:
        """The phase the session is at (``None`` once it ended)."""
        return self.manifest().current_phase

    @property
    def completed_phases(self) -> list[int]:
        """Phases whose checkpoint status is ``completed``."""
        return self.manifest().completed_phases

    @property
    def approved_phases(self) -> list[int]:
        """Phases a reviewer approved."""
        return self.manifest().approved_phases

    def phase_entry(self, phase: int, manifest: SessionManifest | None = None) -> PhaseEntry:
        """The manifest row of a phase.

        Raises:
            PhaseNotFoundError: If the phase is not part of the session's mode.
        """
        if isinstance(phase, bool) or not isinstance(phase, int):
            raise PhaseNotFoundError(
                f"invalid phase number {phase!r}: expected an integer such as 1"
            )
        manifest = manifest or self.manifest()
        try:
            return manifest.phase(phase)
        except KeyError:
            raise PhaseNotFoundError(
                f"phase {phase!r} is not part of session {self.ref} ({manifest.workflow}, mode "
                f"{manifest.mode}: phases {', '.join(str(p.number) for p in manifest.phases)})"
            ) from None

    def phase_rel(self, phase: int, manifest: SessionManifest | None = None) -> str:
        """Store-relative folder of a phase (``…/phase_{N}_{slug}``)."""
        return f"{self.rel}/{self.phase_entry(phase, manifest).directory}"

    def checkpoint(self, phase: int) -> Checkpoint | None:
        """The phase's checkpoint, or ``None`` if none was saved."""
        rel = f"{self.phase_rel(phase)}/{CHECKPOINT}"
        try:
            return self.store.read_doc(rel, Checkpoint)
        except FileNotFoundError:
            return None

    def feedback(self, phase: int) -> UserFeedback | None:
        """The phase's user feedback as on disk now (a person's edit included), or ``None``."""
        rel = f"{self.phase_rel(phase)}/{FEEDBACK}"
        try:
            return self.store.read_doc(rel, UserFeedback)
        except FileNotFoundError:
            return None

    def output(self, phase: int, agent: str) -> AgentOutput | None:
        """One agent output of a phase, or ``None``."""
        rel = f"{self.phase_rel(phase)}/{check_id(agent, 'agent id')}.md"
        try:
            return self.store.read_doc(rel, AgentOutput)
        except FileNotFoundError:
            return None

    def outputs(self, phases: Iterable[int] | None = None) -> dict[int, dict[str, AgentOutput]]:
        """Agent outputs by phase then agent name.

        Args:
            phases: Phase numbers; ``None`` for every phase that has outputs.

        Returns:
            ``{phase: {agent_name: AgentOutput}}``, phases ascending.
        """
        manifest = self.manifest()
        numbers = [p.number for p in manifest.phases] if phases is None else list(phases)
        out: dict[int, dict[str, AgentOutput]] = {}
        for number in numbers:
            folder = self.store.root / self.phase_rel(number, manifest)
            found: dict[str, AgentOutput] = {}
            if folder.is_dir():
                for path in sorted(folder.glob("*.md")):
                    if path.name in (CHECKPOINT, FEEDBACK):
                        continue
                    rel = path.relative_to(self.store.root).as_posix()
                    found[path.stem] = self.store.read_doc(rel, AgentOutput)
            if found or phases is not None:
                out[number] = found
        return out

    def record_inputs(
        self, phases: Iterable[int], *, before: int, author: Identity | str | None = None
    ) -> dict[str, str]:
        """Commit a person's edits to the outputs of ``phases`` before a phase reads them.

        Every input a phase consumes is in a commit first (DESIGN.md "Sharing the store"):
        an agent output a reviewer changed and did not record is recorded as that person's
        commit (git's ``user.name``, or ``author``), exactly as a hand edit is with
        ``mdsessions record``.

        Args:
            phases: The earlier phases whose agent outputs are about to be read.
            before: The phase that will read them (named in the commit message).
            author: The person (default: git's identity of the store).

        Returns:
            ``{store-relative path: blob id}`` of every input, as now committed.

        Raises:
            DocumentError: An edited output no longer parses; it is left as it is, uncommitted.
        """
        manifest = self.manifest()
        paths: list[str] = []
        for number in phases:
            folder = self.store.root / self.phase_rel(number, manifest)
            if folder.is_dir():
                paths += [
                    p.relative_to(self.store.root).as_posix()
                    for p in sorted(folder.glob("*.md"))
                    if p.name not in (CHECKPOINT, FEEDBACK)
                ]
        git = self.store.git
        with self.store.writing():
            edited = git.edited_paths(git.head(), paths)
            if edited:
                _sha, rejected = self.store.record_edits(
                    edited,
                    author=author,
                    message=f"edit({self.ref}): {len(edited)} input(s) of phase {before} "
                    "recorded before it runs",
                )
                if rejected:
                    raise DocumentError(
                        f"{rejected[0].error}; phase {before} reads this file: fix or discard "
                        "the edit (git restore) and run again",
                        path=rejected[0].path,
                    )
            head = git.head()
            out: dict[str, str] = {}
            for rel in paths:
                found = git.entry(head, rel)
                if found is not None:
                    out[rel] = found[1].hex()
            return out

    @contextlib.contextmanager
    def run_lock(self, wait: float = 0.0) -> Iterator[None]:
        """Hold the session's run lock: one runner per session across processes.

        The lock (``.git/mdsessions/run/<project>/<session>.lock``, a ``flock``) is released
        when the block ends or the holder dies, so a dead runner's lock is taken over at once.
        Writes themselves do not need it; it keeps two runners from running the same phase's
        agents twice.

        Args:
            wait: Seconds to wait for another runner to finish (0: fail at once).

        Raises:
            SessionLockedError: Another runner held it throughout, naming its pid, host and
                start time (UTC).
        """
        lock = RunLock(
            self.store.git.private_dir / "run" / self.project_id / f"{self.session_id}.lock"
        )
        try:
            lock.acquire(max(0.0, wait))
        except LockTimeout:
            who = lock.holder()
            holder = (
                f"pid {who.get('pid', '?')} on {who.get('host', '?')} since {who.get('since', '?')}"
                if who
                else "another runner"
            )
            waited = f" (waited {wait:g} s)" if wait > 0 else ""
            raise SessionLockedError(
                f"session {self.ref} is being run by {holder}{waited}; wait for it with "
                "--wait-lock SECONDS, or run again when it is done"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def history(self, *, max_count: int | None = None, skip: int = 0) -> list[CommitInfo]:
        """The session's commits, newest first (``git log -- <session folder>``)."""
        return self.store.git.log([self.rel], max_count=max_count, skip=skip)

    # -- writing --------------------------------------------------------------------------

    def _commit(
        self,
        files: dict[str, Document | bytes | None],
        manifest: SessionManifest,
        subject: str,
        **options: Any,
    ) -> str | None:
        """Plan (:meth:`_plan`, same keywords) and commit at once, under the caller's lock."""
        return self._apply(self._plan(files, manifest, subject, **options))

    def _plan(
        self,
        files: dict[str, Document | bytes | None],
        manifest: SessionManifest,
        subject: str,
        *,
        author: Identity | None = None,
        check_edits: bool = True,
        write_manifest: bool = True,
        **trailers: Any,
    ) -> _Plan:
        """Render what a write commits (maybe before the lock: see :meth:`_write_planned`)."""
        if write_manifest:
            manifest.updated = utc_now()
            files[self.manifest_rel] = manifest
        contexts: dict[str, Mapping[str, Any]] = {}
        for rel, doc in files.items():
            if isinstance(doc, Checkpoint):
                nxt = ""
                if doc.next_phase is not None:
                    for p in manifest.phases:
                        if p.number == doc.next_phase:
                            nxt = p.name
                contexts[rel] = {"next_name": nxt}
        raw, docs = self.store._render_files(files, contexts)
        message = _message(
            subject,
            kind=trailers.pop("kind"),
            project=self.project_id,
            session=self.session_id,
            **trailers,
            session_status=manifest.status.value,
        )
        return _Plan(raw, docs, message, author, check_edits)

    def _apply(self, plan: _Plan) -> str | None:
        return self.store._commit_rendered(
            plan.raw,
            plan.docs,
            message=plan.message,
            author=plan.author,
            check_edits=plan.check_edits,
            planned_on=plan.planned_on,
        )

    def _fingerprint(self) -> tuple[tuple[str, int, int, int, int], ...]:
        """The identity of every entry in the session folder and its phase folders.

        (path, inode, size, mtime ns, ctime ns), sorted: any write to the session, by anyone,
        changes it.
        """
        out: list[tuple[str, int, int, int, int]] = []
        pending = [str(self.path)]
        while pending:
            folder = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                out.append((entry.path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
                if entry.is_dir(follow_symlinks=False) and folder == str(self.path):
                    pending.append(entry.path)
        out.sort()
        return tuple(out)

    def _write_planned(self, plan: Callable[[SessionManifest], tuple[T, _Plan]]) -> T:
        """Plan a write (read the session, build and render its documents), then commit it.

        The plan is made before taking the writer lock when this thread does not hold it yet,
        so other writers wait only for the commit itself; it is used only if no entry of the
        session's folders changed meanwhile (:meth:`_fingerprint`), else it is made again
        under the lock. Errors come from the plan made under the lock.

        Returns:
            What ``plan`` returned with its :class:`_Plan`.
        """
        git = self.store.git

        def make() -> tuple[T, _Plan]:
            # The branch is read before the files: a commit someone makes after this point is
            # seen by GitRepo.commit, which makes the plan again if it changed these files.
            planned_on = git.read_ref(f"refs/heads/{git.branch}")
            result, planned = plan(self.manifest())
            return result, dataclasses.replace(planned, planned_on=planned_on)

        early: tuple[tuple[tuple[str, int, int, int, int], ...], T, _Plan] | None = None
        if not git.holds_writer_lock():
            try:
                fingerprint = self._fingerprint()
                early = (fingerprint, *make())
            except (MdsessionsError, OSError, ValueError):
                early = None  # planned again under the lock, which raises it
        with self.store.writing():
            if early is not None and self._fingerprint() == early[0]:
                result, planned = early[1], early[2]
            else:
                result, planned = make()
            for attempt in range(_REPLANS + 1):
                try:
                    self._apply(planned)
                    return result
                except BranchMovedError:
                    # Someone's own git commit changed this session's files meanwhile: their
                    # version is the new truth; plan again on top of it.
                    if attempt == _REPLANS:
                        raise
                    result, planned = make()
            raise AssertionError("unreachable")

    def _ensure_open(self, manifest: SessionManifest) -> None:
        if state.is_closed(manifest):
            raise StoreError(
                f"session {self.ref} is {manifest.status.value} and takes no more writes; "
                "start a new session to continue the work"
            )

    def save_agent_output(
        self,
        phase: int,
        agent: str,
        content: str,
        *,
        status: PhaseStatus | str = PhaseStatus.COMPLETED,
        duration: float | None = None,
        model: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cost: float = 0.0,
        tools_used: Sequence[str] = (),
        executed: _dt.datetime | str | None = None,
        retry_count: int | None = None,
        exit_status: int | None = None,
        error: str | None = None,
        author: Identity | None = None,
        prompt: str | None = None,
        system_prompt: str = "",
        inputs: Mapping[str, str] | None = None,
    ) -> AgentOutput:
        """Save one agent's output (seed 003 ``{agent_name}.md``) as one commit.

        The content is stored verbatim after ``## Output`` and reads back byte for byte.
        The manifest marks the phase ``in_progress`` and adds tokens, cost and time to its
        totals (every run counts, retries included).

        Args:
            phase: Phase number (must be part of the session's mode).
            agent: Agent id; the file is ``phase_N_slug/{agent}.md``.
            content: The agent's markdown, any text.
            status: ``completed``, ``failed``, … (:class:`PhaseStatus`).
            duration: Seconds the agent ran.
            model: Model id, e.g. ``anthropic.claude-3-sonnet-20240229-v1:0``.
            input_tokens: Prompt tokens.
            output_tokens: Completion tokens.
            cost: USD.
            tools_used: Tool names the agent called.
            executed: When it ran (UTC; default now).
            retry_count: Which run of the phase this is (default: the phase's retry count).
            exit_status: A command agent's exit status.
            error: What went wrong (for a failed run), e.g. a command's stderr.
            author: Commit author (default: the store's runner identity).
            prompt: The exact (user) prompt the agent was given; stored verbatim in
                ``phase_N_slug/prompts/{agent}.md`` in the same commit (:class:`AgentPrompt`).
            system_prompt: The system part of the prompt, if the agent had one.
            inputs: The earlier outputs the prompt was built from: store-relative path →
                blob id (40 hex digits), recorded with the prompt.

        Returns:
            The saved document.

        Raises:
            PhaseNotFoundError: Unknown phase. InvalidIdentifierError: bad agent id.
            DocumentError: An invalid field (status, negative tokens, …).
            UnrecordedEditError: The file holds a person's unrecorded edit.
        """

        def plan(manifest: SessionManifest) -> tuple[AgentOutput, _Plan]:
            self._ensure_open(manifest)
            entry = self.phase_entry(phase, manifest)
            doc = self._new_output(
                manifest,
                entry,
                agent,
                content,
                status=status,
                duration=duration,
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost=cost,
                tools_used=tools_used,
                executed=executed,
                retry_count=retry_count,
                exit_status=exit_status,
                error=error,
            )
            before = manifest.model_dump()
            self._start_phase(manifest, entry)
            rel = f"{self.rel}/{entry.directory}/{agent}.md"
            files: dict[str, Document | bytes | None] = {rel: doc}
            # Seed 003's call order saves the phase checkpoint before its outputs: an output
            # that arrives after it brings its metrics to the checkpoint and the totals.
            cp_rel = f"{self.rel}/{entry.directory}/{CHECKPOINT}"
            checkpoint = self._existing(cp_rel, Checkpoint)
            if (
                checkpoint is not None
                and checkpoint.status in (PhaseStatus.COMPLETED, PhaseStatus.FAILED)
                and not self.store.git.edited_paths(self.store.git.head(), [cp_rel])
                and _fill_run_metrics(checkpoint, doc)
            ):
                files[cp_rel] = checkpoint
                state.take_metrics(manifest, checkpoint)
            if prompt is not None:
                files[f"{self.rel}/{entry.directory}/{PROMPTS_DIR}/{agent}.md"] = _build(
                    AgentPrompt,
                    project_id=self.project_id,
                    session_id=self.session_id,
                    agent=agent,
                    phase=entry.number,
                    phase_name=entry.name,
                    created=doc.executed,
                    retry_count=doc.retry_count,
                    system=system_prompt,
                    inputs=dict(sorted((inputs or {}).items())),
                    user=prompt,
                )
            return doc, self._plan(
                files,
                manifest,
                f"output({self.ref}): phase {phase} {agent} {doc.status.value}",
                author=author,
                # The manifest changes only when the phase or session status does; the
                # phase's metrics reach it with the phase checkpoint.
                write_manifest=manifest.model_dump() != before,
                kind="agent-output",
                phase=phase,
                agent=agent,
                status=doc.status.value,
            )

        return self._write_planned(plan)

    def _new_output(
        self,
        manifest: SessionManifest,
        entry: PhaseEntry,
        agent: str,
        content: str,
        *,
        tools_used: Sequence[str] = (),
        executed: _dt.datetime | str | None = None,
        retry_count: int | None = None,
        **fields: Any,
    ) -> AgentOutput:
        """Build an agent output; ``fields`` are :meth:`save_agent_output`'s other keywords."""
        check_id(agent, "agent id")
        if agent in ("checkpoint", "user_feedback"):
            raise InvalidIdentifierError(f"invalid agent id {agent!r}: the name is reserved")
        if not isinstance(content, str):
            raise DocumentError(
                f"agent output content must be text (str), got {type(content).__name__}"
            )
        return _build(
            AgentOutput,
            project_id=self.project_id,
            session_id=self.session_id,
            agent=agent,
            phase=entry.number,
            phase_name=entry.name,
            executed=executed or utc_now(),
            tools_used=list(tools_used),
            retry_count=entry.retry_count if retry_count is None else retry_count,
            content=content,
            **fields,
        )

    def _start_phase(self, manifest: SessionManifest, entry: PhaseEntry) -> None:
        """The manifest changes an agent output brings (:func:`state.start_phase`)."""
        has_checkpoint = (self.store.root / self.rel / entry.directory / CHECKPOINT).exists()
        state.start_phase(manifest, entry.number, has_checkpoint=has_checkpoint, now=utc_now())

    def save_checkpoint(
        self,
        phase: int,
        *,
        status: PhaseStatus | str,
        agents: Sequence[AgentRun | Mapping[str, Any]] | None = None,
        started: _dt.datetime | str | None = None,
        completed: _dt.datetime | str | None = None,
        duration: float | None = None,
        execution_mode: str = "single",
        inputs: Sequence[str] | Mapping[str, str] = (),
        errors: Sequence[str] = (),
        retry_count: int | None = None,
        request_review: bool | None = None,
        outputs: Sequence[Mapping[str, Any]] = (),
        author: Identity | None = None,
    ) -> Checkpoint:
        """Save a phase checkpoint (seed 003 ``checkpoint.md``) and update the manifest: one commit.

        With ``outputs``, the phase's agent outputs are saved in the same commit (what a runner
        that ran its agents first records at once), e.g.
        ``save_checkpoint(1, status="completed", outputs=[{"agent": "concept_expansion",
        "content": text, "input_tokens": 1200, "output_tokens": 800, "cost": 0.0125}])``.

        On ``completed``: a phase with a review gate gets a pending ``user_feedback.md`` for
        the reviewer (same commit) and the session becomes ``awaiting_review``; otherwise the
        session moves to the next phase, or to ``completed`` after the last one. On
        ``failed`` the session becomes ``failed`` (the runner retries it on the next run).

        Args:
            phase: Phase number.
            status: ``pending``, ``in_progress``, ``completed``, ``failed`` or ``skipped``.
            agents: The agents' runs; default: derived from the phase's saved outputs.
            started: Start time (UTC ISO-8601 or datetime; default: the phase's start).
            completed: End time (default: now, for completed/failed).
            duration: Seconds (default: completed - started).
            execution_mode: How the agents ran (seed 003: ``single``, ``parallel``, …).
            inputs: The documents the phase read: store-relative paths, or path → blob id
                (40 hex digits) of the exact version read.
            errors: Error messages.
            retry_count: Run number of the phase (default: the manifest's).
            request_review: Force (True) or suppress (False) the review gate; default: the
                workflow's gate.
            outputs: Agent outputs to save in the same commit: mappings with ``agent`` and
                ``content`` and any other keyword of :meth:`save_agent_output` (``status``,
                ``model``, ``input_tokens``, ``cost``, …). With ``agents`` left out, the
                checkpoint's agent table holds these runs and the phase's earlier outputs.
            author: Commit author (default: the runner identity).

        Returns:
            The saved checkpoint.

        Raises:
            PhaseNotFoundError: Unknown phase.
            DocumentError: An invalid status or field, or an ``outputs`` entry without
                ``agent``/``content`` or with an unknown key (the message names it).
            InvalidIdentifierError: A bad agent id in ``outputs``.
        """

        def plan(manifest: SessionManifest) -> tuple[Checkpoint, _Plan]:
            self._ensure_open(manifest)
            entry = self.phase_entry(phase, manifest)
            phase_rel = f"{self.rel}/{entry.directory}"
            files: dict[str, Document | bytes | None] = {}
            new_outputs: dict[str, AgentOutput] = {}
            for i, spec in enumerate(outputs):
                out = self._output_from_spec(manifest, entry, spec, f"outputs[{i}]")
                if out.agent in new_outputs:
                    raise DocumentError(f"outputs[{i}]: agent {out.agent!r} is listed twice")
                new_outputs[out.agent] = out
                files[f"{phase_rel}/{out.agent}.md"] = out
            if new_outputs:
                self._start_phase(manifest, entry)
            if agents is None:
                runs = self._runs_from_outputs(phase, new_outputs)
            else:
                runs = [
                    a if isinstance(a, AgentRun) else _build(AgentRun, **dict(a)) for a in agents
                ]
            status_value = _build_status(status)
            started_at = started if started is not None else (entry.started or None)
            completed_at = completed
            if completed_at is None and status_value in (PhaseStatus.COMPLETED, PhaseStatus.FAILED):
                completed_at = utc_now()
            nxt = state.phase_after(manifest, phase)
            doc = _build(
                Checkpoint,
                project_id=self.project_id,
                session_id=self.session_id,
                phase=phase,
                phase_name=entry.name,
                phase_slug=entry.slug,
                status=status_value,
                started=started_at,
                completed=completed_at,
                duration=duration,
                retry_count=entry.retry_count if retry_count is None else retry_count,
                execution_mode=execution_mode,
                agents=runs,
                inputs=dict(inputs) if isinstance(inputs, Mapping) else list(inputs),
                errors=list(errors),
                next_phase=nxt.number if nxt else None,
            )
            if doc.duration is None and doc.started and doc.completed:
                doc.duration = max(0.0, (doc.completed - doc.started).total_seconds())
            old = self._existing(f"{phase_rel}/{CHECKPOINT}", Checkpoint)
            if old is not None:
                doc.notes = old.notes
            if state.advance(manifest, doc, review=request_review):
                files[f"{phase_rel}/{FEEDBACK}"] = UserFeedback(
                    project_id=self.project_id,
                    session_id=self.session_id,
                    phase=phase,
                    phase_name=entry.name,
                    retry_count=doc.retry_count,
                )
                label = ", " + manifest.status.value.replace("_", " ")
            else:
                label = ""
            files[f"{phase_rel}/{CHECKPOINT}"] = doc
            return doc, self._plan(
                files,
                manifest,
                f"checkpoint({self.ref}): phase {phase} {entry.name} {doc.status.value}{label}",
                author=author,
                kind="checkpoint",
                phase=phase,
                agent=next(iter(new_outputs)) if len(new_outputs) == 1 else None,
                status=doc.status.value,
            )

        return self._write_planned(plan)

    def _output_from_spec(
        self, manifest: SessionManifest, entry: PhaseEntry, spec: Mapping[str, Any], where: str
    ) -> AgentOutput:
        if not isinstance(spec, Mapping):
            raise DocumentError(
                f"{where}: expected a mapping with 'agent' and 'content', got {type(spec).__name__}"
            )
        fields = dict(spec)
        missing = [key for key in ("agent", "content") if key not in fields]
        if missing:
            raise DocumentError(f"{where}: missing {' and '.join(map(repr, missing))}")
        unknown = sorted(set(fields) - _OUTPUT_KEYS)
        if unknown:
            raise DocumentError(
                f"{where}: unknown key {unknown[0]!r}; expected agent, content and keywords of "
                "save_agent_output (" + ", ".join(sorted(_OUTPUT_KEYS - {"agent", "content"})) + ")"
            )
        agent = fields.pop("agent")
        if not isinstance(agent, str):
            raise InvalidIdentifierError(f"{where}: agent id must be text, got {agent!r}")
        return self._new_output(manifest, entry, agent, fields.pop("content"), **fields)

    def _existing(self, rel: str, model: type[D]) -> D | None:
        try:
            return self.store.read_doc(rel, model)
        except FileNotFoundError:
            return None
        except DocumentError:
            return None

    def _runs_from_outputs(
        self, phase: int, new: Mapping[str, AgentOutput] | None = None
    ) -> list[AgentRun]:
        runs = []
        saved = dict(self.outputs([phase]).get(phase, {}))
        saved.update(new or {})
        for name, out in sorted(saved.items(), key=lambda item: item[0] + ".md"):
            runs.append(
                AgentRun(
                    agent_name=name,
                    status=out.status,
                    output_file=f"{name}.md",
                    tokens=out.input_tokens + out.output_tokens,
                    input_tokens=out.input_tokens,
                    output_tokens=out.output_tokens,
                    cost=out.cost,
                    duration=out.duration,
                    error=out.error,
                )
            )
        return runs

    def save_feedback(
        self,
        phase: int,
        *,
        approved: bool | None = None,
        action: FeedbackAction | str | None = None,
        comments: str | None = None,
        requested_changes: Sequence[str] | None = None,
        reviewed: bool = True,
        reviewer: str | None = None,
        timestamp: _dt.datetime | str | None = None,
        author: Identity | str | None = None,
        keep_downstream: bool = False,
    ) -> UserFeedback:
        """Save a reviewer's decision (seed 003 ``user_feedback.md``) and apply it, as one commit.

        ``approved`` → the next phase can start; ``revise`` → the phase re-runs with the
        comments (its retry count + 1), and every later phase that already ran becomes
        ``stale`` (it runs again after this one and is reviewed again); ``rejected`` → the
        session ends as rejected.

        Args:
            phase: Phase number.
            approved: Seed 003's flag; ``True`` alone means ``action="approved"``.
            action: ``approved``/``approve``, ``revise``, ``rejected``/``reject`` or ``pending``.
            comments: Free text (stored verbatim); ``None`` keeps what the file has.
            requested_changes: One line each; ``None`` keeps what the file has.
            reviewed: Seed 003's flag.
            reviewer: Name (or ``Name <email>``) recorded in the file.
            timestamp: When it was reviewed (default now, UTC).
            author: Commit author (default: the reviewer, else git's user, else the login).
            keep_downstream: On ``revise``, leave later phases as they are (they were built
                on the version being revised; opt out of re-running them explicitly).

        Returns:
            The saved feedback.

        Raises:
            PhaseNotFoundError: Unknown phase.
            DocumentError: An unknown action, or ``approved`` contradicting ``action``.
            StoreError: The phase has not run yet (there is nothing to review).
        """
        who = self.store._person(author, [reviewer] if reviewer else [])
        with self.store.writing():
            manifest = self.manifest()
            self._ensure_open(manifest)
            entry = self.phase_entry(phase, manifest)
            rel = f"{self.rel}/{entry.directory}/{FEEDBACK}"
            old = self._existing(rel, UserFeedback)
            try:
                parsed_action = FeedbackAction.parse(action) if action is not None else None
            except ValueError as exc:
                raise DocumentError(str(exc), field="action") from None
            if parsed_action is None:
                parsed_action = FeedbackAction.APPROVED if approved else FeedbackAction.PENDING
            doc = _build(
                UserFeedback,
                project_id=self.project_id,
                session_id=self.session_id,
                phase=phase,
                phase_name=entry.name,
                reviewed=reviewed,
                approved=bool(approved)
                if approved is not None
                else parsed_action is FeedbackAction.APPROVED,
                action=parsed_action,
                timestamp=timestamp or utc_now(),
                retry_count=entry.retry_count,
                requested_changes=list(requested_changes)
                if requested_changes is not None
                else (old.requested_changes if old else []),
                reviewer=reviewer,
                comments=comments if comments is not None else (old.comments if old else ""),
            )
            try:
                decision = doc.decision()
            except ValueError as exc:
                raise DocumentError(str(exc), field="action") from None
            if entry.status in (PhaseStatus.PENDING, PhaseStatus.SKIPPED):
                raise StoreError(
                    f"phase {phase} ({entry.name}) of {self.ref} has not run yet "
                    f"(status {entry.status.value}); there is nothing to review"
                )
            state.apply_feedback(manifest, phase, decision, keep_downstream=keep_downstream)
            self._commit(
                {rel: doc},
                manifest,
                f"feedback({self.ref}): phase {phase} {entry.name} {decision.value}",
                author=who,
                kind="feedback",
                phase=phase,
                status=decision.value,
            )
            return doc

    def record_feedback(self, phase: int, *, author: Identity | str | None = None) -> str | None:
        """Record a person's edit of the phase's ``user_feedback.md`` (and apply its decision).

        Returns:
            The commit id, or ``None`` when the file has no unrecorded edit.

        Raises:
            DocumentError: The edited file does not validate (it stays on disk, uncommitted).
        """
        rel = f"{self.phase_rel(phase)}/{FEEDBACK}"
        with self.store.writing():
            pending = [e for e in self.store.unrecorded_edits() if e.path == rel]
            if not pending:
                return None
            if pending[0].error:
                # Re-parse to raise the precise DocumentError (file, line, field).
                self.store.read_doc(rel, UserFeedback)
                raise DocumentError(pending[0].error, path=rel)
            sha, _rejected = self.store.record_edits([rel], author=author)
            return sha

    # -- integrity ------------------------------------------------------------------------

    def validate(self) -> list[Problem]:
        """Check every document of the session and the manifest against the checkpoints.

        Returns:
            Problems with file, line and reason (empty when sound).
        """
        problems: list[Problem] = []
        try:
            manifest = self.manifest()
        except DocumentError as exc:
            return [Problem(exc.path or self.manifest_rel, exc.reason, exc.line)]
        if manifest.project_id != self.project_id or manifest.session_id != self.session_id:
            problems.append(
                Problem(
                    self.manifest_rel,
                    f"ids {manifest.project_id}/{manifest.session_id} do "
                    f"not match the folder {self.ref}",
                )
            )
        known = {p.directory: p for p in manifest.phases}
        for folder in sorted(self.path.iterdir()):
            if folder.is_dir() and folder.name.startswith("phase_") and folder.name not in known:
                problems.append(
                    Problem(
                        folder.relative_to(self.store.root).as_posix(),
                        "phase folder is not in the manifest's phase table",
                    )
                )
        for entry in manifest.phases:
            folder_rel = f"{self.rel}/{entry.directory}"
            folder = self.store.root / folder_rel
            checkpoint = None
            if folder.is_dir():
                documents = sorted(folder.glob("*.md")) + sorted(folder.glob(f"{PROMPTS_DIR}/*.md"))
                for path in documents:
                    rel = path.relative_to(self.store.root).as_posix()
                    try:
                        doc = loads(self.store.read_text(rel), path=rel)
                    except DocumentError as exc:
                        problems.append(
                            Problem(
                                rel,
                                exc.reason
                                if exc.field is None
                                else f"field '{exc.field}': {exc.reason}",
                                exc.line,
                            )
                        )
                        continue
                    if getattr(doc, "phase", entry.number) != entry.number:
                        problems.append(
                            Problem(
                                rel,
                                f"phase {getattr(doc, 'phase', '?')} does "
                                f"not match its folder (phase {entry.number})",
                            )
                        )
                    if isinstance(doc, Checkpoint):
                        checkpoint = doc
            cp_rel = f"{folder_rel}/{CHECKPOINT}"
            if checkpoint is None:
                if (
                    entry.status not in (PhaseStatus.PENDING, PhaseStatus.IN_PROGRESS)
                    and not (folder / CHECKPOINT).exists()
                ):
                    problems.append(
                        Problem(
                            self.manifest_rel,
                            f"phase {entry.number} is {entry.status.value} but {cp_rel} is missing",
                        )
                    )
                continue
            stale_run = entry.status is PhaseStatus.STALE and checkpoint.status in (
                PhaseStatus.COMPLETED,
                PhaseStatus.FAILED,
            )  # the checkpoint of the run that an upstream revision made stale
            if checkpoint.status is not entry.status and not stale_run:
                problems.append(
                    Problem(
                        cp_rel,
                        f"status {checkpoint.status.value} disagrees with the "
                        f"manifest's {entry.status.value} for phase {entry.number}",
                    )
                )
            for run in checkpoint.agents:
                name = run.output_file or f"{run.agent_name}.md"
                if run.status is PhaseStatus.COMPLETED and not (folder / name).is_file():
                    problems.append(
                        Problem(cp_rel, f"agent {run.agent_name}: output file {name} is missing")
                    )
        return problems

    def validate_phase(self, phase: int) -> list[Problem]:
        """Validate one phase's files and its agreement with the manifest."""
        folder = self.phase_rel(phase)
        return [
            p
            for p in self.validate()
            if p.path.startswith(folder + "/")
            or (p.path == self.manifest_rel and f"phase {phase} " in p.reason)
        ]


def _fill_run_metrics(checkpoint: Checkpoint, output: AgentOutput) -> bool:
    """Give a checkpoint's row for ``output``'s agent the output's metrics, if it has none.

    Returns:
        Whether the checkpoint changed (a row added, or a row without metrics filled in).
    """
    if not (output.input_tokens or output.output_tokens or output.cost):
        return False
    found = next((a for a in checkpoint.agents if a.agent_name == output.agent), None)
    if found is not None and (found.tokens or found.input_tokens or found.output_tokens):
        return False
    run = AgentRun(
        agent_name=output.agent,
        status=found.status if found is not None else output.status,
        output_file=f"{output.agent}.md",
        tokens=output.input_tokens + output.output_tokens,
        input_tokens=output.input_tokens,
        output_tokens=output.output_tokens,
        cost=output.cost,
        duration=output.duration if found is None else (found.duration or output.duration),
        error=output.error if found is None else found.error,
    )
    if found is None:
        checkpoint.agents = [*checkpoint.agents, run]
    else:
        checkpoint.agents = [run if a is found else a for a in checkpoint.agents]
    return True


def _build_status(value: PhaseStatus | str) -> PhaseStatus:
    """A status a caller may save (``stale`` is the store's own verdict, never saved)."""
    allowed = [s for s in PhaseStatus if s is not PhaseStatus.STALE]
    try:
        status = value if isinstance(value, PhaseStatus) else PhaseStatus(str(value))
    except ValueError:
        status = None
    if status not in allowed:
        raise DocumentError(
            f"invalid status {value!r}; expected one of " + ", ".join(s.value for s in allowed),
            field="status",
        )
    return status


M = TypeVar("M", SessionManifest, AgentOutput, Checkpoint, UserFeedback, AgentRun, AgentPrompt)


def _build(model_cls: type[M], /, **fields: Any) -> M:
    """Validate keyword fields into a model; a bad value is a DocumentError naming the field."""
    from pydantic import ValidationError

    try:
        return model_cls.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        got = f" (got {first['input']!r})" if "input" in first else ""
        raise DocumentError(f"{first.get('msg', 'invalid value')}{got}", field=field) from None


def _decode(data: bytes, rel: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DocumentError(f"not valid UTF-8 (byte {exc.start})", path=rel, line=line) from None


def _settle_feedback(data: bytes, fb: UserFeedback, reviewer: str) -> bytes:
    """Make a person's decision explicit in their own file, changing nothing else.

    Only the top-level frontmatter lines ``reviewed``, ``approved``, ``action``, ``timestamp``
    and ``reviewer`` are rewritten (the body — comments, changes, anything else the person
    wrote — stays byte for byte). When the lines cannot be found exactly once, or the result
    would not read back as the same decision, the person's bytes are kept as they are.
    """
    decision = fb.decision()
    if decision is FeedbackAction.PENDING:
        return data
    text = data.decode("utf-8")
    head_end = text.find("\n---", 3)
    if not text.startswith("---") or head_end < 0:
        return data
    head, rest = text[:head_end], text[head_end:]
    values = {
        "reviewed": "true",
        "approved": "true" if decision is FeedbackAction.APPROVED else "false",
        "action": decision.value,
        "timestamp": f"'{(fb.timestamp or utc_now()).strftime('%Y-%m-%dT%H:%M:%SZ')}'",
        "reviewer": json.dumps(fb.reviewer or reviewer, ensure_ascii=False),
    }
    for key, value in values.items():
        pattern = re.compile(rf"^{key}:[^\r\n]*", re.MULTILINE)
        if len(pattern.findall(head)) != 1:
            return data
        head = pattern.sub(f"{key}: {value}".replace("\\", "\\\\"), head)
    body_values = {
        "Reviewed": "true",
        "Approved": values["approved"],
        "Timestamp": values["timestamp"].strip("'"),
        "Reviewer": fb.reviewer or reviewer,
        "Action": decision.value,
    }
    for label, value in body_values.items():
        # The template's own status lines in the body, kept in step when they are there once.
        pattern = re.compile(rf"^- {label}: [^\r\n]*", re.MULTILINE)
        if len(pattern.findall(rest)) == 1:
            rest = pattern.sub(f"- {label}: {value}".replace("\\", "\\\\"), rest)
    settled = (head + rest).encode("utf-8")
    try:
        back = load_as(UserFeedback, head + rest)
    except DocumentError:
        return data
    if back.decision() is not decision or back.comments != fb.comments:
        return data
    return settled
