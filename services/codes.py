"""Barcodes and card numbers as typed, scanned or imported: one canonical form.

A scanner sends ``b0012``, a Chinese IME full-width ``Ｂ００１２`` with an ideographic space,
a spreadsheet `` B0012 ``; all of them are ``B0012``. The desk, the CLI and the importers use the
same function, so what one stores the others find.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import ColumnElement, func
from sqlalchemy.orm import InstrumentedAttribute

# What a barcode or a card number is made of; anything else (a name, a title) skips the fallback.
CODE_FORM = re.compile(r"[A-Z0-9][A-Z0-9_./-]*")


def clean_code(text: str) -> str:
    """NFKC (full-width letters, digits and spaces become ASCII), trimmed, upper case."""
    return unicodedata.normalize("NFKC", text).strip().upper()


def loose_match(column: InstrumentedAttribute[str], code: str) -> ColumnElement[bool]:
    """Rows stored before imports cleaned codes (``b0012``, `` B0012``) still match; only used
    after an exact look-up missed, since it cannot use the unique index."""
    return func.upper(func.trim(column)) == clean_code(code)


def may_be_code(code: str) -> bool:
    """Worth the fallback scan: ASCII letters and digits with a digit among them (a scanner's
    code), not a name or a word someone searches for."""
    return bool(CODE_FORM.fullmatch(code)) and any(ch.isdigit() for ch in code)
