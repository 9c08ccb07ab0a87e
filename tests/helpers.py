"""Helpers every test module shares: real git commands, store snapshots, identities.

Imported as ``from helpers import git, head, snapshot, ...`` (``tests/`` is on ``sys.path``
through ``pythonpath`` in pyproject.toml). Fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import frontmatter

PERSON_NAME = "Test Person"
PERSON_EMAIL = "person@example.com"
PERSON = f"{PERSON_NAME} <{PERSON_EMAIL}>"
RUNNER = "mdsessions <mdsessions@localhost>"

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def write_git_config(folder: Path) -> Path:
    """Write ``folder/gitconfig``: the test person as git identity, branch ``main``."""
    config = folder / "gitconfig"
    config.write_text(
        f"[user]\n\tname = {PERSON_NAME}\n\temail = {PERSON_EMAIL}\n"
        "[init]\n\tdefaultBranch = main\n",
        encoding="utf-8",
    )
    return config


def git(store_root: Path | str, *args: str, check: bool = True) -> str:
    """Run real git in ``store_root`` (hooks as configured) and return its stdout."""
    proc = subprocess.run(
        ["git", *args],
        cwd=str(store_root),
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def assert_clean(store_root: Path | str) -> None:
    """``git status --porcelain`` is empty and ``git fsck --strict`` finds nothing wrong."""
    status = git(store_root, "status", "--porcelain", "--untracked-files=all")
    assert status == "", f"working tree not clean:\n{status}"
    proc = subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling", "--no-progress"],
        cwd=str(store_root),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"git fsck failed:\n{proc.stdout}{proc.stderr}"
    assert proc.stdout.strip() == "", proc.stdout
    assert proc.stderr.strip() == "", proc.stderr


def parse_independent(path: Path | str) -> frontmatter.Post:
    """Parse a ``.md`` file with python-frontmatter (an independent YAML-frontmatter parser)."""
    return frontmatter.load(str(path))


def assert_all_documents_parse(store_root: Path | str) -> list[Path]:
    """Every ``.md`` of the store parses independently and names an mdsessions schema."""
    files = sorted(p for p in Path(store_root).rglob("*.md") if ".git" not in p.parts)
    for path in files:
        post = parse_independent(path)
        schema = post.metadata.get("schema")
        assert isinstance(schema, str) and schema.startswith("mdsessions/"), (path, schema)
    return files


def head(store_root: Path | str) -> str:
    """The commit HEAD points at."""
    return git(store_root, "rev-parse", "HEAD").strip()


def commit_count(store_root: Path | str) -> int:
    """Number of commits reachable from HEAD."""
    return int(git(store_root, "rev-list", "--count", "HEAD").strip())


def tree_digest(store_root: Path | str) -> str:
    """A hash of every working-tree file (path, mode and bytes).

    ``.git`` and the rebuildable caches in ``.mdsessions/cache/`` are left out.
    """
    root = Path(store_root)
    digest = hashlib.sha256()
    private = root / ".mdsessions"
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d != ".git"
            and Path(dirpath) / d != private / "cache"
            # .mdsessions/ itself counts only when it holds more than the caches
            and not (Path(dirpath) / d == private and not (private / "templates").exists())
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            digest.update(rel.encode() + b"\0")
            if path.is_symlink():
                digest.update(b"link:" + str(path.readlink()).encode())
            else:
                digest.update(path.read_bytes())
            digest.update(b"\0")
        for name in dirnames:
            digest.update(b"dir:" + (Path(dirpath) / name).relative_to(root).as_posix().encode())
    return digest.hexdigest()


def snapshot(store_root: Path | str) -> tuple[str, str, str]:
    """``(HEAD, git status --porcelain, working-tree hash)``: equal before/after = unchanged."""
    return (
        head(store_root),
        git(store_root, "status", "--porcelain", "--untracked-files=all"),
        tree_digest(store_root),
    )


def trailers(store_root: Path | str, rev: str = "HEAD") -> dict[str, str]:
    """The trailers of one commit, read with ``git log --format=%(trailers)``."""
    text = git(store_root, "log", "-1", "--format=%(trailers:only,unfold)", rev)
    out: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def subject(store_root: Path | str, rev: str = "HEAD") -> str:
    """The subject line of one commit."""
    return git(store_root, "log", "-1", "--format=%s", rev).strip()


def author(store_root: Path | str, rev: str = "HEAD") -> str:
    """``Name <email>`` of one commit's author."""
    return git(store_root, "log", "-1", "--format=%an <%ae>", rev).strip()


def command_agent(code: str) -> str:
    """The TOML of an agent run as ``python -c code`` (prompt on stdin, output on stdout)."""
    return f"command = [{json.dumps(sys.executable)}, {json.dumps('-c')}, {json.dumps(code)}]"


def python_agent(target: str) -> str:
    """The TOML of an agent that is a Python callable, ``module:function``."""
    return f"python = {json.dumps(target)}"


def write_two_phase_workflow(
    path: Path,
    *,
    name: str,
    first: str,
    second: str,
    second_phase: tuple[str, str, str] = ("final", "Final", "finisher"),
    second_review: bool = False,
) -> Path:
    """Write a two-phase workflow TOML (mode ``all``; a review gate after phase 1).

    Args:
        path: The file to write.
        name: The workflow's name.
        first: The TOML body of phase 1's agent ``writer`` (:func:`command_agent`, ...).
        second: The TOML body of phase 2's agent.
        second_phase: Phase 2's slug, name and agent id.
        second_review: Whether phase 2 has a review gate too.

    Returns:
        ``path``.
    """
    slug, title, agent = second_phase
    review = "review = true\n" if second_review else ""
    path.write_text(
        f'[workflow]\nname = "{name}"\ndefault_mode = "all"\n\n[modes]\nall = [1, 2]\n\n'
        '[[phases]]\nnumber = 1\nslug = "draft"\nname = "Draft"\nreview = true\n'
        'agents = ["writer"]\n\n'
        f'[[phases]]\nnumber = 2\nslug = "{slug}"\nname = "{title}"\n{review}'
        f'agents = ["{agent}"]\n\n'
        f"[agents.writer]\n{first}\n\n[agents.{agent}]\n{second}\n",
        encoding="utf-8",
    )
    return path


def clean_reviewer_env(monkeypatch: Any, agent_module: str) -> Iterator[None]:
    """No inherited MDSESSIONS_*/VISUAL/EDITOR; ``sys.path`` restored (the runner extends it).

    For an autouse fixture: ``yield from clean_reviewer_env(monkeypatch, AGENT_MODULE)``; the
    test's Python agents' module ``agent_module`` is forgotten afterwards.
    """
    for name in list(os.environ):
        if name.startswith("MDSESSIONS_") or name in ("VISUAL", "EDITOR"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    sys.modules.pop(agent_module, None)


def write_python_workflow(folder: Path, *, name: str, module: str, agents: str) -> Path:
    """A two-phase workflow (writer, then critic in phase 2 ``critique``) of Python agents.

    Args:
        folder: Where to write ``{module}.py`` (``agents``: defines ``writer`` and ``critic``)
            and ``{name}.toml``; created.
        name: The workflow's name.
        module: The agents' module name (unique per test file: it is imported).
        agents: The module's source.

    Returns:
        The workflow TOML's path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(agents, encoding="utf-8")
    return write_two_phase_workflow(
        folder / f"{name}.toml",
        name=name,
        first=python_agent(f"{module}:writer"),
        second=python_agent(f"{module}:critic"),
        second_phase=("critique", "Critique", "critic"),
    )


class Lines:
    """Read a process stream line by line in a thread; wait for a line with a deadline."""

    def __init__(self, stream: Any) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, needle: str, timeout: float) -> str:
        """The next line holding ``needle``; fails after ``timeout`` seconds or at the end."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {needle!r} in {timeout:g} s: {self.seen}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"stream ended without {needle!r}: {self.seen}")
            self.seen.append(line)
            if needle in line:
                return line

    def rest(self, timeout: float = 10) -> str:
        """Every line of the stream, once it ends (waits up to ``timeout`` seconds)."""
        self._thread.join(timeout)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return "".join(self.seen)
