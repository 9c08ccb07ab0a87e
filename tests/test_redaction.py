"""Redaction before commit (issue 15 item 4) and ``mdsessions scan``.

The acceptance: fifty known secret formats (:mod:`secret_samples`) placed in agent outputs,
prompts, a person's comments, a failing command's stderr and its command line appear nowhere
in ``git log -p --all``, in the working tree, in logs or in errors; ordinary prose and code
that merely look random are not redacted (the shared data and the sample project: no
finding at all).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT, SHARED, assert_clean, git, head
from secret_samples import SAMPLES, leaks

from mdsessions import (
    AgentFailedError,
    CommandAgent,
    DocumentError,
    RedactingFilter,
    Redactor,
    Runner,
    SessionNotFoundError,
    Store,
    StoreError,
    history,
    redact,
)
from mdsessions.redaction import markers

P, S = "project-1", "session-1"
ONE_LINE = [secret for _, secret in SAMPLES if "\n" not in secret]
SLACK = next(secret for kind, secret in SAMPLES if kind == "slack-token")
ALL = "\n\n".join(f"- {kind}: {secret}" for kind, secret in SAMPLES)


def everything(store: Store) -> str:
    """Every text git holds for the store (all refs, patches, messages) and its working tree."""
    parts = [
        git(store.root, "log", "-p", "--all", "--format=%H%n%an <%ae>%n%B"),
        git(store.root, "log", "-g", "--all", "--format=%gs"),
    ]
    for path in sorted(store.root.rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(store.root).parts:
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def test_each_of_the_fifty_formats_becomes_a_marker_of_its_kind() -> None:
    redactor = Redactor()
    for kind, secret in SAMPLES:
        out = redactor.redact(f"before {secret} after")
        assert list(markers(out)) == [kind], (kind, out)
        assert leaks(out) == [], out
        assert out.startswith("before ")


def test_the_fifty_formats_reach_no_commit_file_log_or_error(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = store.create_session(P, S, idea=f"an idea with a key {ONE_LINE[0]}")
    # Outputs and prompts (the system prompt too), and one-line frontmatter fields.
    for n, secret in enumerate(ONE_LINE[:8]):
        session.save_agent_output(
            1,
            f"agent{n}",
            f"# Output\n\n{ALL}\n",
            prompt=f"Use these:\n{ALL}",
            system_prompt=f"You hold {secret}",
            model=f"model {secret}",
            error=f"failed with {secret}",
        )
    session.save_checkpoint(1, status="completed")
    # A reviewer's comments through the API …
    session.save_feedback(
        1, action="revise", comments=ALL, requested_changes=ONE_LINE, reviewer="Pat"
    )
    # … and a person's own edit of user_feedback.md, recorded as theirs.
    fb = store.root / session.phase_rel(1) / "user_feedback.md"
    text = fb.read_text(encoding="utf-8")
    fb.write_text(text.replace("## User Comments\n", f"## User Comments\n\n{ALL}\n", 1), "utf-8")
    store.record_edits(author="Pat <pat@example.com>", message=f"notes {ONE_LINE[1]}")
    # A failing command agent: secrets on its stdout, its stderr and its command line.
    code = (
        "import sys; data = sys.stdin.read(); "
        f"print({ALL!r}); sys.stderr.write({ALL!r}); sys.exit(1)"
    )
    failing = CommandAgent([sys.executable, "-c", code, "--api-key", ONE_LINE[2]])
    missing = CommandAgent([f"/nonexistent/{ONE_LINE[3]}", "--key", ONE_LINE[4]])
    errors: list[str] = []
    for agent in (failing, missing):
        runner = Runner(store, agents={"concept_expansion": agent})
        with pytest.raises(AgentFailedError) as info:
            runner.start(P, f"run-{len(errors)}", idea=f"idea {ONE_LINE[5]}")
        errors.append(str(info.value))
    # An error that quotes what it was given.
    with pytest.raises(SessionNotFoundError) as not_found:
        store.find_session(f"{P}/{ONE_LINE[6]}")
    errors.append(str(not_found.value))
    errors.append(str(DocumentError(f"bad value {ALL}", path="x.md")))

    assert leaks(everything(store)) == []
    assert leaks("\n".join(errors)) == []
    assert leaks(caplog.text) == []
    assert "[REDACTED:" in everything(store)
    assert_clean(store.root)
    assert store.unrecorded_edits() == []
    assert history.verify(store).problems == ()


def test_a_person_s_redacted_file_and_its_commit_agree(store: Store) -> None:
    """The working-tree file gets the markers too: git status clean, no edit left forever."""
    session = store.create_session(P, S)
    session.save_agent_output(1, "concept_expansion", "draft")
    session.save_feedback(1, action="pending", comments="first look")
    fb = store.root / session.phase_rel(1) / "user_feedback.md"
    secret = ONE_LINE[0]
    text = fb.read_text(encoding="utf-8")
    mine = text.replace("first look", f"use {secret} for the demo; keep these words", 1)
    assert "\nreviewer:" not in mine  # written only when set: the person adds the line
    mine = mine.replace("\nretry_count:", f"\nreviewer: {secret}\nretry_count:", 1)
    fb.write_text(mine, encoding="utf-8")
    sha, rejected = store.record_edits(author="Pat <pat@example.com>")
    assert sha is not None and rejected == []
    on_disk = fb.read_text(encoding="utf-8")
    assert secret not in on_disk
    assert "use [REDACTED:aws-access-key] for the demo; keep these words" in on_disk
    assert "reviewer: '[REDACTED:aws-access-key]'" in on_disk  # quoted: still a string
    assert git(store.root, "show", f"HEAD:{session.phase_rel(1)}/user_feedback.md") == on_disk
    assert_clean(store.root)
    assert store.unrecorded_edits() == []
    # The phase can be written again (no edit blocks it), and the comment reads back.
    feedback = session.feedback(1)
    assert feedback is not None and "[REDACTED:aws-access-key]" in (feedback.comments or "")
    session.save_agent_output(1, "concept_expansion", "second draft")
    assert history.verify(store).problems == ()


def test_a_redacted_save_reads_back_as_committed(store: Store) -> None:
    session = store.create_session(P, S)
    secret = ONE_LINE[10]
    saved = session.save_agent_output(1, "concept_expansion", f"key: {secret}\n", model=secret)
    output = session.output(1, "concept_expansion")
    assert output is not None
    assert output.content == "key: [REDACTED:github-token]\n"
    assert output.model == "[REDACTED:github-token]"
    assert saved == output  # what a save returns is what it committed
    feedback = session.save_feedback(1, action="revise", comments=f"drop {secret}")
    assert feedback.comments == "drop [REDACTED:github-token]"
    assert_clean(store.root)


def _configure(store: Store, table: str) -> Store:
    config = store.root / "mdsessions.toml"
    config.write_text(config.read_text(encoding="utf-8") + table, encoding="utf-8")
    git(store.root, "commit", "-qam", "configure redaction")
    store.close()
    return Store.open(store.root)


def test_opt_out_commits_verbatim_and_scan_reports_without_the_secret(store: Store) -> None:
    store = _configure(store, "\n[redaction]\nenabled = false\n")
    try:
        session = store.create_session(P, S)
        secret = ONE_LINE[0]
        session.save_agent_output(1, "concept_expansion", f"line one\nkey {secret}\n")
        first = head(store.root)
        rel = f"{session.phase_rel(1)}/concept_expansion.md"
        assert secret in (store.root / rel).read_text(encoding="utf-8")
        session.save_agent_output(1, "concept_expansion", "clean now\n")

        now = history.scan(store)
        assert now.findings == () and now.purge is None
        report = history.scan(store, history=True)
        assert [(f.path, f.commit, f.kind) for f in report.findings] == [
            (rel, first, "aws-access-key")
        ]
        assert report.purge is not None and "git filter-repo" in report.purge
        assert secret not in json.dumps(report.to_json())
    finally:
        store.close()


def test_scan_command_exit_status_and_json(store: Store) -> None:
    store = _configure(store, "\n[redaction]\nenabled = false\n")
    secret = SLACK
    store.create_session(P, S).save_agent_output(1, "concept_expansion", f"x {secret}")
    store.close()
    cmd = [sys.executable, "-m", "mdsessions", "scan", "--history", "--store", str(store.root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "concept_expansion.md:" in proc.stdout and "slack-token" in proc.stdout
    assert "git filter-repo" in proc.stdout
    assert proc.stderr.startswith("Error: 1 secret(s) committed")
    assert secret not in proc.stdout + proc.stderr
    proc = subprocess.run([*cmd, "--json"], capture_output=True, text=True, check=False)
    data = json.loads(proc.stdout)
    assert data["history"] is True and data["findings"][0]["kind"] == "slack-token"
    assert secret not in proc.stdout


def test_scan_of_a_clean_store_succeeds(store: Store) -> None:
    store.create_session(P, S).save_agent_output(1, "concept_expansion", f"x {ONE_LINE[0]}")
    report = history.scan(store, history=True)
    assert report.findings == () and report.commits >= 2 and report.files > 0
    cmd = [sys.executable, "-m", "mdsessions", "scan", "--store", str(store.root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("ok: no secret in")


def test_configured_patterns_redact_commits_and_errors(store: Store) -> None:
    store = _configure(store, '\n[redaction.patterns]\ninternal-token = "itk_[a-z0-9]{32}"\n')
    try:
        token = "itk_" + "a1b2c3d4" * 4
        session = store.create_session(P, S)
        session.save_agent_output(1, "concept_expansion", f"token {token} here")
        output = session.output(1, "concept_expansion")
        assert output is not None and output.content == "token [REDACTED:internal-token] here"
        assert token not in everything(store)
        assert token not in str(StoreError(f"failed with {token}"))
    finally:
        store.close()


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("[redaction]\nenabled = 1\n", "[redaction] enabled must be true or false, got 1"),
        ("[redaction]\nenable = false\n", "[redaction] has unknown key 'enable'"),
        ('[redaction.patterns]\nbad = "("\n', "redaction pattern 'bad': invalid regular"),
        ('[redaction.patterns]\n"Bad Name" = "x"\n', "redaction pattern name 'Bad Name'"),
        ('[redaction.patterns]\nempty = "a*"\n', "redaction pattern 'empty' matches the empty"),
    ],
)
def test_an_invalid_redaction_table_is_refused_naming_the_key(
    store: Store, table: str, expected: str
) -> None:
    config = store.root / "mdsessions.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n" + table, encoding="utf-8")
    with pytest.raises(StoreError) as info:
        Store.open(store.root)
    assert "mdsessions.toml" in str(info.value) and expected in str(info.value)


def test_the_logging_filter_redacts_messages_and_arguments() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("mdsessions.test_redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for _, secret in SAMPLES:
            logger.info("saved %s", secret)
            logger.info(f"inline {secret}")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 100
    assert leaks("\n".join(records)) == []


def _texts(*roots: Path) -> list[Path]:
    out = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                out.append(path)
    return out


def test_no_false_positive_on_the_shared_data_and_the_sample_project() -> None:
    roots = [SHARED / "data", REPO_ROOT / "sample_project", SHARED / "seeds"]
    files = _texts(*[r for r in roots if r.is_dir()])
    if not files:
        pytest.skip("no shared data or sample project")
    redactor = Redactor()
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{path}:{f.line}: {f.kind}" for f in redactor.find(text)]
    assert found == []


@pytest.mark.parametrize(
    "text",
    [
        "commit 9ae9070c3f5d2b8e1a4f6c7d8e9f0a1b2c3d4e5f on branch main",
        "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "id 123e4567-e89b-12d3-a456-426614174000 and #1f2937 and 0xDEADBEEF",
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
        "The skeleton key to the internationalization problem is sk-learn's pipeline.",
        "https://user:pass@example.com and postgres://app:${DB_PASSWORD}@db/app",
        "def hash_password(password: str) -> str:\n    return sha256(password).hexdigest()",
        "API_KEY = os.environ['OPENAI_API_KEY']  # never a literal key",
        "An AKIA prefix alone, a ghp_ prefix alone, and eyJ alone are not secrets.",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "https://hooks.example.com/services/T000/B000/XXXX and mailto:a@b.c",
    ],
)
def test_ordinary_text_that_looks_random_is_not_redacted(text: str) -> None:
    assert redact(text) == text


def test_restoring_a_version_committed_before_redaction_does_not_commit_it_again(
    store: Store,
) -> None:
    store = _configure(store, "\n[redaction]\nenabled = false\n")
    secret = ONE_LINE[0]
    session = store.create_session(P, S)
    session.save_agent_output(1, "concept_expansion", f"old {secret}")
    old = head(store.root)
    session.save_agent_output(1, "concept_expansion", "new")
    config = store.root / "mdsessions.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("enabled = false", ""), "utf-8")
    git(store.root, "commit", "-qam", "redaction back on")
    store.close()
    store = Store.open(store.root)
    try:
        session = store.session(P, S)
        result = history.restore(session, old)
        rel = f"{session.phase_rel(1)}/concept_expansion.md"
        assert git(store.root, "show", f"{result.commit}:{rel}").count("old [REDACTED:") == 1
        assert secret not in (store.root / rel).read_text(encoding="utf-8")
        assert_clean(store.root)
        # The scan still finds the old commit, and only it.
        found = history.scan(store, history=True).findings
        assert [(f.commit, f.kind) for f in found] == [(old, "aws-access-key")]
    finally:
        store.close()


def test_a_secret_where_a_format_is_required_is_refused_and_nothing_is_written(
    store: Store,
) -> None:
    """An id cannot become a marker (it names a folder): the write is refused, naming it."""
    token = next(secret for kind, secret in SAMPLES if kind == "github-token")
    before = (head(store.root), git(store.root, "status", "--porcelain"))
    with pytest.raises(DocumentError) as info:
        store.create_session(P, token)
    message = str(info.value)
    assert "field 'session_id': must keep its format but holds what looks like a secret" in message
    assert token not in message and "/session_manifest.md" in message
    assert (head(store.root), git(store.root, "status", "--porcelain")) == before
    assert not (store.root / "projects" / P).exists()


@pytest.mark.parametrize("as_json", [False, True])
def test_an_error_on_the_command_line_shows_the_marker_not_the_secret(
    store: Store, as_json: bool
) -> None:
    token = next(secret for kind, secret in SAMPLES if kind == "stripe-key")
    store.create_session(P, "s1")  # the project exists: the error quotes the session name
    cmd = [sys.executable, "-m", "mdsessions", "--store", str(store.root), "status", f"{P}/{token}"]
    proc = subprocess.run(cmd + (["--json"] if as_json else []), capture_output=True, text=True)
    assert proc.returncode == 1
    assert token not in proc.stdout + proc.stderr and token[8:20] not in proc.stderr
    assert "[REDACTED:stripe-key]" in proc.stderr
    if not as_json:
        assert proc.stderr.startswith("Error: ")
