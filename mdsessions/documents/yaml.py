"""Strict, safe YAML for frontmatter: a loader and a deterministic emitter.

:func:`load` uses only ``yaml.SafeLoader`` machinery (no arbitrary Python objects).  On top of
it the loader refuses anchors/aliases (the "billion laughs" family), duplicate mapping keys
(which PyYAML would silently collapse), deep nesting and oversized input, so that what a person
sees in the file is exactly what the store reads.

:func:`dump_mapping` writes block-style YAML, the same data always as the same bytes.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yaml.nodes import MappingNode

MAX_FRONTMATTER_BYTES = 256 * 1024
"""The largest frontmatter block (bytes of YAML) a document may carry."""


_strict_loader: Any = None


def _loader() -> Any:
    """The strict loader class, made on first use (PyYAML is imported only then).

    A safe loader (LibYAML-backed when available) that rejects duplicate keys and reads
    timestamps as strings (the models parse them, so ``2024-11-24T10:00:00Z`` round-trips
    as written).
    """
    global _strict_loader
    if _strict_loader is not None:
        return _strict_loader
    import yaml
    from yaml.constructor import ConstructorError

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # LibYAML when available

    class _StrictLoader(base):  # type: ignore[misc]
        """A safe loader (LibYAML-backed when available) that rejects duplicate keys."""

        def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _value_node in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    hash(key)
                except TypeError:
                    raise ConstructorError(
                        None, None, "a mapping key must be a plain value", key_node.start_mark
                    ) from None
                if key in seen:
                    raise ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]

    _StrictLoader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _strict_loader = _StrictLoader
    return _StrictLoader


def __getattr__(name: str) -> Any:
    """``_StrictLoader`` (the class :func:`load` uses), made on first access."""
    if name == "_StrictLoader":
        return _loader()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _refuse_aliases(text: str) -> None:
    """Reject anchors and aliases (checked on the event stream, before anything is built)."""
    import yaml

    loader = _loader()
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                None,
                None,
                "aliases (*name) are not allowed in frontmatter",
                event.start_mark,  # type: ignore[arg-type]
            )
        if getattr(event, "anchor", None) is not None:
            raise yaml.MarkedYAMLError(
                None,
                None,
                "anchors (&name) are not allowed in frontmatter",
                event.start_mark,  # type: ignore[arg-type]
            )


MAX_DEPTH = 64
"""The deepest nesting frontmatter may have (LibYAML's recursive parser overflows the C stack
on ~10,000 levels: the process would die, so deep input is refused before parsing)."""

_DEEP_BLOCK = re.compile(rf"^ {{{2 * MAX_DEPTH},}}\S|(?:- ){{{MAX_DEPTH},}}", re.MULTILINE)


_DEEP_SPACES = " " * (2 * MAX_DEPTH)
_DEEP_DASHES = "- " * MAX_DEPTH


def _refuse_deep_nesting(text: str) -> None:
    # (The substring tests are what _DEEP_BLOCK needs to match, and ~100x cheaper than it.)
    if (_DEEP_SPACES in text or _DEEP_DASHES in text) and _DEEP_BLOCK.search(text):
        raise YAMLSyntaxError(f"frontmatter is nested more than {MAX_DEPTH} levels deep", None)
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # cannot be deeper than that: skip the scan
    depth = 0
    for line_no, line in enumerate(text.split("\n"), 1):
        for ch in line:
            if ch in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    raise YAMLSyntaxError(
                        f"frontmatter is nested more than {MAX_DEPTH} levels deep", line_no
                    )
            elif ch in "]}" and depth:
                depth -= 1


class YAMLSyntaxError(ValueError):
    """Frontmatter YAML that does not parse; ``line`` is 1-based within the YAML text."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def load(text: str) -> Any:
    """Parse one YAML document strictly.

    Text in the block layout :func:`dump_mapping` writes (every document mdsessions renders)
    is read by :func:`fast_load`, ~20x faster than PyYAML and to the same result; any other
    text by PyYAML's safe loader (LibYAML's parser when available), whose errors are raised.

    Args:
        text: YAML source (the frontmatter between the ``---`` lines).

    Returns:
        The parsed value (for frontmatter: a ``dict``), or ``None`` for empty text.

    Raises:
        YAMLSyntaxError: On a syntax error, an alias/anchor, a duplicate key or input larger
            than :data:`MAX_FRONTMATTER_BYTES`; ``line`` is 1-based within ``text``.
    """
    # (At most 4 bytes a character: short text needs no encoding to be known small enough.)
    if len(text) * 4 > MAX_FRONTMATTER_BYTES and (
        len(text.encode("utf-8", "surrogatepass")) > MAX_FRONTMATTER_BYTES
    ):
        raise YAMLSyntaxError(f"frontmatter is larger than {MAX_FRONTMATTER_BYTES} bytes", None)
    _refuse_deep_nesting(text)
    fast = fast_load(text)
    if fast is not None:
        return fast
    return _load_strict(text)


def _load_strict(text: str) -> Any:
    """:func:`load` by PyYAML's safe loader, after the size and depth checks.

    Raises:
        YAMLSyntaxError: As :func:`load`.
    """
    import yaml

    try:
        if "&" in text or "*" in text:
            _refuse_aliases(text)
        return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "invalid YAML"
        unclosed_flow = (exc.context or "").startswith("while parsing a flow")
        if exc.context_mark is not None and (
            "end of stream" in (exc.problem or "") or unclosed_flow
        ):
            # An unclosed quote, [ or {: where it was opened helps, not where parsing gave up.
            mark = exc.context_mark
            what = (
                (exc.context or "").removeprefix("while parsing ").removeprefix("while scanning ")
            )
            reason = f"{what} opened here is never closed ({exc.problem})"
        elif exc.context == "while scanning a simple key" and exc.context_mark is not None:
            # PyYAML notices the missing ':' only at the next token, often lines later: the
            # line at fault is where the would-be key starts.
            mark = exc.context_mark
            reason = (
                "expected 'key: value' on this line (no ':' after the key; to continue the "
                "value of the line above, indent this line)"
            )
        line = mark.line + 1 if mark is not None else None
        raise YAMLSyntaxError(reason, line) from None
    except yaml.YAMLError as exc:
        raise YAMLSyntaxError(str(exc), None) from None
    except RecursionError:
        raise YAMLSyntaxError("frontmatter is nested too deeply", None) from None


# --------------------------------------------------------------------------------------------
# emitting: block-style frontmatter, deterministic, ~10x cheaper than PyYAML's representer
# --------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ .,/@()+\-=:<>]*")
# Words YAML 1.1 (PyYAML) reads as bools or null, in any case, are quoted.
_RESERVED = frozenset("yes no true false on off null ~ y n".split())
_PRINTABLE = "[\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*"
_NEEDS_ESCAPE = "[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    """``re.compile``, on first use.

    A class of Unicode ranges costs ~5-10 ms to compile, paid by every command that imports
    this module, most of which never need it.
    """
    return re.compile(pattern)


def _plain_ok(text: str) -> bool:
    return (
        _PLAIN.fullmatch(text) is not None
        and not text.endswith((" ", ":"))
        and ": " not in text
        and text.lower() not in _RESERVED
    )


def _quoted(text: str) -> str:
    if _regex(_NEEDS_ESCAPE).search(text) is None and "\n" not in text:
        return "'" + text.replace("'", "''") + "'"
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif _regex(_NEEDS_ESCAPE).match(ch):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _literal_ok(text: str) -> bool:
    if "\n" not in text or text[0] in " \t\n" or _regex(_PRINTABLE).fullmatch(text) is None:
        return False
    return all(line.strip() or not line for line in text.split("\n"))


def emit_scalar(value: Any) -> str:
    """One value as a YAML scalar (single line): null, true/false, a number or a string."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
        return text
    text = str(value)
    return text if _plain_ok(text) else _quoted(text)


def _flow(value: Any) -> str:
    """A value in flow style (``[a, {k: v}]``); strings always quoted (flow-safe)."""
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{emit_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return _quoted(value)
    return emit_scalar(value)


def _emit(value: Any, prefix: str, indent: str, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append(prefix + " {}")
            return
        out.append(prefix)
        for key, item in value.items():
            _emit(item, f"{indent}{emit_scalar(key)}:", indent + "  ", out)
    elif isinstance(value, list):
        if not value:
            out.append(prefix + " []")
            return
        out.append(prefix)
        for item in value:
            if isinstance(item, dict) and item:
                first = True
                for key, sub in item.items():
                    lead = indent[:-2] + "- " if first else indent
                    _emit(sub, f"{lead}{emit_scalar(key)}:", indent + "  ", out)
                    first = False
            elif isinstance(item, list) and item:
                out.append(f"{indent[:-2]}- {_flow(item)}")
            else:
                _emit(item, indent[:-2] + "-", indent, out)
    elif isinstance(value, str) and _literal_ok(value):
        body = value.rstrip("\n")
        trailing = len(value) - len(body)
        chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
        lines = (value if trailing == 0 else value[:-1]).split("\n")
        out.append(f"{prefix} |{chomp}")
        out.extend(indent + line if line else "" for line in lines)
    else:
        out.append(f"{prefix} {emit_scalar(value)}")


def dump_mapping(data: dict[str, Any]) -> str:
    """Block-style YAML for a mapping, keys in the given order, no trailing newline.

    Sequences are written indentless (``key:`` then ``- item`` at the same indent), as
    PyYAML does; multi-line strings as ``|`` literals when that is exact, else quoted.

    Args:
        data: A mapping of str keys to None/bool/int/float/str or nested lists/dicts.

    Returns:
        The YAML text.
    """
    out: list[str] = []
    for key, value in data.items():
        _emit(value, f"{emit_scalar(key)}:", "  ", out)
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# the fast path: the block YAML our own emitter writes, read without PyYAML
# --------------------------------------------------------------------------------------------

# Characters PyYAML's reader refuses (its NON_PRINTABLE) and the line breaks it knows besides
# "\n" (CR, NEL, LS, PS) and the byte-order mark: text with any of them goes the strict way.
_FAST_REFUSED = (
    "[^\x09\x0a\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
# One line of a block mapping: indentation, a plain key, and the rest after ": " (or none).
# (At most 1,000 characters: PyYAML reads no longer implicit key, its limit is 1,024.)
_FAST_KEY = re.compile(r"( *)([A-Za-z_][A-Za-z0-9_./@()+=<>,-]{0,999}):(?: (.*))?")
# Scalars as dump_mapping writes them (emit_scalar, _quoted without escapes).
_FAST_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FAST_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+(?:e[-+][0-9]+)?")
_FAST_SINGLE = re.compile(r"'((?:[^']|'')*)'")
_FAST_CONSTANTS: dict[str, Any] = {"null": None, "true": True, "false": False}


class _NotFast(Exception):
    """The text is not in the subset the fast path reads: the strict loader reads it."""


def _fast_scalar(text: str) -> Any:
    """One scalar of the fast subset, exactly as the strict loader reads it.

    Raises:
        _NotFast: Anything else (another spelling of null or a bool, a double-quoted or flow
            value, a plain scalar PyYAML would resolve to something else, ...).
    """
    if text in _FAST_CONSTANTS:
        return _FAST_CONSTANTS[text]
    if text == "{}":
        return {}
    if text == "[]":
        return []
    first = text[:1]
    if first == "'":
        match = _FAST_SINGLE.fullmatch(text)
        if match is None:
            raise _NotFast
        return match.group(1).replace("''", "'")
    if "0" <= first <= "9" or first == "-":
        if _FAST_INT.fullmatch(text):
            return int(text)
        if _FAST_FLOAT.fullmatch(text):
            return float(text)
        raise _NotFast
    if _plain_ok(text):
        return text
    raise _NotFast


def _fast_literal(lines: list[str], pos: int, indent: int, chomp: str) -> tuple[str, int]:
    """A ``|``/``|-``/``|+`` block whose first line is ``lines[pos]``, indented ``indent``.

    Returns:
        The string and the position of the first line after the block.

    Raises:
        _NotFast: A block dump_mapping does not write (first line empty or otherwise
            indented, a blank line that is not empty).
    """
    lead = " " * indent
    n = len(lines)
    if (
        pos >= n
        or not lines[pos].startswith(lead)
        or lines[pos][indent : indent + 1] in ("", " ", "\t")
    ):
        raise _NotFast
    content: list[str] = []
    while pos < n:
        line = lines[pos]
        if line.startswith(lead):
            if not line.strip():
                raise _NotFast  # blanks only: dump_mapping never writes such a line
            content.append(line[indent:])
        elif not line:
            content.append("")
        elif not line.strip(" "):
            raise _NotFast
        else:
            break
        pos += 1
    trailing = 0
    while content and not content[-1]:
        content.pop()
        trailing += 1
    text = "\n".join(content)
    if chomp == "":
        text += "\n"
    elif chomp == "+":
        text += "\n" * (trailing + 1)
    return text, pos


def _fast_skip(lines: list[str], pos: int) -> int:
    """The position of the next line that is neither blank nor a comment."""
    n = len(lines)
    while pos < n:
        stripped = lines[pos].lstrip(" ")
        if stripped and stripped[0] != "#":
            break
        pos += 1
    return pos


def _fast_value(lines: list[str], pos: int, rest: str | None, indent: int) -> tuple[Any, int]:
    """The value of a ``key:`` at column ``indent - 2`` whose line is ``lines[pos - 1]``.

    Raises:
        _NotFast: A value outside the subset.
    """
    if rest is not None:
        if rest[:1] == "|":
            if rest not in ("|", "|-", "|+"):
                raise _NotFast
            return _fast_literal(lines, pos, indent, rest[1:])
        return _fast_scalar(rest), pos
    nxt = _fast_skip(lines, pos)
    if nxt >= len(lines):
        return None, nxt  # "key:" and nothing: null (the feedback's bare requested_changes:)
    line = lines[nxt]
    column = len(line) - len(line.lstrip(" "))
    if column == indent - 2 and (line[column:].startswith("- ")):
        return _fast_sequence(lines, nxt, column)
    if column == indent:
        return _fast_mapping(lines, nxt, indent)
    if column < indent - 2 or (column == indent - 2 and _FAST_KEY.fullmatch(line)):
        return None, nxt  # "key:" then the next key of its mapping (or of one outside it)
    raise _NotFast


def _fast_mapping(lines: list[str], pos: int, indent: int) -> tuple[dict[str, Any], int]:
    """A block mapping whose keys are at column ``indent``, from ``lines[pos]``.

    Returns:
        The mapping and the position of the first line after it.

    Raises:
        _NotFast: Anything outside the subset (a duplicate key included: the strict loader
            names it).
    """
    out: dict[str, Any] = {}
    n = len(lines)
    match = _FAST_KEY.fullmatch
    while True:
        pos = _fast_skip(lines, pos)
        if pos >= n:
            break
        line = lines[pos]
        found = match(line)
        if found is None:
            column = len(line) - len(line.lstrip(" "))
            if column < indent:
                break
            raise _NotFast
        column = len(found.group(1))
        if column != indent:
            if column < indent:
                break
            raise _NotFast
        key = found.group(2)
        if key in out or key.lower() in _RESERVED:
            raise _NotFast
        out[key], pos = _fast_value(lines, pos + 1, found.group(3), indent + 2)
    return out, pos


def _fast_sequence(lines: list[str], pos: int, indent: int) -> tuple[list[Any], int]:
    """An indentless block sequence whose ``- `` are at column ``indent``.

    Returns:
        The list and the position of the first line after it.

    Raises:
        _NotFast: Anything outside the subset.
    """
    out: list[Any] = []
    n = len(lines)
    lead = " " * indent + "- "
    while True:
        pos = _fast_skip(lines, pos)
        if pos >= n or not lines[pos].startswith(lead):
            break
        line = lines[pos]
        rest = line[indent + 2 :]
        found = _FAST_KEY.fullmatch(rest)
        if found is not None and not found.group(1):
            # A mapping item: its first key on the "- " line, the others below it.
            lines[pos] = " " * (indent + 2) + rest  # a private copy (see _fast_load)
            item, pos = _fast_mapping(lines, pos, indent + 2)
            out.append(item)
        else:
            out.append(_fast_scalar(rest))
            pos += 1
    line = lines[pos] if pos < n else ""
    column = len(line) - len(line.lstrip(" "))
    if pos < n and column > indent:
        raise _NotFast  # a continuation line of a scalar item, or an indented sequence
    return out, pos


# Where the top-level entries start: a line at column 0 that is not blank, a comment or "-".
_FAST_TOP = re.compile(r"\n(?=[^ \n#-])")
# A mapping item all of whose lines are "key: scalar" (the first after "- ", the rest at 2).
_FAST_FLAT_ITEM = re.compile(r"(?:- |  )([A-Za-z_][A-Za-z0-9_./@()+=<>,-]{0,999}): (.+)")
#: Parsed top-level entries, and items of top-level sequences, by their text (two memos: an
#: item "- a" is not the entry "- a"): the documents of a store repeat most of them (phases
#: not started, empty totals). Each holds at most _FAST_MEMO_MAX texts.
_FAST_ENTRIES: dict[str, tuple[str, Any, Any]] = {}
_FAST_ITEMS: dict[str, tuple[Any, Any]] = {}
_FAST_MEMO_MAX = 4096


def _fresh(value: Any) -> Any:
    """A copy of a parsed value whose lists and mappings are new (memo values are shared)."""
    kind = type(value)
    if kind is dict:
        return {k: _fresh(v) if type(v) in (dict, list) else v for k, v in value.items()}
    if kind is list:
        return [_fresh(v) if type(v) in (dict, list) else v for v in value]
    return value


def _same(value: Any) -> Any:
    return value


def _copier(value: Any) -> Any:
    """The cheapest function that makes :func:`_fresh` copies of ``value``."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return _same
    if kind is dict and not any(type(v) in (dict, list) for v in value.values()):
        return dict.copy
    if kind is list:
        if not any(type(v) in (dict, list) for v in value):
            return list.copy
        if all(type(v) is dict and _copier(v) is dict.copy for v in value):
            return _copy_flat_dicts
    return _fresh


def _copy_flat_dicts(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item.copy() for item in value]


def _remember(memo: dict[str, Any], text: str, value: Any) -> None:
    if len(memo) >= _FAST_MEMO_MAX:
        memo.clear()
    memo[text] = value


def _fast_item(item: str) -> Any:
    """One item (``- ...`` and its lines) of an indentless sequence at column 0.

    Raises:
        _NotFast: Anything outside the subset.
    """
    cached = _FAST_ITEMS.get(item)
    if cached is not None:
        return cached[1](cached[0])
    lines = item.split("\n")
    pairs = [_FAST_FLAT_ITEM.fullmatch(line) for line in lines]
    value: Any
    if all(pairs) and lines[0][:2] == "- " and all(line[:2] == "  " for line in lines[1:]):
        value = {}
        for found in pairs:
            key = found.group(1)  # type: ignore[union-attr]
            if key in value or key.lower() in _RESERVED:
                raise _NotFast
            value[key] = _fast_scalar(found.group(2))  # type: ignore[union-attr]
    else:
        values, pos = _fast_sequence(lines, 0, 0)
        if pos != len(lines) or len(values) != 1:
            raise _NotFast
        value = values[0]
    copier = _copier(value)
    _remember(_FAST_ITEMS, item, (value, copier))
    return copier(value)


def _fast_entry(chunk: str) -> tuple[str | None, Any]:
    """One top-level entry (its key line, the lines below it, comments before it).

    Returns:
        ``(key, value)``, or ``(None, None)`` for a chunk of blank and comment lines only
        (the lines before the first key).

    Raises:
        _NotFast: Anything outside the subset.
    """
    value: Any
    entry = _FAST_ENTRIES.get(chunk)
    if entry is not None:
        return entry[0], entry[2](entry[1])
    if "\n" not in chunk:
        found = _FAST_KEY.fullmatch(chunk)
        if found is None or found.group(1):
            if not chunk.strip(" ") or chunk.lstrip(" ")[:1] == "#":
                return None, None
            raise _NotFast
        key = found.group(2)
        if key.lower() in _RESERVED:
            raise _NotFast
        rest = found.group(3)
        if rest is not None and rest[:1] == "|":
            raise _NotFast  # a literal with no lines: dump_mapping never writes one
        value = None if rest is None else _fast_scalar(rest)  # "key:" alone: null
        copier = _copier(value)
        _remember(_FAST_ENTRIES, chunk, (key, value, copier))
        return key, copier(value)
    head, sep, items = chunk.partition("\n- ")
    found = _FAST_KEY.fullmatch(head) if sep else None
    if found is not None and not found.group(1) and found.group(3) is None:
        key = found.group(2)
        if key.lower() in _RESERVED:
            raise _NotFast
        value = [_fast_item("- " + item) for item in items.split("\n- ")]
    else:
        lines = chunk.split("\n")
        mapping, pos = _fast_mapping(lines, 0, 0)
        if pos != len(lines) or len(mapping) > 1:
            raise _NotFast
        if not mapping:
            return None, None
        ((key, value),) = mapping.items()
    copier = _copier(value)
    _remember(_FAST_ENTRIES, chunk, (key, value, copier))
    return key, copier(value)


def _keyless(chunk: str) -> bool:
    """Whether a first chunk is only blank and comment lines (no entry)."""
    return all(not line.strip(" ") or line.lstrip(" ")[:1] == "#" for line in chunk.split("\n"))


def fast_load(text: str) -> dict[str, Any] | None:
    """Read the block YAML :func:`dump_mapping` writes, without PyYAML; ``None`` otherwise.

    The subset: a mapping at column 0 of plain keys; values that are ``null``, ``true``,
    ``false``, integers and floats as :func:`emit_scalar` writes them, plain strings that
    :func:`emit_scalar` would leave plain, single-quoted strings, ``{}``, ``[]``, ``|``
    literals, a key with no value (null), nested block mappings and indentless sequences of
    those; blank and comment
    lines between them. Where it returns a mapping, it is equal (types included) to what
    :func:`load` returns; for any other text (including every text :func:`load` refuses) it
    returns ``None``. ``tests/test_documents_yaml.py`` checks both on generated documents, and
    ``tests/test_documents.py`` on every golden document.

    Args:
        text: YAML source that ends with a line break.

    Returns:
        The mapping, or ``None`` when the text is outside the subset.
    """
    if not text.endswith("\n"):
        return None
    if text.isascii():  # the common case: printable ASCII, tabs and line feeds only?
        if not text.replace("\n", "").replace("\t", " ").isprintable():
            return None
    elif _regex(_FAST_REFUSED).search(text) is not None:
        return None
    out: dict[str, Any] = {}
    chunks = _FAST_TOP.split(text[:-1])
    known = _FAST_ENTRIES.get
    same = _same
    try:
        for chunk in chunks:
            entry = known(chunk)  # the hot path: an entry seen before (inlined)
            if entry is None:
                key, value = _fast_entry(chunk)
                if key is None:  # blank and comment lines before the first key
                    if chunk is not chunks[0]:
                        raise _NotFast  # (cannot happen: only the first chunk has no key)
                    continue
            else:
                key, value, copier = entry
                if copier is not same:
                    value = copier(value)
            out[key] = value
    except (_NotFast, RecursionError):
        return None
    if not out or len(out) != len(chunks) - (
        chunks[0] not in _FAST_ENTRIES and _keyless(chunks[0])
    ):
        return None  # a duplicate key (the strict loader names it), or no key at all
    return out
