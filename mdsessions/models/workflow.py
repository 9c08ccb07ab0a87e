"""Workflow definitions: phases (number, slug, name), their agents, review gates and modes.

The default is ``idea_validation``: the 7 phases of seed 003 with modes ``mvp`` (1, 2, 3, 6, 7)
and ``full`` (1-7).  Other workflows are declared in TOML::

    [workflow]
    name = "idea_validation"
    default_mode = "mvp"

    [modes]
    mvp = [1, 2, 3, 6, 7]
    full = [1, 2, 3, 4, 5, 6, 7]

    [[phases]]
    number = 1
    slug = "concept"
    name = "Concept Expansion"
    review = true
    agents = ["concept_expansion"]

    [agents.concept_expansion]
    python = "sample_project.agents:concept_expansion"   # a callable, or:
    # command = ["llm", "-m", "gpt-4o"]                   # stdin = prompt, stdout = output
    # llm = "gpt-4o-mini"                                 # or a model of the `llm` library
    # timeout = 600                                       # seconds per attempt

    [budget]                                              # optional, per session
    max_cost_usd = 0.50

The agent keys (``system``, ``options``, ``safe_args``, ``max_retries`` …) and ``[budget]`` are
described in :mod:`mdsessions.models.agents`.

``python`` targets are imported with the TOML file's folder (and its parent) on ``sys.path``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdsessions.errors import PhaseNotFoundError, WorkflowError
from mdsessions.models.agents import AgentSpec, Budget, RetryPolicy, parse_agent, parse_budget
from mdsessions.models.schema import ID_PATTERN

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["AgentSpec", "Budget", "PhaseDef", "RetryPolicy", "Workflow", "idea_validation"]


@dataclass(frozen=True)
class PhaseDef:
    """One phase of a workflow.

    Attributes:
        number: 1-based phase number.
        slug: Folder suffix: the folder is ``phase_{number}_{slug}``.
        name: Human name, e.g. ``Concept Expansion``.
        agents: Agent ids run in this phase, in order.
        review: Whether a person reviews the phase before the next one starts.
        description: What the phase is for (given to agents in their prompt).
    """

    number: int
    slug: str
    name: str
    agents: tuple[str, ...] = ()
    review: bool = False
    description: str = ""

    @property
    def directory(self) -> str:
        """``phase_{number}_{slug}`` (seed 003 layout)."""
        return f"phase_{self.number}_{self.slug}"


@dataclass(frozen=True)
class Workflow:
    """A named set of phases with modes that select which phases run.

    Attributes:
        name: Workflow id, recorded in each session manifest.
        phases: All phases, ascending by number.
        modes: Mode name -> phase numbers.
        default_mode: The mode used when none is given.
        agents: Agent id -> how to run it (may be empty for a definition-only workflow).
        source: The TOML file it came from, if any.
        budget: The per-session spending limit (``[budget]``; default: none).
    """

    name: str
    phases: tuple[PhaseDef, ...]
    modes: Mapping[str, tuple[int, ...]]
    default_mode: str
    agents: Mapping[str, AgentSpec] = field(default_factory=dict)
    source: Path | None = None
    budget: Budget = field(default_factory=Budget)

    def __post_init__(self) -> None:
        if not ID_PATTERN.fullmatch(self.name):
            raise WorkflowError(f"workflow name {self.name!r} is not a valid id")
        numbers = [p.number for p in self.phases]
        if not numbers:
            raise WorkflowError(f"workflow {self.name!r} has no phases")
        if len(set(numbers)) != len(numbers):
            raise WorkflowError(f"workflow {self.name!r}: phase numbers repeat: {numbers}")
        if numbers != sorted(numbers):
            raise WorkflowError(f"workflow {self.name!r}: phases must be in ascending order")
        slugs = [p.slug for p in self.phases]
        if len(set(slugs)) != len(slugs):
            raise WorkflowError(f"workflow {self.name!r}: phase slugs repeat: {slugs}")
        for phase in self.phases:
            if phase.number < 1:
                raise WorkflowError(f"workflow {self.name!r}: phase number {phase.number} < 1")
            if (
                not phase.name.strip()
                or len(phase.name.splitlines()) != 1
                or any(c in phase.name for c in "\x85\u2028\u2029")
            ):
                raise WorkflowError(
                    f"workflow {self.name!r}: phase {phase.number} name {phase.name!r} must be "
                    "one line of text"
                )
            if not ID_PATTERN.fullmatch(phase.slug):
                raise WorkflowError(
                    f"workflow {self.name!r}: phase slug {phase.slug!r} is not an id"
                )
            for agent in phase.agents:
                if not ID_PATTERN.fullmatch(agent) or agent in ("checkpoint", "user_feedback"):
                    raise WorkflowError(
                        f"workflow {self.name!r}: phase {phase.number} agent {agent!r} is not a "
                        "valid agent id (and may not be 'checkpoint' or 'user_feedback')"
                    )
        if not self.modes:
            raise WorkflowError(f"workflow {self.name!r} declares no modes")
        for mode, selected in self.modes.items():
            if not ID_PATTERN.fullmatch(mode):
                raise WorkflowError(f"workflow {self.name!r}: mode {mode!r} is not a valid id")
            unknown = sorted(set(selected) - set(numbers))
            if unknown:
                raise WorkflowError(
                    f"workflow {self.name!r}: mode {mode!r} names unknown phases {unknown}"
                )
        if self.default_mode not in self.modes:
            raise WorkflowError(
                f"workflow {self.name!r}: default_mode {self.default_mode!r} is not one of "
                f"{sorted(self.modes)}"
            )

    def phase(self, number: int) -> PhaseDef:
        """Return phase ``number``.

        Raises:
            PhaseNotFoundError: If the workflow has no such phase.
        """
        for phase in self.phases:
            if phase.number == number:
                return phase
        raise PhaseNotFoundError(
            f"phase {number} is not part of workflow {self.name!r} "
            f"(phases: {', '.join(str(p.number) for p in self.phases)})"
        )

    def phases_for(self, mode: str) -> tuple[PhaseDef, ...]:
        """The phases a mode runs, ascending.

        Raises:
            WorkflowError: If the mode is unknown.
        """
        if mode not in self.modes:
            raise WorkflowError(
                f"invalid execution mode {mode!r}; expected one of {', '.join(sorted(self.modes))}"
            )
        selected = set(self.modes[mode])
        return tuple(p for p in self.phases if p.number in selected)

    @classmethod
    def from_toml(cls, path: str | Path) -> Workflow:
        """Load a workflow from a TOML file (format in the module docstring).

        Raises:
            WorkflowError: Naming the file and the key, for a missing or invalid value.
        """
        source = Path(path)
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WorkflowError(f"{source}: workflow file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise WorkflowError(f"{source}: invalid TOML: {exc}") from None
        return cls.from_dict(data, source=source.resolve())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: Path | None = None) -> Workflow:
        """Build a workflow from the parsed TOML mapping.

        Raises:
            WorkflowError: Naming the key at fault.
        """
        where = f"{source}: " if source else ""

        def fail(message: str) -> WorkflowError:
            return WorkflowError(where + message)

        head = data.get("workflow", {})
        if not isinstance(head, Mapping) or not isinstance(head.get("name"), str):
            raise fail('[workflow] name = "..." is required')
        raw_phases = data.get("phases")
        if not isinstance(raw_phases, list) or not raw_phases:
            raise fail("at least one [[phases]] table is required")
        phases = []
        for i, raw in enumerate(raw_phases, 1):
            try:
                phases.append(
                    PhaseDef(
                        number=int(raw["number"]),
                        slug=str(raw["slug"]),
                        name=str(raw["name"]),
                        agents=tuple(str(a) for a in raw.get("agents", ())),
                        review=bool(raw.get("review", False)),
                        description=str(raw.get("description", "")),
                    )
                )
            except KeyError as exc:
                raise fail(f"[[phases]] #{i}: key {exc.args[0]!r} is required") from None
            except (TypeError, ValueError) as exc:
                raise fail(f"[[phases]] #{i}: {exc}") from None
        numbers = tuple(p.number for p in phases)
        raw_modes = data.get("modes") or {"all": list(numbers)}
        if not isinstance(raw_modes, Mapping):
            raise fail("[modes] must map a mode name to a list of phase numbers")
        try:
            modes = {str(k): tuple(int(n) for n in v) for k, v in raw_modes.items()}
        except (TypeError, ValueError):
            raise fail("[modes] values must be lists of phase numbers") from None
        default_mode = str(head.get("default_mode", next(iter(modes))))
        agents: dict[str, AgentSpec] = {}
        raw_agents = data.get("agents", {})
        if not isinstance(raw_agents, Mapping):
            raise fail("[agents] must be a table of agent tables")
        for name, spec in raw_agents.items():
            agents[str(name)] = parse_agent(str(name), spec, fail)
        declared = {a for p in phases for a in p.agents}
        unknown = sorted(set(agents) - declared)
        if unknown:
            raise fail(f"[agents] {unknown} are not used by any phase")
        return cls(
            name=head["name"],
            phases=tuple(phases),
            modes=modes,
            default_mode=default_mode,
            agents=agents,
            source=source,
            budget=parse_budget(data.get("budget"), fail),
        )


_IDEA_VALIDATION_PHASES = (
    PhaseDef(
        1,
        "concept",
        "Concept Expansion",
        ("concept_expansion",),
        True,
        "Expand the raw idea into a structured concept: problem, users, value, features.",
    ),
    PhaseDef(
        2,
        "market_research",
        "Market Research",
        ("market_intelligence", "competitor_analysis"),
        False,
        "Size the market and map the competition.",
    ),
    PhaseDef(
        3,
        "niche_selection",
        "Niche Selection",
        ("niche_selection",),
        True,
        "Pick the niche to enter first and say why.",
    ),
    PhaseDef(
        4,
        "product_strategy",
        "Product Strategy",
        ("product_strategy",),
        False,
        "Define the product: MVP scope, roadmap, positioning.",
    ),
    PhaseDef(
        5,
        "business_planning",
        "Business Planning",
        ("business_planning",),
        False,
        "Business model, pricing, costs and go-to-market.",
    ),
    PhaseDef(
        6,
        "validation",
        "Validation",
        ("risk_assessment",),
        True,
        "List the risks and the cheapest experiments that would test them.",
    ),
    PhaseDef(
        7,
        "synthesis",
        "Final Synthesis",
        ("final_synthesis",),
        False,
        "Pull the phases together into a recommendation.",
    ),
)


def idea_validation(agents: Mapping[str, AgentSpec] | None = None) -> Workflow:
    """The default workflow: seed 003's 7 phases; ``mvp`` = 1, 2, 3, 6, 7 and ``full`` = 1-7.

    Review gates after phases 1 (Concept Expansion), 3 (Niche Selection) and 6 (Validation).

    Args:
        agents: How to run the agents, if known (``None``: a definition only).

    Returns:
        The workflow.
    """
    return Workflow(
        name="idea_validation",
        phases=_IDEA_VALIDATION_PHASES,
        modes={"mvp": (1, 2, 3, 6, 7), "full": (1, 2, 3, 4, 5, 6, 7)},
        default_mode="mvp",
        agents=dict(agents or {}),
    )


def resolve_workflow(
    spec: str | Path | Workflow | None, known: Sequence[Workflow] = ()
) -> Workflow:
    """Turn a workflow argument into a :class:`Workflow`.

    Args:
        spec: A :class:`Workflow`, a path to a TOML file, a known workflow's name, or ``None``
            for ``idea_validation``.
        known: Workflows registered with the store, searched by name.

    Raises:
        WorkflowError: If the name is unknown or the file is invalid.
    """
    if isinstance(spec, Workflow):
        return spec
    if spec is None or spec == "idea_validation":
        for wf in known:
            if wf.name == "idea_validation":
                return wf
        return idea_validation()
    text = str(spec)
    for wf in known:
        if wf.name == text:
            return wf
    if text.endswith(".toml") or Path(text).is_file():
        return Workflow.from_toml(text)
    raise WorkflowError(
        f"unknown workflow {text!r}; give a path to a workflow TOML file or one of: "
        + ", ".join(sorted({"idea_validation", *(w.name for w in known)}))
    )
