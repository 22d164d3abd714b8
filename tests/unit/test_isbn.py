"""ISBN normalisation: checksums, spellings people actually type, 10 -> 13 conversion."""

from __future__ import annotations

import pytest

from nlp.isbn import isbn10_to_13, looks_like_isbn, normalize_isbn


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9787536692930", "9787536692930"),  # 三体, plain ISBN-13
        ("978-7-5366-9293-0", "9787536692930"),
        ("978 7 5366 9293 0", "9787536692930"),
        ("  9787536692930\n", "9787536692930"),
        ("９７８７５３６６９２９３０", "9787536692930"),  # full-width digits
        ("９７８－７－５３６６－９２９３－０", "9787536692930"),  # full-width hyphens
        ("978\u30007\u30005366\u30009293\u30000", "9787536692930"),  # ideographic spaces
        ("978–7–5366–9293–0", "9787536692930"),  # en dashes
        ("ISBN 978-7-5366-9293-0", "9787536692930"),
        ("ISBN-13: 9787536692930", "9787536692930"),
        ("isbn：9787536692930", "9787536692930"),
        ("9791032305690", "9791032305690"),  # 979 prefix
        ("7536692935", "9787536692930"),  # ISBN-10 -> 13
        ("7-5366-9293-5", "9787536692930"),
        ("7-02-004249-X", "9787020042494"),  # X check digit
        ("702004249x", "9787020042494"),  # lower-case x
        ("７０２００４２４９Ｘ", "9787020042494"),  # full-width X
        ("0-306-40615-2", "9780306406157"),
        ("080442957X", "9780804429573"),
    ],
)
def test_valid_isbns_normalise_to_isbn13(text: str, expected: str) -> None:
    assert normalize_isbn(text) == expected
    assert looks_like_isbn(text)


@pytest.mark.parametrize(
    "text",
    [
        "9787536692931",  # wrong ISBN-13 check digit
        "978-7-5366-9293-9",
        "7536692936",  # wrong ISBN-10 check digit
        "7-02-004249-1",
        "0306406153",
    ],
)
def test_bad_check_digit_is_rejected_but_still_looks_like_an_isbn(text: str) -> None:
    assert normalize_isbn(text) is None
    assert looks_like_isbn(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "三体",
        "12345",
        "978753669293",  # 12 digits
        "97875366929300",  # 14 digits
        "1234567890123",  # 13 digits without the 978/979 prefix
        "X306406152",  # X is only allowed as the last ISBN-10 character
        "03064061X2",
        "9787536692930X",
        "978-7-5366-9293-0 三体",
    ],
)
def test_not_an_isbn(text: str) -> None:
    assert normalize_isbn(text) is None
    assert not looks_like_isbn(text)


@pytest.mark.parametrize(
    ("isbn10", "isbn13"),
    [
        ("7536692935", "9787536692930"),
        ("7-02-004249-X", "9787020042494"),
        ("0-306-40615-2", "9780306406157"),
        ("080442957X", "9780804429573"),
    ],
)
def test_isbn10_to_13(isbn10: str, isbn13: str) -> None:
    assert isbn10_to_13(isbn10) == isbn13
    assert normalize_isbn(isbn13) == isbn13


@pytest.mark.parametrize("text", ["7536692936", "9787536692930", "abc", ""])
def test_isbn10_to_13_rejects_anything_but_a_valid_isbn10(text: str) -> None:
    with pytest.raises(ValueError):
        isbn10_to_13(text)
