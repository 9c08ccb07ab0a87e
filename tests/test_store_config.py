"""Tests for mdsessions.store.config: editing mdsessions.toml by lines, merging it key by key."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdsessions.history.setaside import parse_set_aside_ref, set_aside_ref
from mdsessions.store.config import ConfigEditError, flatten, merge_config, set_key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BASE = """\
# mdsessions store configuration (tracked in git).
[store]
format = 1
projects_dir = "projects"
branch = "main"   # mdsessions writes only while this branch is checked out

# Workflows the runner can find by name.
[workflows]
"""


def test_set_key_keeps_comments_and_layout() -> None:
    text = set_key(BASE, "workflows", "aflow", "workflows/aflow.toml")
    assert text == BASE + 'aflow = "workflows/aflow.toml"\n'
    text = set_key(text, "workflows", "b.flow", "x y.toml")
    assert text.endswith('aflow = "workflows/aflow.toml"\n"b.flow" = "x y.toml"\n')
    assert set_key(text, "workflows", "aflow", "workflows/aflow.toml") == text
    text = set_key(text, "store", "durable", True)
    assert 'branch = "main"   # mdsessions writes' in text
    assert tomllib.loads(text)["store"]["durable"] is True
    assert set_key(text, "workflows", "aflow", None).count("aflow") == 0


def test_set_key_in_a_table_that_is_not_last_or_absent() -> None:
    text = '[workflows]\nold = "o.toml"\n\n[store]\nformat = 1\n'
    edited = set_key(text, "workflows", "new", "n.toml")
    assert edited == '[workflows]\nold = "o.toml"\nnew = "n.toml"\n\n[store]\nformat = 1\n'
    added = set_key("[store]\nformat = 1", "workflows", "w", "w.toml")
    assert tomllib.loads(added) == {"store": {"format": 1}, "workflows": {"w": "w.toml"}}


def test_an_edit_the_lines_cannot_take_is_refused() -> None:
    text = '[workflows]\nlist = [\n  "a",\n]\n'
    with pytest.raises(ConfigEditError, match=r"cannot set \[workflows\] list"):
        set_key(text, "workflows", "list", ["b"])
    with pytest.raises(ConfigEditError, match="invalid TOML"):
        set_key("[workflows\n", "workflows", "x", "y")


def test_merge_unions_registrations_and_names_a_real_conflict() -> None:
    mine = set_key(BASE, "workflows", "bflow", "workflows/bflow.toml")
    theirs = set_key(BASE, "workflows", "aflow", "workflows/aflow.toml")
    merged = merge_config(BASE, mine, theirs)
    assert merged.conflicts == () and merged.taken == (("workflows", "aflow"),)
    parsed = tomllib.loads(merged.text)["workflows"]
    assert parsed == {"aflow": "workflows/aflow.toml", "bflow": "workflows/bflow.toml"}
    assert merged.text.startswith(mine.rstrip("\n").rsplit("\n", 1)[0])  # mine's layout
    # The same key set differently on both sides: a conflict, each side's text at hand.
    mine2 = set_key(merged.text, "workflows", "aflow", "a-mine.toml")
    theirs2 = set_key(merged.text, "workflows", "aflow", "a-theirs.toml")
    theirs2 = set_key(theirs2, "workflows", "cflow", "c.toml")
    again = merge_config(merged.text, mine2, theirs2)
    [conflict] = again.conflicts
    assert conflict.describe() == '[workflows] aflow: mine "a-mine.toml", theirs "a-theirs.toml"'
    assert tomllib.loads(again.text)["workflows"]["aflow"] == "a-mine.toml"
    assert tomllib.loads(again.theirs_text)["workflows"]["aflow"] == "a-theirs.toml"
    assert tomllib.loads(again.text)["workflows"]["cflow"] == "c.toml"
    # A deletion on one side merges; deleted vs changed is a conflict.
    gone = set_key(merged.text, "workflows", "bflow", None)
    assert (
        "bflow" not in tomllib.loads(merge_config(merged.text, merged.text, gone).text)["workflows"]
    )
    assert merge_config(merged.text, mine2, set_key(merged.text, "workflows", "aflow", None))
    assert merge_config(None, mine, mine).conflicts == ()


_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_values = st.one_of(st.text(max_size=12), st.integers(-5, 5), st.booleans())


@settings(max_examples=60, deadline=None)
@given(
    base=st.dictionaries(_names, _values, max_size=4),
    mine=st.dictionaries(_names, _values, max_size=4),
    theirs=st.dictionaries(_names, _values, max_size=4),
)
def test_merge_matches_a_three_way_merge_of_the_keys(
    base: dict[str, object], mine: dict[str, object], theirs: dict[str, object]
) -> None:
    def text(table: dict[str, object]) -> str:
        out = BASE
        for key, value in table.items():
            out = set_key(out, "workflows", key, value)
        return out

    def keyed(table: dict[str, object]) -> dict[tuple[str, str], object]:
        return {("workflows", k): v for k, v in table.items()}

    merged = merge_config(text(base), text(mine), text(theirs))
    want = flatten(tomllib.loads(text(mine)))
    conflicts = set()
    for key in base.keys() | mine.keys() | theirs.keys():
        b, m, t = (keyed(x).get(("workflows", key), None) for x in (base, mine, theirs))
        has = [key in x for x in (base, mine, theirs)]
        vb, vm, vt = (v if h else "<absent>" for v, h in zip((b, m, t), has, strict=True))
        if vt == vm or vt == vb:
            continue
        if vm == vb:
            if key in theirs:
                want[("workflows", key)] = theirs[key]
            else:
                want.pop(("workflows", key), None)
        else:
            conflicts.add(("workflows", key))
    assert {c.key for c in merged.conflicts} == conflicts
    assert flatten(tomllib.loads(merged.text)) == want


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        ("p/s", "refs/mdsessions/set-aside/p/s/0123456789ab"),
        ("p.lock/s.lock", "refs/mdsessions/set-aside/p.lock_/s.lock_/0123456789ab"),
        ("p/s.lock_", "refs/mdsessions/set-aside/p/s.lock__/0123456789ab"),
        (None, "refs/mdsessions/set-aside/_store/0123456789ab"),
    ],
)
def test_set_aside_ref_names_round_trip(session: str | None, expected: str) -> None:
    ref = set_aside_ref(session, "0123456789abcdef" * 2)
    assert ref == expected
    assert parse_set_aside_ref(ref) == (True, session)
