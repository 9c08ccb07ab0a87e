"""Tests for mdsessions.runner: phases, review gates through edited files, failures, resume."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import (
    PERSON,
    REPO_ROOT,
    RUNNER,
    assert_all_documents_parse,
    assert_clean,
    author,
    commit_count,
    git,
    subject,
    trailers,
)

from mdsessions import (
    AgentContext,
    AgentFailedError,
    AgentResult,
    CommandAgent,
    DocumentError,
    FeedbackAction,
    PhaseStatus,
    ReviewState,
    Runner,
    Session,
    SessionExistsError,
    SessionStatus,
    Store,
    idea_validation,
)

P, S = "project-123", "session-456"
IDEA = "A leaderboard for small gyms: members compete on streaks, not weights."
WORKFLOW = idea_validation()
AGENT_NAMES = [name for phase in WORKFLOW.phases for name in phase.agents]


class Agents:
    """Python agents that echo part of their context and log every call to a file."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.contexts: list[AgentContext] = []
        self.fail: dict[str, int] = {}  # agent -> how many more calls should raise

    def make(self, name: str) -> Callable[[AgentContext], str | AgentResult]:
        def agent(ctx: AgentContext) -> str | AgentResult:
            with self.log.open("a", encoding="utf-8") as fh:
                fh.write(f"{name}\n")
            self.contexts.append(ctx)
            if self.fail.get(name, 0) > 0:
                self.fail[name] -= 1
                raise RuntimeError(f"{name}: model overloaded")
            earlier = ", ".join(
                f"{n}:{a}" for n in sorted(ctx.previous_outputs) for a in ctx.previous_outputs[n]
            )
            content = (
                f"# {name}\n\nIdea: {ctx.idea}\n"
                f"Phase {ctx.phase_number} ({ctx.phase_name}), retry {ctx.retry_count}\n"
                f"Earlier: {earlier or '-'}\n"
                f"Changes: {'; '.join(ctx.requested_changes) or '-'}\n"
            )
            if name == "market_intelligence":
                return AgentResult(
                    content=content,
                    model="test-model",
                    input_tokens=100,
                    output_tokens=50,
                    cost=0.01,
                    tools_used=["web_search"],
                )
            return content

        return agent

    def all(self) -> dict[str, Callable[[AgentContext], str | AgentResult]]:
        return {name: self.make(name) for name in AGENT_NAMES}

    def calls(self) -> Counter[str]:
        if not self.log.exists():
            return Counter()
        return Counter(self.log.read_text(encoding="utf-8").split())


@pytest.fixture
def agents(tmp_path: Path) -> Agents:
    return Agents(tmp_path / "calls.log")


@pytest.fixture
def runner(store: Store, agents: Agents) -> Runner:
    return Runner(store, agents=agents.all())


def feedback_path(session: Session, phase: int) -> Path:
    return session.store.root / session.phase_rel(phase) / "user_feedback.md"


def edit_feedback(session: Session, phase: int, edit: Callable[[str], str]) -> None:
    """Change the file the way an editor does: read it, change some text, save it."""
    path = feedback_path(session, phase)
    with path.open(encoding="utf-8", newline="") as fh:
        text = fh.read()
    new = edit(text)
    assert new != text
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(new)


def approve(text: str) -> str:
    new, count = re.subn(r"(?m)^approved: false$", "approved: true", text)
    assert count == 1
    return new


def set_action(action: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        new, count = re.subn(r"(?m)^action: pending$", f"action: {action}", text)
        assert count == 1
        return new

    return edit


def subjects_since(root: Path, rev: str) -> list[str]:
    return git(root, "log", "--reverse", "--format=%s", f"{rev}..HEAD").splitlines()


# ------------------------------------------------------------------------------ happy paths


def test_start_stops_at_the_first_gate(store: Store, runner: Runner, agents: Agents) -> None:
    init = git(store.root, "rev-parse", "HEAD").strip()
    result = runner.start(P, S, idea=IDEA, mode="mvp", user_id="user-789")
    assert result.status is SessionStatus.AWAITING_REVIEW
    assert result.waiting_for_review == 1
    assert result.phases_run == (1,)
    assert subjects_since(store.root, init) == [
        f"session({P}/{S}): created (idea_validation, mvp)",
        f"checkpoint({P}/{S}): phase 1 Concept Expansion in_progress",
        f"agent_output({P}/{S}): phase 1 concept_expansion completed",
        f"checkpoint({P}/{S}): phase 1 Concept Expansion completed, awaiting review",
    ]
    assert (
        git(store.root, "log", "--format=%an <%ae>", f"{init}..HEAD").splitlines() == [RUNNER] * 4
    )
    session = result.session
    output = session.output(1, "concept_expansion")
    assert output is not None
    assert output.content.startswith("# concept_expansion\n\nIdea: " + IDEA)
    feedback = session.feedback(1)
    assert feedback is not None and feedback.decision() is FeedbackAction.PENDING
    assert agents.calls() == Counter({"concept_expansion": 1})
    assert_clean(store.root)
    assert_all_documents_parse(store.root)


def run_to_completion(
    store: Store, runner: Runner, mode: str, gates: list[int], expected_runs: list[tuple[int, ...]]
) -> Session:
    result = runner.start(P, S, idea=IDEA, mode=mode)
    session = result.session
    assert result.phases_run == expected_runs[0]
    for gate, runs in zip(gates, expected_runs[1:], strict=True):
        assert result.waiting_for_review == gate
        assert session.manifest().status is SessionStatus.AWAITING_REVIEW
        edit_feedback(session, gate, approve)
        before = git(store.root, "rev-parse", "HEAD").strip()
        result = runner.run(session)
        assert result.recorded_feedback == (gate,)
        first = git(store.root, "rev-list", "--reverse", f"{before}..HEAD").split()[0]
        assert author(store.root, first) == PERSON
        assert trailers(store.root, first)["Mdsessions-Kind"] == "user_feedback"
        assert trailers(store.root, first)["Mdsessions-Phase"] == str(gate)
        assert trailers(store.root, first)["Mdsessions-Status"] == "approved"
        assert result.phases_run == runs
        assert_clean(store.root)
    assert result.status is SessionStatus.COMPLETED
    assert result.waiting_for_review is None
    return session


def test_mvp_run_to_completion_through_edited_feedback(
    store: Store, runner: Runner, agents: Agents
) -> None:
    session = run_to_completion(
        store, runner, "mvp", gates=[1, 3, 6], expected_runs=[(1,), (2, 3), (6,), (7,)]
    )
    manifest = session.manifest()
    assert manifest.completed_phases == [1, 2, 3, 6, 7]
    assert manifest.approved_phases == [1, 3, 6]
    assert manifest.current_phase is None
    assert agents.calls() == Counter({name: 1 for name in AGENT_NAMES}) - Counter(
        {"product_strategy": 1, "business_planning": 1}
    )
    final = session.output(7, "final_synthesis")
    assert final is not None
    assert "Earlier: 1:concept_expansion, 2:competitor_analysis, 2:market_intelligence" in (
        final.content
    )
    mi = session.output(2, "market_intelligence")
    assert mi is not None
    assert (mi.model, mi.input_tokens, mi.output_tokens, mi.tools_used) == (
        "test-model",
        100,
        50,
        ["web_search"],
    )
    assert manifest.totals.input_tokens == 100
    assert store.validate() == []
    assert_clean(store.root)
    assert_all_documents_parse(store.root)
    # The runner is idempotent once done.
    before = commit_count(store.root)
    again = Runner(store, agents=agents.all()).run(session)
    assert again.status is SessionStatus.COMPLETED
    assert again.phases_run == ()
    assert commit_count(store.root) == before


def test_full_run_to_completion(store: Store, runner: Runner, agents: Agents) -> None:
    session = run_to_completion(
        store, runner, "full", gates=[1, 3, 6], expected_runs=[(1,), (2, 3), (4, 5, 6), (7,)]
    )
    assert session.manifest().completed_phases == [1, 2, 3, 4, 5, 6, 7]
    assert agents.calls() == Counter({name: 1 for name in AGENT_NAMES})
    folders = sorted(p.name for p in session.path.iterdir() if p.is_dir())
    assert folders == [
        "phase_1_concept",
        "phase_2_market_research",
        "phase_3_niche_selection",
        "phase_4_product_strategy",
        "phase_5_business_planning",
        "phase_6_validation",
        "phase_7_synthesis",
    ]
    assert store.validate() == []
    assert_clean(store.root)


def test_max_phases(store: Store, runner: Runner) -> None:
    result = runner.start(P, S, idea=IDEA)
    edit_feedback(result.session, 1, approve)
    result = runner.run(result.session, max_phases=1)
    assert result.phases_run == (2,)
    assert result.session.manifest().current_phase == 3


def test_start_takes_the_options_of_run(store: Store, runner: Runner, agents: Agents) -> None:
    created: list[tuple[str, int]] = []
    result = runner.start(
        P,
        idea=IDEA,
        max_phases=0,
        on_created=lambda session: created.append((session.ref, sum(agents.calls().values()))),
    )
    assert created == [(result.session.ref, 0)]  # before any agent ran
    assert result.session.session_id.startswith("session-")
    assert (result.phases_run, result.status) == ((), SessionStatus.CREATED)
    waited: list[int] = []
    result = runner.start(P, S, idea=IDEA, wait=0.0, on_wait=waited.append)
    assert (result.waiting_for_review, waited) == (1, [1])


# ------------------------------------------------------------------------------ review decisions


def test_revise_reruns_the_phase_with_the_feedback(
    store: Store, runner: Runner, agents: Agents
) -> None:
    session = runner.start(P, S, idea=IDEA).session
    first_output = session.output(1, "concept_expansion")
    assert first_output is not None and "retry 0" in first_output.content

    def revise(text: str) -> str:
        text = set_action("revise")(text)
        text = text.replace(
            "## User Comments\n", "## User Comments\n\nToo broad, pick one city.\n", 1
        )
        return text.replace(
            "\nrequested_changes:\n", "\nrequested_changes:\n- Make it shorter\n", 1
        )

    edit_feedback(session, 1, revise)
    result = runner.run(session)
    assert result.recorded_feedback == (1,)
    assert result.phases_run == (1,)
    assert result.waiting_for_review == 1
    ctx = agents.contexts[-1]
    assert ctx.agent_name == "concept_expansion"
    assert ctx.retry_count == 1
    assert ctx.requested_changes == ("Make it shorter",)
    assert (
        ctx.feedback_comments is not None and "Too broad, pick one city." in ctx.feedback_comments
    )
    assert "Make it shorter" in ctx.prompt
    output = session.output(1, "concept_expansion")
    assert output is not None
    assert output.retry_count == 1
    assert "retry 1" in output.content and "Changes: Make it shorter" in output.content
    manifest = session.manifest()
    assert manifest.phase(1).retry_count == 1
    assert manifest.phase(1).review is ReviewState.PENDING
    pending = session.feedback(1)
    assert pending is not None and pending.decision() is FeedbackAction.PENDING
    assert pending.retry_count == 1
    history = git(store.root, "log", "-p", "--", f"{session.phase_rel(1)}/concept_expansion.md")
    assert "retry 0" in history and "retry 1" in history
    old_feedback = git(store.root, "log", "-p", "--", f"{session.phase_rel(1)}/user_feedback.md")
    assert "Too broad, pick one city." in old_feedback
    assert agents.calls() == Counter({"concept_expansion": 2})
    assert_clean(store.root)


def test_reject_ends_the_session(store: Store, runner: Runner, agents: Agents) -> None:
    session = runner.start(P, S, idea=IDEA).session
    edit_feedback(session, 1, set_action("reject"))
    result = runner.run(session)
    assert result.status is SessionStatus.REJECTED
    assert result.phases_run == ()
    assert author(store.root) == PERSON
    assert session.manifest().phase(1).review is ReviewState.REJECTED
    before = commit_count(store.root)
    assert runner.run(session).status is SessionStatus.REJECTED
    assert commit_count(store.root) == before
    assert agents.calls() == Counter({"concept_expansion": 1})
    assert_clean(store.root)


def test_untouched_feedback_keeps_waiting(store: Store, runner: Runner) -> None:
    session = runner.start(P, S, idea=IDEA).session
    before = commit_count(store.root)
    result = runner.run(session)
    assert result.status is SessionStatus.AWAITING_REVIEW
    assert result.waiting_for_review == 1
    assert commit_count(store.root) == before


def test_crlf_feedback_edit_is_recorded(store: Store, runner: Runner) -> None:
    session = runner.start(P, S, idea=IDEA).session
    edit_feedback(session, 1, lambda text: approve(text).replace("\n", "\r\n"))
    result = runner.run(session, max_phases=0)
    assert result.recorded_feedback == (1,)
    assert session.manifest().phase(1).review is ReviewState.APPROVED
    assert_clean(store.root)


# ------------------------------------------------------------------------------ failures


def test_agent_failure_is_recorded_and_retried(
    store: Store, runner: Runner, agents: Agents
) -> None:
    agents.fail["concept_expansion"] = 1
    with pytest.raises(AgentFailedError) as info:
        runner.start(P, S, idea=IDEA)
    assert "concept_expansion" in str(info.value)
    assert "model overloaded" in str(info.value)
    session = store.session(P, S)
    output = session.output(1, "concept_expansion")
    assert output is not None
    assert output.status is PhaseStatus.FAILED
    assert output.error is not None and "model overloaded" in output.error
    checkpoint = session.checkpoint(1)
    assert checkpoint is not None and checkpoint.status is PhaseStatus.FAILED
    assert any("concept_expansion" in e for e in checkpoint.errors)
    assert session.manifest().status is SessionStatus.FAILED
    assert subject(store.root).startswith(f"checkpoint({P}/{S}): phase 1 Concept Expansion failed")
    assert_clean(store.root)
    assert_all_documents_parse(store.root)

    result = runner.run(session)
    assert result.status is SessionStatus.AWAITING_REVIEW
    assert result.phases_run == (1,)
    output = session.output(1, "concept_expansion")
    assert output is not None and output.status is PhaseStatus.COMPLETED
    assert output.error is None
    assert session.checkpoint(1).status is PhaseStatus.COMPLETED  # type: ignore[union-attr]
    failed = git(store.root, "log", "-p", "--", f"{session.phase_rel(1)}/concept_expansion.md")
    assert "model overloaded" in failed
    assert agents.calls() == Counter({"concept_expansion": 2})
    assert store.validate() == []
    assert_clean(store.root)


def expected_prompt(session: Session, phase: int, agent: str) -> str:
    definition = WORKFLOW.phase(phase)
    return AgentContext(
        idea=IDEA,
        project_id=session.project_id,
        session_id=session.session_id,
        phase_number=phase,
        phase_slug=definition.slug,
        phase_name=definition.name,
        agent_name=agent,
        description=definition.description,
    ).prompt


def test_command_agent_stores_stdout(store: Store, agents: Agents) -> None:
    count = CommandAgent([sys.executable, "-c", "import sys; d=sys.stdin.read(); print(len(d))"])
    runner = Runner(store, agents={**agents.all(), "concept_expansion": count})
    session = runner.start(P, S, idea=IDEA).session
    output = session.output(1, "concept_expansion")
    assert output is not None
    assert output.status is PhaseStatus.COMPLETED
    assert output.content == f"{len(expected_prompt(session, 1, 'concept_expansion'))}\n"
    # Neither the model nor the command record the command line (issue 15 item 2).
    assert output.model is None
    assert output.command == f"{Path(sys.executable).name} [2 arguments not recorded]"
    assert "import sys" not in git(store.root, "log", "-p", "--", "projects/")
    assert_clean(store.root)


def test_command_agent_receives_the_prompt_on_stdin(store: Store, agents: Agents) -> None:
    echo = CommandAgent(
        [sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read())"], model="echo"
    )
    runner = Runner(store, agents={**agents.all(), "concept_expansion": echo})
    session = runner.start(P, S, idea=IDEA).session
    output = session.output(1, "concept_expansion")
    assert output is not None
    assert output.content == expected_prompt(session, 1, "concept_expansion")
    assert output.model == "echo"


def test_failing_command_records_exit_status_and_stderr(store: Store, agents: Agents) -> None:
    failing = CommandAgent(
        [
            sys.executable,
            "-c",
            "import sys; print('partial answer'); "
            "sys.stderr.write('quota exceeded for key\\n'); sys.exit(3)",
        ]
    )
    runner = Runner(store, agents={**agents.all(), "concept_expansion": failing})
    with pytest.raises(AgentFailedError) as info:
        runner.start(P, S, idea=IDEA)
    assert "status 3" in str(info.value)
    session = store.session(P, S)
    output = session.output(1, "concept_expansion")
    assert output is not None
    assert output.status is PhaseStatus.FAILED
    assert output.exit_status == 3
    assert output.error is not None and "quota exceeded for key" in output.error
    assert output.content == "partial answer\n"
    text = (store.root / session.phase_rel(1) / "concept_expansion.md").read_text(encoding="utf-8")
    assert "- Exit Status: 3" in text
    checkpoint = session.checkpoint(1)
    assert checkpoint is not None and checkpoint.status is PhaseStatus.FAILED
    assert_clean(store.root)


def test_missing_command_is_a_recorded_failure(store: Store, agents: Agents) -> None:
    missing = CommandAgent(["/nonexistent/llm-cli", "-m", "x"])
    runner = Runner(store, agents={**agents.all(), "concept_expansion": missing})
    with pytest.raises(AgentFailedError):
        runner.start(P, S, idea=IDEA)
    output = store.session(P, S).output(1, "concept_expansion")
    assert output is not None and output.exit_status == 127
    assert_clean(store.root)


def test_agent_returning_the_wrong_type_is_a_recorded_failure(store: Store, agents: Agents) -> None:
    runner = Runner(store, agents={**agents.all(), "concept_expansion": lambda ctx: 42})  # type: ignore[dict-item]
    with pytest.raises(AgentFailedError) as info:
        runner.start(P, S, idea=IDEA)
    assert "int" in str(info.value)
    assert store.session(P, S).manifest().status is SessionStatus.FAILED
    assert_clean(store.root)


# ------------------------------------------------------------------------------ kill and resume

KILLED_RUNNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mdsessions import Runner, Store, idea_validation

    root, log, ref = sys.argv[1], Path(sys.argv[2]), sys.argv[3]

    def make(name):
        def agent(ctx):
            with log.open("a", encoding="utf-8") as fh:
                fh.write(name + "\\n")
            if name == "competitor_analysis":
                time.sleep(60)
            return "# " + name + " from the killed runner\\n"
        return agent

    names = [a for p in idea_validation().phases for a in p.agents]
    store = Store.open(root)
    Runner(store, agents={n: make(n) for n in names}).run(ref)
    """
)


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_work(
    store: Store, runner: Runner, agents: Agents
) -> None:
    session = runner.start(P, S, idea=IDEA).session
    session.save_feedback(1, approved=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUNNER, str(store.root), str(agents.log), session.ref],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while agents.calls()["competitor_analysis"] == 0:
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, "the slow agent never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)

    manifest = session.manifest()
    assert manifest.phase(2).status is PhaseStatus.IN_PROGRESS
    mi_rel = f"{session.phase_rel(2)}/market_intelligence.md"
    assert len(git(store.root, "log", "--format=%H", "--", mi_rel).split()) == 1

    with Store.open(store.root) as fresh:  # a new process would open the store anew
        result = Runner(fresh, agents=agents.all()).run(session.ref)
    assert result.phases_run == (2, 3)
    assert result.waiting_for_review == 3
    assert agents.calls() == Counter(
        {
            "concept_expansion": 1,
            "market_intelligence": 1,
            "competitor_analysis": 2,
            "niche_selection": 1,
        }
    )
    assert len(git(store.root, "log", "--format=%H", "--", mi_rel).split()) == 1
    kept = session.output(2, "market_intelligence")
    assert kept is not None and kept.content == "# market_intelligence from the killed runner\n"
    ca = session.output(2, "competitor_analysis")
    assert ca is not None and "from the killed runner" not in ca.content
    assert store.validate() == []
    assert_clean(store.root)


def test_retry_after_a_failure_keeps_the_agents_that_succeeded(
    store: Store, runner: Runner, agents: Agents
) -> None:
    session = runner.start(P, S, idea=IDEA).session
    edit_feedback(session, 1, approve)
    agents.fail["competitor_analysis"] = 1
    with pytest.raises(AgentFailedError):
        runner.run(session)
    assert session.manifest().status is SessionStatus.FAILED
    assert session.output(2, "competitor_analysis").status is PhaseStatus.FAILED  # type: ignore[union-attr]
    result = runner.run(session)
    assert result.phases_run == (2, 3)
    assert agents.calls()["market_intelligence"] == 1
    assert agents.calls()["competitor_analysis"] == 2
    assert session.output(2, "competitor_analysis").status is PhaseStatus.COMPLETED  # type: ignore[union-attr]
    assert store.validate() == []
    assert_clean(store.root)


def test_broken_feedback_edit_stops_the_run_and_stays_on_disk(
    store: Store, runner: Runner, agents: Agents
) -> None:
    session = runner.start(P, S, idea=IDEA).session
    edit_feedback(session, 1, lambda text: approve(text).replace("\nphase: 1\n", "\nphase: [1\n"))
    broken = feedback_path(session, 1).read_bytes()
    before = commit_count(store.root)
    with pytest.raises(DocumentError) as info:
        runner.run(session)
    assert "user_feedback.md" in str(info.value)
    assert feedback_path(session, 1).read_bytes() == broken
    assert commit_count(store.root) == before
    assert agents.calls() == Counter({"concept_expansion": 1})


def test_start_refuses_an_existing_session(store: Store, runner: Runner) -> None:
    runner.start(P, S, idea=IDEA)
    before = commit_count(store.root)
    with pytest.raises(SessionExistsError):
        runner.start(P, S, idea=IDEA)
    assert commit_count(store.root) == before


def test_agents_see_only_completed_earlier_phases(
    store: Store, runner: Runner, agents: Agents
) -> None:
    session = runner.start(P, S, idea=IDEA).session
    edit_feedback(session, 1, approve)
    runner.run(session)
    by_agent = {ctx.agent_name: ctx for ctx in agents.contexts}
    assert by_agent["concept_expansion"].previous_outputs == {}
    assert set(by_agent["market_intelligence"].previous_outputs) == {1}
    assert set(by_agent["niche_selection"].previous_outputs) == {1, 2}
    assert set(by_agent["niche_selection"].previous_outputs[2]) == {
        "market_intelligence",
        "competitor_analysis",
    }
    concept = session.output(1, "concept_expansion")
    assert concept is not None
    assert by_agent["niche_selection"].previous_outputs[1]["concept_expansion"] == concept.content
    checkpoint = session.checkpoint(3)
    assert checkpoint is not None
    assert f"{session.phase_rel(1)}/concept_expansion.md" in checkpoint.inputs


def test_a_failure_with_a_huge_stderr_stays_readable_and_retryable(
    store: Store, agents: Agents
) -> None:
    noisy = CommandAgent(
        [sys.executable, "-c", "import sys; sys.stderr.write('E' * 300000 + '\\n'); sys.exit(1)"]
    )
    with pytest.raises(AgentFailedError):
        Runner(store, agents={**agents.all(), "concept_expansion": noisy}).start(P, S, idea=IDEA)
    with Store.open(store.root) as fresh:
        assert fresh.validate() == []
        output = fresh.session(P, S).output(1, "concept_expansion")
        assert output is not None and output.status is PhaseStatus.FAILED
        result = Runner(fresh, agents=agents.all()).run(f"{P}/{S}")
        assert result.status is SessionStatus.AWAITING_REVIEW
    assert_clean(store.root)
