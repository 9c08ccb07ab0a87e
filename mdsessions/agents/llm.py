"""An LLM agent on the ``llm`` library (the ``[llm]`` extra): one prompt, one response.

Declared in the workflow TOML::

    [agents.concept_expansion]
    llm = "gpt-4o-mini"                       # any model id `llm models` lists
    system = "You are a product strategist."
    options = { temperature = 0.2 }

The API key comes from the environment the way ``llm`` looks it up (``OPENAI_API_KEY`` …,
or ``llm keys set``), never from a file in the store. Offline, the ``llm-echo`` plugin's
``echo`` model answers with the prompt it got.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from mdsessions.agents.base import AgentContext, AgentResult
from mdsessions.agents.pricing import price
from mdsessions.errors import AgentExecutionError, WorkflowError

__all__ = ["LlmAgent", "is_transient"]


def is_transient(exc: BaseException) -> bool:
    """Whether a provider's error is worth another try: a timeout or a rate limit.

    Providers' client libraries differ, so this looks at what they share: a timeout type,
    a ``RateLimit``/``Timeout`` class name, or an HTTP status 429, 408 or >= 500.
    """
    if isinstance(exc, TimeoutError):
        return True
    names = " ".join(t.__name__ for t in type(exc).__mro__)
    if "RateLimit" in names or "Timeout" in names or "Overloaded" in names:
        return True
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    return isinstance(status, int) and (status in (408, 429) or status >= 500)


class LlmAgent:
    """Run a model of the ``llm`` library as an agent.

    Records the model id (the provider's resolved one when it gives it), input and output
    tokens, the response id (the provider's, else ``llm:<llm's id>``) and the cost in USD
    from ``genai-prices`` with its source and date (no cost for a model it does not know).

    Args:
        model: The ``llm`` model id or alias (``gpt-4o-mini``, ``echo``).
        system: The system prompt.
        options: The model's options (``temperature`` …), checked by the model.

    A call's time limit is the provider client's own (its timeout errors are retried); the
    workflow's ``timeout`` applies to command agents.

    Raises:
        WorkflowError: ``llm`` is not installed, or it knows no such model.
    """

    def __init__(
        self,
        model: str,
        *,
        system: str = "",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            import llm
        except ImportError:  # pragma: no cover - the [llm] extra is installed in tests
            raise WorkflowError(
                f"an llm agent (model {model!r}) needs the llm library: "
                "pip install 'mdsessions[llm]'"
            ) from None
        try:
            self._model = llm.get_model(model)
        except llm.UnknownModelError:
            raise WorkflowError(
                f"llm knows no model {model!r}; `llm models` lists them (plugins add more)"
            ) from None
        self.model = model
        self.system = system
        self.options = dict(options or {})

    def __call__(self, ctx: AgentContext) -> AgentResult:
        """Send the context's prompt (and the system prompt) to the model.

        Raises:
            AgentExecutionError: The call failed (``transient`` for a timeout or rate limit).
        """
        when = _dt.datetime.now(_dt.timezone.utc)
        try:
            response = self._model.prompt(
                ctx.prompt,
                system=(ctx.system_prompt or self.system) or None,
                stream=False,
                **self.options,
            )
            text = response.text()
            usage = response.usage()
        except Exception as exc:  # the provider's client: any error is this call's failure
            raise AgentExecutionError(
                f"{self.model}: {type(exc).__name__}: {exc}",
                stderr=f"{type(exc).__name__}: {exc}",
                transient=is_transient(exc),
            ) from exc
        input_tokens, output_tokens = usage.input or 0, usage.output or 0
        resolved = getattr(response, "resolved_model", None) or self._model.model_id
        raw = response.response_json
        provider_id = raw.get("id") if isinstance(raw, Mapping) else None
        found = price(resolved, input_tokens=input_tokens, output_tokens=output_tokens, when=when)
        return AgentResult(
            content=text,
            model=resolved,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=found.cost,
            response_id=str(provider_id) if provider_id else f"llm:{response.id}",
            price_source=found.source,
            price_date=found.date,
            options=dict(self.options),
        )
