"""ISBN normalisation and validation (ISBN-10 and ISBN-13): the one copy of these rules, used by
the search recogniser and the catalogue importer alike.

Accepted input: hyphens and dashes, spaces (ASCII and ideographic), full-width digits and ``Ｘ``,
a lower-case ``x`` check digit, and an optional ``ISBN``/``ISBN-13:`` prefix. Everything is
normalised to the 13-digit form, which is what the catalogue stores and the search looks up.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["isbn10_to_13", "looks_like_isbn", "normalize_isbn"]

# Separators people and catalogues put between ISBN groups (NFKC has already folded full-width).
_SEPARATORS = re.compile(r"[\s\-\u2010\u2011\u2012\u2013\u2014\u2212]+")
_PREFIX = re.compile(r"^ISBN(?:-?1[03])?\s*[:：]?\s*", re.IGNORECASE)
_ISBN10 = re.compile(r"[0-9]{9}[0-9X]")
_ISBN13 = re.compile(r"97[89][0-9]{10}")


def _compact(text: str) -> str:
    """Digits (and a trailing X) only, or whatever is left when the text is not ISBN-shaped."""
    value = unicodedata.normalize("NFKC", text).strip()
    value = _PREFIX.sub("", value)
    return _SEPARATORS.sub("", value).upper()


def _isbn10_ok(digits: str) -> bool:
    total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(digits))
    return total % 11 == 0


def _isbn13_check_digit(first12: str) -> str:
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(first12))
    return str((10 - total % 10) % 10)


def looks_like_isbn(text: str) -> bool:
    """True when ``text`` has the shape of an ISBN (10 or 13 digits), whether or not it checks out.

    Meant for recognising "the user typed an ISBN": a mistyped check digit still looks like one,
    so the caller can say "校验位不对" instead of running a title search on a number.
    """
    value = _compact(text)
    return bool(_ISBN13.fullmatch(value) or _ISBN10.fullmatch(value))


def normalize_isbn(text: str) -> str | None:
    """The ISBN-13 for a valid ISBN-10 or ISBN-13, else None (bad shape or bad check digit)."""
    value = _compact(text)
    if _ISBN13.fullmatch(value):
        return value if _isbn13_check_digit(value[:12]) == value[12] else None
    if _ISBN10.fullmatch(value) and _isbn10_ok(value):
        core = "978" + value[:9]
        return core + _isbn13_check_digit(core)
    return None


def isbn10_to_13(isbn10: str) -> str:
    """Convert a valid ISBN-10 (any accepted spelling) to ISBN-13; ValueError when invalid."""
    value = _compact(isbn10)
    if not (_ISBN10.fullmatch(value) and _isbn10_ok(value)):
        raise ValueError(f"not a valid ISBN-10: {isbn10!r}")
    core = "978" + value[:9]
    return core + _isbn13_check_digit(core)
