"""Tests for mdsessions._gitindex against real git repositories (no mocks)."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from mdsessions import _gitindex as gi
from mdsessions._gitindex import (
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
        env = {"GIT_INDEX_FILE": tmp_index}
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


def extension_signatures(data: bytes) -> list[bytes]:
    """Walk a v2/v3/v4 index and return its extension signatures (test oracle)."""
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
    sigs = []
    end = len(data) - 20
    while off < end:
        sigs.append(data[off : off + 4])
        (size,) = struct.unpack(">I", data[off + 4 : off + 8])
        off += 8 + size
    return sigs


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


def test_split_index_unsupported(committed: Repo) -> None:
    committed.git("update-index", "--split-index")
    before = committed.index_file.read_bytes()
    committed.write("n.md", "n\n")
    with pytest.raises(UnsupportedIndexError, match="split"):
        update_index(committed.git_dir, [committed.entry("n.md")])
    assert committed.index_file.read_bytes() == before
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
        from mdsessions._gitindex import IndexEntryUpdate, update_index
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


def test_concurrent_threads(committed: Repo) -> None:
    sha = bytes.fromhex(committed.git("hash-object", "-w", "--stdin", input="t\n").strip())
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                update_index(
                    committed.git_dir, [IndexEntryUpdate(f"t{n}/{i}.md", 0o100644, sha, None)]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stage0 = committed.stage0()
    assert all(f"t{n}/{i}.md" in stage0 for n in range(6) for i in range(10))
    assert read_index(committed.git_dir) == stage0


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


def test_zero_trailer_index_round_trips(committed: Repo) -> None:
    body = committed.index_file.read_bytes()[:-20]
    committed.index_file.write_bytes(body + b"\0" * 20)
    assert read_index(committed.git_dir) == committed.stage0()
    sha = b"\x11" * 20
    update_index(committed.git_dir, [IndexEntryUpdate("q.md", 0o100644, sha, None)])
    assert committed.index_file.read_bytes()[-20:] == b"\0" * 20
