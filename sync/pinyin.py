"""Pinyin initials of names for the phone's offline search, every reading of a
polyphonic character included (长虹桥 is found by `chq` and by `zhq`)."""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, pinyin


def _gb2312_level1() -> list[str]:
    """GB 2312 level 1: the 3,755 most common characters (rows 0xB0-0xD7)."""
    chars = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            char = bytes([hi, lo]).decode("gb2312", errors="ignore")
            if char:
                chars.append(char)
    return chars


@lru_cache(maxsize=65536)
def letters(char: str) -> str:
    """Every first letter a character is read with ("长" → "zc"; "a" → "a"; "（" → "")."""
    if char.isascii():
        return char.lower() if char.isalnum() else ""
    found = []
    for reading in pinyin(char, style=Style.FIRST_LETTER, heteronym=True)[0]:
        first = reading[:1].lower()
        if first.isascii() and first.isalpha() and first not in found:
            found.append(first)
    return "".join(found)


def _per_char(name: str) -> list[str]:
    """For each character that has initials: its reading in this name first (pypinyin
    reads phrases: 长虹 is chang hong), then its other readings."""
    phrase = pinyin(name, style=Style.FIRST_LETTER, errors=lambda s: list(s))
    out = []
    for char, reading in zip(name, phrase, strict=False):
        options = letters(char)
        if not options:
            continue
        first = (reading[0][:1] if reading else "").lower()
        if first in options:
            options = first + options.replace(first, "")
        out.append(options)
    return out


def initials(name: str) -> str:
    """One reading per character, the name's own ("成都长虹" → "cdch")."""
    return "".join(o[0] for o in _per_char(name or ""))


def initials_any(name: str) -> str | None:
    """Every reading: a polyphonic position in brackets ("长虹桥" → "[cz][hjg]q"); None when
    no character of the name has two readings (then `initials` says it all)."""
    per = _per_char(name or "")
    if all(len(o) == 1 for o in per):
        return None
    return "".join(o if len(o) == 1 else f"[{o}]" for o in per)


@lru_cache(maxsize=1)
def initials_table() -> dict[str, str]:
    """Letter → the common characters read with it (a polyphonic one under each of its
    letters): what the phone needs to index a name it made itself."""
    table: dict[str, list[str]] = {}
    for char in _gb2312_level1():
        for letter in letters(char):
            table.setdefault(letter, []).append(char)
    return {k: "".join(v) for k, v in sorted(table.items())}
