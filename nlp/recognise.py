"""Recognisers that run before free-text search: ISBN, call number (索书号), CLC class (中图法).

ISBNs normalise to ISBN-13 (nlp.isbn), the form the catalogue stores.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from nlp.isbn import looks_like_isbn, normalize_isbn

__all__ = [
    "Recognised",
    "clc_class",
    "isbn13",
    "looks_like_isbn",
    "normalize_call_number",
    "normalize_clc",
    "recognise",
]


# CLC main classes (no L, M, W, Y); T has two-letter subclasses; "TU-0" style general divisions.
# Digits are required, so words like "ABC" or "TV" stay text.
_CLC_CORE = r"(?:[A-KNOPQRSUVXZ]|T[BDEFGHJKLMNPQSUV]?)-?\d+(?:[.\-]\d+)*"
_CLC = re.compile(_CLC_CORE)
# Call number: class (optionally with a ":" or "=" qualifier) "/" author mark and volume notes.
_CALL_NUMBER = re.compile(_CLC_CORE + r"(?:[:=][0-9A-Z.\-]+)*/[0-9A-Z]\S*")
_SPACES = re.compile(r"\s+")


def isbn13(text: str | None) -> str | None:
    """The ISBN-13 of a valid ISBN-10 or ISBN-13 in any spelling, else None."""
    return normalize_isbn(text) if text else None


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
