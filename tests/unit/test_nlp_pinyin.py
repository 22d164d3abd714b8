"""Pinyin and initials keys."""

from __future__ import annotations

import pytest

from nlp.normalize import normalize
from nlp.pinyin import Pinyin, fuzzy_pinyin, initials_of, strip_tones

_PINYIN = Pinyin()
pinyin_keys = _PINYIN.keys
syllables = _PINYIN.syllables
query_pinyin = _PINYIN.compact


@pytest.mark.parametrize(
    ("title", "full", "initials"),
    [
        ("解忧杂货店", "jieyouzahuodian", "jyzhd"),
        ("红楼梦", "hongloumeng", "hlm"),
        ("追风筝的人", "zhuifengzhengderen", "zfzdr"),
        ("重庆森林", "chongqingsenlin", "cqsl"),  # phrase-aware reading of 重
        ("银行家", "yinhangjia", "yhj"),
        ("茅山后裔4", "maoshanhouyi4", "mshy4"),
        ("Java设计模式", "javashejimoshi", "jsjms"),
    ],
)
def test_title_keys(title: str, full: str, initials: str) -> None:
    fulls, abbrevs = pinyin_keys(normalize(title))
    assert fulls[0] == full
    assert abbrevs[0] == initials


def test_heteronyms_are_capped_at_two_readings() -> None:
    fulls, abbrevs = pinyin_keys(normalize("重庆银行长乐行"))
    assert 1 <= len(fulls) <= 2
    assert 1 <= len(abbrevs) <= 2


def test_character_default_reading_is_kept_when_different() -> None:
    fulls, _ = pinyin_keys("重庆")
    assert fulls == ["chongqing", "zhongqing"]


def test_no_keys_without_han() -> None:
    assert pinyin_keys("the kite runner") == ([], [])


def test_syllables_and_initials() -> None:
    assert syllables("解忧 杂货店") == ["jie", "you", "za", "huo", "dian"]
    assert initials_of(["hong", "lou", "meng", "2012"]) == "hlm2012"
    assert query_pinyin("解优杂货店") == "jieyouzahuodian"


@pytest.mark.parametrize(
    ("typed", "plain"),
    [
        ("hong2lou2meng4", "hongloumeng"),
        ("lv4", "lv"),
        ("hóng lóu mèng", "hong lou meng"),
        ("lǜ", "lv"),
        ("java8", "java8"),  # not pinyin-shaped: digits stay
        ("hongloumeng", "hongloumeng"),
    ],
)
def test_tones_are_dropped_from_typed_pinyin(typed: str, plain: str) -> None:
    assert strip_tones(typed) == plain


def test_fuzzy_pinyin_folds_the_usual_slips() -> None:
    # 森村 (sen cun) vs 深村 / 生存: s/sh and en/eng fold together.
    assert fuzzy_pinyin("sengcunzhihui") == fuzzy_pinyin("senchunzihui")
    assert fuzzy_pinyin("niulang") == fuzzy_pinyin("liulan")
    assert fuzzy_pinyin("fuhuo") == fuzzy_pinyin("huhuo")
    assert fuzzy_pinyin("lv") == fuzzy_pinyin("lu")
    assert fuzzy_pinyin("hongloumeng") != fuzzy_pinyin("hongloumao")
