"""Many hands on one workflow (issue 11): runners, reviewers and the phase rules.

Real processes for the run lock (two runners started together; a holder killed with
SIGKILL), real git for every check; agents are Python callables that log each call.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import PERSON, REPO_ROOT, assert_clean, author, git

from mdsessions import (
    AgentContext,
    PhaseStatus,
    ReviewState,
    Runner,
    Session,
    SessionLockedError,
    SessionStatus,
    Store,
    StoreError,
    history,
    idea_validation,
)
from mdsessions.cli import cli

P = "proj"
IDEA = "A marketplace where neighbours swap home-cooked meals."
WORKFLOW = idea_validation()
AGENT_NAMES = [name for phase in WORKFLOW.phases for name in phase.agents]


def logging_agents(log: Path, delay: float = 0.0) -> dict[str, Callable[[AgentContext], str]]:
    """Agents that append ``name retry`` to ``log`` and echo the prompt's size."""

    def make(name: str) -> Callable[[AgentContext], str]:
        def agent(ctx: AgentContext) -> str:
            with log.open("a", encoding="utf-8") as fh:
                fh.write(f"{name} {ctx.retry_count}\n")
            if delay:
                time.sleep(delay)
            return f"# {name}\n\nretry {ctx.retry_count}; prompt of {len(ctx.prompt)} characters\n"

        return agent

    return {name: make(name) for name in AGENT_NAMES}


def calls(log: Path) -> Counter[str]:
    if not log.exists():
        return Counter()
    return Counter(line for line in log.read_text(encoding="utf-8").splitlines() if line)


def problems(store: Store) -> list[str]:
    return [str(p) for p in history.verify(store).problems]


# ------------------------------------------------------------------------ one runner per session

RUNNER_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[5])
    from test_many_hands import logging_agents
    from mdsessions import Runner, Store

    root, log, ref, go = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    store = Store.open(root)
    runner = Runner(store, agents=logging_agents(log, delay=0.05))
    while not go.exists():
        time.sleep(0.001)
    result = runner.run(ref, wait_lock=120)
    print(result.message)
    """
)


def _child(store: Store, log: Path, ref: str, go: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    args = [str(store.root), str(log), ref, str(go), str(Path(__file__).parent)]
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER_CHILD, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _two_runners(store: Store, tmp_path: Path, rounds: int) -> None:
    for k in range(rounds):
        log = tmp_path / f"calls-{k}.log"
        runner = Runner(store, agents=logging_agents(log))
        session = runner.start(P, f"s{k}", idea=IDEA).session  # phase 1, waiting for review
        session.save_feedback(1, approved=True)
        go = tmp_path / f"go-{k}"
        children = [_child(store, log, session.ref, go) for _ in range(2)]
        time.sleep(0.3)  # both imported and waiting at the barrier
        go.touch()
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
        # Every agent of phases 2 and 3 ran exactly once (and phase 1's once, before).
        assert calls(log) == Counter(
            {
                "concept_expansion 0": 1,
                "market_intelligence 0": 1,
                "competitor_analysis 0": 1,
                "niche_selection 0": 1,
            }
        ), f"round {k}"
        manifest = session.manifest()
        assert (manifest.status, manifest.current_phase) == (SessionStatus.AWAITING_REVIEW, 3)
    assert problems(store) == []
    assert_clean(store.root)


def test_two_runners_started_together_run_each_agent_once(store: Store, tmp_path: Path) -> None:
    _two_runners(store, tmp_path, rounds=3)


@pytest.mark.slow
def test_two_runners_started_together_twenty_times(store: Store, tmp_path: Path) -> None:
    _two_runners(store, tmp_path, rounds=20)


def test_a_second_runner_is_refused_naming_the_holder(store: Store, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    runner = Runner(store, agents=logging_agents(log))
    session = runner.start(P, "s1", idea=IDEA).session
    session.save_feedback(1, approved=True)
    with session.run_lock():
        with pytest.raises(SessionLockedError) as info:
            runner.run(session)
        message = str(info.value)
        assert f"session {session.ref} is being run by pid {os.getpid()} on " in message
        assert "since 20" in message and "--wait-lock SECONDS" in message
        started = time.monotonic()
        with pytest.raises(SessionLockedError, match=r"\(waited 0.3 s\)"):
            runner.run(session, wait_lock=0.3)
        assert time.monotonic() - started >= 0.3
        result = CliRunner().invoke(cli, ["--store", str(store.root), "run", session.ref])
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: session {session.ref} is being run by pid ")
    assert calls(log) == Counter({"concept_expansion 0": 1})  # nothing ran meanwhile
    assert runner.run(session).phases_run == (2, 3)


def test_a_dead_holder_is_taken_over_at_once(store: Store, tmp_path: Path) -> None:
    session = store.create_session(P, "s1", idea=IDEA)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from mdsessions import Store\n"
            "s = Store.open(sys.argv[1]).session('proj', 's1')\n"
            "with s.run_lock():\n    print('held', flush=True); time.sleep(600)\n",
            str(store.root),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(SessionLockedError, match=f"pid {holder.pid} "):
        Runner(store, agents=logging_agents(tmp_path / "log")).run(session)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    result = Runner(store, agents=logging_agents(tmp_path / "log")).run(session)
    assert result.waiting_for_review == 1


# ------------------------------------------------------------------------ every input recorded


def test_an_edited_input_is_committed_as_the_person_before_the_next_phase(
    store: Store, tmp_path: Path
) -> None:
    runner = Runner(store, agents=logging_agents(tmp_path / "calls.log"))
    session = runner.start(P, "s1", idea=IDEA).session
    rel = f"{session.phase_rel(1)}/concept_expansion.md"
    target = store.root / rel
    target.write_text(target.read_text(encoding="utf-8") + "A reviewer's added line.\n", "utf-8")
    session.save_feedback(1, approved=True, author=PERSON)
    runner.run(session, max_phases=1)

    # The commit the checkpoint names holds the edited text, authored by the person.
    checkpoint = session.checkpoint(2)
    assert checkpoint is not None
    blob = checkpoint.inputs[rel]
    assert "A reviewer's added line." in git(store.root, "cat-file", "blob", blob)
    recorded = git(store.root, "log", "-1", "--format=%H", "--", rel).strip()
    assert git(store.root, "rev-parse", f"{recorded}:{rel}").strip() == blob
    assert author(store.root, recorded) == PERSON
    assert "input(s) of phase 2 recorded before it runs" in git(
        store.root, "log", "-1", "--format=%s", recorded
    )
    # The stored prompt of the next agent holds it, with the blob it came from.
    prompt_rel = f"{session.phase_rel(2)}/prompts/market_intelligence.md"
    prompt = store.read_doc(prompt_rel, __import__("mdsessions").AgentPrompt)
    assert "A reviewer's added line." in prompt.user
    assert prompt.inputs[rel] == blob
    assert git(store.root, "status", "--porcelain") == ""
    assert problems(store) == []


def test_every_output_is_committed_with_the_prompt_it_was_given(
    store: Store, tmp_path: Path
) -> None:
    seen: list[AgentContext] = []

    def agent(ctx: AgentContext) -> str:
        seen.append(ctx)
        return "# out\n"

    runner = Runner(store, agents={n: agent for n in AGENT_NAMES})
    session = runner.start(P, "s1", idea=IDEA).session
    out_rel = f"{session.phase_rel(1)}/concept_expansion.md"
    prompt_rel = f"{session.phase_rel(1)}/prompts/concept_expansion.md"
    # One commit holds both.
    assert git(store.root, "log", "-1", "--format=%H", "--", out_rel) == git(
        store.root, "log", "-1", "--format=%H", "--", prompt_rel
    )
    text = (store.root / prompt_rel).read_text(encoding="utf-8")
    assert text.startswith("---\nschema: mdsessions/prompt/v1\n")
    assert text.endswith("## User\n\n" + seen[0].prompt)
    assert problems(store) == []


# ------------------------------------------------------------------ revising upstream


def _full_run_to_phase_6_approved(store: Store, log: Path) -> tuple[Runner, Session]:
    runner = Runner(store, agents=logging_agents(log))
    session = runner.start(P, "s1", idea=IDEA, mode="full").session
    for gate in (1, 3):
        session.save_feedback(gate, approved=True)
        runner.run(session)
    session.save_feedback(6, approved=True)
    assert session.manifest().current_phase == 7
    return runner, session


def test_revising_upstream_reruns_and_rereviews_downstream(store: Store, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    runner, session = _full_run_to_phase_6_approved(store, log)
    mark = git(store.root, "rev-parse", "HEAD").strip()
    session.save_feedback(3, action="revise", comments="Focus on students")
    manifest = session.manifest()
    rows = {p.number: p for p in manifest.phases}
    for n in (4, 5, 6):
        assert rows[n].status is PhaseStatus.STALE
        assert rows[n].stale_reason == "phase 3 revised"
    assert rows[6].review is ReviewState.REQUIRED
    assert rows[7].status is PhaseStatus.PENDING
    assert (manifest.status, manifest.current_phase) == (SessionStatus.IN_PROGRESS, 3)
    assert "Phase 6 (Validation) is stale: phase 3 revised; it runs again" in (
        store.root / session.manifest_rel
    ).read_text(encoding="utf-8")
    status = CliRunner().invoke(cli, ["--store", str(store.root), "status", session.ref])
    assert "stale     phase 4: phase 3 revised; runs again" in status.output
    assert problems(store) == []

    assert runner.run(session).phases_run == (3,)  # the revision, then its review
    session.save_feedback(3, approved=True)
    result = runner.run(session)
    assert result.phases_run == (4, 5, 6)  # in order, after it
    assert result.waiting_for_review == 6  # reviewed again
    again = {c: n for c, n in calls(log).items() if not c.endswith(" 0")}
    reran = {f"{a} 1": 1 for p in (3, 4, 5, 6) for a in WORKFLOW.phase(p).agents}
    assert again == reran  # each agent of 3-6 once more, nothing else
    story = git(store.root, "log", "--format=%s", f"{mark}..HEAD").splitlines()[::-1]
    assert story[0].endswith("phase 3 Niche Selection revise")
    assert any("phase 4 Product Strategy completed" in s for s in story)
    assert story[-1].endswith("phase 6 Validation completed, awaiting review")
    assert problems(store) == []
    assert_clean(store.root)


def test_keep_downstream_opts_out(store: Store, tmp_path: Path) -> None:
    _runner, session = _full_run_to_phase_6_approved(store, tmp_path / "calls.log")
    result = CliRunner().invoke(
        cli,
        [
            "--store",
            str(store.root),
            "feedback",
            session.ref,
            "3",
            "--revise",
            "--keep-downstream",
            "--comment",
            "only the niche",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {p.number: p for p in session.manifest().phases}
    assert [rows[n].status for n in (4, 5, 6)] == [PhaseStatus.COMPLETED] * 3
    assert rows[6].review is ReviewState.APPROVED
    usage = CliRunner().invoke(
        cli,
        [
            "--store",
            str(store.root),
            "feedback",
            session.ref,
            "3",
            "--approve",
            "--keep-downstream",
        ],
    )
    assert usage.exit_code == 2 and "--keep-downstream goes with --revise" in usage.output


# ------------------------------------------------------------------------ the small ones


def test_a_retried_failed_phase_counts_the_attempt(store: Store, tmp_path: Path) -> None:
    failing = {"competitor_analysis": 1}
    log = tmp_path / "calls.log"
    agents = logging_agents(log)
    inner = agents["competitor_analysis"]

    def flaky(ctx: AgentContext) -> str:
        if failing["competitor_analysis"]:
            failing["competitor_analysis"] -= 1
            raise RuntimeError("model overloaded")
        return inner(ctx)

    agents["competitor_analysis"] = flaky
    runner = Runner(store, agents=agents)
    session = runner.start(P, "s1", idea=IDEA).session
    session.save_feedback(1, approved=True)
    with pytest.raises(Exception, match="model overloaded"):
        runner.run(session)
    assert session.manifest().phase(2).retry_count == 0
    runner.run(session)
    assert session.manifest().phase(2).retry_count == 1
    assert session.checkpoint(2).retry_count == 1  # type: ignore[union-attr]
    # Only the agent that did not finish ran again.
    assert calls(log)["market_intelligence 0"] == 1 and "market_intelligence 1" not in calls(log)
    assert calls(log)["competitor_analysis 1"] == 1


def test_feedback_on_a_phase_that_has_not_run_is_refused(store: Store) -> None:
    session = store.create_session(P, "s1", idea=IDEA)
    before = git(store.root, "rev-parse", "HEAD")
    with pytest.raises(StoreError, match=r"phase 1 \(Concept Expansion\) of proj/s1 has not run"):
        session.save_feedback(1, approved=True)
    assert git(store.root, "rev-parse", "HEAD") == before
    assert_clean(store.root)


def test_outputs_saved_after_their_checkpoint_count_in_the_totals(store: Store) -> None:
    """Seed 003's call order: save_checkpoint first, then save_agent_output."""
    session = store.create_session(P, "s1", idea=IDEA)
    session.save_checkpoint(1, status="completed", agents=[{"agent_name": "concept_expansion"}])
    session.save_agent_output(
        1, "concept_expansion", "# c\n", input_tokens=1200, output_tokens=300, cost=0.0375
    )
    manifest = session.manifest()
    assert (manifest.totals.input_tokens, manifest.totals.output_tokens) == (1200, 300)
    assert manifest.totals.cost == pytest.approx(0.0375)
    assert manifest.phase(1).tokens == 1500
    run = session.checkpoint(1).agents[0]  # type: ignore[union-attr]
    assert (run.input_tokens, run.output_tokens) == (1200, 300)
    assert problems(store) == []


def test_verify_reports_a_status_that_contradicts_the_phase_table(store: Store) -> None:
    session = store.create_session(P, "s1", idea=IDEA)
    session.save_checkpoint(1, status="completed")  # phase 1 awaits review
    path = store.root / session.manifest_rel
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "status: awaiting_review", "status: in_progress", 1
        ),
        encoding="utf-8",
    )
    git(store.root, "commit", "-qam", "a hand edit")
    found = problems(store)
    assert any(
        "status in_progress (current phase 1) contradicts the phase table, which says "
        "awaiting_review (current phase 1)" in p
        for p in found
    ), found
