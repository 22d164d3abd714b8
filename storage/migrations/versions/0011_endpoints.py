"""endpoints: one reader, many ways to reach them (Telegram, the web chat)

``telegram_bindings`` becomes ``endpoints`` (channel, address, chat, reader, relation), every
binding copied as a Telegram endpoint of the reader's own, its unreachable mark kept. Refused
/bind attempts are counted per channel and address instead of per Telegram user. The outbox
keeps one row per push and channel: ``notifications.channel`` (every existing row: telegram),
its dedupe key unique per channel.

Downgrade keeps the Telegram endpoints as bindings; web endpoints, web pushes and web attempts
have nowhere to go and are dropped.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("chat", sa.String(length=64), nullable=True),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("bound_at", sa.DateTime(), nullable=False),
        sa.Column("unreachable_at", sa.DateTime(), nullable=True),
        sa.Column("unreachable_reason", sa.String(length=200), nullable=True),
        sa.CheckConstraint("channel IN ('telegram', 'web')", name=op.f("ck_endpoints_channel")),
        sa.CheckConstraint("relation IN ('self')", name=op.f("ck_endpoints_relation")),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["readers.id"],
            name=op.f("fk_endpoints_reader_id_readers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("channel", "address", name=op.f("uq_endpoints_channel_address")),
    )
    with op.batch_alter_table("endpoints") as batch:
        batch.create_index(batch.f("ix_endpoints_reader_id"), ["reader_id"], unique=False)
        batch.create_index(
            "uq_endpoints_reader_self",
            ["reader_id", "channel"],
            unique=True,
            sqlite_where=sa.text("relation = 'self'"),
            postgresql_where=sa.text("relation = 'self'"),
        )
    op.execute(
        "INSERT INTO endpoints (channel, address, chat, reader_id, relation, bound_at,"
        " unreachable_at, unreachable_reason)"
        " SELECT 'telegram', CAST(telegram_user_id AS VARCHAR(64)),"
        # A private chat's id is its user's: kept only when it differs, as bind() does.
        " CASE WHEN chat_id = telegram_user_id THEN NULL ELSE CAST(chat_id AS VARCHAR(64)) END,"
        " reader_id, 'self', bound_at, unreachable_at, unreachable_reason"
        " FROM telegram_bindings ORDER BY id"
    )
    op.drop_table("telegram_bindings")

    with op.batch_alter_table("bind_attempts") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(length=16), nullable=False, server_default="telegram")
        )
        batch.add_column(sa.Column("address", sa.String(length=64), nullable=True))
    op.execute("UPDATE bind_attempts SET address = CAST(telegram_user_id AS VARCHAR(64))")
    with op.batch_alter_table("bind_attempts") as batch:
        batch.alter_column("channel", server_default=None)
        batch.alter_column("address", existing_type=sa.String(length=64), nullable=False)
        batch.drop_index(batch.f("ix_bind_attempts_telegram_user_id"))
        batch.drop_column("telegram_user_id")
        batch.create_index("ix_bind_attempts_guesser", ["channel", "address"], unique=False)

    with op.batch_alter_table("notifications") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(length=16), nullable=False, server_default="telegram")
        )
        batch.drop_constraint(batch.f("uq_notifications_dedupe_key"), type_="unique")
        batch.create_unique_constraint(
            batch.f("uq_notifications_dedupe_key_channel"), ["dedupe_key", "channel"]
        )
        batch.create_check_constraint(
            batch.f("ck_notifications_channel"), "channel IN ('telegram', 'web')"
        )


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE channel <> 'telegram'")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint(batch.f("ck_notifications_channel"), type_="check")
        batch.drop_constraint(batch.f("uq_notifications_dedupe_key_channel"), type_="unique")
        batch.create_unique_constraint(batch.f("uq_notifications_dedupe_key"), ["dedupe_key"])
        batch.drop_column("channel")

    op.execute("DELETE FROM bind_attempts WHERE channel <> 'telegram'")
    with op.batch_alter_table("bind_attempts") as batch:
        batch.add_column(sa.Column("telegram_user_id", sa.BigInteger(), nullable=True))
    op.execute("UPDATE bind_attempts SET telegram_user_id = CAST(address AS BIGINT)")
    with op.batch_alter_table("bind_attempts") as batch:
        batch.alter_column("telegram_user_id", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_index("ix_bind_attempts_guesser")
        batch.drop_column("address")
        batch.drop_column("channel")
        batch.create_index(
            batch.f("ix_bind_attempts_telegram_user_id"), ["telegram_user_id"], unique=False
        )

    op.create_table(
        "telegram_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("bound_at", sa.DateTime(), nullable=False),
        sa.Column("unreachable_at", sa.DateTime(), nullable=True),
        sa.Column("unreachable_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["readers.id"],
            name=op.f("fk_telegram_bindings_reader_id_readers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_bindings")),
        sa.UniqueConstraint("reader_id", name=op.f("uq_telegram_bindings_reader_id")),
        sa.UniqueConstraint("telegram_user_id", name=op.f("uq_telegram_bindings_telegram_user_id")),
    )
    op.execute(
        "INSERT INTO telegram_bindings (reader_id, telegram_user_id, chat_id, bound_at,"
        " unreachable_at, unreachable_reason)"
        " SELECT reader_id, CAST(address AS BIGINT), CAST(COALESCE(chat, address) AS BIGINT),"
        " bound_at, unreachable_at, unreachable_reason"
        " FROM endpoints WHERE channel = 'telegram' AND relation = 'self' ORDER BY id"
    )
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_index("uq_endpoints_reader_self")
        batch.drop_index(batch.f("ix_endpoints_reader_id"))
    op.drop_table("endpoints")
