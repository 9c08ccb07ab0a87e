"""Shared fixtures and helpers: isolated git, a fresh store, real git commands, checks.

Every test runs against real git repositories in ``tmp_path``; the caller's git
configuration and ``GIT_*`` environment never leak in (DESIGN.md "Commits", STYLE.md).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import git, write_git_config

from mdsessions import Store


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
