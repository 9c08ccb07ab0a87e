"""The history of a few folders as a bundle of their own (``git fast-export -- PATHS``).

A session's full history is every commit that touched its folder. To hand it to another
store without the rest of the store, those commits are replayed with only the chosen
folders in their trees (author, committer, dates and messages kept), in a scratch
repository, and bundled from there. The store itself is only read: the scratch repository
reads its objects through ``objects/info/alternates`` and is removed afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mdsessions.errors import StoreError
from mdsessions.git.process import run_git
from mdsessions.git.repo import GitRepo

__all__ = ["bundle_folders", "fetch_bundle_tip", "read_bundle_files"]


def _objects_dir(repo: GitRepo) -> Path:
    out = run_git(["rev-parse", "--git-path", "objects"], cwd=repo.root).stdout.decode().strip()
    path = Path(out)
    return path if path.is_absolute() else (repo.root / path).resolve()


def bundle_folders(
    repo: GitRepo, bundle: Path, *, commit: str, folders: Sequence[str], branch: str
) -> tuple[str, int]:
    """Write a verified bundle of the history of ``folders`` up to ``commit``.

    Every commit reachable from ``commit`` that changed one of the folders is replayed
    (``git fast-export`` limited to them, ``git fast-import`` in a scratch repository) with
    only those folders in its tree; the bundle holds one branch, ``refs/heads/{branch}``,
    with no prerequisites, so any repository can fetch it.

    Args:
        repo: The store's repository (only read).
        bundle: The file to write (replaced if it exists).
        commit: Full id of the commit whose history is taken.
        folders: Store-relative folders.
        branch: The branch name inside the bundle.

    Returns:
        ``(tip, commits)``: the bundle's branch tip (full id) and how many commits it holds.

    Raises:
        StoreError: None of the folders has history at ``commit``, or git fails to write
            or verify the bundle (git's message).
    """
    scratch = Path(tempfile.mkdtemp(prefix="mdsessions-extract-"))
    try:
        source, target = scratch / "source", scratch / "target"
        run_git(["init", "--quiet", "--bare", str(source)])
        run_git(["init", "--quiet", "--bare", str(target)])
        (source / "objects" / "info" / "alternates").write_text(f"{_objects_dir(repo)}\n")
        ref = f"refs/heads/{branch}"
        run_git(["update-ref", ref, commit], cwd=source)
        # parse-options takes the first "--", the revision walk the second: the folders
        # need not exist in a working tree (there is none).
        stream = run_git(
            ["fast-export", "--reencode=no", "--signed-tags=strip", ref, "--", "--", *folders],
            cwd=source,
        ).stdout
        run_git(["fast-import", "--quiet"], cwd=target, input=stream)
        tip = run_git(["for-each-ref", "--format=%(objectname)", ref], cwd=target)
        sha = tip.stdout.decode().strip()
        if not sha:
            raise StoreError(f"no history of {', '.join(folders)} at {commit[:12]}")
        count = run_git(["rev-list", "--count", ref], cwd=target).stdout.decode().strip()
        tmp = bundle.with_name(f".{bundle.name}.tmp")
        try:
            run_git(["bundle", "create", "--quiet", str(tmp), ref], cwd=target)
            verified = run_git(["bundle", "verify", "--quiet", str(tmp)], cwd=target, check=False)
            if verified.returncode != 0:
                message = verified.stderr.decode("utf-8", "replace").strip()
                raise StoreError(f"git bundle verify rejected the new bundle: {message}")
            tmp.replace(bundle)
        finally:
            if tmp.exists():
                tmp.unlink()
        return sha, int(count)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def read_bundle_files(bundle: Path, folder: str) -> tuple[str, dict[str, bytes]] | None:
    """The files below ``folder`` at the tip of a bundle's one branch, read in a scratch repo.

    Args:
        bundle: A bundle file (e.g. from :func:`bundle_folders`).
        folder: A store-relative folder.

    Returns:
        ``(tip, {path relative to the bundle's root: bytes})``, or ``None`` when the folder
        is not in the tip's tree.

    Raises:
        StoreError: Not a complete bundle git can read, or it holds no branch (git's message).
    """
    scratch = Path(tempfile.mkdtemp(prefix="mdsessions-bundle-"))
    try:
        run_git(["init", "--quiet", "--bare", str(scratch)])
        verified = run_git(["bundle", "verify", "--quiet", str(bundle)], cwd=scratch, check=False)
        if verified.returncode != 0:
            message = verified.stderr.decode("utf-8", "replace").strip()
            raise StoreError(f"{bundle}: git bundle verify failed: {message}")
        run_git(
            ["fetch", "--quiet", "--no-tags", str(bundle), "+refs/heads/*:refs/heads/*"],
            cwd=scratch,
        )
        heads = run_git(["for-each-ref", "--format=%(objectname)", "refs/heads/"], cwd=scratch)
        tips = heads.stdout.decode().split()
        if len(tips) != 1:
            raise StoreError(f"{bundle}: expected a bundle of one branch, found {len(tips)}")
        tip = tips[0]
        listing = run_git(["ls-tree", "-r", "-z", tip, "--", folder + "/"], cwd=scratch).stdout
        files: dict[str, bytes] = {}
        for record in listing.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            _mode, kind, sha = meta.split()
            if kind != b"blob":
                continue
            data = run_git(["cat-file", "blob", sha.decode()], cwd=scratch).stdout
            files[path.decode("utf-8")] = data
        return (tip, files) if files else None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fetch_bundle_tip(repo: GitRepo, bundle: Path) -> str:
    """Fetch a bundle's one branch into ``refs/mdsessions/import/{tip}``; return the tip.

    The caller deletes the ref once the tip is reachable otherwise (or not wanted).

    Raises:
        StoreError: Not a complete bundle git can read, or it holds other than one branch.
    """
    verified = run_git(["bundle", "verify", "--quiet", str(bundle)], cwd=repo.root, check=False)
    if verified.returncode != 0:
        message = verified.stderr.decode("utf-8", "replace").strip()
        raise StoreError(f"{bundle}: git bundle verify failed: {message}")
    heads = run_git(["bundle", "list-heads", str(bundle)], cwd=repo.root).stdout.decode()
    branches = [
        line.split()
        for line in heads.splitlines()
        if len(line.split()) == 2 and line.split()[1].startswith("refs/heads/")
    ]
    if len(branches) != 1:
        raise StoreError(f"{bundle}: expected a bundle of one branch, found {len(branches)}")
    tip, name = branches[0]
    run_git(
        ["fetch", "--quiet", "--no-tags", str(bundle), f"+{name}:refs/mdsessions/import/{tip}"],
        cwd=repo.root,
    )
    return tip
