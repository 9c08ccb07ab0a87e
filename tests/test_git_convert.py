"""End-of-line conversion against git itself (``mdsessions.git.convert``).

One repository per configuration holds every attribute variant (one folder each, with its
own ``.gitattributes``) times every content; git converts the whole batch in a handful of
processes, and each answer is compared with :class:`Conversion`'s.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mdsessions.errors import StoreError
from mdsessions.git import convert as _convert
from mdsessions.git.convert import Conversion, CrlfAction, UnsupportedAttributeError

CONTENTS: dict[str, bytes] = {
    "lf": b"# Title\nline\n",
    "crlf": b"# Title\r\nline\r\n",
    "mixed": b"a\r\nb\nc\r\n",
    "lonecr": b"a\rb\n",
    "trailingcr": b"a\r\nb\r",
    "crcrlf": b"a\r\r\nb\n",
    "nul": b"a\0b\r\n",
    "empty": b"",
    "onlycrlf": b"\r\n",
    "nonewline": b"abc",
    "ctrlz": b"a\r\nb\r\n\x1a",
    "ctrlz-lf": b"a\nb\n\x1a",
    "unicode": "é ü 中\r\n… ✓\n".encode(),
    "unicode-lf": "# Überblick\n\n- ✓ erledigt\n".encode(),
    # git's heuristic: binary when (printable >> 7) < non-printable
    "controls-text": b"\x01" + b"x" * 200 + b"\r\n",
    "controls-binary": b"\x01\x7f" + b"x" * 200 + b"\r\n",
}

ATTRIBUTES: dict[str, str | None] = {
    "plain": None,
    "auto": "* text=auto\n",
    "auto-crlf": "* text=auto eol=crlf\n",
    "auto-lf": "* text=auto eol=lf\n",
    "text": "*.md text\n",
    "text-lf": "*.md text eol=lf\n",
    "eol-crlf": "*.md eol=crlf\n",
    "notext": "*.md -text\n",
    "binary": "*.md binary\n",
    "notext-eol": "*.md -text eol=crlf\n",
    "text-bogus": "*.md text=bogus\n",
    "crlf": "*.md crlf\n",
    "crlf-input": "*.md crlf=input\n",
    "crlf-auto": "*.md crlf=auto\n",
    "nocrlf": "*.md -crlf\n",
}

CONFIGS: list[dict[str, str]] = [
    {},
    *(
        {"core.autocrlf": autocrlf, "core.eol": eol}
        for autocrlf in ("true", "input", "false")
        for eol in ("lf", "crlf")
    ),
]

INDEX_CRLF = b"old\r\ntext\r\n"


def run(
    repo: Path,
    *args: str,
    config: dict[str, str] | None = None,
    stdin: bytes = b"",
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    options = [arg for key, value in (config or {}).items() for arg in ("-c", f"{key}={value}")]
    proc = subprocess.run(
        ["git", *options, *args], cwd=repo, input=stdin, capture_output=True, check=False
    )
    if check and proc.returncode:
        raise AssertionError(f"git {args} failed: {proc.stderr.decode()}")
    return proc


def read_blobs(repo: Path, oids: Sequence[str]) -> list[bytes]:
    """Blob contents via one ``git cat-file --batch``."""
    out = run(repo, "cat-file", "--batch", stdin="".join(f"{o}\n" for o in oids).encode()).stdout
    blobs = []
    for _ in oids:
        header, _, out = out.partition(b"\n")
        size = int(header.split()[2])
        blobs.append(out[:size])
        out = out[size + 1 :]
    return blobs


def make_repo(root: Path) -> tuple[Path, list[str]]:
    """A repository with one folder per attribute variant, each holding every content."""
    repo = root / "repo"
    run(root, "init", "-q", str(repo))
    paths = []
    for folder, text in ATTRIBUTES.items():
        (repo / folder).mkdir()
        if text is not None:
            (repo / folder / ".gitattributes").write_text(text)
        paths += [f"{folder}/{name}.md" for name in CONTENTS]
    return repo, paths


def write_files(repo: Path, paths: Sequence[str]) -> None:
    for path in paths:
        (repo / path).write_bytes(content_of(path))


def content_of(path: str) -> bytes:
    return CONTENTS[path.rsplit("/", 1)[1].removesuffix(".md")]


def set_index(repo: Path, entries: dict[str, str]) -> None:
    """Point the index entries of ``entries`` (path to blob id) at those blobs."""
    lines = "".join(f"100644 {oid}\t{path}\n" for path, oid in entries.items())
    run(repo, "update-index", "--index-info", stdin=lines.encode())


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(c.values()) or "default")
def test_matches_git(tmp_path: Path, config: dict[str, str]) -> None:
    repo, paths = make_repo(tmp_path)
    conv = Conversion(repo, repo / ".git", config)
    actions = conv.actions(paths)
    assert actions["plain/lf.md"] is (
        CrlfAction.BINARY
        if config.get("core.autocrlf", "false") == "false"
        else CrlfAction.AUTO_CRLF
        if config["core.autocrlf"] == "true"
        else CrlfAction.AUTO_INPUT
    )
    write_files(repo, paths)

    # 1. git add's blob for a path not in the index: git hash-object -w with the path.
    out = run(
        repo, "hash-object", "-w", "--stdin-paths", config=config, stdin="\n".join(paths).encode()
    )
    stored = read_blobs(repo, out.stdout.decode().split())
    for path, blob in zip(paths, stored, strict=True):
        ours = conv.to_git(actions[path], content_of(path), None)
        assert ours == blob, (path, actions[path], content_of(path))

    # 2. git checkout of each content as a blob.
    raw = run(
        repo, "hash-object", "-w", "--no-filters", "--stdin-paths", stdin="\n".join(paths).encode()
    )
    set_index(repo, dict(zip(paths, raw.stdout.decode().split(), strict=True)))
    for path in paths:
        (repo / path).unlink()
    run(repo, "checkout", "--", *ATTRIBUTES, config=config)
    for path in paths:
        ours = conv.to_worktree(actions[path], content_of(path))
        assert ours == (repo / path).read_bytes(), (path, actions[path], content_of(path))

    # 3. git add over an index entry that already holds CRLF (git's has_crlf_in_index).
    write_files(repo, paths)
    crlf_oid = run(repo, "hash-object", "-w", "--stdin", stdin=INDEX_CRLF).stdout.decode().strip()
    set_index(repo, dict.fromkeys(paths, crlf_oid))
    run(repo, "add", "--", *paths, config=config)
    listing = run(repo, "ls-files", "-s", "-z", "--", *ATTRIBUTES).stdout.decode()
    index = {entry.split("\t", 1)[1]: entry.split()[1] for entry in listing.split("\0") if entry}
    stored = read_blobs(repo, [index[path] for path in paths])
    for path, blob in zip(paths, stored, strict=True):
        ours = conv.to_git(actions[path], content_of(path), INDEX_CRLF)
        assert ours == blob, (path, actions[path], content_of(path))


def test_matrix_reaches_every_action(tmp_path: Path) -> None:
    """The matrix above compares every resolved action with git, not a few of them."""
    repo, paths = make_repo(tmp_path)
    seen: set[CrlfAction] = set()
    for config in CONFIGS:
        seen.update(Conversion(repo, repo / ".git", config).actions(paths).values())
    assert seen == set(CrlfAction)


def test_has_crlf_in_index_keeps_crlf(tmp_path: Path) -> None:
    conv = Conversion(tmp_path, tmp_path / ".git", {"core.autocrlf": "true"})
    data = b"a\r\nb\r\n"
    assert conv.to_git(CrlfAction.AUTO_CRLF, data, None) == b"a\nb\n"
    assert conv.to_git(CrlfAction.AUTO_CRLF, data, b"x\r\n") == data
    # an indexed blob that looks binary, or holds no CRLF, does not count
    assert conv.to_git(CrlfAction.AUTO_CRLF, data, b"x\r\n\0") == b"a\nb\n"
    assert conv.to_git(CrlfAction.AUTO_CRLF, data, b"x\n") == b"a\nb\n"
    # text (not auto) always normalizes
    assert conv.to_git(CrlfAction.TEXT_CRLF, data, b"x\r\n") == b"a\nb\n"


SAFECRLF_CONFIGS = [
    {"core.autocrlf": "true", "core.safecrlf": "true"},
    {"core.autocrlf": "input", "core.eol": "crlf", "core.safecrlf": "true"},
]
SAFECRLF_FOLDERS = ["plain", "auto", "text", "text-lf", "eol-crlf", "crlf-input", "auto-crlf"]
SAFECRLF_CONTENTS = [
    "lf",
    "crlf",
    "mixed",
    "lonecr",
    "nul",
    "empty",
    "ctrlz",
    "crcrlf",
    "nonewline",
]


@pytest.mark.parametrize("config", SAFECRLF_CONFIGS, ids=["autocrlf", "input"])
def test_safecrlf_true_refuses_like_git(tmp_path: Path, config: dict[str, str]) -> None:
    repo, _ = make_repo(tmp_path)
    paths = [f"{f}/{c}.md" for f in SAFECRLF_FOLDERS for c in SAFECRLF_CONTENTS]
    conv = Conversion(repo, repo / ".git", config)
    actions = conv.actions(paths)
    refused = 0
    for path in paths:
        data = content_of(path)
        proc = run(
            repo,
            "hash-object",
            "-w",
            "--stdin",
            f"--path={path}",
            config=config,
            stdin=data,
            check=False,
        )
        if proc.returncode:
            message = proc.stderr.decode().strip().removeprefix("fatal: ")
            with pytest.raises(StoreError) as caught:
                conv.to_git(actions[path], data, None, path=path)
            assert str(caught.value).startswith(message), (path, actions[path])
            refused += 1
        else:
            blob = read_blobs(repo, [proc.stdout.decode().strip()])[0]
            assert conv.to_git(actions[path], data, None, path=path) == blob, path
    assert 0 < refused < len(paths)


def test_safecrlf_false_and_warn_never_refuse(tmp_path: Path) -> None:
    for value in ("false", "warn", "WARN", "0"):
        conv = Conversion(tmp_path, tmp_path / ".git", {"core.safecrlf": value})
        assert conv.to_git(CrlfAction.TEXT_CRLF, b"a\n", None) == b"a\n"
        assert conv.to_git(CrlfAction.TEXT_INPUT, b"a\r\n", None) == b"a\n"


# ------------------------------------------------------------------------------- refusals

REFUSED = {
    "projects/p/x.md": "filter=lfs",
    "projects/p/ident.md": "ident",
    "projects/p/utf16.md": "working-tree-encoding=UTF-16",
    "projects/p/noenc.md": "-working-tree-encoding",
}
ACCEPTED = {
    "projects/p/utf8.md": "working-tree-encoding=utf8",
    "projects/p/utf-8.md": "working-tree-encoding=UTF-8",
    "projects/p/noident.md": "-ident",
    "projects/p/nofilter.md": "-filter",
    "projects/p/filterset.md": "filter",
    "projects/p/identvalue.md": "ident=yes",
}


def test_refuses_filter_ident_and_encoding(tmp_path: Path) -> None:
    repo, _ = make_repo(tmp_path)
    lines = [f"{path} {attribute}\n" for path, attribute in {**REFUSED, **ACCEPTED}.items()]
    (repo / ".gitattributes").write_text("".join(lines))
    conv = Conversion(repo, repo / ".git", {})
    assert not conv.identity
    for path, attribute in REFUSED.items():
        with pytest.raises(UnsupportedAttributeError) as caught:
            conv.actions(["projects/p/fine.md", path])
        assert isinstance(caught.value, StoreError)
        assert (caught.value.path, caught.value.attribute) == (path, attribute)
        assert str(caught.value).startswith(
            f"{path}: the .gitattributes attribute '{attribute}' is not supported by mdsessions ("
        )
        assert str(caught.value).endswith("); remove it for this path")
    assert str(UnsupportedAttributeError("projects/p/x.md", "filter=lfs", "x")) != ""
    with pytest.raises(UnsupportedAttributeError) as caught:
        conv.actions(["projects/p/x.md"])
    assert str(caught.value) == (
        "projects/p/x.md: the .gitattributes attribute 'filter=lfs' is not supported by "
        "mdsessions (it writes files without git's filters); remove it for this path"
    )
    assert set(conv.actions(list(ACCEPTED)).values()) == {CrlfAction.BINARY}


# ---------------------------------------------------------------------------------- cache


class CountingGit:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = _convert.run_git

        def counting(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(_convert, "run_git", counting)


def age(path: Path) -> None:
    """Date a file 10 s back, out of the racy window."""
    past = time.time_ns() - 10_000_000_000
    os.utime(path, ns=(past, past))


def test_default_config_is_identity_without_subprocess(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = make_repo(tmp_path)
    git = CountingGit(monkeypatch)
    conv = Conversion(repo, repo / ".git", {"core.eol": "crlf"})
    assert conv.identity
    assert conv.actions(["plain/a.md", "plain/deep/er/b.md", "top.md"]) == {
        "plain/a.md": CrlfAction.BINARY,
        "plain/deep/er/b.md": CrlfAction.BINARY,
        "top.md": CrlfAction.BINARY,
    }
    # autocrlf alone needs no check-attr either
    conv = Conversion(repo, repo / ".git", {"core.autocrlf": "input"})
    assert not conv.identity
    assert conv.actions(["plain/a.md"]) == {"plain/a.md": CrlfAction.AUTO_INPUT}
    assert git.calls == 0
    # a folder along the path with a .gitattributes ends the fast path
    conv = Conversion(repo, repo / ".git", {})
    assert conv.actions(["text-lf/a.md"]) == {"text-lf/a.md": CrlfAction.TEXT_INPUT}
    assert git.calls == 1


@pytest.mark.parametrize("source", ["root", "info", "xdg", "home", "attributesfile"])
def test_identity_sees_every_attribute_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    repo = tmp_path / "repo"
    run(tmp_path, "init", "-q", str(repo))
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    config: dict[str, str] = {}
    conv = Conversion(repo, repo / ".git", config)
    assert conv.identity
    target = {
        "root": repo / ".gitattributes",
        "info": repo / ".git" / "info" / "attributes",
        "xdg": xdg / "git" / "attributes",
        "home": home / ".config" / "git" / "attributes",
        "attributesfile": home / "attrs",
    }[source]
    if source == "xdg":
        monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    if source == "attributesfile":
        config["core.attributesfile"] = "~/attrs"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("*.md text eol=crlf\n")
    conv = Conversion(repo, repo / ".git", config)
    assert not conv.identity
    if source == "attributesfile":
        monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
        (home / "gitconfig").write_text(f"[core]\n\tattributesFile = {target}\n")
    assert conv.actions(["a/b.md"]) == {"a/b.md": CrlfAction.TEXT_CRLF}


def test_cache_follows_gitattributes_edits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    run(tmp_path, "init", "-q", str(repo))
    git = CountingGit(monkeypatch)
    conv = Conversion(repo, repo / ".git", {})
    root_attributes = repo / ".gitattributes"
    root_attributes.write_text("*.md text eol=crlf\n")
    age(root_attributes)
    assert conv.actions(["a/b.md"]) == {"a/b.md": CrlfAction.TEXT_CRLF}
    assert conv.actions(["a/b.md"]) == {"a/b.md": CrlfAction.TEXT_CRLF}
    assert git.calls == 1
    assert conv.actions(["a/b.md", "a/c.md", "d.md"])["a/c.md"] is CrlfAction.TEXT_CRLF
    assert git.calls == 2
    conv.actions(["a/b.md", "a/c.md", "d.md"])
    assert git.calls == 2

    # an edit of the root file
    root_attributes.write_text("*.md -text\n")
    assert conv.actions(["a/b.md"]) == {"a/b.md": CrlfAction.BINARY}
    assert git.calls == 3
    # ... is racy for a moment (a same-size rewrite could keep the stat): asked again
    assert conv.actions(["a/b.md"]) == {"a/b.md": CrlfAction.BINARY}
    assert git.calls == 4
    age(root_attributes)
    conv.actions(["a/b.md", "d.md"])
    conv.actions(["a/b.md", "d.md"])
    assert git.calls == 5

    # a new .gitattributes in a folder along the path
    nested = repo / "a" / ".gitattributes"
    nested.parent.mkdir()
    nested.write_text("b.md text eol=lf\n")
    assert conv.actions(["a/b.md", "a/c.md"]) == {
        "a/b.md": CrlfAction.TEXT_INPUT,
        "a/c.md": CrlfAction.BINARY,
    }
    # a same-size rewrite right away
    nested.write_text("c.md text eol=lf\n")
    assert conv.actions(["a/b.md", "a/c.md"]) == {
        "a/b.md": CrlfAction.BINARY,
        "a/c.md": CrlfAction.TEXT_INPUT,
    }
    # removed again
    nested.unlink()
    assert conv.actions(["a/c.md"]) == {"a/c.md": CrlfAction.BINARY}
    # a folder's .gitattributes does not touch paths outside it: d.md stayed cached
    calls = git.calls
    assert conv.actions(["d.md"]) == {"d.md": CrlfAction.BINARY}
    assert git.calls == calls


# ------------------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("value", "action"),
    [
        ("true", CrlfAction.AUTO_CRLF),
        ("TRUE", CrlfAction.AUTO_CRLF),
        ("yes", CrlfAction.AUTO_CRLF),
        ("1", CrlfAction.AUTO_CRLF),
        ("Input", CrlfAction.AUTO_INPUT),
        ("false", CrlfAction.BINARY),
        ("off", CrlfAction.BINARY),
        ("", CrlfAction.BINARY),
        ("0", CrlfAction.BINARY),
    ],
)
def test_autocrlf_values(tmp_path: Path, value: str, action: CrlfAction) -> None:
    conv = Conversion(tmp_path, tmp_path / ".git", {"core.autocrlf": value})
    assert conv.actions(["x.md"]) == {"x.md": action}


def test_bad_boolean_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="core.autocrlf"):
        Conversion(tmp_path, tmp_path / ".git", {"core.autocrlf": "sometimes"})
    with pytest.raises(StoreError, match="core.safecrlf"):
        Conversion(tmp_path, tmp_path / ".git", {"core.safecrlf": "maybe"})


def test_binary_and_empty_are_returned_as_is(tmp_path: Path) -> None:
    conv = Conversion(tmp_path, tmp_path / ".git", {})
    data = b"a\r\nb\n"
    assert conv.to_git(CrlfAction.BINARY, data, None) is data
    assert conv.to_worktree(CrlfAction.BINARY, data) is data
    assert conv.to_git(CrlfAction.TEXT_CRLF, b"", None) == b""
    assert conv.to_worktree(CrlfAction.TEXT_CRLF, b"") == b""


def test_linked_worktree_reads_the_common_info_attributes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run(tmp_path, "init", "-q", str(repo))
    run(repo, "commit", "-q", "--allow-empty", "-m", "start")
    run(repo, "worktree", "add", "-q", str(tmp_path / "wt"))
    git_dir = repo / ".git" / "worktrees" / "wt"
    conv = Conversion(tmp_path / "wt", git_dir, {})
    assert conv.identity
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "attributes").write_text("*.md text eol=crlf\n")
    assert not conv.identity
    assert conv.actions(["a.md"]) == {"a.md": CrlfAction.TEXT_CRLF}
