"""Make job-derived text safe for a terminal: no escape sequences, no control characters."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Job text comes from whoever could invoke the agent. A terminal obeys escape sequences in
# it (hidden hyperlinks, cleared screens, retitled windows), so they go whole: CSI, OSC,
# DCS/SOS/PM/APC strings and two-character escapes, in their 7-bit and 8-bit (C1) forms.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# Bidirectional embeddings, overrides and isolates make text display in another order than
# it reads (a file name that looks like .txt but is .exe).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\n\r\t\v\f\u2028\u2029\x85")
# What JSON leaves raw but a terminal may act on; only ever inside JSON strings.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str, *, multiline: bool = False) -> str:
    """`text` without escape sequences, control or bidi characters; a lone surrogate becomes
    U+FFFD. Line breaks and tabs become spaces, unless `multiline` keeps newlines and tabs."""
    stripped = _ESCAPE_SEQUENCE.sub("", text)
    kept = []
    for char in stripped:
        if multiline and char in "\n\t":
            kept.append(char)
        elif char in _LINE_BREAKS:
            kept.append(" ")
        elif char in _BIDI_CONTROLS:
            continue
        else:
            category = unicodedata.category(char)
            if category == "Cs":
                kept.append("\ufffd")
            elif category != "Cc":
                kept.append(char)
    return "".join(kept)


def printable_value(value: Any) -> Any:
    """A JSON value with every string in it (keys included) made `printable`, multi-line."""
    if isinstance(value, str):
        return printable(value, multiline=True)
    if isinstance(value, dict):
        return {printable(str(k)): printable_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable_value(v) for v in value]
    return value


def escape_json_text(text: str) -> str:
    """JSON text with DEL, C1, bidi controls, line separators and lone surrogates written as
    \\u escapes: the same JSON value, nothing a terminal obeys (json leaves these raw)."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
