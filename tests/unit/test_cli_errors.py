"""What the command line says when the database, the proxy or Redis setting or a second sandbox
gets in the way: one Chinese line that says what to do, no secret, and no folder left behind."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from typer.testing import CliRunner

from bot.app import DIALOGUE_TTL, build_storage
from bot.cli import app
from bot.cli.runtime import RedactingFormatter
from bot.config import ConfigError, load_settings
from sandbox.demo import single_sandbox

PG = "postgresql+asyncpg://{user}@127.0.0.1:{port}/{db}"


def _cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env={"SHUXIANG_PROXY": "", **env})
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def _refused(args: list[str], database_url: str) -> str:
    code, out = _cli(args, {"SHUXIANG_DATABASE_URL": database_url})
    assert code == 2, out
    assert "Traceback" not in out and "Error" not in out  # no bare exception name
    return out


def test_missing_database_says_to_create_it() -> None:
    out = _refused(["db", "upgrade"], PG.format(user="postgres", port=5432, db="shuxiang_nodb"))
    assert "数据库 shuxiang_nodb 不存在" in out and "createdb shuxiang_nodb" in out


def test_refused_login_says_to_check_user_and_password() -> None:
    url = PG.format(user="no_such_librarian:hunter2", port=5432, db="test")
    out = _refused(["db", "upgrade"], url)
    assert "拒绝登录" in out and "用户名和密码" in out and "hunter2" not in out


def test_server_down_says_where() -> None:
    out = _refused(["db", "upgrade"], PG.format(user="postgres", port=1, db="test"))
    assert "无法连接数据库服务器 127.0.0.1:1" in out and "SHUXIANG_DATABASE_URL" in out


def test_sqlite_folder_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = _refused(["db", "upgrade"], f"sqlite+aiosqlite:///{blocker}/shuxiang.sqlite3")
    assert "无法打开数据库文件" in out


def test_refused_commands_leave_no_folder(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'shuxiang.sqlite3'}"
    code, out = _cli(["run"], {"SHUXIANG_DATABASE_URL": url, "SHUXIANG_BOT_TOKEN": ""})
    assert code == 2 and "SHUXIANG_BOT_TOKEN" in out
    out = _refused(["db", "reindex"], url)
    assert "找不到数据库" in out
    code, out = _cli(
        ["run"],
        {"SHUXIANG_DATABASE_URL": url, "SHUXIANG_BOT_TOKEN": "1:x", "SHUXIANG_PROXY": "ftp://p"},
    )
    assert code == 2 and "SHUXIANG_PROXY" in out
    assert list(tmp_path.iterdir()) == []


def test_second_sandbox_on_the_same_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo' / 'shuxiang.sqlite3'}"
    settings = load_settings(_env_file=None, database_url=url)
    with single_sandbox(settings):
        code, out = _cli(["demo", "--check", "--port", "0"], {"SHUXIANG_DATABASE_URL": url})
        assert code == 2, out
        assert "已有一个书香沙盒在使用数据库" in out and "shuxiang.sqlite3" in out
        assert not (tmp_path / "demo" / "shuxiang.sqlite3").exists()  # untouched
    with single_sandbox(settings):  # released when the first one stopped
        pass


@pytest.mark.parametrize(
    ("raw", "expected", "shown"),
    [
        ("http://127.0.0.1:7890", "http://127.0.0.1:7890", "http://127.0.0.1:7890"),
        (
            "socks5h://u:pw@proxy.lan:1080",
            "socks5://u:pw@proxy.lan:1080",
            "socks5://proxy.lan:1080",
        ),
        (" SOCKS4://10.0.0.1:1080 ", "socks4://10.0.0.1:1080", "socks4://10.0.0.1:1080"),
        # TLS to the proxy itself (bot/proxy.py).
        ("HTTPS://u:pw@proxy.lan:443", "https://u:pw@proxy.lan:443", "https://proxy.lan:443"),
        ("", None, ""),
    ],
)
def test_proxy_setting(raw: str, expected: str | None, shown: str) -> None:
    settings = load_settings(_env_file=None, proxy=raw)
    assert settings.proxy_url() == expected
    assert settings.proxy_for_display() == shown


@pytest.mark.parametrize(
    "raw",
    ["ftp://u:pw@proxy:21", "socks5://proxy", "127.0.0.1:1080", "http://:80", "https://u:pw@h:x"],
)
def test_bad_proxy_is_one_line_without_the_password(raw: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None, proxy=raw).proxy_url()
    assert "SHUXIANG_PROXY" in str(err.value) and "pw" not in str(err.value)


def test_bad_proxy_message_names_the_schemes() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None, proxy="ftp://proxy:21").proxy_url()
    assert all(scheme in str(err.value) for scheme in ("http", "https", "socks4", "socks5"))


def test_https_proxy_ca_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    settings = load_settings(_env_file=None, proxy="https://u:pw@h:443", proxy_ca=missing)
    with pytest.raises(ConfigError) as err:
        settings.proxy_url()
    assert "SHUXIANG_PROXY_CA" in str(err.value) and str(missing) in str(err.value)
    assert "pw" not in str(err.value)


@pytest.mark.parametrize("scheme", ["socks5", "https"])
def test_log_formatter_masks_the_proxy_password(scheme: str) -> None:
    settings = load_settings(
        _env_file=None, bot_token="42:SECRET-TOKEN", proxy=f"{scheme}://me:pr0xy-pw@proxy.lan:1080"
    )
    record = logging.LogRecord(
        "x",
        logging.WARNING,
        __file__,
        1,
        "via %s (password %s)",
        (settings.proxy_url(), "pr0xy-pw"),
        None,
    )
    text = RedactingFormatter(settings).format(record)
    assert "pr0xy-pw" not in text and "***" in text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("", ""),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        (" redis://:s3cret-pw@cache.lan/2 ", "redis://cache.lan:6379/2"),
        ("rediss://bot:s3cret-pw@cache.lan:6380", "rediss://cache.lan:6380"),
    ],
)
def test_redis_setting(raw: str, shown: str) -> None:
    settings = load_settings(_env_file=None, redis_url=raw)
    assert settings.checked_redis_url() == (raw.strip() or None)
    assert settings.redis_for_display() == shown
    assert settings.redis_prefix == "shuxiang"


@pytest.mark.parametrize(
    "raw", ["http://:s3cret-pw@h:6379", "redis://:s3cret-pw@h:port/0", "redis://:s3cret-pw@/0"]
)
def test_bad_redis_url_is_one_line_without_the_password(raw: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None, redis_url=raw).checked_redis_url()
    assert "SHUXIANG_REDIS_URL" in str(err.value) and "s3cret-pw" not in str(err.value)
    code, out = _cli(["run"], {"SHUXIANG_BOT_TOKEN": "1:x", "SHUXIANG_REDIS_URL": raw})
    assert code == 2 and "SHUXIANG_REDIS_URL" in out and "s3cret-pw" not in out


def test_redis_prefix_must_not_hold_the_key_separator() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None, redis_prefix="school:1")
    assert "SHUXIANG_REDIS_PREFIX" in str(err.value)


def test_storage_is_memory_unless_redis_is_set() -> None:
    assert isinstance(build_storage(load_settings(_env_file=None)), MemoryStorage)
    settings = load_settings(
        _env_file=None, redis_url="redis://:s3cret-pw@cache.lan:6380/3", redis_prefix="school1"
    )
    storage = build_storage(settings)
    assert isinstance(storage, RedisStorage)
    key = StorageKey(bot_id=1, chat_id=2, user_id=3)
    assert storage.key_builder.build(key, "state") == "school1:2:3:state"
    assert storage.state_ttl == storage.data_ttl == DIALOGUE_TTL
    assert storage.redis.connection_pool.connection_kwargs["password"] == "s3cret-pw"


def test_log_formatter_masks_the_redis_password() -> None:
    url = "redis://bot:s3cret-pw@cache.lan:6379/0"
    settings = load_settings(_env_file=None, redis_url=url)
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "redis %s said no to %s", (url, "s3cret-pw"), None
    )
    text = RedactingFormatter(settings).format(record)
    assert "s3cret-pw" not in text and "***" in text
