"""Shared fixtures and helpers: isolated git, a fresh store, real git commands, checks.

Every test runs against real git repositories in ``tmp_path``; the caller's git
configuration and ``GIT_*`` environment never leak in (DESIGN.md "Commits", STYLE.md).
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import frontmatter
import pytest

from mdsessions import Store

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


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private global git config (the test person, branch main); no other GIT_* variables."""
    config = write_git_config(tmp_path)
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return config


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A new, empty store at ``tmp_path / "store"``; closed after the test."""
    opened = Store.init(tmp_path / "store")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def shared_data() -> Path:
    """The shared Haytham sample data (``../shared/data/haytham``), or skip when absent."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "haytham"
    if not path.is_dir():
        pytest.skip(f"../shared/data is absent: {path} does not exist")
    return path


# ------------------------------------------------------------------------------ helpers


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


# ------------------------------------------------------------------------------ remotes


@pytest.fixture
def remotes_dir(tmp_path: Path) -> Path:
    base = tmp_path / "remotes"
    base.mkdir()
    git(base, "init", "-q", "--bare", "-b", "main", "store.git")
    return base


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def daemon(remotes_dir: Path) -> Iterator[str]:
    """``git daemon`` serving ``remotes_dir`` on 127.0.0.1 with push enabled; its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            "git", "daemon", "--export-all", f"--base-path={remotes_dir}", f"--port={port}",
            "--reuseaddr", "--enable=receive-pack", "--listen=127.0.0.1", str(remotes_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("git daemon did not start") from None
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()


@pytest.fixture(params=["file", "daemon"])
def url(request: pytest.FixtureRequest, remotes_dir: Path) -> str:
    if request.param == "file":
        return (remotes_dir / "store.git").as_uri()
    base: str = request.getfixturevalue("daemon")
    return f"{base}/store.git"
