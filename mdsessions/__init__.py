"""mdsessions: a git-backed markdown store for phased workflows.

Every checkpoint is a git commit; sessions are plain markdown files with YAML frontmatter that
people review in their own editor; ``git log`` is the history.

The public API is declared here once (``__all__``). Names are imported lazily (PEP 562), so
``import mdsessions`` and the command line stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AgentAttempt",
    "AgentContext",
    "AgentFailedError",
    "AgentOutput",
    "AgentPrompt",
    "AgentResult",
    "AgentRun",
    "AgentRunDetails",
    "AgentSpec",
    "Budget",
    "BudgetExceededError",
    "CheckpointManager",
    "Checkpoint",
    "Commit",
    "CommandAgent",
    "BranchMovedError",
    "ConflictError",
    "Decision",
    "DocumentError",
    "DocumentKind",
    "EditedFile",
    "FeedbackAction",
    "FeedbackEvent",
    "FeedbackWatcher",
    "HookError",
    "Identity",
    "InboxItem",
    "InvalidIdentifierError",
    "LifecycleResult",
    "LlmAgent",
    "LockTimeoutError",
    "MdsessionsError",
    "MetadataResult",
    "PhaseDef",
    "PhaseEntry",
    "PhaseNotFoundError",
    "PhaseStatus",
    "Problem",
    "RedactingFilter",
    "Redactor",
    "RetryPolicy",
    "ReviewState",
    "RunEvent",
    "RunEventKind",
    "RunResult",
    "Runner",
    "Session",
    "SearchResult",
    "SessionExistsError",
    "SessionFilter",
    "SessionLockedError",
    "SessionManifest",
    "SessionNotFoundError",
    "SessionStatus",
    "SessionSummary",
    "StaleDecisionError",
    "StatsResult",
    "Store",
    "Transcript",
    "TranscriptEntry",
    "TranscriptLog",
    "TranscriptStats",
    "PruneResult",
    "PrunedMessage",
    "StoreError",
    "StoreNotFoundError",
    "SyncConflictError",
    "TagsResult",
    "UnrecordedEditError",
    "UsageReport",
    "UserFeedback",
    "Workflow",
    "WorkflowError",
    "__version__",
    "decide",
    "dumps",
    "edit_feedback_text",
    "find_sessions",
    "history",
    "idea_validation",
    "loads",
    "redact",
    "review_token",
    "search_sessions",
    "session_stats",
]

_WHERE = {
    "AgentContext": "runner",
    "AgentResult": "runner",
    "CommandAgent": "runner",
    "RunResult": "runner",
    "RunEvent": "models.events",
    "RunEventKind": "models.events",
    "Runner": "runner",
    "LlmAgent": "agents.llm",
    "UsageReport": "agents.usage",
    "AgentAttempt": "models.schema",
    "AgentRunDetails": "models.schema",
    "Budget": "models.workflow",
    "RetryPolicy": "models.workflow",
    "BudgetExceededError": "errors",
    "CheckpointManager": "compat",
    "Store": "store.store",
    "Session": "store.store",
    "Problem": "store.store",
    "SessionSummary": "store.store",
    "SessionFilter": "models.query",
    "SearchResult": "models.query",
    "StatsResult": "models.query",
    "find_sessions": "store.query",
    "search_sessions": "store.query",
    "session_stats": "store.stats",
    "EditedFile": "store.store",
    "InboxItem": "store.store",
    "LifecycleResult": "store.lifecycle",
    "MetadataResult": "store.lifecycle",
    "TagsResult": "store.lifecycle",
    "Decision": "store.decisions",
    "decide": "store.decisions",
    "edit_feedback_text": "store.decisions",
    "review_token": "store.decisions",
    "StaleDecisionError": "errors",
    "FeedbackEvent": "watch",
    "FeedbackWatcher": "watch",
    "Identity": "store.store",
    "Commit": "store.store",
    "AgentOutput": "models.schema",
    "AgentPrompt": "models.schema",
    "AgentRun": "models.schema",
    "Checkpoint": "models.schema",
    "DocumentKind": "models.schema",
    "FeedbackAction": "models.schema",
    "PhaseEntry": "models.schema",
    "PhaseStatus": "models.schema",
    "ReviewState": "models.schema",
    "SessionManifest": "models.schema",
    "SessionStatus": "models.schema",
    "UserFeedback": "models.schema",
    "Transcript": "models.schema",
    "TranscriptEntry": "models.schema",
    "TranscriptLog": "store.transcripts",
    "TranscriptStats": "models.transcripts",
    "PruneResult": "models.transcripts",
    "PrunedMessage": "models.transcripts",
    "AgentSpec": "models.workflow",
    "PhaseDef": "models.workflow",
    "Workflow": "models.workflow",
    "idea_validation": "models.workflow",
    "dumps": "documents.frontmatter",
    "loads": "documents.frontmatter",
    "AgentFailedError": "errors",
    "BranchMovedError": "errors",
    "ConflictError": "errors",
    "HookError": "errors",
    "DocumentError": "errors",
    "InvalidIdentifierError": "errors",
    "LockTimeoutError": "errors",
    "MdsessionsError": "errors",
    "PhaseNotFoundError": "errors",
    "SessionExistsError": "errors",
    "SessionLockedError": "errors",
    "SessionNotFoundError": "errors",
    "StoreError": "errors",
    "StoreNotFoundError": "errors",
    "UnrecordedEditError": "errors",
    "WorkflowError": "errors",
    "SyncConflictError": "errors",
    "RedactingFilter": "redaction",
    "Redactor": "redaction",
    "redact": "redaction",
}


def __getattr__(name: str) -> Any:
    if name == "history":
        return importlib.import_module(".history", __name__)
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mdsessions' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from mdsessions import history
    from mdsessions.agents.llm import LlmAgent
    from mdsessions.agents.usage import UsageReport
    from mdsessions.compat import CheckpointManager
    from mdsessions.documents.frontmatter import dumps, loads
    from mdsessions.errors import (
        AgentFailedError,
        BranchMovedError,
        BudgetExceededError,
        ConflictError,
        DocumentError,
        HookError,
        InvalidIdentifierError,
        LockTimeoutError,
        MdsessionsError,
        PhaseNotFoundError,
        SessionExistsError,
        SessionLockedError,
        SessionNotFoundError,
        StaleDecisionError,
        StoreError,
        StoreNotFoundError,
        SyncConflictError,
        UnrecordedEditError,
        WorkflowError,
    )
    from mdsessions.models.events import RunEvent, RunEventKind
    from mdsessions.models.query import SearchResult, SessionFilter, StatsResult
    from mdsessions.models.schema import (
        AgentAttempt,
        AgentOutput,
        AgentPrompt,
        AgentRun,
        AgentRunDetails,
        Checkpoint,
        DocumentKind,
        FeedbackAction,
        PhaseEntry,
        PhaseStatus,
        ReviewState,
        SessionManifest,
        SessionStatus,
        Transcript,
        TranscriptEntry,
        UserFeedback,
    )
    from mdsessions.models.transcripts import PrunedMessage, PruneResult, TranscriptStats
    from mdsessions.models.workflow import (
        AgentSpec,
        Budget,
        PhaseDef,
        RetryPolicy,
        Workflow,
        idea_validation,
    )
    from mdsessions.redaction import RedactingFilter, Redactor, redact
    from mdsessions.runner import AgentContext, AgentResult, CommandAgent, Runner, RunResult
    from mdsessions.store.decisions import Decision, decide, edit_feedback_text, review_token
    from mdsessions.store.lifecycle import LifecycleResult, MetadataResult, TagsResult
    from mdsessions.store.query import find_sessions, search_sessions
    from mdsessions.store.stats import session_stats
    from mdsessions.store.store import (
        Commit,
        EditedFile,
        Identity,
        InboxItem,
        Problem,
        Session,
        SessionSummary,
        Store,
    )
    from mdsessions.store.transcripts import TranscriptLog
    from mdsessions.watch import FeedbackEvent, FeedbackWatcher
