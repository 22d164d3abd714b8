"""Recognisers that run before free-text search: ISBN, call number (索书号), CLC class (中图法).

The ISBN checksum code duplicates services/isbn.py on purpose: nlp may not import services, and
the rules are a few lines. Both normalise to ISBN-13, the form the catalogue stores.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "Recognised",
    "clc_class",
    "isbn13",
    "looks_like_isbn",
    "normalize_call_number",
    "normalize_clc",
    "recognise",
]

_ISBN_PREFIX = re.compile(r"^ISBN(?:-?1[03])?\s*[:：]?\s*", re.IGNORECASE)
_ISBN_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]+")
_ISBN13 = re.compile(r"97[89]\d{10}")
_ISBN10 = re.compile(r"\d{9}[\dX]")

# CLC main classes (no L, M, W, Y); T has two-letter subclasses; "TU-0" style general divisions.
# Digits are required, so words like "ABC" or "TV" stay text.
_CLC_CORE = r"(?:[A-KNOPQRSUVXZ]|T[BDEFGHJKLMNPQSUV]?)-?\d+(?:[.\-]\d+)*"
_CLC = re.compile(_CLC_CORE)
# Call number: class (optionally with a ":" or "=" qualifier) "/" author mark and volume notes.
_CALL_NUMBER = re.compile(_CLC_CORE + r"(?:[:=][0-9A-Z.\-]+)*/[0-9A-Z]\S*")
_SPACES = re.compile(r"\s+")


def _digits_only(text: str) -> str:
    value = unicodedata.normalize("NFKC", text).strip()
    value = _ISBN_PREFIX.sub("", value)
    return _ISBN_SEPARATORS.sub("", value).upper()


def _isbn13_check(first12: str) -> str:
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(first12))
    return str((10 - total % 10) % 10)


def looks_like_isbn(text: str) -> bool:
    """ISBN-shaped (10 or 13 digits, separators allowed), whatever the check digit."""
    value = _digits_only(text)
    return bool(_ISBN13.fullmatch(value) or _ISBN10.fullmatch(value))


def isbn13(text: str | None) -> str | None:
    """The ISBN-13 of a valid ISBN-10 or ISBN-13 in any spelling, else None."""
    if not text:
        return None
    value = _digits_only(text)
    if _ISBN13.fullmatch(value):
        return value if _isbn13_check(value[:12]) == value[12] else None
    if _ISBN10.fullmatch(value):
        total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(value))
        if total % 11 == 0:
            core = "978" + value[:9]
            return core + _isbn13_check(core)
    return None


def _shelfmark(text: str) -> str:
    return _SPACES.sub("", unicodedata.normalize("NFKC", text)).upper()


def normalize_call_number(text: str | None) -> str:
    """Upper case, no spaces, half-width: the key form of a call number."""
    return _shelfmark(text) if text else ""


def normalize_clc(text: str | None) -> str:
    return _shelfmark(text) if text else ""


def clc_class(text: str) -> str | None:
    """The CLC class a query names ("tp3" → "TP3"), or None."""
    value = _shelfmark(text)
    return value if _CLC.fullmatch(value) else None


def call_number(text: str) -> str | None:
    value = _shelfmark(text)
    return value if _CALL_NUMBER.fullmatch(value) else None


@dataclass(frozen=True, slots=True)
class Recognised:
    kind: str  # "isbn" | "call_number" | "clc"
    value: str  # ISBN-13 ("" when ISBN-shaped but invalid), call number or class, normalised


def recognise(query: str) -> Recognised | None:
    """What a structured query is, if it is one; None for free text."""
    if len(query) > 60:
        return None
    if looks_like_isbn(query):
        return Recognised("isbn", isbn13(query) or "")
    number = call_number(query)
    if number is not None:
        return Recognised("call_number", number)
    klass = clc_class(query)
    if klass is not None:
        return Recognised("clc", klass)
    return None
