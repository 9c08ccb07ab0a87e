"""A command agent: an executable that reads the prompt on stdin and writes its output.

What it used reaches the output through the usage protocol (:mod:`mdsessions.agents.usage`).
What is committed of the command is its program's name and the arguments the workflow marks
safe (``safe_args``), never the whole command line: an argument may be a key.

A key belongs in the environment, not in the workflow file (which the store keeps a copy of):
an argument that is exactly ``$NAME`` or ``${NAME}`` is replaced, when the command runs, by
that environment variable (the agent's ``env`` table first), e.g.
``command = ["mytool", "--api-key", "${MYTOOL_API_KEY}"]``.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from mdsessions.agents.base import AgentContext, AgentResult
from mdsessions.agents.pricing import price
from mdsessions.agents.usage import (
    USAGE_ENV,
    UsageReport,
    is_llm,
    llm_argv,
    llm_usage,
    read_usage,
)
from mdsessions.errors import AgentExecutionError, WorkflowError
from mdsessions.redaction import redact

__all__ = ["CommandAgent", "expand_argv", "recorded_command"]

_VARIABLE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")


def expand_argv(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Replace each argument that is exactly ``$NAME`` or ``${NAME}`` by ``env[NAME]``.

    Raises:
        AgentExecutionError: A named variable is not set (its name is given, no value).
    """
    out = []
    for i, arg in enumerate(argv):
        found = _VARIABLE.fullmatch(arg)
        if found is None:
            out.append(arg)
            continue
        name = found.group(1) or found.group(2)
        if name not in env:
            raise AgentExecutionError(
                f"{program_name(argv[0])}: argument {i} names the environment variable ${name}, "
                "which is not set"
            )
        out.append(env[name])
    return out


def program_name(program: str) -> str:
    """The name of a command's program as it may be shown: the last part of its redacted path.

    Redacted before the path is cut, so a secret that holds a ``/`` leaves no piece behind.
    """
    return Path(redact(program)).name


def recorded_command(argv: Sequence[str], safe_args: Sequence[str] = ()) -> str:
    """What may be committed of a command: its program's name and the safe arguments.

    Args:
        argv: The command and its arguments.
        safe_args: Arguments that may be recorded (each occurrence is kept in place).

    Returns:
        e.g. ``llm -m echo [2 arguments not recorded]``.
    """
    safe = set(safe_args)
    kept = [program_name(argv[0])] + [a for a in argv[1:] if a in safe]
    left = sum(1 for a in argv[1:] if a not in safe)
    if left:
        kept.append(f"[{left} argument{'s' if left != 1 else ''} not recorded]")
    return " ".join(kept)


class CommandAgent:
    """Run an executable as an agent: the prompt on stdin, the output from stdout.

    Any LLM command-line client works (``["llm", "-m", "gpt-4o"]``, ``["ollama", "run", "x"]``).
    The program may report its model, tokens and cost by writing a JSON object to the file
    named by ``$MDSESSIONS_USAGE_FILE`` (:mod:`mdsessions.agents.usage`); ``llm`` reports
    through it by itself. A non-zero exit status, a timeout or a missing executable is a
    failure whose exit status and stderr are recorded in the agent output file; a timeout and
    an exit status in ``retry_exit_statuses`` are transient (the runner may try again).

    Args:
        argv: The command and its arguments.
        timeout: Seconds before the command is killed.
        env: Extra environment variables.
        model: The model id recorded when the program reports none (never the command line).
        safe_args: Arguments that may be committed (default: none, only the program's name).
        retry_exit_statuses: Exit statuses that mean "try again later".
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 600.0,
        env: Mapping[str, str] | None = None,
        model: str | None = None,
        safe_args: Sequence[str] = (),
        retry_exit_statuses: Sequence[int] = (),
    ) -> None:
        if not argv:
            raise WorkflowError("a command agent needs a command")
        self.argv = list(argv)
        self.timeout = timeout
        self.env = dict(env or {})
        self.model = model
        self.safe_args = tuple(safe_args)
        self.retry_exit_statuses = frozenset(retry_exit_statuses)

    @property
    def recorded(self) -> str:
        """The command as recorded: program name and safe arguments."""
        return recorded_command(self.argv, self.safe_args)

    def __call__(self, ctx: AgentContext) -> AgentResult:
        """Run the command for one agent context.

        Raises:
            AgentExecutionError: With exit status and stderr on failure (``transient`` for a
                timeout or a retryable exit status), or for an invalid usage report.
        """
        program = program_name(self.argv[0])
        with tempfile.TemporaryDirectory(prefix="mdsessions-usage-") as folder:
            usage_file = Path(folder) / "usage.json"
            env = {
                **os.environ,
                **self.env,
                "MDSESSIONS_AGENT": ctx.agent_name,
                "MDSESSIONS_PHASE": str(ctx.phase_number),
                "MDSESSIONS_PROJECT": ctx.project_id,
                "MDSESSIONS_SESSION": ctx.session_id,
                USAGE_ENV: str(usage_file),
            }
            argv = expand_argv(self.argv, env)
            argv = llm_argv(argv) if is_llm(argv) else argv
            try:
                proc = subprocess.run(
                    argv,
                    input=ctx.prompt.encode("utf-8"),
                    capture_output=True,
                    timeout=self.timeout,
                    env=env,
                    check=False,
                )
            except FileNotFoundError:
                raise AgentExecutionError(
                    f"command not found: {program}",
                    exit_status=127,
                    stderr=f"{program}: command not found",
                ) from None
            except subprocess.TimeoutExpired as exc:
                out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else ""
                err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else ""
                raise AgentExecutionError(
                    f"{program} timed out after {self.timeout:g} s",
                    stdout=out,
                    stderr=err,
                    transient=True,
                ) from None
            stdout = proc.stdout.decode("utf-8", "replace")
            stderr = proc.stderr.decode("utf-8", "replace")
            if proc.returncode != 0:
                raise AgentExecutionError(
                    f"{program} exited with status {proc.returncode}",
                    exit_status=proc.returncode,
                    stdout=stdout,
                    stderr=stderr,
                    transient=proc.returncode in self.retry_exit_statuses,
                )
            report = read_usage(usage_file, program)
        if report is None and is_llm(self.argv):
            report = llm_usage(self.argv, stderr)
        return self._result(stdout, report)

    def _result(self, stdout: str, report: UsageReport | None) -> AgentResult:
        """The output with what the program reported (priced when it gave no cost)."""
        if report is None:
            return AgentResult(content=stdout, model=self.model, command=self.recorded)
        model = report.model or self.model
        cost: float | None = report.cost_usd
        source = date = None
        if cost is None and model and (report.input_tokens or report.output_tokens):
            found = price(
                model, input_tokens=report.input_tokens, output_tokens=report.output_tokens
            )
            cost, source, date = found.cost, found.source, found.date
        elif cost is not None:
            source = f"reported by {program_name(self.argv[0])}"
        return AgentResult(
            content=stdout,
            model=model,
            input_tokens=report.input_tokens,
            output_tokens=report.output_tokens,
            cost=cost if cost is not None or source else 0.0,
            response_id=report.response_id,
            price_source=source,
            price_date=date,
            command=self.recorded,
        )
