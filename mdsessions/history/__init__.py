"""History, time travel, backups and remotes, each one a git operation (DESIGN.md "History = git").

======================  ===========================================================
capability              git operation
======================  ===========================================================
:func:`versions`        path-limited ``git log`` with the ``Mdsessions-*`` trailers parsed
:func:`read_version`    the blob at ``commit:path``
:func:`diff`            tree diff limited to the session (+ ``git diff`` for the patch)
:func:`restore`         the old files written back as a **new** commit (never a rewrite)
:func:`fork`            the session's files at a commit, ids rewritten, in a new folder
:func:`create_backup`   ``git bundle create --all`` + ``git bundle verify``
:func:`restore_backup`  a new repository fetched from the bundle, checked out, verified
:func:`push`/:func:`pull`  ``git push`` / ``git fetch`` + a per-session merge; versions a
                        sync sets aside are named ``refs/mdsessions/set-aside/…``
:func:`clone`           ``git clone`` + the store's branch checked out, whatever ``HEAD`` says
:func:`verify`          ``git fsck --strict`` + schema validation + trailers vs paths
:func:`export_sessions` sessions as JSON, JSON Lines or CSV (read at ``HEAD``);
                        :func:`import_sessions` writes a JSON export back, a commit each
:func:`export_bundle`   ``git fast-export -- <sessions>`` replayed into a bundle of their
                        own history; :func:`import_bundle` fetches it + one merge commit
:func:`archive`         a session folder moved to ``archive/`` (:func:`unarchive` back);
                        :func:`delete` / :func:`cleanup` one commit, bundle first if asked;
                        :func:`bring_back` from the archive, history or a bundle
:func:`maintenance`     ``git pack-refs``, ``git repack``, ``git commit-graph write``
:func:`scan`            every blob of the last commit (or of ``--all`` history) searched for
                        secrets: file, commit, kind — never the secret
======================  ===========================================================

Every mutating call is one commit or nothing, made under the store's writer lock, with
``Mdsessions-Kind`` ``restore``, ``fork`` or ``merge``. Times are UTC; sizes are bytes;
durations are seconds.

Example:
    >>> from mdsessions import Store, history                          # doctest: +SKIP
    >>> store = Store.open("my-store")                                 # doctest: +SKIP
    >>> s = store.find_session("project-123/session-456")              # doctest: +SKIP
    >>> page = history.versions(s, kind="checkpoint", limit=10)        # doctest: +SKIP
    >>> history.restore(s, page.versions[-1].commit, phase=3)          # doctest: +SKIP
    >>> history.fork(s, "session-457", at=page.versions[2].commit)     # doctest: +SKIP
"""

from mdsessions.errors import PushRejectedError, SyncConflictError
from mdsessions.history.backups import (
    Backup,
    BackupRestore,
    BundleRef,
    backup_dir,
    create_backup,
    list_backups,
    prune_backups,
    restore_backup,
)
from mdsessions.history.common import ProgressCallback, session_path
from mdsessions.history.diff import FileChange, PhaseChange, SessionDiff, diff
from mdsessions.history.exchange import (
    AGENT_COLUMNS,
    EXPORT_FORMAT,
    PHASE_COLUMNS,
    ExportResult,
    ImportedSession,
    ImportResult,
    export_bundle,
    export_sessions,
    import_bundle,
    import_sessions,
    select_sessions,
)
from mdsessions.history.fork import ForkResult, ForkSource, fork
from mdsessions.history.maintenance import MaintenanceReport, MaintenanceStep, maintenance
from mdsessions.history.remotes import (
    PushResult,
    Remote,
    add_remote,
    clone,
    list_remotes,
    push,
    remotes,
    remove_remote,
)
from mdsessions.history.restore import RestoreResult, restore
from mdsessions.history.retention import (
    BringBackResult,
    CleanupResult,
    MoveResult,
    archive,
    archived_inbox,
    archived_sessions,
    bring_back,
    cleanup,
    delete,
    parse_age,
    unarchive,
)
from mdsessions.history.scan import PURGE_HELP, ScanFinding, ScanReport, scan
from mdsessions.history.setaside import SessionChange, SetAside, StoreFileChange
from mdsessions.history.sync import (
    PullResult,
    SessionConflict,
    list_set_aside,
    pull,
    resolve,
    sync,
)
from mdsessions.history.verify import VerifyReport, verify
from mdsessions.history.versions import Version, VersionPage, load_version, read_version, versions

__all__ = [
    "AGENT_COLUMNS",
    "EXPORT_FORMAT",
    "PHASE_COLUMNS",
    "PURGE_HELP",
    "Backup",
    "BackupRestore",
    "BringBackResult",
    "BundleRef",
    "CleanupResult",
    "ExportResult",
    "FileChange",
    "ForkResult",
    "ForkSource",
    "ImportResult",
    "ImportedSession",
    "MaintenanceReport",
    "MaintenanceStep",
    "MoveResult",
    "PhaseChange",
    "ProgressCallback",
    "PullResult",
    "PushRejectedError",
    "PushResult",
    "Remote",
    "RestoreResult",
    "ScanFinding",
    "ScanReport",
    "SessionChange",
    "SessionConflict",
    "SessionDiff",
    "SetAside",
    "StoreFileChange",
    "SyncConflictError",
    "VerifyReport",
    "Version",
    "VersionPage",
    "add_remote",
    "archive",
    "archived_inbox",
    "archived_sessions",
    "backup_dir",
    "bring_back",
    "cleanup",
    "clone",
    "create_backup",
    "delete",
    "diff",
    "export_bundle",
    "export_sessions",
    "fork",
    "import_bundle",
    "import_sessions",
    "list_backups",
    "list_remotes",
    "list_set_aside",
    "load_version",
    "maintenance",
    "parse_age",
    "prune_backups",
    "pull",
    "push",
    "read_version",
    "remotes",
    "remove_remote",
    "resolve",
    "restore",
    "restore_backup",
    "scan",
    "select_sessions",
    "session_path",
    "sync",
    "unarchive",
    "verify",
    "versions",
]
