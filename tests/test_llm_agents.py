"""Tests for LLM agents, the usage protocol, retries and budgets (issue 15 items 1, 2, 6).

Offline end to end: the ``llm`` library's ``echo`` model (the ``llm-echo`` plugin) answers
in-process and as the ``llm`` command; prices come from ``genai-prices``' bundled table with
every socket of the test process refused, so no figure needs the network. Real stores in
``tmp_path``, real subprocesses, no mocks of git.
"""

from __future__ import annotations

import json
import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import frontmatter
import pytest
from helpers import assert_clean, git

from mdsessions import (
    AgentContext,
    AgentResult,
    Budget,
    BudgetExceededError,
    CommandAgent,
    LlmAgent,
    PhaseStatus,
    Runner,
    SessionStatus,
    Store,
    Workflow,
    WorkflowError,
    history,
)
from mdsessions.agents.command import recorded_command
from mdsessions.agents.llm import is_transient
from mdsessions.agents.pricing import price
from mdsessions.agents.usage import llm_usage
from mdsessions.errors import AgentExecutionError, AgentFailedError

LLM = str(Path(sys.executable).with_name("llm"))
FAKE_KEY = "sk-proj-" + "Zq7" * 16
IDEA = "A leaderboard for small gyms: members compete on streaks, not weights."


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``llm`` keeps its logs and keys in ``tmp_path``; this process may open no socket."""
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm-user"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network use in an offline test: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield


def script(tmp_path: Path, name: str, body: str) -> list[str]:
    """A Python program as a command agent's argv."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return [sys.executable, str(path)]


def workflow_toml(tmp_path: Path, agents: str, *, phases: int = 3, extra: str = "") -> Path:
    """A workflow of ``phases`` phases without review gates, one agent each (``a1`` …)."""
    text = '[workflow]\nname = "llmflow"\n\n'
    for n in range(1, phases + 1):
        text += (
            f'[[phases]]\nnumber = {n}\nslug = "p{n}"\nname = "Phase {n}"\nagents = ["a{n}"]\n\n'
        )
    path = tmp_path / "llmflow.toml"
    path.write_text(text + textwrap.dedent(agents) + textwrap.dedent(extra), encoding="utf-8")
    return path


def outputs(session_dir: Path) -> dict[str, frontmatter.Post]:
    return {
        p.stem: frontmatter.load(str(p))
        for p in sorted(session_dir.glob("phase_*/a*.md"))
        if p.parent.name != "prompts"
    }


# ----------------------------------------------------------------------- the acceptance run


USAGE_REPORTER = """\
    import json, os, sys
    prompt = sys.stdin.read()
    with open(os.environ["MDSESSIONS_USAGE_FILE"], "w") as f:
        json.dump({"model": "gpt-4o-mini", "input_tokens": len(prompt) // 4,
                   "output_tokens": 40, "response_id": "chatcmpl-test-1"}, f)
    print("# Summary\\n\\nA reviewed plan.")
"""


def test_a_whole_session_with_llm_echo_records_usage_and_no_command_line(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("H5_TEST_KEY", FAKE_KEY)  # the key comes from the environment
    reporter = script(tmp_path, "reporter", USAGE_REPORTER)
    path = workflow_toml(
        tmp_path,
        f"""\
        [agents.a1]
        llm = "echo"
        system = "You are a careful analyst."

        [agents.a2]
        command = [{json.dumps(LLM)}, "-m", "echo", "--key", "${{H5_TEST_KEY}}"]
        safe_args = ["-m", "echo"]

        [agents.a3]
        command = {json.dumps(reporter)}
        """,
    )
    result = Runner(store, path).start("p", "s", idea=IDEA)
    assert result.status is SessionStatus.COMPLETED
    session = result.session
    docs = outputs(store.root / session.rel)
    assert set(docs) == {"a1", "a2", "a3"}
    for name, doc in docs.items():
        meta = doc.metadata
        assert meta["status"] == "completed", name
        assert meta["model"] and meta["input_tokens"] > 0 and meta["output_tokens"] > 0, name
        assert meta["duration"] is not None, name
        prompt = frontmatter.load(
            str(next(store.root.glob(f"{session.rel}/phase_*/prompts/{name}.md")))
        )
        assert prompt.content and "## User" in prompt.content, name
    a1, a2, a3 = (docs[n].metadata for n in ("a1", "a2", "a3"))
    # The LLM agent: model, response id, the system prompt stored with its prompt; echo has
    # no price, so no cost rather than a wrong one.
    assert a1["model"] == "echo" and a1["response_id"].startswith("llm:")
    assert a1["cost"] is None and "no price for model 'echo'" in a1["price_source"]
    assert "careful analyst" in docs["a1"].content  # echo answers with what it was sent
    prompt1 = frontmatter.load(
        str(next(store.root.glob(f"{session.rel}/phase_1_p1/prompts/a1.md")))
    )
    assert prompt1.metadata["system"] == "You are a careful analyst."
    # `llm` as a command reports through the protocol; only the safe arguments are recorded.
    assert a2["model"] == "echo" and a2["cost"] is None
    assert a2["command"] == "llm -m echo [2 arguments not recorded]"
    # A program reporting a priced model: the cost from genai-prices with source and date.
    assert a3["model"] == "gpt-4o-mini" and a3["response_id"] == "chatcmpl-test-1"
    assert a3["cost"] > 0 and a3["price_source"].startswith("genai-prices ")
    assert "openai/gpt-4o-mini" in a3["price_source"] and len(a3["price_date"]) == 10
    assert a3["command"] == f"{Path(sys.executable).name} [1 argument not recorded]"
    # The manifest's totals sum every output.
    totals = session.manifest().totals
    assert totals.input_tokens == sum(d.metadata["input_tokens"] for d in docs.values())
    assert totals.output_tokens == sum(d.metadata["output_tokens"] for d in docs.values())
    assert totals.cost == pytest.approx(a3["cost"])
    # No key anywhere in history; no command line in any session document (the workflow's
    # declaration, copied to workflows/, names the variable only).
    assert FAKE_KEY not in git(store.root, "log", "-p", "--all")
    log = git(store.root, "log", "-p", "--all", "--", "projects/")
    assert "--key" not in log and LLM not in log and str(tmp_path / "reporter.py") not in log
    assert "H5_TEST_KEY" not in log
    assert_clean(store.root)
    assert history.verify(store).ok


def test_prices_come_from_the_bundled_table(tmp_path: Path) -> None:
    known = price("gpt-4o-mini", input_tokens=1000, output_tokens=100)
    assert known.cost == pytest.approx(0.00021)
    assert known.source.startswith("genai-prices ") and "openai/gpt-4o-mini" in known.source
    unknown = price("no-such-model-xyz", input_tokens=10, output_tokens=10)
    assert unknown.cost is None and "no price" in unknown.source


def test_the_llm_agent_in_process(tmp_path: Path) -> None:
    agent = LlmAgent("echo", system="sys")
    ctx = AgentContext(
        idea="An idea", project_id="p", session_id="s", phase_number=1, phase_slug="x",
        phase_name="X", agent_name="a",
    )  # fmt: skip
    result = agent(ctx)
    assert isinstance(result, AgentResult)
    assert result.model == "echo" and result.input_tokens > 0 and result.output_tokens > 0
    assert "An idea" in result.content and result.cost is None


def test_an_unknown_llm_model_is_a_clear_workflow_error() -> None:
    with pytest.raises(WorkflowError, match="llm knows no model 'no-such-model-xyz'"):
        LlmAgent("no-such-model-xyz")


def test_an_invalid_option_is_a_recorded_failure_that_is_not_retried(
    tmp_path: Path, store: Store
) -> None:
    path = workflow_toml(
        tmp_path,
        """\
        [agents.a1]
        llm = "echo"
        options = { no_such_option = 1 }
        max_retries = 3
        retry_delay = 0
        """,
        phases=1,
    )
    with pytest.raises(AgentFailedError, match="Extra inputs are not permitted"):
        Runner(store, path).start("p", "s", idea=IDEA)
    out = outputs(store.root / "projects/p/sessions/s")["a1"].metadata
    assert out["status"] == "failed" and "attempts" not in out  # one try: not transient
    assert_clean(store.root)
    assert history.verify(store).ok


# --------------------------------------------------------------------- the usage protocol


def test_recorded_command_keeps_only_the_program_and_safe_arguments() -> None:
    argv = ["/usr/local/bin/llm", "-m", "gpt-4o", "--key", FAKE_KEY, "-o", "temperature", "0"]
    assert recorded_command(argv) == "llm [7 arguments not recorded]"
    assert recorded_command(argv, ["-m", "gpt-4o"]) == "llm -m gpt-4o [5 arguments not recorded]"
    assert recorded_command(["cat"]) == "cat"


def test_llm_usage_line_is_read_with_the_model_argument() -> None:
    report = llm_usage(["llm", "-m", "gpt-4o-mini"], "Token usage: 1,204 input, 37 output\n")
    assert report is not None
    assert (report.model, report.input_tokens, report.output_tokens) == ("gpt-4o-mini", 1204, 37)
    assert llm_usage(["llm"], "nothing") is None


def ctx() -> AgentContext:
    return AgentContext(
        idea="idea", project_id="p", session_id="s", phase_number=1, phase_slug="x",
        phase_name="X", agent_name="a",
    )  # fmt: skip


def test_a_reported_cost_is_kept_and_named(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "costly",
        """\
        import json, os
        json.dump({"model": "my-local-model", "input_tokens": 5, "output_tokens": 7,
                   "cost_usd": 0.25}, open(os.environ["MDSESSIONS_USAGE_FILE"], "w"))
        print("ok")
        """,
    )
    result = CommandAgent(argv)(ctx())
    assert (result.model, result.cost, result.input_tokens) == ("my-local-model", 0.25, 5)
    assert result.price_source == "reported by " + Path(sys.executable).name


def test_an_argument_naming_an_unset_variable_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("H5_UNSET_KEY", raising=False)
    agent = CommandAgent([sys.executable, "-c", "print(1)", "--key", "$H5_UNSET_KEY"])
    with pytest.raises(AgentExecutionError, match=r"argument 4 names .*\$H5_UNSET_KEY.* not set"):
        agent(ctx())


def test_a_command_without_a_report_records_no_model(tmp_path: Path) -> None:
    result = CommandAgent([sys.executable, "-c", "print('hi')"])(ctx())
    assert result.model is None and result.cost == 0.0 and result.content == "hi\n"


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ("not json", "not JSON"),
        ('{"input_tokens": -1}', "input_tokens"),
        ('{"tokens": 3}', "tokens: Extra inputs are not permitted"),
        ("[1, 2]", "the object"),
    ],
)
def test_an_invalid_usage_report_is_a_clear_error(
    tmp_path: Path, report: str, expected: str
) -> None:
    argv = script(
        tmp_path,
        "bad",
        f"""\
        import os
        open(os.environ["MDSESSIONS_USAGE_FILE"], "w").write({report!r})
        """,
    )
    with pytest.raises(AgentExecutionError, match="invalid usage report") as info:
        CommandAgent(argv)(ctx())
    assert expected in str(info.value)


# ------------------------------------------------------------------------------- retries


FLAKY = """\
    import sys
    from pathlib import Path
    counter = Path({counter!r})
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    if n < {fails}:
        sys.stderr.write("rate limited, try later\\n")
        sys.exit({status})
    print("# Done after", n + 1, "tries")
"""


def flaky_workflow(tmp_path: Path, *, fails: int, status: int, retryable: str) -> Path:
    argv = script(
        tmp_path,
        "flaky",
        FLAKY.format(counter=str(tmp_path / "count"), fails=fails, status=status),
    )
    return workflow_toml(
        tmp_path,
        f"""\
        [agents.a1]
        command = {json.dumps(argv)}
        max_retries = 2
        retry_exit_statuses = {retryable}
        retry_delay = 0.01
        retry_max_delay = 0.05
        """,
        phases=1,
    )


def test_a_command_failing_twice_with_a_retryable_status_then_succeeding(
    tmp_path: Path, store: Store
) -> None:
    path = flaky_workflow(tmp_path, fails=2, status=75, retryable="[75]")
    result = Runner(store, path).start("p", "s", idea=IDEA)
    assert result.status is SessionStatus.COMPLETED
    out = outputs(store.root / result.session.rel)["a1"]
    assert out.content.strip().endswith("# Done after 3 tries")
    attempts = out.metadata["attempts"]
    assert [a["number"] for a in attempts] == [1, 2, 3]
    assert [a["status"] for a in attempts] == ["failed", "failed", "completed"]
    assert [a.get("exit_status") for a in attempts] == [75, 75, None]
    assert attempts[0]["error"].endswith("exited with status 75: rate limited, try later")
    assert "Attempts: 3" in out.content or "- Attempts: 3" in (
        store.root / result.session.rel / "phase_1_p1/a1.md"
    ).read_text(encoding="utf-8")
    # One output: one agent-output commit for it.
    subjects = git(store.root, "log", "--format=%s", "--", f"{result.session.rel}/phase_1_p1/a1.md")
    assert len(subjects.splitlines()) == 1
    assert_clean(store.root)
    assert history.verify(store).ok


def test_a_status_not_marked_retryable_fails_at_once(tmp_path: Path, store: Store) -> None:
    path = flaky_workflow(tmp_path, fails=2, status=3, retryable="[75]")
    with pytest.raises(AgentFailedError, match="exited with status 3"):
        Runner(store, path).start("p", "s", idea=IDEA)
    assert (tmp_path / "count").read_text() == "1"
    out = outputs(store.root / "projects/p/sessions/s")["a1"].metadata
    assert out["status"] == "failed" and out["exit_status"] == 3 and "attempts" not in out
    assert_clean(store.root)


def test_retries_exhausted_record_every_attempt(tmp_path: Path, store: Store) -> None:
    path = flaky_workflow(tmp_path, fails=5, status=75, retryable="[75]")
    with pytest.raises(AgentFailedError):
        Runner(store, path).start("p", "s", idea=IDEA)
    out = outputs(store.root / "projects/p/sessions/s")["a1"].metadata
    assert out["status"] == "failed"
    assert [a["status"] for a in out["attempts"]] == ["failed"] * 3
    assert_clean(store.root)
    assert history.verify(store).ok


def test_a_timeout_is_retried(tmp_path: Path, store: Store) -> None:
    argv = script(
        tmp_path,
        "slow",
        f"""\
        import time
        from pathlib import Path
        counter = Path({str(tmp_path / "count")!r})
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
        if n == 0:
            time.sleep(30)
        print("fast enough")
        """,
    )
    path = workflow_toml(
        tmp_path,
        f"""\
        [agents.a1]
        command = {json.dumps(argv)}
        timeout = 1
        max_retries = 1
        retry_delay = 0.01
        """,
        phases=1,
    )
    result = Runner(store, path).start("p", "s", idea=IDEA)
    out = outputs(store.root / result.session.rel)["a1"].metadata
    assert [a["status"] for a in out["attempts"]] == ["failed", "completed"]
    assert "timed out after 1 s" in out["attempts"][0]["error"]


class RateLimitError(Exception):
    """Named as the providers' clients name theirs."""


class StatusError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def test_transient_provider_errors_are_recognised() -> None:
    assert is_transient(RateLimitError("slow down"))
    assert is_transient(TimeoutError())
    assert is_transient(StatusError(429)) and is_transient(StatusError(503))
    assert not is_transient(StatusError(401)) and not is_transient(ValueError("bad option"))


def test_a_python_agent_raising_a_transient_error_is_retried(store: Store) -> None:
    calls: list[int] = []

    def flaky(ctx: AgentContext) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise AgentExecutionError("provider rate limit", transient=True)
        return "# ok"

    from mdsessions import RetryPolicy

    wf = Workflow.from_dict(
        {
            "workflow": {"name": "one"},
            "phases": [{"number": 1, "slug": "a", "name": "A", "agents": ["a1"]}],
        }
    )
    runner = Runner(
        store, wf, agents={"a1": flaky}, retry=RetryPolicy(max_retries=2, retry_delay=0.001)
    )
    result = runner.start("p", "s", idea=IDEA)
    output = result.session.output(1, "a1")
    assert output is not None and output.status is PhaseStatus.COMPLETED
    assert [a.status for a in output.attempts] == [
        PhaseStatus.FAILED,
        PhaseStatus.FAILED,
        PhaseStatus.COMPLETED,
    ]


# -------------------------------------------------------------------------------- budgets


def priced(cost: float, tokens: int = 100) -> object:
    def agent(ctx: AgentContext) -> AgentResult:
        return AgentResult(
            content=f"# Phase {ctx.phase_number}",
            model="priced",
            input_tokens=tokens // 2,
            output_tokens=tokens - tokens // 2,
            cost=cost,
        )

    return agent


def test_a_budget_of_one_cent_stops_before_the_phase_that_would_exceed_it(
    tmp_path: Path, store: Store
) -> None:
    path = workflow_toml(
        tmp_path,
        "",
        phases=4,
        extra="\n[budget]\nmax_cost_usd = 0.01\n",
    )
    agents = {f"a{n}": priced(0.004) for n in range(1, 5)}
    runner = Runner(store, path, agents=agents)  # type: ignore[dict-item]
    with pytest.raises(BudgetExceededError) as info:
        runner.start("p", "s", idea=IDEA)
    message = str(info.value)
    assert "phase 3 (Phase 3)" in message and "was not started" in message
    assert "$0.008000" in message and "$0.004000" in message and "$0.010000" in message
    assert info.value.phase == 3 and info.value.spent_usd == pytest.approx(0.008)
    session = store.session("p", "s")
    manifest = session.manifest()
    assert [p.status for p in manifest.phases] == [
        PhaseStatus.COMPLETED,
        PhaseStatus.COMPLETED,
        PhaseStatus.PENDING,
        PhaseStatus.PENDING,
    ]
    assert not (store.root / session.rel / "phase_3_p3").exists()
    head = git(store.root, "rev-parse", "HEAD")
    # Run again with the same budget: refused again, nothing written.
    with pytest.raises(BudgetExceededError):
        Runner(store, path, agents=agents).run(session)  # type: ignore[arg-type]
    assert git(store.root, "rev-parse", "HEAD") == head
    assert_clean(store.root)
    assert history.verify(store).ok
    # A larger budget given to the runner lets the session go on.
    more = Runner(store, path, agents=agents, budget=Budget(max_cost_usd=1.0))  # type: ignore[arg-type]
    assert more.run(session).status is SessionStatus.COMPLETED


def test_a_token_budget(tmp_path: Path, store: Store) -> None:
    path = workflow_toml(tmp_path, "", phases=3, extra="\n[budget]\nmax_tokens = 150\n")
    agents = {f"a{n}": priced(0.0, tokens=100) for n in range(1, 4)}
    with pytest.raises(BudgetExceededError, match=r"tokens: used 100 \+ next phase estimated 100"):
        Runner(store, path, agents=agents).start("p", "s", idea=IDEA)  # type: ignore[arg-type]


# --------------------------------------------------------------------- workflow declarations


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ('llm = "echo"\ncommand = ["llm"]', "needs exactly one of"),
        ("llm = 3", "llm must be a model id"),
        ('llm = "echo"\nmax_retries = -1', "max_retries must be an integer >= 0"),
        ('llm = "echo"\nretry_exit_statuses = ["x"]', "retry_exit_statuses must be a list"),
        ('llm = "echo"\noptions = 3', "options must be a table"),
        ('llm = "echo"\nsystem = 3', "system must be a string"),
        ('command = ["llm"]\nsafe_args = [1]', "safe_args must be a list of strings"),
    ],
)
def test_a_bad_agent_declaration_names_the_key(tmp_path: Path, agent: str, expected: str) -> None:
    path = workflow_toml(tmp_path, f"[agents.a1]\n{agent}\n", phases=1)
    with pytest.raises(WorkflowError, match="agents.a1") as info:
        Workflow.from_toml(path)
    assert expected in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        ("max_cost_usd = -1", "max_cost_usd must be a number of USD >= 0"),
        ('max_tokens = "many"', "max_tokens must be an integer >= 0"),
        ("max_dollars = 1", "unknown keys ['max_dollars']"),
    ],
)
def test_a_bad_budget_names_the_key(tmp_path: Path, budget: str, expected: str) -> None:
    path = workflow_toml(tmp_path, "", phases=1, extra=f"\n[budget]\n{budget}\n")
    with pytest.raises(WorkflowError, match=r"\[budget\]") as info:
        Workflow.from_toml(path)
    assert expected in str(info.value)


def test_an_llm_agent_declaration_loads(tmp_path: Path) -> None:
    path = workflow_toml(
        tmp_path,
        """\
        [agents.a1]
        llm = "gpt-4o-mini"
        system = "Be brief."
        options = { temperature = 0.2 }
        max_retries = 2
        """,
        phases=1,
        extra="\n[budget]\nmax_cost_usd = 0.5\nmax_tokens = 1000\n",
    )
    wf = Workflow.from_toml(path)
    spec = wf.agents["a1"]
    assert (spec.llm, spec.model, spec.system) == ("gpt-4o-mini", "gpt-4o-mini", "Be brief.")
    assert dict(spec.options) == {"temperature": 0.2} and spec.retry.max_retries == 2
    assert wf.budget == Budget(max_cost_usd=0.5, max_tokens=1000)


def test_run_max_cost_usd_stops_the_command_line_run(tmp_path: Path, store: Store) -> None:
    from click.testing import CliRunner

    from mdsessions.cli import cli

    reporter = script(
        tmp_path,
        "cent",
        """\
        import json, os
        json.dump({"model": "local", "input_tokens": 10, "output_tokens": 10,
                   "cost_usd": 0.004}, open(os.environ["MDSESSIONS_USAGE_FILE"], "w"))
        print("# paid")
        """,
    )
    agents = "".join(f"[agents.a{n}]\ncommand = {json.dumps(reporter)}\n\n" for n in (1, 2, 3))
    path = workflow_toml(tmp_path, agents, phases=3)
    args = ["--store", str(store.root), "run", "--new", "p", "s", "--idea", IDEA]
    result = CliRunner().invoke(cli, [*args, "--workflow", str(path), "--max-cost-usd", "0.01"])
    assert result.exit_code == 1, result.output
    error = result.stderr[result.stderr.find("Error: ") :]  # after the progress lines
    assert error.startswith("Error: budget reached: phase 3 (Phase 3) of p/s"), result.stderr
    assert "spent $0.008000" in result.stderr and "budget of $0.010000" in result.stderr
    assert_clean(store.root)
    head = git(store.root, "rev-parse", "HEAD")
    again = ["--store", str(store.root), "run", "p/s", "--max-cost-usd", "0.01"]
    assert CliRunner().invoke(cli, again).exit_code == 1
    assert git(store.root, "rev-parse", "HEAD") == head
    assert CliRunner().invoke(cli, [*again[:-1], "1"]).exit_code == 0
    assert store.session("p", "s").manifest().status is SessionStatus.COMPLETED
    assert store.session("p", "s").manifest().totals.cost == pytest.approx(0.012)


# ------------------------------------------------------------------------ sample project


@pytest.mark.parametrize(
    "kind",
    ["llm", pytest.param("llm-command", marks=pytest.mark.slow)],  # 8 llm processes
)
def test_the_sample_project_runs_its_agents_through_llm(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    from sample_project import demo

    target = tmp_path / "demo-store"
    assert demo.main([str(target), "--limit", "1", "--agents", kind, "--model", "echo"]) == 0
    assert "1 sessions completed" in capsys.readouterr().out
    store = Store.open(target)
    try:
        (summary,) = store.list_sessions()
        session = store.session(summary.project_id, summary.session_id)
        for outs in session.outputs(session.manifest().completed_phases).values():
            for out in outs.values():
                assert out.model == "echo" and out.input_tokens > 0 and out.cost is None
                assert kind == "llm" or out.command == "llm -m echo [2 arguments not recorded]"
        assert history.verify(store).ok
    finally:
        store.close()


def test_the_real_model_configuration_needs_a_key_from_the_environment(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = Path(__file__).resolve().parents[1] / "sample_project" / "workflow-llm.toml"
    wf = Workflow.from_toml(path)
    assert wf.agents["concept_expansion"].llm == "gpt-4o-mini"
    assert wf.budget == Budget(max_cost_usd=0.5, max_tokens=400000)
    with pytest.raises(AgentFailedError, match="(?i)key"):
        Runner(store, path).start("p", "s", idea=IDEA)
    out = store.session("p", "s").output(1, "concept_expansion")
    assert out is not None and out.status is PhaseStatus.FAILED and out.attempts == []
    assert_clean(store.root)


def test_an_unknown_llm_model_in_the_workflow_writes_nothing(tmp_path: Path, store: Store) -> None:
    path = workflow_toml(tmp_path, '[agents.a2]\nllm = "no-such-model-xyz"\n', phases=2)
    agents = {"a1": priced(0.0)}
    head = git(store.root, "rev-parse", "HEAD")
    with pytest.raises(WorkflowError, match="llm knows no model 'no-such-model-xyz'"):
        Runner(store, path, agents=agents).start("p", "s", idea=IDEA)  # type: ignore[dict-item]
    assert git(store.root, "rev-parse", "HEAD") == head
    assert not (store.root / "projects").exists()
    assert_clean(store.root)
