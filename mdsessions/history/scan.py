"""Secrets already committed: where they are (file, commit, kind — never the secret).

:func:`scan` reads every file of the branch's last commit, or with ``history=True`` every
file version reachable from any ref (``git log -p --all`` sees no more), and looks for
secrets with the store's redactor (:mod:`mdsessions.redaction`: detect-secrets' pattern
plugins, our own patterns, ``[redaction.patterns]``). Markers ``[REDACTED:<kind>]`` are
not secrets. A blob is scanned once, reported at the first commit (oldest first) that
brought it in.

Redaction keeps new secrets out; a secret committed before (by an older version, with
redaction turned off, or by a person's own ``git commit``) is in history until history is
rewritten, so :data:`PURGE_HELP` says how: rotate the secret first, then rewrite.
"""

from __future__ import annotations

from mdsessions.models.results import Result
from mdsessions.redaction import Redactor
from mdsessions.store.store import Store

__all__ = ["PURGE_HELP", "ScanFinding", "ScanReport", "scan"]

#: How to remove a committed secret; the command line prints it after any finding.
PURGE_HELP = (
    "A committed secret stays in history (and on every clone and remote) until history is "
    "rewritten. First revoke and rotate it at its provider: assume it is compromised. Then "
    "rewrite history with git-filter-repo (https://github.com/newren/git-filter-repo): put "
    "each secret in a file, one per line as 'SECRET==>[REDACTED]', run "
    "'git filter-repo --sensitive-data-removal --replace-text FILE' (leave the first option "
    "out before git-filter-repo 2.47), then force-push every branch and tag, ask every "
    "holder of a clone to re-clone, delete old backups (mdsessions backup prune) and run "
    "'git gc --prune=now'. 'mdsessions scan --history' again should report nothing."
)


class ScanFinding(Result):
    """A secret found in a committed file (where and what kind; never the secret)."""

    path: str
    """Store-relative file."""
    commit: str
    """The commit (40 hex digits) that brought this version of the file in (the branch's
    last commit without ``--history``)."""
    kind: str
    """The secret's kind, as a redaction marker names it (``aws-access-key``)."""
    line: int
    """Line of the file the secret starts on (1-based)."""


class ScanReport(Result):
    """What ``scan`` looked at and found."""

    history: bool
    """Whether every version reachable from any ref was scanned (else the branch's last
    commit)."""
    commits: int
    """Commits read."""
    files: int
    """File versions (distinct blobs) scanned."""
    findings: tuple[ScanFinding, ...] = ()
    """Each secret found, by commit (oldest first), file and line."""
    purge: str | None = None
    """How to purge them (``null`` when nothing was found)."""


def _text(data: bytes) -> str | None:
    if b"\0" in data[:8000]:
        return None  # binary: not text a secret pattern is written for
    return data.decode("utf-8", "replace")


def scan(store: Store, *, history: bool = False) -> ScanReport:
    """Report secrets already committed: file, commit, kind and line, never the secret.

    Args:
        store: The store.
        history: Scan every file version reachable from any ref (branches, tags, set-aside
            versions, the stash), not only the branch's last commit.

    Returns:
        The report; ``purge`` says how to remove what was found.

    Raises:
        StoreError: git cannot list the history.

    Example:
        >>> report = scan(store, history=True)                        # doctest: +SKIP
        >>> [(f.path, f.commit[:7], f.kind) for f in report.findings]  # doctest: +SKIP
        [('projects/p/sessions/s/phase_1_concept/agent.md', '1f3c2ab', 'aws-access-key')]
    """
    git = store.git
    finder = Redactor(extra=dict(store.redactor.extra))
    if history:
        lines = git.git("rev-list", "--all", "--reverse", "--topo-order", "--parents")
        commits = [line.split() for line in lines.stdout.decode("ascii").splitlines()]
    else:
        head = git.read_ref(f"refs/heads/{git.branch}")
        commits = [[head]] if head else []
    seen: set[bytes] = set()
    findings: list[ScanFinding] = []
    for ids in commits:
        commit = ids[0]
        if history:
            parent = ids[1] if len(ids) > 1 else None
            changed = {p: new for p, (_, new) in git.diff_trees(parent, commit).items() if new}
        else:
            changed = git.list_tree(commit)
        for path in sorted(changed):
            blob = changed[path]
            if blob in seen:
                continue
            seen.add(blob)
            text = _text(git.read_object(blob)[1])
            if text is None:
                continue
            for found in finder.find(text):
                findings.append(
                    ScanFinding(path=path, commit=commit, kind=found.kind, line=found.line)
                )
    return ScanReport(
        history=history,
        commits=len(commits),
        files=len(seen),
        findings=tuple(findings),
        purge=PURGE_HELP if findings else None,
    )
