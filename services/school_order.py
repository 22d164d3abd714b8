"""The school's order of grades and classes: 初一, 初二, 初三, 高一, 高二, 高三, then the class
number (初二(3)班 before 初二(10)班). One sort key for every list that shows grades or classes —
the statistics and reports, the command line, the chat, the class corners — so that no list says
高一, 高三, 高二 because it sorted names as text.

Grades are recognised by their usual names (七年级 is 初一, 高中一年级 is 高一, primary
grades 一年级 to 六年级 come first); a grade the school names differently sorts after the known
ones, by name. Readers without a grade or class sort last."""

from __future__ import annotations

import re
import unicodedata

# Input vocabulary (how schools name grades), not messages.
NUMERALS = "一二三四五六七八九"
JUNIOR, SENIOR, MIDDLE, GRADE_WORD = "初", "高", "中", "年级"
_DIGITS = {ch: n for n, ch in enumerate(NUMERALS, start=1)}
# (pattern, rank of the grade before its first): 初一 → 7 … 高三 → 12; 一年级 → 1 … 九年级 → 9.
_GRADE_PATTERNS = (
    (re.compile(f"^{JUNIOR}{MIDDLE}?([{NUMERALS[:3]}])"), 6),
    (re.compile(f"^{SENIOR}{MIDDLE}?([{NUMERALS[:3]}])"), 9),
    (re.compile(f"^([{NUMERALS}]){GRADE_WORD}"), 0),
)
UNKNOWN_GRADE = 100
_NUMBER = re.compile(r"\d+")


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def grade_rank(grade: str | None) -> int:
    """初一 7 … 高三 12 (一年级 1 … 六年级 6); an unknown grade ``UNKNOWN_GRADE``; none last."""
    if not grade:
        return UNKNOWN_GRADE + 1
    text = _normal(grade)
    for pattern, base in _GRADE_PATTERNS:
        found = pattern.match(text)
        if found:
            return base + _DIGITS[found.group(1)]
    return UNKNOWN_GRADE


def grade_key(grade: str | None) -> tuple[int, str]:
    """Sort key of a grade name in the school's order."""
    return grade_rank(grade), _normal(grade or "")


def class_key(class_name: str | None) -> tuple[int, str, int, str]:
    """Sort key of a class name: its grade in the school's order, then its number as a number
    (高一(2)班 before 高一(10)班), then the name; no class last."""
    if not class_name:
        return UNKNOWN_GRADE + 1, "", 0, ""
    text = _normal(class_name)
    number = _NUMBER.search(text)
    prefix = text[: number.start()] if number else text
    grade = re.split(r"[(\s]", prefix, maxsplit=1)[0]
    rank = grade_rank(grade)
    return rank, grade if rank == UNKNOWN_GRADE else "", int(number.group()) if number else 0, text


def group_key(name: str | None) -> tuple[int, str, int, str]:
    """A grade or a class in one list (grades before their classes)."""
    if name and _NUMBER.search(_normal(name)):
        return class_key(name)
    rank, text = grade_key(name)
    return rank, text if rank == UNKNOWN_GRADE else "", -1, text
