"""Pydantic models of one catalogue row and one roster row, whatever file they came from.

Each model checks what one row can check on its own and turns its cells into the values stored;
every refusal is a sentence from the locale catalogue, so a file's problems read as
"第 5 行：缺少题名（title）；ISBN「…」校验位不正确". What needs the other rows or the database
(duplicates, barcodes owned elsewhere) is checked by the importer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import Table

from nlp.isbn import looks_like_isbn, normalize_isbn
from services.codes import clean_code
from services.i18n import t
from services.imports.files import role_words
from storage.models import Copy, Reader, Record

__all__ = [
    "MAX_COPIES_PER_ROW",
    "CatalogueRow",
    "ReaderRow",
    "cells",
    "generated_barcode_form",
    "row_reasons",
]

# A sanity bound: "copies" is typed by hand, and a stray "1000000" would mint a million barcodes.
MAX_COPIES_PER_ROW = 200
# Barcodes the importer mints for rows that give only a copy count: G + record pk + "-" + n.
generated_barcode_form = re.compile(r"G\d{8,}-\d+")
_BARCODE_SPLIT = re.compile(r"[;；]")
_TAG_SPLIT = re.compile(r"[;；]")


def _limit(model: type[object], column: str, default: int) -> int:
    length = getattr(cast(Table, model.__table__).c[column].type, "length", None)  # type: ignore[attr-defined]
    return int(length) if length else default


_RECORD_ID_LIMIT = _limit(Record, "record_id", 64)
_BARCODE_LIMIT = _limit(Copy, "barcode", 40)


def _refuse(reason: str) -> PydanticCustomError:
    # The reason goes in as context: a "{" typed in a cell is never read as a template.
    return PydanticCustomError("import_row", "{reason}", {"reason": reason})


def _text(value: Any) -> str | None:
    """A cell: trimmed, empty is None."""
    if value is None:
        return None
    value = str(value).strip()
    return value or None


# Cells arrive trimmed, empty ones as None (``cells``): a Python validator per field would cost
# more than the rest of the row's checks on an 80k-row catalogue.
Text = str | None


def cells(values: Mapping[str, str]) -> dict[str, str | None]:
    """A row's cells as the models take them: trimmed, empty is None."""
    return {name: value.strip() or None for name, value in values.items()}


def row_reasons(error: ValidationError) -> list[str]:
    """The Chinese reasons of a row's validation error, in field order."""
    reasons = []
    for item in error.errors(include_url=False):
        if item["type"] == "import_row":
            reasons.append(str(item["ctx"]["reason"]))
        else:  # a shape pydantic itself refused; cells are text, so this is a bug, not input
            column = ".".join(str(part) for part in item["loc"])
            reasons.append(t("import.invalid_value", column=column))
    return reasons


class CatalogueRow(BaseModel):
    """A catalogue row (CSV, Excel or a MARC record mapped to the same columns)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    record_id: Text = None
    title: Text = None
    isbn: Text = None
    subtitle: Text = None
    author: Text = None
    translator: Text = None
    publisher: Text = None
    pub_date: Text = None
    clc: Text = None
    call_number: Text = None
    series: Text = None
    original_title: Text = None
    tags: Text = None
    summary: Text = None
    copies: int = 0
    barcodes: tuple[str, ...] | None = None  # None: mint ``copies`` barcodes
    location: Text = None

    @field_validator("record_id")
    @classmethod
    def _record_id(cls, value: str | None) -> str | None:
        if value is not None and len(value) > _RECORD_ID_LIMIT:
            raise _refuse(t("import.record_id_too_long", limit=_RECORD_ID_LIMIT))
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is None:
            raise _refuse(t("import.missing_title"))
        return value

    @field_validator("isbn")
    @classmethod
    def _isbn(cls, value: str | None) -> str | None:
        if value is None:
            return None
        isbn = normalize_isbn(value)
        if isbn is None:
            key = "import.isbn_check_digit" if looks_like_isbn(value) else "import.isbn_format"
            raise _refuse(t(key, isbn=value))
        return isbn

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return ";".join(tag.strip() for tag in _TAG_SPLIT.split(value) if tag.strip()) or None

    @field_validator("copies", mode="before")
    @classmethod
    def _copies(cls, value: Any) -> int:
        text = _text(value)
        if text is None:
            return 0
        if not (text.isascii() and text.isdigit()):
            raise _refuse(t("import.copies_not_integer", copies=text))
        copies = int(text)
        if copies > MAX_COPIES_PER_ROW:
            raise _refuse(t("import.copies_too_many", copies=copies, limit=MAX_COPIES_PER_ROW))
        return copies

    @field_validator("barcodes", mode="before")
    @classmethod
    def _barcodes(cls, value: Any) -> tuple[str, ...] | None:
        cells = [clean_code(b) for b in _BARCODE_SPLIT.split(str(value or ""))]
        barcodes = tuple(b for b in cells if b)
        if not barcodes:
            return None
        reasons: list[str] = []
        seen: set[str] = set()
        for barcode in barcodes:
            if barcode in seen:
                reasons.append(t("import.barcode_repeated", barcode=barcode))
            elif len(barcode) > _BARCODE_LIMIT:
                reasons.append(t("import.barcode_too_long", barcode=barcode, limit=_BARCODE_LIMIT))
            elif generated_barcode_form.fullmatch(barcode):
                reasons.append(t("import.barcode_reserved", barcode=barcode))
            seen.add(barcode)
        if reasons:
            raise _refuse(t("import.reason_separator").join(reasons))
        return barcodes


_READER_LIMITS = {
    name: _limit(Reader, name, 100)
    for name in ("card_no", "name", "role", "grade", "class_name", "office")
}


def _fits(name: str, value: str | None) -> str | None:
    if value is not None and len(value) > _READER_LIMITS[name]:
        raise _refuse(t("import.too_long", column=name, limit=_READER_LIMITS[name]))
    return value


class ReaderRow(BaseModel):
    """A roster row: card number, name, role (English or Chinese words), grade, class, office."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    card_no: Text = None
    name: Text = None
    role: Text = None
    grade: Text = None
    class_name: Text = None
    office: Text = None

    @field_validator("card_no")
    @classmethod
    def _card_no(cls, value: str | None) -> str | None:
        if value is None:
            raise _refuse(t("import.missing_card_no"))
        return _fits("card_no", clean_code(value))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is None:
            raise _refuse(t("import.missing_name"))
        return _fits("name", value)

    @field_validator("role")
    @classmethod
    def _role(cls, value: str | None) -> str:
        if value is None:
            raise _refuse(t("import.missing_role"))
        role = role_words().get(value.lower())
        if role is None:
            raise _refuse(t("import.unknown_role", role=value))
        return role

    @field_validator("grade", "office")
    @classmethod
    def _short(cls, value: str | None, info: Any) -> str | None:
        return _fits(info.field_name, value)

    @field_validator("class_name")
    @classmethod
    def _class_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Class names are matched elsewhere (corners, monitors): one bracket spelling.
        return _fits("class_name", value.replace("（", "(").replace("）", ")").replace(" ", ""))
