"""Recognisers that run before free-text search."""

from __future__ import annotations

import pytest

from nlp.recognise import (
    Recognised,
    call_number,
    clc_class,
    isbn13,
    looks_like_isbn,
    normalize_call_number,
    recognise,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9787544270878", "9787544270878"),
        ("978-7-5442-7087-8", "9787544270878"),
        ("978 7 5442 7087 8", "9787544270878"),
        ("ISBN 978-7-5442-7087-8", "9787544270878"),
        ("isbn:9787544270878", "9787544270878"),
        ("９７８７５４４２７０８７８", "9787544270878"),
        ("ISBN ９７８－７５４４２７０８７８", "9787544270878"),
        ("7544270874", "9787544270878"),  # ISBN-10
        ("7-5442-7087-4", "9787544270878"),
        ("754427005X", "9787544270052"),  # ISBN-10 with X
        ("754427005x", "9787544270052"),
        ("７５４４２７００５Ｘ", "9787544270052"),
        ("9787544270879", None),  # wrong check digit
        ("7544270875", None),
        ("978754427087", None),  # 12 digits
        ("解忧杂货店", None),
        ("", None),
        (None, None),
    ],
)
def test_isbn13(text: str | None, expected: str | None) -> None:
    assert isbn13(text) == expected


def test_looks_like_isbn_ignores_the_check_digit() -> None:
    assert looks_like_isbn("9787544270879")
    assert looks_like_isbn("754427005X")
    assert not looks_like_isbn("12345")
    assert not looks_like_isbn("97875442708789")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I247.5/S77", "I247.5/S77"),
        ("i247.5/s77", "I247.5/S77"),
        (" I712.45 / H52 ", "I712.45/H52"),
        ("H319.4:I/S51:1", "H319.4:I/S51:1"),
        ("I247.57/X567-4(2)", "I247.57/X567-4(2)"),
        ("I267/S13=1", "I267/S13=1"),
        ("TU-0/A21", "TU-0/A21"),
        ("I521.45/C84-3#1", "I521.45/C84-3#1"),
        ("TP316.89/N38(2)", "TP316.89/N38(2)"),
        ("I247.5", None),
        ("解忧/杂货店", None),
        ("and/or", None),
    ],
)
def test_call_number(text: str, expected: str | None) -> None:
    assert call_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I247.5", "I247.5"),
        ("TP3", "TP3"),
        ("tp3", "TP3"),
        ("TP312", "TP312"),
        ("K2", "K2"),
        ("O4-0", "O4-0"),
        ("TU-0", "TU-0"),
        ("I", None),  # a single letter is a word, not a class
        ("TP", None),
        ("ABC", None),
        ("TV", None),
        ("L1", None),  # no class L
        ("X-ray", None),
        ("3D", None),
        ("I247.5/S77", None),
    ],
)
def test_clc_class(text: str, expected: str | None) -> None:
    assert clc_class(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("978-7-5442-7087-8", Recognised("isbn", "9787544270878")),
        ("9787544270879", Recognised("isbn", "")),  # ISBN-shaped, check digit wrong
        ("I247.5/S77", Recognised("call_number", "I247.5/S77")),
        ("TP3", Recognised("clc", "TP3")),
        ("解忧杂货店", None),
        ("hlm", None),
        ("ABC", None),
        ("x" * 500, None),
    ],
)
def test_recognise(text: str, expected: Recognised | None) -> None:
    assert recognise(text) == expected


def test_normalize_call_number() -> None:
    assert normalize_call_number("ｉ２４７.５／ｓ７７") == "I247.5/S77"
    assert normalize_call_number(None) == ""
