"""safe_text.printable: what reaches a terminal, a log line or the state file from outside."""

from __future__ import annotations

from continuity.safe_text import printable


def test_controls_escapes_and_bidi_are_shown_escaped() -> None:
    assert printable("a\nb\r\tc") == "a\\x0ab\\x0d\\x09c"
    assert printable("\x1b[2J\x1b]0;title\x07") == "\\x1b[2J\\x1b]0;title\\x07"
    assert printable("abc\u202edcba\u2066x\u200b") == "abc\\u202edcba\\u2066x\\u200b"
    assert printable("ligne\u2028suivante\x85") == "ligne\\u2028suivante\\x85"
    assert printable("nom\udcff.snap") == "nom\\udcff.snap"  # an undecodable byte in a file name


def test_ordinary_text_is_kept() -> None:
    text = "LEFÈVRE-ÇELIK Œuvray — 404 Not Found « fichier » 漢字"
    assert printable(text) == text


def test_length_is_bounded_with_an_ellipsis() -> None:
    assert printable("x" * 10, 5) == "xxxx…"
    assert printable("abcde", 5) == "abcde"
    assert printable("\x1b" * 10, 9) == "\\x1b\\x1b…"  # escapes count for their printed length
    assert len(printable("é" * 100_000, 500)) == 500
    assert printable("abc", 0) == ""
