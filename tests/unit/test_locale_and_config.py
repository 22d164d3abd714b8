"""The locale catalogue covers every key the code uses; configuration errors are one clear line."""

from __future__ import annotations

import ast
import io
import logging
import re
import tokenize
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.cli.runtime import RedactingFormatter
from bot.config import ConfigError, load_settings
from handlers.keyboards import LIBRARIAN_COMMANDS, READER_COMMANDS
from services.i18n import catalogue, t
from storage.models import Role

ROOT = Path(__file__).resolve().parents[2]
# A literal key as the first argument; ``\s*`` also spans the line break of a wrapped call.
KEY_CALL = re.compile(
    r"""\b(?:tr|t|ServiceError)\(\s*["']([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+)["']"""
)


def used_keys() -> set[str]:
    keys: set[str] = set()
    for folder in ("bot", "handlers", "services"):
        for path in (ROOT / folder).rglob("*.py"):
            keys.update(KEY_CALL.findall(path.read_text(encoding="utf-8")))
    keys.update(f"commands.{c}" for c in READER_COMMANDS + LIBRARIAN_COMMANDS)
    keys.update(f"role.{r.value}" for r in Role)
    return keys


def test_key_call_finds_wrapped_and_nested_calls() -> None:
    source = (
        't("a.b")\nfail(t(\n    "import.missing_title",\n))\nhelp=t( \'cli.help_app\')\nt(key)\n'
    )
    assert KEY_CALL.findall(source) == ["a.b", "import.missing_title", "cli.help_app"]


def test_every_used_key_is_in_the_catalogue() -> None:
    keys = used_keys()
    assert len(keys) > 200
    # The CLI, the importers and the configuration use the catalogue too.
    assert {"import.missing_title", "config.missing_token", "cli.help_app", "cli.error"} <= keys
    missing = sorted(k for k in keys if k not in catalogue("zh-CN"))
    assert missing == []


CJK = re.compile("[\u4e00-\u9fff]")
# Where code may hold Chinese that is not a message (only the literals listed, per file).
NOT_SCANNED = ("sandbox/", "services/locales/")
ALLOWED_CJK_LITERALS: dict[str, set[str]] = {
    # The query the sandbox self-check types as the sample student.
    "sandbox/demo.py": {"三体"},
    # Warm-up queries the search command runs before the first real one.
    "bot/cli/search.py": {"预热"},
    # Input vocabulary: junior forms' class names start with it (初二(1)班).
    "services/corners/swaps.py": {"初"},
    # Input vocabulary: characters that mark a class in /reader 王小明 初二(3)班.
    "services/circulation/desk.py": {"班级年"},
    # Input vocabulary: how schools name their grades (初一, 高中二年级, 七年级).
    "services/school_order.py": {"一二三四五六七八九", "初", "高", "中", "年级"},
    # Input vocabulary: the school order of grades, 高三年级 for 高三, 初二3 for 初二(3)班, and
    # the characters that mark a class in /reader 王小明 初二(3)班.
    "services/scopes.py": {"初一", "初二", "初三", "高一", "高二", "高三", "年级", "班", "班()"},
}


def _docstring_lines(source: str) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def cjk_literals(path: Path) -> list[tuple[int, str]]:
    """String literals with Chinese characters, docstrings and comments aside."""
    source = path.read_text(encoding="utf-8")
    docstrings = _docstring_lines(source)
    # Python 3.12 splits f-strings into FSTRING_* tokens; the text sits in FSTRING_MIDDLE.
    kinds = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in kinds or not CJK.search(token.string):
            continue
        if token.type == tokenize.STRING and token.start[0] in docstrings:
            continue
        found.append((token.start[0], token.string))
    return found


def test_no_user_facing_chinese_in_code() -> None:
    offending = []
    for folder in ("bot", "services"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name.startswith(NOT_SCANNED):
                continue
            allowed = ALLOWED_CJK_LITERALS.get(name, set())
            for line, literal in cjk_literals(path):
                try:
                    value = ast.literal_eval(literal)
                except (SyntaxError, ValueError):
                    value = None  # an f-string: never allowed
                if value not in allowed:
                    offending.append(f"{name}:{line}: {literal}")
    assert offending == [], "move these to services/locales/zh-CN/*.toml:\n" + "\n".join(offending)


def test_cjk_scan_skips_docstrings_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "sample.py"
    path.write_text(
        '"""模块说明。"""\n\n\n'
        "def f() -> str:\n"
        '    """函数说明。"""\n'
        "    # 注释\n"
        '    x = "说明"\n'
        '    return f"第 {x} 行"\n',
        encoding="utf-8",
    )
    assert [line for line, _ in cjk_literals(path)] == [7, 8]


@pytest.mark.parametrize(
    ("key", "params", "expected"),
    [
        ("renew.limit", {"title": "红楼梦", "limit": 1}, "《红楼梦》已续借过 1 次"),
        ("hold.on_shelf", {"title": "活着", "count": 2}, "书架上还有 2 册"),
        ("no.such_key", {}, "no.such_key"),
    ],
)
def test_translation(key: str, params: dict[str, Any], expected: str) -> None:
    assert expected in t(key, **params)


def test_settings_defaults_and_policy() -> None:
    settings = load_settings(_env_file=None)
    assert settings.timezone == "Asia/Shanghai"
    assert settings.checked_database_url().startswith("sqlite+aiosqlite:///")
    policy = settings.loan_policy()
    student, teacher = policy.for_role("student"), policy.for_role("teacher")
    assert (student.max_loans, student.loan_days, student.renewals, student.renewal_days) == (
        3,
        30,
        1,
        15,
    )
    assert (teacher.max_loans, teacher.loan_days) == (10, 60)
    assert policy.hold_pickup_days == 3


def test_policy_is_overridable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUXIANG_STUDENT__MAX_LOANS", "5")
    monkeypatch.setenv("SHUXIANG_HOLD_PICKUP_DAYS", "7")
    policy = load_settings(_env_file=None).loan_policy()
    assert policy.for_role("student").max_loans == 5 and policy.hold_pickup_days == 7


@pytest.mark.parametrize("url", ["not a url", "mysql://root@localhost/x", "oracle+cx://u:pw@h/db"])
def test_bad_database_url_is_one_clear_line_without_the_url(url: str) -> None:
    settings = load_settings(_env_file=None, database_url=url)
    with pytest.raises(ConfigError) as err:
        settings.checked_database_url()
    assert "SHUXIANG_DATABASE_URL" in str(err.value) and "pw" not in str(err.value)


def test_bad_timezone_is_reported() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None, timezone="Mars/Olympus")
    assert "SHUXIANG_TIMEZONE" in str(err.value)


def _cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_cli_run_without_token_says_so(tmp_path: Path) -> None:
    code, out = _cli(
        ["run"],
        {"SHUXIANG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db", "SHUXIANG_BOT_TOKEN": ""},
    )
    assert code == 2 and "SHUXIANG_BOT_TOKEN" in out and "Traceback" not in out


def test_cli_bad_url_says_so_without_password(tmp_path: Path) -> None:
    code, out = _cli(
        ["db", "upgrade"], {"SHUXIANG_DATABASE_URL": "mysql://root:hunter2@localhost/db"}
    )
    assert code == 2 and "SHUXIANG_DATABASE_URL" in out
    assert "hunter2" not in out and "Traceback" not in out


def test_cli_unreachable_database_is_one_line() -> None:
    code, out = _cli(
        ["db", "upgrade"],
        {"SHUXIANG_DATABASE_URL": "postgresql+asyncpg://u:hunter2@127.0.0.1:1/none"},
    )
    assert code == 2 and "无法连接" in out
    assert "hunter2" not in out and "Traceback" not in out


def test_log_formatter_masks_token_and_password() -> None:
    settings = load_settings(
        _env_file=None,
        bot_token="42:SECRET-TOKEN",
        database_url="postgresql+asyncpg://app:pa55word@db/shuxiang",
    )
    formatter = RedactingFormatter(settings)
    try:
        raise RuntimeError("POST /bot42:SECRET-TOKEN/sendMessage failed for pa55word")
    except RuntimeError as exc:
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "boom %s",
            ("42:SECRET-TOKEN",),
            (RuntimeError, exc, exc.__traceback__),
        )
    text = formatter.format(record)
    assert "SECRET-TOKEN" not in text and "pa55word" not in text and "***" in text
