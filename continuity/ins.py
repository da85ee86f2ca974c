"""The INS (identifiant national de santé): NIR check key and format checks."""

from __future__ import annotations

import re

_NIR = re.compile(r"^[12378]\d{2}(0[1-9]|1[0-2]|[2-9]\d)(\d{2}|2A|2B)\d{6}$")


def nir_body_number(first13: str) -> int:
    """The 13 first characters as a number, with Corsica's 2A/2B replaced as INSEE specifies."""
    body = first13.upper()
    if body[5:7] == "2A":
        return int(body[:5] + "19" + body[7:])
    if body[5:7] == "2B":
        return int(body[:5] + "18" + body[7:])
    return int(body)


def nir_check_key(first13: str) -> int:
    """97 − (the 13 first characters mod 97)."""
    return 97 - nir_body_number(first13) % 97


def is_valid_nir(value: str) -> bool:
    """A 15-character NIR (13 + 2-digit key), spaces ignored, with a correct key."""
    compact = value.replace(" ", "").upper()
    if len(compact) != 15 or not _NIR.match(compact[:13]) or not compact[13:].isdigit():
        return False
    return nir_check_key(compact[:13]) == int(compact[13:])


def with_check_key(first13: str) -> str:
    return f"{first13}{nir_check_key(first13):02d}"
