"""git child processes: a clean environment, one command, a command that reports progress.

Every git process the git layer starts goes through here, so the caller's ``GIT_DIR``,
``GIT_INDEX_FILE`` and the like never redirect git away from the store, hooks run only when
asked, and git's messages are in English (``LC_ALL=C``) for the errors that quote them.

Imports: :mod:`mdsessions.errors` only.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mdsessions.errors import StoreError

__all__ = ["git_env", "run_git", "run_progress"]


def git_env() -> dict[str, str]:
    """The environment for git child processes: the caller's ``GIT_*`` repository overrides removed.

    ``GIT_DIR``, ``GIT_WORK_TREE``, ``GIT_INDEX_FILE`` and friends in the caller's environment
    would redirect git away from the store; config-location variables are kept.
    """
    keep = {
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_SYSTEM",
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "GIT_TERMINAL_PROMPT",
        "GIT_TRACE",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in keep}
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    env["LC_ALL"] = "C"
    return env


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    input: bytes | None = None,
    check: bool = True,
    hooks: bool = False,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command with a clean environment; hooks off unless ``hooks`` is true.

    Args:
        args: Arguments after ``git``.
        cwd: The directory to run in.
        input: Bytes for standard input.
        check: Raise on a non-zero exit status.
        hooks: Let repository hooks run (``core.hooksPath`` is pointed at nothing otherwise).
        timeout: Seconds before the command is killed.
        env: More environment variables for git (e.g. ``GIT_AUTHOR_DATE``).

    Returns:
        The completed process (stdout and stderr as bytes).

    Raises:
        StoreError: If git is missing, times out, or (with ``check``) exits non-zero; the
            message holds git's own stderr.
    """
    cmd = ["git"]
    if not hooks:
        cmd += ["-c", f"core.hooksPath={os.devnull}"]
    cmd += list(args)
    try:
        proc = subprocess.run(
            cmd,
            cwd=str(cwd) if cwd else None,
            input=input,
            capture_output=True,
            env={**git_env(), **(env or {})},
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise StoreError("git is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise StoreError(f"git {' '.join(args)} timed out after {timeout} s") from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip() or f"exit status {proc.returncode}"
        raise StoreError(f"git {' '.join(args[:2])} failed: {message}")
    return proc


def run_progress(
    args: Sequence[str],
    on_progress: Callable[[str, int, int | None], None] | None = None,
    *,
    cwd: Path,
) -> str:
    r"""Run a git command that reports progress (``--progress``) and parse what it reports.

    Args:
        args: Arguments after ``git`` (the caller adds ``--progress`` where git takes it).
        on_progress: ``callable(stage: str, done: int, total: int | None)`` called for
            each progress line git writes (``Writing objects:  45% (450/1000)``), or
            ``None``.
        cwd: Where to run.

    Returns:
        git's standard error without the progress lines (warnings, hints).

    Raises:
        StoreError: If git exits non-zero (the message holds git's own error).
    """
    cmd = ["git", "-c", f"core.hooksPath={os.devnull}", *args]
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=str(cwd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=git_env(),
        )
    except FileNotFoundError:
        raise StoreError("git is not installed or not on PATH") from None
    assert proc.stderr is not None
    pattern = re.compile(rb"^([A-Za-z][A-Za-z ]*):\s+(?:(\d+)% \((\d+)/(\d+)\)|(\d+))")
    kept: list[bytes] = []
    pending = b""
    try:
        while True:
            chunk = os.read(proc.stderr.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for line in lines:
                match = pattern.match(line)
                if match is None:
                    if line.strip():
                        kept.append(line)
                    continue
                if on_progress is not None:
                    stage = match.group(1).decode()
                    if match.group(2) is not None:
                        on_progress(stage, int(match.group(3)), int(match.group(4)))
                    else:
                        on_progress(stage, int(match.group(5)), None)
        if pending.strip():
            kept.append(pending)
    finally:
        proc.stderr.close()
        status = proc.wait()
    text = b"\n".join(kept).decode("utf-8", "replace").strip()
    if status != 0:
        raise StoreError(f"git {' '.join(args[:2])} failed: {text or f'exit status {status}'}")
    return text
