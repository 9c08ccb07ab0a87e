r"""End-of-line conversion: store exactly what ``git add`` stores (DESIGN.md "Sharing the store").

mdsessions writes blobs and working-tree files in-process, so git's checkin and checkout
conversions have to be applied here.  This module ports git's CRLF rules from ``convert.c``
(git 2.39, unchanged since): the text statistics and binary heuristic (``gather_stats``,
``convert_is_binary``), the attribute decision (``convert_attrs`` with the ``text``, ``eol``
and legacy ``crlf`` attributes, ``core.autocrlf`` and ``core.eol``), the checkin conversion
(``crlf_to_git``, with the "CRLF already in the index" rule and ``core.safecrlf=true``)
and the checkout conversion (``crlf_to_worktree``).  Conversions mdsessions cannot perform
(a ``filter`` driver, ``ident``, a ``working-tree-encoding``) are refused with
:class:`UnsupportedAttributeError` rather than silently stored differently from git.

Attributes are evaluated by git itself (``git check-attr``), once per batch of paths not
seen before, and cached against the ``stat`` of every attribute file that could apply (the
``.gitattributes`` of each folder along the path, ``info/attributes``, the global and the
system file).  When none of them exists nothing runs but those few ``os.access`` calls: the
action follows from ``core.autocrlf`` alone, and in the default configuration it is
:attr:`CrlfAction.BINARY`, for which both conversions return their input unchanged.

Example:
    >>> conv = Conversion(root, root / ".git", {"core.autocrlf": "true"})
    >>> action = conv.actions(["notes/a.md"])["notes/a.md"]
    >>> conv.to_git(action, b"a\r\nb\r\n", None)
    b'a\nb\n'
    >>> conv.to_worktree(action, b"a\nb\n")
    b'a\r\nb\r\n'
"""

from __future__ import annotations

import enum
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from mdsessions.errors import StoreError
from mdsessions.git.process import run_git

__all__ = [
    "Conversion",
    "CrlfAction",
    "UnsupportedAttributeError",
]

_ATTRIBUTES = ("text", "eol", "crlf", "filter", "ident", "working-tree-encoding")
"""What ``git check-attr`` is asked, in this order."""

_SYSTEM_ATTRIBUTES = Path("/etc/gitattributes")
"""git's system-wide attributes file for the usual ``prefix=/usr`` build."""

_RACY_NS = 2_000_000_000
"""An attribute file modified this recently (ns) may change again within the same timestamp.

Like git's racily clean index entries: a same-size in-place edit in the same timestamp tick
(coarse kernel clocks, 1-2 s on some file systems) would leave the cache key unchanged, so
answers read from a file this young are not cached.
"""

_CACHE_LIMIT = 65536
"""Paths remembered before the cache starts over (a bound, not a tuning knob)."""

_NATIVE_CRLF = os.linesep == "\r\n"
"""git's ``EOL_NATIVE``: CRLF on Windows builds, LF elsewhere."""


class UnsupportedAttributeError(StoreError):
    """A ``.gitattributes`` attribute asks for a conversion mdsessions cannot perform.

    Attributes:
        path: The store-relative path the attribute applies to.
        attribute: The attribute as written in ``.gitattributes`` (``filter=lfs``, ``ident``).
    """

    def __init__(self, path: str, attribute: str, reason: str) -> None:
        super().__init__(
            f"{path}: the .gitattributes attribute {attribute!r} is not supported by "
            f"mdsessions ({reason}); remove it for this path"
        )
        self.path = path
        self.attribute = attribute


class CrlfAction(enum.Enum):
    """The end-of-line action git resolves for one path (``enum convert_crlf_action``).

    Only resolved actions appear: git's ``CRLF_TEXT`` becomes ``TEXT_CRLF`` or
    ``TEXT_INPUT`` and ``CRLF_AUTO`` becomes ``AUTO_CRLF`` or ``AUTO_INPUT`` according to
    ``core.autocrlf``/``core.eol``, exactly as git's ``output_eol`` decides them.
    """

    BINARY = "binary"
    """No conversion in either direction."""
    TEXT_INPUT = "text-input"
    """Text: CRLF becomes LF on checkin; checkout writes the blob as is."""
    TEXT_CRLF = "text-crlf"
    """Text: CRLF becomes LF on checkin; LF becomes CRLF on checkout."""
    AUTO_INPUT = "auto-input"
    """Text if it looks like text: as ``TEXT_INPUT``, but binary-looking content is kept."""
    AUTO_CRLF = "auto-crlf"
    """Text if it looks like text: as ``TEXT_CRLF``, but mixed or binary content is kept."""


_AUTO = frozenset({CrlfAction.AUTO_INPUT, CrlfAction.AUTO_CRLF})
_OUTPUT_CRLF = frozenset({CrlfAction.TEXT_CRLF, CrlfAction.AUTO_CRLF})


# ------------------------------------------------------------------------- text statistics

# Bytes git counts as non-printable: DEL and the C0 controls except BS, HT, ESC, FF (CR and
# LF are counted on their own).  ``bytes.translate`` deleting every other byte counts them.
_CONTROLS = bytes([*range(32), 127])
_NOT_NONPRINTABLE = bytes(b for b in range(256) if b not in _CONTROLS or b in b"\b\t\033\014\r\n")


class _Stats(NamedTuple):
    """git's ``struct text_stat`` for one buffer."""

    nul: int
    lonecr: int
    lonelf: int
    crlf: int
    printable: int
    nonprintable: int

    @classmethod
    def of(cls, data: bytes) -> _Stats:
        """Gather the statistics of ``data`` the way ``gather_stats`` does.

        Every byte is exactly one of: a CR (of a CRLF pair or lone), an LF (of a CRLF pair
        or lone), non-printable or printable, so byte counts give the same numbers as
        git's loop; ``bytes.count``/``translate`` run in C.

        Args:
            data: The content.

        Returns:
            The counts; a trailing Ctrl-Z (DOS end of file) is not counted as non-printable.
        """
        crlf = data.count(b"\r\n")
        cr = data.count(b"\r")
        lf = data.count(b"\n")
        nonprintable = len(data.translate(None, _NOT_NONPRINTABLE))
        printable = len(data) - cr - lf - nonprintable
        if data.endswith(b"\x1a"):
            nonprintable -= 1
        return cls(
            nul=data.count(b"\0"),
            lonecr=cr - crlf,
            lonelf=lf - crlf,
            crlf=crlf,
            printable=printable,
            nonprintable=nonprintable,
        )

    def is_binary(self) -> bool:
        """Git's ``convert_is_binary``: a lone CR, a NUL, or over 1/128 non-printable."""
        return bool(self.lonecr or self.nul or (self.printable >> 7) < self.nonprintable)


def _will_convert_lf_to_crlf(stats: _Stats, action: CrlfAction) -> bool:
    """Git's ``will_convert_lf_to_crlf``: would checkout turn lone LFs into CRLF?"""
    if action not in _OUTPUT_CRLF or not stats.lonelf:
        return False
    if action in _AUTO:
        # The safer autocrlf: content with any CR, or binary-looking content, is left alone.
        if stats.lonecr or stats.crlf or stats.is_binary():
            return False
    return True


def _has_crlf_in_index(blob: bytes | None) -> bool:
    """Git's ``has_crlf_in_index``: the indexed blob is text holding at least one CRLF."""
    if blob is None or b"\r" not in blob:
        return False
    stats = _Stats.of(blob)
    return not stats.is_binary() and stats.crlf > 0


# ----------------------------------------------------------------------------- configuration


def _config_bool(key: str, value: str) -> bool:
    """A boolean config value the way ``git_config_bool`` reads it.

    Raises:
        StoreError: If the value is not a boolean (git dies on it too).
    """
    text = value.strip().lower()
    if text in ("true", "yes", "on"):
        return True
    if text in ("false", "no", "off", ""):
        return False
    match = re.fullmatch(r"([-+]?\d+)([kmg]?)", text)
    if match is None:
        raise StoreError(f"bad boolean config value {value!r} for {key!r}")
    return int(match.group(1)) != 0


class _Safecrlf(enum.Enum):
    OFF = 0
    WARN = 1
    DIE = 2


@dataclass(frozen=True)
class _Settings:
    """The parts of the repository configuration that steer end-of-line conversion."""

    autocrlf: str
    """``"false"``, ``"true"`` or ``"input"``."""
    text_eol_crlf: bool
    """git's ``text_eol_is_crlf()``: text without an ``eol`` attribute is checked out CRLF."""
    safecrlf: _Safecrlf

    @classmethod
    def of(cls, config: Mapping[str, str]) -> _Settings:
        raw = config.get("core.autocrlf")
        if raw is None:
            autocrlf = "false"
        elif raw.strip().lower() == "input":
            autocrlf = "input"
        else:
            autocrlf = "true" if _config_bool("core.autocrlf", raw) else "false"
        eol = (config.get("core.eol") or "").strip().lower()
        if autocrlf == "true":
            text_eol_crlf = True
        elif autocrlf == "input":
            text_eol_crlf = False
        elif eol == "crlf":
            text_eol_crlf = True
        elif eol in ("lf", "native"):
            text_eol_crlf = eol == "native" and _NATIVE_CRLF
        else:
            text_eol_crlf = _NATIVE_CRLF  # core.eol unset (or unknown): the platform's
        raw_safe = config.get("core.safecrlf")
        if raw_safe is None or raw_safe.strip().lower() == "warn":
            safecrlf = _Safecrlf.WARN
        else:
            safecrlf = _Safecrlf.DIE if _config_bool("core.safecrlf", raw_safe) else _Safecrlf.OFF
        return cls(autocrlf, text_eol_crlf, safecrlf)


def _expand_user(value: str) -> Path:
    """``git_config_pathname``'s ``~/`` and ``~user/`` expansion."""
    return Path(os.path.expanduser(value))  # noqa: PTH111 - Path.expanduser raises on ~nobody


# ---------------------------------------------------------------------- attribute decisions

_Key = tuple[int, int, int, int] | None
"""A file's identity for the cache (mtime_ns, ctime_ns, size, inode), ``None`` if absent."""


def _stat_key(path: str) -> _Key:
    # Most attribute files do not exist: os.access answers that without raising (half the
    # cost of a failing os.stat).
    if not os.access(path, os.F_OK):
        return None
    try:
        st = os.stat(path)  # noqa: PTH116 - os.stat on a str is the cheapest call
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def _refusal(path: str, values: Mapping[str, str]) -> UnsupportedAttributeError | None:
    """The error for an attribute git would honour and mdsessions cannot, if any.

    Mirrors ``git_path_check_convert``, ``git_path_check_ident`` and
    ``git_path_check_encoding``: ``filter`` with a driver name, ``ident`` set, and a
    ``working-tree-encoding`` other than UTF-8 (git dies on the set/unset forms itself).
    A filter name is refused even when no driver is configured here, because git on a
    machine that has the driver (git-lfs) would store something else.
    """
    value = values["filter"]
    if value not in ("set", "unset", "unspecified"):
        reason = "it writes files without git's filters"
        return UnsupportedAttributeError(path, f"filter={value}", reason)
    if values["ident"] == "set":
        reason = "it does not expand or collapse $Id$"
        return UnsupportedAttributeError(path, "ident", reason)
    value = values["working-tree-encoding"]
    if value == "set":
        reason = "git itself rejects it without an encoding"
        return UnsupportedAttributeError(path, "working-tree-encoding", reason)
    if value == "unset":
        reason = "git itself rejects it without an encoding"
        return UnsupportedAttributeError(path, "-working-tree-encoding", reason)
    if value not in ("unspecified", "") and not _is_utf8(value):
        reason = "it writes UTF-8 only"
        return UnsupportedAttributeError(path, f"working-tree-encoding={value}", reason)
    return None


def _is_utf8(name: str) -> bool:
    """Git's ``same_encoding(name, "UTF-8")``: ``utf-8``/``UTF8`` in any case."""
    lowered = name.lower()
    return lowered.startswith("utf") and lowered[3:].removeprefix("-") == "8"


def _crlf_attr(value: str) -> str | None:
    """``git_path_check_crlf``: ``text`` or ``binary`` or ``input`` or ``auto``; else ``None``."""
    if value == "set":
        return "text"
    if value == "unset":
        return "binary"
    if value in ("input", "auto"):
        return value
    return None  # unspecified, or a value git does not know: CRLF_UNDEFINED


def _decide(values: Mapping[str, str], settings: _Settings) -> CrlfAction:
    """``convert_attrs`` for one path: its attributes and the configuration to an action."""
    attr = _crlf_attr(values["text"])
    if attr is None:
        attr = _crlf_attr(values["crlf"])
    if attr == "binary":
        return CrlfAction.BINARY
    eol = values["eol"]
    if attr == "auto":
        if eol == "lf":
            return CrlfAction.AUTO_INPUT
        if eol == "crlf":
            return CrlfAction.AUTO_CRLF
        return CrlfAction.AUTO_CRLF if settings.text_eol_crlf else CrlfAction.AUTO_INPUT
    if eol == "lf":
        return CrlfAction.TEXT_INPUT
    if eol == "crlf":
        return CrlfAction.TEXT_CRLF
    if attr == "input":
        return CrlfAction.TEXT_INPUT
    if attr == "text":
        return CrlfAction.TEXT_CRLF if settings.text_eol_crlf else CrlfAction.TEXT_INPUT
    # No text/crlf/eol attribute: core.autocrlf alone decides.
    if settings.autocrlf == "true":
        return CrlfAction.AUTO_CRLF
    if settings.autocrlf == "input":
        return CrlfAction.AUTO_INPUT
    return CrlfAction.BINARY


_Decision = CrlfAction | UnsupportedAttributeError


class Conversion:
    """git's end-of-line conversion for one repository and one configuration.

    Build a new one when the repository configuration changes; attribute files are watched
    (by ``stat``) and need no rebuild.  Thread-safe.

    Known gaps, each a deliberate cost trade: an attribute value spelled ``set``, ``unset``
    or ``unspecified`` reads as the state ``git check-attr`` prints for it; a
    ``.gitattributes`` that exists only in the index (deleted from the working tree, not
    committed) is not seen by the no-attributes fast path nor by the cache signature; checkout
    direction reads ``.gitattributes`` from the working tree like checkin does (git prefers
    the index's copy on checkout; they differ only while the file has unstaged edits).

    Args:
        root: The working-tree root.
        git_dir: The repository's git directory (``root / ".git"`` or a worktree's).
        config: The effective configuration, lower-case keys, values as ``git config -l``
            prints them (a key without value mapped to ``"true"``).

    Raises:
        StoreError: If ``core.autocrlf`` or ``core.safecrlf`` is not a boolean (git fails).
    """

    def __init__(self, root: Path, git_dir: Path, config: Mapping[str, str]) -> None:
        self.root = root
        self.git_dir = git_dir
        self._settings = _Settings.of(config)
        self._root_str = os.fspath(root)
        common = git_dir
        try:
            text = (git_dir / "commondir").read_text("utf-8").strip()
        except OSError:
            pass
        else:
            common = git_dir / text if text else git_dir
        sources = [common / "info" / "attributes", _SYSTEM_ATTRIBUTES]
        attributes_file = config.get("core.attributesfile")
        xdg, home = os.environ.get("XDG_CONFIG_HOME"), os.environ.get("HOME")
        if attributes_file:
            # git resolves a relative name from its working directory: the root here.
            sources.append(root / _expand_user(attributes_file))
        elif xdg:
            sources.append(Path(xdg) / "git" / "attributes")
        elif home:
            sources.append(Path(home) / ".config" / "git" / "attributes")
        self._repo_sources = tuple(os.fspath(p) for p in sources)
        self._autocrlf_off = self._settings.autocrlf == "false"
        unspecified = dict.fromkeys(_ATTRIBUTES, "unspecified")
        self._unattributed = _decide(unspecified, self._settings)
        self._cache: dict[str, tuple[tuple[_Key, ...], _Decision]] = {}
        self._folders: dict[str, tuple[str, ...]] = {}
        self._root_attributes = os.path.join(self._root_str, ".gitattributes")  # noqa: PTH118
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ deciding actions

    @property
    def identity(self) -> bool:
        """True when no conversion can apply unless a nested ``.gitattributes`` says so.

        That is: ``core.autocrlf`` is false or unset and no repository-wide attribute file
        exists (``$GIT_DIR/info/attributes``, ``core.attributesFile`` or the default global
        ``$XDG_CONFIG_HOME/git/attributes``/``~/.config/git/attributes``, the system
        ``/etc/gitattributes``, the root ``.gitattributes``).  A ``.gitattributes`` in a
        sub-folder is checked per path by :meth:`actions`, which takes the same fast path
        (``BINARY`` for every path, no subprocess) when none lies along the paths asked;
        callers therefore always call :meth:`actions`, and may skip the conversions for a
        save whose actions are all ``BINARY``.  Costs four ``os.access`` calls (~3 µs).
        """
        if not self._autocrlf_off:
            return False
        if _stat_key(self._root_attributes) is not None:
            return False
        return all(_stat_key(source) is None for source in self._repo_sources)

    def actions(self, paths: Sequence[str]) -> dict[str, CrlfAction]:
        """The end-of-line action of each path, as ``git add``/``git checkout`` decide it.

        Args:
            paths: Store-relative paths with ``/`` separators (``projects/p/x.md``).

        Returns:
            Each path's action.

        Raises:
            UnsupportedAttributeError: If ``filter``, ``ident`` or ``working-tree-encoding``
                applies to one of the paths (the first such path in ``paths`` is named).
            StoreError: If ``git check-attr`` fails.
        """
        now = time.time_ns()  # before any stat: a file changed after it is seen as racy
        file_keys: dict[str, _Key] = {}
        signatures: dict[str, tuple[_Key, ...]] = {}
        repo_keys = tuple(_stat_key(source) for source in self._repo_sources)
        any_source = any(key is not None for key in repo_keys)
        for path in paths:
            signature = repo_keys
            for attributes in self._attribute_files(path.rpartition("/")[0]):
                if attributes in file_keys:
                    key = file_keys[attributes]
                else:
                    key = file_keys[attributes] = _stat_key(attributes)
                    any_source = any_source or key is not None
                signature += (key,)
            signatures[path] = signature
        if not any_source:
            # No attribute file can apply: check-attr would answer "unspecified" throughout.
            return dict.fromkeys(paths, self._unattributed)

        with self._lock:
            decided: dict[str, _Decision] = {}
            missing: list[str] = []
            for path, signature in signatures.items():
                cached = self._cache.get(path)
                if cached is not None and cached[0] == signature:
                    decided[path] = cached[1]
                else:
                    missing.append(path)
            if missing:
                fresh = self._check_attr(missing)
                decided.update(fresh)
                racy_after = now - _RACY_NS
                racy = {k for k in file_keys.values() if k is not None and k[0] >= racy_after}
                racy.update(k for k in repo_keys if k is not None and k[0] >= racy_after)
                if len(self._cache) + len(fresh) > _CACHE_LIMIT:
                    self._cache.clear()
                for path, decision in fresh.items():
                    signature = signatures[path]
                    if not racy or racy.isdisjoint(signature):
                        self._cache[path] = (signature, decision)
        out: dict[str, CrlfAction] = {}
        for path in paths:
            decision = decided[path]
            if isinstance(decision, UnsupportedAttributeError):
                raise decision
            out[path] = decision
        return out

    def _attribute_files(self, folder: str) -> tuple[str, ...]:
        """The ``.gitattributes`` files that apply in ``folder`` (``a/b``), root first."""
        files = self._folders.get(folder)
        if files is None:
            parent = self._attribute_files(folder.rpartition("/")[0]) if folder else ()
            files = (
                *parent,
                f"{self._root_str}/{folder}/.gitattributes"
                if folder
                else f"{self._root_str}/.gitattributes",
            )
            if len(self._folders) >= _CACHE_LIMIT:
                self._folders.clear()
            self._folders[folder] = files
        return files

    def _check_attr(self, paths: list[str]) -> dict[str, _Decision]:
        """One ``git check-attr`` for ``paths``: each path's action or refusal."""
        payload = b"".join(os.fsencode(path) + b"\0" for path in paths)
        # Run in the root, where git finds this repository (and its .git file, for a
        # worktree) itself; paths are then relative to the root as given.
        proc = run_git(["check-attr", "-z", "--stdin", *_ATTRIBUTES], cwd=self.root, input=payload)
        # -z output: <path> NUL <attribute> NUL <value> NUL, attributes in the order asked.
        fields = proc.stdout.split(b"\0")
        expected = 3 * len(_ATTRIBUTES) * len(paths)
        if len(fields) != expected + 1 or fields[-1]:
            raise StoreError(
                f"git check-attr answered {len(fields) - 1} fields for {len(paths)} paths"
            )
        out: dict[str, _Decision] = {}
        stride = 3 * len(_ATTRIBUTES)
        for index, path in enumerate(paths):
            chunk = fields[index * stride : (index + 1) * stride]
            values = {chunk[i + 1].decode(): os.fsdecode(chunk[i + 2]) for i in range(0, stride, 3)}
            refusal = _refusal(path, values)
            out[path] = refusal if refusal is not None else _decide(values, self._settings)
        return out

    # ----------------------------------------------------------------------- conversions

    def to_git(
        self,
        path_action: CrlfAction,
        data: bytes,
        index_blob: bytes | None,
        *,
        path: str = "<path>",
    ) -> bytes:
        """The blob ``git add`` stores for working-tree content (git's ``crlf_to_git``).

        Args:
            path_action: The path's action from :meth:`actions`.
            data: The working-tree bytes.
            index_blob: The content of the path's current index entry, or ``None`` when the
                index has none: under ``text=auto``/``core.autocrlf`` a file whose indexed
                blob already holds CRLF keeps its CRLFs (git's safer autocrlf).
            path: The path, for the ``core.safecrlf`` error message.

        Returns:
            The blob content (``data`` itself when nothing changes).

        Raises:
            StoreError: If ``core.safecrlf`` is true and checking the blob out again would
                not give ``data`` back (``git add`` refuses the same way).
        """
        if path_action is CrlfAction.BINARY or not data:
            return data
        stats = _Stats.of(data)
        convert = stats.crlf > 0
        if path_action in _AUTO:
            if stats.is_binary():
                return data
            if convert and _has_crlf_in_index(index_blob):
                convert = False
        if self._settings.safecrlf is _Safecrlf.DIE:
            self._check_round_trip(path, path_action, stats, convert)
        if not convert:
            return data
        # Auto actions only get here without lone CRs, so dropping the CR of each CRLF
        # is what both of git's loops do.
        return data.replace(b"\r\n", b"\n")

    @staticmethod
    def _check_round_trip(path: str, action: CrlfAction, stats: _Stats, convert: bool) -> None:
        """``core.safecrlf=true``: refuse a checkin that checkout would not undo."""
        lonelf, crlf = stats.lonelf, stats.crlf
        if convert:
            lonelf, crlf = lonelf + crlf, 0
        after_checkin = stats._replace(lonelf=lonelf, crlf=crlf)
        if _will_convert_lf_to_crlf(after_checkin, action):
            lonelf, crlf = 0, crlf + lonelf
        if stats.crlf and not crlf:
            raise StoreError(f"CRLF would be replaced by LF in {path} (core.safecrlf is true)")
        if stats.lonelf and not lonelf:
            raise StoreError(f"LF would be replaced by CRLF in {path} (core.safecrlf is true)")

    def to_worktree(self, action: CrlfAction, blob: bytes) -> bytes:
        """What ``git checkout`` writes for a blob (git's ``crlf_to_worktree``).

        Args:
            action: The path's action from :meth:`actions`.
            blob: The blob content.

        Returns:
            The working-tree bytes (``blob`` itself when nothing changes).
        """
        if action not in _OUTPUT_CRLF or not blob:
            return blob
        stats = _Stats.of(blob)
        if not _will_convert_lf_to_crlf(stats, action):
            return blob
        if stats.crlf:
            # Existing CRLFs stay as they are; only lone LFs gain a CR.
            return blob.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return blob.replace(b"\n", b"\r\n")
