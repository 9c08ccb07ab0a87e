"""The store's ``mdsessions.toml``: read it, edit one key in place, merge two sides key by key.

:func:`read_store_config` reads and checks the ``[store]`` table when a store opens;
:func:`new_store_files` gives the files a new store starts with.

``mdsessions.toml`` is tracked, so two machines change it independently (each registers the
workflows it runs). A line-based merge of the file would conflict whenever both append a
line; a merge of the *keys* does not: each ``(table, key)`` is merged three ways (base, mine,
theirs), and only the same key set to different values on both sides is a conflict.

The edits are made to the text, line by line, so comments and layout a person wrote stay as
they are; every edited text is parsed again and must give exactly the intended values, else
the edit is refused (:class:`ConfigEditError`) and the caller treats the file as a conflict.
Only tables one level deep (``[store]``, ``[workflows]``) and top-level keys are edited;
a value in a deeper table is compared as a whole.

Example:
    >>> merged = merge_config(base, mine, theirs)           # doctest: +SKIP
    >>> merged.conflicts                                    # doctest: +SKIP
    (ConfigConflict(key=('workflows', 'aflow'), base=None, mine='a.toml', theirs='b.toml'),)
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdsessions.documents.kinds import EDITOR_TEMP_PATTERNS, is_editor_temp
from mdsessions.errors import StoreError, StoreNotFoundError
from mdsessions.store.paths import BRANCH_RE, CONFIG_FILE, DEFAULT_BRANCH

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "ConfigConflict",
    "ConfigEditError",
    "ConfigMerge",
    "EDITOR_TEMP_PATTERNS",
    "Key",
    "StoreConfig",
    "flatten",
    "is_editor_temp",
    "key_name",
    "merge_config",
    "new_store_files",
    "read_store_config",
    "set_key",
]

_GITIGNORE = (
    """\
# mdsessions: caches and locks (rebuildable), temp files of atomic writes
/.mdsessions/*
!/.mdsessions/templates/
*.mdstmp
# editors' swap, backup and temp files (vim, emacs, JetBrains, kate)
"""
    + "".join(  # a leading '#' escaped: git would read the line as a comment
        ("\\" + p if p.startswith("#") else p) + "\n" for p in EDITOR_TEMP_PATTERNS
    )
    + (
        "# ... but folders of those names are not (a session or project named 4913)\n"
        + "".join(f"!{p}/\n" for p in EDITOR_TEMP_PATTERNS if not p.startswith((".", "#")))
    )
)


_CONFIG = """\
# mdsessions store configuration (tracked in git).
[store]
format = 1
projects_dir = "{projects_dir}"
branch = "{branch}"   # mdsessions writes only while this branch is checked out
# durable = true   # fsync every write (objects, refs, index, files): slower, survives power loss

# Secrets in what mdsessions commits become [REDACTED:<kind>] (see `mdsessions scan`).
# [redaction]
# enabled = false   # opt out for this store
# [redaction.patterns]
# internal-token = "itk_[a-z0-9]{{32}}"   # kind = regex, added to the built-in ones

# Workflows the runner can find by name: name = "path/to/workflow.toml" (relative to this file).
[workflows]
"""


@dataclass(frozen=True)
class StoreConfig:
    """``mdsessions.toml`` as read when a store opens, its ``[store]`` table checked.

    Attributes:
        path: The file.
        data: The whole file, parsed (``[workflows]`` and any other table).
        projects_dir: Store-relative folder of the projects (``"."``: the store root).
        branch: The branch mdsessions writes to.
    """

    path: Path
    data: Mapping[str, Any]
    projects_dir: str
    branch: str

    def durable(self) -> bool:
        """The ``[store] durable`` setting (default false).

        Raises:
            StoreError: If it is not true or false.
        """
        durable = self.data.get("store", {}).get("durable", False)
        if not isinstance(durable, bool):
            raise StoreError(f"{self.path}: [store] durable must be true or false, got {durable!r}")
        return durable


def read_store_config(root: Path) -> StoreConfig:
    """Read and check a store's ``mdsessions.toml``.

    Args:
        root: The store's root (the repository's working tree).

    Returns:
        The configuration.

    Raises:
        StoreNotFoundError: There is no ``mdsessions.toml`` (the message says whether
            ``root`` is a git repository, e.g. a clone without the store's branch).
        StoreError: Invalid TOML, an unsupported ``format``, a ``projects_dir`` outside the
            store, or a ``branch`` that is no plain branch name.
    """
    config_path = root / CONFIG_FILE
    try:
        config = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if (root / ".git").exists():
            raise StoreNotFoundError(
                f"{root} is a git repository without {CONFIG_FILE}: if it is a clone "
                "of a store, the store's branch is not checked out (git switch main, or "
                "clone with 'mdsessions clone URL'); a new store is made in an empty "
                "folder with 'mdsessions init'"
            ) from None
        raise StoreNotFoundError(
            f"{root} is not an mdsessions store (no {CONFIG_FILE}); run 'mdsessions init'"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise StoreError(f"{config_path}: invalid TOML: {exc}") from None
    store_cfg = config.get("store", {})
    if store_cfg.get("format", 1) != 1:
        raise StoreError(f"{config_path}: store format {store_cfg.get('format')} is not supported")
    projects_dir = str(store_cfg.get("projects_dir", "projects")).strip("/") or "."
    if projects_dir != "." and any(p in ("", "..", ".git") for p in projects_dir.split("/")):
        raise StoreError(f"{config_path}: projects_dir {projects_dir!r} must stay inside the store")
    branch = store_cfg.get("branch", DEFAULT_BRANCH)
    if not isinstance(branch, str) or not BRANCH_RE.fullmatch(branch):
        raise StoreError(
            f"{config_path}: [store] branch must be a plain branch name like "
            f'"{DEFAULT_BRANCH}", got {branch!r}'
        )
    return StoreConfig(config_path, config, projects_dir, branch)


def new_store_files(projects_dir: str, branch: str = DEFAULT_BRANCH) -> dict[str, bytes]:
    """The files a new store's first commit holds: ``.gitignore`` and ``mdsessions.toml``.

    Args:
        projects_dir: Store-relative folder of the projects (``"."``: the store root).
        branch: The branch the store writes to.

    Returns:
        Store-relative path → content.
    """
    config = _CONFIG.format(projects_dir=projects_dir.strip("/") or ".", branch=branch)
    return {".gitignore": _GITIGNORE.encode(), CONFIG_FILE: config.encode()}


Key = tuple[str, str]
"""``(table, key)``; ``table`` is ``""`` for a top-level key."""

_DELETE: Any = object()
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_HEADER = re.compile(r"\s*\[(?!\[)\s*(?P<name>[^\]]*?)\s*\]\s*(?:#.*)?")
_ARRAY_HEADER = re.compile(r"\s*\[\[")


class ConfigEditError(StoreError):
    """An edit of ``mdsessions.toml`` that the line editor cannot make safely."""


@dataclass(frozen=True)
class ConfigConflict:
    """One key set to different values on both sides of a merge.

    Attributes:
        key: ``(table, key)``.
        base: The value in the common ancestor (``None``: absent).
        mine: This side's value (``None``: deleted).
        theirs: The other side's value (``None``: deleted).
    """

    key: Key
    base: Any
    mine: Any
    theirs: Any

    def describe(self) -> str:
        """``[workflows] aflow: mine "a.toml", theirs "b.toml"``."""

        def show(value: Any) -> str:
            return "(absent)" if value is None else json.dumps(value, default=str)

        return f"{key_name(self.key)}: mine {show(self.mine)}, theirs {show(self.theirs)}"


@dataclass(frozen=True)
class ConfigMerge:
    """The result of :func:`merge_config`.

    Attributes:
        text: The merged file: this side's text with the other side's changes applied; for
            a conflicting key this side's value stays (see ``conflicts``).
        theirs_text: The same merge with the *other* side's value for each conflicting key.
        taken: Keys whose value came from the other side.
        conflicts: Keys set to different values on both sides.
    """

    text: str
    theirs_text: str
    taken: tuple[Key, ...]
    conflicts: tuple[ConfigConflict, ...]


def key_name(key: Key) -> str:
    """``[workflows] aflow`` (or ``format`` for a top-level key)."""
    table, name = key
    return f"[{table}] {name}" if table else name


def flatten(data: Mapping[str, Any]) -> dict[Key, Any]:
    """Parsed TOML as ``{(table, key): value}`` (tables one level deep; deeper values whole)."""
    out: dict[Key, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict):
            for key, inner in value.items():
                out[(name, key)] = inner
        else:
            out[("", name)] = value
    return out


def _parse(text: str, what: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigEditError(f"{what}: invalid TOML: {exc}") from None
    return data


def _render_key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _render_string(name)


_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _render_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F or char in "\x85\u2028\u2029":
            out.append(f"\\u{ord(char):04x}")
        elif 0xD800 <= ord(char) <= 0xDFFF:
            raise ConfigEditError(f"cannot write {value!r} into mdsessions.toml (a lone surrogate)")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _render(value: Any) -> str:
    """A TOML value (inline) for ``value``.

    Raises:
        ConfigEditError: A value TOML cannot hold inline.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _render_string(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_render_key(k)} = {_render(v)}" for k, v in value.items()) + "}"
    raise ConfigEditError(f"cannot write {value!r} into mdsessions.toml")


def _header_name(line: str) -> str | None:
    """The table a ``[table]`` line opens (quotes removed), or ``None``."""
    if _ARRAY_HEADER.match(line):
        return "[["  # an array of tables: never one of ours
    match = _HEADER.fullmatch(line)
    if match is None:
        return None
    parts = [p.strip() for p in match.group("name").split(".")]
    return ".".join(
        p[1:-1] if len(p) >= 2 and p[0] == p[-1] and p[0] in "\"'" else p for p in parts
    )


def _key_of(line: str) -> str | None:
    """The key a ``key = value`` line sets (quotes removed), or ``None``."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if stripped[0] in "\"'":
        quote = stripped[0]
        end = stripped.find(quote, 1)
        while quote == '"' and end > 0 and stripped[end - 1] == "\\":
            end = stripped.find(quote, end + 1)
        if end < 0:
            return None
        raw, rest = stripped[: end + 1], stripped[end + 1 :]
        try:
            name = next(iter(tomllib.loads(f"{raw} = 0")))
        except (tomllib.TOMLDecodeError, StopIteration):
            return None
    else:
        match = re.match(r"[A-Za-z0-9_-]+", stripped)
        if match is None:
            return None
        name, rest = match.group(0), stripped[match.end() :]
    return name if rest.lstrip().startswith("=") else None


def _apply(text: str, key: Key, value: Any) -> str:
    """``text`` with one key set (or removed, for ``_DELETE``), by editing lines."""
    table, name = key
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)  # "\n" only: TOML's line ends
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    # Find the section: [start, end) are its lines (after the header).
    start, end = 0, len(lines)
    current: str | None = ""
    found = table == ""
    for i, line in enumerate(lines):
        header = _header_name(line)
        if header is None:
            continue
        if found and current == table:
            end = i
            break
        current = header
        if header == table:
            found, start = True, i + 1
    if table == "":
        end = next((i for i, line in enumerate(lines) if _header_name(line) is not None), end)
    target = next((i for i in range(start, end) if _key_of(lines[i]) == name), None)
    new_line = None if value is _DELETE else f"{_render_key(name)} = {_render(value)}{newline}"
    if target is not None:
        if new_line is None:
            del lines[target]
        else:
            lines[target] = new_line
    elif new_line is not None:
        if not found:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += newline
            if lines and lines[-1].strip():
                lines.append(newline)
            lines += [f"[{_render_key(table)}]{newline}", new_line]
        else:
            last = max(
                (i for i in range(start, end) if _key_of(lines[i]) is not None), default=start - 1
            )
            if last >= 0 and not lines[last].endswith("\n"):
                lines[last] += newline
            lines.insert(last + 1, new_line)
    return "".join(lines)


def set_key(text: str, table: str, name: str, value: Any) -> str:
    """``text`` with ``[table] name = value`` set (added or replaced), the rest kept as written.

    Args:
        text: The file's text.
        table: The table (``""``: a top-level key).
        name: The key.
        value: The value (``None`` removes the key).

    Returns:
        The new text.

    Raises:
        ConfigEditError: The text does not parse, or the edit would not give exactly the
            intended values (a multi-line value, an unusual layout).
    """
    before = flatten(_parse(text, "mdsessions.toml"))
    want = dict(before)
    if value is None:
        want.pop((table, name), None)
    else:
        want[(table, name)] = value
    if want == before:
        return text
    edited = _apply(text, (table, name), _DELETE if value is None else value)
    if not _gives(edited, want):
        raise ConfigEditError(
            f"cannot set {key_name((table, name))} in mdsessions.toml by editing its lines"
        )
    return edited


def _gives(text: str, want: Mapping[Key, Any]) -> bool:
    """Whether ``text`` parses to exactly the values ``want``."""
    try:
        return flatten(tomllib.loads(text)) == dict(want)
    except tomllib.TOMLDecodeError:
        return False


def _edit_all(text: str, values: Mapping[Key, Any], want: Mapping[Key, Any]) -> str:
    for key, value in values.items():
        text = _apply(text, key, value)
    if not _gives(text, want):
        raise ConfigEditError("the key-by-key merge of mdsessions.toml cannot be written safely")
    return text


def merge_config(base: str | None, mine: str, theirs: str) -> ConfigMerge:
    """Merge two sides' ``mdsessions.toml`` key by key against their common ancestor.

    A key changed on one side only takes that side's value; a key changed on both sides to
    the same value is fine; a key changed on both sides to different values is a conflict.

    Args:
        base: The common ancestor's text (``None``: no common version).
        mine: This side's text.
        theirs: The other side's text.

    Returns:
        The merged text (this side's layout and comments) and what was taken and what
        conflicts.

    Raises:
        ConfigEditError: A side does not parse, or the merge cannot be written line by line
            (the caller treats the file as changed on both sides).
    """
    b = flatten(_parse(base, "mdsessions.toml (common ancestor)")) if base is not None else {}
    m = flatten(_parse(mine, "mdsessions.toml (mine)"))
    t = flatten(_parse(theirs, "mdsessions.toml (theirs)"))
    missing = object()
    taken: list[Key] = []
    conflicts: list[ConfigConflict] = []
    want_mine = dict(m)
    edits: dict[Key, Any] = {}
    for key in sorted(b.keys() | m.keys() | t.keys()):
        vb, vm, vt = b.get(key, missing), m.get(key, missing), t.get(key, missing)
        if vt == vm or vt == vb:
            continue
        if vm == vb:
            taken.append(key)
            edits[key] = _DELETE if vt is missing else vt
            if vt is missing:
                want_mine.pop(key, None)
            else:
                want_mine[key] = vt
            continue

        def value(v: Any) -> Any:
            return None if v is missing else v

        conflicts.append(ConfigConflict(key, value(vb), value(vm), value(vt)))
    text = _edit_all(mine, edits, want_mine)
    theirs_edits = dict(edits)
    want_theirs = dict(want_mine)
    for conflict in conflicts:
        if conflict.theirs is None:
            theirs_edits[conflict.key] = _DELETE
            want_theirs.pop(conflict.key, None)
        else:
            theirs_edits[conflict.key] = conflict.theirs
            want_theirs[conflict.key] = conflict.theirs
    theirs_text = _edit_all(mine, theirs_edits, want_theirs) if conflicts else text
    return ConfigMerge(text, theirs_text, tuple(taken), tuple(conflicts))
