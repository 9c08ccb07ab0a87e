"""``git diff`` between two commits, limited to a folder: line counts and the patch."""

from __future__ import annotations

from mdsessions.git.repo import GitRepo

__all__ = ["diff_numstat", "diff_patch"]


def diff_numstat(repo: GitRepo, old: str, new: str, path: str) -> dict[str, tuple[int, int]]:
    """Lines added and removed per file under ``path`` between two commits.

    Returns:
        Repository-relative path → ``(added, removed)``; binary files count ``(0, 0)``.
    """
    proc = repo.git(
        "diff", "--numstat", "-z", "--no-renames", "--no-ext-diff", "--no-textconv",
        old, new, "--", path,
    )  # fmt: skip
    counts: dict[str, tuple[int, int]] = {}
    for record in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        added, _, rest = record.partition("\t")
        removed, _, rel = rest.partition("\t")
        if rel:
            counts[rel] = (
                int(added) if added.isdigit() else 0,
                int(removed) if removed.isdigit() else 0,
            )
    return counts


def diff_patch(repo: GitRepo, old: str, new: str, path: str) -> str:
    """The unified patch under ``path`` between two commits (``a/`` and ``b/`` prefixes).

    No colour, external diff drivers or text conversion; undecodable bytes are replaced.
    """
    return repo.git(
        "diff", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames",
        "--src-prefix=a/", "--dst-prefix=b/", old, new, "--", path,
    ).stdout.decode("utf-8", "replace")  # fmt: skip
