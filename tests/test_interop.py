"""Any git tool reads the index mdsessions writes: libgit2 (pygit2), dulwich, GitPython, git.

Stores of several sizes (filler files committed with ``git fast-import`` and checked out),
then mdsessions checkpoints (a session created, outputs and checkpoints saved, files
deleted); each library must then see exactly what ``git ls-files -s`` sees. Under a
configuration where a library cannot read even the index git itself writes (a split index, a
version-4 index), that library is skipped with its error — but if it reads git's, it must
read ours.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import assert_clean, git

from mdsessions import Store

pygit2 = pytest.importorskip("pygit2")  # the [test] extra
dulwich_repo = pytest.importorskip("dulwich.repo")
gitpython = pytest.importorskip("git")

Entries = dict[str, tuple[int, str]]


def filler_path(i: int) -> str:
    return f"projects/fill/sessions/s{i // 10:05d}/phase_1_concept/file_{i % 10}.md"


def build_store(root: Path, nfiles: int, config: dict[str, str]) -> Store:
    """``Store.init`` + ``nfiles`` files in one fast-import commit, checked out; ``config``
    goes to the global git config first (the scope a person's settings live in)."""
    for key, value in config.items():
        git(root.parent, "config", "--global", key, value)
    Store.init(root).close()
    head = git(root, "rev-parse", "HEAD").strip()
    lines = [
        "blob",
        "mark :1",
        "data 8",
        "filler",
        "",
        "commit refs/heads/main",
        "committer Filler <filler@example.com> 1700000000 +0000",
        "data 7",
        "filler",
        f"from {head}",
    ]
    lines += [f"M 100644 :1 {filler_path(i)}" for i in range(nfiles)]
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=root,
        input=("\n".join(lines) + "\n").encode(),
        check=True,
    )
    git(root, "reset", "-q", "--hard", "main")
    return Store.open(root)


def checkpoints(store: Store, nfiles: int) -> None:
    """Several checkpoints: a session created, outputs, checkpoints, deletions, a second session."""
    session = store.create_session("proj", "s-interop")
    for round_ in range(3):
        session.save_agent_output(1, "concept_expansion", f"round {round_}\n", model="m")
        session.save_checkpoint(1, status="in_progress")
    gone = [filler_path(i) for i in (0, nfiles // 2, nfiles - 1)]
    store.commit(dict.fromkeys(gone), message="remove three filler files")
    store.create_session("zproj", "s-last")
    session.save_agent_output(1, "concept_expansion", "after the deletes\n", model="m")


def git_entries(root: Path) -> Entries:
    out: Entries = {}
    for record in git(root, "ls-files", "-s", "-z").split("\0"):
        if record:
            meta, path = record.split("\t", 1)
            mode, sha, stage = meta.split()
            assert stage == "0", record
            out[path] = (int(mode, 8), sha)
    return out


def read_pygit2(root: Path) -> Entries:
    return {e.path: (e.mode, str(e.id)) for e in pygit2.Repository(str(root)).index}


def read_dulwich(root: Path) -> Entries:
    with dulwich_repo.Repo(str(root)) as repo:
        out: Entries = {}
        for path, entry in repo.open_index().items():
            sha = entry.sha.decode() if isinstance(entry.sha, bytes) else str(entry.sha)
            out[path.decode()] = (entry.mode, sha)
        return out


def read_gitpython(root: Path) -> Entries:
    repo = gitpython.Repo(str(root))
    try:
        return {path: (e.mode, e.hexsha) for (path, _stage), e in repo.index.entries.items()}
    finally:
        repo.close()


READERS: dict[str, Callable[[Path], Entries]] = {
    "libgit2": read_pygit2,
    "dulwich": read_dulwich,
    "GitPython": read_gitpython,
}


def index_header(root: Path) -> tuple[int, bool]:
    """(version, whether the index is split: a ``link`` extension naming a shared index)."""
    data = (root / ".git" / "index").read_bytes()
    version = struct.unpack(">I", data[4:8])[0]
    at = data.find(b"link")
    while at != -1:  # the signature, its size, then the shared index's name
        if (root / ".git" / f"sharedindex.{data[at + 8 : at + 28].hex()}").exists():
            return version, True
        at = data.find(b"link", at + 1)
    return version, False


def git_written_copy(root: Path, dest: Path) -> Path:
    """A copy of the store whose index git itself wrote from scratch, under the same config."""
    shutil.copytree(root, dest, symlinks=True)
    (dest / ".git" / "index").unlink()
    for shared in (dest / ".git").glob("sharedindex.*"):
        shared.unlink()
    git(dest, "read-tree", "HEAD")
    git(dest, "status", "--porcelain")  # refreshes the stat data and writes the index again
    if index_header(root)[1] and not index_header(dest)[1]:
        git(dest, "update-index", "--split-index")  # git splits small indexes lazily
    assert index_header(dest) == index_header(root)  # same version, split alike
    return dest


CONFIGS = {
    "default": {},
    "split-index": {"core.splitIndex": "true"},
    "index-v4": {"index.version": "4"},
    "many-files": {"feature.manyFiles": "true"},
}


_built: dict[tuple[int, str], Path] = {}


def built_store(
    factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, nfiles: int, name: str
) -> Path:
    """The store of ``nfiles`` files under config ``name`` after the checkpoints, built on
    first use and shared by the tests of the module (they only read it, or copy it)."""
    key = (nfiles, name)
    if key not in _built:
        folder = factory.mktemp(f"{name}-{nfiles}")
        config = folder / "gitconfig"
        shutil.copy(Path(os.environ["GIT_CONFIG_GLOBAL"]), config)
        monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
        store = build_store(folder / "store", nfiles, CONFIGS[name])
        try:
            checkpoints(store, nfiles)
        finally:
            store.close()
        _built[key] = folder
    folder = _built[key]
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(folder / "gitconfig"))
    return folder / "store"


def run_case(
    factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    nfiles: int,
    config_name: str,
    reader: str,
) -> None:
    config = CONFIGS[config_name]
    root = built_store(factory, monkeypatch, nfiles, config_name)
    version, split = index_header(root)
    assert split == (config_name == "split-index")
    if config_name in ("index-v4", "many-files"):
        assert version == 4
    elif not split:
        assert version == 2
    assert_clean(root)
    expected = git_entries(root)
    assert filler_path(0) not in expected and filler_path(nfiles - 1) not in expected
    assert "projects/zproj/sessions/s-last/session_manifest.md" in expected
    assert len(expected) > nfiles
    read = READERS[reader]
    by_git = root.parent / "by-git"
    if not by_git.exists():
        git_written_copy(root, by_git)
    try:
        theirs_by_git = read(by_git)
    except Exception as exc:  # noqa: BLE001 - whatever the library raises
        with pytest.raises(Exception) as ours:  # noqa: PT011
            read(root)
        pytest.skip(
            f"{reader} cannot read the index git itself writes under {config} either: "
            f"{type(exc).__name__}: {exc} (ours: {type(ours.value).__name__})"
        )
    assert theirs_by_git == expected
    assert read(root) == expected


CASES = [
    (100, "default"),
    (6_000, "default"),  # past the 5,000 entries from which the index used to be split
    (100, "split-index"),
    (100, "index-v4"),
    (100, "many-files"),
    *(pytest.param(6_000, name, marks=pytest.mark.slow) for name in list(CONFIGS)[1:]),
]


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize(("nfiles", "config_name"), CASES)
def test_every_library_reads_the_index(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    nfiles: int,
    config_name: str,
    reader: str,
) -> None:
    run_case(tmp_path_factory, monkeypatch, tmp_path, nfiles, config_name, reader)


@pytest.mark.slow
@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("config_name", ["default", "index-v4"])
def test_every_library_reads_a_large_index(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    config_name: str,
    reader: str,
) -> None:
    run_case(tmp_path_factory, monkeypatch, tmp_path, 20_000, config_name, reader)


def test_skip_hash_is_not_written_for_a_git_that_cannot_read_it(tmp_path: Path) -> None:
    """index.skipHash is configured, but git 2.39 (here) would call a zero trailer corrupt."""
    store = build_store(tmp_path / "store", 50, {"index.skipHash": "true"})
    try:
        store.create_session("proj", "s-hash")
    finally:
        store.close()
    version = git(tmp_path, "--version")
    data = (tmp_path / "store" / ".git" / "index").read_bytes()
    if tuple(int(x) for x in version.split()[2].split(".")[:2]) >= (2, 40):
        assert data[-20:] == b"\0" * 20
    else:
        assert data[-20:] != b"\0" * 20
    assert_clean(tmp_path / "store")
