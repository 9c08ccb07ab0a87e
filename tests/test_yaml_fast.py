"""The fast reader of our own YAML layout gives exactly what the strict loader gives.

:func:`mdsessions.documents.yaml.fast_load` reads the block YAML :func:`dump_mapping` writes
without PyYAML; :func:`load` falls back to the strict loader (PyYAML's safe loader) for any
other text. The contract, checked here on every golden document, every document a sample
run renders, generated mappings and mutated texts:

* where ``fast_load`` returns a mapping, it equals (types included) what the strict loader
  returns for the same text, and the strict loader does not refuse that text;
* every text the strict loader refuses, ``fast_load`` refuses too (``None``), so ``load``
  raises exactly the strict loader's error;
* every document mdsessions renders is read by the fast path.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdsessions import Store
from mdsessions.documents import yaml as _yaml
from mdsessions.documents.frontmatter import split

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = sorted((ROOT / "tests" / "golden").glob("*.md"))


def _typed(value: Any) -> Any:
    """``value`` with each scalar's type attached: ``1 == 1.0 == True`` must not pass."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    return (type(value).__name__, value)


def _strict(text: str) -> tuple[str, Any]:
    """``("ok", typed value)`` or ``("error", message, line)`` from the strict loader."""
    try:
        return "ok", _typed(_yaml._load_strict(text))
    except _yaml.YAMLSyntaxError as exc:
        return "error", (str(exc), exc.line)


def check(text: str) -> bool:
    """The contract on one text; whether the fast path read it."""
    fast = _yaml.fast_load(text)
    strict = _strict(text)
    if fast is not None:
        assert strict == ("ok", _typed(fast)), text
    try:
        loaded: tuple[str, Any] = ("ok", _typed(_yaml.load(text)))
    except _yaml.YAMLSyntaxError as exc:
        loaded = ("error", (str(exc), exc.line))
    if strict[0] == "ok":  # load's own checks (size, depth) come first: not for these texts
        assert loaded == strict, text
    return fast is not None


def _frontmatters(paths: list[Path]) -> list[tuple[str, str]]:
    out = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if text.startswith("---"):
            out.append((path.name, split(text)[0]))
    return out


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_every_golden_document_is_read_by_the_fast_path_to_the_same_result(path: Path) -> None:
    ((_, text),) = _frontmatters([path])
    assert check(text)


def test_every_document_a_sample_run_writes_is_read_fast_and_the_same(tmp_path: Path) -> None:
    """A session through review (a person's comments, requested changes, a stale phase, a
    multi-line idea and agent output with YAML-like text): every document of the store."""
    from mdsessions import Runner

    store = Store.init(tmp_path / "store")
    try:
        session = store.create_session(
            "p", "s", mode="full", idea="line one\n  indented: two\n\nend # not a comment\n"
        )
        session.save_agent_output(
            1, "concept_expansion", "---\nkey: value\n---\n# Out\n", model="m:1", tools_used=["a"]
        )
        session.save_checkpoint(1, status="completed")
        session.save_feedback(1, action="revise", comments="Hi", requested_changes=["x: y", "z"])
        session.save_feedback(1, approved=True)
        agents = {n: (lambda ctx: "# out &a *b 'q' \"d\"\n") for n in ("concept_expansion",)}
        Runner(store, agents=agents).start("p", "t", idea="another", mode="mvp")
        docs = sorted(store.root.glob("projects/**/*.md"))
        found = _frontmatters(docs)
        assert len(found) >= 8
        for name, text in found:
            assert check(text), name
    finally:
        store.close()


keys = st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.sampled_from(["yes", "No", "null", "on", "1.5", "0o7", "-", "a: b", "x #y", "'q", "|"]),
    st.text(alphabet="ab \n\t'#:-|", max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=16,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, values, min_size=1, max_size=6))
def test_generated_mappings_read_the_same_by_both_paths(data: dict[str, object]) -> None:
    text = _yaml.dump_mapping(data) + "\n"
    check(text)
    assert _yaml.load(text) == data


def _mutations(text: str, rng: random.Random, count: int) -> list[str]:
    """Small edits a person (or a broken tool) might make: characters and lines."""
    pieces = [
        " ",
        "  ",
        "\t",
        "#",
        "- ",
        ":",
        ": ",
        "'",
        '"',
        "|",
        "&a ",
        "*a",
        "\n",
        "{",
        "[",
        "yes",
    ]
    out = []
    lines = text.split("\n")
    for _ in range(count):
        kind = rng.randrange(5)
        if kind == 0:
            i = rng.randrange(len(text) + 1)
            out.append(text[:i] + rng.choice(pieces) + text[i:])
        elif kind == 1 and text:
            i = rng.randrange(len(text))
            out.append(text[:i] + text[i + 1 :])
        elif kind == 2:
            j = rng.randrange(len(lines))
            out.append("\n".join(lines[:j] + [lines[j]] + lines[j:]))  # a duplicated line
        elif kind == 3:
            j = rng.randrange(len(lines))
            out.append("\n".join(lines[:j] + [" " + lines[j]] + lines[j + 1 :]))
        else:
            j = rng.randrange(len(lines))
            out.append("\n".join(lines[:j] + lines[j + 1 :]))
    return out


def test_mutated_documents_give_the_strict_result_or_go_the_strict_way() -> None:
    rng = random.Random(13)
    texts = [text for _, text in _frontmatters(GOLDEN)]
    tried = fast = 0
    for text in texts:
        for mutated in _mutations(text, rng, 400):
            tried += 1
            fast += check(mutated)
    assert tried == 400 * len(texts)
    assert 0 < fast < tried  # both paths were exercised


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # duplicate key
        "a: &x 1\nb: *x\n",  # anchors, aliases
        "a: b\n  c\n",  # a plain scalar continued: "b c"
        "a:\n- 1\n  - 2\n",
        "a: 'x'\n'b': 2\n",
        "a: yes\n",
        "a: Null\n",
        "a: 0o17\n",
        "a: 017\n",
        "a: 1_000\n",
        "a: 1e5\n",
        "a: .5\n",
        "a: 2024-11-24\n",
        "a: |2\n   x\n",
        "a: |\n  x\n \n  y\n",
        "a: |\n\n  x\n",
        "a: >\n  x\n",
        "a: x\r\nb: y\n",
        "a: x\x85b: y\n",
        "a: \x07\n",
        "a: \ufeffx\n",
        "a: x # comment\n",
        "a: x \n",
        "---\na: 1\n",
        "a: 1\n...\n",
        "  a: 1\n",
        "a:\n",
        "a:\n  b: 1\n c: 2\n",
        "a:\n  - 1\n",
        "- a\n",
        "a: [1, 2]\n",
        "a: {b: 1}\n",
        "? a\n: 1\n",
        "a: !!str 1\n",
        "on: 1\n",
        "# only a comment\n",
        "\n",
        "a: 'it''s'\n",
        "a: 'x\n",
        "a: -\n",
        "a: -1\nb: -0.0\nc: 0.5e-3\n",
        "a:\n- - 1\n",
        "a:\n-\n",
        "a: |-\n  x\n\n\n",
        "a: |+\n  x\n\n\nb: 1\n",
        "a:\n- b: 1\n  b: 2\n",
        "k" * 1000 + ": v\n",
        "k" * 1024 + ": v\n",
        "k" * 1025 + ": v\n",  # longer than PyYAML's implicit keys
        "a:\n- " + "k" * 1100 + ": v\n",
        "a: " + "v" * 5000 + "\n",
    ],
)
def test_edge_cases(text: str) -> None:
    check(text)


def test_fences_and_headings_are_found_where_the_patterns_find_them() -> None:
    """``split`` and the body's headings look only where a line starts with ``---`` or
    ``## Title`` (``str.find``); they find exactly what the multi-line patterns find."""
    import re

    from mdsessions.documents import frontmatter as fm

    rng = random.Random(5)
    pieces = ["---", "--- ", "---\r", "----", "\n", "\r\n", "x", " ", "#", "## Notes", "## Notes "]
    pieces += ["## Notes\r", "## Notesx", "## User Comments", "## Output", "## Output\t"]
    for _ in range(5000):
        body = "".join(rng.choice(pieces) for _ in range(rng.randrange(12)))
        for title in ("Notes", "Output", "User Comments"):
            pattern = re.compile(rf"^## {re.escape(title)}[ \t]*\r?\n", re.MULTILINE)
            found, expected = fm._heading(body, title), pattern.search(body)
            assert (found and found.span()) == (expected and expected.span()), (body, title)
        text = "---\n" + body
        for start in [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]:
            found, expected = fm._closing_fence(text, start), fm._FENCE.search(text, start)
            assert (found and found.span()) == (expected and expected.span()), (text, start)
