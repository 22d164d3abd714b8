"""The term report's numbers: every figure once (figures.py), 读书之星 (stars.py), the PDF/CSV
report and its charts (reports/)."""
