"""Workflows a store finds by name: the ``[workflows]`` table of ``mdsessions.toml``.

A session records its workflow's name; every clone of the store must find the workflow by
that name to resume the session. So a workflow file used to create a session is registered
in the store (DESIGN.md "The store": the 7 phases are a default, not a hard-code):

* a file inside the store by its store-relative path;
* a file outside the store by a copy in ``workflows/<name>.toml``, with the original's path
  noted in this machine's ``.git/config`` (``mdsessions-workflow.<name>.source``) so that,
  while it holds the same bytes, the original is read and Python agents beside it import.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mdsessions.errors import StoreError
from mdsessions.git.repo import GitRepo
from mdsessions.models.workflow import Workflow, resolve_workflow
from mdsessions.store.config import ConfigEditError, set_key
from mdsessions.store.paths import CONFIG_FILE, WORKFLOWS_DIR

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["LOCAL_SOURCE_KEY", "WorkflowRegistry"]

#: Local git configuration (``.git/config``) naming the file outside the store a registered
#: workflow was copied from on this machine: ``mdsessions-workflow.<name>.source``.
LOCAL_SOURCE_KEY = "mdsessions-workflow.{name}.source"


class WorkflowRegistry:
    """The workflows of one store: found by name, path or object; registered when used.

    Args:
        root: The store's root.
        config: ``mdsessions.toml`` as read when the store was opened.
        git: The store's repository (for this machine's ``.git/config``).
    """

    def __init__(self, root: Path, config: Mapping[str, Any], git: GitRepo) -> None:
        self.root = root
        self.git = git
        self._paths = self._table(config)
        self._seen = self._signature()
        self._cache: dict[str, tuple[tuple[int, int, int], Workflow]] = {}

    def _signature(self) -> tuple[int, int, int]:
        try:
            st = (self.root / CONFIG_FILE).stat()
        except OSError:
            return (0, 0, 0)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _table(self, config: Mapping[str, Any]) -> dict[str, Path]:
        table = config.get("workflows", {})
        if not isinstance(table, dict):
            return {}
        return {str(k): (self.root / str(v)).resolve() for k, v in table.items()}

    def registered(self) -> dict[str, Path]:
        """The ``[workflows]`` table of ``mdsessions.toml``: name → file (resolved).

        Re-read whenever the file changed (a pull may have brought registrations).
        """
        signature = self._signature()
        if signature != self._seen:
            try:
                config = tomllib.loads((self.root / CONFIG_FILE).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                return dict(self._paths)
            self._paths = self._table(config)
            self._seen = signature
        return dict(self._paths)

    def _local_source(self, name: str) -> Path | None:
        value = self.git.config.get(LOCAL_SOURCE_KEY.format(name=name), local=True)
        return Path(value) if value else None

    def find(self, name: str | Path | Workflow | None) -> Workflow:
        """Find a workflow by name (``mdsessions.toml`` ``[workflows]``), path or object.

        A workflow registered from a file outside the store is read from its copy in the
        store (``workflows/<name>.toml``); on the machine that registered it, from the
        original file while that still holds the same bytes, so Python agents beside it
        import as they did.

        Raises:
            WorkflowError: If it cannot be found or is invalid.
        """
        if isinstance(name, Workflow):
            return name
        key = str(name) if name is not None else "idea_validation"
        registered = self.registered()
        path = registered.get(key)
        if path is None:
            cached = self._cache.get(key)
            if cached is not None:
                return cached[1]
            wf = resolve_workflow(name)
            self._cache[key] = ((0, 0, 0), wf)
            return wf
        local = self._local_source(key)
        if local is not None and local != path:
            try:
                if local.read_bytes() == path.read_bytes():
                    path = local
            except OSError:
                pass
        try:
            st = path.stat()
            signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            signature = (0, 0, 0)
        cached = self._cache.get(f"{key}\0{path}")
        if cached is not None and cached[0] == signature and signature != (0, 0, 0):
            return cached[1]
        wf = Workflow.from_toml(path)
        self._cache[f"{key}\0{path}"] = (signature, wf)
        return wf

    def registration(self, wf: Workflow) -> tuple[dict[str, bytes], Path | None]:
        """The files that record ``wf`` in the store, so every clone finds it by name.

        * A file inside the store is registered by its store-relative path.
        * A file outside the store is copied to ``workflows/<name>.toml`` (updated when the
          file changed since) and that relative path registered; an absolute path never
          reaches ``mdsessions.toml`` (one registered by an older version is replaced).

        Nothing is registered when the workflow has no file, when another file inside the
        store is registered under its name (people sort that out), or when the
        configuration cannot take the key by a line edit.

        Returns:
            Store-relative path → new bytes (``mdsessions.toml`` and the copy), and the
            original file when it lies outside the store (remembered for this machine).
        """
        source = wf.source
        if source is None:
            return {}, None
        registered = self.registered().get(wf.name)
        try:
            inside = source.relative_to(self.root).as_posix()
        except ValueError:
            inside = None
        if inside is not None:
            if registered is not None:
                return {}, None  # registered already (this file, or another one: left to people)
            config = self._config_with(wf.name, inside)
            return ({CONFIG_FILE: config} if config is not None else {}), None
        copy_rel = f"{WORKFLOWS_DIR}/{wf.name}.toml"
        copy_path = (self.root / copy_rel).resolve()
        if registered is not None and registered != copy_path:
            try:
                registered.relative_to(self.root)
                return {}, None  # another file inside the store has the name: left to people
            except ValueError:
                pass  # an absolute path from an older version: replaced by the copy
        files: dict[str, bytes] = {}
        try:
            data = source.read_bytes()
        except OSError:
            return {}, None
        try:
            current = copy_path.read_bytes()
        except OSError:
            current = None
        if current != data:
            files[copy_rel] = data
        if registered != copy_path:
            config = self._config_with(wf.name, copy_rel)
            if config is None:
                return {}, None
            files[CONFIG_FILE] = config
        return files, source

    def _config_with(self, name: str, rel: str) -> bytes | None:
        """``mdsessions.toml`` with ``[workflows] name = "rel"`` (``None``: cannot be edited)."""
        try:
            current = (self.root / CONFIG_FILE).read_text(encoding="utf-8")
            return set_key(current, "workflows", name, rel).encode("utf-8")
        except (OSError, UnicodeDecodeError, ConfigEditError):
            return None

    def remember_source(self, name: str, source: Path) -> None:
        """Note in ``.git/config`` (this machine only) where a copied workflow came from."""
        key = LOCAL_SOURCE_KEY.format(name=name)
        if self.git.config.get(key, local=True) != str(source):
            with contextlib.suppress(StoreError):
                self.git.set_local_config(key, str(source))
