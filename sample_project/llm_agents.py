"""The sample workflow's agents as LLM calls through the ``llm`` library (``mdsessions[llm]``).

``demo.py --agents llm --model echo`` runs every agent as an :class:`mdsessions.LlmAgent`
(in-process); ``--agents llm-command`` runs the ``llm`` command-line client as a
:class:`mdsessions.CommandAgent` instead, which reports its usage through the runner's usage
protocol. Offline, the ``llm-echo`` plugin's ``echo`` model answers with the prompt it got; with a
real model (``--model gpt-4o-mini``) the API key comes from the environment
(``OPENAI_API_KEY``) or ``llm keys set openai`` — never from a file in the store.
``workflow-llm.toml`` declares the same agents for ``mdsessions run``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sample_project.agents import PHASE_AGENTS

if TYPE_CHECKING:
    from mdsessions.agents.base import Agent

__all__ = ["SYSTEM_PROMPTS", "llm_agents"]

SYSTEM_PROMPTS: dict[str, str] = {
    "concept_expansion": "You expand a raw startup idea into a concept: problem, users, "
    "value and features. Answer in markdown.",
    "market_intelligence": "You size the market for a startup idea. Answer in markdown.",
    "competitor_analysis": "You map the competition of a startup idea. Answer in markdown.",
    "niche_selection": "You pick the niche a startup should enter first, and say why.",
    "product_strategy": "You define the MVP scope, roadmap and positioning of a product.",
    "business_planning": "You write the business model, pricing, costs and go-to-market.",
    "risk_assessment": "You list the risks of a startup idea and the cheapest experiments "
    "that would test them.",
    "final_synthesis": "You pull a validation's phases together into a recommendation.",
}
"""The system prompt of each agent of the sample workflow."""


def _llm_program() -> str:
    beside = Path(sys.executable).with_name("llm")
    return str(beside) if beside.exists() else (shutil.which("llm") or "llm")


def llm_agents(kind: str, model: str) -> dict[str, Agent]:
    """The sample workflow's agents as ``llm`` calls.

    Args:
        kind: ``llm`` (the library, in-process) or ``llm-command`` (the ``llm`` program).
        model: An ``llm`` model id (``echo`` offline, ``gpt-4o-mini`` …).

    Returns:
        Agent id → agent, for every agent of the workflow.

    Raises:
        ValueError: For another ``kind``.
    """
    from mdsessions import CommandAgent, LlmAgent

    names = [name for agents in PHASE_AGENTS.values() for name in agents]
    if kind == "llm":
        return {name: LlmAgent(model, system=SYSTEM_PROMPTS[name]) for name in names}
    if kind == "llm-command":
        program = _llm_program()
        return {
            name: CommandAgent(
                [program, "-m", model, "-s", SYSTEM_PROMPTS[name]],
                safe_args=["-m", model],
                retry_exit_statuses=(),
            )
            for name in names
        }
    raise ValueError(f"unknown agent kind {kind!r}; expected llm or llm-command")
