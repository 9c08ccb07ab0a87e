"""The repository's effective git configuration, read through git and cached by file ``stat``.

Imports: :mod:`.process` (to run ``git config``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from mdsessions.git.process import run_git

__all__ = ["GitConfig"]


class GitConfig:
    """The repository's effective git configuration, re-read only when a config file changed.

    One ``git config --list -z`` (every scope, includes followed) per change of the
    repository's, the worktree's, the global, the system and every included config file
    (their ``stat``); between
    changes a lookup costs a few ``os.stat`` calls. Keys are git's canonical form: section
    and name lower case (``core.autocrlf``), a subsection as written.

    Args:
        root: The working-tree root (``git config`` runs there).
        git_dir: Its ``.git`` folder (the repository's own config files).
    """

    def __init__(self, root: Path, git_dir: Path) -> None:
        self.root = root
        self._files = [git_dir / "config", git_dir / "config.worktree"]
        if os.environ.get("GIT_CONFIG_GLOBAL"):
            self._files.append(Path(os.environ["GIT_CONFIG_GLOBAL"]))
        else:
            home = Path(os.environ.get("HOME", "~")).expanduser()
            xdg = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
            self._files += [home / ".gitconfig", Path(xdg) / "git" / "config"]
        if not os.environ.get("GIT_CONFIG_NOSYSTEM"):
            self._files.append(Path(os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig"))
        self._signature: tuple[tuple[int, int, int], ...] | None = None
        self._values: dict[str, str] = {}
        self._local: dict[str, str] = {}
        self._lock = threading.Lock()
        self._pin = threading.local()

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Check the config files once for the whole block (this thread; re-entrant).

        A commit looks the configuration up a dozen times (hooks, signing, line ends, the
        index format), each a ``stat`` of every config file; git itself reads it once per
        command. Inside the block the first lookup checks the files and the others use
        what it found. The writer lock holds it for one write.
        """
        depth = getattr(self._pin, "depth", 0)
        if depth == 0:
            self._pin.checked = False
        self._pin.depth = depth + 1
        try:
            yield
        finally:
            self._pin.depth = depth

    def changed(self) -> None:
        """Note that this process changed a config file: the next lookup checks them again."""
        self._pin.checked = False

    def _stat_signature(self) -> tuple[tuple[int, int, int], ...]:
        out = []
        for path in self._files:
            try:
                st = os.stat(path)  # noqa: PTH116
            except OSError:
                out.append((0, 0, 0))
            else:
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def values(self, *, local: bool = False) -> dict[str, str]:
        """Every key's last value (``git config --list``), fresh as of the last change.

        Args:
            local: Only the repository's own ``.git/config`` (and what it includes).
        """
        pinned = getattr(self._pin, "depth", 0) > 0
        if pinned and self._pin.checked:
            with self._lock:
                return self._local if local else self._values
        signature = self._stat_signature()
        if pinned:
            self._pin.checked = True
        with self._lock:
            if signature != self._signature:
                proc = run_git(  # hooks=True: no -c core.hooksPath override in the listing
                    ["config", "--list", "-z", "--show-scope", "--show-origin"],
                    cwd=self.root,
                    check=False,
                    hooks=True,
                )
                values: dict[str, str] = {}
                local_values: dict[str, str] = {}
                items = proc.stdout.decode("utf-8", "replace").split("\0")
                for scope, origin, item in zip(items[::3], items[1::3], items[2::3], strict=False):
                    key, newline, value = item.partition("\n")
                    if key:
                        values[key] = value if newline else "true"
                        if scope == "local":
                            local_values[key] = values[key]
                    # Every config file is watched: those values came from, and those an
                    # include names (an empty one gives no value yet).
                    if origin.startswith("file:"):
                        source = Path(origin[5:])
                        source = source if source.is_absolute() else self.root / source
                        watch = [source]
                        if key.startswith("include") and key.endswith(".path") and value:
                            target = Path(value).expanduser()
                            watch.append(target if target.is_absolute() else source.parent / target)
                        for path in watch:
                            if path not in self._files:
                                self._files.append(path)
                self._values, self._local = values, local_values
                self._signature = self._stat_signature()
            return self._local if local else self._values

    def get(self, key: str, *, local: bool = False) -> str | None:
        """One value (``None`` when unset); ``local``: from ``.git/config`` only."""
        return self.values(local=local).get(key)

    def boolean(self, key: str, default: bool = False, *, local: bool = False) -> bool:
        """One boolean value the way git reads it (``true``/``yes``/``on``/``1``…)."""
        value = self.get(key, local=local)
        if value is None:
            return default
        value = value.strip().lower()
        if value in ("true", "yes", "on", "1", ""):
            return True
        if value in ("false", "no", "off", "0"):
            return False
        try:
            return int(value) != 0
        except ValueError:
            return default
