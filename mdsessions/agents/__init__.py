"""Agents the runner can run, and what they report (issue 15 items 1, 2 and 6).

* :mod:`~mdsessions.agents.base` — :class:`AgentContext`, :class:`AgentResult`, ``Agent``;
* :mod:`~mdsessions.agents.command` — an executable as an agent, its recorded command line;
* :mod:`~mdsessions.agents.llm` — a model of the ``llm`` library as an agent;
* :mod:`~mdsessions.agents.usage` — the usage protocol for command agents;
* :mod:`~mdsessions.agents.pricing` — cost in USD from ``genai-prices``;
* :mod:`~mdsessions.agents.retry` — retries with backoff and jitter (``tenacity``);
* :mod:`~mdsessions.agents.budget` — a session's budget checked before each phase.
"""
