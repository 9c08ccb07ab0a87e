"""``review`` beside the phase's outputs, and the relative links between a session's documents.

Real git repositories in ``tmp_path``, real ``python -m mdsessions`` processes, and fake
editors: executable scripts named like the editors (``vim``, ``code``, ``nano``) that record
the arguments they were started with and approve the review, so what ``review`` opens is read
from their record. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO_ROOT, assert_clean, git, head, snapshot
from test_documents import GOLDENS

from mdsessions import Session, Store
from mdsessions.cli.review import _beside_command
from mdsessions.documents.frontmatter import loads, split
from mdsessions.documents.yaml import dump_mapping
from mdsessions.history.verify import verify

PROJECT, SID = "demo", "s1"
REF = f"{PROJECT}/{SID}"
SESSION_REL = f"projects/{PROJECT}/sessions/{SID}"
PHASE_REL = f"{SESSION_REL}/phase_1_concept"
FEEDBACK = f"{PHASE_REL}/user_feedback.md"
CHECKPOINT = f"{PHASE_REL}/checkpoint.md"
MANIFEST = f"{SESSION_REL}/session_manifest.md"
OUTPUTS = ("concept_expansion.md", "critic.md")
CONCEPT_TEXT = "# Concept\n\nA leaderboard for small gyms.\n"
CRITIC_TEXT = "# Critic\n\nToo broad.\n"
BEFORE_LINKS = Path(__file__).resolve().parent / "golden" / "before_links"
LINK = re.compile(r"\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)\)")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MDSESSIONS_") or name in ("VISUAL", "EDITOR"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def waiting(store: Store) -> Iterator[Session]:
    """``demo/s1`` with phase 1's two outputs saved and its review requested (one commit)."""
    session = store.create_session(PROJECT, SID, idea="A leaderboard for small gyms.")
    session.save_checkpoint(
        1,
        status="completed",
        request_review=True,
        outputs=[
            {"agent": "concept_expansion", "content": CONCEPT_TEXT},
            {"agent": "critic", "content": CRITIC_TEXT},
        ],
    )
    yield session


def text(store: Store, rel: str) -> str:
    return (store.root / rel).read_bytes().decode("utf-8")


def body(store: Store, rel: str) -> str:
    return split(text(store, rel))[1]


def section(markdown: str, title: str) -> str:
    """The lines under ``## title`` up to the next heading."""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert found is not None, f"no section {title!r} in:\n{markdown}"
    return found.group(1).strip("\n")


def assert_links_resolve(root: Path) -> int:
    """Every relative markdown link of every document names a file that exists."""
    count = 0
    for path in sorted((root / "projects").rglob("*.md")):
        for target in LINK.findall(split(path.read_text(encoding="utf-8"))[1]):
            assert not target.startswith(("/", "http:", "https:")), (path, target)
            resolved = path.parent / urllib.parse.unquote(target)
            assert resolved.is_file(), f"{path}: link {target} names no file"
            count += 1
    return count


def editor_script(tmp_path: Path, name: str) -> Path:
    """A fake editor named ``name``: it records its arguments, prints a marker, approves."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    script = folder / name
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""\
            import json
            import sys

            with open({str(tmp_path / "argv.json")!r}, "w", encoding="utf-8") as log:
                json.dump(sys.argv[1:], log)
            print("EDITOR STARTED", flush=True)
            path = next(a for a in sys.argv[1:] if a.endswith("user_feedback.md"))
            with open(path, encoding="utf-8", newline="") as fh:
                text = fh.read()
            assert text.count("\\napproved: false\\n") == 1
            with open(path, "w", encoding="utf-8", newline="") as fh:
                fh.write(text.replace("\\napproved: false\\n", "\\napproved: true\\n"))
            """
        ),
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


def review(root: Path, *args: str, editor: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """``python -m mdsessions review REF ARGS`` as a real process with ``EDITOR=editor``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["EDITOR"] = editor
    proc = subprocess.run(
        [sys.executable, "-m", "mdsessions", "--store", str(root), "review", REF, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=str(root),
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def opened(tmp_path: Path) -> list[str]:
    argv: list[str] = json.loads((tmp_path / "argv.json").read_text(encoding="utf-8"))
    return argv


def assert_approved_and_verified(store: Store) -> None:
    assert git(store.root, "log", "-1", "--format=%s").startswith(f"user_feedback({REF})")
    assert "approved" in git(store.root, "log", "-1", "--format=%s")
    assert verify(store).problems == ()
    assert_clean(store.root)


# ------------------------------------------------------------------------------ links


def test_the_feedback_lists_the_outputs_under_review_as_links(
    store: Store, waiting: Session
) -> None:
    fb = body(store, FEEDBACK)
    assert section(fb, "Outputs") == "- [concept_expansion.md](concept_expansion.md)\n" + (
        "- [critic.md](critic.md)"
    )
    # before the person's comments, which run to the end of the file; the decision is in
    # the frontmatter only (issue 16: each fact once)
    assert fb.index("## Outputs") < fb.index("## User Comments")
    assert "## Review Status" not in fb and "## Requested Changes" not in fb
    doc = waiting.feedback(1)
    assert doc is not None and doc.comments == "" and doc.requested_changes == []


def test_the_checkpoint_links_its_outputs_and_its_feedback(store: Store, waiting: Session) -> None:
    cp = body(store, CHECKPOINT)
    assert section(cp, "Outputs") == "\n".join(f"- [{n}]({n})" for n in OUTPUTS)
    assert section(cp, "Review") == "- Feedback: [user_feedback.md](user_feedback.md)"


def test_a_checkpoint_without_review_has_no_feedback_link(store: Store) -> None:
    session = store.create_session(PROJECT, SID)
    session.save_checkpoint(
        1, status="completed", request_review=False, outputs=[{"agent": "a", "content": "x\n"}]
    )
    cp = body(store, CHECKPOINT)
    assert "## Review" not in cp and "user_feedback" not in cp
    assert section(cp, "Outputs") == "- [a.md](a.md)"
    assert assert_links_resolve(store.root) == 2  # the output, and the manifest's checkpoint


def test_the_manifest_links_each_phase_checkpoint(store: Store, waiting: Session) -> None:
    rows = section(body(store, MANIFEST), "Phase Status").splitlines()
    assert rows[0].endswith("| Duration | Checkpoint |")
    first = next(r for r in rows if r.startswith("| 1 |"))
    assert first.endswith("| [checkpoint](phase_1_concept/checkpoint.md) |")
    for row in rows[2:]:
        if not row.startswith("| 1 |"):
            assert row.endswith("| - |"), row  # no checkpoint yet: no link
    assert assert_links_resolve(store.root) == 2 + 3 + 1  # feedback, checkpoint, manifest


def test_links_live_in_bodies_only(store: Store, waiting: Session) -> None:
    for rel in (FEEDBACK, CHECKPOINT, MANIFEST):
        head_yaml = split(text(store, rel))[0]
        assert "](" not in head_yaml, rel
        doc = loads(text(store, rel), path=rel)
        expected = dump_mapping(doc.frontmatter()).strip()
        if rel == FEEDBACK:  # an empty list is the bare key, for '- ' lines to go under it
            expected = expected.replace("\nrequested_changes: []", "\nrequested_changes:")
        assert expected in text(store, rel)
    assert verify(store).problems == ()
    assert_clean(store.root)


def test_a_link_to_a_file_name_with_spaces_and_brackets_is_encoded() -> None:
    from mdsessions.documents.templates import _link

    assert _link("notes (draft).md") == "[notes (draft).md](notes%20%28draft%29.md)"
    assert _link("a/b.md", "x [1]") == "[x \\[1\\]](a/b.md)"


def test_the_parsers_read_what_a_person_writes_beside_the_links(
    store: Store, waiting: Session
) -> None:
    path = store.root / FEEDBACK
    edited = path.read_text(encoding="utf-8").replace("\naction: pending\n", "\naction: revise\n")
    edited = edited.replace(
        "## User Comments\n\n",
        "## User Comments\n\nSee [critic.md](critic.md): narrow it.\n- not a change\n",
    )
    edited = edited.replace("\nrequested_changes:\n", "\nrequested_changes:\n- Focus on gyms\n")
    assert edited.count("- Focus on gyms") == 1 and "action: revise" in edited
    path.write_text(edited, encoding="utf-8")
    sha = waiting.record_feedback(1)
    assert sha is not None
    doc = waiting.feedback(1)
    assert doc is not None
    assert doc.comments == "See [critic.md](critic.md): narrow it.\n- not a change"
    assert doc.requested_changes == ["Focus on gyms"]
    assert verify(store).problems == ()
    assert_clean(store.root)


@pytest.mark.parametrize("name", ["checkpoint.md", "session_manifest.md", "user_feedback.md"])
def test_older_files_without_links_still_parse(name: str) -> None:
    old = (BEFORE_LINKS / name).read_bytes().decode("utf-8")
    assert "](" not in old
    assert loads(old, path=name) == GOLDENS[name]()


def test_an_older_store_without_links_still_verifies_and_gains_them_on_its_next_write(
    store: Store, waiting: Session
) -> None:
    """Bodies as an earlier version wrote them (committed by a person), then a write."""
    root = store.root
    for rel in (FEEDBACK, CHECKPOINT, MANIFEST):
        data = text(store, rel)
        data = re.sub(r"\n## Outputs\n(- \[.*\n)+(?=\n## Review Status)", "", data)
        data = re.sub(r"\n\n## Review\n- Feedback: .*\n", "\n", data)
        data = re.sub(r"\[([^\]]+)\]\(\1\)", r"\1", data)
        data = data.replace(" Checkpoint |", "").replace("------------|", "")
        data = re.sub(r" (\[checkpoint\]\([^)]*\)|-) \|\n", "\n", data)
        (root / rel).write_text(data, encoding="utf-8")
    assert "](" not in "".join(text(store, r) for r in (FEEDBACK, CHECKPOINT, MANIFEST))
    git(root, "commit", "-q", "-am", "bodies as an earlier mdsessions wrote them")
    assert verify(store).problems == ()
    feedback = waiting.feedback(1)
    assert feedback is not None and feedback.comments == ""
    assert waiting.checkpoint(1) is not None
    waiting.save_feedback(1, approved=True, reviewer="Ann <ann@example.com>")
    assert "[checkpoint](phase_1_concept/checkpoint.md)" in text(store, MANIFEST)
    assert section(body(store, FEEDBACK), "Outputs").startswith("- [concept_expansion.md]")
    assert verify(store).problems == ()
    assert_clean(root)


def test_a_fork_keeps_the_links(store: Store, waiting: Session) -> None:
    from mdsessions import history

    history.fork(waiting, "s2")
    forked = f"projects/{PROJECT}/sessions/s2"
    assert body(store, f"{forked}/phase_1_concept/user_feedback.md") == body(store, FEEDBACK)
    assert body(store, f"{forked}/phase_1_concept/checkpoint.md") == body(store, CHECKPOINT)
    assert "[checkpoint](phase_1_concept/checkpoint.md)" in body(
        store, f"{forked}/session_manifest.md"
    )
    assert_links_resolve(store.root)
    assert verify(store).problems == ()


# ------------------------------------------------------------------------------ review


def test_review_in_vim_opens_the_outputs_side_by_side(
    tmp_path: Path, store: Store, waiting: Session
) -> None:
    vim = editor_script(tmp_path, "vim")
    proc = review(store.root, editor=str(vim))
    root = store.root
    assert opened(tmp_path) == [
        "-O",
        str(root / FEEDBACK),
        *(str(root / PHASE_REL / name) for name in OUTPUTS),
    ]
    assert "read " not in proc.stdout  # opened, not listed
    assert "approved (recorded in" in proc.stdout
    assert_approved_and_verified(store)


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("nvim", "", ["-O"]),
        ("vim", " -o", ["-o"]),  # the person's own layout is kept
        ("code", " --wait", ["--wait"]),
        ("subl", " -w", ["-w"]),
        ("emacs", " -nw", ["-nw"]),
    ],
)
def test_review_in_editors_that_take_several_files(
    tmp_path: Path, store: Store, waiting: Session, name: str, options: str, expected: list[str]
) -> None:
    script = editor_script(tmp_path, name)
    review(store.root, editor=f"{script}{options}")
    root = store.root
    outs = [str(root / PHASE_REL / n) for n in OUTPUTS]
    assert opened(tmp_path) == [*expected, str(root / FEEDBACK), *outs]
    assert_approved_and_verified(store)


def test_review_in_another_editor_prints_the_outputs_paths(
    tmp_path: Path, store: Store, waiting: Session
) -> None:
    nano = editor_script(tmp_path, "nano")
    before = head(store.root)
    proc = review(store.root, editor=str(nano))
    assert opened(tmp_path) == [str(store.root / FEEDBACK)]  # today's behaviour
    for name in OUTPUTS:
        line = f"read    {PHASE_REL}/{name}"
        assert line in proc.stdout.splitlines()
        assert proc.stdout.index(line) < proc.stdout.index("EDITOR STARTED")
    assert head(store.root) != before
    assert_approved_and_verified(store)


def test_review_print_shows_the_outputs_text_before_the_editor(
    tmp_path: Path, store: Store, waiting: Session
) -> None:
    nano = editor_script(tmp_path, "nano")
    proc = review(store.root, "1", "--print", editor=str(nano))
    started = proc.stdout.index("EDITOR STARTED")
    assert 0 <= proc.stdout.index(CONCEPT_TEXT) < started
    assert 0 <= proc.stdout.index(CRITIC_TEXT) < started
    assert f"==> {PHASE_REL}/concept_expansion.md <==" in proc.stdout
    assert_approved_and_verified(store)


def test_review_of_a_phase_without_outputs_opens_the_feedback_alone(
    tmp_path: Path, store: Store
) -> None:
    session = store.create_session(PROJECT, SID)
    session.save_checkpoint(1, status="completed", request_review=True, agents=[])
    vim = editor_script(tmp_path, "vim")
    review(store.root, editor=str(vim))
    assert opened(tmp_path) == [str(store.root / FEEDBACK)]
    assert_approved_and_verified(store)


def test_a_failing_editor_changes_nothing(tmp_path: Path, store: Store, waiting: Session) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    vim = folder / "vim"
    vim.write_text("#!/bin/sh\nexit 3\n", encoding="utf-8")
    vim.chmod(0o755)
    before = snapshot(store.root)
    proc = review(store.root, editor=str(vim), code=1)
    assert "could not start the editor" in proc.stderr
    assert snapshot(store.root) == before


def test_which_editors_take_several_files() -> None:
    assert _beside_command("vim") == "vim -O"
    assert _beside_command("/usr/bin/nvim -u NONE") == "/usr/bin/nvim -u NONE -O"
    assert _beside_command("vim -p") == "vim -p"
    assert _beside_command("'/opt/my apps/code' --wait") == "'/opt/my apps/code' --wait"
    for other in (None, "", "nano", "vi", "ed", "vim 'unclosed", "emacs-like-tool"):
        assert _beside_command(other) is None, other


def test_a_session_the_runner_brings_to_its_gate_carries_the_links(
    tmp_path: Path, store: Store
) -> None:
    from helpers import command_agent, write_two_phase_workflow

    from mdsessions import Runner, SessionStatus

    agent = command_agent("import sys; sys.stdin.read(); print('# Draft')")
    toml = write_two_phase_workflow(tmp_path / "wf.toml", name="wf", first=agent, second=agent)
    result = Runner(store, toml).start(PROJECT, SID, idea="An idea.")
    assert result.status is SessionStatus.AWAITING_REVIEW
    folder = f"{SESSION_REL}/phase_1_draft"
    assert section(body(store, f"{folder}/user_feedback.md"), "Outputs") == (
        "- [writer.md](writer.md)"
    )
    assert "- Feedback: [user_feedback.md](user_feedback.md)" in body(
        store, f"{folder}/checkpoint.md"
    )
    assert "[checkpoint](phase_1_draft/checkpoint.md)" in body(store, MANIFEST)
    assert assert_links_resolve(store.root) == 5  # and the prompt's link to its output
    assert verify(store).problems == ()
    assert_clean(store.root)


def test_an_output_edited_beside_the_feedback_is_left_to_record(
    tmp_path: Path, store: Store, waiting: Session
) -> None:
    vim = editor_script(tmp_path, "vim")
    with vim.open("a", encoding="utf-8") as fh:  # the reviewer also fixes a typo in an output
        fh.write(
            "with open(sys.argv[-1], 'a', encoding='utf-8') as out:\n    out.write('typo\\n')\n"
        )
    proc = review(store.root, editor=str(vim))
    critic = f"{PHASE_REL}/critic.md"
    assert f"{critic} edited: `mdsessions record` records it as yours" in proc.stderr
    assert "approved" in git(store.root, "log", "-1", "--format=%s")
    assert git(store.root, "status", "--porcelain").split() == ["M", critic]
    assert [e.path for e in store.unrecorded_edits()] == [critic]
