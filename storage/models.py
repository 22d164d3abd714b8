"""The whole data model. Times are stored as UTC and come back timezone-aware on both databases."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite keeps no offset; normalise to naive UTC in, aware UTC out, on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Role(enum.StrEnum):
    STUDENT = "student"
    TEACHER = "teacher"
    LIBRARIAN = "librarian"


class CopyStatus(enum.StrEnum):
    ON_SHELF = "on_shelf"
    ON_LOAN = "on_loan"
    ON_HOLD_SHELF = "on_hold_shelf"
    IN_CORNER = "in_corner"
    IN_TRANSIT = "in_transit"
    LOST = "lost"
    WITHDRAWN = "withdrawn"
    # Reported damaged by a class monitor or at the desk; out of circulation until repaired.
    DAMAGED = "damaged"


class HoldStatus(enum.StrEnum):
    WAITING = "waiting"
    READY = "ready"
    COLLECTED = "collected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


ACTIVE_HOLD_STATUSES = (HoldStatus.WAITING.value, HoldStatus.READY.value)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # gave up (blocked by the user, too many attempts)


class SwapStatus(enum.StrEnum):
    DRAFT = "draft"  # the librarian is still scanning barcodes into it
    PROPOSED = "proposed"  # sent: waiting for its copies to be confirmed
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class SwapDirection(enum.StrEnum):
    IN = "in"  # from the library into the corner
    OUT = "out"  # back from the corner to the library


class SwapOutcome(enum.StrEnum):
    RECEIVED = "received"  # 收到
    MISSING = "missing"  # 缺少
    DAMAGED = "damaged"  # 破损


class SuggestionStatus(enum.StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PURCHASED = "purchased"


def _in(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Record(Base):
    """A bibliographic record (one title)."""

    __tablename__ = "records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), unique=True)
    isbn: Mapped[str | None] = mapped_column(String(13), index=True)
    title: Mapped[str] = mapped_column(String(500))
    subtitle: Mapped[str | None] = mapped_column(String(500))
    authors: Mapped[str | None] = mapped_column(String(500))
    translators: Mapped[str | None] = mapped_column(String(500))
    publisher: Mapped[str | None] = mapped_column(String(200))
    pub_date: Mapped[str | None] = mapped_column(String(20))
    clc: Mapped[str | None] = mapped_column(String(40), index=True)
    call_number: Mapped[str | None] = mapped_column(String(80), index=True)
    series: Mapped[str | None] = mapped_column(String(300))
    original_title: Mapped[str | None] = mapped_column(String(500))
    tags: Mapped[str | None] = mapped_column(String(500))
    summary: Mapped[str | None] = mapped_column(Text)
    catalogued_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Lifetime loans, kept by circulation; search uses it as a tie-breaker.
    loan_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    copies: Mapped[list[Copy]] = relationship(back_populates="record", lazy="raise")


class ClassCorner(Base):
    """A class reading corner (班级图书角)."""

    __tablename__ = "class_corners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_name: Mapped[str] = mapped_column(String(40), unique=True)
    capacity: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Copy(Base):
    """One physical volume, known by its barcode."""

    __tablename__ = "copies"
    __table_args__ = (CheckConstraint(_in("status", CopyStatus), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    barcode: Mapped[str] = mapped_column(String(40), unique=True)
    record_pk: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    location: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=CopyStatus.ON_SHELF.value, index=True)
    corner_id: Mapped[int | None] = mapped_column(ForeignKey("class_corners.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    record: Mapped[Record] = relationship(back_populates="copies", lazy="raise")


class Reader(Base):
    __tablename__ = "readers"
    __table_args__ = (CheckConstraint(_in("role", Role), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_no: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), default=Role.STUDENT.value)
    grade: Mapped[str | None] = mapped_column(String(20))
    class_name: Mapped[str | None] = mapped_column(String(40), index=True)
    office: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ClassMonitor(Base):
    """A class library monitor (班级图书管理员); a class usually has two."""

    __tablename__ = "class_monitors"
    __table_args__ = (UniqueConstraint("class_name", "reader_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_name: Mapped[str] = mapped_column(String(40), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"))
    appointed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Channel(enum.StrEnum):
    """Where a reader is reached: the Telegram bot, or the school's own web chat."""

    TELEGRAM = "telegram"
    WEB = "web"


class Relation(enum.StrEnum):
    """Whose endpoint it is, to the reader: their own (a parent's comes later)."""

    SELF = "self"


class Endpoint(Base):
    """One way to reach a reader: a channel and an address on it (a Telegram user id as text, a
    web account id). One reader may have one endpoint of their own per channel, and an address
    belongs to one reader; pushes go to every endpoint of the reader, each once."""

    __tablename__ = "endpoints"
    __table_args__ = (
        UniqueConstraint("channel", "address"),
        # Partial: a parent's endpoints (a later relation) may be many per channel.
        Index(
            "uq_endpoints_reader_self",
            "reader_id",
            "channel",
            unique=True,
            sqlite_where=text("relation = 'self'"),
            postgresql_where=text("relation = 'self'"),
        ),
        CheckConstraint(_in("channel", Channel), name="channel"),
        CheckConstraint(_in("relation", Relation), name="relation"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    # Where messages go when it is not the address (Telegram: the chat id, as text).
    chat: Mapped[str | None] = mapped_column(String(64))
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    relation: Mapped[str] = mapped_column(String(16), default=Relation.SELF.value)
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the channel says the reader cannot be reached (Telegram's 403: they blocked the
    # bot): no pushes to this endpoint until they bind it again; the reader's others still get them.
    unreachable_at: Mapped[datetime | None]
    unreachable_reason: Mapped[str | None] = mapped_column(String(200))


class BindingCode(Base):
    """A single-use code a librarian hands to a reader to bind their Telegram account."""

    __tablename__ = "binding_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Loan(Base):
    __tablename__ = "loans"
    __table_args__ = (
        # At most one open loan per copy, whatever the application does.
        Index(
            "uq_loans_open_copy",
            "copy_id",
            unique=True,
            sqlite_where=text("returned_at IS NULL"),
            postgresql_where=text("returned_at IS NULL"),
        ),
        CheckConstraint("renewals >= 0", name="renewals_non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    copy_id: Mapped[int] = mapped_column(ForeignKey("copies.id"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id"), index=True)
    lent_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column(index=True)
    returned_at: Mapped[datetime | None]
    renewals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lent_by: Mapped[int | None] = mapped_column(ForeignKey("readers.id"))


class Hold(Base):
    """A place in a record's hold queue (预约)."""

    __tablename__ = "holds"
    __table_args__ = (
        # One active hold per reader per record.
        Index(
            "uq_holds_active_reader_record",
            "record_pk",
            "reader_id",
            unique=True,
            sqlite_where=text("status IN ('waiting', 'ready')"),
            postgresql_where=text("status IN ('waiting', 'ready')"),
        ),
        # A copy waits on the hold shelf for one reader at a time.
        Index(
            "uq_holds_ready_copy",
            "copy_id",
            unique=True,
            sqlite_where=text("status = 'ready'"),
            postgresql_where=text("status = 'ready'"),
        ),
        CheckConstraint(_in("status", HoldStatus), name="status"),
        Index("ix_holds_queue", "record_pk", "status", "placed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_pk: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id"), index=True)
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=HoldStatus.WAITING.value)
    copy_id: Mapped[int | None] = mapped_column(ForeignKey("copies.id"))
    ready_until: Mapped[datetime | None]
    deliver_to_office: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    closed_at: Mapped[datetime | None]


class Notification(Base):
    """The outbox: written in the same transaction as the event, sent later by a claimable sweep."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(_in("status", OutboxStatus), name="status"),
        CheckConstraint(_in("channel", Channel), name="channel"),
        Index("ix_notifications_due", "status", "next_attempt_at"),
        # One push, once per channel of the reader (services/notifications/outbox.py fans out).
        UniqueConstraint("dedupe_key", "channel"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    # The reader's endpoint on this channel (relation self) is looked up when it is sent, so a
    # reader who binds again in between still gets it.
    channel: Mapped[str] = mapped_column(
        String(16), default=Channel.TELEGRAM.value, server_default=Channel.TELEGRAM.value
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationOptOut(Base):
    """A reminder kind a reader switched off in /settings (absent: the school's default applies)."""

    __tablename__ = "notification_prefs"
    __table_args__ = (UniqueConstraint("reader_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ClosedDay(Base):
    """A day the library is closed (holidays, 寒暑假), from the school calendar import."""

    __tablename__ = "closed_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))


class ProcessedUpdate(Base):
    """Telegram update ids whose change is committed: a redelivered update is not run again.

    ``replies`` holds the Bot API calls the update decided on, until they have been sent: an update
    redelivered after a crash sends them instead of running again."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    replies: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class BindAttempt(Base):
    """A refused /bind (unknown, used or expired code): guessing is capped per account (a
    channel and the address the guess came from) and across the bot, in the database so that
    every process sees the same count."""

    __tablename__ = "bind_attempts"
    __table_args__ = (Index("ix_bind_attempts_guesser", "channel", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CornerSwap(Base):
    """A batch of books going to (and coming back from) a class corner, confirmed by a monitor."""

    __tablename__ = "corner_swaps"
    __table_args__ = (CheckConstraint(_in("status", SwapStatus), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    corner_id: Mapped[int] = mapped_column(ForeignKey("class_corners.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=SwapStatus.PROPOSED.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("readers.id"))
    confirmed_at: Mapped[datetime | None]
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("readers.id"))


class CornerSwapItem(Base):
    __tablename__ = "corner_swap_items"
    __table_args__ = (
        UniqueConstraint("swap_id", "copy_id"),
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', SwapOutcome)}", name="outcome"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    swap_id: Mapped[int] = mapped_column(ForeignKey("corner_swaps.id", ondelete="CASCADE"))
    copy_id: Mapped[int] = mapped_column(ForeignKey("copies.id"), index=True)
    # 'in': from the library into the corner; 'out': back from the corner to the library.
    direction: Mapped[str] = mapped_column(String(3))
    # None until confirmed: the copy's status changes only then.
    outcome: Mapped[str | None] = mapped_column(String(10))
    confirmed_at: Mapped[datetime | None]
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("readers.id"))


class CornerHolder(Base):
    """Who has a corner book right now, when the monitor chose to write it down (optional)."""

    __tablename__ = "corner_holders"

    copy_id: Mapped[int] = mapped_column(
        ForeignKey("copies.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    since: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("readers.id"))


class PurchaseSuggestion(Base):
    """A reader's purchase suggestion (荐购), often from a search that found nothing."""

    __tablename__ = "purchase_suggestions"
    __table_args__ = (CheckConstraint(_in("status", SuggestionStatus), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[int | None] = mapped_column(ForeignKey("readers.id"), index=True)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger)
    query: Mapped[str] = mapped_column(String(500))
    note: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default=SuggestionStatus.NEW.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Who did what: circulation, imports, bindings, broadcasts."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))  # 'reader:12', 'cli', 'scheduler'
    action: Mapped[str] = mapped_column(String(60), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PastLoan(Base):
    """A loan from the school's earlier system (``shuxiang import loans``): history only, no copy.

    Recommendations read it beside ``loans``; ``dedupe_key`` (reader, record, lent date) makes the
    import idempotent."""

    __tablename__ = "past_loans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    record_pk: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    lent_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    """A subject or author a reader follows (``/subscribe 科幻``)."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("reader_id", "topic"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WeeklyPreference(Base):
    """How a reader wants the weekly new-book list: 退订 stops it, 少一点 shortens it."""

    __tablename__ = "weekly_preferences"

    reader_id: Mapped[int] = mapped_column(
        ForeignKey("readers.id", ondelete="CASCADE"), primary_key=True
    )
    unsubscribed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    max_books: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ReadingList(Base):
    """A librarian's themed list (书单), e.g. 我爱名著."""

    __tablename__ = "reading_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReadingListItem(Base):
    __tablename__ = "reading_list_items"
    __table_args__ = (UniqueConstraint("list_id", "record_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(
        ForeignKey("reading_lists.id", ondelete="CASCADE"), index=True
    )
    record_pk: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    blurb: Mapped[str | None] = mapped_column(String(300))
    position: Mapped[int] = mapped_column(Integer, default=0)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReadingListSend(Base):
    """A list sent to grades/classes, now or on a date; the sweep fans it out when it is due."""

    __tablename__ = "reading_list_sends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(
        ForeignKey("reading_lists.id", ondelete="CASCADE"), index=True
    )
    # {"grades": [...], "classes": [...]}; both empty means every student.
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    send_at: Mapped[datetime] = mapped_column(index=True)
    sent_at: Mapped[datetime | None]
    recipients: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- The web channel (bot/web): a school's own chat page beside Telegram. ---------------------


class WebConversation(Base):
    """One reader's conversation on the web channel: its id is the chat id and user id the
    web channel's updates carry. ``seq`` orders every change (a message, an edit, a deletion),
    so an open page asks only for what changed since the last one it saw."""

    __tablename__ = "web_conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[int] = mapped_column(
        ForeignKey("readers.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    # The command menu and the reply keyboard the bot last set for this conversation.
    commands: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    keyboard: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class WebSession(Base):
    """A signed-in browser. Only the hash of its cookie is kept; ``csrf`` is sent back in a
    header with every state-changing request."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("web_conversations.id", ondelete="CASCADE"), index=True
    )
    # The web endpoint it was opened on (or the one a later sign-in put in its place); no
    # foreign key, so that a sign-in on another phone can move it over when binding replaces
    # the endpoint. Unbound: no endpoint of that id, the session no longer holds.
    endpoint_id: Mapped[int] = mapped_column(Integer, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(64), default="")


class WebMessage(Base):
    """A message of a web conversation, either way. The bot's text is Telegram's HTML subset,
    a reader's is plain text; the page renders both as text but for the subset's tags."""

    __tablename__ = "web_messages"
    __table_args__ = (Index(None, "conversation_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("web_conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    outgoing: Mapped[bool] = mapped_column(Boolean)
    date: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[bool] = mapped_column(Boolean, default=False)
    markup: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    media: Mapped[str | None] = mapped_column(String(10))  # photo | document
    file_id: Mapped[int | None] = mapped_column(ForeignKey("web_files.id", ondelete="SET NULL"))
    edited: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # A push (the outbox row): stored once however often the sender delivers it.
    notification_id: Mapped[int | None] = mapped_column(Integer, unique=True)


class WebFile(Base):
    """A photo or document the bot sent into a web conversation (a chart, an export)."""

    __tablename__ = "web_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("web_conversations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    mime: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
