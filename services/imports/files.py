"""The one file reader behind every importer: what the school's systems actually export.

A file becomes a header mapped to canonical columns and a stream of rows keyed by those columns,
each with the number the user sees for it: the physical line of a CSV file (where a row starts;
quoted fields may span lines), the row of an Excel sheet, or the record of a MARC file.

- The format is recognised by content first (a ZIP container is .xlsx, an OLE container is the old
  .xls, ISO 2709 and MARCXML by their shape), then by the extension; anything else is CSV.
- Text encodings are tried in a fixed, strict order (see ``detect_encoding``): UTF-8 (with or
  without BOM), then GB18030, which is a superset of GBK and GB2312. No guessing library: the order
  is deterministic and every Chinese school export is one of these.
- Headers are matched to canonical columns through services/imports/vocabulary.toml (English names
  and the Chinese headers of the common library systems); headers that match nothing are returned
  in ``TableFile.unknown`` so the caller can list them.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from services.i18n import t

__all__ = [
    "FileFormat",
    "ImportFileError",
    "ImportRejected",
    "RowProblem",
    "TableFile",
    "TableRow",
    "Unit",
    "check_import_file",
    "column_words",
    "detect_encoding",
    "detect_format",
    "header_aliases",
    "listed",
    "open_table",
    "read_bytes",
    "role_words",
]

VOCABULARY = Path(__file__).with_name("vocabulary.toml")

# Undecodable UTF-8 bytes come back as lone surrogates (errors="surrogateescape").
_BROKEN_BYTES = re.compile("[\udc80-\udcff]")
_SUSPICIOUS = re.compile("[\x00\udc80-\udcff]")
# Remarks some systems append to a header: "题名(必填)", "ISBN（13位）".
_HEADER_REMARK = re.compile(r"[(（\[【].*?[)）\]】]")
_HEADER_SPACES = re.compile(r"[\s_\-·:：*]+")


class Unit(StrEnum):
    """What a problem's number counts: lines of a text file, rows of a sheet, MARC records."""

    LINE = "line"
    ROW = "row"
    RECORD = "record"


class FileFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    XLS = "xls"
    ISO2709 = "iso2709"
    MARCXML = "marcxml"


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A problem with one row: ``line`` is the line (or sheet row, or record) it starts on."""

    line: int
    reason: str
    unit: Unit = Unit.LINE

    def __str__(self) -> str:
        key = "import.record_problem" if self.unit is Unit.RECORD else "import.row_problem"
        return t(key, line=self.line, reason=self.reason)


class ImportFileError(Exception):
    """The file cannot be imported at all (missing, empty, undecodable, broken CSV or MARC)."""


class ImportRejected(Exception):
    """The file has bad rows and nothing was written."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__(t("import.rejected", count=len(self.problems)))


def listed(names: Sequence[str]) -> str:
    return t("import.list_separator").join(names)


def check_import_file(path: Path) -> None:
    """Raise ImportFileError unless ``path`` is an existing regular file.

    The importers call it themselves; the CLI calls it first too, so a typo costs no database.
    """
    if not path.exists():
        raise ImportFileError(t("import.file_missing", path=path))
    if not path.is_file():
        raise ImportFileError(t("import.not_a_file", path=path))


def read_bytes(path: Path) -> bytes:
    check_import_file(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        # Not an OSError any more: the CLI reads OSError as "database unreachable".
        raise ImportFileError(
            t("import.unreadable", path=path, reason=exc.strerror or exc)
        ) from None


# ---------------------------------------------------------------------------------------------
# Vocabulary


@cache
def _vocabulary() -> dict[str, dict[str, list[str]]]:
    with VOCABULARY.open("rb") as fh:
        return tomllib.load(fh)


def header_key(header: str) -> str:
    """The form headers are compared in: NFKC, no remarks, no spaces or separators, lower case."""
    value = unicodedata.normalize("NFKC", header).strip()
    value = _HEADER_REMARK.sub("", value) or value
    return _HEADER_SPACES.sub("", value).lower()


@cache
def header_aliases(schema: str) -> dict[str, str]:
    """Header key -> canonical column, for a schema of the vocabulary ("catalogue", "readers")."""
    aliases: dict[str, str] = {}
    for column, words in _vocabulary()[schema].items():
        for word in (column, *words):
            aliases[header_key(word)] = column
    return aliases


def column_words(schema: str) -> dict[str, list[str]]:
    """Canonical column -> the other headers accepted for it, in the vocabulary's order."""
    return {column: list(words) for column, words in _vocabulary()[schema].items()}


@cache
def role_words() -> dict[str, str]:
    """The words a roster may use for a role (lower-cased) -> the Role value."""
    return {word.lower(): role for role, words in _vocabulary()["roles"].items() for word in words}


# ---------------------------------------------------------------------------------------------
# Format and encoding


def detect_format(path: Path, head: bytes) -> FileFormat:
    """Recognise the format by content, then by extension; CSV is what is left."""
    suffix = path.suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        return FileFormat.XLSX
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return FileFormat.XLS
    # ISO 2709: a five-digit record length, then a 24-byte leader with digits where MARC wants them.
    if len(head) >= 24 and head[:5].isdigit() and head[12:17].isdigit() and b"\x1e" in head:
        return FileFormat.ISO2709
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<") and (b"<record" in head or b":record" in head or suffix == ".xml"):
        return FileFormat.MARCXML
    if suffix in {".iso", ".mrc", ".marc"}:
        return FileFormat.ISO2709
    if suffix == ".xml":
        return FileFormat.MARCXML
    if suffix in {".xlsx", ".xlsm"}:
        return FileFormat.XLSX
    # An ".xls" that is no OLE file is the tab-separated text some systems name so: read as text.
    return FileFormat.CSV


class Decoded(NamedTuple):
    text: str
    encoding: str  # "utf-8", "utf-8-sig", "utf-16" or "gb18030"


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def detect_encoding(data: bytes) -> Decoded:
    """Decode ``data`` as UTF-8 (BOM or not), else GB18030 (covers GBK and GB2312).

    UTF-16 is read only with its BOM (Excel's "Unicode 文本" export writes one).

    A file that is mostly valid UTF-8 with a few broken bytes stays UTF-8 (the broken bytes come
    back as lone surrogates, so the rows holding them are reported and nothing else is lost):
    decoding such a file as GB18030 would turn every Chinese character into mojibake. GBK text
    read as UTF-8 fails on nearly every character, so the two cases do not overlap.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return Decoded(data[3:].decode("utf-8", "surrogateescape"), "utf-8-sig")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return Decoded(data.decode("utf-16"), "utf-16")
        except UnicodeDecodeError as exc:
            line = data[: exc.start - exc.start % 2].decode("utf-16", "ignore").count("\n") + 1
            raise ImportFileError(t("import.undecodable_file", line=line)) from None
    as_utf8 = data.decode("utf-8", "surrogateescape")
    broken = len(_BROKEN_BYTES.findall(as_utf8))
    if broken == 0:
        return Decoded(as_utf8, "utf-8")
    valid = sum(1 for ch in as_utf8 if ord(ch) > 0x7F) - broken
    if valid > broken:
        return Decoded(as_utf8, "utf-8")
    try:
        return Decoded(data.decode("gb18030"), "gb18030")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            t("import.undecodable_file", line=_line_of(data, exc.start))
        ) from None


def encoding_name(encoding: str) -> str:
    return t(f"import.encoding_{encoding.replace('-', '_')}")


# ---------------------------------------------------------------------------------------------
# Tables


class TableRow(NamedTuple):
    line: int
    values: dict[str, str]  # canonical column -> cell text (absent columns are absent)
    problem: str | None  # an encoding or shape problem found while reading


@dataclass(slots=True)
class TableFile:
    """An opened file: where it came from, its header, and its rows (a one-shot iterator)."""

    source: str  # what was read, for the user: "CSV（GB18030 编码）", "Excel 工作表「名单」"
    unit: Unit
    header_line: int
    columns: tuple[str, ...]  # canonical columns the file has
    rows: Iterator[TableRow]
    unknown: tuple[str, ...] = ()  # headers that map to no column, as written
    extra: dict[str, Any] = field(default_factory=dict)


def _map_header(
    header: Sequence[str], schema: str, required: Sequence[str], header_line: int
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Canonical column -> index; unknown headers. ImportRejected on missing or doubled columns."""
    aliases = header_aliases(schema)
    columns: dict[str, int] = {}
    spellings: dict[str, list[str]] = {}
    unknown: list[str] = []
    for i, cell in enumerate(header):
        written = cell.strip()
        if not written:
            continue
        column = aliases.get(header_key(written))
        if column is None:
            unknown.append(written)
            continue
        spellings.setdefault(column, []).append(written)
        columns.setdefault(column, i)
    problems = []
    missing = [name for name in required if name not in columns]
    if missing:
        named = [
            t("import.column_named", column=name, header=_chinese(schema, name)) for name in missing
        ]
        problems.append(RowProblem(header_line, t("import.missing_columns", columns=listed(named))))
    doubled = [listed(s) for s in spellings.values() if len(s) > 1]
    if doubled:
        problems.append(
            RowProblem(
                header_line,
                t("import.duplicate_columns", columns=t("import.reason_separator").join(doubled)),
            )
        )
    if problems:
        raise ImportRejected(problems)
    return columns, tuple(unknown)


def _chinese(schema: str, column: str) -> str:
    words = [w for w in _vocabulary()[schema].get(column, []) if not w.isascii()]
    return words[0] if words else column


def open_table(
    path: Path,
    schema: str,
    required: Sequence[str],
    *,
    sheet: str | None = None,
    data: bytes | None = None,
) -> TableFile:
    """Open a CSV or Excel file whose header names the columns of ``schema``.

    ``data`` is the file's content when the caller has read it already (to sniff the format).
    """
    if data is None:
        data = read_bytes(path)
    kind = detect_format(path, data[:4096])
    if kind is FileFormat.XLS:
        raise ImportFileError(t("import.xls_unsupported"))
    if kind is FileFormat.XLSX:
        return _open_xlsx(path, data, schema, required, sheet)
    if kind in (FileFormat.ISO2709, FileFormat.MARCXML):
        raise ImportFileError(t("import.marc_not_here"))
    if sheet is not None:
        raise ImportFileError(t("import.sheet_not_excel"))
    return _open_csv(path, data, schema, required)


def _table_row(line: int, fields: list[str], columns: dict[str, int], width: int) -> TableRow:
    """A row's cells by canonical column, and the problem its shape or bytes show, if any."""
    problem = None
    if len(fields) > width and any(cell.strip() for cell in fields[width:]):
        problem = t("import.too_many_fields", fields=len(fields), width=width)
    else:
        suspicious = _SUSPICIOUS.search("\x1f".join(fields))
        if suspicious and _BROKEN_BYTES.match(suspicious.group()):
            problem = t("import.undecodable")
        elif suspicious:
            problem = t("import.nul")
    values = {name: fields[i] if i < len(fields) else "" for name, i in columns.items()}
    return TableRow(line, values, problem)


def _delimiter(text: str) -> str:
    """Comma, or tab for the tab-separated text some systems (and Excel's "Unicode 文本") write."""
    first = next((line for line in text[:10_000].splitlines() if line.strip()), "")
    return "\t" if first.count("\t") > first.count(",") else ","


def _open_csv(path: Path, data: bytes, schema: str, required: Sequence[str]) -> TableFile:
    decoded = detect_encoding(data)
    reader = csv.reader(io.StringIO(decoded.text, newline=""), delimiter=_delimiter(decoded.text))
    try:
        header: list[str] = []
        while not any(cell.strip() for cell in header):
            header = next(reader)
    except StopIteration:
        raise ImportFileError(t("import.empty_file", path=path)) from None
    except csv.Error as exc:
        raise ImportFileError(t("import.csv_error", line=reader.line_num, error=exc)) from None
    header_line = reader.line_num
    if _SUSPICIOUS.search("".join(header)):
        raise ImportFileError(t("import.undecodable_file", line=header_line))
    columns, unknown = _map_header(header, schema, required, header_line)
    width = len(header)

    def rows() -> Iterator[TableRow]:
        previous = reader.line_num
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # The reader's state is unreliable after this: stop the whole file.
                raise ImportFileError(
                    t("import.csv_error_aborted", line=previous + 1, error=exc)
                ) from None
            line, previous = previous + 1, reader.line_num
            if any(cell.strip() for cell in fields):  # else a blank line
                yield _table_row(line, fields, columns, width)

    source = t("import.source_csv", encoding=encoding_name(decoded.encoding))
    return TableFile(source, Unit.LINE, header_line, tuple(columns), rows(), unknown)


def cell_text(value: object) -> str:
    """An Excel cell as the text a CSV export would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        # ISBNs, card numbers and barcodes typed as numbers: 9787536692930.0 is 9787536692930.
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _open_xlsx(
    path: Path, data: bytes, schema: str, required: Sequence[str], sheet: str | None
) -> TableFile:
    from openpyxl import load_workbook  # only Excel imports pay for it

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(t("import.xlsx_broken", path=path, error=exc)) from None
    if sheet is None:
        worksheet = book.worksheets[0]
    elif sheet in book.sheetnames:
        worksheet = book[sheet]
    else:
        raise ImportFileError(
            t("import.sheet_missing", sheet=sheet, sheets=listed(book.sheetnames))
        )
    cells = worksheet.iter_rows(values_only=True)
    header: list[str] = []
    header_line = 0
    for values in cells:
        header_line += 1
        header = [cell_text(v).strip() for v in values]
        if any(header):
            break
    if not any(header):
        raise ImportFileError(t("import.empty_sheet", sheet=worksheet.title))
    columns, unknown = _map_header(header, schema, required, header_line)
    width = len(header)

    def rows() -> Iterator[TableRow]:
        line = header_line
        for values in cells:
            line += 1
            fields = [cell_text(v) for v in values]
            if any(cell.strip() for cell in fields):
                yield _table_row(line, fields, columns, width)
        book.close()

    source = t("import.source_xlsx", sheet=worksheet.title)
    return TableFile(source, Unit.ROW, header_line, tuple(columns), rows(), unknown)


def problems_by_line(by_line: dict[int, list[str]], unit: Unit = Unit.LINE) -> list[RowProblem]:
    """A file's problems, one per line (or row, or record), in order, reasons joined."""
    separator = t("import.reason_separator")
    return [
        RowProblem(line, separator.join(reasons), unit) for line, reasons in sorted(by_line.items())
    ]
