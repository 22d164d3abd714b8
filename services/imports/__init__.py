"""Everything a school brings from its old systems: catalogue and roster (catalogue.py), the file
reader behind them (files.py, rows.py, marc.py), loan history (loan_history.py) and the school
calendar (calendar.py)."""
