"""Strict, safe YAML for frontmatter: load without aliases or duplicate keys; dump scalars.

Only ``yaml.SafeLoader`` machinery is used (no arbitrary Python objects).  On top of it the
loader refuses anchors/aliases (the "billion laughs" family), duplicate mapping keys (which
PyYAML would silently collapse) and oversized input, so that what a person sees in the file
is exactly what the store reads.
"""

from __future__ import annotations

import datetime as _dt
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
    try:
        if "&" in text or "*" in text:
            _refuse_aliases(text)
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "invalid YAML"
        if exc.context_mark is not None and "end of stream" in (exc.problem or ""):
            # An unclosed quote or bracket: where it was opened helps, not where the text ends.
            mark = exc.context_mark
            reason = f"{exc.context} that is never closed ({exc.problem})"
        line = mark.line + 1 if mark is not None else None
        raise YAMLSyntaxError(reason, line) from None
    except yaml.YAMLError as exc:
        raise YAMLSyntaxError(str(exc), None) from None
    except RecursionError:
        raise YAMLSyntaxError("frontmatter is nested too deeply", None) from None


def scalar(value: Any) -> str:
    """Render one value as a single-line YAML flow scalar (deterministic).

    Args:
        value: ``None``, bool, int, float, str, ``datetime`` (rendered UTC with ``Z``), or a
            list/dict of those.

    Returns:
        YAML text without a trailing newline, e.g. ``null``, ``true``, ``'a: b'``, ``[x, y]``.
    """
    if isinstance(value, _dt.datetime):
        return format_time(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    text = yaml.safe_dump(
        value,
        default_flow_style=True,
        allow_unicode=True,
        sort_keys=False,
        width=1_000_000,
    )
    if text.endswith("\n...\n"):
        text = text[: -len("\n...\n")]
    return text.rstrip("\n")


def block(value: Any, indent: int = 0) -> str:
    """Render a list or mapping as block-style YAML (deterministic, keys in given order).

    Args:
        value: A list or dict of plain values.
        indent: Spaces to prefix every line with.

    Returns:
        YAML text ending without a newline; ``[]``/``{}`` for empty containers.
    """
    if not value:
        return "[]" if isinstance(value, list) else "{}"
    text = yaml.safe_dump(
        value, default_flow_style=False, allow_unicode=True, sort_keys=False, width=1_000_000
    ).rstrip("\n")
    pad = " " * indent
    return "\n".join(pad + line for line in text.splitlines())


def format_time(value: _dt.datetime) -> str:
    """Format a datetime as UTC ISO-8601 with ``Z`` and whole seconds (naive = UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat() + "Z"
