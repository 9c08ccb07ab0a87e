"""Tests for mdsessions.models.workflow: TOML definitions, their checks, modes and lookup.

Pure: no git, no store. Every refusal names the file and the key at fault.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mdsessions import PhaseNotFoundError, Workflow, WorkflowError, idea_validation
from mdsessions.models.workflow import resolve_workflow

TINY = """\
[workflow]
name = "tiny"
default_mode = "all"

[modes]
all = [1, 2]
short = [1]

[[phases]]
number = 1
slug = "draft"
name = "Draft"
review = true
agents = ["writer"]

[[phases]]
number = 2
slug = "final"
name = "Final"
agents = ["finisher"]

[agents.writer]
python = "agents:writer"

[agents.finisher]
command = ["cat"]
timeout = 30
"""


def write(tmp_path: Path, text: str, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_toml_workflow_loads_with_its_phases_modes_and_agents(tmp_path: Path) -> None:
    wf = Workflow.from_toml(write(tmp_path, TINY))
    assert wf.name == "tiny"
    assert [(p.number, p.slug, p.name, p.review, p.agents) for p in wf.phases] == [
        (1, "draft", "Draft", True, ("writer",)),
        (2, "final", "Final", False, ("finisher",)),
    ]
    assert wf.default_mode == "all"
    assert [p.number for p in wf.phases_for("short")] == [1]
    assert wf.agents["writer"].python == "agents:writer"
    assert wf.agents["finisher"].command == ("cat",)
    assert wf.agents["finisher"].timeout == 30
    assert wf.phase(2).directory == "phase_2_final"
    assert wf.source == tmp_path / "tiny.toml"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('name = "tiny"', 'title = "tiny"', '[workflow] name = "..." is required'),
        ("number = 2", "number = 1", "phase numbers repeat"),
        ('slug = "final"', 'slug = "draft"', "phase slugs repeat"),
        ('slug = "final"', 'slug = "Not An Id"', "is not an id"),
        ('name = "Final"', 'name = "two\\nlines"', "must be one line of text"),
        ('agents = ["finisher"]', 'agents = ["finisher", "checkpoint"]', "not be 'checkpoint'"),
        ("short = [1]", "short = [1, 9]", "mode 'short' names unknown phases [9]"),
        ('default_mode = "all"', 'default_mode = "nope"', "default_mode 'nope' is not one of"),
        ('python = "agents:writer"', 'python = "agents"', 'python must be "module:function"'),
        ('command = ["cat"]', "command = []", "command must be a non-empty list of strings"),
        ("timeout = 30", 'timeout = "soon"', "timeout must be a number of seconds"),
        ("short = [1]", "short = 1", "[modes] values must be lists of phase numbers"),
    ],
)
def test_a_bad_definition_is_refused_naming_file_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in TINY
    path = write(tmp_path, TINY.replace(old, new, 1))
    with pytest.raises(WorkflowError) as info:
        Workflow.from_toml(path)
    assert expected in str(info.value)
    assert "tiny" in str(info.value)


def test_without_modes_one_mode_runs_every_phase(tmp_path: Path) -> None:
    wf = Workflow.from_toml(
        write(tmp_path, TINY.replace("[modes]\nall = [1, 2]\nshort = [1]\n", ""))
    )
    assert dict(wf.modes) == {"all": (1, 2)}
    assert wf.default_mode == "all"


def test_an_agent_no_phase_uses_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, TINY + '\n[agents.orphan]\npython = "agents:orphan"\n')
    with pytest.raises(WorkflowError, match="orphan"):
        Workflow.from_toml(path)


def test_a_missing_or_unparsable_file_is_a_workflow_error(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="absent.toml"):
        Workflow.from_toml(tmp_path / "absent.toml")
    with pytest.raises(WorkflowError, match="broken.toml"):
        Workflow.from_toml(write(tmp_path, "[workflow\nname=", "broken.toml"))


def test_unknown_phase_and_mode_are_named() -> None:
    wf = idea_validation()
    with pytest.raises(PhaseNotFoundError, match=r"phase 9 is not part of workflow"):
        wf.phase(9)
    with pytest.raises(WorkflowError, match="invalid execution mode 'quick'; expected one of"):
        wf.phases_for("quick")


def test_idea_validation_is_seed_003s_seven_phases() -> None:
    wf = idea_validation()
    assert [p.number for p in wf.phases] == [1, 2, 3, 4, 5, 6, 7]
    assert [p.number for p in wf.phases_for("mvp")] == [1, 2, 3, 6, 7]
    assert [p.number for p in wf.phases_for("full")] == [1, 2, 3, 4, 5, 6, 7]
    assert [p.number for p in wf.phases if p.review] == [1, 3, 6]
    assert wf.default_mode == "mvp"
    assert wf.phase(1).directory == "phase_1_concept"


def test_resolve_workflow_by_object_name_path_or_default(tmp_path: Path) -> None:
    path = write(tmp_path, TINY)
    tiny = Workflow.from_toml(path)
    assert resolve_workflow(tiny) is tiny
    assert resolve_workflow(None).name == "idea_validation"
    assert resolve_workflow("tiny", [tiny]) is tiny
    assert resolve_workflow(str(path)).name == "tiny"
    with pytest.raises(WorkflowError, match="unknown workflow 'other'.*idea_validation, tiny"):
        resolve_workflow("other", [tiny])
