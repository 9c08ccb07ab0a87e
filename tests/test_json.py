"""Every ``--json`` document matches its schema in docs/json.md, on a real store.

One scenario runs every command that prints JSON (a run to a review gate, a reviewer's edit,
history, backups, a bare remote, a clone and a conflict resolved with ``--keep``) and checks
each document against the JSON Schema generated from the models the commands print
(:func:`mdsessions.cli.schemas.json_schema`); docs/json.md must be what the generator makes.
jsonschema is not a dependency: :func:`check` validates the subset of JSON Schema pydantic
emits, strictly (a key the schema does not name is an error).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import command_agent, write_two_phase_workflow

from mdsessions.cli import cli
from mdsessions.cli.schemas import OUTPUTS, json_schema, markdown

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json_schema()
DEFS: dict[str, Any] = SCHEMA["$defs"]
HEX40 = "0123456789abcdef"


# ------------------------------------------------------------------------- the validator

_TYPES: dict[str, Any] = {
    "string": str,
    "boolean": bool,
    "array": list,
    "object": dict,
}


def _is(instance: Any, kind: str) -> bool:
    if kind == "null":
        return instance is None
    if kind == "integer":
        return isinstance(instance, int) and not isinstance(instance, bool)
    if kind == "number":
        return isinstance(instance, int | float) and not isinstance(instance, bool)
    return isinstance(instance, _TYPES[kind])


def errors(instance: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Where ``instance`` breaks ``schema`` (``$ref`` into :data:`DEFS`), empty when it fits."""
    if "$ref" in schema:
        return errors(instance, DEFS[schema["$ref"].rsplit("/", 1)[-1]], where)
    if "anyOf" in schema:
        tries = [errors(instance, option, where) for option in schema["anyOf"]]
        return [] if any(not t for t in tries) else [f"{where}: fits no option: {tries}"]
    if "allOf" in schema:
        return [e for part in schema["allOf"] for e in errors(instance, part, where)]
    if "const" in schema and instance != schema["const"]:
        return [f"{where}: {instance!r} is not {schema['const']!r}"]
    if "enum" in schema and instance not in schema["enum"]:
        return [f"{where}: {instance!r} is not one of {schema['enum']}"]
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is(instance, k) for k in kinds):
            return [f"{where}: {instance!r} is not {kind}"]
    out: list[str] = []
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in instance:
                out.append(f"{where}: no {name!r}")
        extra = schema.get("additionalProperties")
        for name, value in instance.items():
            if name in properties:
                out += errors(value, properties[name], f"{where}.{name}")
            elif isinstance(extra, dict):
                out += errors(value, extra, f"{where}.{name}")
            elif extra is True:  # a free-form mapping (a session's metadata)
                continue
            else:
                out.append(f"{where}: {name!r} is not in the schema")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            out += errors(item, schema["items"], f"{where}[{i}]")
    if _is(instance, "number"):
        if "minimum" in schema and instance < schema["minimum"]:
            out.append(f"{where}: {instance} < {schema['minimum']}")
        if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
            out.append(f"{where}: {instance} <= {schema['exclusiveMinimum']}")
    return out


def check(command: str, text: str) -> Any:
    """Parse a command's stdout and assert it matches the command's schema."""
    data = json.loads(text)
    found = errors(data, SCHEMA["commands"][command])
    assert not found, (command, found)
    return data


def test_the_validator_rejects_what_does_not_fit() -> None:
    entry = {"$ref": "#/$defs/Remote"}
    assert errors({"name": "origin", "url": "/x"}, entry) == []
    assert errors({"name": "origin"}, entry) == ["$: no 'url'"]
    assert errors({"name": "o", "url": "/x", "extra": 1}, entry) == [
        "$: 'extra' is not in the schema"
    ]
    assert errors({"name": 1, "url": "/x"}, entry) == ["$.name: 1 is not string"]
    assert errors([{"name": "o", "url": None}], {"type": "array", "items": entry})


def _open_schemas(schema: Any, where: str = "$") -> list[str]:
    """Places where the generated schema says nothing (``{}``): every field must be typed."""
    if isinstance(schema, dict):
        if schema == {}:
            return [where]
        return [p for k, v in schema.items() for p in _open_schemas(v, f"{where}.{k}")]
    if isinstance(schema, list):
        return [p for i, v in enumerate(schema) for p in _open_schemas(v, f"{where}[{i}]")]
    return []


def test_every_field_of_every_document_is_typed() -> None:
    assert _open_schemas(SCHEMA) == []


def test_docs_json_md_is_what_the_models_generate() -> None:
    documented = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    assert documented == markdown(), (
        "docs/json.md is out of date: python -m mdsessions.cli.schemas > docs/json.md"
    )


def test_the_generator_runs_as_a_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mdsessions.cli.schemas", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(proc.stdout)["commands"].keys() == OUTPUTS.keys()


# ------------------------------------------------------------------------- the scenario


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=str(cwd), capture_output=True, text=True, check=True
    ).stdout


class Shell:
    """Runs the CLI on one store and checks every ``--json`` document it prints."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.seen: set[str] = set()

    def run(self, *args: str, code: int = 0, store: Path | None = None) -> Result:
        argv = ["--store", str(store or self.store), *args]
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
        return result

    def json(self, command: str, *args: str, code: int = 0, store: Path | None = None) -> Any:
        result = self.run(*command.split(), *args, "--json", code=code, store=store)
        self.seen.add(command)
        return check(command, result.stdout)


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    """Two phases of command agents; the first waits for review."""
    echo = "import sys; sys.stdin.read(); print('# Draft')"
    toml = write_two_phase_workflow(
        tmp_path / "wf.toml", name="tiny", first=command_agent(echo), second=command_agent(echo)
    )
    return toml


def _is_commit(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 40 and set(value) <= set(HEX40)


def test_every_json_command_matches_its_schema(tmp_path: Path, workflow: Path) -> None:
    root = tmp_path / "store"
    CliRunner().invoke(cli, ["init", str(root)])
    sh = Shell(root.resolve())

    run = sh.json("run", "--new", "proj", "s1", "--idea", "gyms", "--workflow", str(workflow))
    assert (run["project"], run["session"], run["waiting_for_review"]) == ("proj", "s1", 1)
    feedback = run["feedback_path"]
    (inbox,) = sh.json("inbox")
    assert (inbox["project"], inbox["session"], inbox["feedback_path"]) == ("proj", "s1", feedback)
    (entry,) = sh.json("list")
    assert (entry["project"], entry["session"], entry["status"]) == (
        "proj",
        "s1",
        "awaiting_review",
    )
    found = sh.json("search", "Draft", "--project", "proj")
    assert ("s1", "# Draft") in [(m["session"], m["text"]) for m in found["matches"]]
    assert sh.json("stats", "--by", "agent")["by_status"] == {"awaiting_review": 1}
    assert sh.json("status", "proj/s1")["manifest"]["current_phase"] == 1
    log = sh.json("log")
    assert all(_is_commit(c["commit"]) for c in log)
    assert {c["kind"] for c in log} == {"init", "session", "checkpoint", "agent_output"}
    for args, kind in [
        ((), "session_manifest"),
        (("1",), "checkpoint"),
        (("1", "writer"), "agent_output"),
        (("1", "feedback"), "user_feedback"),
    ]:
        shown = sh.json("show", "proj/s1", *args)
        assert (shown["kind"], shown["document"]["schema"].split("/")[1]) == (kind, kind)

    assert sh.json("edits") == []
    path = root / feedback
    path.write_text(
        path.read_text(encoding="utf-8").replace("approved: false", "approved: true", 1),
        encoding="utf-8",
    )
    (edit,) = sh.json("edits")
    assert (edit["path"], edit["error"]) == (feedback, None)
    recorded = sh.json("record")
    assert _is_commit(recorded["commit"]) and recorded["unrecorded"] == []
    assert sh.json("run", "proj/s1")["status"] == "completed"

    assert sh.json("validate") == {"valid": True, "session_count": 1, "problems": []}
    verified = sh.json("verify")
    assert verified["valid"] and verified["session_count"] == 1
    page = sh.json("versions", "proj/s1")
    assert (page["project"], page["session"]) == ("proj", "s1")
    assert "user_feedback" in {v["kind"] for v in page["versions"]}
    first = page["versions"][-1]["commit"]
    diff = sh.json("diff", "proj/s1", first)
    assert (diff["project"], diff["session"], diff["new_commit"]) == (
        "proj",
        "s1",
        git(root, "rev-parse", "HEAD").strip(),
    )
    assert {f["document"] for f in diff["files"]} >= {"checkpoint", "agent_output"}
    assert sh.json("diff", "proj/s1", first, "--stat")["patch"] == ""
    restored = sh.json("restore", "proj/s1", first)
    assert restored["target_commit"] == first and _is_commit(restored["commit"])
    forked = sh.json("fork", "proj/s1", "s2")
    assert forked["forked_from"] == {
        "project": "proj",
        "session": "s1",
        "commit": forked["forked_from"]["commit"],
    }

    bundles = tmp_path / "bundles"
    backup = sh.json("backup create", str(bundles))
    assert backup["commit"] == git(root, "rev-parse", "HEAD").strip()
    assert [b["path"] for b in sh.json("backup list", str(bundles))] == [backup["path"]]
    copy = sh.json("backup restore", backup["path"], str(tmp_path / "copy"))
    assert copy["valid"] and {"name": "refs/heads/main", "commit": backup["commit"]} in copy["refs"]
    assert sh.json("backup prune", str(bundles), "--keep", "0") == [backup]

    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    sh.run("remote", "add", "origin", str(remote))
    assert sh.json("remote list") == [{"name": "origin", "url": str(remote)}]
    pushed = sh.json("push")
    assert (pushed["remote"], pushed["action"]) == ("origin", "created")
    other = tmp_path / "other"
    clone = sh.json("clone", str(remote), str(other))
    assert (clone["session_count"], clone["commit"]) == (2, pushed["commit"])
    other = Path(clone["path"])

    # The same new session on both sides: a conflict, resolved by keeping this side's.
    sh.run("new", "proj", "s9", "--idea", "theirs", store=other)
    sh.run("push", store=other)
    sh.run("new", "proj", "s9", "--idea", "mine")
    sh.run("pull", code=1)
    pulled = sh.json("pull", "--keep", "mine")
    (change,) = [c for c in pulled["changes"] if c["session"] == "s9"]
    assert (change["project"], change["change"]) == ("proj", "kept-mine")
    assert change["set_aside"]["session"] == "s9"
    (aside,) = sh.json("set-aside")
    assert (aside["project"], aside["session"], aside["side"]) == ("proj", "s9", None)
    synced = sh.json("sync")
    assert synced["push"]["commit"] == git(root, "rev-parse", "HEAD").strip()
    scanned = sh.json("scan", "--history")
    assert scanned["history"] and scanned["findings"] == [] and scanned["purge"] is None
    maintenance = sh.json("maintenance")
    assert [s["step"] for s in maintenance["steps"]] == ["pack-refs", "repack", "commit-graph"]

    sh.run("new", "proj", "s10", "--meta", "team=a")
    assert sh.json("pause", "proj/s10")["status"]["after"] == "paused"
    assert sh.json("resume", "proj/s10")["action"] == "resume"
    assert sh.json("tag add", "proj/s10", "pilot")["tags"] == ["pilot"]
    assert sh.json("tag remove", "proj/s10", "pilot")["tags"] == []
    assert sh.json("tag list", "proj/s10")["tags"] == []
    assert sh.json("meta", "proj/s10")["metadata"] == {"team": "a"}
    assert sh.json("end", "proj/s10", "--reason", "done")["status"]["after"] == "cancelled"
    for text in ("hello", "an error"):
        added = sh.json("transcript add", "proj/s1", "writer", "--role", "user", "--text", text)
    assert (added["project"], added["session"], added["messages"]) == ("proj", "s1", 2)
    assert [t["name"] for t in sh.json("transcript list", "proj/s1")] == ["writer"]
    assert sh.json("transcript stats", "proj/s1", "writer")["tokens"] == 2 + 2
    pruned = sh.json("transcript prune", "proj/s1", "writer", "--keep-last", "1")
    assert pruned["removed"] == [1] and _is_commit(pruned["commit"])
    shown = sh.json("transcript show", "proj/s1", "writer", "--at", pruned["commit"] + "^")
    assert shown["schema"] == "mdsessions/transcript/v1" and len(shown["entries"]) == 2
    assert [m["number"] for m in sh.json("transcript pruned", "proj/s1", "writer")] == [1]
    exported = sh.json("export", "--all", "-o", str(tmp_path / "all.json"))
    assert exported["format"] == "json" and "proj/s1" in exported["sessions"]
    bundled = sh.json("export", "proj/s1", "--bundle", str(tmp_path / "s1.bundle"))
    assert bundled["format"] == "bundle" and _is_commit(bundled["commit"])
    third = tmp_path / "third"
    CliRunner().invoke(cli, ["init", str(third)])
    (imported,) = sh.json("import", str(tmp_path / "s1.bundle"), store=third)["imported"]
    assert imported["session"] == "proj/s1"
    renamed = sh.json("import", str(tmp_path / "all.json"), "--rename", store=third)
    assert {i["source"] for i in renamed["imported"]} >= {"proj/s1"}
    assert sh.json("archive", "proj/s2")["action"] == "archive"
    assert sh.json("unarchive", "proj/s2")["sessions"] == ["proj/s2"]
    assert sh.json("delete", "proj/s2")["sessions"] == ["proj/s2"]
    assert sh.json("cleanup", "--older-than", "0s", "--archive", "--dry-run")["dry_run"]

    assert sh.seen == set(OUTPUTS), set(OUTPUTS) - sh.seen


def test_errors_under_json_match_their_schema(tmp_path: Path) -> None:
    root = tmp_path / "store"
    CliRunner().invoke(cli, ["init", str(root)])
    for args, code, kind in [
        (["status", "proj/nope", "--json"], 1, "SessionNotFoundError"),
        (["versions", "--json"], 2, "MissingParameter"),
        (["show", "proj/.x", "--json"], 1, "InvalidIdentifierError"),
    ]:
        result = CliRunner().invoke(cli, ["--store", str(root), *args])
        assert (result.exit_code, result.stdout) == (code, ""), args
        data = json.loads(result.stderr)
        assert errors(data, SCHEMA["error"]) == [], args
        assert data["error"]["type"] == kind, args


# ------------------------------------------------------------------------- one spelling


def test_a_kind_is_spelled_one_way_in_subject_and_trailer(tmp_path: Path, workflow: Path) -> None:
    root = tmp_path / "store"
    CliRunner().invoke(cli, ["init", str(root)])
    sh = Shell(root.resolve())
    sh.run("run", "--new", "proj", "s1", "--idea", "gyms", "--workflow", str(workflow))
    sh.run("feedback", "proj/s1", "1", "--revise", "--comment", "again")
    for version in sh.json("log"):
        word = version["subject"].split("(")[0].split(":")[0]
        assert word == version["kind"], version
    kinds = [v["kind"] for v in sh.json("log")]
    assert kinds[:2] == ["user_feedback", "checkpoint"] and "agent_output" in kinds


def test_old_spellings_of_a_kind_still_read(tmp_path: Path) -> None:
    root = tmp_path / "store"
    CliRunner().invoke(cli, ["init", str(root)])
    sh = Shell(root.resolve())
    sh.run("new", "proj", "s1")
    manifest = root / "projects/proj/sessions/s1/session_manifest.md"
    manifest.write_text(manifest.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    git(root, "add", "-A")
    message = (
        "output(proj/s1): phase 1 concept_expansion completed\n\n"
        "Mdsessions-Kind: agent-output\nMdsessions-Project: proj\nMdsessions-Session: s1\n"
        "Mdsessions-Phase: 1\n"
    )
    git(root, "-c", "user.name=Old", "-c", "user.email=old@example.com", "commit", "-qm", message)
    (newest, *_) = sh.json("log")
    assert (newest["kind"], newest["phase"]) == ("agent_output", 1)
    for kind in ("agent-output", "agent_output"):
        page = sh.json("versions", "proj/s1", "--kind", kind)
        assert [v["commit"] for v in page["versions"]] == [newest["commit"]]
