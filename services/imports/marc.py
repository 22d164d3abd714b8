"""CNMARC records (ISO 2709 or MARCXML, read with pymarc) as rows of the canonical catalogue.

The fields are those of CNMARC/UNIMARC: 001 control number, 010$a ISBN, 200$a title $e subtitle
$f first and $g further responsibility, 210$c publisher $d date, 225$a series, 330$a summary,
606/610$a subjects, 690$a CLC class, 701/702$a personal names (authors, and translators when
200$g is absent), and the local holdings field (905 by default: $b barcode, $d class number and
$e book number, joined "class/book" as the call number). Systems differ in the holdings field, so
it is a ``MarcHoldings`` parameter.

ISO 2709 files are decoded with the same strict order as CSV (UTF-8, else GB18030): many Chinese
systems write GBK without saying so in the record.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from xml.sax import SAXParseException

from pymarc import MARCReader, Record, parse_xml_to_array

from services.i18n import t
from services.imports.files import (
    FileFormat,
    ImportFileError,
    TableFile,
    TableRow,
    Unit,
    detect_encoding,
    encoding_name,
)

__all__ = ["MarcHoldings", "marc_table"]

# pymarc leaves this one unannotated: give it its type once.
_parse_marcxml: Callable[[IO[bytes]], list[Record | None]] = parse_xml_to_array

# The canonical catalogue columns a MARC record can fill.
MARC_COLUMNS = (
    "record_id",
    "isbn",
    "title",
    "subtitle",
    "author",
    "translator",
    "publisher",
    "pub_date",
    "clc",
    "call_number",
    "series",
    "tags",
    "summary",
    "barcodes",
)
_NAME_SEPARATOR = " / "


@dataclass(frozen=True, slots=True)
class MarcHoldings:
    """Where a system keeps one copy per field: barcode, and the two halves of the call number."""

    tag: str = "905"
    barcode: str = "b"
    class_number: str = "d"
    book_number: str = "e"


def _first(record: Record, tag: str, code: str) -> str:
    for field in record.get_fields(tag):
        for value in field.get_subfields(code):
            if value.strip():
                return value.strip()
    return ""


def _all(record: Record, tags: tuple[str, ...], code: str) -> list[str]:
    found: list[str] = []
    for field in record.get_fields(*tags):
        for value in field.get_subfields(code):
            if value.strip() and value.strip() not in found:
                found.append(value.strip())
    return found


def _call_number(record: Record, holdings: MarcHoldings) -> str:
    for field in record.get_fields(holdings.tag):
        parts = [
            value.strip()
            for code in (holdings.class_number, holdings.book_number)
            for value in field.get_subfields(code)[:1]
            if value.strip()
        ]
        if parts:
            return "/".join(parts)
    return ""


def record_values(record: Record, holdings: MarcHoldings) -> dict[str, str]:
    """The canonical catalogue cells of one record."""
    control = record.get_fields("001")
    record_id = (control[0].data or "").strip() if control else ""
    title_fields = record.get_fields("200")
    title = subtitle = first_resp = other_resp = ""
    if title_fields:
        title_field = title_fields[0]
        title = " ".join(v.strip() for v in title_field.get_subfields("a") if v.strip())
        subtitle = " ".join(v.strip() for v in title_field.get_subfields("e") if v.strip())
        first_resp = _NAME_SEPARATOR.join(title_field.get_subfields("f"))
        other_resp = _NAME_SEPARATOR.join(title_field.get_subfields("g"))
    authors = first_resp or _NAME_SEPARATOR.join(_all(record, ("701",), "a"))
    translators = other_resp or _NAME_SEPARATOR.join(_all(record, ("702",), "a"))
    barcodes = [
        value.strip()
        for field in record.get_fields(holdings.tag)
        for value in field.get_subfields(holdings.barcode)
        if value.strip()
    ]
    return {
        "record_id": record_id,
        "isbn": _first(record, "010", "a"),
        "title": title,
        "subtitle": subtitle,
        "author": authors,
        "translator": translators,
        "publisher": _first(record, "210", "c"),
        "pub_date": _first(record, "210", "d"),
        "clc": _first(record, "690", "a"),
        "call_number": _call_number(record, holdings),
        "series": _first(record, "225", "a"),
        "tags": ";".join(_all(record, ("606", "610"), "a")),
        "summary": _first(record, "330", "a"),
        "barcodes": ";".join(barcodes),
    }


def marc_table(path: Path, data: bytes, kind: FileFormat, holdings: MarcHoldings) -> TableFile:
    """A MARC file as a table whose rows are numbered by record (1 = the first record)."""
    if kind is FileFormat.MARCXML:
        return _marcxml(data, holdings)
    decoded = detect_encoding(data)
    utf8 = decoded.encoding.startswith("utf-8")
    body = data[3:] if decoded.encoding == "utf-8-sig" else data
    # Leader position 9 says "a" (UTF-8) in MARC 21 only; CNMARC leaves it blank, so say it here.
    reader = MARCReader(
        io.BytesIO(body),
        to_unicode=True,
        force_utf8=utf8,
        file_encoding=decoded.encoding,
        utf8_handling="strict",
    )

    def rows() -> Iterator[TableRow]:
        number = 0
        for record in reader:
            number += 1
            if record is None:
                error = reader.current_exception
                yield TableRow(number, {}, t("import.marc_bad_record", error=error))
                continue
            yield TableRow(number, record_values(record, holdings), None)
        if number == 0:
            raise ImportFileError(t("import.marc_empty", path=path))

    source = t("import.source_iso2709", encoding=encoding_name(decoded.encoding))
    return TableFile(source, Unit.RECORD, 0, MARC_COLUMNS, rows())


def _marcxml(data: bytes, holdings: MarcHoldings) -> TableFile:
    try:
        # The SAX parser resolves no external entities (Python's default since 3.7.1).
        records = _parse_marcxml(io.BytesIO(data))
    except SAXParseException as exc:
        raise ImportFileError(
            t("import.xml_error", line=exc.getLineNumber(), error=exc.getMessage())
        ) from None
    if not records:
        raise ImportFileError(t("import.marcxml_empty"))

    def rows() -> Iterator[TableRow]:
        for number, record in enumerate(records, start=1):
            if record is None:
                yield TableRow(number, {}, t("import.marc_bad_record", error=""))
            else:
                yield TableRow(number, record_values(record, holdings), None)

    return TableFile(t("import.source_marcxml"), Unit.RECORD, 0, MARC_COLUMNS, rows())
