"""Search index tables (filled by nlp/index.py, read by nlp/search.py).

They live in the shared SQL store so every bot process searches one index, on SQLite and
PostgreSQL alike, and stay in step with the records inside the same transactions.

- ``search_terms``: an inverted index. One row per (term, record); ``fields`` is a bit mask of the
  fields the term occurs in (title, author, ...). Terms are character bigrams of Chinese text
  and whole words of Latin text, so lookups are equality only.
- ``search_keys``: whole-string keys for exact and prefix lookups by range scan: normalised
  title, its pinyin and initials, author names, series, original title, ISBN, call number, CLC.
  Keys compare in code-point order on both databases (PostgreSQL gets the "C" collation), which
  makes ``key >= p AND key < p⁺`` a correct prefix scan that uses the primary key.

No foreign keys: the index is derived data, and with them SQLite deletes a million rows one
by one (10 s instead of 0.1 s for a rebuild). ``nlp.index.index_records`` drops the rows of records
that no longer exist, always deletes a record's rows before writing them (so a reused SQLite rowid
never inherits old terms), and search ignores rows whose record is gone.

- ``search_meta``: facts about the index as a whole; ``version`` is the ``nlp.index.INDEX_VERSION``
  of the code that last rebuilt it, so a newer Shuxiang that indexes differently rebuilds an
  index it did not write instead of searching it with keys it lacks.

Both are clustered on their primary key in SQLite (WITHOUT ROWID): the lookups read one
contiguous range and the tables are about half the size.
"""

from __future__ import annotations

from sqlalchemy import Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

__all__ = ["KEY_LENGTH", "TERM_LENGTH", "SearchKey", "SearchMeta", "SearchTerm"]

KEY_LENGTH = 200
TERM_LENGTH = 40


def _binary_string(length: int) -> String:
    # Code-point ordering: SQLite's default BINARY collation already is; PostgreSQL needs "C".
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class SearchTerm(Base):
    __tablename__ = "search_terms"
    __table_args__ = (
        Index("ix_search_terms_record_pk", "record_pk"),
        {"sqlite_with_rowid": False},
    )

    term: Mapped[str] = mapped_column(_binary_string(TERM_LENGTH), primary_key=True)
    record_pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    fields: Mapped[int] = mapped_column(SmallInteger)


class SearchKey(Base):
    __tablename__ = "search_keys"
    __table_args__ = (
        # Covering: a candidate's title key is read from the index alone (migration 0008).
        Index("ix_search_keys_record_kind_key", "record_pk", "kind", "key"),
        {"sqlite_with_rowid": False},
    )

    # One letter: see nlp.index.KeyKind.
    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    key: Mapped[str] = mapped_column(_binary_string(KEY_LENGTH), primary_key=True)
    record_pk: Mapped[int] = mapped_column(Integer, primary_key=True)


class SearchMeta(Base):
    __tablename__ = "search_meta"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
