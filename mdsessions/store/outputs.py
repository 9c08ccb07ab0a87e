"""Agent outputs and a checkpoint's agent table, built from what a runner passes.

:meth:`Session.save_agent_output <mdsessions.store.session.Session.save_agent_output>` and the
``outputs=[…]`` of :meth:`Session.save_checkpoint
<mdsessions.store.session.Session.save_checkpoint>` build their
:class:`~mdsessions.models.schema.AgentOutput` documents here; a checkpoint saved without
``agents`` gets its agent table from the phase's outputs (:func:`runs_from_outputs`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

from mdsessions.errors import DocumentError, InvalidIdentifierError
from mdsessions.models.schema import AgentOutput, AgentRun, Checkpoint, PhaseEntry, utc_now
from mdsessions.store.checks import build
from mdsessions.store.paths import check_id

__all__ = ["OUTPUT_KEYS", "fill_run_metrics", "new_output", "output_from_spec", "runs_from_outputs"]

#: The keys of an ``outputs`` entry of ``Session.save_checkpoint``.
OUTPUT_KEYS = frozenset(
    {
        "agent",
        "content",
        "status",
        "duration",
        "model",
        "input_tokens",
        "output_tokens",
        "cost",
        "tools_used",
        "executed",
        "retry_count",
        "exit_status",
        "error",
    }
)


def new_output(
    project_id: str,
    session_id: str,
    entry: PhaseEntry,
    agent: str,
    content: str,
    *,
    tools_used: Sequence[str] = (),
    executed: _dt.datetime | str | None = None,
    retry_count: int | None = None,
    **fields: Any,
) -> AgentOutput:
    """Build an agent output of a phase.

    Args:
        project_id: The session's project.
        session_id: The session.
        entry: The phase's manifest row.
        agent: Agent id (the file is ``{agent}.md``).
        content: The agent's markdown, stored verbatim.
        tools_used: Tool names the agent called.
        executed: When it ran (UTC; default now).
        retry_count: Which run of the phase this is (default: the row's retry count).
        **fields: The other keywords of ``Session.save_agent_output`` (``status``,
            ``duration`` in seconds, ``model``, tokens, ``cost`` in USD, ``exit_status``,
            ``error``).

    Returns:
        The output document.

    Raises:
        InvalidIdentifierError: A bad or reserved agent id.
        DocumentError: Content that is not text, or an invalid field (named).
    """
    check_id(agent, "agent id")
    if agent in ("checkpoint", "user_feedback"):
        raise InvalidIdentifierError(f"invalid agent id {agent!r}: the name is reserved")
    if not isinstance(content, str):
        raise DocumentError(
            f"agent output content must be text (str), got {type(content).__name__}"
        )
    return build(
        AgentOutput,
        project_id=project_id,
        session_id=session_id,
        agent=agent,
        phase=entry.number,
        phase_name=entry.name,
        executed=executed or utc_now(),
        tools_used=list(tools_used),
        retry_count=entry.retry_count if retry_count is None else retry_count,
        content=content,
        **fields,
    )


def output_from_spec(
    project_id: str, session_id: str, entry: PhaseEntry, spec: Mapping[str, Any], where: str
) -> AgentOutput:
    """Build an agent output from one ``outputs=[…]`` entry of ``Session.save_checkpoint``.

    Args:
        project_id: The session's project.
        session_id: The session.
        entry: The phase's manifest row.
        spec: ``agent``, ``content`` and any keys of :data:`OUTPUT_KEYS`.
        where: How errors name the entry, e.g. ``outputs[0]``.

    Returns:
        The output document.

    Raises:
        DocumentError: Not a mapping, ``agent``/``content`` missing, an unknown key, or an
            invalid field.
        InvalidIdentifierError: A bad agent id.
    """
    if not isinstance(spec, Mapping):
        raise DocumentError(
            f"{where}: expected a mapping with 'agent' and 'content', got {type(spec).__name__}"
        )
    fields = dict(spec)
    missing = [key for key in ("agent", "content") if key not in fields]
    if missing:
        raise DocumentError(f"{where}: missing {' and '.join(map(repr, missing))}")
    unknown = sorted(set(fields) - OUTPUT_KEYS)
    if unknown:
        raise DocumentError(
            f"{where}: unknown key {unknown[0]!r}; expected agent, content and keywords of "
            "save_agent_output (" + ", ".join(sorted(OUTPUT_KEYS - {"agent", "content"})) + ")"
        )
    agent = fields.pop("agent")
    if not isinstance(agent, str):
        raise InvalidIdentifierError(f"{where}: agent id must be text, got {agent!r}")
    return new_output(project_id, session_id, entry, agent, fields.pop("content"), **fields)


def runs_from_outputs(outputs: Mapping[str, AgentOutput]) -> list[AgentRun]:
    """A checkpoint's agent table from a phase's outputs.

    Args:
        outputs: Agent id → its output (saved, or saved in the same commit).

    Returns:
        One run per output, ordered by file name, with its status, tokens (input, output and
        their sum), cost (USD), duration (seconds) and error.
    """
    runs = []
    for name, out in sorted(outputs.items(), key=lambda item: item[0] + ".md"):
        runs.append(
            AgentRun(
                agent_name=name,
                status=out.status,
                output_file=f"{name}.md",
                model=out.model,
                tokens=out.input_tokens + out.output_tokens,
                input_tokens=out.input_tokens,
                output_tokens=out.output_tokens,
                cost=out.cost or 0.0,
                duration=out.duration,
                error=out.error,
            )
        )
    return runs


def fill_run_metrics(checkpoint: Checkpoint, output: AgentOutput) -> bool:
    """Give a checkpoint's row for ``output``'s agent the output's metrics, if it has none.

    Seed 003's call order saves a phase's checkpoint before its outputs; an output that
    arrives afterwards brings its metrics to the checkpoint (in place).

    Args:
        checkpoint: The phase's saved checkpoint.
        output: The output just saved.

    Returns:
        Whether the checkpoint changed (a row added, or a row without metrics filled in).
    """
    if not (output.input_tokens or output.output_tokens or output.cost):
        return False
    found = next((a for a in checkpoint.agents if a.agent_name == output.agent), None)
    if found is not None and (found.tokens or found.input_tokens or found.output_tokens):
        return False
    run = AgentRun(
        agent_name=output.agent,
        status=found.status if found is not None else output.status,
        output_file=f"{output.agent}.md",
        model=output.model if found is None or found.model is None else found.model,
        tokens=output.input_tokens + output.output_tokens,
        input_tokens=output.input_tokens,
        output_tokens=output.output_tokens,
        cost=output.cost or 0.0,
        duration=output.duration if found is None else (found.duration or output.duration),
        error=output.error if found is None else found.error,
    )
    if found is None:
        checkpoint.agents = [*checkpoint.agents, run]
    else:
        checkpoint.agents = [run if a is found else a for a in checkpoint.agents]
    return True
