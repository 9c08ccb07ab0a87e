"""The commit path: one commit, written in-process, put on the branch all or nothing.

:func:`commit_once` is one attempt of :meth:`GitRepo.commit
<mdsessions.git.repo.GitRepo.commit>`: every object id is computed first, the journal names
the commit about to be installed, objects, temp files and the new index (in ``index.lock``)
are written, hooks and signing run when the configuration says so, the branch moves by
compare-and-swap, and what is left is renames. :func:`move_branch` moves the branch to a
commit already made (a merge, a fast-forward) under the same journal. Hooks run the way
``git commit`` runs them; a signed commit is made by ``git commit-tree -S`` and the signer's
own words are reported on failure.

The functions take the :class:`~mdsessions.git.repo.GitRepo` they work on (its parts:
objects, refs, journal, working tree, memory); :mod:`.repo` documents the verbs.

Imports: :mod:`.fsutil`, :mod:`.index`, :mod:`.journal`, :mod:`.objects`, :mod:`.process`,
:mod:`.refs` (and :mod:`.repo` for type checking only).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mdsessions.errors import ConflictError, HookError, StoreError
from mdsessions.git import fsutil as _fsutil
from mdsessions.git import index as _gitindex
from mdsessions.git.journal import JournalEntry
from mdsessions.git.objects import Identity, commit_bytes
from mdsessions.git.process import git_env, run_git
from mdsessions.git.refs import RefMoved

if TYPE_CHECKING:
    from mdsessions.git.repo import GitRepo

__all__ = ["commit_once", "make_commit", "move_branch"]


def commit_once(
    repo: GitRepo,
    files: Mapping[str, bytes | None],
    paths: Sequence[str],
    ref: str,
    head: str | None,
    message: str,
    author: Identity,
    committer: Identity,
    in_place: Mapping[str, os.stat_result] | None = None,
) -> str | None:
    """One attempt of :meth:`GitRepo.commit` on top of ``head`` (under the writer lock).

    Every object id is computed before the journal is written, so the journal names
    the commit it is about to install; then objects, temp files, ``index.lock`` (hooks
    and signing, when on, run here), the branch, the renames. Kept whole: the order of its
    steps is what makes a crash at any point leave all or nothing.

    Args:
        repo: The repository.
        files: Store-relative paths to new working-tree content, ``None`` to delete.
        paths: ``files``' paths, sorted.
        ref: The branch, e.g. ``refs/heads/main``.
        head: The commit the branch is expected at (``None``: unborn).
        message: The full commit message.
        author: Who acted.
        committer: Who recorded it.
        in_place: Paths whose working-tree file already holds the new content, with its
            ``os.stat`` (only the index entry is written).

    Returns:
        The new commit id, or ``None`` when the tree did not change (nothing written).

    Raises:
        RefMoved: The branch was not at ``head`` any more (nothing written but objects).
    """
    token = secrets.token_hex(6)
    in_place = in_place or {}
    objects: list[tuple[str, bytes, bytes]] = []
    blobs: dict[str, bytes | None] = {}
    worktree = repo.worktree
    actions = worktree.check_attributes(paths)
    for rel in paths:
        data = files[rel]
        blobs[rel] = (
            None
            if data is None
            else repo.objects.store(b"blob", worktree.to_git(rel, data, actions[rel]), objects)
        )
    old_root = repo.objects.commit_tree(head) if head else None
    new_root = repo.objects.rewrite(old_root, blobs, objects)
    if new_root == old_root:
        return None
    hooks = repo.hooks_enabled
    sign = repo.signing
    new: str | None = None
    parents = [head] if head else []
    if not hooks and not sign:
        raw = commit_bytes(new_root, parents, message, author, committer)
        new = repo.objects.store(b"commit", raw, objects).hex()
        repo.objects.remember_commit(new, new_root)
    # The journal comes first: whatever a crash leaves from here on (temp files,
    # index.lock, a moved branch) the next writer finds and finishes or undoes.
    repo.journal.write(JournalEntry(head, ref, list(paths), token, new))
    staged: dict[str, Path] = {}
    moved = False
    try:
        # Everything that can fail on a full disk, a read-only folder or a busy index
        # happens before the branch moves: the objects, the new files as temp files
        # beside their targets and the new index into index.lock. Then the branch moves,
        # and what is left is renames. A failure before the move leaves the store as it
        # was. Durable mode flushes the objects and temp files together, once, before
        # anything refers to them (fsutil.durable_batch: git's core.fsyncMethod=batch).
        with _fsutil.durable_batch(repo.durable):
            repo.objects.write_all(objects, token)
            for rel in paths:
                data = files[rel]
                if data is not None and rel not in in_place:
                    staged[rel] = _fsutil.stage_file(
                        repo.root / rel, data, fsync=repo.durable, token=token
                    )
        with contextlib.ExitStack() as stack:
            updates = [
                _gitindex.IndexEntryUpdate(rel, 0o100644, blobs[rel] or b"", tmp.stat())
                for rel, tmp in staged.items()
            ]
            updates += [
                _gitindex.IndexEntryUpdate(rel, 0o100644, blobs[rel] or b"", st)
                for rel, st in in_place.items()
                if files.get(rel) is not None
            ]
            updates += worktree.index_repairs(head, paths)
            removals = [rel for rel in paths if files[rel] is None]
            index_file = worktree.enter_index(stack, updates, removals, token)
            if new is None:
                if hooks:
                    message = _run_commit_hooks(repo, message, index_file, author, token)
                new = make_commit(repo, new_root, parents, message, author, committer, sign)
                repo.objects.remember_commit(new, new_root)
                repo.journal.write(JournalEntry(head, ref, list(paths), token, new))
            # The index goes in right before the branch moves (see _move_with_index).
            _move_with_index(repo, stack, ref, head, new, paths, message, committer, token)
            moved = True
            repo.memory.installed(new, head, blobs)
            for rel in paths:
                target = repo.root / rel
                if rel in staged:
                    _fsutil.replace(staged.pop(rel), target, durable=repo.durable)
                elif rel in in_place and files[rel] is not None:
                    continue  # the file already holds it: a person's newer save stays
                else:
                    with contextlib.suppress(FileNotFoundError):
                        target.unlink()
                    worktree.prune_empty_dirs(target.parent)
        # Leaving the block put the new index in place.
        repo.memory.index_written = worktree.index_identity()
    except Exception:
        if not moved:
            with contextlib.suppress(FileNotFoundError):
                repo.journal.remove()
            raise
        # A rename failed after the move: finish from the commit itself; if that fails
        # as well, the journal stays and the next writer completes the operation.
        assert new is not None
        worktree.materialize(new, paths, token=token)
    finally:
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        if not moved:  # folders made only for the temp files go too
            for rel in paths:
                worktree.prune_empty_dirs((repo.root / rel).parent)
    repo.journal.remove()
    if hooks:
        _run_hook(repo, "post-commit", [], index_file=None, author=author, check=False)
    repo.after_commit()
    return new


def make_commit(
    repo: GitRepo,
    tree: bytes,
    parents: Sequence[str],
    message: str,
    author: Identity,
    committer: Identity,
    sign: bool,
) -> str:
    """Write the commit object (signed by git itself when ``sign``); return its id.

    Args:
        repo: The repository.
        tree: The root tree id (20 raw bytes), already written.
        parents: Parent commit ids (hex).
        message: The full commit message.
        author: Who acted.
        committer: Who recorded it.
        sign: Sign it (``git commit-tree -S`` with the configured signer).

    Returns:
        The new commit id (hex).

    Raises:
        StoreError: Signing failed; the message holds the signer's own words.
    """
    if not sign:
        raw = commit_bytes(tree, parents, message, author, committer)
        return repo.objects.store(b"commit", raw).hex()
    when = f"@{int(time.time())} +0000"
    env = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_NAME": committer.name,
        "GIT_COMMITTER_EMAIL": committer.email,
        "GIT_COMMITTER_DATE": when,
    }
    args = ["commit-tree", "-S", tree.hex()]
    for parent in parents:
        args += ["-p", parent]
    proc = run_git(
        args,
        cwd=repo.root,
        input=(message.rstrip() + "\n").encode(),
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        said = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
        fmt = repo.config.get("gpg.format") or "openpgp"
        signer = _signer_says(repo, fmt, committer)
        raise StoreError(
            f"signing the commit failed (commit.gpgsign/mdsessions.sign is on, gpg.format "
            f"{fmt}); nothing was written: {said}"
            + (f"; the signer said: {signer}" if signer else "")
        )
    return proc.stdout.decode().strip()


def _signer_says(repo: GitRepo, fmt: str, committer: Identity) -> str:
    """Ask the configured signing program to sign a test text; return what it prints.

    git (2.39) reports only "gpg failed to sign the data"; the signer's own words (no
    secret key, a missing key file, a locked agent) are what a person needs to fix it.
    """
    key = repo.config.get("user.signingkey") or ""
    if fmt == "ssh":
        program = repo.config.get("gpg.ssh.program") or "ssh-keygen"
        if not key or key.startswith("key::"):
            return ""
        args = [program, "-Y", "sign", "-n", "git", "-f", str(Path(key).expanduser())]
    else:
        default = "gpgsm" if fmt == "x509" else "gpg"
        program = repo.config.get(f"gpg.{fmt}.program") or repo.config.get("gpg.program") or default
        args = [program, "--status-fd=2", "-bsau", key or str(committer)]
    try:
        proc = subprocess.run(
            args,
            input=b"mdsessions signing check\n",
            capture_output=True,
            env=git_env(),
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{args[0]}: {exc}"
    text = (proc.stderr + proc.stdout).decode("utf-8", "replace")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("[GNUPG:]")]
    return " ".join(lines)[:500] if proc.returncode != 0 else ""


def _hook_path(repo: GitRepo, name: str) -> Path | None:
    """The executable hook ``name`` from ``core.hooksPath`` or ``.git/hooks``, if any."""
    configured = repo.config.get("core.hookspath")
    folder = Path(configured).expanduser() if configured else repo.git_dir / "hooks"
    if not folder.is_absolute():
        folder = repo.root / folder
    path = folder / name
    if path.is_file() and os.access(path, os.X_OK):
        return path
    return None


def _run_hook(
    repo: GitRepo,
    name: str,
    args: Sequence[str],
    *,
    index_file: Path | None,
    author: Identity,
    check: bool = True,
) -> None:
    """Run one hook the way ``git commit`` does (working-tree root, ``GIT_INDEX_FILE``).

    Raises:
        HookError: With ``check``, the hook exited non-zero (its output in the message).
    """
    path = _hook_path(repo, name)
    if path is None:
        return
    env = git_env()
    env.pop("LC_ALL", None)
    env.update(GIT_EDITOR=":", GIT_AUTHOR_NAME=author.name, GIT_AUTHOR_EMAIL=author.email)
    if index_file is not None:
        env["GIT_INDEX_FILE"] = str(index_file)
    try:
        proc = subprocess.run(
            [str(path), *args],
            cwd=str(repo.root),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
    except OSError as exc:
        if check:
            raise HookError(f"the {name} hook ({path}) could not run: {exc}") from None
        return
    if check and proc.returncode != 0:
        said = proc.stdout.decode("utf-8", "replace").strip()
        raise HookError(
            f"the {name} hook ({path}) rejected the commit (exit status "
            f"{proc.returncode}); nothing was written" + (f": {said}" if said else "")
        )


def _run_commit_hooks(
    repo: GitRepo, message: str, index_file: Path | None, author: Identity, token: str
) -> str:
    """Run ``pre-commit``, ``prepare-commit-msg`` and ``commit-msg``; return the message.

    The message hooks may rewrite the message file (a ``Signed-off-by`` or
    ``Change-Id`` trailer); what they leave is cleaned up as ``git commit -m`` does
    (trailing spaces and surplus blank lines removed).

    Raises:
        HookError: A hook rejected the commit.
    """
    _run_hook(repo, "pre-commit", [], index_file=index_file, author=author)
    msg_file = repo.journal.message_file(token)
    msg_file.write_text(message.rstrip() + "\n", encoding="utf-8")
    try:
        _run_hook(
            repo,
            "prepare-commit-msg",
            [str(msg_file), "message"],
            index_file=index_file,
            author=author,
        )
        _run_hook(repo, "commit-msg", [str(msg_file)], index_file=index_file, author=author)
        text = msg_file.read_text(encoding="utf-8", errors="replace")
    finally:
        with contextlib.suppress(FileNotFoundError):
            msg_file.unlink()
    lines = [line.rstrip() for line in text.splitlines()]
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    if not cleaned:
        raise HookError("a commit message hook left the commit message empty; nothing was written")
    return cleaned + "\n"


def move_branch(
    repo: GitRepo,
    ref: str,
    head: str | None,
    new: str,
    paths: Sequence[str],
    message: str,
    committer: Identity,
    *,
    protect_from: str | None = None,
) -> None:
    """Journal, stage files and index, compare-and-swap the branch, then rename into place.

    The same order as :func:`commit_once`: the new files are written as temp files and the
    new index into ``index.lock`` first, the index goes in place while the branch is locked
    and verified, right before it moves (a ``git commit`` that reads the new ``HEAD`` then
    reads the new index too, and does not delete these files again), then the renames.

    Args:
        repo: The repository (its writer lock held).
        ref: The branch, e.g. ``refs/heads/main``.
        head: The commit the branch must be at (``None``: unborn).
        new: The commit to move it to (already written).
        paths: The store-relative paths that differ between the two.
        message: The reflog message.
        committer: The reflog identity.
        protect_from: A file whose content is neither this commit's nor ``new``'s is a
            person's edit: it is left as it is (its index entry still follows ``new``).

    Raises:
        RefMoved: With ``protect_from``, the branch is not at ``head`` any more (nothing
            changed).
        ConflictError: Without it, the same (nothing changed).
    """
    token = secrets.token_hex(6)
    worktree = repo.worktree
    repo.journal.write(JournalEntry(head, ref, list(paths), token, new))
    staged: dict[str, Path] = {}
    moved = False
    try:
        with contextlib.ExitStack() as stack:
            updates, removals, deletions = _stage_files(
                repo, new, paths, protect_from, token, staged
            )
            worktree.enter_index(stack, updates, removals, token)
            try:
                _move_with_index(repo, stack, ref, head, new, paths, message, committer, token)
            except RefMoved as race:
                if protect_from is not None:
                    raise
                raise ConflictError(
                    f"{ref} moved from {str(head)[:12]} to {str(race.args[0])[:12]} during the "
                    "operation; nothing was changed, try again"
                ) from None
            moved = True
            for rel in paths:
                target = repo.root / rel
                if rel in staged:
                    _fsutil.replace(staged.pop(rel), target, durable=repo.durable)
                elif rel in deletions:
                    with contextlib.suppress(FileNotFoundError):
                        target.unlink()
                    worktree.prune_empty_dirs(target.parent)
        repo.memory.index_written = worktree.index_identity()
    except Exception:
        if not moved:
            with contextlib.suppress(FileNotFoundError):
                repo.journal.remove()
            raise
        # A rename failed after the move: finish from the commit itself.
        worktree.materialize(new, paths, protect_from=protect_from, token=token)
    finally:
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        if not moved:
            for rel in paths:
                worktree.prune_empty_dirs((repo.root / rel).parent)
    repo.journal.remove()


def _stage_files(
    repo: GitRepo,
    new: str,
    paths: Sequence[str],
    protect_from: str | None,
    token: str,
    staged: dict[str, Path],
) -> tuple[list[_gitindex.IndexEntryUpdate], list[str], list[str]]:
    """Write ``new``'s version of ``paths`` as temp files beside their targets (into ``staged``).

    Returns:
        The index entries to write, the index entries to remove, and the files to delete
        once the branch moved (a person's edit, with ``protect_from``, is neither rewritten
        nor deleted: only its index entry follows ``new``).
    """
    worktree = repo.worktree
    updates: list[_gitindex.IndexEntryUpdate] = []
    removals: list[str] = []
    deletions: list[str] = []
    for rel in paths:
        found = repo.objects.entry(new, rel)
        target = repo.root / rel
        if protect_from is not None and worktree.holds_edit(rel, found, protect_from):
            if found is None:
                removals.append(rel)
            else:
                updates.append(_gitindex.IndexEntryUpdate(rel, 0o100644, found[1], None))
            continue
        if found is None:
            removals.append(rel)
            deletions.append(rel)
            continue
        _kind, data = repo.objects.read(found[1])
        tmp = _fsutil.stage_file(
            target, worktree.to_worktree(rel, data), fsync=repo.durable, token=token
        )
        staged[rel] = tmp
        updates.append(_gitindex.IndexEntryUpdate(rel, 0o100644, found[1], tmp.stat()))
    return updates, removals, deletions


def _move_with_index(
    repo: GitRepo,
    stack: contextlib.ExitStack,
    ref: str,
    head: str | None,
    new: str,
    paths: Sequence[str],
    message: str,
    committer: Identity,
    token: str,
) -> None:
    """Compare-and-swap ``ref`` from ``head`` to ``new``, the staged index going in right before.

    The new index (held in ``index.lock`` by ``stack``) goes in place while the branch is
    locked and verified: a ``git commit`` that reads the new ``HEAD`` then reads the new index
    too (it reads the index before it locks it, and would commit that stale copy, deleting
    these files, on top of the new HEAD). In durable mode the ref is written out, renamed and
    its folder flushed once: the branch's new position is on disk when the call returns.

    Raises:
        RefMoved: The branch was not at ``head`` (the index, if it went in, is reverted).
    """
    installed: list[bool] = []

    def install_index() -> None:
        stack.close()
        installed.append(True)

    try:
        with _fsutil.durable_batch(repo.durable):
            repo.ref_store.cas(
                ref,
                new,
                head,
                message,
                committer,
                repo.journal.claim(token, "ref"),
                before_install=install_index,
            )
    except BaseException:
        if installed:  # the index went in, the branch did not move: undo it
            repo.worktree.revert_index(paths, head, new, token)
        raise
