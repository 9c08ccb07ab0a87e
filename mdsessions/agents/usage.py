"""The usage protocol: how any executable run as a command agent reports what it used.

The runner sets ``MDSESSIONS_USAGE_FILE`` to the path of a file that does not exist yet (in
a temporary folder outside the store). A program that wants its usage recorded writes one
JSON object there before it exits::

    {"model": "gpt-4o-mini", "input_tokens": 812, "output_tokens": 455,
     "cost_usd": 0.00039, "response_id": "chatcmpl-9x…"}

Every key is optional; ``cost_usd`` left out is computed from the model and the tokens
(``genai-prices``), and a model without a known price gets no cost. Unknown keys are an error
(a typo must not silently drop a figure). A program that writes nothing records no usage.

The ``llm`` command-line client reports through the same protocol: the runner gives it
``-u`` (``--usage``) and turns the ``Token usage: N input, M output`` line it prints on
stderr into this object, with the model of its ``-m`` argument.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mdsessions.errors import AgentExecutionError

__all__ = ["USAGE_ENV", "UsageReport", "is_llm", "llm_argv", "llm_usage", "read_usage"]

USAGE_ENV = "MDSESSIONS_USAGE_FILE"
"""The environment variable naming the file a command agent writes its usage to."""


class UsageReport(BaseModel):
    """What a command agent reports (the JSON object of the usage file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(default=None, min_length=1, max_length=200)
    """The model id the program called."""
    input_tokens: int = Field(default=0, ge=0)
    """Prompt tokens."""
    output_tokens: int = Field(default=0, ge=0)
    """Completion tokens."""
    cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    """USD; left out: computed from the model's price."""
    response_id: str | None = Field(default=None, max_length=200)
    """The provider's response id."""


def read_usage(path: Path, program: str) -> UsageReport | None:
    """Read the usage file a command wrote, if it wrote one.

    Args:
        path: The file named by ``MDSESSIONS_USAGE_FILE``.
        program: The program's name (for the error message).

    Returns:
        The report, or ``None`` when the program wrote nothing.

    Raises:
        AgentExecutionError: The file is not one JSON object of the documented keys (names
            the key and what was expected).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    if not text.strip():
        return None
    try:
        return UsageReport.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        detail = (
            "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'the object'}: {e['msg']}" for e in exc.errors()
            )
            if isinstance(exc, ValidationError)
            else f"not JSON ({exc})"
        )
        raise AgentExecutionError(
            f"{program} wrote an invalid usage report to ${USAGE_ENV}: {detail} (expected one "
            "JSON object with model, input_tokens, output_tokens, cost_usd, response_id)"
        ) from None


_LLM_USAGE = re.compile(r"^Token usage: ([\d,]+) input, ([\d,]+) output", re.MULTILINE)


def is_llm(argv: Sequence[str]) -> bool:
    """Whether a command runs the ``llm`` command-line client."""
    return bool(argv) and Path(argv[0]).name in ("llm", "llm.exe")


def llm_argv(argv: Sequence[str]) -> list[str]:
    """The ``llm`` command with ``-u`` added (it then prints its token usage on stderr)."""
    args = list(argv)
    if "-u" not in args and "--usage" not in args:
        args.append("-u")
    return args


def llm_usage(argv: Sequence[str], stderr: str) -> UsageReport | None:
    """The usage an ``llm`` command printed (``-u``), with the model of its ``-m`` argument.

    Returns:
        The report, or ``None`` when it printed no usage line.
    """
    found = _LLM_USAGE.search(stderr)
    if found is None:
        return None
    model = None
    for i, arg in enumerate(argv[:-1]):
        if arg in ("-m", "--model"):
            model = argv[i + 1]
    for arg in argv:
        if arg.startswith("--model="):
            model = arg.partition("=")[2]
    return UsageReport(
        model=model or None,
        input_tokens=int(found.group(1).replace(",", "")),
        output_tokens=int(found.group(2).replace(",", "")),
    )
