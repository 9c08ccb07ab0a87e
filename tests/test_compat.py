"""Tests for mdsessions.compat: the seed-003 CheckpointManager usage, run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    PERSON,
    RUNNER,
    SHARED,
    assert_all_documents_parse,
    assert_clean,
    author,
    commit_count,
    git,
    parse_independent,
    trailers,
)

from mdsessions import CheckpointManager

SEED = SHARED / "seeds" / "003_2072891feead04f8.txt"
SEED_IMPORT = "from haytham.checkpoint.checkpoint_manager import CheckpointManager"

# The seed's "Usage" code blocks, verbatim (only the import line differs; see
# test_the_blocks_are_the_seeds_own).
BASIC_USAGE = """\
from mdsessions import CheckpointManager

# Initialize manager
checkpoint_manager = CheckpointManager(base_dir="projects")

# Create session
session_dir = checkpoint_manager.create_session(
    project_id="project-123",
    session_id="session-456",
    user_id="user-789",
    execution_mode="mvp"
)

# Save checkpoint
checkpoint_manager.save_checkpoint(
    project_id="project-123",
    session_id="session-456",
    phase_num=1,
    status="completed",
    agents=[
        {
            "agent_name": "concept_expansion",
            "status": "completed",
            "output_file": "concept_expansion.md",
            "tokens": 15000,
            "cost": 0.0375,
            "duration": 120.5
        }
    ],
    started="2024-11-24T10:00:00Z",
    completed="2024-11-24T10:02:00Z",
    duration=120.5,
    execution_mode="single"
)

# Save agent output
checkpoint_manager.save_agent_output(
    project_id="project-123",
    session_id="session-456",
    phase_num=1,
    agent_name="concept_expansion",
    output_content="Agent analysis and recommendations...",
    status="completed",
    duration=120.5,
    model="anthropic.claude-3-sonnet-20240229-v1:0",
    input_tokens=12000,
    output_tokens=3000,
    tools_used=["file_write"]
)

# Save user feedback
checkpoint_manager.save_user_feedback(
    project_id="project-123",
    session_id="session-456",
    phase_num=1,
    reviewed=True,
    approved=True,
    comments="Looks great!",
    action="approved"
)
"""

SESSION_RESUME = """\
# Load session state
session_state = checkpoint_manager.load_session(
    project_id="project-123",
    session_id="session-456"
)

print(f"Current phase: {session_state['current_phase']}")
print(f"Completed phases: {session_state['completed_phases']}")
print(f"Status: {session_state['status']}")

# Get phase outputs
outputs = checkpoint_manager.get_phase_outputs(
    project_id="project-123",
    session_id="session-456",
    phase_nums=[1, 2]  # Or None for all completed phases
)

# Access agent outputs
concept_output = outputs[1]["concept_expansion"]
market_output = outputs[2]["market_intelligence"]
"""

CHECKPOINT_VALIDATION = """\
# Validate checkpoint
is_valid, errors = checkpoint_manager.validate_checkpoint(
    project_id="project-123",
    session_id="session-456",
    phase_num=1
)

if not is_valid:
    print(f"Validation errors: {errors}")
"""

# Between the blocks: the phase-2 output the Session Resume block reads.
PHASE_2_OUTPUT = """\
checkpoint_manager.save_agent_output(
    project_id="project-123",
    session_id="session-456",
    phase_num=2,
    agent_name="market_intelligence",
    output_content="Market analysis...",
    status="completed",
    duration=60.0,
    model="anthropic.claude-3-sonnet-20240229-v1:0",
    input_tokens=8000,
    output_tokens=2000,
    tools_used=["web_search"]
)
"""

SESSION = Path("projects/project-123/sessions/session-456")


def seed_python_blocks() -> list[str]:
    text = SEED.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)


def test_the_blocks_are_the_seeds_own() -> None:
    if not SEED.is_file():
        pytest.skip(f"../shared/seeds is absent: {SEED} does not exist")
    blocks = seed_python_blocks()
    assert blocks[0].replace(SEED_IMPORT, "from mdsessions import CheckpointManager") == BASIC_USAGE
    assert blocks[1] == SESSION_RESUME
    assert blocks[2] == CHECKPOINT_VALIDATION


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_block(code: str, namespace: dict[str, Any], root: Path) -> int:
    """Run one block; return how many commits it made."""
    before = commit_count(root) if (root / ".git").is_dir() else 0
    exec(compile(code, "<seed-003>", "exec"), namespace)  # noqa: S102 - the seed's own example
    return commit_count(root) - before


def test_seed_usage_runs_as_written(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {}
    root = in_tmp / "projects"
    made = run_block(BASIC_USAGE, namespace, root)
    manager: CheckpointManager = namespace["checkpoint_manager"]
    try:
        # create_session + save_checkpoint + save_agent_output + save_user_feedback,
        # each one commit (plus the store's own init commit).
        assert made == 5
        session_dir = namespace["session_dir"]
        assert Path(session_dir) == in_tmp / SESSION
        assert_clean(root)
        assert author(root) == PERSON
        assert trailers(root)["Mdsessions-Kind"] == "user_feedback"

        assert run_block(PHASE_2_OUTPUT, namespace, root) == 1
        assert author(root) == RUNNER

        assert run_block(SESSION_RESUME, namespace, root) == 0
        printed = capsys.readouterr().out
        assert "Current phase: 2\n" in printed
        assert "Completed phases: [1]\n" in printed
        assert "Status: in_progress\n" in printed
        state = namespace["session_state"]
        assert isinstance(state, dict)
        for key in ("current_phase", "completed_phases", "status"):
            assert key in state
        assert state["current_phase"] == 2
        assert state["completed_phases"] == [1]
        assert state["status"] == "in_progress"
        outputs = namespace["outputs"]
        assert set(outputs) == {1, 2}
        assert namespace["concept_output"] == "Agent analysis and recommendations..."
        assert namespace["market_output"] == "Market analysis..."
        assert manager.get_approved_phases(project_id="project-123", session_id="session-456") == [
            1
        ]

        assert run_block(CHECKPOINT_VALIDATION, namespace, root) == 0
        assert (namespace["is_valid"], namespace["errors"]) == (True, [])
        assert "Validation errors" not in capsys.readouterr().out
        assert_clean(root)
        assert_all_documents_parse(root)
    finally:
        manager.close()


def test_seed_layout_and_sections(in_tmp: Path) -> None:
    namespace: dict[str, Any] = {}
    run_block(BASIC_USAGE, namespace, in_tmp / "projects")
    namespace["checkpoint_manager"].close()
    session = in_tmp / SESSION
    phase1 = session / "phase_1_concept"
    expected = {
        session / "session_manifest.md": [
            "# Session Manifest",
            "## Metadata",
            "- Session ID: session-456",
            "- Project ID: project-123",
            "- User ID: user-789",
            "- Workflow Type: idea_validation",
            "- Execution Mode: mvp",
            "## Phase Status",
        ],
        phase1 / "checkpoint.md": [
            "# Phase Checkpoint: Concept Expansion",
            "## Metadata",
            "- Phase Number: 1",
            "- Phase Name: Concept Expansion",
            "- Status: completed",
            "- Started: 2024-11-24T10:00:00Z",
            "- Completed: 2024-11-24T10:02:00Z",
            "## Agents in Phase",
            "- concept_expansion: completed",
            "## Metrics",
            "- Total Tokens: 15000",
            "- Cost: $0.0375",
        ],
        phase1 / "concept_expansion.md": [
            "# Agent Output: Concept Expansion",
            "## Metadata",
            "- Agent: concept_expansion",
            "- Phase: 1 - Concept Expansion",
            "- Status: completed",
            "## Execution Details",
            "- Model: anthropic.claude-3-sonnet-20240229-v1:0",
            "- Input Tokens: 12000",
            "- Output Tokens: 3000",
            "- Tools Used: [file_write]",
            "## Output",
        ],
        # Since issue 16 the decision is said once, in the frontmatter (seed 003's body
        # sections Review Status / Requested Changes / Action Taken repeated it).
        phase1 / "user_feedback.md": [
            "# User Feedback: Concept Expansion",
            "reviewed: true",
            "approved: true",
            "action: approved",
            "## User Comments",
            "Looks great!",
        ],
    }
    for path, lines in expected.items():
        assert path.is_file(), path
        text = path.read_text(encoding="utf-8").split("\n")
        for line in lines:
            assert line in text, (path.name, line)
        assert parse_independent(path).metadata["schema"].startswith("mdsessions/")
    manifest_lines = (session / "session_manifest.md").read_text(encoding="utf-8").split("\n")
    assert any(line.startswith("| 1 | Concept Expansion | completed |") for line in manifest_lines)
    output = (phase1 / "concept_expansion.md").read_bytes()
    assert output.endswith(b"\n## Output\n\nAgent analysis and recommendations...")


def test_create_session_creates_the_phase_directories(in_tmp: Path) -> None:
    """Seed 003, "Execution Modes": MVP creates 1, 2, 3, 6, 7; Full creates 1-7."""
    manager = CheckpointManager(base_dir="projects")
    try:
        mvp = manager.create_session(project_id="p", session_id="mvp", execution_mode="mvp")
        full = manager.create_session(project_id="p", session_id="full", execution_mode="full")
    finally:
        manager.close()
    assert sorted(p.name for p in Path(mvp).iterdir() if p.is_dir()) == [
        "phase_1_concept",
        "phase_2_market_research",
        "phase_3_niche_selection",
        "phase_6_validation",
        "phase_7_synthesis",
    ]
    assert sorted(p.name for p in Path(full).iterdir() if p.is_dir()) == [
        "phase_1_concept",
        "phase_2_market_research",
        "phase_3_niche_selection",
        "phase_4_product_strategy",
        "phase_5_business_planning",
        "phase_6_validation",
        "phase_7_synthesis",
    ]
    assert_clean(in_tmp / "projects")


@pytest.fixture
def manager(in_tmp: Path) -> Any:
    cm = CheckpointManager(base_dir="projects")
    cm.create_session(project_id="project-123", session_id="session-456", user_id="u")
    yield cm
    cm.close()


def test_invalid_phase_number_is_a_value_error(manager: CheckpointManager, in_tmp: Path) -> None:
    root = in_tmp / "projects"
    before = commit_count(root)
    for phase in (0, 4, 5, 8, -1, "1", 1.0, True):
        with pytest.raises(ValueError):
            manager.save_checkpoint(
                project_id="project-123",
                session_id="session-456",
                phase_num=phase,  # type: ignore[arg-type]
                status="completed",
            )
        with pytest.raises(ValueError):
            manager.save_agent_output(
                project_id="project-123",
                session_id="session-456",
                phase_num=phase,  # type: ignore[arg-type]
                agent_name="a",
                output_content="x",
            )
    assert commit_count(root) == before
    assert_clean(root)


def test_invalid_status_is_a_value_error(manager: CheckpointManager, in_tmp: Path) -> None:
    root = in_tmp / "projects"
    before = commit_count(root)
    with pytest.raises(ValueError, match="status"):
        manager.save_checkpoint(
            project_id="project-123", session_id="session-456", phase_num=1, status="done"
        )
    with pytest.raises(ValueError, match="status"):
        manager.save_agent_output(
            project_id="project-123",
            session_id="session-456",
            phase_num=1,
            agent_name="a",
            output_content="x",
            status="done",
        )
    assert commit_count(root) == before


def test_invalid_execution_mode_is_a_value_error(manager: CheckpointManager, in_tmp: Path) -> None:
    root = in_tmp / "projects"
    before = commit_count(root)
    with pytest.raises(ValueError, match="turbo"):
        manager.create_session(
            project_id="project-123", session_id="s2", user_id="u", execution_mode="turbo"
        )
    assert commit_count(root) == before
    assert not (root / "project-123" / "sessions" / "s2").exists()


def test_missing_session_is_file_not_found(manager: CheckpointManager) -> None:
    with pytest.raises(FileNotFoundError):
        manager.load_session(project_id="project-123", session_id="nope")
    with pytest.raises(FileNotFoundError):
        manager.save_checkpoint(
            project_id="project-123", session_id="nope", phase_num=1, status="completed"
        )
    with pytest.raises(FileNotFoundError):
        manager.get_phase_outputs(project_id="nobody", session_id="nope")
    is_valid, errors = manager.validate_checkpoint(
        project_id="project-123", session_id="nope", phase_num=1
    )
    assert is_valid is False and errors


def test_validate_checkpoint_shapes(manager: CheckpointManager, in_tmp: Path) -> None:
    result = manager.validate_checkpoint(
        project_id="project-123", session_id="session-456", phase_num=1
    )
    assert isinstance(result, tuple) and len(result) == 2
    is_valid, errors = result
    assert is_valid is False
    assert isinstance(errors, list) and all(isinstance(e, str) for e in errors)
    assert any("checkpoint" in e for e in errors)

    manager.save_checkpoint(
        project_id="project-123",
        session_id="session-456",
        phase_num=1,
        status="completed",
        agents=[
            {
                "agent_name": "concept_expansion",
                "status": "completed",
                "output_file": "concept_expansion.md",
            }
        ],
    )
    is_valid, errors = manager.validate_checkpoint(
        project_id="project-123", session_id="session-456", phase_num=1
    )
    assert is_valid is False
    assert any("concept_expansion.md" in e for e in errors)

    checkpoint = in_tmp / "projects" / "project-123" / "sessions" / "session-456"
    checkpoint = checkpoint / "phase_1_concept" / "checkpoint.md"
    checkpoint.write_text(
        checkpoint.read_text(encoding="utf-8").replace("\nphase: 1\n", "\nphase: one\n", 1),
        encoding="utf-8",
    )
    is_valid, errors = manager.validate_checkpoint(
        project_id="project-123", session_id="session-456", phase_num=1
    )
    assert is_valid is False
    assert any("checkpoint.md" in e and "phase" in e for e in errors)


def test_load_session_shape(manager: CheckpointManager) -> None:
    state = manager.load_session(project_id="project-123", session_id="session-456")
    assert state["project_id"] == "project-123"
    assert state["session_id"] == "session-456"
    assert state["user_id"] == "u"
    assert state["execution_mode"] == "mvp"
    assert state["workflow_type"] == "idea_validation"
    assert state["status"] == "created"
    assert state["current_phase"] == 1
    assert state["completed_phases"] == []
    assert sorted(state["phases"]) == [1, 2, 3, 6, 7]
    assert state["created"].endswith("Z")


def test_get_phase_outputs_defaults_to_completed_phases(manager: CheckpointManager) -> None:
    ids = {"project_id": "project-123", "session_id": "session-456"}
    manager.save_agent_output(
        **ids, phase_num=1, agent_name="concept_expansion", output_content="c\n---\n{{ x }}\n"
    )
    assert manager.get_phase_outputs(**ids) == {}
    manager.save_checkpoint(**ids, phase_num=1, status="completed")
    assert manager.get_phase_outputs(**ids) == {1: {"concept_expansion": "c\n---\n{{ x }}\n"}}
    assert manager.get_phase_outputs(**ids, phase_nums=[2]) == {2: {}}
    assert manager.get_approved_phases(**ids) == []
    manager.save_user_feedback(**ids, phase_num=1, approved=True)
    assert manager.get_approved_phases(**ids) == [1]


def test_save_methods_return_the_written_files(manager: CheckpointManager, in_tmp: Path) -> None:
    ids = {"project_id": "project-123", "session_id": "session-456"}
    folder = in_tmp / SESSION / "phase_1_concept"
    out = manager.save_agent_output(
        **ids, phase_num=1, agent_name="concept_expansion", output_content="x"
    )
    cp = manager.save_checkpoint(**ids, phase_num=1, status="completed")
    fb = manager.save_user_feedback(
        **ids,
        phase_num=1,
        approved=False,
        action="revise",
        comments="More detail.",
        requested_changes=["Add numbers"],
    )
    assert Path(out) == folder / "concept_expansion.md"
    assert Path(cp) == folder / "checkpoint.md"
    assert Path(fb) == folder / "user_feedback.md"
    assert all(Path(p).is_file() for p in (out, cp, fb))
    text = Path(fb).read_text(encoding="utf-8")
    assert "- Add numbers" in text and "More detail." in text
    assert_clean(in_tmp / "projects")


def test_manager_inside_a_persons_own_git_repository(in_tmp: Path) -> None:
    """Running the seed example from inside another repository keeps that repository as is."""
    git_dir = in_tmp / ".git"
    git(in_tmp, "init", "-q")
    (in_tmp / "app.py").write_text("print('mine')\n")
    namespace: dict[str, Any] = {}
    run_block(BASIC_USAGE, namespace, in_tmp / "projects")
    namespace["checkpoint_manager"].close()
    assert (in_tmp / "projects" / ".git").is_dir()
    assert git_dir.is_dir()
    assert_clean(in_tmp / "projects")
    assert (in_tmp / SESSION / "phase_1_concept" / "checkpoint.md").is_file()


def test_manager_on_a_stores_projects_folder_uses_that_store(tmp_path: Path) -> None:
    from mdsessions import Store

    Store.init(tmp_path / "store").close()
    cm = CheckpointManager(base_dir=tmp_path / "store" / "projects")  # not made yet: no files
    try:
        assert cm.store.root == (tmp_path / "store").resolve()
        cm.create_session("project-123", "session-456")
        assert (tmp_path / "store" / "projects" / "project-123" / "sessions").is_dir()
    finally:
        cm.close()


@pytest.mark.parametrize("inside", ["other", "new/projects"])
def test_manager_inside_a_store_but_not_its_projects_folder_is_refused(
    tmp_path: Path, inside: str
) -> None:
    from mdsessions import Store, StoreError

    Store.init(tmp_path / "store").close()
    (tmp_path / "store" / "other").mkdir()
    base = (tmp_path / "store" / inside).resolve()
    expected = (tmp_path / "store" / "projects").resolve()
    with pytest.raises(StoreError) as exc:
        CheckpointManager(base_dir=base)
    assert str(exc.value) == (
        f"{base} is inside the store {expected.parent}, whose sessions live in {expected}; "
        f"use CheckpointManager(base_dir={str(expected)!r})"
    )
    assert not (base / ".git").exists()
