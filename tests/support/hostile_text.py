"""Hypothesis strategies for hostile text: any code point (lone surrogates included), and long
strings at, just under and just past each bound in agentjobs.limits."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from agentjobs import limits

# Every code point, lone surrogates (category Cs) and controls included: st.text() on its own
# leaves surrogates out, and those are what a Python str carries but UTF-8 cannot.
any_char = st.characters()
any_text = st.text(alphabet=any_char, max_size=40)
lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)

# Characters of 1 to 4 UTF-8 bytes (and one that encodes not at all), so a bound in bytes
# and a bound in characters are both met and crossed.
WIDE = ["a", "\u00e9", "\u6f22", "\U0001f600", "\ud800", "[/bold]", "\x1b", "\x00"]

TEXT_LIMITS = {
    "job_id": limits.MAX_JOB_ID_CHARS,
    "client_token": limits.MAX_CLIENT_TOKEN_CHARS,
    "kind": limits.MAX_KIND_CHARS,
    "session_id": limits.MAX_SESSION_ID_CHARS,
    "owner": limits.MAX_OWNER_CHARS,
    "s3_uri": limits.MAX_S3_URI_CHARS,
    "error_message": limits.MAX_ERROR_MESSAGE_CHARS,
    "progress_message": limits.MAX_PROGRESS_MESSAGE_CHARS,
    "poll_error": limits.MAX_POLL_ERROR_CHARS,
}


def around(limit: int) -> list[int]:
    """Lengths that meet a bound and cross it."""
    return sorted({max(limit - 1, 0), limit, limit + 1, 2 * limit + 7})


def long_text(limit: int) -> st.SearchStrategy[str]:
    """A string of one repeated piece, at, just under or just past `limit` characters."""
    return st.builds(
        lambda piece, size: (piece * size)[:size],
        st.sampled_from(WIDE) | any_char,
        st.sampled_from(around(limit)),
    )


def text_near(field: str) -> st.SearchStrategy[str]:
    """Short text of any code point, or long text around the field's own bound."""
    return any_text | long_text(TEXT_LIMITS[field])


any_limit_text = st.one_of([long_text(limit) for limit in sorted(set(TEXT_LIMITS.values()))])
"""Long text around some bound of the protocol."""

hostile_text = any_text | any_limit_text | lone_surrogates.map(lambda c: f"x{c}y")
"""Any text a caller or a job could hand us."""


def raw_json(value: Any) -> bytes:
    """`value` as the JSON bytes a client sends: a lone surrogate, which a Python str carries
    but no UTF-8 text can, travels as its `\\ud800` escape (json.dumps writes it so)."""
    return json.dumps(value, ensure_ascii=True).encode("ascii")


def encodes(text: str) -> bool:
    """Whether the text is valid Unicode (encodes as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
