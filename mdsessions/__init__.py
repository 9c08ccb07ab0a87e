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
    "AgentContext",
    "AgentFailedError",
    "AgentOutput",
    "AgentPrompt",
    "AgentResult",
    "AgentRun",
    "AgentSpec",
    "CheckpointManager",
    "Checkpoint",
    "Commit",
    "CommandAgent",
    "BranchMovedError",
    "ConflictError",
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
    "LockTimeoutError",
    "MdsessionsError",
    "PhaseDef",
    "PhaseEntry",
    "PhaseNotFoundError",
    "PhaseStatus",
    "Problem",
    "ReviewState",
    "RunResult",
    "Runner",
    "Session",
    "SessionExistsError",
    "SessionLockedError",
    "SessionManifest",
    "SessionNotFoundError",
    "SessionStatus",
    "SessionSummary",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "SyncConflictError",
    "UnrecordedEditError",
    "UserFeedback",
    "Workflow",
    "WorkflowError",
    "__version__",
    "dumps",
    "history",
    "idea_validation",
    "loads",
]

_WHERE = {
    "AgentContext": "runner",
    "AgentResult": "runner",
    "CommandAgent": "runner",
    "RunResult": "runner",
    "Runner": "runner",
    "CheckpointManager": "compat",
    "Store": "store",
    "Session": "store",
    "Problem": "store",
    "SessionSummary": "store",
    "EditedFile": "store",
    "InboxItem": "store",
    "FeedbackEvent": "watch",
    "FeedbackWatcher": "watch",
    "Identity": "store",
    "Commit": "store",
    "AgentOutput": "models",
    "AgentPrompt": "models",
    "AgentRun": "models",
    "Checkpoint": "models",
    "DocumentKind": "models",
    "FeedbackAction": "models",
    "PhaseEntry": "models",
    "PhaseStatus": "models",
    "ReviewState": "models",
    "SessionManifest": "models",
    "SessionStatus": "models",
    "UserFeedback": "models",
    "AgentSpec": "workflow",
    "PhaseDef": "workflow",
    "Workflow": "workflow",
    "idea_validation": "workflow",
    "dumps": "documents",
    "loads": "documents",
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
    "SyncConflictError": "history",
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
    from . import history
    from .compat import CheckpointManager
    from .documents import dumps, loads
    from .errors import (
        AgentFailedError,
        BranchMovedError,
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
        StoreError,
        StoreNotFoundError,
        UnrecordedEditError,
        WorkflowError,
    )
    from .history import SyncConflictError
    from .models import (
        AgentOutput,
        AgentPrompt,
        AgentRun,
        Checkpoint,
        DocumentKind,
        FeedbackAction,
        PhaseEntry,
        PhaseStatus,
        ReviewState,
        SessionManifest,
        SessionStatus,
        UserFeedback,
    )
    from .runner import AgentContext, AgentResult, CommandAgent, Runner, RunResult
    from .store import (
        Commit,
        EditedFile,
        Identity,
        InboxItem,
        Problem,
        Session,
        SessionSummary,
        Store,
    )
    from .watch import FeedbackEvent, FeedbackWatcher
    from .workflow import AgentSpec, PhaseDef, Workflow, idea_validation
