"""_stores.py - build an mdsessions store of N sessions quickly, for benchmarks.

Going through ``create_session`` N times costs one commit per session (minutes at 10,000).
:func:`make_store` instead makes two template sessions through the library (one fresh, one
whose phase 1 completed and awaits review, with an agent output), then writes N session
folders by copying those files with the ids and timestamps replaced, and records them all
in one plain ``git add -A`` + ``git commit``. Every manifest is byte-for-byte what the
library renders for such a session (only the ids and times differ), so it parses, validates
and lists exactly like a real one; ``git status --porcelain`` is empty afterwards.

Layout: ``projects/{project}/sessions/{session}/…`` with ``projects`` projects named
``proj-000`` … and sessions ``s-000000`` … spread round-robin over them. Session ``k`` is
created ``k`` seconds after 2024-01-01T00:00:00Z (all its times are that instant), so the
listing order (project, created, session id) is known in advance. Every ``review_every``-th
session of each project (``(k // projects) % review_every == 0``) awaits review of phase 1
(status ``awaiting_review``, one agent output ``concept_expansion.md``, a ``checkpoint.md``
and a ``user_feedback.md``); the others are new sessions with only a manifest.

Use from a script in ``benchmarks/``::

    from _stores import make_store
    info = make_store(Path("/tmp/big"), 10_000)     # ~10-20 s on a small VM
    info.awaiting                                    # 1,000 inbox items

The caller is responsible for the git environment (e.g. ``bench_checkpoint.setup_env``);
the commit's author is set explicitly, so no global identity is needed.

``make_store(..., varied=True)`` (what ``bench_sessions.py`` searches) also gives every
session tags and its agent output a model, tokens and cost: session ``k`` has the tags
``t{k % 50}`` (two digits) and ``all``, and its output (sessions awaiting review) the model
:data:`MODELS` ``[k % 4]`` with ``100 + k % 1000`` input tokens, ``50 + k % 500`` output
tokens and ``0.001 * (k % 7 + 1)`` USD in ``1 + k % 60`` seconds; the manifest's phase row
lists that agent (``agents:``), as a real run records it.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

_EPOCH = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)
_TEMPLATE_PROJECT = "tmplproject"
_TEMPLATE_IDS = ("tmplfresh", "tmplreview")
_TAG, _MODEL = "tmpltag", "tmplmodel"
#: The models of ``varied`` stores' agent outputs, one per session in turn.
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "gemini-1.5-pro")
#: Template figures replaced per session in ``varied`` stores (distinctive numbers).
_FIGURES = {
    b"input_tokens: 4321": "input_tokens",
    b"output_tokens: 1234": "output_tokens",
    b"tokens: 5555": "tokens",
    b"cost: 0.0987": "cost",
    b"duration: 54.5": "duration",
}
_IDENTITY = {
    "GIT_AUTHOR_NAME": "mdsessions bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "mdsessions bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}


@dataclass(frozen=True)
class BuiltStore:
    """What :func:`make_store` built.

    Attributes:
        root: The store's folder.
        sessions: Number of sessions.
        projects: Number of projects.
        awaiting: Sessions awaiting review (= inbox items, one phase each).
        files: Files written below ``projects/``.
        seconds: Wall time of the build (s).
    """

    root: Path
    sessions: int
    projects: int
    awaiting: int
    files: int
    seconds: float


def project_name(i: int) -> str:
    """The id of project ``i``."""
    return f"proj-{i:03d}"


def session_name(k: int) -> str:
    """The id of session ``k``."""
    return f"s-{k:06d}"


def stamp(k: int) -> str:
    """The creation time of session ``k``: ``k`` seconds after 2024-01-01 (UTC, ``Z``)."""
    return (_EPOCH + _dt.timedelta(seconds=k)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(root: Path, *args: str) -> None:
    env = {**os.environ, **_IDENTITY}
    proc = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode()[:500]}")


def _templates(scratch: Path, *, varied: bool = False) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Render the two template sessions through the library in a scratch store.

    Returns:
        ``(fresh session's files, review session's files)``, each mapping a session-relative
        path to its bytes.
    """
    try:
        from mdsessions import Store
    except ImportError:
        sys.path.insert(0, str(REPO_ROOT))
        from mdsessions import Store

    store = Store.init(scratch)
    try:
        tags = [_TAG, "all"] if varied else None
        fresh = store.create_session(_TEMPLATE_PROJECT, _TEMPLATE_IDS[0], tags=tags)
        review = store.create_session(_TEMPLATE_PROJECT, _TEMPLATE_IDS[1], tags=tags)
        if varied:
            output = {"agent": "concept_expansion", "content": "# Concept\n\nA benchmark idea.\n",
                      "model": _MODEL, "input_tokens": 4321, "output_tokens": 1234,
                      "cost": 0.0987, "duration": 54.5}  # fmt: skip
            review.save_checkpoint(1, status="completed", outputs=[output])
        else:
            review.save_agent_output(1, "concept_expansion", "# Concept\n\nA benchmark idea.\n")
            review.save_checkpoint(1, status="completed")
        out: list[dict[str, bytes]] = []
        for session in (fresh, review):
            files = {
                p.relative_to(session.path).as_posix(): p.read_bytes()
                for p in sorted(session.path.rglob("*"))
                if p.is_file()
            }
            out.append(files)
        return out[0], out[1]
    finally:
        store.close()


_ANY_TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _varied(data: bytes, k: int) -> bytes:
    """Session ``k``'s tag, model and figures in place of the template's."""
    inp, out = 100 + k % 1000, 50 + k % 500
    values = {"input_tokens": inp, "output_tokens": out, "tokens": inp + out,
              "cost": round(0.001 * (k % 7 + 1), 6), "duration": float(1 + k % 60)}  # fmt: skip
    data = data.replace(_TAG.encode(), f"t{k % 50:02d}".encode())
    data = data.replace(_MODEL.encode(), MODELS[k % len(MODELS)].encode())
    for old, name in _FIGURES.items():
        data = data.replace(old, old.split(b":")[0] + f": {values[name]}".encode())
    return data


def _instantiate(
    files: dict[str, bytes], project: str, session: str, k: int, *, varied: bool = False
) -> dict[str, bytes]:
    """The template's files with the ids of session ``k`` in ``project``; every time its own."""
    new_time = stamp(k).encode()
    out = {}
    for rel, data in files.items():
        data = data.replace(_TEMPLATE_PROJECT.encode(), project.encode())
        for tmpl in _TEMPLATE_IDS:
            data = data.replace(tmpl.encode(), session.encode())
        if varied:
            data = _varied(data, k)
        out[rel] = _ANY_TIME.sub(new_time, data)
    return out


def make_store(
    root: Path,
    sessions: int,
    *,
    projects: int = 10,
    review_every: int = 10,
    varied: bool = False,
) -> BuiltStore:
    """Create a store of ``sessions`` sessions at ``root`` in one commit.

    Args:
        root: A folder that does not exist yet (or is empty).
        sessions: How many sessions (0 or more).
        projects: How many projects to spread them over (round-robin; at least 1).
        review_every: Every ``review_every``-th session of each project awaits review of
            phase 1 (``0``: none does).
        varied: Tags, models, tokens and cost per session (see the module docstring).

    Returns:
        What was built (the timing includes rendering the templates and the git commit).

    Raises:
        RuntimeError: If git fails.
        ValueError: If ``projects`` < 1 or ``sessions`` < 0.
    """
    if projects < 1 or sessions < 0:
        raise ValueError("need projects >= 1 and sessions >= 0")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mdsessions-tmpl-") as tmp:
        fresh, review = _templates(Path(tmp) / "store", varied=varied)
    from mdsessions import Store

    Store.init(root).close()
    awaiting = 0
    files = 0
    base = root / "projects"
    made_dirs: set[Path] = set()
    for k in range(sessions):
        project = project_name(k % projects)
        session = session_name(k)
        waits = review_every > 0 and (k // projects) % review_every == 0
        awaiting += waits
        template = review if waits else fresh
        folder = base / project / "sessions" / session
        for rel, data in _instantiate(template, project, session, k, varied=varied).items():
            path = folder / rel
            if path.parent not in made_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                made_dirs.add(path.parent)
            path.write_bytes(data)
            files += 1
    _git(root, "add", "-A")
    _git(
        root,
        "-c",
        "gc.auto=0",
        "-c",
        "maintenance.auto=false",
        "commit",
        "-q",
        "--no-verify",
        "-m",
        f"bench: {sessions} sessions",
    )
    # Let every file's mtime fall well behind the index and any cache made now, so that no
    # entry is "racily clean" (git's rule; mdsessions' caches follow it) in what we measure.
    time.sleep(2.1)
    _git(root, "update-index", "-q", "--really-refresh")
    return BuiltStore(root, sessions, projects, awaiting, files, time.perf_counter() - start)
