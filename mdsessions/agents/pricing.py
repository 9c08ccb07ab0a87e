"""Cost in USD from a maintained price table: ``genai-prices`` (the ``[llm]`` extra).

Only the price data bundled with the installed ``genai-prices`` is used: prices are never
fetched over the network, so a run's cost depends on the installed version alone, and that
version is recorded as the price source. A model the table does not know gets no cost
(``None``) rather than a wrong one.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from importlib import metadata

__all__ = ["Price", "price"]


@dataclass(frozen=True)
class Price:
    """What a call cost and where the figure came from.

    Attributes:
        cost: USD, or ``None`` when the model has no known price.
        source: ``genai-prices 0.2.3: openai/gpt-4o-mini`` (package version, provider and
            model matched), or why there is no cost.
        date: The UTC date (``YYYY-MM-DD``) the price applies to.
    """

    cost: float | None
    source: str
    date: str


def _version() -> str:
    try:
        return metadata.version("genai-prices")
    except metadata.PackageNotFoundError:
        return "not installed"


def price(
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    when: _dt.datetime | None = None,
    provider: str | None = None,
) -> Price:
    """The cost of one call, from ``genai-prices``' bundled table (no network).

    Args:
        model: The model id as the provider names it (``gpt-4o-mini``).
        input_tokens: Prompt tokens.
        output_tokens: Completion tokens.
        when: When the call was made (UTC; default now): prices change over time.
        provider: The provider id (``openai``), if known; else the table guesses it.

    Returns:
        The cost (``None`` for a model without a known price) with its source and date.
    """
    when = when or _dt.datetime.now(_dt.timezone.utc)
    date = when.strftime("%Y-%m-%d")
    version = _version()
    try:
        import genai_prices
    except ImportError:
        return Price(None, "genai-prices is not installed (pip install 'mdsessions[llm]')", date)
    usage = genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    try:
        calc = genai_prices.calc_price(
            usage, model, provider_id=provider, genai_request_timestamp=when
        )
    except LookupError:
        return Price(None, f"genai-prices {version}: no price for model {model!r}", date)
    return Price(
        round(float(calc.total_price), 6),
        f"genai-prices {version}: {calc.provider.id}/{calc.model.id}",
        date,
    )
