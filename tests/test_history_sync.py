"""Many hands, one workflow (issue 11): sync never drops work silently; a second machine.

Two machines are two clones of one remote: a bare repository over ``file://`` and the same
repository served by ``git daemon`` on 127.0.0.1 (``git://``), started here and killed at
teardown. No git command is mocked. Covered:

* the conflict story of the issue (A completes a session, B marks the same phase ``revise``,
  B resolves with ``--keep mine`` or ``--fork-theirs``, A pulls): A is warned loudly and its
  version is kept under a named ref, listed with the command that brings it back;
* ``mdsessions.toml`` merging key by key, and a session whose workflow file lies outside the
  store resuming on the other machine;
* ``mdsessions clone`` from a bare repository whose HEAD names ``master``, over a path,
  ``git://``, ssh (a stand-in ``ssh`` that runs git's command locally) and smart HTTP
  (``git http-backend`` behind a small WSGI server);
* two processes syncing concurrently: no commit either side made becomes unreachable, and
  every version set aside is named in the command output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from click.testing import CliRunner, Result
from helpers import (
    PERSON,
    assert_clean,
    command_agent,
    git,
    head,
    write_two_phase_workflow,
)

from mdsessions import (
    AgentContext,
    ReviewState,
    Runner,
    SessionStatus,
    Store,
    StoreNotFoundError,
    history,
)
from mdsessions.cli import cli
from mdsessions.history.sync import SyncConflictError

ROOT = Path(__file__).resolve().parents[1]
P, S = "proj", "shared"
SET_ASIDE = "refs/mdsessions/set-aside/"


# ------------------------------------------------------------------------------ helpers


def invoke(*argv: str, code: int = 0) -> Result:
    """The CLI in-process; the exit status checked (output shown when it differs)."""
    result = CliRunner().invoke(cli, list(argv))
    assert result.exit_code == code, (
        f"exit {result.exit_code} != {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        f"\nexception: {result.exception!r}"
    )
    assert "Traceback" not in result.stderr
    return result


def write_workflow(folder: Path, name: str) -> Path:
    """A two-phase workflow file (review after phase 1) with command agents (any machine)."""
    folder.mkdir(parents=True, exist_ok=True)
    echo = f"import sys; print('# {name} output'); print(sys.stdin.read()[:40])"
    path = write_two_phase_workflow(
        folder / f"{name}.toml", name=name, first=command_agent(echo), second=command_agent(echo)
    )
    return path


def agents(tag: str) -> dict[str, Callable[[AgentContext], str]]:
    def agent(ctx: AgentContext) -> str:
        return f"# {ctx.agent_name} on {tag}\n\n{ctx.idea}\nretry {ctx.retry_count}\n"

    return {"writer": agent, "finisher": agent}


def refs(root: Path, prefix: str = SET_ASIDE) -> dict[str, str]:
    out = git(root, "for-each-ref", "--format=%(refname) %(objectname)", prefix)
    return dict(line.split() for line in out.splitlines())


# ------------------------------------------------------------------------------ remotes


@pytest.fixture
def machines(tmp_path: Path, url: str) -> Iterator[tuple[Store, Store]]:
    """Machine A (made the store, pushed it) and machine B (``history.clone``)."""
    a = Store.init(tmp_path / "a")
    history.add_remote(a, "origin", url)
    history.push(a)
    b = history.clone(url, tmp_path / "b")
    try:
        yield a, b
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------------------ the story


@pytest.mark.parametrize("way", ["keep-mine", "fork-theirs"])
def test_a_version_the_other_side_kept_theirs_over_is_set_aside_named_and_warned(
    tmp_path: Path, machines: tuple[Store, Store], way: str
) -> None:
    a, b = machines
    flows_a, flows_b = tmp_path / "flows-a", tmp_path / "flows-b"
    # A starts the session with a workflow file outside the store; B gets it.
    ra = Runner(a, write_workflow(flows_a, "aflow"), agents=agents("A"))
    sa = ra.start(P, S, idea="Shared idea").session
    assert sa.status is SessionStatus.AWAITING_REVIEW
    history.sync(a)
    assert history.pull(b).action == "fast-forward"
    # Each machine registers another workflow (mdsessions.toml changes on both sides) ...
    Runner(a, write_workflow(flows_a, "cflow"), agents=agents("A")).start(P, "a-only", idea="c")
    Runner(b, write_workflow(flows_b, "bflow"), agents=agents("B")).start(P, "b-only", idea="b")
    # ... A approves phase 1 and completes the session, B asks for a revision of it.
    sa.save_feedback(1, approved=True, author=PERSON)
    assert ra.run(sa).status is SessionStatus.COMPLETED
    a_done = head(a.root)
    history.push(a)
    sb = b.session(P, S)
    sb.save_feedback(1, action="revise", comments="Focus on cooks", author=PERSON)
    b_revise = head(b.root)

    # B's pull stops and names the session, not mdsessions.toml (merged key by key).
    with pytest.raises(SyncConflictError) as info:
        history.pull(b)
    assert [c.session for c in info.value.sessions] == [f"{P}/{S}"]
    assert info.value.files == () and info.value.keys == ()
    assert "--fork-theirs NEW_ID" in str(info.value)

    short = a_done[:12]
    a_ref = f"{SET_ASIDE}{P}/{S}/{short}"
    if way == "keep-mine":
        out = invoke("sync", "--keep", "mine", "--store", str(b.root))
        assert f"  {P}/{S}: changed on both sides: kept mine" in out.stdout
        assert f"    set aside: {a_ref} (the remote's version, completed)" in out.stdout
        assert f"get it back: mdsessions fork {P}/{S} {S}-{a_done[:8]} --at {short}" in out.stdout
        assert f"  pushed {a_ref}" in out.stdout
        assert refs(b.root)[a_ref] == a_done
    else:
        out = invoke("sync", "--fork-theirs", "shared-a", "--store", str(b.root))
        assert f"  {P}/{S}: changed on both sides: kept mine; origin's version added as " in (
            out.stdout
        )
        fork = b.session(P, "shared-a")
        assert fork.status is SessionStatus.COMPLETED
        assert fork.manifest().forked_from is not None
    assert (
        "  mdsessions.toml: merged key by key: [workflows] aflow, [workflows] cflow" in (out.stdout)
        or "  mdsessions.toml: merged key by key: [workflows] cflow" in out.stdout
    )
    config = (b.root / "mdsessions.toml").read_text(encoding="utf-8")
    for name in ("aflow", "bflow", "cflow"):
        assert f'{name} = "workflows/{name}.toml"' in config
    assert str(tmp_path) not in config
    assert b.session(P, S).manifest().phases[0].review is ReviewState.REVISE
    # The open store on B finds the workflow the pull registered (no 'unknown workflow').
    assert b.workflow("cflow").source == (b.root / "workflows" / "cflow.toml").resolve()

    # A's pull fast-forwards onto B's resolution: loud, and A's version is kept and listed.
    out = invoke("pull", "--store", str(a.root))
    assert out.stdout.startswith("fast-forward to origin/main")
    assert f"  {P}/{S}: REPLACED by origin's version, which does not include this store's: " in (
        out.stdout
    )
    warning = next(line for line in out.stderr.splitlines() if line.startswith("Warning:"))
    assert warning.startswith(
        f"Warning: {P}/{S}: origin's version replaces this store's and does not include it "
        "(completed -> in_progress)"
    )
    assert f"this store's version is kept as {a_ref}" in warning
    assert f"mdsessions fork {P}/{S} {S}-{a_done[:8]} --at {short}" in warning
    if way == "fork-theirs":
        assert f"and as session {P}/shared-a" in warning
    assert refs(a.root)[a_ref] == a_done
    assert a.session(P, S).status is SessionStatus.IN_PROGRESS
    listed = json.loads(invoke("set-aside", f"{P}/{S}", "--json", "--store", str(a.root)).stdout)
    assert [x["ref"] for x in listed] == [a_ref]
    assert listed[0]["status"] == "completed"
    # ... and the command it printed brings it back.
    invoke("fork", f"{P}/{S}", "back", "--at", short, "--store", str(a.root))
    back = a.session(P, "back")
    assert back.status is SessionStatus.COMPLETED
    out2 = back.output(2, "finisher")
    assert out2 is not None and "on A" in out2.content
    for store in (a, b):
        assert history.verify(store).ok
        assert_clean(store.root)
    git(a.root, "merge-base", "--is-ancestor", b_revise, "HEAD")  # B's revision reached A


def test_keep_theirs_sets_mine_aside_and_the_api_reports_every_change(
    machines: tuple[Store, Store],
) -> None:
    a, b = machines
    sa = (
        Runner(a, write_workflow(a.root.parent / "f", "flow"), agents=agents("A"))
        .start(P, S, idea="x")
        .session
    )
    history.sync(a)
    history.pull(b)
    sa.save_feedback(1, approved=True, author=PERSON)
    history.push(a)
    b.session(P, S).save_feedback(1, action="revise", comments="no", author=PERSON)
    mine = head(b.root)
    result = history.pull(b, keep="theirs")
    [change] = result.changes
    assert change.change == "kept-theirs" and change.session == f"{P}/{S}"
    assert change.set_aside is not None and change.set_aside.side == "mine"
    assert change.set_aside.ref == f"{SET_ASIDE}{P}/{S}/{mine[:12]}"
    assert result.to_json()["set_aside"][0]["commit"] == mine
    assert b.session(P, S).manifest().phases[0].review is ReviewState.APPROVED
    pushed = history.push(b)
    assert pushed.refs == (change.set_aside.ref,)
    # A's pull brings a resolution that includes its own version: no warning.
    pulled = history.pull(a)
    assert pulled.action == "fast-forward" and pulled.warnings == ()
    assert [c.change for c in pulled.changes] == []  # A's session files are already those
    assert refs(a.root) == refs(b.root)


def test_a_merge_pull_also_sets_aside_a_version_the_remote_replaced(
    machines: tuple[Store, Store],
) -> None:
    a, b = machines
    sa = a.create_session(P, S, idea="x")
    a.create_session(P, "other")
    history.push(a)
    history.pull(b)
    sa.save_agent_output(1, "concept_expansion", "A's work\n")
    history.push(a)
    b.session(P, S).save_agent_output(1, "concept_expansion", "B's work\n")
    assert history.sync(b, keep="mine")[0].changes[0].change == "kept-mine"
    # A has moved on elsewhere meanwhile: its pull is a merge, S changed on B's side only.
    a.session(P, "other").save_agent_output(1, "concept_expansion", "unrelated\n")
    ours = head(a.root)
    out = invoke("pull", "--json", "--store", str(a.root))
    result = json.loads(out.stdout)
    assert result["action"] == "merged"
    [change] = [c for c in result["changes"] if (c["project"], c["session"]) == (P, S)]
    assert change["change"] == "replaced"
    assert change["set_aside"]["commit"] == ours and change["set_aside"]["side"] == "mine"
    assert change["status"] == {"before": "in_progress", "after": "in_progress"}
    assert [w.split(":")[0] for w in result["warnings"]] == [f"{P}/{S}"]
    assert out.stderr == f"Warning: {result['warnings'][0]}\n"  # loud in JSON mode too
    kept = history.read_version(a.session(P, S), "phase_1_concept/concept_expansion.md", ours)
    assert b"A's work" in kept
    now = a.session(P, S).output(1, "concept_expansion")
    assert now is not None and now.content == "B's work\n"
    body = git(a.root, "log", "-1", "--format=%b")
    assert f"- {P}/{S}: origin's version does not include ours; set aside as " in body
    # Ordinary merges and fast-forwards of a session changed on one side warn about nothing.
    b.create_session(P, "third")
    history.sync(b)
    assert history.pull(a).warnings == ()


# ------------------------------------------------------------------------------ workflows


def test_workflow_registrations_merge_and_a_session_resumes_on_the_other_machine(
    tmp_path: Path, machines: tuple[Store, Store]
) -> None:
    a, b = machines
    flow_a = write_workflow(tmp_path / "elsewhere-a", "aflow")
    flow_b = write_workflow(tmp_path / "elsewhere-b", "bflow")
    idea = "--idea", "Trail conditions"
    invoke("run", "--new", P, "sa", *idea, "--workflow", str(flow_a), "--store", str(a.root))
    invoke("run", "--new", P, "sb", *idea, "--workflow", str(flow_b), "--store", str(b.root))
    for store in (a, b):
        config = (store.root / "mdsessions.toml").read_text(encoding="utf-8")
        assert str(tmp_path) not in config  # never an absolute path in the tracked config
    out = invoke("sync", "--store", str(a.root))
    out = invoke("sync", "--store", str(b.root))
    assert "  mdsessions.toml: merged key by key: [workflows] aflow from origin" in out.stdout
    history.pull(a)
    for store in (a, b):
        config = (store.root / "mdsessions.toml").read_text(encoding="utf-8")
        assert 'aflow = "workflows/aflow.toml"' in config
        assert 'bflow = "workflows/bflow.toml"' in config
        assert (store.root / "workflows" / "aflow.toml").read_bytes() == flow_a.read_bytes()
    # Machine B never had A's file: resume A's session there, by name only.
    shutil.rmtree(flow_a.parent)
    invoke("feedback", f"{P}/sa", "1", "--approve", "--store", str(b.root))
    out = invoke("run", f"{P}/sa", "--store", str(b.root))
    assert b.session(P, "sa").status is SessionStatus.COMPLETED
    final = b.session(P, "sa").output(2, "finisher")
    assert final is not None and final.content.startswith("# aflow output")
    invoke("sync", "--store", str(b.root))
    history.pull(a)
    assert a.session(P, "sa").status is SessionStatus.COMPLETED
    for store in (a, b):
        assert history.verify(store).ok
        assert_clean(store.root)


def test_an_absolute_registration_of_an_older_version_is_replaced_by_a_copy(
    tmp_path: Path, store: Store
) -> None:
    flow = write_workflow(tmp_path / "outside", "oldflow")
    config = store.root / "mdsessions.toml"
    config.write_text(config.read_text() + f"oldflow = {json.dumps(str(flow))}\n")
    git(store.root, "commit", "-q", "-am", "register oldflow (absolute, as before issue 11)")
    reopened = Store(store.root)
    reopened.create_session(P, "s1", workflow="oldflow")
    text = config.read_text()
    assert 'oldflow = "workflows/oldflow.toml"' in text and str(flow) not in text
    assert (store.root / "workflows" / "oldflow.toml").read_bytes() == flow.read_bytes()
    # Changed at its source, the copy follows with the next session that uses the file.
    flow.write_text(flow.read_text().replace('name = "Final"', 'name = "Finale"'))
    reopened.create_session(P, "s2", workflow=str(flow))
    assert "Finale" in (store.root / "workflows" / "oldflow.toml").read_text()
    assert reopened.workflow("oldflow").source == flow.resolve()  # this machine: the original
    assert history.verify(reopened).ok
    assert_clean(store.root)
    reopened.close()


# ------------------------------------------------------------------------------ a second machine


FAKE_SSH = r"""
import subprocess, sys
# git runs: <ssh> HOST COMMAND (ssh.variant = simple); run COMMAND here, as sshd would there.
sys.exit(subprocess.call(["sh", "-c", sys.argv[-1]]))
"""


@pytest.fixture
def ssh_url(tmp_path: Path, isolated_git: Path, remotes_dir: Path) -> str:
    """``ssh://`` to ``remotes_dir`` through a stand-in for ssh that runs git's command here."""
    script = tmp_path / "fake_ssh.py"
    script.write_text(FAKE_SSH, encoding="utf-8")
    with isolated_git.open("a", encoding="utf-8") as fh:
        fh.write(f'[ssh]\n\tvariant = simple\n[core]\n\tsshCommand = "{sys.executable}" {script}\n')
    return f"ssh://machine-a{remotes_dir}"


@pytest.fixture
def http_url(remotes_dir: Path) -> Iterator[str]:
    """Smart HTTP: ``git http-backend`` (CGI) behind a small threaded WSGI server."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "GIT_CONFIG_GLOBAL": os.environ["GIT_CONFIG_GLOBAL"],
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": str(remotes_dir),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "tester",  # authenticated: receive-pack (push) allowed
            "REMOTE_ADDR": "127.0.0.1",
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
        }
        for key in ("HTTP_CONTENT_ENCODING", "HTTP_GIT_PROTOCOL"):
            if key in environ:
                env[key] = environ[key]
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head_, _, payload = proc.stdout.partition(b"\r\n\r\n")
        status, headers = "200 OK", []
        for line in head_.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name, value.strip()))
        start_response(status, headers)
        return [payload]

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, server_class=Server, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("transport", ["path", "daemon", "ssh", "http"])
def test_clone_from_a_bare_repository_whose_head_names_master(
    tmp_path: Path,
    remotes_dir: Path,
    transport: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    git(remotes_dir, "init", "-q", "--bare", "--initial-branch=master", "plain.git")
    first = Store.init(tmp_path / "first")
    first.create_session(P, "s0", idea="first")
    history.add_remote(first, "origin", str(remotes_dir / "plain.git"))
    history.push(first)
    base = {
        "path": lambda: str(remotes_dir),
        "daemon": lambda: request.getfixturevalue("daemon"),
        "ssh": lambda: request.getfixturevalue("ssh_url"),
        "http": lambda: request.getfixturevalue("http_url"),
    }[transport]()
    source = f"{base}/plain.git"
    # Plain git clone gives an empty checkout (protocol v2 reports the unborn master; v0, as
    # over this stand-in ssh, lets git guess): the error now says what to do.
    git(tmp_path, "clone", "-q", source, "plain-clone", check=False)
    if transport != "ssh":
        assert not (tmp_path / "plain-clone" / "mdsessions.toml").exists()
        with pytest.raises(StoreNotFoundError, match="mdsessions clone URL"):
            Store.open(tmp_path / "plain-clone")

    monkeypatch.chdir(ROOT)  # the sample workflow's relative path, as a person would type it
    second = tmp_path / "second"
    out = invoke("clone", source, str(second), "--json")
    data = json.loads(out.stdout)
    assert data["branch"] == "main" and data["upstream"] == "origin/main"
    assert data["session_count"] == 1 and data["commit"] == head(first.root)
    assert git(second, "rev-parse", "--abbrev-ref", "main@{upstream}").strip() == "origin/main"
    assert git(second, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert (second / "mdsessions.toml").is_file()
    assert_clean(second)
    invoke(
        "run", "--new", P, "s1", "--idea-file", "sample_project/ideas/recipe-swap.md",
        "--workflow", "sample_project/workflow.toml", "--store", str(second),
    )  # fmt: skip
    with Store.open(second) as clone:
        assert clone.session(P, "s1").status is SessionStatus.AWAITING_REVIEW
        assert (second / "workflows" / "idea_validation.toml").is_file()
    out = invoke("sync", "--store", str(second))
    assert "pushed: origin/main" in out.stdout
    out = invoke("verify", "--store", str(second))
    assert out.stdout.startswith("ok:")
    assert history.pull(first).action == "fast-forward"
    assert first.session(P, "s1").status is SessionStatus.AWAITING_REVIEW
    first.close()


def test_clone_refuses_an_empty_remote_and_a_repository_that_is_no_store(
    tmp_path: Path, remotes_dir: Path
) -> None:
    with pytest.raises(StoreNotFoundError, match="has no branch yet"):
        history.clone(str(remotes_dir / "store.git"), tmp_path / "c1")
    assert not (tmp_path / "c1").exists()
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "other")
    (other / "README.md").write_text("hi\n")
    git(other, "add", "README.md")
    git(other, "commit", "-q", "-m", "not a store")
    result = invoke("clone", str(other), str(tmp_path / "c2"), code=1)
    assert result.stderr.startswith(f"Error: {other} holds no mdsessions store")
    assert not (tmp_path / "c2").exists()


def test_clone_finds_the_branch_that_holds_the_store(tmp_path: Path, remotes_dir: Path) -> None:
    first = Store.init(tmp_path / "first")
    bare = remotes_dir / "odd.git"
    git(remotes_dir, "init", "-q", "--bare", "--initial-branch=master", "odd.git")
    git(first.root, "push", "-q", str(bare), "main:refs/heads/main")
    git(first.root, "push", "-q", str(bare), "main:refs/heads/master")
    (tmp_path / "docs").mkdir()
    # master holds something else entirely: the store is still found on main.
    git(tmp_path / "docs", "init", "-q", "-b", "master")
    (tmp_path / "docs" / "README.md").write_text("docs\n")
    git(tmp_path / "docs", "add", "README.md")
    git(tmp_path / "docs", "commit", "-q", "-m", "docs")
    git(tmp_path / "docs", "push", "-q", "-f", str(bare), "master:refs/heads/master")
    with history.clone(str(bare), tmp_path / "c") as clone:
        assert clone.branch == "main"
        assert git(clone.root, "branch", "--format=%(refname:short)").split() == ["main"]
        clone.create_session(P, "s")
        assert history.sync(clone)[1].action == "pushed"
    first.close()


# ------------------------------------------------------------------------------ concurrency

WORKER = r"""
import json, subprocess, sys, time
from mdsessions import Store
root, tag, rounds, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
store = Store.open(root)
own = store.session("proj", "own-" + tag)
shared = store.session("proj", "shared")
made, outputs = [], []

def sync():
    for _ in range(20):
        proc = subprocess.run(
            [sys.executable, "-m", "mdsessions", "sync", "--keep", "mine", "--store", root],
            capture_output=True, text=True,
        )
        outputs.append({"code": proc.returncode, "out": proc.stdout, "err": proc.stderr})
        if proc.returncode == 0:
            return
        time.sleep(0.05)
    raise SystemExit("sync kept failing: " + proc.stderr)

for n in range(rounds):
    own.save_agent_output(1, "concept_expansion", f"{tag} own round {n}\n")
    made.append(store.git.head())
    shared.save_agent_output(1, "concept_expansion", f"{tag} shared round {n}\n")
    made.append(store.git.head())
    sync()
    made.append(store.git.head())
store.close()
with open(log, "w") as fh:
    json.dump({"made": made, "outputs": outputs}, fh)
"""


def _concurrent_syncs(tmp_path: Path, url: str, rounds: int) -> None:
    a = Store.init(tmp_path / "a")
    history.add_remote(a, "origin", url)
    a.create_session(P, "shared")
    a.create_session(P, "own-A")
    a.create_session(P, "own-B")
    history.push(a)
    b = history.clone(url, tmp_path / "b")
    stores = {"A": a, "B": b}
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    procs = {
        tag: subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(store.root),
                tag,
                str(rounds),
                str(tmp_path / f"log-{tag}.json"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for tag, store in stores.items()
    }
    for tag, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"worker {tag}: {err.decode()}"
    logs = {t: json.loads((tmp_path / f"log-{t}.json").read_text()) for t in stores}
    # Settle: both sync until they agree (no new saves).
    for _ in range(3):
        for tag, store in stores.items():
            out = invoke("sync", "--keep", "mine", "--store", str(store.root))
            logs[tag]["outputs"].append({"code": 0, "out": out.stdout, "err": out.stderr})
    assert head(a.root) == head(b.root)
    remote = Path(url.removeprefix("file://")) if url.startswith("file:") else None
    # Nothing any side ever committed is unreachable: every commit is reachable from a ref.
    reachable: set[str] = set()
    for root in [a.root, b.root, *([remote] if remote else [])]:
        reachable |= set(git(root, "rev-list", "--all").split())
        unreachable = git(root, "fsck", "--unreachable", "--no-reflogs", "--no-progress")
        lost = {line.split()[-1] for line in unreachable.splitlines() if " commit " in line}
        assert not lost & {c for log in logs.values() for c in log["made"]}
    for tag, log in logs.items():
        missing = [c for c in log["made"] if c not in reachable]
        assert missing == [], f"{tag}: commits no ref reaches: {missing}"
    # Every loser is named, on every side, and listed by name in some command's output.
    names_a, names_b = refs(a.root), refs(b.root)
    assert names_a == names_b and names_a, "the shared session conflicted: something set aside"
    if remote is not None:
        assert refs(remote) == names_a
    printed = "\n".join(o["out"] + o["err"] for log in logs.values() for o in log["outputs"])
    for name in names_a:
        assert name in printed, f"{name} is never named in the output"
    for name in set(re.findall(r"set aside: (\S+)", printed)):
        assert name in names_a
    # A session only one side writes is never reported replaced (no false alarms).
    assert not re.search(r"(own-A|own-B): (REPLACED|changed on both sides)", printed)
    # What a side lost in the shared session is exactly a version it had: named, reachable.
    for name, sha in names_a.items():
        assert f"/{P}/shared/" in name
        assert sha in reachable
    for store in stores.values():
        assert history.verify(store).ok
        assert_clean(store.root)
    own_a = b.session(P, "own-A").output(1, "concept_expansion")
    assert own_a is not None and own_a.content == f"A own round {rounds - 1}\n"
    a.close()
    b.close()


def test_concurrent_syncs_lose_nothing_and_name_every_loser(tmp_path: Path, daemon: str) -> None:
    _concurrent_syncs(tmp_path, f"{daemon}/store.git", rounds=10)


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["file", "daemon"])
def test_concurrent_syncs_many_rounds(
    tmp_path: Path, remotes_dir: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    if transport == "file":
        url = (remotes_dir / "store.git").as_uri()
    else:
        url = f"{request.getfixturevalue('daemon')}/store.git"
    _concurrent_syncs(tmp_path, url, rounds=25)
