"""`shuxiang import loans`, `shuxiang recommend` (the contract for other programs) and
`shuxiang lists`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories import cli, sqlite_env

CATALOGUE = """record_id,title,author,clc,tags,barcodes
sf1,三体,刘慈欣,I247.55,科幻,B1
sf2,球状闪电,刘慈欣,I247.55,科幻,B2
sf3,流浪地球,刘慈欣,I247.55,科幻,B3
cl1,红楼梦,曹雪芹,I242.47,名著,B4
cl2,水浒传,施耐庵,I242.4,名著,B5
"""
READERS = """card_no,name,role,grade,class_name
S1,李明,student,高一,高一(3)班
S2,王芳,student,高一,高一(3)班
"""
LOANS = """card_no,title,lent_at,returned_at
S1,三体 / 刘慈欣著,2024-09-01,2024-09-20
S2,红楼梦,2024-09-01,2024-09-20
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = sqlite_env(tmp_path / "rec.sqlite3")
    for name, text in (("catalogue", CATALOGUE), ("readers", READERS), ("loans", LOANS)):
        path = tmp_path / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        code, output = cli(["import", name, str(path)], env)
        assert code == 0, output
    return env


def test_recommend_titles_json_and_stdin_batch(env: dict[str, str]) -> None:
    code, out = cli(["recommend", "--card", "S1", "-n", "2"], env)
    assert code == 0, out
    assert out.splitlines() == ["球状闪电", "流浪地球"]

    code, out = cli(["recommend", "--card", "S1", "-n", "1", "--json"], env)
    assert code == 0, out
    answer = json.loads(out)
    assert answer["card"] == "S1"
    (first,) = answer["results"]
    assert first["record_id"] == "sf2" and first["title"] == "球状闪电"
    assert isinstance(first["score"], float) and first["score"] > 0
    assert "因为你借过《三体》" in first["reasons"]

    code, out = cli(["recommend", "--json", "-n", "3"], env, stdin="S2\nNOPE\n\nS1\n")
    assert code == 0, out
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["card"] for line in lines] == ["S2", "NOPE", "S1"]
    assert lines[0]["results"][0]["record_id"] == "cl2"
    assert lines[1] == {"card": "NOPE", "results": [], "error": "unknown_card"}
    assert all(r["record_id"] != "sf1" for r in lines[2]["results"])

    code, out = cli(["recommend", "--card", "NOPE"], env)
    assert code == 1 and "NOPE" in out
    code, out = cli(["recommend"], env)
    assert code != 0


def test_import_loans_reports_lines_and_writes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("card_no,title\nS1,球状闪电\nS1,不存在\nS3,红楼梦\n", encoding="utf-8")
    code, out = cli(["import", "loans", str(bad)], env)
    assert code == 1
    assert "第 3 行" in out and "不存在" in out and "第 4 行" in out and "S3" in out
    assert "未导入任何数据" in out
    # Nothing went in: 球状闪电 is still recommended to S1.
    assert cli(["recommend", "--card", "S1", "-n", "1"], env)[1].strip() == "球状闪电"
    code, out = cli(["import", "loans", str(bad), "--skip-bad"], env)
    assert code == 0 and "新增 1" in out
    assert cli(["recommend", "--card", "S1", "-n", "1"], env)[1].strip() == "流浪地球"


def test_lists_create_add_show_send(env: dict[str, str]) -> None:
    code, out = cli(["lists", "create", "我爱名著"], env)
    assert code == 0 and "已创建书单「我爱名著」" in out
    assert cli(["lists", "create", "我爱名著"], env)[0] == 1
    code, out = cli(["lists", "add", "我爱名著", "B4", "--blurb", "四大名著之首"], env)
    assert code == 0 and "《红楼梦》" in out
    code, out = cli(["lists", "add", "我爱名著", "水浒传"], env)
    assert code == 0 and "《水浒传》" in out
    code, out = cli(["lists", "add", "我爱名著", "完全不存在的书名xyz"], env)
    assert code == 1
    code, out = cli(["lists", "show", "我爱名著"], env)
    assert code == 0 and "1. 《红楼梦》 四大名著之首" in out and "2. 《水浒传》" in out
    code, out = cli(["lists", "show"], env)
    assert "我爱名著（2 本）" in out
    later = ["--at", "2030-01-01"]
    code, out = cli(["lists", "send", "我爱名著", "--class", "高一(3)班", *later], env)
    assert code == 0 and "2030-01-01 00:00" in out
    code, out = cli(["lists", "send", "我爱名著", "--grade", "高一"], env)
    # Nobody is bound to Telegram yet, so nobody can be sent to.
    assert code == 0 and "0 位读者" in out
    assert cli(["lists", "send", "我爱名著", "--at", "next tuesday"], env)[0] == 2
