"""The school's order of grades and classes (issue 19 item 5): one key for every list."""

from __future__ import annotations

import random

from services.school_order import class_key, grade_key, group_key

GRADES = ["初一", "初二", "初三", "高一", "高二", "高三"]
CLASSES = [
    "初一(1)班",
    "初一(2)班",
    "初一(10)班",
    "初二(3)班",
    "初三(1)班",
    "高一(2)班",
    "高一（9）班",
    "高一(10)班",
    "高二(1)班",
    "高三(1)班",
    "高三(12)班",
]


def test_grades_and_classes_sort_in_the_school_order() -> None:
    shuffled = GRADES[::-1]
    assert sorted(shuffled, key=grade_key) == GRADES
    # Text order would say 高一, 高三, 高二 and put (10) before (2).
    assert sorted(["高一", "高三", "高二"]) == ["高一", "高三", "高二"]
    for seed in range(5):
        mixed = CLASSES[:]
        random.Random(seed).shuffle(mixed)
        assert sorted(mixed, key=class_key) == CLASSES


def test_other_spellings_and_unknown_names() -> None:
    assert grade_key("七年级") < grade_key("初二") < grade_key("九年级") < grade_key("高一")
    assert sorted(["高中二年级", "高中一年级"], key=grade_key) == ["高中一年级", "高中二年级"]
    assert class_key("初二3班") < class_key("初二(10)班")
    # Unknown grades after the known ones, readers without a class last.
    names = [None, "国际部(1)班", "高三(1)班", "初一(1)班"]
    assert sorted(names, key=class_key) == ["初一(1)班", "高三(1)班", "国际部(1)班", None]
    # A grade comes before its own classes in a list that mixes them (读书之星).
    mixed = ["高一(2)班", "高二", "高一", "初三(1)班", "初三"]
    assert sorted(mixed, key=group_key) == ["初三", "初三(1)班", "高一", "高一(2)班", "高二"]
