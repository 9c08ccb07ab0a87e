"""The base of every result model, and the parts results share.

What the public API returns from a call (a page of versions, a diff, a restore, a pull, a
run …) is a pydantic model derived from :class:`Result`: frozen, each field described by its
docstring (read by the JSON Schema generator, :mod:`mdsessions.cli.schemas`, when it runs —
not at import: pydantic's ``use_attribute_docstrings`` parses each class's module source when
the class is made, 20–70 ms on every command), and printed by the command line's ``--json`` as
``model_dump(mode="json", by_alias=True)`` (:meth:`Result.to_json`). The naming rules of that
JSON (``commit``, ``project``, ``session``, ``phase`` …) are docs/json.md's.

Pure: imports pydantic only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

__all__ = ["Change", "NumberChange", "OpenSessionResult", "Result", "SessionRef", "SessionResult"]


class Result(BaseModel):
    """Base of the result models: frozen, described by field docstrings, JSON by alias."""

    model_config = ConfigDict(frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-ready data, as ``--json`` prints it (docs/json.md).

        Returns:
            ``model_dump(mode="json", by_alias=True)``: times as UTC ISO-8601 text, tuples as
            lists, computed fields included.
        """
        return self.model_dump(mode="json", by_alias=True)


class Change(Result):
    """A text value (a status, a review state) before and after."""

    before: str | None = None
    """The value before (``null``: absent)."""
    after: str | None = None
    """The value after (``null``: absent)."""


class NumberChange(Result):
    """A number (a phase, a count) before and after."""

    before: int | None = None
    """The number before (``null``: none)."""
    after: int | None = None
    """The number after (``null``: none)."""


class SessionRef(Result):
    """A session named by its ids."""

    project: str
    """Project id."""
    session: str
    """Session id."""

    @classmethod
    def of(cls, ref: str) -> SessionRef:
        """The ids of ``project/session``.

        Args:
            ref: ``project/session``.

        Returns:
            The two ids.

        Example:
            >>> SessionRef.of("project-123/session-456").session
            'session-456'
        """
        project, _, session = ref.partition("/")
        return cls(project=project, session=session)


class SessionResult(Result):
    """A result about one session: ``project/session`` in Python, its two ids in the JSON."""

    session: str = Field(exclude=True)
    """``project/session``."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def project(self) -> str:
        """Project id."""
        return self.session.partition("/")[0]

    @computed_field(alias="session")  # type: ignore[prop-decorator]
    @property
    def session_id(self) -> str:
        """Session id."""
        return self.session.partition("/")[2]


class OpenSessionResult(Result):
    """A result that holds an open session (``.session``): its two ids in the JSON.

    Subclasses declare ``session: Session = Field(exclude=True)``; any object with
    ``project_id`` and ``session_id`` attributes serves (models do not import the store).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    session: Any = Field(exclude=True)
    """The session."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def project(self) -> str:
        """Project id."""
        return str(self.session.project_id)

    @computed_field(alias="session")  # type: ignore[prop-decorator]
    @property
    def session_id(self) -> str:
        """Session id."""
        return str(self.session.session_id)
