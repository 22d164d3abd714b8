"""The project's own sample data: a small middle-school catalogue and a roster of invented names.

Used by ``shuxiang demo`` and the tests; the formats are those of ``shuxiang import``.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

CATALOGUE_CSV: Path = _HERE / "catalogue.csv"
READERS_CSV: Path = _HERE / "readers.csv"
