"""Every terminal command that takes a grade, class or card refuses one the school does not
have, names what it has (or the closest), and exits non-zero (issue 19, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import cli as run
from tests.factories import sample_school


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return sample_school(tmp_path / "scopes.sqlite3", bot_username="shuxiang_demo_bot")


def test_unknown_scopes_are_refused_everywhere(env: dict[str, str], tmp_path: Path) -> None:
    refused = {
        # the examples
        ("clearance", "--grade", "高三"): "本校没有年级「高三」",
        ("clearance", "--grade", "初二3班"): "是一个班级",
        ("corners", "status", "--class", "初二(9)班"): "本校没有班级「初二(9)班」",
        ("readers", "codes", "--class", "初二(2)班", "--out", str(tmp_path / "c.csv")): "初二(1)班",
        # and their siblings
        ("clearance", "--card", "J24199"): "找不到证号为 J24199 的读者",
        ("corners", "batch", "--class", "高三(1)班", "--propose", "3"): "本校没有班级",
        ("corners", "monitor", "list", "--class", "高二(1)班"): "本校没有班级",
        ("corners", "monitor", "add", "J24101", "--class", "初三(1)班"): "本校没有班级",
        ("report", "--scope", "高三", "--out", str(tmp_path / "r")): "本校没有班级或年级「高三」",
        ("lists", "send", "书单", "--grade", "高三"): "本校没有年级「高三」",
        # a card or barcode one keystroke off: the one meant
        ("circ", "checkout", "J2410", "SX10001"): "找不到证号为 J2410 的读者。你是不是要找：J24101",
        ("circ", "return", "SX1001"): "找不到条码为 SX1001 的图书。你是不是要找：SX10010",
    }
    assert run(["lists", "create", "书单"], env)[0] == 0
    for args, says in refused.items():
        code, text = run(list(args), env)
        assert code != 0 and says in text, (args, code, text)
        assert "全部清还完毕" not in text and "没有在册" not in text
    # What the school has is named: every class of the grade, or the closest.
    text = run(["clearance", "--grade", "高三"], env)[1]
    assert "初二、高一" in text
    assert "初二(1)班" in run(["corners", "status", "--class", "初二(9)班"], env)[1]
    assert not (tmp_path / "c.csv").exists() and not (tmp_path / "r").exists()


def test_the_usual_spellings_of_a_class_work(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "codes.csv"
    code, text = run(["readers", "codes", "--class", "初二1班", "--out", str(out)], env)
    assert code == 0 and "15" in text, text
    code, text = run(["corners", "status", "--class", "初二（1）班"], env)
    assert code == 0 and "初二(1)班" in text, text
    code, text = run(["clearance", "--grade", "初二年级"], env)
    assert code == 0 and "全部清还完毕" in text, text
