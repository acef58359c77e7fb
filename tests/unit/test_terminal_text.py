"""Job text made safe for a terminal: escape sequences and control characters never survive."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agentjobs.cli.terminal_text import escape_json_text, printable, printable_value

BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# Text biased towards what a terminal obeys: escapes, C0/C1 controls, bidi, surrogates.
hostile_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(["\x1b", "[", "]", "\x07", "\x9b", "\x9d", "\\", ";", "8", "m", "\n"]),
        st.sampled_from(["\ud800", "\udfff", "\x85", "\u2028"]),
        st.sampled_from(sorted(BIDI)),
        st.characters(codec=None),
    ),
    max_size=200,
)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b]8;;https://evil.example\x07click\x1b]8;;\x07", "click"),
        ("\x1b]0;new title\x1b\\after", "after"),
        ("\x9b2Jcleared", "cleared"),
        ("a\x1bPdevice\x1b\\b", "ab"),
        ("bell\x07 back\x08space", "bell backspace"),
        ("\u202eexe.txt", "exe.txt"),
        ("two\nlines\ttab", "two lines tab"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        (
            "[link=https://x]markup stays[/link] [/bold]",
            "[link=https://x]markup stays[/link] [/bold]",
        ),
        ("caf\u00e9 \U0001f600 \u200d", "caf\u00e9 \U0001f600 \u200d"),
    ],
)
def test_printable_keeps_the_text_and_drops_what_a_terminal_obeys(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_multiline_keeps_newlines_and_tabs() -> None:
    assert printable("a\n\tb\r\nc", multiline=True) == "a\n\tb \nc"


@settings(max_examples=300, deadline=None)
@given(hostile_text, st.booleans())
@example("\x1b", False)
@example("\x9d\x1b\\", True)
def test_printable_never_leaves_a_control_character(raw: str, multiline: bool) -> None:
    shown = printable(raw, multiline=multiline)
    allowed = {"\n", "\t"} if multiline else set()
    assert all(c in allowed or unicodedata.category(c) not in ("Cc", "Cs") for c in shown)
    assert not BIDI & set(shown)
    shown.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.recursive(hostile_text | st.integers(), lambda inner: st.lists(inner, max_size=4)))
def test_escaped_json_is_the_same_value_with_nothing_raw(value: object) -> None:
    escaped = escape_json_text(json.dumps(value, ensure_ascii=False))
    assert json.loads(escaped) == value
    assert all(unicodedata.category(c) not in ("Cc", "Cs") for c in escaped)
    assert not BIDI & set(escaped)


def test_printable_value_cleans_keys_and_nested_strings() -> None:
    value = {"\x1b[1mkey": ["\x07x", {"y": "\u202ez"}], "n": 3}
    assert printable_value(value) == {"key": ["x", {"y": "z"}], "n": 3}
