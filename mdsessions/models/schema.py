"""Typed models of the four documents and of the values they hold.

Every frontmatter field is declared once, here.  The file formats follow seed 003
(``session_manifest.md``, ``checkpoint.md``, ``{agent_name}.md``, ``user_feedback.md``);
the frontmatter is the machine truth and carries ``schema: mdsessions/<kind>/v1``.

Units: times are UTC ISO-8601 with ``Z`` (``2024-11-24T10:02:00Z``), durations are seconds,
costs are USD, token counts are integers.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)

__all__ = [
    "ID_PATTERN",
    "AgentAttempt",
    "AgentOutput",
    "AgentPrompt",
    "AgentRun",
    "AgentRunDetails",
    "AgentUsage",
    "Checkpoint",
    "DocumentKind",
    "FeedbackAction",
    "ForkOrigin",
    "PhaseEntry",
    "PhaseStatus",
    "ReviewState",
    "SessionManifest",
    "SessionStatus",
    "Totals",
    "Transcript",
    "TranscriptEntry",
    "UserFeedback",
    "utc_now",
]

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""Project, session and agent ids (DESIGN.md "Identifiers")."""


class _ValueEnum(str, Enum):
    """A string enum that prints as its value (``str(SessionStatus.COMPLETED) == "completed"``)."""

    def __str__(self) -> str:
        return str(self.value)


class SessionStatus(_ValueEnum):
    """The status of a whole session (``session_manifest.md`` ``status``)."""

    CREATED = "created"
    IN_PROGRESS = "in_progress"
    AWAITING_REVIEW = "awaiting_review"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"
    PAUSED = "paused"
    """Paused by a person (``mdsessions pause``): the runner leaves it alone until resumed."""
    CANCELLED = "cancelled"
    """Ended (``mdsessions end``) before its last phase; it takes no more writes."""


class PhaseStatus(_ValueEnum):
    """The status of one phase or one agent run (seed 003 ``checkpoint.md`` ``Status``)."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    STALE = "stale"
    """Built on an earlier phase that was revised or restored since: it runs again (and is
    reviewed again) after that phase; the manifest row's ``stale_reason`` says why."""


class ReviewState(_ValueEnum):
    """Where a phase stands with its reviewer.

    ``not_required``: no review gate; ``required``: a gate the phase has not reached yet;
    ``pending``: waiting for the reviewer's decision; then ``approved``, ``revise`` (the phase
    re-runs with the comments) or ``rejected`` (the session ends).
    """

    NOT_REQUIRED = "not_required"
    REQUIRED = "required"
    PENDING = "pending"
    APPROVED = "approved"
    REVISE = "revise"
    REJECTED = "rejected"


class FeedbackAction(_ValueEnum):
    """A reviewer's decision (seed 003 ``user_feedback.md`` ``Action``)."""

    PENDING = "pending"
    APPROVED = "approved"
    REVISE = "revise"
    REJECTED = "rejected"

    @classmethod
    def parse(cls, value: object) -> FeedbackAction:
        """Accept the canonical values and the verbs people type (``approve``, ``reject``).

        Args:
            value: A string such as ``"approved"``, ``"approve"``, ``"revise"``, ``"reject"``.

        Returns:
            The matching action.

        Raises:
            ValueError: For anything else; the message lists the accepted values.
        """
        if isinstance(value, cls):
            return value
        text = str(value).strip().lower() if value is not None else "pending"
        aliases = {
            "approve": cls.APPROVED,
            "accept": cls.APPROVED,
            "accepted": cls.APPROVED,
            "reject": cls.REJECTED,
            "revision": cls.REVISE,
            "revised": cls.REVISE,
            "request_changes": cls.REVISE,
            "changes_requested": cls.REVISE,
            "": cls.PENDING,
            "none": cls.PENDING,
        }
        if text in aliases:
            return aliases[text]
        try:
            return cls(text)
        except ValueError:
            raise ValueError(
                f"expected one of approved, revise, rejected, pending; got {value!r}"
            ) from None


class DocumentKind(_ValueEnum):
    """The document kinds: DESIGN.md's four, an agent's prompt, a transcript (``transcripts/``)."""

    SESSION_MANIFEST = "session_manifest"
    CHECKPOINT = "checkpoint"
    AGENT_OUTPUT = "agent_output"
    USER_FEEDBACK = "user_feedback"
    PROMPT = "prompt"
    TRANSCRIPT = "transcript"


def utc_now() -> _dt.datetime:
    """Return the current time, UTC, whole seconds."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)


def _to_utc(value: _dt.datetime) -> _dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc).replace(microsecond=0)


def _format_time(value: _dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


UTCTime = Annotated[
    _dt.datetime,
    AfterValidator(_to_utc),
    PlainSerializer(_format_time, return_type=str),
]
"""A timestamp stored as UTC ISO-8601 with ``Z``; naive input is taken as UTC."""


def _check_id(value: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise ValueError(
            "expected an id matching [A-Za-z0-9][A-Za-z0-9._-]{0,127} "
            "(no '/', no '..', no leading dot)"
        )
    if ".." in value:
        raise ValueError("an id may not contain '..'")
    return value


Identifier = Annotated[str, AfterValidator(_check_id)]


_NOT_ONE_LINE = "[^\t\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
"""Line breaks (``\\n``, ``\\r``, and U+0085/2028/2029 that YAML breaks at) and control
characters YAML cannot hold unescaped: none may appear in a one-line field. Compiled on first
use (``re``'s cache): compiling it costs ~9 ms, at every import of the models."""


def _single_line(value: str) -> str:
    bad = re.search(_NOT_ONE_LINE, value)
    if bad:
        raise ValueError(
            f"expected a single line of text without control characters "
            f"(found U+{ord(bad.group()):04X} at position {bad.start()})"
        )
    return value


OneLine = Annotated[str, AfterValidator(_single_line)]


def _round_seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False), AfterValidator(_round_seconds)]
USD = Annotated[
    float, Field(ge=0, allow_inf_nan=False), AfterValidator(lambda v: round(float(v), 6))
]
Count = Annotated[int, Field(ge=0)]


def _list_of_strings(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return value


StrList = Annotated[list[OneLine], BeforeValidator(_list_of_strings)]


def _changes(value: Any) -> Any:
    """Requested changes: a change YAML read as ``key: value`` (typed unquoted) is named."""
    value = _list_of_strings(value)
    for n, item in enumerate(value if isinstance(value, list) else [], 1):
        if isinstance(item, dict) and len(item) == 1:
            key, sub = next(iter(item.items()))
            typed = f"{key}: {sub}".replace("'", "''")
            raise ValueError(
                f"change {n} holds ': ', which YAML reads as key: value; quote it: - '{typed}'"
            )
    return value


ChangeList = Annotated[list[OneLine], BeforeValidator(_changes)]


def _metadata(value: Any) -> Any:
    """A ``metadata`` mapping: one-line text keys, JSON-like values kept as they are."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of key: value, got {type(value).__name__}")
    _check_plain(value, "metadata")
    return value


def _check_plain(value: Any, where: str) -> None:
    """Refuse what a frontmatter cannot hold verbatim (names the key path)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.strip():
                raise ValueError(f"{where}: keys must be non-empty text, got {key!r}")
            _single_line(key)
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    elif value is not None and not isinstance(value, str | int | float | bool):
        raise ValueError(
            f"{where}: expected text, a number, true/false, null, a list or a mapping, "
            f"got {type(value).__name__}"
        )


Metadata = Annotated[dict[str, Any], BeforeValidator(_metadata)]
"""Free-form ``key: value`` pairs of a session, kept verbatim (seed 000/002 metadata)."""


def _empty(value: Any) -> bool:
    return not value


def _input_map(value: Any) -> Any:
    """Inputs as ``{path: blob id}``; a list of paths (stores before 0.2) maps to ``""``."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {value: ""} if value.strip() else {}
    if isinstance(value, list | tuple):
        return {str(item): "" for item in value}
    return value


InputMap = Annotated[dict[OneLine, str], BeforeValidator(_input_map)]
"""The documents a phase consumed: store-relative path → blob id (40 hex digits, or ``""``
when not known), the exact text it read being ``git cat-file blob <id>``."""


class _Doc(BaseModel):
    """Shared configuration: strict field names, assignment validated, enums by value."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        populate_by_name=True,
        use_enum_values=False,
        defer_build=True,
    )

    def frontmatter(self) -> dict[str, Any]:
        """Return the frontmatter mapping in declaration order (JSON-compatible values)."""
        data = self.model_dump(mode="json", by_alias=True, exclude=self._body_fields)
        return data

    _body_fields: ClassVar[set[str]] = set()


class Totals(_Doc):
    """Token, cost and time totals of a session: the sum of its phases' latest checkpoints."""

    tokens: Count = 0
    input_tokens: Count = 0
    output_tokens: Count = 0
    cost: USD = 0.0
    duration: Seconds = 0.0


class ForkOrigin(_Doc):
    """Where a forked session came from: the source session and the commit it was taken at."""

    session: str
    commit: str


class AgentUsage(_Doc):
    """One agent of a phase's latest checkpoint, as the manifest's phase row keeps it.

    What ``stats --by model|agent`` reads without opening a checkpoint.
    """

    name: Identifier
    model: OneLine | None = Field(default=None, exclude_if=lambda value: value is None)
    status: PhaseStatus = PhaseStatus.COMPLETED
    input_tokens: Count = 0
    output_tokens: Count = 0
    tokens: Count = 0
    cost: USD = 0.0
    duration: Seconds | None = None


class PhaseEntry(_Doc):
    """One row of the manifest's phase table (seed 003 ``session_manifest.md`` Phase Status)."""

    number: Annotated[int, Field(ge=1)]
    slug: str
    name: str
    status: PhaseStatus = PhaseStatus.PENDING
    review: ReviewState = ReviewState.NOT_REQUIRED
    started: UTCTime | None = None
    completed: UTCTime | None = None
    duration: Seconds | None = None
    retry_count: Count = 0
    tokens: Count = 0
    input_tokens: Count = 0
    output_tokens: Count = 0
    cost: USD = 0.0
    # Written only while the phase is stale: manifests of sessions with no stale phase stay
    # byte for byte what earlier versions wrote (and read).
    stale_reason: OneLine | None = Field(default=None, exclude_if=lambda value: value is None)
    # One entry per agent of the phase's latest checkpoint; left out when there is none.
    agents: list[AgentUsage] = Field(default_factory=list, exclude_if=lambda value: not value)

    @property
    def directory(self) -> str:
        """The phase folder name, ``phase_{number}_{slug}`` (seed 003 layout)."""
        return f"phase_{self.number}_{self.slug}"


class SessionManifest(_Doc):
    """``session_manifest.md``: the state of one session (seed 003)."""

    schema_: Literal["mdsessions/session_manifest/v1"] = Field(
        "mdsessions/session_manifest/v1", alias="schema"
    )
    project_id: Identifier
    session_id: Identifier
    user_id: OneLine | None = None
    workflow: Identifier = "idea_validation"
    mode: Identifier = "mvp"
    status: SessionStatus = SessionStatus.CREATED
    created: UTCTime
    updated: UTCTime
    # Written only once a session uses them: manifests of sessions that never do stay byte
    # for byte what earlier versions wrote (and read).
    paused: UTCTime | None = Field(default=None, exclude_if=_empty)
    """When the session was paused (UTC); ``null`` unless it is paused now."""
    ended: UTCTime | None = Field(default=None, exclude_if=_empty)
    """When the session was ended with ``end`` (UTC)."""
    end_reason: OneLine | None = Field(default=None, exclude_if=_empty)
    """Why it was ended (one line)."""
    current_phase: int | None = None
    phases: list[PhaseEntry] = Field(default_factory=list)
    tags: StrList = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict, exclude_if=_empty)
    """Free-form ``key: value`` pairs (``--meta key=value``), kept verbatim."""
    totals: Totals = Field(default_factory=Totals)
    forked_from: ForkOrigin | None = None
    idea: str | None = None
    notes: str = ""

    _body_fields: ClassVar[set[str]] = {"notes"}

    def phase(self, number: int) -> PhaseEntry:
        """Return the manifest row of phase ``number``.

        Raises:
            KeyError: If the phase is not part of this session's mode.
        """
        for entry in self.phases:
            if entry.number == number:
                return entry
        raise KeyError(number)

    @property
    def completed_phases(self) -> list[int]:
        """Phase numbers whose status is ``completed``, ascending."""
        return [p.number for p in self.phases if p.status is PhaseStatus.COMPLETED]

    @property
    def approved_phases(self) -> list[int]:
        """Phase numbers a reviewer approved, ascending."""
        return [p.number for p in self.phases if p.review is ReviewState.APPROVED]


class AgentRun(_Doc):
    """One agent's line in a checkpoint (seed 003 ``save_checkpoint(agents=[...])``)."""

    agent_name: Identifier
    status: PhaseStatus = PhaseStatus.COMPLETED
    output_file: OneLine | None = None
    # The model the agent ran (its output's ``model``); left out when not known.
    model: OneLine | None = Field(default=None, exclude_if=lambda value: value is None)
    tokens: Count = 0
    input_tokens: Count = 0
    output_tokens: Count = 0
    cost: USD = 0.0
    duration: Seconds | None = None
    error: str | None = None


class Checkpoint(_Doc):
    """``phase_N_slug/checkpoint.md``: the state of one phase (seed 003 checkpoint.md)."""

    schema_: Literal["mdsessions/checkpoint/v1"] = Field("mdsessions/checkpoint/v1", alias="schema")
    project_id: Identifier
    session_id: Identifier
    phase: Annotated[int, Field(ge=1)]
    phase_name: OneLine
    phase_slug: Identifier
    status: PhaseStatus
    started: UTCTime | None = None
    completed: UTCTime | None = None
    duration: Seconds | None = None
    retry_count: Count = 0
    execution_mode: OneLine = "single"
    agents: list[AgentRun] = Field(default_factory=list)
    inputs: InputMap = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    next_phase: int | None = None
    notes: str = ""

    _body_fields: ClassVar[set[str]] = {"notes"}

    @property
    def total_input_tokens(self) -> int:
        """Sum of the agents' input tokens."""
        return sum(a.input_tokens for a in self.agents)

    @property
    def total_output_tokens(self) -> int:
        """Sum of the agents' output tokens."""
        return sum(a.output_tokens for a in self.agents)

    @property
    def total_tokens(self) -> int:
        """Sum of the agents' tokens (``tokens``, or input + output when that is 0)."""
        return sum(a.tokens or (a.input_tokens + a.output_tokens) for a in self.agents)

    @property
    def total_cost(self) -> float:
        """Sum of the agents' cost in USD."""
        return round(sum(a.cost for a in self.agents), 6)


def _absent(value: Any) -> bool:
    """Frontmatter fields of issue 15 are left out while empty (older outputs keep their bytes)."""
    return value is None or value == [] or value == {}


class AgentAttempt(_Doc):
    """One try of an agent call (``attempts:`` of an output that needed more than one).

    Source: issue 15 item 6 (seed 001 ``execute_command(timeout, max_retries, retry_delay)``).
    """

    number: Annotated[int, Field(ge=1)]
    started: UTCTime
    duration: Seconds
    status: PhaseStatus
    exit_status: int | None = Field(default=None, exclude_if=_absent)
    error: OneLine | None = Field(default=None, exclude_if=_absent)


class AgentRunDetails(_Doc):
    """What an LLM or command agent's run adds to its output (``Session.save_agent_output``).

    Attributes are the issue-15 fields of :class:`AgentOutput`, same names and units.
    """

    response_id: OneLine | None = None
    price_source: OneLine | None = None
    price_date: OneLine | None = None
    command: OneLine | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    attempts: list[AgentAttempt] = Field(default_factory=list)


class AgentOutput(_Doc):
    """``phase_N_slug/{agent}.md``: one agent's output, content verbatim (seed 003).

    ``cost`` is ``null`` when no price is known for the model (a wrong figure is worse than
    none). The fields after ``error`` (issue 15) are written only when they hold something:
    ``response_id`` (the provider's, or ``llm:<id>`` when the provider gives none),
    ``price_source`` and ``price_date`` (where the cost came from, the UTC date it applies
    to), ``command`` (a command agent's program and the arguments the workflow marks safe),
    ``options`` (an LLM agent's model options) and ``attempts`` (every try, when there were
    several).
    """

    schema_: Literal["mdsessions/agent_output/v1"] = Field(
        "mdsessions/agent_output/v1", alias="schema"
    )
    project_id: Identifier
    session_id: Identifier
    agent: Identifier
    phase: Annotated[int, Field(ge=1)]
    phase_name: OneLine
    executed: UTCTime
    duration: Seconds | None = None
    status: PhaseStatus = PhaseStatus.COMPLETED
    model: OneLine | None = None
    input_tokens: Count = 0
    output_tokens: Count = 0
    cost: USD | None = 0.0
    tools_used: StrList = Field(default_factory=list)
    retry_count: Count = 0
    exit_status: int | None = None
    error: str | None = None
    response_id: OneLine | None = Field(default=None, exclude_if=_absent)
    price_source: OneLine | None = Field(default=None, exclude_if=_absent)
    price_date: OneLine | None = Field(default=None, exclude_if=_absent)
    command: OneLine | None = Field(default=None, exclude_if=_absent)
    options: dict[str, Any] = Field(default_factory=dict, exclude_if=_absent)
    attempts: list[AgentAttempt] = Field(default_factory=list, exclude_if=_absent)
    content: str = ""

    _body_fields: ClassVar[set[str]] = {"content"}


class AgentPrompt(_Doc):
    """``phase_N_slug/prompts/{agent}.md``: the exact prompt an agent was given.

    Written in the same commit as the agent's output, so every output can be audited and its
    run repeated: ``system`` is the system part (empty for agents that take one text), the
    body's ``## User`` section holds the user part **verbatim** to the end of the file, and
    ``inputs`` names each earlier output the prompt was built from with its blob id (the
    commit that holds that exact text is in the history).
    """

    schema_: Literal["mdsessions/prompt/v1"] = Field("mdsessions/prompt/v1", alias="schema")
    project_id: Identifier
    session_id: Identifier
    agent: Identifier
    phase: Annotated[int, Field(ge=1)]
    phase_name: OneLine
    created: UTCTime
    retry_count: Count = 0
    system: str = ""
    inputs: InputMap = Field(default_factory=dict)
    user: str = ""

    _body_fields: ClassVar[set[str]] = {"user"}


class UserFeedback(_Doc):
    """``phase_N_slug/user_feedback.md``: a reviewer's decision and comments (seed 003)."""

    schema_: Literal["mdsessions/user_feedback/v1"] = Field(
        "mdsessions/user_feedback/v1", alias="schema"
    )
    project_id: Identifier
    session_id: Identifier
    phase: Annotated[int, Field(ge=1)]
    phase_name: OneLine
    reviewed: bool = Field(default=False, exclude_if=_empty)
    """Seed 003's flag; written only when true (the decision is ``approved``/``action``)."""
    approved: bool = False
    action: Annotated[FeedbackAction, BeforeValidator(FeedbackAction.parse)] = (
        FeedbackAction.PENDING
    )
    timestamp: UTCTime | None = Field(default=None, exclude_if=_absent)
    """When a program decided (``mdsessions feedback``); a person's decision's time is its
    commit's, so a file a person edits carries none."""
    retry_count: Count = 0
    requested_changes: ChangeList = Field(default_factory=list)
    """The changes asked for, one each: a YAML block list (``- `` lines) under the key, which
    is written last in the frontmatter; an empty key (``requested_changes:``) is none."""
    reviewer: OneLine | None = Field(default=None, exclude_if=_absent)
    """Who decided, when the person wrote it; otherwise the decision's commit author is."""
    comments: str = ""

    _body_fields: ClassVar[set[str]] = {"comments"}

    def frontmatter(self) -> dict[str, Any]:
        """The frontmatter mapping, ``requested_changes`` last (a person types under it)."""
        data = super().frontmatter()
        data["requested_changes"] = data.pop("requested_changes")
        return data

    def decision(self) -> FeedbackAction:
        """The decision this file expresses, reconciling ``approved`` and ``action``.

        ``approved: true`` alone means approved; ``action: revise``/``rejected`` must not be
        combined with ``approved: true``.

        Raises:
            ValueError: When ``approved`` and ``action`` contradict each other.
        """
        if self.action is FeedbackAction.PENDING:
            return FeedbackAction.APPROVED if self.approved else FeedbackAction.PENDING
        if self.approved and self.action is not FeedbackAction.APPROVED:
            raise ValueError(
                f"'approved: true' contradicts 'action: {self.action.value}'; "
                "set approved: false to ask for a revision or to reject"
            )
        return self.action


# --------------------------------------------------------------------------------------------
# transcripts (seeds 002 record_message/record_command, 004 conversation history)
# --------------------------------------------------------------------------------------------

ROLE_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
"""A transcript message's role: ``user``, ``assistant``, ``system``, ``tool``, ``command`` …"""


def _check_role(value: str) -> str:
    if not ROLE_PATTERN.fullmatch(value):
        raise ValueError(
            "expected a role of 1-32 lower-case letters, digits, '_' or '-' starting with a "
            "letter, such as user, assistant, system, tool or command"
        )
    return value


Role = Annotated[str, AfterValidator(_check_role)]

DEFAULT_CONTEXT_LIMIT = 120_000
"""Tokens of context a transcript is measured against unless told otherwise (seed 004
``max_context_tokens``)."""


_ENTRY_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def _entry_time(value: Any) -> str:
    """A time as UTC ISO-8601 text with ``Z`` (a datetime, or text ``fromisoformat`` reads)."""
    if type(value) is str and _ENTRY_TIME.fullmatch(value):
        try:  # the common case, text as written: only check that the date is real
            _dt.datetime.fromisoformat(value[:-1])
        except ValueError:
            pass
        else:
            return value
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(
                value[:-1] + "+00:00" if value[-1:] == "Z" else value
            )
        except ValueError:
            raise ValueError(
                f"expected a UTC ISO-8601 time such as 2024-11-24T10:02:00Z, got {value!r}"
            ) from None
    if isinstance(value, _dt.datetime):
        return _format_time(_to_utc(value))
    raise ValueError(f"expected a UTC ISO-8601 time such as 2024-11-24T10:02:00Z, got {value!r}")


EntryTime = Annotated[str, BeforeValidator(_entry_time)]
"""A time kept as its text, ``2024-11-24T10:02:00Z`` (a datetime given is converted): a
transcript of 10,000 messages then costs no datetime formatting when it is written."""


class TranscriptEntry(_Doc):
    """One message (or command) of a transcript: a section of its body.

    ``number`` counts from 1 over the transcript's whole life and is never reused, so a
    message removed by a prune keeps its number in history (``transcript show --at``).
    ``tokens`` is what the caller reported (a provider's usage) or, when it reported none,
    the estimate ``ceil(len(content) / 4)`` (seed 004 "Characters ÷ 4 = tokens").
    ``content`` is stored **verbatim**: never a template, byte for byte.
    """

    number: Annotated[int, Field(ge=1)]
    """The message's number, from 1, never reused (a pruned message keeps its number)."""
    role: Role
    """``user``, ``assistant``, ``system``, ``tool``, ``command`` (a command that was run) …"""
    time: EntryTime
    """When it was recorded, UTC ISO-8601."""
    tokens: Count = 0
    """Its tokens: a provider's count, else characters ÷ 4."""
    content: str = ""
    """The text, verbatim."""


class Transcript(_Doc):
    """``transcripts/{name}.md`` in a session folder: an agent's (or the session's) conversation.

    The frontmatter holds the figures (message and token counts, the context limit, what was
    pruned); the body holds one section per message, each introduced by a marker line
    ``<!-- {boundary} -->`` and a heading ``### {number} · {role} · {time} · {tokens} tokens``.
    ``boundary`` is chosen so that no message contains it (as a MIME multipart boundary is),
    which is what lets any text, our own headings and ``---`` lines included, round-trip.
    """

    schema_: Literal["mdsessions/transcript/v1"] = Field("mdsessions/transcript/v1", alias="schema")
    project_id: Identifier
    """Project id."""
    session_id: Identifier
    """Session id."""
    name: Identifier
    """The transcript's name: an agent id, or ``session``; the file is ``{name}.md``."""
    created: UTCTime
    """When its first message was committed, UTC ISO-8601."""
    updated: UTCTime
    """When it was last committed, UTC ISO-8601."""
    context_limit: Annotated[int, Field(ge=1)] = DEFAULT_CONTEXT_LIMIT
    """Tokens of context it is measured against (seed 004 ``max_context_tokens``)."""
    boundary: Annotated[str, Field(pattern=r"^mdsessions-message(-[0-9]+)?$")] = (
        "mdsessions-message"
    )
    """The word of the body's marker lines ``<!-- {boundary} -->``: one no message holds."""
    message_count: Count = 0
    """Messages in the file."""
    token_count: Count = 0
    """Their tokens."""
    next_number: Annotated[int, Field(ge=1)] = 1
    """The number the next message gets."""
    pruned_count: Count = 0
    """Messages removed by prunes so far (each still in history)."""
    last_pruned: UTCTime | None = Field(default=None, exclude_if=lambda value: value is None)
    """When it was last pruned, UTC ISO-8601 (left out until it is)."""
    entries: list[TranscriptEntry] = Field(default_factory=list)
    """The messages, oldest first: the body's sections."""

    _body_fields: ClassVar[set[str]] = {"entries"}
