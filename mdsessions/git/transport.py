"""Moving history between repositories: remotes, clone, fetch, push, bundles.

Each function is one git verb with its output parsed here, so the history layer never
builds a git command line. ``repo`` is an open :class:`~mdsessions.git.repo.GitRepo`;
functions that work before a store exists take the repository folder (``root``) instead.

Errors: a failing verb raises :class:`~mdsessions.errors.StoreError` carrying git's own
message, unless its docstring says it returns the failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mdsessions.errors import StoreError
from mdsessions.git.process import run_git
from mdsessions.git.repo import GitRepo

__all__ = [
    "FetchResult",
    "PushLine",
    "PushOutcome",
    "add_remote",
    "bundle_create",
    "bundle_heads",
    "bundle_verify",
    "clone_bare_checkout",
    "fetch",
    "fetch_bundle",
    "file_at",
    "list_remotes",
    "push",
    "remote_branches",
    "remove_remote",
    "track_branch",
]

ProgressCallback = Callable[[str, int, "int | None"], None]


# -- remotes ------------------------------------------------------------------------------


def add_remote(repo: GitRepo, name: str, url: str) -> None:
    """``git remote add -- name url``.

    Raises:
        StoreError: The remote exists already, or git refused the name (git's message).
    """
    repo.git("remote", "add", "--", name, url)


def remove_remote(repo: GitRepo, name: str) -> None:
    """``git remote remove name``: the remote and its remote-tracking refs.

    Raises:
        StoreError: No such remote (git's message).
    """
    repo.git("remote", "remove", name)


def list_remotes(repo: GitRepo) -> list[tuple[str, str]]:
    """The repository's remotes as ``(name, fetch URL)`` pairs, in ``git remote -v`` order."""
    proc = repo.git("remote", "-v")
    out: list[tuple[str, str]] = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "(fetch)":
            out.append((parts[0], parts[1]))
    return out


def remote_branches(root: Path, remote: str) -> dict[str, str]:
    """Remote-tracking branches of ``remote`` in the repository at ``root``.

    Returns:
        Branch name (without ``refs/remotes/<remote>/``) → commit id; ``HEAD`` left out.
    """
    prefix = f"refs/remotes/{remote}/"
    proc = run_git(["for-each-ref", "--format=%(objectname) %(refname)", prefix], cwd=root)
    out: dict[str, str] = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        sha, _, name = line.partition(" ")
        if name.startswith(prefix) and name != prefix + "HEAD":
            out[name[len(prefix) :]] = sha
    return out


def file_at(root: Path, commit: str, path: str) -> bytes | None:
    """The bytes of ``path`` at ``commit`` in the repository at ``root`` (``git cat-file``).

    Returns:
        ``None`` when the commit has no such file.
    """
    proc = run_git(["cat-file", "blob", f"{commit}:{path}"], cwd=root, check=False)
    return proc.stdout if proc.returncode == 0 else None


# -- clone, fetch, push ---------------------------------------------------------------------


def clone_bare_checkout(url: str, target: Path, *, origin: str) -> str | None:
    """``git clone --no-checkout``: the history and remote-tracking refs, no work tree files.

    Args:
        url: Anything ``git clone`` accepts (path, ``file://``, ``git://``, ssh).
        target: The new repository's folder (absent or empty).
        origin: The name the remote gets.

    Returns:
        The branch the remote's ``HEAD`` names (``None`` when it names none); the caller
        chooses the branch to check out.

    Raises:
        StoreError: git could not clone (git's message).
    """
    run_git(["clone", "--no-checkout", "--quiet", "--origin", origin, "--", url, str(target)])
    head_text = (target / ".git" / "HEAD").read_text().strip()
    return head_text[len("ref: refs/heads/") :] if head_text.startswith("ref: ") else None


def track_branch(root: Path, branch: str, commit: str, *, remote: str, drop: str | None) -> None:
    """Create ``branch`` at ``commit``, check it out, make it track ``remote``'s branch.

    ``drop`` names a local branch the clone made that is not the store's (``git clone``
    creates one for the remote's ``HEAD``); it is deleted. The work tree is then written
    from the branch (``git reset --hard``; the folder is new).
    """
    ref = f"refs/heads/{branch}"
    run_git(["update-ref", ref, commit], cwd=root)
    run_git(["symbolic-ref", "HEAD", ref], cwd=root)
    run_git(["config", f"branch.{branch}.remote", remote], cwd=root)
    run_git(["config", f"branch.{branch}.merge", ref], cwd=root)
    if drop is not None and drop != branch:
        run_git(["update-ref", "-d", f"refs/heads/{drop}"], cwd=root, check=False)
    run_git(["remote", "set-head", remote, branch], cwd=root)
    run_git(["reset", "--quiet", "--hard", "HEAD"], cwd=root)


@dataclass(frozen=True)
class FetchResult:
    """What ``git fetch`` said: ``ok``, or the remote lacks a ref, or it failed."""

    ok: bool
    missing_ref: bool
    message: str


def fetch(repo_or_root: GitRepo | Path, remote: str, refspecs: Sequence[str]) -> FetchResult:
    """``git fetch --quiet --no-tags -- remote refspecs…`` (no tags, no auto-follow).

    Returns:
        The outcome; a failure is returned, not raised, so the caller words it.
    """
    args = ["fetch", "--quiet", "--no-tags", "--", remote, *refspecs]
    if isinstance(repo_or_root, GitRepo):
        proc = repo_or_root.git(*args, check=False)
    else:
        proc = run_git(args, cwd=repo_or_root, check=False)
    message = proc.stderr.decode("utf-8", "replace").strip()
    return FetchResult(
        ok=proc.returncode == 0,
        missing_ref=proc.returncode != 0 and "couldn't find remote ref" in message,
        message=message,
    )


@dataclass(frozen=True)
class PushLine:
    """One ref line of ``git push --porcelain``: flag (`` `` ``+`` ``-`` ``*`` ``!`` ``=``)."""

    flag: str
    source: str
    target: str
    summary: str


@dataclass(frozen=True)
class PushOutcome:
    """``git push --porcelain``'s ref lines, and its stderr and stdout for messages."""

    lines: tuple[PushLine, ...]
    stderr: str
    stdout: str

    def line_for(self, ref: str) -> PushLine | None:
        """The line whose remote ref is ``ref``, if git reported one."""
        return next((line for line in self.lines if line.target == ref), None)


def push(repo: GitRepo, remote: str, refspecs: Sequence[str]) -> PushOutcome:
    """``git push --porcelain -- remote refspecs…``; never raises on a rejected ref.

    Returns:
        Each ref's outcome as git reports it; a ref git never reached has no line.
    """
    proc = repo.git("push", "--porcelain", "--", remote, *refspecs, check=False)
    out = proc.stdout.decode("utf-8", "replace")
    lines = []
    for line in out.splitlines():
        if "\t" not in line or line[:1] not in " +-*!=":
            continue
        fields = line.split("\t")
        source, _, target = fields[1].partition(":") if len(fields) > 1 else ("", "", "")
        lines.append(PushLine(line[:1], source, target, fields[-1].strip()))
    return PushOutcome(tuple(lines), proc.stderr.decode("utf-8", "replace").strip(), out)


# -- bundles ------------------------------------------------------------------------------


def bundle_verify(bundle: Path, *, cwd: Path) -> str | None:
    """``git bundle verify --quiet``: ``None`` when the bundle is whole, else git's message.

    ``cwd`` is a repository (git checks the bundle's prerequisites against it).
    """
    proc = run_git(["bundle", "verify", "--quiet", str(bundle)], cwd=cwd, check=False)
    if proc.returncode == 0:
        return None
    return proc.stderr.decode("utf-8", "replace").strip() or f"exit status {proc.returncode}"


def bundle_create(repo: GitRepo, bundle: Path, progress: ProgressCallback | None) -> None:
    """``git bundle create --all`` into ``bundle``, then ``git bundle verify`` it.

    Raises:
        StoreError: git could not write the bundle, or the written bundle fails verify.
    """
    repo.run_progress(["bundle", "create", "--progress", str(bundle), "--all"], progress)
    problem = bundle_verify(bundle, cwd=repo.root)
    if problem is not None:
        raise StoreError(f"git bundle verify rejected the new bundle: {problem}")


def bundle_heads(bundle: Path, *, cwd: Path) -> list[tuple[str, str]]:
    """``git bundle list-heads``: ``(commit id, ref name)`` pairs, ``HEAD`` included.

    Raises:
        StoreError: Not a bundle git can read (git's message).
    """
    text = run_git(["bundle", "list-heads", str(bundle)], cwd=cwd).stdout.decode()
    out = []
    for line in text.splitlines():
        sha, _, name = line.strip().partition(" ")
        if name:
            out.append((sha, name))
    return out


def fetch_bundle(root: Path, bundle: Path, progress: ProgressCallback | None) -> None:
    """Fetch every ref of ``bundle`` into the repository at ``root`` (``+refs/*:refs/*``).

    Raises:
        StoreError: git could not read the bundle (git's message).
    """
    repo = GitRepo(root)
    try:
        repo.run_progress(
            ["fetch", "--progress", "--update-head-ok", "--no-tags", str(bundle), "+refs/*:refs/*"],
            progress,
            cwd=root,
        )
    finally:
        repo.close()
