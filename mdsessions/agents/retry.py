"""Retries of an agent call: exponential backoff with jitter through ``tenacity``.

Only transient failures are tried again — an :class:`AgentExecutionError` marked
``transient`` (a timeout, a provider's rate limit, an exit status the workflow marks
retryable) — up to the agent's ``max_retries``. Every try is recorded
(:class:`~mdsessions.models.schema.AgentAttempt`) so the output's frontmatter shows them.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from mdsessions.agents.base import AgentContext, AgentResult
from mdsessions.errors import AgentExecutionError
from mdsessions.models.agents import RetryPolicy
from mdsessions.models.schema import AgentAttempt, PhaseStatus

__all__ = ["Attempts", "call_with_retries"]


@dataclass
class Attempts:
    """The tries of one agent call, in order."""

    records: list[AgentAttempt] = field(default_factory=list)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _with_stderr(message: str, stderr: str) -> str:
    """The message and the last line of stderr, where a command usually says why."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    return f"{message}: {last}" if last and last not in message else message


def call_with_retries(
    agent: Callable[[AgentContext], str | AgentResult],
    ctx: AgentContext,
    policy: RetryPolicy,
    attempts: Attempts,
    sleep: Callable[[float], None] = time.sleep,
) -> str | AgentResult:
    """Call ``agent``, trying again after a transient failure as ``policy`` allows.

    Args:
        agent: The agent.
        ctx: Its context.
        policy: Max retries and the backoff (seconds).
        attempts: Filled with one record per try (also when the last one fails).
        sleep: How to wait (seconds); tests pass a recorder.

    Returns:
        What the successful try returned.

    Raises:
        AgentExecutionError: The last try's error (not transient, or no retries left).
        Exception: Whatever a Python agent raised (never retried).
    """

    def attempt() -> str | AgentResult:
        started = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
        began = time.monotonic()

        def record(status: PhaseStatus, error: str | None = None, exit: int | None = None) -> None:
            attempts.records.append(
                AgentAttempt(
                    number=len(attempts.records) + 1,
                    started=started,
                    duration=time.monotonic() - began,
                    status=status,
                    exit_status=exit,
                    error=None if error is None else _one_line(error),
                )
            )

        try:
            result = agent(ctx)
        except AgentExecutionError as exc:
            record(PhaseStatus.FAILED, _with_stderr(str(exc), exc.stderr), exc.exit_status)
            raise
        except Exception as exc:
            record(PhaseStatus.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        record(PhaseStatus.COMPLETED)
        return result

    retrying = Retrying(
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=wait_random_exponential(multiplier=policy.retry_delay, max=policy.retry_max_delay),
        retry=retry_if_exception(
            lambda exc: isinstance(exc, AgentExecutionError) and exc.transient
        ),
        sleep=sleep,
        reraise=True,
    )
    return retrying(attempt)  # reraise=True: the last try's own error, never a RetryError
