"""A session's budget: the runner stops before a phase that would take it over the limit.

What a phase will cost is not known before it runs, so it is estimated from what is
recorded: the phase's own figures when it ran before (a revision, a stale or failed phase),
else the mean of the session's completed phases (none yet: 0). The run stops before the
phase when ``spent + estimate`` is over a limit, or when the limit is already reached.
"""

from __future__ import annotations

from mdsessions.errors import BudgetExceededError
from mdsessions.models.agents import Budget
from mdsessions.models.schema import PhaseEntry, PhaseStatus, SessionManifest

__all__ = ["check_budget", "estimate"]


def estimate(manifest: SessionManifest, entry: PhaseEntry) -> tuple[float, int]:
    """What phase ``entry`` is expected to cost: ``(USD, tokens)`` (module docstring)."""
    if entry.cost or entry.tokens:
        return entry.cost, entry.tokens
    done = [p for p in manifest.phases if p.status is PhaseStatus.COMPLETED]
    if not done:
        return 0.0, 0
    return (
        round(sum(p.cost for p in done) / len(done), 6),
        sum(p.tokens for p in done) // len(done),
    )


def check_budget(
    manifest: SessionManifest, entry: PhaseEntry, budget: Budget, ref: str = ""
) -> None:
    """Raise before phase ``entry`` starts if it would take the session over ``budget``.

    Args:
        manifest: The session's manifest (its totals are what was spent).
        entry: The phase about to run.
        budget: The limits (USD, tokens).
        ref: The session's name, for the message.

    Raises:
        BudgetExceededError: With the figures: spent, the estimate and the limit.
    """
    if not budget.limited:
        return
    spent_usd, spent_tokens = manifest.totals.cost, manifest.totals.tokens
    est_usd, est_tokens = estimate(manifest, entry)
    reasons = []
    if budget.max_cost_usd is not None and (
        spent_usd >= budget.max_cost_usd or spent_usd + est_usd > budget.max_cost_usd
    ):
        reasons.append(
            f"cost: spent ${spent_usd:.6f} + next phase estimated ${est_usd:.6f} = "
            f"${spent_usd + est_usd:.6f}, over the budget of ${budget.max_cost_usd:.6f}"
        )
    if budget.max_tokens is not None and (
        spent_tokens >= budget.max_tokens or spent_tokens + est_tokens > budget.max_tokens
    ):
        reasons.append(
            f"tokens: used {spent_tokens} + next phase estimated {est_tokens} = "
            f"{spent_tokens + est_tokens}, over the budget of {budget.max_tokens}"
        )
    if not reasons:
        return
    where = f" of {ref}" if ref else ""
    raise BudgetExceededError(
        f"budget reached: phase {entry.number} ({entry.name}){where} was not started; "
        + "; ".join(reasons)
        + ". Raise the budget ([budget] in the workflow, or run --max-cost-usd/--max-tokens) "
        "and run again to go on.",
        phase=entry.number,
        spent_usd=spent_usd,
        spent_tokens=spent_tokens,
        estimate_usd=est_usd,
        estimate_tokens=est_tokens,
    )
