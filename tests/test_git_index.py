"""Tests for mdsessions.git.index against real git repositories (no mocks)."""

from __future__ import annotations

import bisect
import errno
import fnmatch
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from mdsessions.git import index as gi
from mdsessions.git import indexblocks
from mdsessions.git.index import (
    CorruptIndexError,
    IndexEntryUpdate,
    IndexLockedError,
    UnsupportedIndexError,
    entry_stat_matches,
    index_entry,
    read_index,
    update_index,
)

# --------------------------------------------------------------------------- helpers


def _git_env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "gitconfig"
    config.write_text(
        "[user]\n\tname = Test\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n"
        "[advice]\n\tdetachedHead = false\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CONFIG_GLOBAL"] = str(config)
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = "1700000000 +0000"
    return env


class Repo:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q")

    @property
    def git_dir(self) -> Path:
        return self.root / ".git"

    @property
    def index_file(self) -> Path:
        return self.git_dir / "index"

    def git(
        self,
        *args: str,
        input: str | bytes | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> str:
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            ["git", *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            input=data,
            capture_output=True,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"git {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout.decode(errors='replace')}{proc.stderr.decode(errors='replace')}"
            )
        return proc.stdout.decode("utf-8", "surrogateescape")

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        return path

    def hash_object(self, rel: str) -> bytes:
        return bytes.fromhex(self.git("hash-object", "-w", "--", rel).strip())

    def entry(self, rel: str, mode: int = 0o100644) -> IndexEntryUpdate:
        sha = self.hash_object(rel)
        return IndexEntryUpdate(rel, mode, sha, os.lstat(self.root / rel))

    def ls_files(self, *extra: str) -> list[tuple[int, bytes, int, str]]:
        out = self.git("ls-files", "-s", "-z", *extra)
        rows = []
        for record in out.split("\0"):
            if not record:
                continue
            meta, path = record.split("\t", 1)
            mode, sha, stage = meta.split()
            rows.append((int(mode, 8), bytes.fromhex(sha), int(stage), path))
        return rows

    def stage0(self) -> dict[str, tuple[int, bytes, int]]:
        return {p: (m, s, st) for m, s, st, p in self.ls_files() if st == 0}

    def commit_all(self, message: str = "commit") -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    def plumbing_commit(
        self, written: Sequence[str], removed: Sequence[str] = (), message: str = "store"
    ) -> str:
        """Commit ``written``/``removed`` on top of HEAD without touching .git/index."""
        tmp_index = str(self.git_dir / "tmp-store-index")
        # A temp index that is never split (no sharedindex.* of its own under core.splitIndex)
        env = {
            "GIT_INDEX_FILE": tmp_index,
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "core.splitIndex",
            "GIT_CONFIG_VALUE_0": "false",
        }
        self.git("read-tree", "HEAD", env=env)
        lines = []
        for rel in written:
            sha = self.hash_object(rel)
            lines.append(f"100644 {sha.hex()}\t{rel}\n")
        for rel in removed:
            lines.append(f"0 {'0' * 40}\t{rel}\n")
        self.git("update-index", "--index-info", input="".join(lines), env=env)
        tree = self.git("write-tree", env=env).strip()
        Path(tmp_index).unlink()
        commit = self.git("commit-tree", tree, "-p", "HEAD", "-m", message).strip()
        self.git("update-ref", "HEAD", commit)
        return commit

    def status(self) -> str:
        return self.git("status", "--porcelain")

    def version(self) -> int:
        return int(struct.unpack(">I", self.index_file.read_bytes()[4:8])[0])


def extensions(data: bytes) -> list[tuple[bytes, bytes]]:
    """Walk a v2/v3/v4 index (split or not) and return its extensions (test oracle)."""
    version, count = struct.unpack(">II", data[4:12])
    off = 12
    for _ in range(count):
        (flags,) = struct.unpack(">H", data[off + 60 : off + 62])
        start = off + (64 if flags & 0x4000 else 62)
        if version == 4:
            while data[start] & 0x80:
                start += 1
            off = data.index(b"\0", start + 1) + 1
        else:
            namelen = data.index(b"\0", start) - start
            off += (start - off + namelen + 8) & ~7
    found = []
    end = len(data) - 20
    while off < end:
        (size,) = struct.unpack(">I", data[off + 4 : off + 8])
        found.append((data[off : off + 4], data[off + 8 : off + 8 + size]))
        off += 8 + size
    return found


def extension_signatures(data: bytes) -> list[bytes]:
    return [sig for sig, _payload in extensions(data)]


def with_trailer(body: bytes) -> bytes:
    return body + hashlib.sha1(body).digest()


def assert_clean(repo: Repo) -> None:
    assert repo.status() == ""
    assert repo.git("diff-index", "--cached", "HEAD") == ""
    repo.git("fsck", "--strict", "--no-progress")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo", _git_env(tmp_path))


@pytest.fixture
def committed(repo: Repo) -> Repo:
    repo.write("README.md", "# readme\n")
    repo.write("notes/a.md", "alpha\n")
    repo.write("notes/deep/b.md", "beta\n")
    repo.write("z.md", "zed\n")
    repo.commit_all("initial")
    return repo


# --------------------------------------------------------------------------- reading


def test_read_index_matches_ls_files(committed: Repo) -> None:
    committed.write("notes/deep/er/c.md", "gamma\n")
    committed.write("a-b/c.md", "dash\n")
    committed.write("a.md", "dot\n")
    committed.git("add", "-A")
    assert read_index(committed.git_dir) == committed.stage0()
    assert (
        index_entry(committed.git_dir, "notes/deep/er/c.md")
        == committed.stage0()["notes/deep/er/c.md"]
    )
    assert index_entry(committed.git_dir, "notes") is None
    assert index_entry(committed.git_dir, "missing.md") is None


def test_missing_index_is_empty_and_gets_created(repo: Repo) -> None:
    assert read_index(repo.git_dir) == {}
    repo.write("first.md", "first\n")
    update_index(repo.git_dir, [repo.entry("first.md")])
    assert repo.version() == 2
    assert repo.ls_files() == [(0o100644, repo.hash_object("first.md"), 0, "first.md")]
    repo.git("commit", "-q", "-m", "from our index")
    assert repo.status() == ""


def test_entry_stat_matches(committed: Repo) -> None:
    path = committed.root / "notes/a.md"
    # git add wrote fresh stat data for the file
    committed.git("update-index", "--refresh")
    assert entry_stat_matches(committed.git_dir, "notes/a.md", os.lstat(path)) is True
    path.write_text("alpha, edited\n")
    assert entry_stat_matches(committed.git_dir, "notes/a.md", os.lstat(path)) is False
    assert entry_stat_matches(committed.git_dir, "nope.md", os.lstat(path)) is None


# --------------------------------------------------------------------------- writing


def test_plumbing_commit_then_update_is_clean(committed: Repo) -> None:
    committed.write("notes/a.md", "alpha v2\n")
    committed.write("notes/new/c.md", "new\n")
    committed.write("top.md", "top\n")
    (committed.root / "z.md").unlink()
    written = ["notes/a.md", "notes/new/c.md", "top.md"]
    committed.plumbing_commit(written, removed=["z.md"])
    # the index is stale: git sees our commit as staged reversals
    assert committed.git("diff-index", "--cached", "HEAD") != ""

    update_index(
        committed.git_dir,
        [committed.entry(p) for p in written],
        removals=["z.md"],
        work_tree=committed.root,
    )
    assert_clean(committed)
    for rel in written:
        st = os.lstat(committed.root / rel)
        assert entry_stat_matches(committed.git_dir, rel, st) is True
    assert read_index(committed.git_dir) == committed.stage0()
    assert committed.git("write-tree").strip() == committed.git("rev-parse", "HEAD^{tree}").strip()


def test_executable_and_symlink_entries(committed: Repo) -> None:
    script = committed.write("bin/run.sh", "#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (committed.root / "link.md").symlink_to("notes/a.md")
    tmp_index = str(committed.git_dir / "tmp")
    env = {"GIT_INDEX_FILE": tmp_index}
    committed.git("read-tree", "HEAD", env=env)
    committed.git("add", "bin/run.sh", "link.md", env=env)
    tree = committed.git("write-tree", env=env).strip()
    commit = committed.git("commit-tree", tree, "-p", "HEAD", "-m", "x").strip()
    committed.git("update-ref", "HEAD", commit)
    link_sha = hashlib.sha1(b"blob 10\0notes/a.md").digest()
    update_index(
        committed.git_dir,
        [
            committed.entry("bin/run.sh", 0o100755),
            IndexEntryUpdate("link.md", 0o120000, link_sha, os.lstat(committed.root / "link.md")),
        ],
    )
    assert_clean(committed)


def test_insert_in_git_byte_order(committed: Repo) -> None:
    names = ["a/b.md", "a.md", "a-b/c.md", "a0", "notes-x.md", "notes/a.md.bak", "é.md", "Z.md"]
    for name in names:
        committed.write(name, f"{name}\n")
    committed.plumbing_commit(names)
    update_index(committed.git_dir, [committed.entry(n) for n in names])
    listed = [p for _m, _s, _st, p in committed.ls_files()]
    assert listed == sorted(listed, key=lambda p: p.encode())
    assert set(names) <= set(listed)
    assert listed.index("a-b/c.md") < listed.index("a.md") < listed.index("a/b.md")
    assert_clean(committed)


def test_byte_identical_to_git_update_index(repo: Repo) -> None:
    base = "".join(
        f"100644 {'%040x' % (i + 1)}\t{name}\n"
        for i, name in enumerate(["a.md", "b/c.md", "b/d/e.md", "c.md", "x/y/z.md"])
    )
    repo.git("update-index", "--index-info", input=base)
    ours = repo.root / "ours"
    shutil.copytree(repo.git_dir, ours)

    changes = {"b/c.md": "1" * 40, "b-c.md": "2" * 40, "b/d.md": "3" * 40, "zz/top.md": "4" * 40}
    lines = "".join(f"100644 {sha}\t{path}\n" for path, sha in changes.items())
    lines += f"0 {'0' * 40}\tc.md\n"
    repo.git("update-index", "--index-info", input=lines)
    update_index(
        ours,
        [IndexEntryUpdate(p, 0o100644, bytes.fromhex(s), None) for p, s in changes.items()],
        removals=["c.md"],
    )
    assert (ours / "index").read_bytes() == repo.index_file.read_bytes()


def test_removal(committed: Repo) -> None:
    (committed.root / "notes/deep/b.md").unlink()
    committed.plumbing_commit([], removed=["notes/deep/b.md"])
    update_index(committed.git_dir, [], removals=["notes/deep/b.md", "never-existed.md"])
    assert "notes/deep/b.md" not in read_index(committed.git_dir)
    assert_clean(committed)


def test_file_directory_replacement(committed: Repo) -> None:
    # notes/deep (a directory) becomes a file; z.md (a file) becomes a directory
    shutil.rmtree(committed.root / "notes/deep")
    committed.write("notes/deep", "now a file\n")
    (committed.root / "z.md").unlink()
    committed.write("z.md/inner.md", "now a dir\n")
    tree_index = {"GIT_INDEX_FILE": str(committed.git_dir / "tmp")}
    committed.git("read-tree", "HEAD", env=tree_index)
    committed.git("add", "-A", env=tree_index)
    tree = committed.git("write-tree", env=tree_index).strip()
    commit = committed.git("commit-tree", tree, "-p", "HEAD", "-m", "df").strip()
    committed.git("update-ref", "HEAD", commit)

    update_index(
        committed.git_dir, [committed.entry("notes/deep"), committed.entry("z.md/inner.md")]
    )
    paths = set(read_index(committed.git_dir))
    assert "notes/deep/b.md" not in paths
    assert "z.md" not in paths
    assert {"notes/deep", "z.md/inner.md"} <= paths
    assert_clean(committed)


def _make_conflict(repo: Repo) -> None:
    repo.write("conflict.md", "base\n")
    repo.commit_all("base")
    repo.git("checkout", "-q", "-b", "side")
    repo.write("conflict.md", "side\n")
    repo.commit_all("side")
    repo.git("checkout", "-q", "main")
    repo.write("conflict.md", "main\n")
    repo.commit_all("main")
    repo.git("merge", "-q", "side", check=False)
    assert {st for _m, _s, st, p in repo.ls_files() if p == "conflict.md"} == {1, 2, 3}


def test_conflict_stages_replaced_by_stage0(committed: Repo) -> None:
    _make_conflict(committed)
    committed.write("conflict.md", "resolved\n")
    update_index(committed.git_dir, [committed.entry("conflict.md")])
    assert committed.git("ls-files", "-u") == ""
    rows = [r for r in committed.ls_files() if r[3] == "conflict.md"]
    assert rows == [(0o100644, committed.hash_object("conflict.md"), 0, "conflict.md")]
    committed.git("commit", "-q", "--no-edit")
    assert_clean(committed)
    assert committed.git("show", "HEAD:conflict.md") == "resolved\n"


def test_removal_drops_conflict_stages(committed: Repo) -> None:
    _make_conflict(committed)
    update_index(committed.git_dir, [], removals=["conflict.md"])
    assert committed.git("ls-files", "-u") == ""
    assert "conflict.md" not in {r[3] for r in committed.ls_files()}


def test_reuc_extension_kept(committed: Repo) -> None:
    _make_conflict(committed)
    committed.write("conflict.md", "resolved\n")
    committed.git("add", "conflict.md")  # records resolve-undo information
    before = committed.git("ls-files", "--resolve-undo")
    assert before
    assert b"REUC" in extension_signatures(committed.index_file.read_bytes())
    committed.write("other.md", "other\n")
    update_index(committed.git_dir, [committed.entry("other.md")])
    assert b"REUC" in extension_signatures(committed.index_file.read_bytes())
    assert committed.git("ls-files", "--resolve-undo") == before


def test_tree_extension_dropped_and_git_still_happy(committed: Repo) -> None:
    assert b"TREE" in extension_signatures(committed.index_file.read_bytes())
    committed.write("notes/a.md", "alpha v3\n")
    committed.plumbing_commit(["notes/a.md"])
    update_index(committed.git_dir, [committed.entry("notes/a.md")])
    assert b"TREE" not in extension_signatures(committed.index_file.read_bytes())
    assert_clean(committed)
    assert committed.git("write-tree").strip() == committed.git("rev-parse", "HEAD^{tree}").strip()
    # git rebuilds the cache tree on its next commit
    committed.write("notes/a.md", "alpha v4\n")
    committed.git("commit", "-q", "-am", "porcelain again")
    assert b"TREE" in extension_signatures(committed.index_file.read_bytes())
    assert_clean(committed)


def test_optional_unknown_extension_dropped_mandatory_rejected(committed: Repo) -> None:
    committed.git("update-index", "--refresh")
    body = committed.index_file.read_bytes()[:-20]
    committed.index_file.write_bytes(with_trailer(body + b"ZZZZ" + struct.pack(">I", 3) + b"abc"))
    assert read_index(committed.git_dir) == committed.stage0()
    committed.write("n.md", "n\n")
    update_index(committed.git_dir, [committed.entry("n.md")])
    assert b"ZZZZ" not in extension_signatures(committed.index_file.read_bytes())
    committed.git("status", "--porcelain")

    body = committed.index_file.read_bytes()[:-20]
    bad = with_trailer(body + b"zzzz" + struct.pack(">I", 0))
    committed.index_file.write_bytes(bad)
    with pytest.raises(UnsupportedIndexError, match="mandatory"):
        update_index(committed.git_dir, [committed.entry("n.md")])
    assert committed.index_file.read_bytes() == bad
    assert not (committed.git_dir / "index.lock").exists()


def test_sparse_index_unsupported(repo: Repo) -> None:
    repo.write("d1/x.md", "x\n")
    repo.write("d2/y.md", "y\n")
    repo.commit_all()
    repo.git("sparse-checkout", "set", "--cone", "--sparse-index", "d1")
    with pytest.raises(UnsupportedIndexError, match="sparse"):
        read_index(repo.git_dir)


def test_corrupt_index_rejected_and_lock_released(committed: Repo) -> None:
    data = bytearray(committed.index_file.read_bytes())
    data[30] ^= 0xFF
    committed.index_file.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError):
        update_index(committed.git_dir, [committed.entry("z.md")])
    assert not (committed.git_dir / "index.lock").exists()


def test_index_v4_read_and_written(committed: Repo) -> None:
    committed.write("notes/deep/sub/c.md", "c\n")
    committed.write("notes/deeper.md", "d\n")
    committed.commit_all("more")
    committed.git("update-index", "--index-version", "4")
    assert committed.version() == 4
    assert read_index(committed.git_dir) == committed.stage0()

    names = ["notes/deep/a.md", "notes/deep/sub/c.md", "notes/dee.md", "aaa.md", "zzz/z.md"]
    for n in names:
        committed.write(n, f"v4 {n}\n")
    (committed.root / "notes/deeper.md").unlink()
    committed.plumbing_commit(names, removed=["notes/deeper.md"])
    update_index(committed.git_dir, [committed.entry(n) for n in names], ["notes/deeper.md"])
    assert committed.version() == 4
    assert read_index(committed.git_dir) == committed.stage0()
    assert_clean(committed)
    # a cold re-parse of what we wrote agrees too
    gi._cache.clear()
    assert read_index(committed.git_dir) == committed.stage0()


@pytest.mark.parametrize("version", [2, 4])
def test_long_paths(repo: Repo, version: int) -> None:
    repo.write("short.md", "s\n")
    repo.commit_all()
    repo.git("update-index", "--index-version", str(version))
    long_a = "/".join(["d" * 200] * 25) + "/a.md"  # > 0xFFF bytes: name length saturates
    long_b = "/".join(["d" * 200] * 25) + "/b.md"
    sha = bytes.fromhex(repo.git("hash-object", "-w", "--stdin", input="x\n").strip())
    update_index(repo.git_dir, [IndexEntryUpdate(p, 0o100644, sha, None) for p in (long_b, long_a)])
    assert repo.version() == version
    stage0 = repo.stage0()
    assert stage0[long_a] == (0o100644, sha, 0)
    assert stage0[long_b] == (0o100644, sha, 0)
    gi._cache.clear()
    assert read_index(repo.git_dir) == stage0
    update_index(repo.git_dir, [], removals=[long_a])
    assert set(repo.stage0()) == {"short.md", long_b}


def test_extended_flags_keep_version_3(committed: Repo) -> None:
    committed.write("ita.md", "intent\n")
    committed.git("add", "-N", "ita.md")
    committed.git("update-index", "--skip-worktree", "README.md")
    assert committed.version() == 3
    committed.write("n.md", "n\n")
    update_index(committed.git_dir, [committed.entry("n.md")])
    assert committed.version() == 3
    assert committed.git("ls-files", "-t", "README.md").startswith("S ")
    assert "ita.md" in committed.git("diff", "--name-only")  # still intent-to-add
    # replacing the only extended entries demotes the index to version 2, like git
    update_index(
        committed.git_dir,
        [committed.entry("ita.md"), committed.entry("README.md")],
    )
    assert committed.version() == 2
    assert committed.git("ls-files", "-t", "README.md").startswith("H ")
    committed.git("status", "--porcelain")


def test_invalid_input_rejected_before_locking(committed: Repo) -> None:
    sha = b"\0" * 20
    for bad in [
        "",
        "/abs.md",
        "a//b.md",
        "a/./b.md",
        "../up.md",
        "dir/",
        ".git/config",
        "x/.GIT/y",
    ]:
        with pytest.raises(ValueError):
            update_index(committed.git_dir, [IndexEntryUpdate(bad, 0o100644, sha, None)])
    with pytest.raises(ValueError):
        update_index(committed.git_dir, [IndexEntryUpdate("ok.md", 0o100600, sha, None)])
    with pytest.raises(ValueError):
        update_index(committed.git_dir, [IndexEntryUpdate("ok.md", 0o100644, b"\0" * 5, None)])
    with pytest.raises(UnsupportedIndexError):
        update_index(committed.git_dir, [IndexEntryUpdate("ok.md", 0o100644, b"\0" * 32, None)])
    assert not (committed.git_dir / "index.lock").exists()


# --------------------------------------------------------------------------- locking


def test_existing_lock_raises_and_leaves_everything(committed: Repo) -> None:
    lock = committed.git_dir / "index.lock"
    lock.write_bytes(b"someone else")
    before = committed.index_file.read_bytes()
    committed.write("n.md", "n\n")
    with pytest.raises(IndexLockedError, match="index.lock"):
        update_index(committed.git_dir, [committed.entry("n.md")])
    assert committed.index_file.read_bytes() == before
    assert lock.read_bytes() == b"someone else"


def test_failing_write_leaves_no_lock(committed: Repo, tmp_path: Path) -> None:
    """A real write failure (file size limit -> EFBIG) in a child process."""
    committed.write("n.md", "n\n" * 10)
    entry = committed.entry("n.md")
    before = committed.index_file.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, resource, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from mdsessions.git.index import IndexEntryUpdate, update_index
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.RLIM_INFINITY))
        try:
            update_index(Path({str(committed.git_dir)!r}), [IndexEntryUpdate(
                "n.md", 0o100644, bytes.fromhex({entry.sha.hex()!r}), None)])
        except OSError as exc:
            print("OSError", exc.errno)
        else:
            print("no error")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("OSError")
    assert not (committed.git_dir / "index.lock").exists()
    assert committed.index_file.read_bytes() == before
    # and the next (unconstrained) update works from a fresh read
    update_index(committed.git_dir, [entry])
    assert "n.md" in read_index(committed.git_dir)


def test_unreadable_index_leaves_no_lock(committed: Repo) -> None:
    committed.index_file.unlink()
    committed.index_file.mkdir()
    with pytest.raises(OSError):
        update_index(committed.git_dir, [committed.entry("z.md")])
    assert not (committed.git_dir / "index.lock").exists()


def concurrent_updates(repo: Repo, threads: int) -> dict[str, tuple[int, bytes, int]]:
    """``threads`` threads add 10 entries each through update_index; return git's stage 0."""
    sha = bytes.fromhex(repo.git("hash-object", "-w", "--stdin", input="t\n").strip())
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                update_index(repo.git_dir, [IndexEntryUpdate(f"t{n}/{i}.md", 0o100644, sha, None)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    running = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    assert errors == []
    stage0 = repo.stage0()
    assert all(f"t{n}/{i}.md" in stage0 for n in range(threads) for i in range(10))
    assert read_index(repo.git_dir) == stage0
    return stage0


def test_concurrent_threads(committed: Repo) -> None:
    concurrent_updates(committed, 6)


# --------------------------------------------------------------------------- cache


def test_cache_reused_and_invalidated_by_external_write(committed: Repo) -> None:
    gi._cache.clear()
    committed.write("one.md", "1\n")
    committed.write("two.md", "2\n")
    start = gi._parse_count
    update_index(committed.git_dir, [committed.entry("one.md")])
    assert gi._parse_count == start + 1
    key = str(committed.index_file.absolute())
    parsed = gi._cache[key][1]

    update_index(committed.git_dir, [committed.entry("two.md")])
    read_index(committed.git_dir)
    entry_stat_matches(committed.git_dir, "one.md", os.lstat(committed.root / "one.md"))
    assert gi._parse_count == start + 1
    assert gi._cache[key][1] is parsed
    assert read_index(committed.git_dir) == committed.stage0()

    committed.write("three.md", "3\n")
    committed.git("add", "three.md")  # external writer
    assert "three.md" in read_index(committed.git_dir)
    assert gi._parse_count == start + 2
    assert gi._cache[key][1] is not parsed
    update_index(committed.git_dir, [committed.entry("one.md")])
    assert gi._parse_count == start + 2
    assert read_index(committed.git_dir) == committed.stage0()


def test_cache_survives_failed_update(committed: Repo) -> None:
    gi._cache.clear()
    update_index(committed.git_dir, [committed.entry("z.md")])
    (committed.git_dir / "index.lock").write_bytes(b"")
    with pytest.raises(IndexLockedError):
        update_index(committed.git_dir, [committed.entry("z.md")])
    (committed.git_dir / "index.lock").unlink()
    assert read_index(committed.git_dir) == committed.stage0()


# --------------------------------------------------------------------------- racy git


def _size_in_index(repo: Repo, path: str) -> int:
    out = repo.git("ls-files", "--debug", "--", path)
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("size:"):
            return int(line.split()[1])
    raise AssertionError(out)


def test_racy_entries_are_smudged_when_carried_over(committed: Repo) -> None:
    future = 4_000_000_000  # later than any index mtime: always racily clean
    path = committed.write("racy.md", "original\n")
    os.utime(path, (future, future))
    committed.plumbing_commit(["racy.md"])
    update_index(committed.git_dir, [committed.entry("racy.md")])
    assert _size_in_index(committed, "racy.md") == len("original\n")

    # same size, same mtime: only the content tells the edit apart
    path.write_text("modified\n")
    os.utime(path, (future, future))
    committed.write("other.md", "o\n")
    update_index(committed.git_dir, [committed.entry("other.md")], work_tree=committed.root)
    assert _size_in_index(committed, "racy.md") == 0
    assert " M racy.md" in committed.status()


def test_racy_entry_kept_when_work_tree_confirms_content(committed: Repo) -> None:
    future = 4_000_000_000
    path = committed.write("racy.md", "original\n")
    os.utime(path, (future, future))
    committed.plumbing_commit(["racy.md"])
    update_index(committed.git_dir, [committed.entry("racy.md")])
    committed.write("other.md", "o\n")
    update_index(committed.git_dir, [committed.entry("other.md")], work_tree=committed.root)
    assert _size_in_index(committed, "racy.md") == len("original\n")
    assert entry_stat_matches(committed.git_dir, "racy.md", os.lstat(path)) is True
    # without a work tree the entry is smudged conservatively
    update_index(committed.git_dir, [committed.entry("other.md")])
    assert _size_in_index(committed, "racy.md") == 0
    assert entry_stat_matches(committed.git_dir, "racy.md", os.lstat(path)) is False
    committed.git("add", "other.md")
    assert committed.git("diff-index", "--cached", "HEAD", "--name-only") == "other.md\n"


def test_zero_trailer_index_is_read_and_written_with_a_hash_unless_asked(committed: Repo) -> None:
    """A zero trailer (``index.skipHash``) is read; it is written only when the caller says so."""
    body = committed.index_file.read_bytes()[:-20]
    committed.index_file.write_bytes(body + b"\0" * 20)
    assert read_index(committed.git_dir) == committed.stage0()
    sha = b"\x11" * 20
    update_index(committed.git_dir, [IndexEntryUpdate("q.md", 0o100644, sha, None)])
    data = committed.index_file.read_bytes()
    assert data[-20:] == hashlib.sha1(data[:-20]).digest()  # git 2.39's fsck needs it
    update_index(committed.git_dir, [IndexEntryUpdate("r.md", 0o100644, sha, None)], skip_hash=True)
    assert committed.index_file.read_bytes()[-20:] == b"\0" * 20
    gi._cache.clear()
    assert set(read_index(committed.git_dir)) >= {"q.md", "r.md"}
    update_index(committed.git_dir, [IndexEntryUpdate("s.md", 0o100644, sha, None)])
    data = committed.index_file.read_bytes()
    assert data[-20:] == hashlib.sha1(data[:-20]).digest()


# --------------------------------------------------------------------------- split index

PAST = 1_600_000_000  # an mtime long before any index write: never racily clean


def link_of(repo: Repo) -> bytes | None:
    """The ``link`` extension payload of the repository's index, or None if unsplit."""
    for sig, payload in extensions(repo.index_file.read_bytes()):
        if sig == b"link":
            return payload
    return None


def base_of(repo: Repo) -> str | None:
    """The file name of the shared index the repository's index links to."""
    link = link_of(repo)
    return None if link is None else f"sharedindex.{link[:20].hex()}"


def shared_files(repo: Repo) -> list[str]:
    return sorted(p.name for p in repo.git_dir.glob("sharedindex.*"))


def ls_debug(repo: Repo, git_dir: Path | None = None) -> str:
    """``git ls-files -s --debug`` without git's in-memory "replaced in base" flag.

    For an entry that a split index replaces, git prints ``CE_UPDATE_IN_BASE``
    (0x8000000) among the flags; it is not stored in any file.
    """
    env = None if git_dir is None else {"GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(repo.root)}
    out = repo.git("ls-files", "-s", "--debug", env=env)
    return re.sub(r"flags: ([0-9a-f]+)", lambda m: f"flags: {int(m[1], 16) & ~0x8000000:x}", out)


def old_files(repo: Repo, names: Sequence[str], prefix: str = "") -> None:
    """Write ``names`` with content ``prefix + name`` and an mtime far in the past."""
    for name in names:
        path = repo.write(name, f"{prefix}{name}\n")
        os.utime(path, (PAST, PAST))


def update_and_compare(
    repo: Repo, updates: Sequence[IndexEntryUpdate], removals: Sequence[str] = ()
) -> None:
    """Apply an update split (here) and unsplit (on a copy); git must read both alike."""
    reference = repo.root.parent / f"reference-{len(list(repo.root.parent.iterdir()))}.git"
    shutil.copytree(repo.git_dir, reference)
    update_index(repo.git_dir, updates, removals, work_tree=repo.root)
    update_index(reference, updates, removals, work_tree=repo.root, split_index=False)
    if updates or removals:  # else nothing was written
        assert b"link" not in extension_signatures((reference / "index").read_bytes())
    assert ls_debug(repo) == ls_debug(repo, reference)
    shutil.rmtree(reference)


@pytest.fixture
def small_split(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """``core.splitIndex=true`` (set after the other fixtures built the repository); re-base
    after 4 changes."""
    repo.git("config", "core.splitIndex", "true")
    monkeypatch.setattr(gi, "REBASE_MIN_CHANGES", 4)
    monkeypatch.setattr(gi, "REBASE_MAX_CHANGES", 4)


@pytest.fixture
def many(repo: Repo) -> Repo:
    """A committed repository of 24 files (old mtimes: nothing is racily clean)."""
    old_files(repo, [f"d{i % 3}/f{i:02d}.md" for i in range(24)])
    repo.commit_all("many")
    repo.git("update-index", "--refresh")
    return repo


# -- EWAH


# Written by git 2.39 for a 200-entry shared index: entry 167 deleted, all others replaced.
GIT_DELETE_BITMAP = bytes.fromhex("000000a8000000020000000200000004000000800000000000000000")
GIT_REPLACE_BITMAP = bytes.fromhex(
    "000000c8000000030000000400000005ffffff7fffffffff00000000000000ff00000000"
)


def test_ewah_decodes_and_reencodes_golden_git_bitmaps() -> None:
    deleted, end = gi._ewah_decode(GIT_DELETE_BITMAP, 0, 200)
    assert deleted == [167] and end == len(GIT_DELETE_BITMAP)
    replaced, end = gi._ewah_decode(GIT_REPLACE_BITMAP, 0, 200)
    assert replaced == [p for p in range(200) if p != 167] and end == len(GIT_REPLACE_BITMAP)
    assert gi._ewah_encode(deleted) == GIT_DELETE_BITMAP
    assert gi._ewah_encode(replaced) == GIT_REPLACE_BITMAP
    assert gi._ewah_encode([]) == struct.pack(">IIQI", 0, 1, 0, 0)  # git's empty bitmap


def test_ewah_round_trip_and_limits() -> None:
    cases = [
        [],
        [0],
        [63],
        [64],
        list(range(64)),
        list(range(64 * 40)),  # a run of ones
        list(range(1, 64 * 40)),  # a literal, then a run of ones
        [0, 64 * 5000, 64 * 5000 + 1],  # a long run of zeros
        list(range(0, 10_000, 3)),
        [*range(100, 300), *range(5000, 5130), 9999],
    ]
    for positions in cases:
        data = gi._ewah_encode(positions)
        assert gi._ewah_decode(data, 0, 10**6) == (positions, len(data))
        assert gi._ewah_decode(b"xx" + data + b"yy", 2, 10**6) == (positions, len(data) + 2)
    with pytest.raises(ValueError):
        gi._ewah_encode([3, 3])
    with pytest.raises(CorruptIndexError):
        gi._ewah_decode(gi._ewah_encode([5]), 0, 5)  # bit beyond the shared entries
    with pytest.raises(CorruptIndexError):
        gi._ewah_decode(gi._ewah_encode(range(64 * 3)), 0, 100)  # run beyond them
    with pytest.raises(CorruptIndexError):
        gi._ewah_decode(gi._ewah_encode([5])[:-5], 0, 10)  # truncated


def test_ewah_matches_bitmaps_git_writes(repo: Repo) -> None:
    """Git's own delete/replace bitmaps decode to the entries it changed, and re-encode."""
    n = 3000
    names = [f"p{i:04d}" for i in range(n)]  # already in index order
    sha = "1" * 40
    repo.git(
        "update-index",
        "--add",
        "--index-info",
        input="".join(f"100644 {sha}\t{p}\n" for p in names),
    )
    repo.git("update-index", "--split-index")
    deleted = [*range(5), *range(700, 900), 2999]
    replaced = [*range(64, 192), 1000, 1001, 2500, *range(2600, 2700)]
    lines = [f"0 {'0' * 40}\t{names[i]}\n" for i in deleted]
    lines += [f"100644 {'2' * 40}\t{names[i]}\n" for i in replaced]
    repo.git("update-index", "--index-info", input="".join(lines))
    link = link_of(repo)
    assert link is not None and len(link) > 20
    assert shared_files(repo) == [f"sharedindex.{link[:20].hex()}"]
    got_deleted, off = gi._ewah_decode(link, 20, n)
    got_replaced, end = gi._ewah_decode(link, off, n)
    assert (got_deleted, got_replaced, end) == (deleted, replaced, len(link))
    assert gi._ewah_encode(deleted) == link[20:off]
    assert gi._ewah_encode(replaced) == link[off:]
    assert read_index(repo.git_dir) == repo.stage0()


# -- reading what git writes


@pytest.mark.parametrize("version", [2, 4])
@pytest.mark.parametrize("scenario", ["additions", "deletions", "replacements", "mixed"])
def test_read_git_split_index(many: Repo, scenario: str, version: int) -> None:
    many.git("update-index", "--index-version", str(version))
    many.git("update-index", "--split-index")
    assert link_of(many) is not None
    base = shared_files(many)
    if scenario in ("additions", "mixed"):
        old_files(many, ["d0/new.md", "a-first.md", "zz/last.md"])
        many.git("add", "d0/new.md", "a-first.md", "zz/last.md")
    if scenario in ("deletions", "mixed"):
        many.git("rm", "-q", "--cached", "d1/f01.md", "d2/f23.md")
    if scenario in ("replacements", "mixed"):
        old_files(many, ["d0/f00.md", "d2/f11.md"], prefix="changed ")
        many.git("add", "d0/f00.md", "d2/f11.md")
    assert shared_files(many) == base  # git kept its shared index
    assert many.version() == version
    expected = many.stage0()
    for cold in (False, True):
        if cold:
            gi._cache.clear()
            gi._shared_cache.clear()
        assert read_index(many.git_dir) == expected
        for path, entry in expected.items():
            assert index_entry(many.git_dir, path) == entry
        assert index_entry(many.git_dir, "d1/f01.md") == expected.get("d1/f01.md")
        st = os.lstat(many.root / "d2/f05.md")
        assert entry_stat_matches(many.git_dir, "d2/f05.md", st) is True
    # and an in-process update on top of it
    old_files(many, ["d0/f03.md"], prefix="ours ")
    many.plumbing_commit(["d0/f03.md"])
    update_index(many.git_dir, [many.entry("d0/f03.md")], work_tree=many.root)
    assert read_index(many.git_dir) == many.stage0()
    staged = {
        "additions": ["a-first.md", "d0/new.md", "zz/last.md"],
        "deletions": ["d1/f01.md", "d2/f23.md"],
        "replacements": ["d0/f00.md", "d2/f11.md"],
    }
    changed = sorted(sum(staged.values(), []) if scenario == "mixed" else staged[scenario])
    assert many.git("diff-index", "--cached", "HEAD", "--name-only").split() == changed
    many.git("fsck", "--strict", "--no-progress")


def test_read_git_split_index_with_conflicts(committed: Repo) -> None:
    committed.git("config", "core.splitIndex", "true")
    _make_conflict(committed)
    assert link_of(committed) is not None
    gi._cache.clear()
    assert read_index(committed.git_dir) == committed.stage0()
    assert "conflict.md" not in read_index(committed.git_dir)
    committed.write("conflict.md", "resolved\n")
    update_index(committed.git_dir, [committed.entry("conflict.md")])
    assert committed.git("ls-files", "-u") == ""
    committed.git("commit", "-q", "--no-edit")
    assert_clean(committed)
    assert read_index(committed.git_dir) == committed.stage0()


def test_git_rewrite_of_split_index_reuses_cached_shared_index(
    many: Repo, small_split: None
) -> None:
    old_files(many, ["d0/f00.md"], prefix="v2 ")
    many.plumbing_commit(["d0/f00.md"])
    update_index(many.git_dir, [many.entry("d0/f00.md")], work_tree=many.root)
    assert link_of(many) is not None
    start = gi._parse_count
    old_files(many, ["d1/f01.md"], prefix="v2 ")
    many.git("add", "d1/f01.md")  # git rewrites the split index on the same shared index
    assert link_of(many) is not None
    assert read_index(many.git_dir) == many.stage0()
    assert gi._parse_count == start + 1  # only the small index was parsed
    for i in range(3):  # our own updates never parse
        old_files(many, [f"d2/f{i:02d}.md"], prefix="v3 ")
        update_index(many.git_dir, [many.entry(f"d2/f{i:02d}.md")], work_tree=many.root)
    assert gi._parse_count == start + 1
    assert read_index(many.git_dir) == many.stage0()


# -- writing


def test_split_write_is_read_identically_and_git_works_on_it(many: Repo, small_split: None) -> None:
    assert link_of(many) is None and shared_files(many) == []
    old_files(many, ["d0/f00.md", "new/a.md"], prefix="v2 ")
    (many.root / "d1/f04.md").unlink()
    many.plumbing_commit(["d0/f00.md", "new/a.md"], removed=["d1/f04.md"])
    update_and_compare(
        many, [many.entry("d0/f00.md"), many.entry("new/a.md")], removals=["d1/f04.md"]
    )
    link = link_of(many)
    assert link is not None
    assert shared_files(many) == [f"sharedindex.{link[:20].hex()}"]
    shared = (many.git_dir / shared_files(many)[0]).read_bytes()
    assert shared[-20:] == link[:20] == hashlib.sha1(shared[:-20]).digest()
    assert len(many.index_file.read_bytes()) < 200  # the changes only: none yet
    assert_clean(many)

    # a second write is split on the same shared index and holds just the changes
    old_files(many, ["d0/f03.md", "new/b.md"], prefix="v3 ")
    many.plumbing_commit(["d0/f03.md", "new/b.md"])
    update_and_compare(many, [many.entry("d0/f03.md"), many.entry("new/b.md")])
    assert base_of(many) == f"sharedindex.{link[:20].hex()}"  # no re-base
    assert struct.unpack(">I", many.index_file.read_bytes()[8:12]) == (2,)  # the 2 changes
    assert many.ls_files() == sorted(many.ls_files(), key=lambda r: (r[3].encode(), r[2]))
    assert_clean(many)
    expected = many.ls_files()

    # git works on it, and we read back what git writes
    many.git("update-index", "--refresh")
    assert read_index(many.git_dir) == many.stage0()
    old_files(many, ["d2/f02.md"], prefix="porcelain ")
    many.git("add", "d2/f02.md")
    many.git("commit", "-q", "-m", "porcelain commit")
    assert link_of(many) is not None
    assert read_index(many.git_dir) == many.stage0()
    assert_clean(many)
    many.git("-c", "core.splitIndex=true", "status", "--porcelain")
    assert read_index(many.git_dir) == many.stage0()
    many.git("-c", "core.splitIndex=false", "status", "--porcelain")
    assert link_of(many) is None  # git un-split it
    assert read_index(many.git_dir) == many.stage0()
    assert len(many.ls_files()) == len(expected)


def test_split_v4(many: Repo, small_split: None) -> None:
    many.git("update-index", "--index-version", "4")
    names = ["d0/f00.md", "d0/f001.md", "d0/a.md", "zz/new.md"]
    old_files(many, names, prefix="v4 ")
    many.plumbing_commit(names, removed=["d1/f07.md"])
    (many.root / "d1/f07.md").unlink()
    update_and_compare(many, [many.entry(n) for n in names], removals=["d1/f07.md"])
    assert link_of(many) is not None and many.version() == 4
    shared = (many.git_dir / shared_files(many)[0]).read_bytes()
    assert struct.unpack(">I", shared[4:8])[0] == 4
    more = ["d0/f00.md", "d2/b.md", "d2/f05.md"]
    old_files(many, more, prefix="v4 again ")
    many.plumbing_commit(more)
    update_and_compare(many, [many.entry(n) for n in more])
    assert many.version() == 4 and link_of(many) is not None
    assert_clean(many)
    gi._cache.clear()
    gi._shared_cache.clear()
    assert read_index(many.git_dir) == many.stage0()


def test_split_extended_flags_choose_version_3(many: Repo, small_split: None) -> None:
    old_files(many, ["d0/f00.md"], prefix="v2 ")
    many.plumbing_commit(["d0/f00.md"])
    update_index(many.git_dir, [many.entry("d0/f00.md")])
    assert link_of(many) is not None and many.version() == 2
    many.git("update-index", "--skip-worktree", "d1/f01.md")  # git: into the split part
    assert many.version() == 3
    old_files(many, ["d2/f02.md"], prefix="v2 ")
    many.plumbing_commit(["d2/f02.md"])
    update_index(many.git_dir, [many.entry("d2/f02.md")])
    assert many.version() == 3
    assert many.git("ls-files", "-t", "d1/f01.md").startswith("S ")
    many.git("update-index", "--no-skip-worktree", "d1/f01.md")
    update_index(many.git_dir, [many.entry("d2/f02.md")])
    assert many.version() == 2
    assert read_index(many.git_dir) == many.stage0()


def test_rebase_and_expiry_of_old_shared_indexes(many: Repo, small_split: None) -> None:
    def commit_one(i: int) -> None:
        name = f"new/{i:02d}.md"
        old_files(many, [name])
        many.plumbing_commit([name])
        update_index(many.git_dir, [many.entry(name)], work_tree=many.root)

    commit_one(0)
    first = shared_files(many)
    assert len(first) == 1
    for i in range(1, 5):  # 4 changes: still on the first shared index
        commit_one(i)
    assert shared_files(many) == first
    commit_one(5)  # the 5th change re-bases
    second = [name for name in shared_files(many) if name not in first]
    assert len(second) == 1 and base_of(many) == second[0]
    assert (many.git_dir / first[0]).exists()  # just replaced: kept (and freshened)
    assert time.time() - (many.git_dir / first[0]).stat().st_mtime < 600
    assert_clean(many)
    assert read_index(many.git_dir) == many.stage0()

    # once unused for longer than the expiry, a re-base removes it
    stale = (many.git_dir / first[0], time.time() - 2 * 86400)
    os.utime(stale[0], (stale[1], stale[1]))
    for i in range(6, 11):
        commit_one(i)
    assert not (many.git_dir / first[0]).exists()
    assert len(shared_files(many)) == 2  # the current one and the one it replaced
    assert_clean(many)

    # splitIndex.sharedIndexExpire=never keeps them all
    many.git("config", "splitIndex.sharedIndexExpire", "never")
    for name in shared_files(many):
        os.utime(many.git_dir / name, (stale[1], stale[1]))
    for i in range(11, 16):
        commit_one(i)
    assert len(shared_files(many)) == 3
    many.git("config", "splitIndex.sharedIndexExpire", "1.hour.ago")
    for name in shared_files(many):
        os.utime(many.git_dir / name, (stale[1], stale[1]))
    for i in range(16, 21):
        commit_one(i)
    assert len(shared_files(many)) == 2
    assert read_index(many.git_dir) == many.stage0()


def test_split_only_under_core_split_index(repo: Repo) -> None:
    """Unsplit at any size by default; split once core.splitIndex=true; a split index is
    written unsplit again at the next write once the setting is gone."""
    names = [f"f{i:04d}.md" for i in range(6000)]  # past the old 5,000-entry threshold
    sha = "1" * 40
    lines = "".join(f"100644 {sha}\t{n}\n" for n in names)
    repo.git("update-index", "--add", "--index-info", input=lines)
    new = IndexEntryUpdate("new.md", 0o100644, b"\x22" * 20, None)
    update_index(repo.git_dir, [new])
    assert link_of(repo) is None and shared_files(repo) == []
    repo.git("config", "core.splitIndex", "true")
    update_index(repo.git_dir, [], removals=["new.md"])
    assert link_of(repo) is not None and len(shared_files(repo)) == 1
    assert read_index(repo.git_dir) == repo.stage0()
    for value in ("false", None):  # false, then unset: un-split at the next write
        if value is None:
            repo.git("config", "--unset", "core.splitIndex")
        else:
            repo.git("config", "core.splitIndex", value)
        update_index(repo.git_dir, [new])
        assert link_of(repo) is None
        assert read_index(repo.git_dir) == repo.stage0()
        repo.git("update-index", "--split-index")  # git splits it on request
        assert link_of(repo) is not None
    assert len(repo.ls_files()) == 6001
    # the caller's reading of the configuration (every scope) wins over the file's
    update_index(repo.git_dir, [], removals=["f0000.md"], split_index=True)
    assert link_of(repo) is not None
    update_index(repo.git_dir, [], removals=["f0001.md"], split_index=False)
    assert link_of(repo) is None
    assert read_index(repo.git_dir) == repo.stage0()


@pytest.mark.parametrize("setting", ["false", "true"])
def test_core_split_index_config_is_honoured(repo: Repo, setting: str) -> None:
    repo.git("config", "core.splitIndex", setting)
    old_files(repo, [f"f{i}.md" for i in range(3)])
    repo.commit_all()  # git itself splits when the setting is true
    names = [f"g{i}.md" for i in range(8)]
    old_files(repo, names)
    repo.plumbing_commit(names)
    update_index(repo.git_dir, [repo.entry(n) for n in names])  # 11 entries, 8 changes
    assert (link_of(repo) is not None) == (setting == "true")
    assert_clean(repo)
    for name in names:
        (repo.root / name).unlink()
    repo.plumbing_commit([], removed=names)
    update_index(repo.git_dir, [], removals=names)
    assert (link_of(repo) is not None) == (setting == "true")
    assert_clean(repo)


def test_racy_shared_entry_is_smudged_into_the_split_part(many: Repo, small_split: None) -> None:
    future = 4_000_000_000  # later than any index mtime: always racily clean
    path = many.write("racy.md", "original\n")
    os.utime(path, (future, future))
    many.plumbing_commit(["racy.md"])
    with pytest.MonkeyPatch.context() as mp:  # re-base now: racy.md goes to the shared index
        mp.setattr(gi, "REBASE_MIN_CHANGES", -1)
        mp.setattr(gi, "REBASE_MAX_CHANGES", -1)
        update_index(many.git_dir, [many.entry("racy.md")])
        update_index(many.git_dir, [many.entry("racy.md")])
    assert link_of(many) is not None and _size_in_index(many, "racy.md") == len("original\n")
    shared = many.git_dir / shared_files(many)[-1]
    assert b"racy.md" in shared.read_bytes()
    # same size, same mtime: only the content tells the edit apart
    path.write_text("modified\n")
    os.utime(path, (future, future))
    old_files(many, ["d0/f00.md"], prefix="other ")
    many.plumbing_commit(["d0/f00.md"])
    before = shared.read_bytes()
    update_index(many.git_dir, [many.entry("d0/f00.md")], work_tree=many.root)
    assert shared.read_bytes() == before  # not re-based: the smudge went to index
    assert _size_in_index(many, "racy.md") == 0
    assert " M racy.md" in many.status()


@pytest.mark.parametrize("edited", [True, False])
def test_entry_written_in_the_same_second_as_the_index(
    many: Repo, small_split: None, edited: bool
) -> None:
    """An entry of the shared index whose mtime is the index's second is racily clean."""
    second = int(time.time()) - 100
    path = many.write("same.md", "original\n")
    os.utime(path, (second, second))
    many.plumbing_commit(["same.md"])
    update_index(many.git_dir, [many.entry("same.md")])  # first split: into the shared index
    shared = many.git_dir / shared_files(many)[0]
    assert b"same.md" in shared.read_bytes()
    os.utime(many.index_file, (second + 0.5, second + 0.5))  # the index's second too
    if edited:  # same size, same mtime: only the content (and ctime) tells the edit apart
        path.write_text("modified\n")
        os.utime(path, (second, second))
    old_files(many, ["d0/f00.md"], prefix="other ")
    many.plumbing_commit(["d0/f00.md"])
    update_index(many.git_dir, [many.entry("d0/f00.md")], work_tree=many.root)
    assert link_of(many) is not None
    if edited:  # smudged (size 0, in the split part): git notices the edit
        assert _size_in_index(many, "same.md") == 0
        assert " M same.md" in many.status()
    else:  # content confirmed: kept as it was, and git agrees it is clean
        assert _size_in_index(many, "same.md") == len("original\n")
        assert many.status() == ""


# -- failures


def test_failure_inside_the_block_removes_the_new_shared_index(
    many: Repo, small_split: None
) -> None:
    old_files(many, ["new.md"])
    before = many.index_file.read_bytes()
    with pytest.raises(RuntimeError):
        with gi.staged_index(many.git_dir, [many.entry("new.md")]):
            assert len(shared_files(many)) == 1  # written before the block runs
            raise RuntimeError("the branch did not move")
    assert many.index_file.read_bytes() == before
    assert shared_files(many) == []
    assert not (many.git_dir / "index.lock").exists()
    update_index(many.git_dir, [many.entry("new.md")])  # and it works afterwards
    assert link_of(many) is not None
    # a failed split write (no new shared index) leaves the shared index alone
    shared = shared_files(many)
    before = many.index_file.read_bytes()
    with pytest.raises(RuntimeError):
        with gi.staged_index(many.git_dir, [many.entry("d0/f00.md")]):
            raise RuntimeError("no")
    assert many.index_file.read_bytes() == before and shared_files(many) == shared
    assert not (many.git_dir / "index.lock").exists()


def test_failed_shared_index_rename_leaves_everything(
    many: Repo, small_split: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_files(many, ["new.md"])
    before = many.index_file.read_bytes()
    real_replace = os.replace
    seen: list[str] = []

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name.startswith("sharedindex.") and not seen:
            seen.append(Path(src).name)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        update_index(many.git_dir, [many.entry("new.md")], fsync=True)
    assert fnmatch.fnmatch(seen[0], gi.SHARED_INDEX_TMP_GLOB)  # recover() would remove it
    assert many.index_file.read_bytes() == before
    assert not (many.git_dir / "index.lock").exists()
    assert list(many.git_dir.glob("sharedindex*")) == []
    update_index(many.git_dir, [many.entry("new.md")], fsync=True)
    assert link_of(many) is not None and len(shared_files(many)) == 1
    assert read_index(many.git_dir) == many.stage0()


def test_shared_index_write_failure_in_a_child_process(many: Repo) -> None:
    """A real write failure (file size limit -> EFBIG) while writing the shared index."""
    old_files(many, ["new.md"])
    entry = many.entry("new.md")
    before = many.index_file.read_bytes()
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from mdsessions.git import index as gi
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
        try:
            gi.update_index(Path({str(many.git_dir)!r}), [gi.IndexEntryUpdate(
                "new.md", 0o100644, bytes.fromhex({entry.sha.hex()!r}), None)],
                split_index=True)
        except OSError as exc:
            print("OSError", exc.errno)
        else:
            print("no error")
        """
    )
    assert len(before) > 1000  # the shared index could not be written
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["OSError", str(errno.EFBIG)]
    assert many.index_file.read_bytes() == before
    assert not (many.git_dir / "index.lock").exists()
    assert list(many.git_dir.glob("sharedindex*")) == []


def test_recover_removes_shared_index_temp_files(committed: Repo) -> None:
    from mdsessions.git.repo import GitRepo

    committed.git("update-index", "--split-index")
    shared = shared_files(committed)
    temp = committed.git_dir / "sharedindex.0123456789abcdef.mdstmp"
    temp.write_bytes(b"half written")
    store = GitRepo(committed.root)
    head = committed.git("rev-parse", "HEAD").strip()
    store.journal.path.write_text(json.dumps({"old": head, "ref": "refs/heads/main", "paths": []}))
    assert store.recover() is True
    assert not temp.exists()
    assert shared_files(committed) == shared
    assert read_index(committed.git_dir) == committed.stage0()


@pytest.mark.parametrize("damage", ["missing", "flipped byte", "other content", "truncated"])
def test_missing_or_corrupt_shared_index(many: Repo, damage: str) -> None:
    many.git("update-index", "--split-index")
    shared = many.git_dir / shared_files(many)[0]
    if damage == "missing":
        shared.unlink()
    elif damage == "flipped byte":
        data = bytearray(shared.read_bytes())
        data[100] ^= 0xFF
        shared.write_bytes(bytes(data))
    elif damage == "other content":  # a valid index file, but not the one named
        other = many.root.parent / "other"
        Repo(other, many.env).git(
            "update-index", "--add", "--index-info", input=f"100644 {'1' * 40}\tx\n"
        )
        shutil.copy(other / ".git/index", shared)
    else:
        shared.write_bytes(shared.read_bytes()[:-7])
    gi._cache.clear()
    gi._shared_cache.clear()
    before = many.index_file.read_bytes()
    message = {"missing": "missing", "other content": "does not match its name"}.get(damage)
    with pytest.raises(CorruptIndexError, match=message):
        read_index(many.git_dir)
    with pytest.raises(UnsupportedIndexError):  # the store's cue to fall back to git
        update_index(many.git_dir, [many.entry("d0/f00.md")])
    with pytest.raises(CorruptIndexError):
        index_entry(many.git_dir, "d0/f00.md")
    assert many.index_file.read_bytes() == before
    assert not (many.git_dir / "index.lock").exists()


def test_split_concurrent_threads(committed: Repo, small_split: None) -> None:
    stage0 = concurrent_updates(committed, 4)
    gi._cache.clear()
    assert read_index(committed.git_dir) == stage0


@pytest.mark.parametrize(("seed", "version"), [(1, 2), (2, 4), (3, 2)])
def test_random_edits_agree_with_git(
    repo: Repo, small_split: None, seed: int, version: int
) -> None:
    """Our split writes and git's, interleaved at random; both readers always agree."""
    rng = random.Random(seed)
    dirs = ["a", "a/b", "a/b/c", "b", "b-c", "c.d"]
    old = repo.write("stat-source", "x\n")
    os.utime(old, (PAST, PAST))
    st = os.lstat(old)

    def rpath() -> str:
        d = rng.choice(dirs)
        return f"{d}/f{rng.randrange(12)}.md" if rng.random() < 0.9 else d

    def rsha() -> bytes:
        return hashlib.sha1(str(rng.random()).encode()).digest()

    if version == 4:
        repo.git("config", "index.version", "4")
    lines = "".join(f"100644 {rsha().hex()}\t{rpath()}\n" for _ in range(12))
    repo.git("update-index", "--add", "--index-info", input=lines)
    for _step in range(40):
        op = rng.random()
        if op < 0.7:
            updates = [
                IndexEntryUpdate(rpath(), 0o100644, rsha(), st) for _ in range(rng.randrange(4))
            ]
            update_and_compare(repo, updates, [rpath() for _ in range(rng.randrange(3))])
        elif op < 0.85:
            flags = rng.choice(
                [[], ["-c", "core.splitIndex=true"], ["-c", "core.splitIndex=false"]]
            )
            lines = f"100644 {rsha().hex()}\t{rpath()}\n0 {'0' * 40}\t{rpath()}\n"
            repo.git(*flags, "update-index", "--add", "--replace", "--index-info", input=lines)
        elif op < 0.92:
            path = rpath()
            lines = f"0 {'0' * 40}\t{path}\n" + "".join(
                f"100644 {rsha().hex()} {stage}\t{path}\n" for stage in (1, 2, 3)
            )
            repo.git("update-index", "--index-info", input=lines)
        else:
            gi._cache.clear()
        assert read_index(repo.git_dir) == repo.stage0()


# --------------------------------------------------------------------------- unsplit blocks


def _v2_entry(path: bytes, mtime: int = 0, extended: bool = False) -> bytes:
    flags = min(len(path), 0xFFF) | (0x4000 if extended else 0)
    fixed = struct.pack(">10I20sH", 0, 0, mtime, 0, 0, 0, 0o100644, 0, 0, 7, b"\x01" * 20, flags)
    header = fixed + (b"\0\0" if extended else b"")
    return indexblocks.encode_v2(header, path)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blocks_agree_with_a_list_model(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Random replaces over many small blocks: lookups, bytes, v4 encoding and the resumed
    SHA-1 always equal what the whole list gives."""
    monkeypatch.setattr(indexblocks, "BLOCK_BYTES", 256)
    rng = random.Random(seed)
    names = sorted(
        {
            f"d{rng.randrange(30)}/{'x' * rng.randrange(70)}{rng.randrange(99)}".encode()
            for _ in range(400)
        }
    )
    model = [(n, _v2_entry(n, extended=rng.random() < 0.1)) for n in names]
    blocks = indexblocks.Blocks.from_entries([raw for _p, raw in model])
    header = b"DIRC\0\0\0\2\0\0\0\0"
    for step in range(300):
        if rng.random() < 0.6 or not model:
            name = f"d{rng.randrange(30)}/n{rng.randrange(10**6)}".encode()
            pos = bisect.bisect_left([p for p, _r in model], name)
            if pos < len(model) and model[pos][0] == name:
                continue
            hi = pos + (rng.randrange(3) if rng.random() < 0.3 else 0)
            hi = min(hi, len(model))
            new = [(name, _v2_entry(name, mtime=step))]
        else:
            pos = rng.randrange(len(model))
            hi = min(len(model), pos + rng.choice([1, 1, 2, 40]))
            new = [] if rng.random() < 0.5 else [(model[pos][0], _v2_entry(model[pos][0], step))]
            if new and hi > pos + 1:
                hi = pos + 1
        blocks.replace(pos, hi, [raw for _p, raw in new])
        model[pos:hi] = new
        assert len(blocks) == len(model)
        paths = [p for p, _r in model]
        assert [p for p, _r in blocks.items()] == paths
        for probe in rng.sample(paths, min(5, len(paths))) + [b"", b"d15/", b"zz"]:
            assert blocks.lower(probe) == bisect.bisect_left(paths, probe)
            assert blocks.upper(probe) == bisect.bisect_right(paths, probe)
        if model:
            i = rng.randrange(len(model))
            assert blocks.raw(i) == model[i][1] and blocks.path(i) == model[i][0]
        if step % 7 == 0:
            for version in (2, 4):
                head = header[:7] + bytes([version]) + struct.pack(">I", len(model))
                chunks = blocks.chunks(version)
                whole = b"".join(gi._encode_all(paths, [r for _p, r in model], version))
                assert b"".join(chunks) == whole
                assert (
                    blocks.digest(head, chunks, b"ext")
                    == hashlib.sha1(head + whole + b"ext").digest()
                )
    assert all(len(b) <= 2 * 256 + 200 for b in blocks.blocks)


@pytest.mark.parametrize(("seed", "version"), [(4, 2), (5, 4)])
def test_random_unsplit_edits_over_many_blocks_agree_with_git(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, seed: int, version: int
) -> None:
    """Our unsplit writes (blocks of ~1 KiB) and git's interleaved; git always reads ours."""
    monkeypatch.setattr(indexblocks, "BLOCK_BYTES", 1024)
    rng = random.Random(seed)
    st = os.lstat(repo.write("stat-source", "x\n"))
    repo.git("config", "index.version", str(version))
    lines = "".join(f"100644 {'1' * 40}\td{i % 7}/f{i:04d}.md\n" for i in range(600))
    repo.git("update-index", "--add", "--index-info", input=lines)
    for step in range(30):
        if rng.random() < 0.8:
            updates = [
                IndexEntryUpdate(
                    f"d{rng.randrange(8)}/f{rng.randrange(700):04d}.md",
                    0o100644,
                    hashlib.sha1(str(rng.random()).encode()).digest(),
                    st,
                )
                for _ in range(rng.randrange(1, 5))
            ]
            removals = [f"d{rng.randrange(8)}/f{rng.randrange(700):04d}.md" for _ in range(2)]
            update_index(repo.git_dir, updates, removals)
        else:
            path = f"d{rng.randrange(8)}/f{rng.randrange(700):04d}.md"
            repo.git("update-index", "--add", "--cacheinfo", f"100644,{'2' * 40},{path}")
        assert link_of(repo) is None and repo.version() == version
        assert read_index(repo.git_dir) == repo.stage0()
        if step % 10 == 9:
            gi._cache.clear()
    data = repo.index_file.read_bytes()
    assert data[-20:] == hashlib.sha1(data[:-20]).digest()
    repo.git("ls-files", "--debug")
