"""Text from outside (file names, HTTP reasons, error details) made safe to print, log and store.

A file name or an HTTP reason phrase is chosen by whoever dropped the file or runs the server. Printed
raw, a newline forges a second line in `status` (a monitoring agent reads the first line only), an
escape sequence rewrites the operator's terminal, and a right-to-left override reverses what is read.
`printable` escapes every such character visibly (`\\x1b`, `\\u202e`) and bounds the length, so what is
shown is what was received, on one line, and a hostile value cannot grow the state file.
"""

from __future__ import annotations

import unicodedata

# Cc: C0/C1 controls (newline, ESC, DEL); Cf: format characters (bidi overrides and isolates,
# zero-width joiners); Zl/Zp: line and paragraph separators; Cs: lone surrogates from undecodable
# file names (os.fsdecode). Everything else, accents included, is kept as is.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
ELLIPSIS = "…"


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object, limit: int = 500) -> str:
    """`value` as one line without control or invisible format characters, at most `limit` characters.

    A longer value is cut and ends with "…" (the limit counts it). Backslashes are kept as they are:
    the result is for people and logs, not meant to be decoded back.
    """
    text = value if isinstance(value, str) else str(value)
    if limit < 1:
        return ""
    out: list[str] = []
    length = 0
    for char in text:
        piece = _escape(char) if unicodedata.category(char) in _ESCAPED_CATEGORIES else char
        if length + len(piece) > limit:
            while out and length + len(ELLIPSIS) > limit:
                length -= len(out.pop())
            return "".join(out) + ELLIPSIS
        out.append(piece)
        length += len(piece)
    return "".join(out)


def printable_or_none(value: object, limit: int = 500) -> str | None:
    return None if value is None else printable(value, limit)
