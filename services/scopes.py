"""The school's own grades and classes, and which of them a typed name means.

Every command that takes a grade or a class (the CLI and the chat alike) resolves it here against
the classes and grades the roster actually has, so that a name the school does not have is
refused with what it does have (or the closest match) instead of an empty, confident answer.
初二3班, 初二(3)班, 初二（3）班 and 初二 3 班 are one class; 高三 and 高三年级 one grade.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.codes import clean_code
from services.errors import ServiceError
from services.i18n import t
from storage.models import ClassCorner, ClassMonitor, Copy, Reader

# School order: junior forms, then senior forms.
GRADE_ORDER = ("初一", "初二", "初三", "高一", "高二", "高三")
# How many names a refusal lists before "…" (a school has dozens of classes).
MAX_NAMED = 12


class ScopeKind(StrEnum):
    GRADE = "grade"
    CLASS = "class"


@dataclass(frozen=True, slots=True)
class NamedScope:
    kind: ScopeKind
    name: str  # as the roster spells it


def class_key(text: str) -> str:
    """初二(3)班, 初二（3）班, 初二 3 班 and 初二3班 are one class."""
    return re.sub(r"[\s()]", "", unicodedata.normalize("NFKC", text)).upper()


def grade_key(text: str) -> str:
    """高三, 高三年级 and ' 高三 ' are one grade."""
    key = re.sub(r"\s", "", unicodedata.normalize("NFKC", text))
    return key.removesuffix("年级").upper()


def _grade_rank(grade: str) -> tuple[int, str]:
    key = grade_key(grade)
    for rank, known in enumerate(GRADE_ORDER):
        if key.startswith(known):
            return rank, key
    return len(GRADE_ORDER), key


def school_order(class_or_grade: str) -> tuple[int, str, int, str]:
    """Sort key: 初一…初三, 高一…高三, then the class number (2班 before 10班)."""
    rank, key = _grade_rank(class_or_grade)
    number = re.search(r"\d+", unicodedata.normalize("NFKC", class_or_grade))
    return rank, key if rank == len(GRADE_ORDER) else "", int(number[0]) if number else 0, key


async def school_classes(session: AsyncSession) -> list[str]:
    """The classes of the school: those its readers are in, and those with a corner or a monitor
    (a class whose students have left may still have books in its corner)."""
    names: set[str] = set()
    for column in (Reader.class_name, ClassCorner.class_name, ClassMonitor.class_name):
        names.update(n for n in await session.scalars(select(column).distinct()) if n)
    return sorted(names, key=school_order)


async def school_grades(session: AsyncSession) -> list[str]:
    names = {g for g in await session.scalars(select(Reader.grade).distinct()) if g}
    return sorted(names, key=school_order)


def _named(names: list[str]) -> str:
    shown = t("scopes.separator").join(names[:MAX_NAMED])
    return shown + (
        t("scopes.more", count=len(names) - MAX_NAMED) if len(names) > MAX_NAMED else ""
    )


def closest(text: str, names: Iterable[str], key: Callable[[str], str] = class_key) -> list[str]:
    """The names most like ``text`` (a typo, a missing 班), best first; at most three."""
    keyed = {key(n): n for n in names}
    hits = difflib.get_close_matches(key(text), list(keyed), n=3, cutoff=0.5)
    return [keyed[h] for h in hits]


def _same_grade(text: str, classes: list[str], grades: list[str]) -> list[str]:
    """The school's classes of the grade ``text`` starts with (初二(9)班 → 初二's classes)."""
    key = class_key(text)
    grade = next((g for g in grades if key.startswith(grade_key(g))), None)
    return [c for c in classes if grade is not None and class_key(c).startswith(grade_key(grade))]


def _class_refusal(text: str, classes: list[str], grades: list[str]) -> ServiceError:
    """Names the classes of the grade typed; else the closest of many; else all of them."""
    if not classes:
        return ServiceError("scopes.unknown_class_none", name=text)
    same = _same_grade(text, classes, grades)
    if same:
        return ServiceError("scopes.unknown_class_in_grade", name=text, known=_named(same))
    near = closest(text, classes) if len(classes) > MAX_NAMED else []
    if near:
        return ServiceError("scopes.unknown_class_near", name=text, near=_named(near))
    return ServiceError("scopes.unknown_class", name=text, known=_named(classes))


def _match_class(text: str, classes: list[str]) -> str | None:
    wanted = class_key(text)
    hits = [c for c in classes if class_key(c) == wanted]
    if not hits and not wanted.endswith("班"):
        hits = [c for c in classes if class_key(c) == wanted + "班"]
    return hits[0] if hits else None


def _match_grade(text: str, grades: list[str]) -> str | None:
    wanted = grade_key(text)
    return next((g for g in grades if grade_key(g) == wanted), None)


async def find_class(session: AsyncSession, text: str) -> str | None:
    """The roster's spelling of the class ``text`` names, or None."""
    return _match_class(text, await school_classes(session))


async def resolve_class(session: AsyncSession, text: str) -> str:
    """The roster's spelling of the class ``text`` names; refuses a class the school lacks."""
    if not text.strip():
        raise ServiceError("corners.bad_class")
    classes = await school_classes(session)
    found = _match_class(text, classes)
    if found is None:
        if _match_grade(text, await school_grades(session)) is not None:
            raise ServiceError(
                "scopes.grade_not_class",
                name=text.strip(),
                known=_named([c for c in classes if grade_key(c).startswith(grade_key(text))]),
            )
        raise _class_refusal(text.strip(), classes, await school_grades(session))
    return found


async def resolve_grade(session: AsyncSession, text: str) -> str:
    """The roster's spelling of the grade ``text`` names; refuses a grade the school lacks, and
    a class typed where a grade was asked for."""
    grades = await school_grades(session)
    found = _match_grade(text, grades)
    if found is None:
        if _match_class(text, await school_classes(session)) is not None:
            raise ServiceError("scopes.class_not_grade", name=text.strip(), known=_named(grades))
        if not grades:
            raise ServiceError("scopes.unknown_grade_none", name=text.strip())
        raise ServiceError("scopes.unknown_grade", name=text.strip(), known=_named(grades))
    return found


async def resolve_grade_or_class(session: AsyncSession, text: str) -> NamedScope:
    """A class if ``text`` names one of the school's classes, else a grade it has; else refused
    with both lists (or the closest names)."""
    classes = await school_classes(session)
    found = _match_class(text, classes)
    if found is not None:
        return NamedScope(ScopeKind.CLASS, found)
    grades = await school_grades(session)
    grade = _match_grade(text, grades)
    if grade is not None:
        return NamedScope(ScopeKind.GRADE, grade)
    name = text.strip()
    if not classes and not grades:
        raise ServiceError("scopes.unknown_scope_none", name=name)
    same = _same_grade(text, classes, grades)
    if same:
        raise ServiceError("scopes.unknown_class_in_grade", name=name, known=_named(same))
    raise ServiceError(
        "scopes.unknown_scope", name=name, grades=_named(grades), classes=_named(classes)
    )


# A typo in a card number or a barcode: one or two characters off (J24109 for J24101).
NEAR_CODE = 0.75
# Barcodes compared with a typed one: those sharing its start (a library has 200k of them).
MAX_BARCODE_CANDIDATES = 2000


def _nearest_codes(code: str, candidates: list[str]) -> list[str]:
    """At most three codes like ``code``: the most alike first, and of those the ones that
    start most like it (SX1001 → SX10001 before SX10401)."""
    scored = []
    for candidate in candidates:
        ratio = difflib.SequenceMatcher(None, code, candidate).ratio()
        if ratio >= NEAR_CODE:
            same_start = next(
                (i for i, (a, b) in enumerate(zip(code, candidate, strict=False)) if a != b),
                min(len(code), len(candidate)),
            )
            scored.append((-ratio, -same_start, candidate))
    return [candidate for *_, candidate in sorted(scored)[:3]]


async def near_cards(session: AsyncSession, card_no: str) -> list[str]:
    """The card numbers most like ``card_no``, best first (at most three)."""
    cards = list(await session.scalars(select(Reader.card_no)))
    return _nearest_codes(clean_code(card_no), cards)


async def near_barcodes(session: AsyncSession, barcode: str) -> list[str]:
    """The barcodes most like ``barcode`` among those that start as it does."""
    code = clean_code(barcode)
    if len(code) < 3:
        return []
    prefix = code[: max(2, len(code) - 3)]
    candidates = list(
        await session.scalars(
            select(Copy.barcode)
            .where(Copy.barcode.startswith(prefix, autoescape=True))
            .limit(MAX_BARCODE_CANDIDATES)
        )
    )
    return _nearest_codes(code, candidates)


def named(names: list[str]) -> str:
    """Names in a refusal: 甲、乙、丙 (and how many more)."""
    return _named(names)


async def resolve_card(session: AsyncSession, card_no: str) -> Reader:
    """The reader with this card number (any case or width); refused with the closest numbers."""
    from services.circulation import find_reader_by_card

    reader = await find_reader_by_card(session, card_no)
    if reader is not None:
        return reader
    wanted = card_no.strip()
    near = await near_cards(session, wanted)
    if near:
        raise ServiceError("scopes.unknown_card_near", card_no=wanted, near=_named(near))
    raise ServiceError("scopes.unknown_card", card_no=wanted)


async def why_no_reader(session: AsyncSession, query: str) -> ServiceError | None:
    """Why a desk lookup (card, name, name + class) found nobody, when the words say more than
    "not found": a class the school does not have, or a card number one keystroke off."""
    text = unicodedata.normalize("NFKC", query).strip()
    classes = [tok for tok in text.split() if any(ch.isdigit() or ch in "班()" for ch in tok)]
    if len(text.split()) > 1 and classes:
        try:
            await resolve_class(session, "".join(classes))
        except ServiceError as refused:
            return refused
    if text.isascii() and text:
        near = await near_cards(session, text)
        if near:
            return ServiceError("scopes.unknown_card_near", card_no=text, near=_named(near))
    return None
