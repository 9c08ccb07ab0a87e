"""Strict, safe YAML for frontmatter: a loader and a deterministic emitter.

:func:`load` uses only ``yaml.SafeLoader`` machinery (no arbitrary Python objects).  On top of
it the loader refuses anchors/aliases (the "billion laughs" family), duplicate mapping keys
(which PyYAML would silently collapse), deep nesting and oversized input, so that what a person
sees in the file is exactly what the store reads.

:func:`dump_mapping` writes block-style YAML, the same data always as the same bytes.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

MAX_FRONTMATTER_BYTES = 256 * 1024
"""The largest frontmatter block (bytes of YAML) a document may carry."""


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # LibYAML when available


class _StrictLoader(_BaseLoader):  # type: ignore[misc]
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
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _refuse_aliases(text: str) -> None:
    """Reject anchors and aliases (checked on the event stream, before anything is built)."""
    for event in yaml.parse(text, Loader=_BaseLoader):
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


# Timestamps stay strings: the models parse them, so "2024-11-24T10:00:00Z" round-trips as written.
_StrictLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


MAX_DEPTH = 64
"""The deepest nesting frontmatter may have (LibYAML's recursive parser overflows the C stack
on ~10,000 levels: the process would die, so deep input is refused before parsing)."""

_DEEP_BLOCK = re.compile(rf"^ {{{2 * MAX_DEPTH},}}\S|(?:- ){{{MAX_DEPTH},}}", re.MULTILINE)


def _refuse_deep_nesting(text: str) -> None:
    if _DEEP_BLOCK.search(text):
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
                        f"frontmatter is nested more than {MAX_DEPTH} levels deep", line_no - 1
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

    Args:
        text: YAML source (the frontmatter between the ``---`` lines).

    Returns:
        The parsed value (for frontmatter: a ``dict``), or ``None`` for empty text.

    Raises:
        YAMLSyntaxError: On a syntax error, an alias/anchor, a duplicate key or input larger
            than :data:`MAX_FRONTMATTER_BYTES`; ``line`` is 1-based within ``text``.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FRONTMATTER_BYTES:
        raise YAMLSyntaxError(f"frontmatter is larger than {MAX_FRONTMATTER_BYTES} bytes", None)
    _refuse_deep_nesting(text)
    try:
        if "&" in text or "*" in text:
            _refuse_aliases(text)
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
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
_PRINTABLE = re.compile(
    "[\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*"
)
_NEEDS_ESCAPE = re.compile("[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _plain_ok(text: str) -> bool:
    return (
        _PLAIN.fullmatch(text) is not None
        and not text.endswith((" ", ":"))
        and ": " not in text
        and text.lower() not in _RESERVED
    )


def _quoted(text: str) -> str:
    if _NEEDS_ESCAPE.search(text) is None and "\n" not in text:
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
        elif _NEEDS_ESCAPE.match(ch):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _literal_ok(text: str) -> bool:
    if "\n" not in text or text[0] in " \t\n" or _PRINTABLE.fullmatch(text) is None:
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
