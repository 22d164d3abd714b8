"""Presentation of the statistics: charts (PNG), tables (CSV, xlsx) and the PDF report.

No aiogram here: the bot sends the PNGs, the CLI writes the files. matplotlib and fpdf2 are
imported lazily, so commands that never draw do not pay for them."""
