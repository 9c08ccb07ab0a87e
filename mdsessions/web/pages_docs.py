"""Documents at a version and diffs between two versions, read through git only.

A URL path such as ``/doc/projects/p/sessions/s/phase_1_concept/user_feedback.md`` names a
store-relative path; it is looked up in the tree of a commit (:func:`tracked`), never opened
on disk, so only what git tracks below the store's projects folder can be shown. ``..``,
absolute paths, hidden names (``.git/…``), NUL, symlinks and anything outside the projects
folder are refused with 404 (:class:`NotServed`) before git is asked.

The relative links of a document (a feedback file's ``## Outputs`` link
``concept_expansion.md``) resolve naturally below ``/doc/…``; in a versioned view
(``?at=COMMIT``) they are given the same ``?at=`` so the reader stays at that version.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from mdsessions import Store, history
from mdsessions.documents import yaml as strict_yaml
from mdsessions.documents.frontmatter import split
from mdsessions.errors import MdsessionsError
from mdsessions.git.diff import diff_patch

__all__ = [
    "EMPTY_TREE",
    "TREE_MODES",
    "DiffFile",
    "DiffLine",
    "MAX_VERSIONS",
    "FieldChange",
    "NotServed",
    "Revision",
    "check_path",
    "crumbs",
    "diff_files",
    "flatten",
    "frontmatter_of",
    "keep_version",
    "previous",
    "raw_diff",
    "resolve_commit",
    "session_of",
    "shown_version",
    "tracked",
    "versions_of",
]

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
"""git's empty tree: the "before" of a file's first version."""

FILE_MODES = (b"100644", b"100755")
"""Tree entry modes of a regular file (a symlink, ``120000``, is never served)."""

TREE_MODES = (b"40000", b"040000")
"""Tree entry modes of a folder."""

MAX_VERSIONS = 100
"""Versions listed on a document page (newest first; the page says when there are more)."""

MAX_DIFF_LINES = 20_000
"""Above this many lines on a side, a file's rendered diff is left out (the raw one stays)."""

CONTEXT = 3
"""Unchanged lines shown around each change in a rendered diff."""

SIMILAR = 0.5
"""How alike (difflib ratio of words) a deleted and an inserted line must be to be shown
word by word."""

MAX_WORDS = 2_000
"""Longer lines are marked whole, not word by word."""

_REV_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/~^-]{0,99}")
_TOKEN_RE = re.compile(r"\s+|\w+|[^\w\s]")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HREF_RE = re.compile(r'href="([^"]*)"')
_PHASE_RE = re.compile(r"phase_(\d+)_[A-Za-z0-9._-]+")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


class NotServed(Exception):  # noqa: N818 - an answer (404), not a failure of the desk
    """The URL names nothing the desk serves: the page answers 404 with this message."""


@dataclass(frozen=True)
class Revision:
    """A commit a page shows: what the URL said and the full id it names."""

    given: str
    """The revision as written in the URL (``HEAD``, a short id …)."""
    sha: str
    """The full commit id (40 hex digits)."""

    @property
    def short(self) -> str:
        """The first 8 hex digits."""
        return self.sha[:8]


def check_path(store: Store, path: str) -> str:
    """The store-relative path a URL names, when it may be served at all.

    Raises:
        NotServed: NUL, a backslash, an absolute path, an empty, ``.`` or ``..`` part, a
            hidden name (``.git``), or a path outside the projects folder.
    """
    if "\x00" in path or "\\" in path or path.startswith("/") or len(path) > 4096:
        raise NotServed(f"no document {path!r}: not a path inside the store's projects folder")
    parts = path.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise NotServed(f"no document {path!r}: not a path inside the store's projects folder")
    base = [] if store.projects_dir == "." else store.projects_dir.split("/")
    inside = parts[len(base) :]
    if parts[: len(base)] != base or not inside or not _ID_RE.fullmatch(inside[0]):
        raise NotServed(
            f"no document {path!r}: documents live below the projects folder "
            f"{store.projects_dir!r} of the store"
        )
    return path


def resolve_commit(store: Store, given: str | None) -> Revision:
    """The commit named by a ``?at=`` / ``?from=`` / ``?to=`` value (default ``HEAD``).

    Raises:
        NotServed: The value names no commit of the store (a tree or blob id, an unknown id,
            an option-like text).
    """
    text = (given or "HEAD").strip()
    if not _REV_RE.fullmatch(text) or ".." in text:
        raise NotServed(f"{text!r} is not a commit of this store (expected a commit id or ref)")
    try:
        sha = store.git.resolve_quick(text)
    except MdsessionsError:
        raise NotServed(
            f"{text!r} is not a commit of this store (expected a commit id or ref)"
        ) from None
    return Revision(text, sha)


def tracked(store: Store, path: str, sha: str | None, *, folders: bool = False) -> bytes | None:
    """The tree entry mode of ``path`` at a commit, when it may be served.

    Args:
        store: The store.
        path: The store-relative path from the URL.
        sha: A full commit id, or ``None`` (nothing there).
        folders: Also accept a folder (a diff of a session or phase folder).

    Returns:
        The entry's mode (``b"100644"`` …), or ``None`` when the commit has no such file.

    Raises:
        NotServed: The path may never be served (see :func:`check_path`), or it is a symlink
            (or a folder, unless ``folders``).
    """
    rel = check_path(store, path)
    if sha is None:
        return None
    try:
        found = store.git.entry(sha, rel)
    except Exception:  # noqa: BLE001 - a path through a symlink or a file: nothing there
        return None
    if found is None:
        return None
    mode = found[0]
    if mode in FILE_MODES or (folders and mode in TREE_MODES):
        return mode
    raise NotServed(f"no document {path!r}: it is not a regular file tracked by the store")


def session_of(store: Store, rel: str) -> tuple[str, str] | None:
    """``(project, session)`` when ``rel`` lies inside a session folder, else ``None``."""
    parts = rel.split("/")
    if store.projects_dir != ".":
        parts = parts[len(store.projects_dir.split("/")) :]
    if len(parts) < 3 or parts[1] != "sessions":
        return None
    return parts[0], parts[2]


def crumbs(store: Store, rel: str) -> list[tuple[str, str]]:
    """Links up from a path: its session page and, inside a phase folder, the phase page.

    Returns:
        ``(label, URL)`` pairs, outermost first (empty outside a session).
    """
    ids = session_of(store, rel)
    if ids is None:
        return []
    project, session = ids
    base = f"/s/{quote(project)}/{quote(session)}"
    out = [(f"{project}/{session}", base)]
    below = rel.split("/")[len(store.rel(project, "sessions", session).split("/")) :]
    match = _PHASE_RE.fullmatch(below[0]) if below else None
    if match:
        out.append((f"phase {int(match.group(1))}", f"{base}/phase/{int(match.group(1))}"))
    return out


def versions_of(store: Store, rel: str, limit: int = MAX_VERSIONS) -> list[history.Version]:
    """The commits that touched ``rel`` (a file or folder), newest first, trailers parsed.

    Inside a live session the store's log index answers (:func:`mdsessions.history.versions`);
    elsewhere (a deleted session's file) a path-limited ``git log``.
    """
    ids = session_of(store, rel)
    if ids is not None:
        try:
            session = store.session(*ids)
            page = history.versions(session, rel, limit=limit)
        except MdsessionsError:
            pass
        else:
            return list(page.versions)
    return [history.Version.from_commit(c) for c in store.git.log([rel], max_count=limit)]


def previous(store: Store, rel: str, to: str) -> str | None:
    """The version of ``rel`` before the one ``to`` shows, or ``None`` when it has none.

    The newest commit at or before ``to`` that touched the path made the version ``to``
    shows; the one before it in the path's history is the previous version (so a diff
    against HEAD shows the file's last change even when HEAD itself did not touch it).
    """
    if to == store.git.head():  # the log index knows HEAD's history of the path
        listed = versions_of(store, rel, limit=2)
        return listed[1].commit if len(listed) > 1 else None
    found = store.git.log([rel], rev=to, max_count=2)
    return found[1].sha if len(found) > 1 else None


def shown_version(store: Store, rel: str, sha: str, versions: list[history.Version]) -> str | None:
    """The commit that made the version of ``rel`` seen at ``sha`` (to mark it in a list)."""
    listed = {v.commit for v in versions}
    if sha in listed:
        return sha
    if versions and sha == store.git.head():  # the newest commit that touched it
        return versions[0].commit
    found = store.git.log([rel], rev=sha, max_count=1)
    return found[0].sha if found else None


def keep_version(html: Markup, sha: str) -> Markup:
    """Add ``?at=sha`` to the relative links of rendered (sanitized) HTML.

    Links with a scheme, absolute paths, fragments alone and links that already carry a
    query are left as they are. ``sha`` is 40 hex digits, so nothing is escaped.
    """

    def fix(match: re.Match[str]) -> str:
        href = match.group(1)
        if not href or _SCHEME_RE.match(href) or href[0] in "/#?" or "?" in href:
            return match.group(0)
        target, hash_, fragment = href.partition("#")
        return f'href="{target}?at={sha}{hash_}{fragment}"'

    return Markup(_HREF_RE.sub(fix, str(html)))  # noqa: S704 - only hex digits are added


def frontmatter_of(text: str) -> tuple[dict[str, Any] | None, str, int, str | None]:
    """A document's frontmatter fields and its body, read as the store reads them.

    Returns:
        ``(fields or None, body, body's first line (1-based), error or None)``; a text
        without frontmatter gives ``(None, text, 1, None)``; broken YAML gives the fields
        ``None`` and the error.
    """
    if not text.startswith(("---", "\ufeff---")):
        return None, text, 1, None
    try:
        yaml_text, body, line = split(text)
    except MdsessionsError as exc:
        return None, text, 1, str(exc)
    try:
        data = strict_yaml.load(yaml_text)
    except Exception as exc:  # noqa: BLE001 - shown to the reader, the page still renders
        return None, body, line, f"the frontmatter does not parse: {exc}"
    if not isinstance(data, dict):
        return None, body, line, "the frontmatter is not a mapping of 'key: value' lines"
    return data, body, line, None


def _leaf(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested frontmatter as ``{dotted.key[i]: text}`` leaves (``phases[1].status``)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = "{}"
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        if not value:
            out[prefix] = "[]"
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
    else:
        out[prefix] = _leaf(value)
    return out


@dataclass(frozen=True)
class FieldChange:
    """One frontmatter field that differs between two versions."""

    key: str
    """Dotted key (``phases[1].status``)."""
    before: str | None
    """Its text before (``None``: absent)."""
    after: str | None
    """Its text after (``None``: absent)."""


@dataclass(frozen=True)
class DiffLine:
    """One row of a rendered diff."""

    kind: str
    """``same``, ``del``, ``ins`` or ``gap`` (unchanged lines left out)."""
    old: int | None
    """Line number in the old version (1-based)."""
    new: int | None
    """Line number in the new version."""
    text: str
    """The line without its end."""
    pieces: tuple[tuple[bool, str], ...] = ()
    """``(changed, text)`` parts of a ``del``/``ins`` line paired with a similar line on the
    other side (the words that changed); empty: the whole line changed."""


@dataclass
class DiffFile:
    """One changed file of a diff: field changes and line rows."""

    path: str
    """Store-relative path."""
    change: str
    """``added``, ``modified`` or ``deleted``."""
    fields: list[FieldChange] = field(default_factory=list)
    """Frontmatter changes, when both sides have a frontmatter that parses."""
    lines: list[DiffLine] = field(default_factory=list)
    """Body rows (the whole text when the frontmatter is not compared)."""
    note: str | None = None
    """Why there are no rows (binary, too large)."""


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[FieldChange]:
    a, b = flatten(old), flatten(new)
    keys = list(b) + [k for k in a if k not in b]
    return [FieldChange(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]


def _words(old: str, new: str) -> tuple[tuple[tuple[bool, str], ...], ...] | None:
    """The changed and kept words of a similar pair of lines, or ``None`` when not similar."""
    a, b = _TOKEN_RE.findall(old), _TOKEN_RE.findall(new)
    if len(a) > MAX_WORDS or len(b) > MAX_WORDS:
        return None
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.ratio() < SIMILAR:
        return None
    before: list[tuple[bool, str]] = []
    after: list[tuple[bool, str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if i2 > i1:
            before.append((tag != "equal", "".join(a[i1:i2])))
        if j2 > j1:
            after.append((tag != "equal", "".join(b[j1:j2])))
    return tuple(before), tuple(after)


def _changed(
    old: list[str], new: list[str], i: tuple[int, int], j: tuple[int, int], starts: tuple[int, int]
) -> list[DiffLine]:
    """The rows of one replaced block: deletions, then insertions, similar pairs by word."""
    (i1, i2), (j1, j2), (o, n) = i, j, starts
    dels = [DiffLine("del", o + k, None, old[k]) for k in range(i1, i2)]
    inss = [DiffLine("ins", None, n + k, new[k]) for k in range(j1, j2)]
    for k in range(min(len(dels), len(inss))):
        pair = _words(dels[k].text, inss[k].text)
        if pair is not None:
            dels[k] = DiffLine("del", dels[k].old, None, dels[k].text, pair[0])
            inss[k] = DiffLine("ins", None, inss[k].new, inss[k].text, pair[1])
    return dels + inss


def _rows(old: list[str], new: list[str], old_start: int, new_start: int) -> list[DiffLine]:
    rows: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for group in matcher.get_grouped_opcodes(CONTEXT):
        if rows or group[0][1] > 0 or group[0][3] > 0:
            rows.append(DiffLine("gap", None, None, "…"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows += [
                    DiffLine("same", old_start + i, new_start + j, old[i])
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                ]
            else:
                rows += _changed(old, new, (i1, i2), (j1, j2), (old_start, new_start))
    return rows


def _render_file(path: str, before: bytes | None, after: bytes | None) -> DiffFile:
    change = "added" if before is None else "deleted" if after is None else "modified"
    out = DiffFile(path, change)
    if b"\0" in (before or b"")[:8000] or b"\0" in (after or b"")[:8000]:
        out.note = "binary file"
        return out
    old_text = (before or b"").decode("utf-8", "replace")
    new_text = (after or b"").decode("utf-8", "replace")
    old_fm, old_body, old_line, _ = frontmatter_of(old_text)
    new_fm, new_body, new_line, _ = frontmatter_of(new_text)
    if old_fm is not None and new_fm is not None:
        out.fields = _field_changes(old_fm, new_fm)
    else:
        old_body, old_line, new_body, new_line = old_text, 1, new_text, 1
    old_lines, new_lines = old_body.splitlines(), new_body.splitlines()
    if max(len(old_lines), len(new_lines)) > MAX_DIFF_LINES:
        out.note = f"over {MAX_DIFF_LINES} lines: see the raw diff"
        return out
    out.lines = _rows(old_lines, new_lines, old_line, new_line)
    return out


def diff_files(store: Store, old: str | None, new: str, rel: str) -> list[DiffFile]:
    """The files below ``rel`` (a file or folder) that differ between two commits, rendered.

    Args:
        store: The store.
        old: The older full commit id, or ``None`` (nothing before: every file added).
        new: The newer full commit id.
        rel: The store-relative file or folder.

    Returns:
        One :class:`DiffFile` per changed file, by path.
    """
    git = store.git
    out = []
    for path, (a, b) in sorted(git.diff_trees(old, new, rel).items()):
        before = git.read_object(a)[1] if a is not None else None
        after = git.read_object(b)[1] if b is not None else None
        out.append(_render_file(path, before, after))
    return out


def raw_diff(store: Store, old: str | None, new: str, rel: str) -> str:
    """``git diff OLD NEW -- rel`` as git prints it (the empty tree when ``old`` is ``None``).

    No colour, no external diff driver or text conversion, ``a/`` and ``b/`` prefixes, no
    rename detection; bytes that are not UTF-8 are replaced.
    """
    return diff_patch(store.git, old or EMPTY_TREE, new, rel)
