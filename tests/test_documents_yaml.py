"""The frontmatter emitter and the strict loader agree with each other and with PyYAML."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mdsessions.documents import yaml as _yaml

keys = st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=True),
    st.text(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_dump_mapping_round_trips_through_both_loaders(data: dict[str, object]) -> None:
    text = _yaml.dump_mapping(data)
    assert _yaml.load(text + "\n") == (data or None)
    assert yaml.safe_load(text + "\n") == (data or None)


@pytest.mark.parametrize(
    "value",
    [
        "yes",
        "No",
        "NULL",
        "~",
        "on",
        "1.5",
        "2024-11-24T10:00:00Z",
        "a: b",
        "x #y",
        "",
        " lead",
        "trail ",
        "-dash",
        "'quote",
        '"dq',
        "line\nbreak",
        "tab\there",
        "\u2028",
        "\x85",
        "\ufeff",
        "a\r\nb",
        "{x}",
        "[x]",
        "*alias",
        "&anchor",
        "!tag",
        "%pct",
        "@at",
        "`tick`",
        "|pipe",
        ">fold",
        "multi\nline\n",
        "multi\nline\n\n\n",
        "  indented\nfirst",
    ],
)
def test_tricky_strings_stay_strings(value: str) -> None:
    text = _yaml.dump_mapping({"k": value})
    assert _yaml.load(text + "\n") == {"k": value}
    assert yaml.safe_load(text + "\n") == {"k": value}


def test_floats_read_back_as_floats() -> None:
    for number in (0.0, 1.0, 0.0375, 1e-05, 1e22, -2.5, math.inf, -math.inf):
        text = _yaml.dump_mapping({"cost": number})
        assert _yaml.load(text) == {"cost": number}


def test_block_layout_matches_pyyaml_for_the_documents_shapes() -> None:
    data = {
        "schema": "mdsessions/checkpoint/v1",
        "agents": [{"agent_name": "a", "cost": 0.5, "error": None}],
        "inputs": ["projects/p/x.md"],
        "totals": {"tokens": 1},
        "errors": [],
        "idea": "line one\nline two\n",
    }
    ours = _yaml.dump_mapping(data)
    theirs = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6).rstrip("\n")
    assert ours.replace("idea: |\n  line one\n  line two", "IDEA") == theirs.replace(
        "idea: 'line one\n\n  line two\n\n  '", "IDEA"
    )
