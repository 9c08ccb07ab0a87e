"""What every agent gets and may return: :class:`AgentContext`, :class:`AgentResult`, :data:`Agent`.

An agent is any callable ``(AgentContext) -> str | AgentResult``; the kinds shipped here are
:class:`~mdsessions.agents.command.CommandAgent` (an executable) and
:class:`~mdsessions.agents.llm.LlmAgent` (a model of the ``llm`` library).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Agent", "AgentContext", "AgentResult"]


@dataclass(frozen=True)
class AgentContext:
    """Everything an agent gets for one run.

    Attributes:
        idea: The session's input (``idea`` in the manifest), markdown.
        project_id: Project id.
        session_id: Session id.
        phase_number: The phase being run.
        phase_slug: Its slug.
        phase_name: Its name, e.g. ``Concept Expansion``.
        agent_name: This agent's id.
        previous_outputs: Outputs of earlier completed phases: phase → agent → markdown.
        retry_count: 0 on the first run of the phase, + 1 per ``revise``.
        feedback_comments: The reviewer's comments when re-running after ``revise``.
        requested_changes: The reviewer's requested changes (one line each).
        description: What the phase is for (from the workflow).
        system_prompt: The system part of the prompt, for agents that take one (an LLM's
            system message); stored with the output beside :attr:`prompt`.
    """

    idea: str
    project_id: str
    session_id: str
    phase_number: int
    phase_slug: str
    phase_name: str
    agent_name: str
    previous_outputs: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    retry_count: int = 0
    feedback_comments: str | None = None
    requested_changes: Sequence[str] = ()
    description: str = ""
    system_prompt: str = ""

    @property
    def prompt(self) -> str:
        """The full prompt as markdown (what a :class:`CommandAgent` writes to stdin)."""
        parts = [f"# Task: {self.phase_name} (phase {self.phase_number}) — agent {self.agent_name}"]
        if self.description:
            parts.append(self.description)
        parts.append(f"## Idea\n\n{self.idea}")
        if self.previous_outputs:
            parts.append("## Earlier phases")
            for number in sorted(self.previous_outputs):
                for agent, content in self.previous_outputs[number].items():
                    parts.append(f"### Phase {number} — {agent}\n\n{content}")
        if self.feedback_comments or self.requested_changes:
            parts.append(f"## Reviewer feedback (revision {self.retry_count})")
            if self.feedback_comments:
                parts.append(self.feedback_comments)
            if self.requested_changes:
                parts.append(
                    "Requested changes:\n" + "\n".join(f"- {c}" for c in self.requested_changes)
                )
        return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class AgentResult:
    """What an agent may return instead of plain text, with metrics.

    Attributes:
        content: The markdown output (stored verbatim).
        model: Model id.
        input_tokens: Prompt tokens.
        output_tokens: Completion tokens.
        cost: USD, or ``None`` when no price is known for the model (recorded as unknown).
        tools_used: Tool names.
        response_id: The provider's response id (or ``llm:<id>``).
        price_source: Where ``cost`` came from (``genai-prices 0.2.3: openai/gpt-4o-mini``).
        price_date: The UTC date (``YYYY-MM-DD``) the price applies to.
        command: A command agent's program and the arguments the workflow marks safe.
        options: An LLM agent's model options.
    """

    content: str
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = 0.0
    tools_used: Sequence[str] = ()
    response_id: str | None = None
    price_source: str | None = None
    price_date: str | None = None
    command: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


Agent = Callable[[AgentContext], str | AgentResult]
