"""Configuration: every knob comes from the environment (prefix ``SHUXIANG_``) or ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from services.i18n import t
from services.notifications.quiet import QuietHours, parse_clock
from services.policy import LoanPolicy, RolePolicy
from services.readers.binding import BindLimits

if TYPE_CHECKING:
    from nlp.search import SearchEngine

DEFAULT_DB_PATH = Path("var") / "shuxiang.sqlite3"
TELEGRAM_API_URL = "https://api.telegram.org"
SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
# http and socks go through aiohttp-socks; https (TLS to the proxy) through aiohttp itself
# (bot/proxy.py).
PROXY_SCHEMES = ("http", "https", "socks4", "socks5")
REDIS_SCHEMES = ("redis", "rediss")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def default_shelf_map() -> dict[str, str]:
    """CLC main class -> reading room (the room names are user-facing: see the catalogue)."""
    science, social, arts = (
        t("config.shelf_science"),
        t("config.shelf_social"),
        t("config.shelf_arts"),
    )
    return {
        **dict.fromkeys("NOPQRSTUVX", science),
        **dict.fromkeys("ABCDEFGHKZ", social),
        **dict.fromkeys("IJ", arts),
    }


class ConfigError(Exception):
    """A configuration problem, worded for the person starting the program (one line)."""


class RoleLimits(BaseModel):
    max_loans: int = Field(ge=0)
    loan_days: int = Field(ge=1)
    renewals: int = Field(ge=0)
    renewal_days: int = Field(ge=1)
    max_holds: int = Field(ge=0)


# One class per role, so that SHUXIANG_STUDENT__MAX_LOANS=5 alone keeps the other defaults.
class StudentLimits(RoleLimits):
    max_loans: int = Field(default=3, ge=0)
    loan_days: int = Field(default=30, ge=1)
    renewals: int = Field(default=1, ge=0)
    renewal_days: int = Field(default=15, ge=1)
    max_holds: int = Field(default=3, ge=0)


class TeacherLimits(RoleLimits):
    max_loans: int = Field(default=10, ge=0)
    loan_days: int = Field(default=60, ge=1)
    renewals: int = Field(default=2, ge=0)
    renewal_days: int = Field(default=30, ge=1)
    max_holds: int = Field(default=10, ge=0)


class LibrarianLimits(RoleLimits):
    max_loans: int = Field(default=20, ge=0)
    loan_days: int = Field(default=60, ge=1)
    renewals: int = Field(default=3, ge=0)
    renewal_days: int = Field(default=30, ge=1)
    max_holds: int = Field(default=20, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHUXIANG_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
    )

    database_url: SecretStr = SecretStr(f"sqlite+aiosqlite:///{DEFAULT_DB_PATH}")
    # SQLite only: how long a writer waits for the one write lock before "database is locked".
    sqlite_busy_timeout_s: float = Field(default=30.0, gt=0)
    bot_token: SecretStr | None = None
    # Dialogue state (the desk's 借出, the 荐购 form) in Redis, so that a restart or another
    # webhook worker carries on an unfinished one: redis://[:password@]host:port/db. Empty: the
    # process's memory (the sandbox, a single SQLite bot).
    redis_url: SecretStr | None = None
    # Keys are <prefix>:<chat>:<user>:…, so several bots can share one Redis.
    redis_prefix: str = Field(default="shuxiang", pattern=r"^[A-Za-z0-9_.-]+$")
    bot_api_url: str = TELEGRAM_API_URL
    # Webhook mode (`shuxiang run --webhook`): the public https URL Telegram posts to (with its
    # path), where this worker listens, and the path it serves. The secret Telegram sends back
    # in X-Telegram-Bot-Api-Secret-Token ([A-Za-z0-9_-], the same on every worker); unset, one
    # is derived from the token.
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1:8081"
    webhook_path: str = Field(default="/telegram", pattern=r"^/[A-Za-z0-9_./-]*$")
    webhook_secret: SecretStr | None = None
    # Bot API traffic through a proxy (http://, https://, socks5:// or socks4://, may carry
    # user:password), as networks in mainland China need for Telegram.
    proxy: SecretStr | None = None
    # CA certificates (PEM) for an https:// proxy whose certificate no public CA signed.
    proxy_ca: Path | None = None
    # For the t.me deep links (QR codes) printed on binding-code sheets; `readers codes --bot`
    # gives it when the sheet is made without this setting. No default: a guessed name would
    # print QR codes that open someone else's bot.
    bot_username: str = ""
    timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"
    data_dir: Path = Path("var")
    # jieba's dictionary cache (~9 MB, rebuilt in ~1.5 s when missing); default data_dir/cache.
    # Processes with different data folders may share one (its writes are atomic).
    cache_dir: Path | None = None
    # A CLC tree (clc_tree.json or a code,name csv) for subject search by class name; without
    # one the project's own table of the main classes is used.
    clc_file: Path | None = None

    student: StudentLimits = StudentLimits()
    teacher: TeacherLimits = TeacherLimits()
    librarian: LibrarianLimits = LibrarianLimits()
    hold_pickup_days: int = Field(default=3, ge=1)
    # How often an idle sender looks at the outbox again (it also wakes when the bot queues).
    outbox_interval_seconds: float = Field(default=2.0, gt=0)
    # Pushes wait through these hours (school time zone); empty for none.
    quiet_hours: str = "21:30-07:00"
    # The sender: Telegram allows ~30 messages/s in bulk and ~1/s to one chat.
    send_rate: float = Field(default=25.0, gt=0, le=30)
    chat_gap_seconds: float = Field(default=1.0, ge=1.0)
    # Sends under way at once; also the most a SIGKILL can leave unrecorded (sent twice).
    sender_concurrency: int = Field(default=4, ge=1, le=32)
    # A killed sender's claims come free again after this long.
    sender_lease_seconds: int = Field(default=30, ge=5, le=300)
    send_max_attempts: int = Field(default=8, ge=1)
    # A push refused with a 5xx or lost to the network is tried again this long later, doubling
    # with each attempt (30 s, 1 min, 2 min, ...), never more than sender_backoff_max_seconds.
    sender_backoff_seconds: float = Field(default=30.0, ge=0)
    sender_backoff_max_seconds: float = Field(default=3600.0, ge=0)
    # The bot's own requests (replies): a 5xx or a network error is retried after this long,
    # doubling (0.5 s, 1 s, 2 s); a 429 is waited out in line only when Telegram asks for no
    # more than bot_retry_max_wait_seconds, so one user's long wait does not stall everyone.
    bot_retry_backoff_seconds: float = Field(default=0.5, ge=0)
    bot_retry_max_wait_seconds: float = Field(default=5.0, ge=0)
    # How many updates one worker holds at once (polling: fetched and not finished), handled
    # concurrently across users, one user's in order (bot/concurrency.py), so memory stays
    # bounded under a flood. At most 100 (what one getUpdates returns). A webhook worker handles
    # this many at once; further requests wait before taking their user's lock. 64: with the
    # Bot API answering in 200 ms (mainland China through a proxy) one worker handles 116/s
    # against 70/s at 32, and as much as before at 0 and 50 ms (benchmarks/throughput.py).
    max_updates_in_flight: int = Field(default=64, ge=1, le=100)
    # When the daily reminder sweeps run (school time zone), and what they send.
    reminder_time: str = "07:30"
    due_soon_days: list[int] = Field(default_factory=lambda: [3, 1])
    overdue_every_days: int = Field(default=7, ge=1)
    overdue_max_reminders: int = Field(default=4, ge=1)
    # The weekly slot (recommendations): day of week and time.
    weekly_slot: str = "fri 16:00"
    # Reminder kinds off unless a reader switches them on in /settings.
    reminders_default_off: list[str] = Field(default_factory=list)
    binding_code_days: int = Field(default=30, ge=1)
    # The weekly new-book list (sent in the weekly slot): books catalogued in the last N days.
    weekly_new_days: int = Field(default=7, ge=1, le=60)
    # Refused binding codes allowed per hour: per Telegram user, and across the bot (reaching it
    # pauses binding and alerts the librarians).
    bind_fails_per_user: int = Field(default=5, ge=1)
    bind_fails_across_bot: int = Field(default=50, ge=1)
    # Class reading corners: monitors per class; when each monitor gets the weekly 催书单.
    corner_monitors_per_class: int = Field(default=2, ge=1, le=10)
    chase_weekday: str = Field(default="fri", pattern=r"^(mon|tue|wed|thu|fri|sat|sun)$")
    chase_time: str = Field(default="16:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    # The web channel (bot/web): the school's own chat page. SHUXIANG_WEB_LISTEN (host:port)
    # turns it on; SHUXIANG_WEB_URL is its public address, written into sign-in links and
    # deciding Secure cookies (https); sessions last web_session_days after their last use, a
    # conversation's messages web_keep_days.
    web_listen: str = Field(default="", pattern=r"^(|\[?[A-Za-z0-9_.:-]*\]?:\d{1,5})$")
    web_url: str = ""
    web_session_days: int = Field(default=180, ge=1)
    web_keep_days: int = Field(default=365, ge=1)
    # CLC class prefix -> where it stands; the longest matching prefix wins.
    shelf_map: dict[str, str] = Field(default_factory=default_shelf_map)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(t("config.unknown_timezone", value=value)) from exc
        return value

    @field_validator("web_url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if value and (parts.scheme.lower() not in ("http", "https") or not parts.hostname):
            raise ValueError(t("web.bad_url", value=value))
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        QuietHours.parse(value, ZoneInfo("UTC"))
        return value

    @field_validator("reminder_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        parse_clock(value)
        return value

    @field_validator("weekly_slot")
    @classmethod
    def _weekly_slot(cls, value: str) -> str:
        day, _, at = value.strip().partition(" ")
        if day.lower() not in WEEKDAYS:
            raise ValueError(t("quiet.bad_weekly_slot", value=value))
        parse_clock(at)
        return value

    @property
    def quiet(self) -> QuietHours:
        return QuietHours.parse(self.quiet_hours, self.tz)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def checked_database_url(self) -> str:
        """The database URL, or a ConfigError that never repeats it (it may hold a password)."""
        raw = self.database_url.get_secret_value()
        try:
            url = make_url(raw)
        except ArgumentError:
            raise ConfigError(t("config.bad_database_url")) from None
        if url.drivername == "sqlite":
            url = url.set(drivername="sqlite+aiosqlite")
        elif url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+asyncpg")
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ConfigError(t("config.unsupported_driver", driver=url.drivername))
        return url.render_as_string(hide_password=False)

    def ensure_database_dir(self) -> None:
        """Create the SQLite file's folder: only once a command is about to write the database,
        so that a refused command leaves no empty folder behind."""
        url = make_url(self.checked_database_url())
        if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
            folder = Path(url.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                raise ConfigError(t("cli_run.db_cannot_open", where=folder.resolve())) from None

    def proxy_url(self) -> str | None:
        """The proxy URL for the Bot API, or a ConfigError that never repeats it."""
        raw = self.proxy.get_secret_value().strip() if self.proxy is not None else ""
        if not raw:
            return None
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError:
            raise ConfigError(t("cli_run.bad_proxy")) from None
        scheme = {"socks5h": "socks5"}.get(parts.scheme.lower(), parts.scheme.lower())
        if scheme not in PROXY_SCHEMES or not parts.hostname or port is None:
            raise ConfigError(t("cli_run.bad_proxy"))
        if scheme == "https" and self.proxy_ca is not None and not self.proxy_ca.is_file():
            raise ConfigError(t("cli_run.proxy_ca_missing", path=self.proxy_ca))
        return urlunsplit((scheme, parts.netloc, "", "", ""))

    def proxy_for_display(self) -> str:
        """The proxy without its user name and password (for messages)."""
        url = self.proxy_url()
        if url is None:
            return ""
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port}"

    def checked_redis_url(self) -> str | None:
        """The Redis URL, None when unset, or a ConfigError that never repeats it."""
        raw = self.redis_url.get_secret_value().strip() if self.redis_url is not None else ""
        if not raw:
            return None
        try:
            parts = urlsplit(raw)
            parts.port  # noqa: B018 (raises on a port that is not a number)
        except ValueError:
            raise ConfigError(t("cli_run.bad_redis_url")) from None
        if parts.scheme.lower() not in REDIS_SCHEMES or not parts.hostname:
            raise ConfigError(t("cli_run.bad_redis_url"))
        return raw

    def redis_for_display(self) -> str:
        """Redis's host, port and database without user name and password (for messages)."""
        url = self.checked_redis_url()
        if url is None:
            return ""
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"

    def search_engine(self) -> SearchEngine:
        """The process's one search engine (the bot and every CLI command build it here)."""
        from nlp.search import SearchEngine

        cache_dir = self.cache_dir or self.data_dir / "cache"
        return SearchEngine(cache_dir=cache_dir, clc_source=self.clc_file)

    def web_address(self) -> tuple[str, int] | None:
        """Where the web channel listens, or None when it is off."""
        if not self.web_listen:
            return None
        host, _, port = self.web_listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 (a server's choice)

    def web_base_url(self) -> str:
        """The public address of the web chat (no trailing slash); without SHUXIANG_WEB_URL,
        the address it listens on."""
        if self.web_url.strip():
            return self.web_url.strip().rstrip("/")
        address = self.web_address()
        if address is None:
            return ""
        host = "127.0.0.1" if address[0] in ("0.0.0.0", "::", "") else address[0]  # noqa: S104
        return f"http://{host}:{address[1]}"

    def web_secure(self) -> bool:
        return self.web_base_url().lower().startswith("https://")

    def has_token(self) -> bool:
        return self.bot_token is not None and bool(self.bot_token.get_secret_value().strip())

    def require_token(self) -> str:
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise ConfigError(t("config.missing_token"))
        return self.bot_token.get_secret_value().strip()

    def bind_limits(self) -> BindLimits:
        return BindLimits(per_user=self.bind_fails_per_user, across_bot=self.bind_fails_across_bot)

    def loan_policy(self) -> LoanPolicy:
        def role(limits: RoleLimits) -> RolePolicy:
            return RolePolicy(**limits.model_dump())

        return LoanPolicy(
            roles={
                "student": role(self.student),
                "teacher": role(self.teacher),
                "librarian": role(self.librarian),
            },
            hold_pickup_days=self.hold_pickup_days,
            binding_code_days=self.binding_code_days,
            timezone=self.timezone,
        )


def load_settings(**overrides: object) -> Settings:
    """Build settings; a validation problem becomes one ConfigError line without secret values."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"SHUXIANG_{'__'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors(include_input=False)
        )
        raise ConfigError(t("config.invalid", problems=problems)) from None
