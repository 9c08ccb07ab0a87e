"""Jinja templates: the one environment factory and the renderer of documents.

Every Jinja environment of mdsessions is made by :func:`environment`: ``StrictUndefined`` (a
misspelt variable is an error, not an empty string), no autoescaping (the output is markdown),
the template's trailing newline kept, and the filters the templates use. A store's own
templates (``.mdsessions/templates/*.md.j2``) are not trusted code and render in Jinja's
``SandboxedEnvironment``.

Each document kind has one template, ``<kind>.md.j2``; it receives the model as ``doc`` and
the frontmatter, already written as YAML by the deterministic emitter, as ``frontmatter``.

Jinja2 is imported when the first :class:`Renderer` is made, not with this module: commands
that only read documents (status, list, show) never pay for it.
"""

from __future__ import annotations

import datetime as _dt
import importlib.resources
import re
import threading
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mdsessions.documents import yaml as _yaml
from mdsessions.documents.kinds import Document, kind_of
from mdsessions.errors import DocumentError
from mdsessions.models.schema import DocumentKind

if TYPE_CHECKING:
    from jinja2 import BaseLoader, Environment

__all__ = ["TEMPLATE_BY_KIND", "Renderer", "environment", "package_template_dir"]

TEMPLATE_BY_KIND = {kind: f"{kind.value}.md.j2" for kind in DocumentKind}
"""The template file that renders each document kind."""


def package_template_dir() -> Path:
    """The default templates: ``mdsessions/templates`` in a wheel, ``templates/`` in a checkout.

    Returns:
        The folder holding the package's ``*.md.j2`` files.
    """
    installed = Path(str(importlib.resources.files("mdsessions"))) / "templates"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "templates"


# --------------------------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------------------------


def _time(value: Any) -> str:
    """A datetime as UTC ISO-8601 with ``Z`` and whole seconds (naive = UTC); ``-`` for none."""
    if value is None:
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return str(value.replace(microsecond=0).isoformat()) + "Z"


def _seconds(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    return f"{number:g}s"


def _quote(value: Any) -> str:
    lines = str(value).splitlines() or [""]
    return "\n".join("> " + line if line else ">" for line in lines)


def _title_case(value: Any) -> str:
    return " ".join(part.capitalize() for part in re.split(r"[_\-\s]+", str(value)) if part)


def _link(target: Any, text: Any = None) -> str:
    """A relative markdown link ``[text](target)`` (``text`` defaults to the target).

    The text's brackets and backslashes are escaped, the target percent-encoded (a space or a
    parenthesis would end it).
    """
    label = re.sub(r"([\\\[\]])", r"\\\1", str(target if text is None else text))
    return f"[{label}]({urllib.parse.quote(str(target), safe='/')})"


_FILTERS = {
    "time": _time,
    "seconds": _seconds,
    "quote": _quote,
    "title_case": _title_case,
    "link": _link,
}


# --------------------------------------------------------------------------------------------
# the environment factory
# --------------------------------------------------------------------------------------------


def environment(loader: BaseLoader, *, sandboxed: bool, html: bool = False) -> Environment:
    """Make a Jinja environment for document templates (the only place one is made).

    Args:
        loader: Where templates are found (e.g. a ``jinja2.FileSystemLoader``).
        sandboxed: ``True`` for templates that are not the package's own (a store's): they
            render in ``jinja2.sandbox.SandboxedEnvironment``, which refuses unsafe attribute
            access. The package's templates are trusted and render without the sandbox's
            per-attribute checks (about 30 % of a render).
        html: ``True`` for the review desk's HTML pages (:mod:`mdsessions.web.render`):
            every value is auto-escaped, and block tags leave no blank lines
            (``trim_blocks``, ``lstrip_blocks``).

    Returns:
        The environment, with ``StrictUndefined``, no autoescaping (unless ``html``), the
        trailing newline kept, no auto-reload and the templates' filters (``time``,
        ``seconds``, ``quote``, ``title_case``, ``link``).
    """
    from jinja2 import Environment, StrictUndefined  # noqa: PLC0415 - see the module docstring
    from jinja2.sandbox import SandboxedEnvironment  # noqa: PLC0415

    factory = SandboxedEnvironment if sandboxed else Environment
    env = factory(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=html,
        keep_trailing_newline=True,
        auto_reload=False,
        trim_blocks=html,
        lstrip_blocks=html,
    )
    env.filters.update(_FILTERS)
    return env


_CONTEXT_DEFAULTS: dict[str, Any] = {
    "next_name": "",  # a checkpoint's next phase's name
    "feedback": "",  # a checkpoint's feedback file, when the phase has one
    "outputs": (),  # a feedback's phase's output files (mdsessions.store.links)
    "checkpoints": (),  # the phase folders of a manifest that hold a checkpoint
}


class Renderer:
    """Renders documents: the package's templates, or a store's that replace some of them.

    Templates are looked up first in ``override_dir`` (a store's ``.mdsessions/templates/``)
    and then in the package's templates. A template from ``override_dir``, with anything it
    includes, renders in the sandbox (see :func:`environment`); the package's own do not.

    Args:
        override_dir: A folder whose ``*.md.j2`` files replace the defaults, or ``None``.

    Attributes:
        overridden: The names of the templates ``override_dir`` replaces (e.g.
            ``checkpoint.md.j2``); empty when it replaces none.
    """

    def __init__(self, override_dir: Path | None = None) -> None:
        from jinja2 import ChoiceLoader, FileSystemLoader  # noqa: PLC0415 - see the module

        self.overridden = frozenset(
            path.name for path in (override_dir.glob("*.md.j2") if override_dir else ())
        )
        package = FileSystemLoader(str(package_template_dir()))
        self._trusted = environment(package, sandboxed=False)
        self._env = self._trusted
        if self.overridden:
            assert override_dir is not None
            self._env = environment(
                ChoiceLoader([FileSystemLoader(str(override_dir)), package]), sandboxed=True
            )
        self._lock = threading.Lock()

    def render(self, doc: Document, **context: Any) -> str:
        """Render a document to markdown text.

        Args:
            doc: The model to render.
            **context: Extra template variables (e.g. ``next_name`` for a checkpoint).

        Returns:
            The full file text, as the kind's template lays it out: for the package's
            templates ``---``, the frontmatter (see :func:`mdsessions.documents.yaml.dump_mapping`),
            ``---``, then the body.

        Raises:
            DocumentError: If the template fails (any exception of a store's template, which
                is foreign code, included).
        """
        from jinja2 import TemplateError  # noqa: PLC0415 - imported with the environment

        name = TEMPLATE_BY_KIND[kind_of(doc)]
        try:
            env = self._env if name in self.overridden else self._trusted
            with self._lock:
                template = env.get_template(name)
            for name_, default in _CONTEXT_DEFAULTS.items():
                context.setdefault(name_, default)
            text: str = template.render(
                doc=doc, frontmatter=_yaml.dump_mapping(doc.frontmatter()), **context
            )
        except TemplateError as exc:
            raise DocumentError(f"template {name} failed: {exc}") from exc
        except Exception as exc:  # a store's template is foreign code: any failure is its own
            raise DocumentError(f"template {name} failed: {type(exc).__name__}: {exc}") from exc
        return text
