"""Librarian commands: /checkout, /return, /reader. Everyone else is refused."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.middlewares import writes
from handlers.render import Translator, esc, fmt_date
from handlers.replies import Replies
from services.circulation import checkout, holds_of, loans_of, reader_by_card, return_copy
from services.policy import LoanPolicy, calendar_days
from services.readers import BoundReader
from storage.models import HoldStatus


def is_librarian(event: Message, reader: BoundReader | None = None) -> bool:
    """Filter: aiogram injects ``reader`` (set by ReaderMiddleware) by name."""
    return reader is not None and reader.is_librarian


async def refuse(message: Message, tr: Translator, replies: Replies) -> None:
    replies.add(message.answer(tr("lib.only")))


async def checkout_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: BoundReader | None,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    assert reader is not None
    args = (command.args or "").split()
    if len(args) != 2:
        replies.add(message.answer(tr("lib.usage_checkout")))
        return
    done = await checkout(
        session, card_no=args[0], barcode=args[1], policy=policy, actor_reader_id=reader.reader_id
    )
    text = tr(
        "lib.checked_out",
        title=esc(done.title),
        barcode=esc(done.barcode),
        name=esc(done.reader_name),
        card_no=esc(done.card_no),
        due=fmt_date(done.due_at, tz),
    )
    if done.collected_hold:
        text += tr("lib.collected")
    replies.add(message.answer(text))


async def return_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: BoundReader | None,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    assert reader is not None
    args = (command.args or "").split()
    if len(args) != 1:
        replies.add(message.answer(tr("lib.usage_return")))
        return
    done = await return_copy(
        session, barcode=args[0], policy=policy, actor_reader_id=reader.reader_id
    )
    lines = [
        tr(
            "lib.returned",
            title=esc(done.title),
            barcode=esc(done.barcode),
            name=esc(done.reader_name),
            card_no=esc(done.card_no),
        )
    ]
    late = calendar_days(done.due_at, done.returned_at, tz)
    if late:
        lines.append(tr("lib.returned_overdue", days=late))
    if done.held_for_name:
        key = "lib.returned_hold_office" if done.deliver_to_office else "lib.returned_hold"
        lines.append(tr(key, name=esc(done.held_for_name), card_no=esc(done.held_for_card)))
    replies.add(message.answer("\n".join(lines)))


async def reader_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: BoundReader | None,
    tr: Translator,
    tz: ZoneInfo,
    replies: Replies,
) -> None:
    card_no = (command.args or "").strip()
    if not card_no or " " in card_no:
        replies.add(message.answer(tr("lib.usage_reader")))
        return
    who = await reader_by_card(session, card_no)
    loans = await loans_of(session, who.id)
    holds = await holds_of(session, who.id)
    lines = [
        tr(
            "lib.reader",
            name=esc(who.name),
            card_no=esc(who.card_no),
            role=tr(f"role.{who.role}"),
            class_name=esc(who.class_name or ""),
        ),
        tr("lib.reader_loans", count=len(loans)),
    ]
    for loan in loans:
        overdue = tr("lib.reader_overdue") if loan.overdue else ""
        lines.append(
            tr(
                "lib.reader_loan_line",
                title=esc(loan.title),
                barcode=esc(loan.barcode),
                due=fmt_date(loan.due_at, tz),
                overdue=overdue,
            )
        )
    if not loans:
        lines.append(tr("lib.reader_none"))
    lines.append(tr("lib.reader_holds", count=len(holds)))
    for hold in holds:
        state = (
            tr("lib.reader_hold_ready")
            if hold.status == HoldStatus.READY
            else tr("lib.reader_hold_waiting", position=hold.position)
        )
        lines.append(tr("lib.reader_hold_line", title=esc(hold.title), state=state))
    if not holds:
        lines.append(tr("lib.reader_none"))
    replies.add(message.answer("\n".join(lines)))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(checkout_command, Command("checkout"), is_librarian, flags=writes())
    router.message.register(return_command, Command("return"), is_librarian, flags=writes())
    router.message.register(reader_command, Command("reader"), is_librarian)
    router.message.register(refuse, Command("checkout", "return", "reader"))
    return router
