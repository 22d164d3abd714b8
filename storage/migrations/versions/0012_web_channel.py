"""web channel: conversations, sessions and files of the school's own chat page

The web channel (bot/web) keeps each reader's conversation, the signed-in browsers (only a
hash of each cookie) and the photos and documents the bot sent there in the database, so that
they survive a restart and every process sees them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 20:30:19.611387
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("commands", sa.JSON(), nullable=True),
        sa.Column("keyboard", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["reader_id"],
            ["readers.id"],
            name=op.f("fk_web_conversations_reader_id_readers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_conversations")),
        sa.UniqueConstraint("reader_id", name=op.f("uq_web_conversations_reader_id")),
    )
    op.create_table(
        "web_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("mime", sa.String(length=100), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["web_conversations.id"],
            name=op.f("fk_web_files_conversation_id_web_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_files")),
    )
    with op.batch_alter_table("web_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_files_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_web_files_created_at"), ["created_at"], unique=False)

    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["web_conversations.id"],
            name=op.f("fk_web_sessions_conversation_id_web_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_sessions_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_web_sessions_endpoint_id"), ["endpoint_id"], unique=False
        )

    op.create_table(
        "web_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("outgoing", sa.Boolean(), nullable=False),
        sa.Column("date", sa.DateTime(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Boolean(), nullable=False),
        sa.Column("markup", sa.JSON(), nullable=True),
        sa.Column("media", sa.String(length=10), nullable=True),
        sa.Column("file_id", sa.Integer(), nullable=True),
        sa.Column("edited", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["web_conversations.id"],
            name=op.f("fk_web_messages_conversation_id_web_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["web_files.id"],
            name=op.f("fk_web_messages_file_id_web_files"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_messages")),
        sa.UniqueConstraint("notification_id", name=op.f("uq_web_messages_notification_id")),
    )
    with op.batch_alter_table("web_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_messages_conversation_id_seq"),
            ["conversation_id", "seq"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_web_messages_date"), ["date"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("web_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_messages_date"))
        batch_op.drop_index(batch_op.f("ix_web_messages_conversation_id_seq"))

    op.drop_table("web_messages")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_endpoint_id"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_conversation_id"))

    op.drop_table("web_sessions")
    with op.batch_alter_table("web_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_files_created_at"))
        batch_op.drop_index(batch_op.f("ix_web_files_conversation_id"))

    op.drop_table("web_files")
    op.drop_table("web_conversations")
