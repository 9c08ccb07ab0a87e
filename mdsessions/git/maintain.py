"""Checking and tidying a repository: fsck, object counts, packing, the commit-graph.

Each function is one git verb with its output parsed here, so the history layer never
builds a git command line.
"""

from __future__ import annotations

from pathlib import Path

from mdsessions.git.process import run_git
from mdsessions.git.repo import GitRepo

__all__ = [
    "checkout_branch",
    "count_objects",
    "fsck",
    "has_commit",
    "pack_refs",
    "repack",
    "write_commit_graph",
]


def fsck(root: Path) -> tuple[bool, list[str]]:
    """``git fsck --strict --no-dangling``: whether git passed, and what it reported.

    Returns:
        ``(passed, lines)``: ``lines`` are git's messages, one per line (warnings too);
        when git fails without saying why, one line ``exit status N``.
    """
    proc = run_git(["fsck", "--strict", "--no-dangling", "--no-progress"], cwd=root, check=False)
    lines = (proc.stdout + proc.stderr).decode("utf-8", "replace").splitlines()
    found = [line.strip() for line in lines if line.strip()]
    if proc.returncode != 0 and not found:
        found.append(f"exit status {proc.returncode}")
    return proc.returncode == 0, found


def has_commit(repo: GitRepo, commit: str) -> bool:
    """Whether ``commit`` names a commit object present in the repository."""
    return repo.git("cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode == 0


def count_objects(repo: GitRepo) -> dict[str, int]:
    """``git count-objects -v`` as numbers: ``count``, ``size`` (KiB), ``in-pack``, ``packs``."""
    out = {}
    for line in repo.git("count-objects", "-v").stdout.decode().splitlines():
        key, _, value = line.partition(":")
        if value.strip().isdigit():
            out[key.strip()] = int(value.strip())
    return out


def pack_refs(repo: GitRepo) -> None:
    """``git pack-refs --all``: loose refs into ``packed-refs`` (git's lock protocol)."""
    repo.git("pack-refs", "--all")


def repack(repo: GitRepo, *, consolidate: bool) -> None:
    """``git repack -d -l``: loose objects into a pack; ``consolidate`` = all packs into one."""
    repo.git("repack", *(["-A"] if consolidate else []), "-d", "-l", "-q")


def write_commit_graph(repo: GitRepo) -> None:
    """``git commit-graph write --reachable --changed-paths --split`` (faster path-limited log)."""
    repo.git("commit-graph", "write", "--reachable", "--changed-paths", "--split", "--no-progress")


def checkout_branch(root: Path, ref: str) -> None:
    """Point ``HEAD`` at ``ref`` and write the work tree from it (``reset --hard``).

    Only for a repository this process just made (a restore's new folder): it overwrites
    the work tree.
    """
    run_git(["symbolic-ref", "HEAD", ref], cwd=root)
    run_git(["reset", "-q", "--hard", "HEAD"], cwd=root)
