"""The one exception hierarchy of mdsessions.

Every error the library raises on purpose derives from :class:`MdsessionsError`; each
subclass also derives from the matching builtin so callers that catch ``ValueError``,
``LookupError``, ``FileNotFoundError`` or ``TimeoutError`` keep working (the seed-003
``CheckpointManager`` documents ``ValueError`` and ``FileNotFoundError``).  The CLI maps
the whole tree to ``Error: …`` messages and exit codes in one place
(:class:`mdsessions.cli.app.MdsessionsGroup`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mdsessions.history.sync import SessionConflict

__all__ = [
    "AgentExecutionError",
    "AgentFailedError",
    "BranchMovedError",
    "BudgetExceededError",
    "ConflictError",
    "HookError",
    "DocumentError",
    "InvalidArgumentError",
    "InvalidIdentifierError",
    "LockTimeoutError",
    "MdsessionsError",
    "PhaseNotFoundError",
    "PushRejectedError",
    "SessionExistsError",
    "SessionLockedError",
    "SessionNotFoundError",
    "StaleDecisionError",
    "StoreError",
    "StoreNotFoundError",
    "SyncConflictError",
    "UnrecordedEditError",
    "WorkflowError",
]


class MdsessionsError(Exception):
    """Root of every error mdsessions raises on purpose.

    Its message is redacted (:func:`mdsessions.redaction.redact`): a secret in a text an
    error quotes (a command's stderr, a field's value) becomes ``[REDACTED:<kind>]``.
    """

    def __init__(self, *args: object) -> None:
        from mdsessions.redaction import redact

        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class StoreError(MdsessionsError, RuntimeError):
    """The store (its git repository or working tree) cannot do what was asked."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """No mdsessions store at or above the given path."""


class LockTimeoutError(StoreError, TimeoutError):
    """The store's writer lock could not be taken within the timeout (seconds)."""


class ConflictError(StoreError):
    """The branch moved under us, or a sync met a diverging change to the same session."""


class HookError(StoreError):
    """A repository hook (``pre-commit``, ``commit-msg`` …) rejected a commit.

    Nothing was written; the message holds the hook's own output.
    """


class BranchMovedError(ConflictError):
    """Someone else's commit changed a path a write had planned from the old state.

    Nothing was written; retryable: plan the write again from the new ``HEAD``.
    """


class SessionLockedError(ConflictError):
    """Another runner holds the session's run lock (its pid, host and start are named).

    Retryable: wait for it (``--wait-lock SECONDS``) or try again later.
    """


class PushRejectedError(ConflictError):
    """The remote's branch has commits this store lacks: pull (or sync) first."""


class SyncConflictError(ConflictError):
    """A pull met sessions (or store files) changed on both sides; nothing was changed locally.

    Attributes:
        remote: The remote pulled from.
        sessions: The sessions changed on both sides
            (:class:`mdsessions.history.SessionConflict`).
        files: Store files outside sessions changed differently on both sides.
        keys: ``mdsessions.toml`` keys set to different values on both sides
            (``[workflows] aflow: mine "…", theirs "…"``).
    """

    def __init__(
        self,
        message: str,
        *,
        remote: str,
        sessions: Sequence[SessionConflict],
        files: Sequence[str] = (),
        keys: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.remote = remote
        self.sessions = tuple(sessions)
        self.files = tuple(files)
        self.keys = tuple(keys)


class UnrecordedEditError(StoreError):
    """A save would overwrite a file a person edited and has not recorded yet."""


class StaleDecisionError(ConflictError):
    """A decision was made on a phase that changed since the decider looked at it.

    Raised by :func:`mdsessions.decide` when its ``expected`` review token no longer matches
    (another reviewer decided, the phase re-ran, the feedback file was recorded anew).
    Nothing was written.

    Attributes:
        token: The phase's review token now (:func:`mdsessions.review_token`).
        status: The phase's status now (``completed``, ``in_progress`` …).
        review: The phase's review state now (``pending``, ``approved`` …).
        retry_count: The phase's retry count now.
    """

    def __init__(
        self, message: str, *, token: str, status: str, review: str, retry_count: int
    ) -> None:
        super().__init__(message)
        self.token = token
        self.status = status
        self.review = review
        self.retry_count = retry_count


class InvalidIdentifierError(MdsessionsError, ValueError):
    """A project, session or agent id does not match ``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``."""


class InvalidArgumentError(MdsessionsError, ValueError):
    """A value given to a call is malformed or out of range.

    E.g. an identity that is not ``Name <email>``, a time that is not ISO-8601, an unknown
    commit kind, a negative count.
    """


class DocumentError(MdsessionsError, ValueError):
    """A document is malformed: broken frontmatter, a missing field, a wrong value.

    Attributes:
        path: The file (store-relative) the problem is in, or ``None`` for in-memory data.
        line: The 1-based line number of the problem, when known.
        field: The frontmatter field at fault, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.reason = message
        where = path or ""
        if path and line is not None:
            where = f"{path}:{line}"
        prefix = f"{where}: " if where else ""
        if field:
            prefix += f"field '{field}': "
        super().__init__(prefix + message)


class WorkflowError(MdsessionsError, ValueError):
    """A workflow definition is invalid, or a phase/mode/status is not part of it."""


class PhaseNotFoundError(WorkflowError, LookupError):
    """The phase number is not part of the session's workflow and mode."""


class SessionNotFoundError(MdsessionsError, LookupError, FileNotFoundError):
    """No session with that project and session id exists in the store.

    Also a ``FileNotFoundError``, as the seed-003 ``CheckpointManager`` documents.
    """


class SessionExistsError(MdsessionsError, FileExistsError):
    """A session with that project and session id already exists."""


class AgentFailedError(MdsessionsError, RuntimeError):
    """An agent failed while the runner executed a phase; its failure was recorded."""


class AgentExecutionError(MdsessionsError, RuntimeError):
    """An agent could not produce its output; carries what the runner records about it.

    Raised by an agent (e.g. :class:`~mdsessions.CommandAgent` for a non-zero exit status, a
    timeout or a missing executable) and caught by the runner, which records it in the
    agent's output file and raises :class:`AgentFailedError`.

    Attributes:
        exit_status: The command's exit status (127: not found), or ``None``.
        stdout: What it printed on stdout (recorded as the output's body).
        stderr: What it printed on stderr (its end is recorded as the error).
    """

    def __init__(
        self,
        message: str,
        *,
        exit_status: int | None = None,
        stdout: str = "",
        stderr: str = "",
        transient: bool = False,
    ) -> None:
        from mdsessions.redaction import redact

        super().__init__(message)
        self.exit_status = exit_status
        self.stdout = redact(stdout)
        self.stderr = redact(stderr)
        self.transient = transient
        """A timeout or a provider's rate limit: worth another try (issue 15 item 6)."""


class BudgetExceededError(MdsessionsError, RuntimeError):
    """The session's budget would be exceeded by the next phase: the runner stopped before it.

    Nothing is written; raise the budget (``[budget]`` of the workflow, ``run --max-cost-usd``)
    and run again to go on.

    Attributes:
        phase: The phase that was not started.
        spent_usd: What the session's phases cost so far (USD).
        spent_tokens: Tokens the session used so far.
        estimate_usd: What the next phase is expected to cost (USD).
        estimate_tokens: Tokens the next phase is expected to use.
    """

    def __init__(
        self,
        message: str,
        *,
        phase: int,
        spent_usd: float,
        spent_tokens: int,
        estimate_usd: float,
        estimate_tokens: int,
    ) -> None:
        super().__init__(message)
        self.phase = phase
        self.spent_usd = spent_usd
        self.spent_tokens = spent_tokens
        self.estimate_usd = estimate_usd
        self.estimate_tokens = estimate_tokens
