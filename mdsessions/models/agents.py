"""How a workflow declares its agents, their retries and the session's budget (TOML tables).

An agent is one of three kinds (issue 15 items 1, 2 and 6)::

    [agents.concept_expansion]
    python = "sample_project.agents:concept_expansion"  # a callable, or
    # command = ["llm", "-m", "gpt-4o-mini"]            # an executable: prompt on stdin, or
    # llm = "gpt-4o-mini"                               # a model of the `llm` library
    system = "You are a product strategist."            # llm: the system prompt
    options = { temperature = 0.2 }                     # llm: the model's options
    safe_args = ["-m", "gpt-4o-mini"]                   # command: arguments that may be committed
    timeout = 600                                       # command: seconds per attempt
    max_retries = 2                                     # tries after a transient failure
    retry_exit_statuses = [75]                          # command: exit statuses worth a retry
    retry_delay = 1.0                                   # seconds: first wait's bound, doubled
    retry_max_delay = 60.0                              # seconds: the longest wait

    [budget]                                            # per session, checked before each phase
    max_cost_usd = 0.50
    max_tokens = 200000

A command's arguments are never committed: its output records the program's name and only the
arguments listed in ``safe_args`` (``command = "llm -m echo [1 argument not recorded]"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AgentSpec", "Budget", "RetryPolicy", "parse_agent", "parse_budget"]


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often an agent call is tried again (exponential backoff with jitter).

    Attributes:
        max_retries: Tries after the first, for transient failures only (0: none).
        retry_exit_statuses: A command's exit statuses that count as transient.
        retry_delay: Seconds: the wait after try n is random in
            ``[0, min(retry_max_delay, retry_delay * 2 ** (n - 1))]`` (full jitter).
        retry_max_delay: Seconds: no wait is longer.
    """

    max_retries: int = 0
    retry_exit_statuses: tuple[int, ...] = ()
    retry_delay: float = 1.0
    retry_max_delay: float = 60.0


@dataclass(frozen=True)
class Budget:
    """A session's spending limit; the runner stops before a phase that would exceed it.

    Attributes:
        max_cost_usd: USD, or ``None`` for no limit.
        max_tokens: Tokens (input + output), or ``None`` for no limit.
    """

    max_cost_usd: float | None = None
    max_tokens: int | None = None

    @property
    def limited(self) -> bool:
        """Whether any limit is set."""
        return self.max_cost_usd is not None or self.max_tokens is not None


@dataclass(frozen=True)
class AgentSpec:
    """How to run one agent: a Python callable, an executable or an `llm` model.

    Attributes:
        name: The agent id (also its output file name, ``{name}.md``).
        python: ``"module:function"``, or ``None``.
        command: argv of an executable that reads the prompt on stdin, or ``None``.
        timeout: Seconds one attempt of a command agent may run.
        model: A model label recorded in the output's frontmatter (an LLM agent: its id).
        env: Extra environment variables for a command agent.
        llm: The `llm` library's model id (``"gpt-4o-mini"``, ``"echo"``), or ``None``.
        system: The system prompt of an LLM agent.
        options: The model's options (``temperature`` …), recorded in the output.
        safe_args: Arguments of ``command`` that may be committed (the rest never are).
        retry: When to try again.
    """

    name: str
    python: str | None = None
    command: tuple[str, ...] | None = None
    timeout: float = 600.0
    model: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    llm: str | None = None
    system: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    safe_args: tuple[str, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def _number(
    spec: Mapping[str, Any], key: str, default: float, fail: Callable[[str], Exception], where: str
) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise fail(f"{where} {key} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _strings(value: Any, key: str, fail: Callable[[str], Exception], where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise fail(f"{where} {key} must be a list of strings")
    return tuple(value)


def parse_agent(name: str, spec: Any, fail: Callable[[str], Exception]) -> AgentSpec:
    """Build an :class:`AgentSpec` from one ``[agents.NAME]`` table (format in the docstring).

    Args:
        name: The agent id.
        spec: The parsed table.
        fail: Makes the error to raise from a message (it prefixes the file).

    Raises:
        WorkflowError: From ``fail``, naming the key at fault and what was expected.
    """
    where = f"[agents.{name}]"
    if not isinstance(spec, Mapping):
        raise fail(f"{where} must be a table")
    kinds = [k for k in ("python", "command", "llm") if spec.get(k) is not None]
    if len(kinds) != 1:
        raise fail(
            f'{where} needs exactly one of python = "module:function", command = [...] or '
            'llm = "model-id"' + (f" (found {', '.join(kinds)})" if kinds else "")
        )
    python, llm = spec.get("python"), spec.get("llm")
    if python is not None and (not isinstance(python, str) or ":" not in python):
        raise fail(f'{where} python must be "module:function", got {python!r}')
    if llm is not None and (not isinstance(llm, str) or not llm.strip()):
        raise fail(f'{where} llm must be a model id such as "gpt-4o-mini", got {llm!r}')
    command = spec.get("command")
    if command is not None:
        command = _strings(command, "command", fail, where)
        if not command:
            raise fail(f"{where} command must be a non-empty list of strings")
    env, options = spec.get("env", {}), spec.get("options", {})
    if not isinstance(env, Mapping):
        raise fail(f"{where} env must be a table of strings")
    if not isinstance(options, Mapping):
        raise fail(f"{where} options must be a table (e.g. {{ temperature = 0.2 }})")
    system, model = spec.get("system", ""), spec.get("model")
    if not isinstance(system, str):
        raise fail(f"{where} system must be a string (the system prompt)")
    if model is not None and not isinstance(model, str):
        raise fail(f"{where} model must be a string")
    retries = spec.get("max_retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise fail(f"{where} max_retries must be an integer >= 0, got {retries!r}")
    statuses = spec.get("retry_exit_statuses", [])
    if not isinstance(statuses, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in statuses
    ):
        raise fail(f"{where} retry_exit_statuses must be a list of integers")
    return AgentSpec(
        name=str(name),
        python=python,
        command=command,
        timeout=_number(spec, "timeout", 600.0, fail, where),
        model=model if model is not None else llm,
        env={str(k): str(v) for k, v in env.items()},
        llm=llm,
        system=system,
        options=dict(options),
        safe_args=_strings(spec.get("safe_args", []), "safe_args", fail, where),
        retry=RetryPolicy(
            max_retries=retries,
            retry_exit_statuses=tuple(statuses),
            retry_delay=_number(spec, "retry_delay", 1.0, fail, where),
            retry_max_delay=_number(spec, "retry_max_delay", 60.0, fail, where),
        ),
    )


def parse_budget(raw: Any, fail: Callable[[str], Exception]) -> Budget:
    """Build a :class:`Budget` from the ``[budget]`` table (absent: no limit).

    Raises:
        WorkflowError: From ``fail``, naming the key at fault.
    """
    if raw is None:
        return Budget()
    if not isinstance(raw, Mapping):
        raise fail("[budget] must be a table (max_cost_usd = 0.5, max_tokens = 100000)")
    unknown = sorted(set(raw) - {"max_cost_usd", "max_tokens"})
    if unknown:
        raise fail(f"[budget] has unknown keys {unknown}; expected max_cost_usd, max_tokens")
    cost, tokens = raw.get("max_cost_usd"), raw.get("max_tokens")
    if cost is not None and (
        isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0
    ):
        raise fail(f"[budget] max_cost_usd must be a number of USD >= 0, got {cost!r}")
    if tokens is not None and (
        isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0
    ):
        raise fail(f"[budget] max_tokens must be an integer >= 0, got {tokens!r}")
    return Budget(
        max_cost_usd=float(cost) if cost is not None else None,
        max_tokens=tokens,
    )
