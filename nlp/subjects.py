"""Subjects of a record: its tags and the names of its CLC classes (中图法).

Class names come from the CLC tree when a copy is at hand (``clc_tree.json`` or
``clc_level1_2.csv``, e.g. the shared data folder); without one, the project's own table of the
main classes below is used. A few words students use for a subject name a class instead of a
tag (``CLASS_WORDS``: 四大名著 are the 章回小说 of I242.4) or say a tag differently (``TAG_WORDS``).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["CLASS_WORDS", "TAG_WORDS", "ClassNames", "split_tags"]

# The main classes of the CLC (5th edition), written for this project.
MAIN_CLASSES: dict[str, str] = {
    "A": "马克思主义、列宁主义、毛泽东思想、邓小平理论",
    "B": "哲学、宗教",
    "C": "社会科学总论",
    "D": "政治、法律",
    "E": "军事",
    "F": "经济",
    "G": "文化、科学、教育、体育",
    "H": "语言、文字",
    "I": "文学",
    "J": "艺术",
    "K": "历史、地理",
    "N": "自然科学总论",
    "O": "数理科学和化学",
    "P": "天文学、地球科学",
    "Q": "生物科学",
    "R": "医药、卫生",
    "S": "农业科学",
    "T": "工业技术",
    "U": "交通运输",
    "V": "航空、航天",
    "X": "环境科学、安全科学",
    "Z": "综合性图书",
    "I2": "中国文学",
    "I24": "小说",
    "I242": "古代至近代作品",
    "I242.4": "章回小说",
    "I246": "现代作品",
    "I247": "当代作品",
    "I3": "亚洲文学",
    "I5": "欧洲文学",
    "I7": "美洲文学",
    "TP3": "计算技术、计算机技术",
}

# Subject words that name a class: the query lists that class (and its subclasses).
CLASS_WORDS: dict[str, str] = {
    "四大名著": "I242.4",
    "中国古典小说": "I242",
    "古典小说": "I242",
    "章回小说": "I242.4",
    "中国现代小说": "I246",
    "中国当代小说": "I247",
    "当代小说": "I247",
    "日本小说": "I313",
    "日本文学": "I313",
    "美国小说": "I712",
    "英国小说": "I561",
    "外国小说": "I3",
}

# Other ways of saying a tag (all normalised, compact).
TAG_WORDS: dict[str, str] = {
    "科幻小说": "科幻",
    "科学幻想": "科幻",
    "科幻书": "科幻",
    "言情": "爱情",
    "言情小说": "爱情",
    "爱情小说": "爱情",
    "人物传记": "传记",
    "名人传记": "传记",
    "旅游": "旅行",
    "电脑": "计算机",
    "程序设计": "编程",
    "股市": "股票",
    "炒股": "股票",
    "拍照": "摄影",
    "养生保健": "养生",
    "推理小说": "推理",
    "侦探小说": "推理",
    "侦探": "推理",
}

_TAG_SPLIT = re.compile(r"[;；,，、/|]+")
_NAME_PARTS = re.compile(r"[、，,（）()~～\s]+")


def split_tags(tags: str | None) -> list[str]:
    """Tags as listed (the first is the most central), without blanks and repeats."""
    seen: list[str] = []
    for tag in _TAG_SPLIT.split(tags or ""):
        tag = tag.strip()
        if tag and tag not in seen:
            seen.append(tag)
    return seen


class ClassNames:
    """CLC code → class name, from a file when given (else the project's own main classes).

    The file is read on first use: only indexing needs the names, a search process never does.
    """

    def __init__(self, source: Path | None = None) -> None:
        self.source = source
        self._names: dict[str, str] | None = None

    @property
    def names(self) -> dict[str, str]:
        if self._names is None:
            names = dict(MAIN_CLASSES)
            if self.source is not None and self.source.exists():
                names.update(self._read(self.source))
            self._names = names
        return self._names

    @staticmethod
    def _read(source: Path) -> dict[str, str]:
        if source.suffix == ".csv":
            with source.open(encoding="utf-8", newline="") as handle:
                return {row["code"]: row["name"] for row in csv.DictReader(handle)}
        names: dict[str, str] = {}
        stack: list[Any] = list(json.loads(source.read_text(encoding="utf-8")))
        while stack:
            node = stack.pop()
            names[node["code"]] = node["name"]
            stack.extend(node.get("children") or [])
        return names

    def path(self, clc: str | None) -> list[str]:
        """Names of the class and its ancestors, the most specific first, split into parts
        ("新体长篇、中篇小说" → 新体长篇, 中篇小说)."""
        if not clc:
            return []
        code = clc.strip().upper()
        out: list[str] = []
        for length in range(len(code), 0, -1):
            name = self.names.get(code[:length])
            if name:
                out.extend(part for part in _parts(name) if part not in out)
        return out


def _parts(name: str) -> Iterator[str]:
    for part in _NAME_PARTS.split(name):
        if len(part) >= 2 and not part[0].isdigit():
            yield part
