"""The shared resolver of grades, classes and cards (services/scopes.py), on both databases."""

from __future__ import annotations

import pytest

from services import scopes
from services.errors import ServiceError
from storage.db import Database
from storage.models import Reader

ROSTER = [
    ("S1", "高一", "高一(1)班"),
    ("S2", "初二", "初二(10)班"),
    ("S3", "初二", "初二(3)班"),
    ("S4", "初一", "初一(2)班"),
    ("J24101", "初二", "初二(3)班"),
]


async def _roster(db: Database) -> None:
    async with db.transaction() as s:
        for card, grade, klass in ROSTER:
            s.add(Reader(card_no=card, name=card, role="student", grade=grade, class_name=klass))


async def _refusal(coro: object) -> ServiceError:
    with pytest.raises(ServiceError) as err:
        await coro  # type: ignore[misc]
    return err.value


async def test_resolves_the_usual_spellings_and_refuses_the_rest(db: Database) -> None:
    await _roster(db)
    async with db.transaction(read_only=True) as s:
        # School order: 初一 … 初三, 高一 …; then the class number (3班 before 10班).
        assert await scopes.school_classes(s) == [
            "初一(2)班",
            "初二(3)班",
            "初二(10)班",
            "高一(1)班",
        ]
        assert await scopes.school_grades(s) == ["初一", "初二", "高一"]
        for typed in ("初二3班", "初二(3)班", "初二（3）班", " 初二 3 班 ", "初二3"):
            assert await scopes.resolve_class(s, typed) == "初二(3)班", typed
        assert await scopes.resolve_grade(s, "初二年级") == "初二"
        found = await scopes.resolve_grade_or_class(s, "高一（1）班")
        assert (found.kind, found.name) == (scopes.ScopeKind.CLASS, "高一(1)班")
        found = await scopes.resolve_grade_or_class(s, "初一")
        assert (found.kind, found.name) == (scopes.ScopeKind.GRADE, "初一")

        unknown = await _refusal(scopes.resolve_grade(s, "高三"))
        assert unknown.key == "scopes.unknown_grade"
        assert "初一、初二、高一" in unknown.render()
        wrong_kind = await _refusal(scopes.resolve_grade(s, "初二3班"))
        assert wrong_kind.key == "scopes.class_not_grade" and "初二" in wrong_kind.render()
        grade = await _refusal(scopes.resolve_class(s, "初二"))
        assert grade.key == "scopes.grade_not_class"
        assert "初二(3)班、初二(10)班" in grade.render()
        near = await _refusal(scopes.resolve_class(s, "初二(4)班"))
        assert near.key == "scopes.unknown_class_in_grade"
        assert "初二(3)班、初二(10)班" in near.render()  # the classes of that grade
        other = await _refusal(scopes.resolve_class(s, "高三(1)班"))
        assert other.key == "scopes.unknown_class" and "初一(2)班" in other.render()
        far = await _refusal(scopes.resolve_grade_or_class(s, "教工"))
        assert far.key == "scopes.unknown_scope" and "高一(1)班" in far.render()
        assert (await scopes.resolve_card(s, " j24101 ")).card_no == "J24101"
        card = await _refusal(scopes.resolve_card(s, "J24109"))
        assert card.key == "scopes.unknown_card_near" and "J24101" in card.render()


async def test_an_empty_roster_says_to_import_it(db: Database) -> None:
    async with db.transaction(read_only=True) as s:
        empty = await _refusal(scopes.resolve_class(s, "初二(3)班"))
    assert empty.key == "scopes.unknown_class_none" and "import readers" in empty.render()
