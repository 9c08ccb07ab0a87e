"""Recovery: finish or undo a crashed writer's operation; put back what racing git dropped.

A writer that dies leaves at most a journal, its claims and the locks that are them, temp
files named with its token and, if the branch had moved, files and index entries not yet
brought to the new commit. :func:`recover` rolls that operation forward or back from the
journal and :func:`sweep_claims` removes claims no journal names; both run under the writer
lock before anything is written.

Two races of git's own commands drop another process's work (a ``git reset --hard`` or
``git stash`` that read ``HEAD`` too early; a command that writes back a stale copy of the
index): :func:`restore_dropped` finds them in the reflog and the tree and puts the work back
in a new commit, sparing a person's edit.

Imports: :mod:`.commit`, :mod:`.fsutil`, :mod:`.index`, :mod:`.journal`, :mod:`.objects`,
:mod:`.refs` (and :mod:`.repo` for type checking only).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import secrets
from typing import TYPE_CHECKING

from mdsessions.errors import LockTimeoutError, StoreError
from mdsessions.git import commit as _commit
from mdsessions.git import index as _gitindex
from mdsessions.git.fsutil import TMP_SUFFIX
from mdsessions.git.journal import JournalEntry
from mdsessions.git.objects import OBJECT_CLAIM_PREFIX, OBJECT_CLAIM_SUFFIX, Identity
from mdsessions.git.refs import RefMoved

if TYPE_CHECKING:
    from mdsessions.git.repo import GitRepo

__all__ = [
    "STALE_RESET",
    "descends",
    "keep_dropped",
    "reflog_asks_for_audit",
    "recover",
    "restore_dropped",
    "stale_resets",
    "sweep_claims",
    "sweep_object_claims",
]

#: The reflog message of ``git reset --hard`` without a commit (and of ``git stash``'s
#: own reset): meant to leave the branch where it is.
STALE_RESET = "reset: moving to HEAD"

_log = logging.getLogger(__name__)


def recover(repo: GitRepo) -> bool:
    """Finish or undo a crashed writer's operation (see ``GitRepo.recover``; under the lock).

    Returns:
        True if something was recovered.
    """
    try:
        entry = repo.journal.read()
    except ValueError:
        repo.journal.remove()  # torn while written: nothing had been created yet
        _log.warning(
            "recovery: removed a crashed writer's torn journal",
            extra={"operation": "recover", "action": "torn-journal"},
        )
        return True
    if entry is None:
        return False
    # Never write (nor clean temp files) through a symbolic link that appeared since.
    for rel in entry.paths:
        repo.worktree.check_path(rel)
    if entry.token:
        _remove_leftovers(repo, entry)
    # Shared-index temp files: only mdsessions writers make them, one at a time under
    # the writer lock this caller holds, so any left is a dead writer's.
    for tmp in repo.git_dir.glob(_gitindex.SHARED_INDEX_TMP_GLOB):
        with contextlib.suppress(OSError):
            tmp.unlink()
    current = repo.read_ref(entry.ref)
    if entry.new is not None and current == entry.new and current != entry.old:
        # The dead writer installed its commit: finish its files and index entries.
        repo.worktree.materialize(current, entry.paths, protect_from=entry.old, token=entry.token)
        action = "rolled-forward"
    elif (
        entry.new is not None
        and current not in (entry.old, entry.new)
        and current is not None
        and descends(repo, current, entry.new)
    ):
        # It installed its commit and someone committed on top since: finish the paths
        # that are still as it left them (a later commit's version is theirs).
        ours = [
            p
            for p in entry.paths
            if repo.objects.entry(current, p) == repo.objects.entry(entry.new, p)
        ]
        repo.worktree.materialize(current, ours, protect_from=entry.old, token=entry.token)
        action = "rolled-forward"
    else:
        # Not moved, or moved by someone else (their commit, never rolled "forward").
        if entry.new is not None and current == entry.old:
            # Killed between putting its index in place and moving the branch.
            repo.worktree.revert_index(entry.paths, entry.old, entry.new, entry.token or "r")
        for rel in entry.paths:  # folders made only for its temp files
            repo.worktree.prune_empty_dirs((repo.root / rel).parent)
        action = "rolled-back"
    repo.journal.remove()
    _log.warning(
        "recovery: a crashed writer's operation %s (%d paths, commit %s)",
        action,
        len(entry.paths),
        (entry.new or "-")[:12],
        extra={"operation": "recover", "action": action, "commit": entry.new}
        | {"files": len(entry.paths)},
    )
    return True


def sweep_claims(repo: GitRepo) -> bool:
    """Remove claims (and the locks that are them) of writers that died (under the lock).

    Every claim is made by an mdsessions writer holding the store's writer lock, so one
    found by the holder of that lock is a dead writer's, also where no journal names it
    (a lock taken to keep a dropped commit, a journal torn while rewritten). A git lock
    file is removed only when it is the same file as such a claim.

    Returns:
        True if something was removed.
    """
    try:
        names = [e.name for e in os.scandir(repo.private_dir) if e.name.startswith("claim-")]
    except OSError:
        return False
    if not names:
        return False
    locks = [repo.git_dir / "index.lock", repo.git_dir / f"refs/heads/{repo.branch}.lock"]
    locks += list((repo.git_dir / "refs" / "mdsessions").glob("**/*.lock"))
    tokens = set()
    for name in names:
        claim = repo.private_dir / name
        for lock in locks:
            with contextlib.suppress(OSError):
                if lock.exists() and claim.samefile(lock):
                    lock.unlink()
        with contextlib.suppress(FileNotFoundError):
            claim.unlink()
        tokens.add(name[len("claim-") :].partition(".")[0])
    # Its temp files carry the token; with no journal their folders are unknown (rare:
    # only after a crash): look through the working tree once.
    for token in tokens - {""}:
        for tmp in repo.root.rglob(f".*.{glob.escape(token)}*{TMP_SUFFIX}"):
            if ".git" not in tmp.relative_to(repo.root).parts:
                with contextlib.suppress(OSError):
                    tmp.unlink()
    for leftover in repo.private_dir.glob("journal-*.tmp"):
        with contextlib.suppress(OSError):
            leftover.unlink()
    _log.warning(
        "recovery: removed %d claims of writers that died",
        len(names),
        extra={"operation": "recover", "action": "claims-swept", "claims": len(names)},
    )
    return True


def sweep_object_claims(repo: GitRepo) -> bool:
    """Remove the temp objects of processes that died writing objects outside a commit.

    Such a process holds an ``flock`` on its claim ``.git/mdsessions/objects-<token>.claim``
    while it lives (see :data:`mdsessions.git.objects.OBJECT_CLAIM_PREFIX`); the kernel
    releases it at death. A claim whose flock this call can take is a dead process's: its
    ``tmp_obj_mds<token>_*`` files and the claim go. A live process's claim cannot be locked
    and is left alone, as is every temp object not named after a dead claim. Needs no writer
    lock (the flock is the proof).

    Returns:
        True if a dead process's claim was found (and removed).
    """
    try:
        names = [
            e.name
            for e in os.scandir(repo.private_dir)
            if e.name.startswith(OBJECT_CLAIM_PREFIX) and e.name.endswith(OBJECT_CLAIM_SUFFIX)
        ]
    except OSError:
        return False
    found = False
    for name in names:
        path = repo.private_dir / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its owner lives
            token = name[len(OBJECT_CLAIM_PREFIX) : -len(OBJECT_CLAIM_SUFFIX)]
            if token:
                pattern = f"[0-9a-f][0-9a-f]/tmp_obj_mds{glob.escape(token)}_*"
                for tmp in (repo.git_dir / "objects").glob(pattern):
                    with contextlib.suppress(OSError):
                        tmp.unlink()
            with contextlib.suppress(OSError):
                path.unlink()
            found = True
        finally:
            os.close(fd)
    return found


def _remove_leftovers(repo: GitRepo, entry: JournalEntry) -> None:
    """Remove the lock files, claims and temp files a dead writer provably created."""
    token = entry.token
    for kind, lock in (
        ("index", repo.git_dir / "index.lock"),
        ("ref", repo.git_dir / (entry.ref + ".lock")),
    ):
        claim = repo.journal.claim(token, kind)
        # The lock is the dead writer's if it is its claim (taken, not yet renamed) or the
        # file its replace swapped out (exchanged, old content not yet unlinked).
        for own in (claim, _gitindex.old_claim(claim)):
            with contextlib.suppress(OSError):
                if own.exists() and lock.exists() and own.samefile(lock):
                    lock.unlink()
        for own in (claim, _gitindex.old_claim(claim)):
            with contextlib.suppress(FileNotFoundError):
                own.unlink()
    with contextlib.suppress(FileNotFoundError):
        repo.journal.message_file(token).unlink()
    for rel in entry.paths:
        target = repo.root / rel
        if target.parent.is_dir():
            for tmp in target.parent.glob(f".{glob.escape(target.name)}.{token}*{TMP_SUFFIX}"):
                with contextlib.suppress(OSError):
                    tmp.unlink()
    for tmp in (repo.git_dir / "objects").glob(f"[0-9a-f][0-9a-f]/tmp_obj_mds{token}_*"):
        with contextlib.suppress(OSError):
            tmp.unlink()


def stale_resets(repo: GitRepo, ref: str) -> list[tuple[str, str]]:
    """``(old, new)`` of recent reflog lines of ``ref`` where a no-op reset moved it.

    ``git reset --hard`` resolves ``HEAD`` before it takes ``index.lock``; a commit made
    in between is then "reset" away (the branch moves back to the stale ``HEAD``).
    Newest first.
    """
    return [
        (old, new)
        for old, new, _who, message in repo.ref_store.reflog_tail(ref)
        if message == STALE_RESET and old != new
    ]


def reflog_asks_for_audit(repo: GitRepo) -> bool:
    """Whether the branch's reflog tail (read once) calls for :func:`restore_dropped`.

    It does when the last move was not this store's, or when a no-op reset
    (:data:`STALE_RESET`) with two different ids sits in the tail: it may have dropped a
    commit of ours that no later write of this store put back.
    """
    tail = repo.ref_store.reflog_tail(f"refs/heads/{repo.branch}")
    if not tail:
        return False
    if _audit_mark(repo) == _audit_key(repo, f"refs/heads/{repo.branch}", tail[0]):
        return False  # audited at this very reflog entry: nothing moved the branch since
    if tail[0][2] != str(repo.identity):
        return True
    return any(message == STALE_RESET and old != new for old, new, _who, message in tail)


#: ``.git/mdsessions/audited``: the reflog entry of the branch at which :func:`restore_dropped`
#: last found nothing more to do. While the branch's newest reflog entry is that one, nothing
#: moved the branch since (a racing reset, a person's commit, our own write each add an
#: entry), so opening the store need not audit again: without it, every command run after a
#: person's ``git commit`` paid a tree diff of the store (0.8 s at 10,000 sessions).
AUDIT_MARK = "audited"


def _audit_key(repo: GitRepo, ref: str, entry: tuple[str, str, str, str]) -> str:
    """The newest reflog entry with the reflog's size (each new entry makes it longer)."""
    try:
        size = (repo.git_dir / "logs" / ref).stat().st_size
    except OSError:
        size = -1
    return "\t".join((str(size), *entry))


def _audit_mark(repo: GitRepo) -> str | None:
    try:
        return (repo.private_dir / AUDIT_MARK).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _write_audit_mark(repo: GitRepo, ref: str, head: str) -> None:
    """Remember the reflog entry the audit ended at (when it names ``head``); best effort.

    A torn or stale mark only makes the next open audit again.
    """
    tail = repo.ref_store.reflog_tail(ref)
    if not tail or tail[0][1] != head:
        return
    key = _audit_key(repo, ref, tail[0])
    if _audit_mark(repo) != key:
        with contextlib.suppress(OSError):
            (repo.private_dir / AUDIT_MARK).write_text(key, encoding="utf-8")


def _last_own_commit(repo: GitRepo, ref: str) -> str | None:
    """The commit mdsessions (this store's identity) last put on ``ref``, from the reflog."""
    if repo.memory.last_installed is not None:
        return repo.memory.last_installed
    for _old, new, who, _message in repo.ref_store.reflog_tail(ref):
        if who == str(repo.identity):
            return new
    return None


def restore_dropped(repo: GitRepo, committer: Identity) -> list[str]:
    """Put back what a racing git command dropped from the branch after mdsessions wrote it.

    Two races of git's own commands lose a commit of another process, and both hit a
    store that a person uses while a runner writes:

    - ``git reset --hard`` (and ``git stash``, which runs it) resolves ``HEAD`` before
      it takes ``index.lock``; a commit made in between is "reset" away. Seen in the
      reflog as ``reset: moving to HEAD`` with two different ids. The dropped commit is
      put back by moving the branch forward to it when nothing was committed since, else
      by a merge commit that brings back the paths it changed (when the commits since did
      not change them too; otherwise it is kept reachable as
      ``refs/mdsessions/dropped/<id>``).
    - ``git stash pop`` (and other merges) read the index before taking its lock and
      write it back under the lock, dropping entries written in between; the person's
      next ``git commit`` then deletes (or reverts) the file in ``HEAD`` while the working
      tree still holds what mdsessions wrote. A path whose working-tree file still holds
      exactly the content of mdsessions' last commit, while ``HEAD`` does not, is put
      back in a new commit. (A person who removes or reverts a file on purpose changes
      the working-tree file too, and is left alone.)

    Called under the writer lock when the branch is not where this process left it;
    files follow, sparing a person's edit (:meth:`.WorkTree.materialize` with ``protect_from``).

    Returns:
        The commit ids restored or kept.
    """
    ref = f"refs/heads/{repo.branch}"
    head = repo.read_ref(ref)
    if head is None or head == repo.memory.audited:
        return []
    done: list[str] = []
    for old, new in stale_resets(repo, ref):
        if old in repo.memory.drops_checked:
            continue
        repo.memory.checked_drop(old)
        if not _is_own_commit(repo, old) or descends(repo, head, old):
            continue
        paths = sorted(repo.objects.diff_trees(new, old))
        if head == new:
            target = old
        elif any(repo.objects.entry(new, p) != repo.objects.entry(head, p) for p in paths):
            keep_dropped(repo, old, committer)
            done.append(old)
            continue
        else:
            changes = {
                p: (found[1] if (found := repo.objects.entry(old, p)) else None) for p in paths
            }
            tree = repo.objects.rewrite(repo.objects.commit_tree(head), changes)
            message = _restore_message(old)
            target = _commit.make_commit(
                repo, tree, [head, old], message, committer, committer, repo.signing
            )
        try:
            _commit.move_branch(
                repo,
                ref,
                head,
                target,
                paths,
                f"mdsessions: restore {old[:12]}",
                committer,
                protect_from=head,
            )
        except RefMoved:
            repo.memory.drops_checked.pop(old, None)
            return done
        head = target
        repo.memory.last_installed = target
        done.append(old)
    head = _restore_unindexed(repo, ref, head, committer, done)
    repo.memory.audited = head
    _write_audit_mark(repo, ref, head)
    for commit in done:
        _log.warning(
            "recovery: commit %s dropped by a racing git command was put back",
            commit[:12],
            extra={"operation": "recover", "action": "restored-dropped", "commit": commit},
        )
    return done


def _restore_unindexed(
    repo: GitRepo, ref: str, head: str, committer: Identity, done: list[str]
) -> str:
    """Commit again files of mdsessions' last commit that a stale-index write dropped."""
    last = _last_own_commit(repo, ref)
    if last is None or last == head or _only_own_since(repo, head, last):
        return head
    if not descends(repo, head, last):
        return head
    lost: dict[str, bytes] = {}
    for rel, (ours, theirs) in repo.objects.diff_trees(last, head).items():
        if ours is None or theirs == ours:
            continue
        try:
            data = (repo.root / rel).read_bytes()
        except OSError:
            continue
        if repo.worktree.blob_sha(rel, data) == ours:
            lost[rel] = data
    if not lost:
        return head
    message = (
        f"restore: put back {len(lost)} file(s) a concurrent git command dropped\n\n"
        f"The index was written back by a git command that had read it before\n"
        f"{last[:12]} was made, so the next commit left these out:\n"
        + "".join(f"  {rel}\n" for rel in sorted(lost))
        + "\nMdsessions-Kind: restore\n"
        + f"Mdsessions-Restored: {last}\n"
    )
    try:
        new = _commit.commit_once(
            repo, lost, sorted(lost), ref, head, message, committer, committer
        )
    except RefMoved:
        return repo.read_ref(ref) or head
    if new is None:
        return head
    done.append(last)
    return new


#: First-parent steps from HEAD looked through for the last own commit (see
#: :func:`_only_own_since`); past them the full check runs.
OWN_CHAIN_LIMIT = 64


def _only_own_since(repo: GitRepo, head: str, last: str) -> bool:
    """Whether every commit from ``head`` back to ``last`` (first parents) is an mdsessions one.

    A stale-index write loses files only through someone's own ``git commit`` (mdsessions
    rewrites HEAD's tree and never drops an entry), and a reset moves the branch off
    ``last``'s line. When ``last`` is reached from ``head`` through mdsessions commits only
    (what other writers of the store do between two of this process's writes), nothing of
    ``last`` was dropped: the full comparison (a tree diff and a read of every file the other
    writers changed, under the writer lock) is skipped. Reads a few small commit objects.

    Returns:
        False when a commit on the way is not an mdsessions commit, cannot be read, or
        ``last`` is not found within :data:`OWN_CHAIN_LIMIT` steps (then check fully).
    """
    commit = head
    for _ in range(OWN_CHAIN_LIMIT):
        if commit == last:
            return True
        try:
            kind, raw = repo.objects.read(bytes.fromhex(commit))
        except (ValueError, StoreError, OSError):
            return False
        if kind != "commit" or b"\nMdsessions-Kind: " not in raw:
            return False
        header = raw.partition(b"\n\n")[0]
        parent = next((ln[7:] for ln in header.split(b"\n") if ln.startswith(b"parent ")), None)
        if parent is None:
            return False
        commit = parent.decode("ascii", "replace")
    return False


def _is_own_commit(repo: GitRepo, commit: str) -> bool:
    """Whether ``commit`` is an mdsessions commit (it carries an ``Mdsessions-Kind``)."""
    try:
        kind, raw = repo.objects.read(bytes.fromhex(commit))
    except (ValueError, StoreError, OSError):
        return False
    return kind == "commit" and b"\nMdsessions-Kind: " in raw


def descends(repo: GitRepo, descendant: str, ancestor: str, limit: int = 256) -> bool:
    """Whether ``ancestor`` is reachable from ``descendant`` (in-process for short walks)."""
    seen = {descendant}
    todo = [descendant]
    while todo and len(seen) <= limit:
        commit = todo.pop()
        if commit == ancestor:
            return True
        try:
            _kind, raw = repo.objects.read(bytes.fromhex(commit))
        except (ValueError, StoreError, OSError):
            continue
        for line in raw.split(b"\n\n", 1)[0].splitlines():
            if line.startswith(b"parent "):
                parent = line[7:].decode()
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
    if not todo:
        return False
    return repo.is_ancestor(ancestor, descendant)


def keep_dropped(repo: GitRepo, commit: str, committer: Identity) -> None:
    """Name a dropped commit ``refs/mdsessions/dropped/<id>`` so it stays reachable."""
    ref = f"refs/mdsessions/dropped/{commit}"
    if repo.read_ref(ref) is None:
        with contextlib.suppress(RefMoved, LockTimeoutError, OSError):
            repo.ref_store.cas(
                ref,
                commit,
                None,
                "mdsessions: keep a dropped commit",
                committer,
                repo.journal.claim(secrets.token_hex(6), "ref"),
            )


def _restore_message(dropped: str) -> str:
    """The message of a merge commit that puts back ``dropped``."""
    return (
        f"restore: put back {dropped[:12]}, dropped by a concurrent git reset\n\n"
        f"A 'git reset --hard' (or 'git stash') that read HEAD before {dropped[:12]} was made\n"
        "moved the branch back over it; this merge brings its files back.\n\n"
        "Mdsessions-Kind: restore\n"
        f"Mdsessions-Restored: {dropped}\n"
    )
