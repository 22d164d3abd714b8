"""ISBN normalisation and validation (ISBN-10 and ISBN-13): the one copy of these rules, used by
the search recogniser and the catalogue importer alike.

The checksums and the ISBN-10 → ISBN-13 conversion are python-stdnum's; this module only
accepts the spellings people type. Accepted input: hyphens and dashes, spaces (ASCII and
ideographic), full-width digits and ``Ｘ``, a lower-case ``x`` check digit, and an optional
``ISBN``/``ISBN-13:`` prefix. Everything is normalised to the 13-digit form, which is what the
catalogue stores and the search looks up.
"""

from __future__ import annotations

import re
import unicodedata

from stdnum import isbn as stdnum_isbn

__all__ = ["isbn10_to_13", "looks_like_isbn", "normalize_isbn", "one_digit_away"]

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
    if not (_ISBN13.fullmatch(value) or _ISBN10.fullmatch(value)):
        return None
    if not stdnum_isbn.is_valid(value):
        return None
    return str(stdnum_isbn.to_isbn13(value))


def isbn10_to_13(isbn10: str) -> str:
    """Convert a valid ISBN-10 (any accepted spelling) to ISBN-13; ValueError when invalid."""
    value = _compact(isbn10)
    if not (_ISBN10.fullmatch(value) and stdnum_isbn.is_valid(value)):
        raise ValueError(f"not a valid ISBN-10: {isbn10!r}")
    return str(stdnum_isbn.to_isbn13(value))


def one_digit_away(text: str) -> list[str]:
    """Valid ISBN-13s that differ from an ISBN-shaped ``text`` in one digit, or in two adjacent
    digits swapped (the usual typing slips), for "did you mean"; [] when it is not ISBN-shaped."""
    value = _compact(text)
    if not (_ISBN13.fullmatch(value) or _ISBN10.fullmatch(value)):
        return []
    variants: set[str] = set()
    for i, old in enumerate(value):
        digits = "0123456789X" if len(value) == 10 and i == 9 else "0123456789"
        variants.update(value[:i] + new + value[i + 1 :] for new in digits if new != old)
    for i in range(len(value) - 1):
        variants.add(value[:i] + value[i + 1] + value[i] + value[i + 2 :])
    found = {
        str(stdnum_isbn.to_isbn13(v))
        for v in variants
        if (_ISBN13.fullmatch(v) or _ISBN10.fullmatch(v)) and stdnum_isbn.is_valid(v)
    }
    return sorted(found)
