"""预约: place, list and cancel holds."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import CancelHoldCB, ReserveCB
from handlers.keyboards import holds_keyboard
from handlers.middlewares import writes
from handlers.render import Translator, esc, fmt_date
from handlers.replies import Replies
from services.circulation import HoldView, cancel_hold, holds_of, place_hold
from services.i18n import t
from services.policy import LoanPolicy
from services.readers import BoundReader
from storage.models import HoldStatus


def render_holds(tr: Translator, holds: list[HoldView], tz: ZoneInfo) -> str:
    if not holds:
        return tr("holds.empty")
    lines = [tr("holds.title", count=len(holds))]
    for n, hold in enumerate(holds, 1):
        if hold.status == HoldStatus.READY and hold.deliver_to_office:
            line = tr("holds.line_ready_office", n=n, title=esc(hold.title))
        elif hold.status == HoldStatus.READY and hold.ready_until is not None:
            until = fmt_date(hold.ready_until, tz)
            line = tr("holds.line_ready", n=n, title=esc(hold.title), until=until)
        else:
            line = tr("holds.line_waiting", n=n, title=esc(hold.title), position=hold.position)
            if hold.deliver_to_office:
                line += tr("holds.office")
        lines.append(line)
    return "\n".join(lines)


async def my_holds(
    message: Message,
    session: AsyncSession,
    reader: BoundReader | None,
    tr: Translator,
    tz: ZoneInfo,
    replies: Replies,
) -> None:
    if reader is None:
        replies.add(message.answer(tr("bind.required")))
        return
    holds = await holds_of(session, reader.reader_id)
    replies.add(message.answer(render_holds(tr, holds, tz), reply_markup=holds_keyboard(tr, holds)))


async def on_reserve(
    callback: CallbackQuery,
    callback_data: ReserveCB,
    session: AsyncSession,
    reader: BoundReader | None,
    tr: Translator,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    if reader is None:
        replies.add(callback.answer(tr("bind.required"), show_alert=True))
        return
    placed = await place_hold(
        session,
        reader_id=reader.reader_id,
        record_pk=callback_data.record_pk,
        policy=policy,
        deliver_to_office=callback_data.office,
    )
    key = "holds.placed_office" if placed.deliver_to_office else "holds.placed"
    replies.add(callback.answer())
    if isinstance(callback.message, Message):
        replies.add(callback.message.edit_reply_markup(reply_markup=None))
        replies.add(
            callback.message.answer(tr(key, title=esc(placed.title), position=placed.position))
        )


async def on_cancel(
    callback: CallbackQuery,
    callback_data: CancelHoldCB,
    session: AsyncSession,
    reader: BoundReader | None,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    if reader is None:
        replies.add(callback.answer(tr("bind.required"), show_alert=True))
        return
    title = await cancel_hold(
        session, reader_id=reader.reader_id, hold_id=callback_data.hold_id, policy=policy
    )
    replies.add(callback.answer())
    if isinstance(callback.message, Message):
        holds = await holds_of(session, reader.reader_id)
        if callback_data.in_list:
            text = render_holds(tr, holds, tz)
            replies.add(callback.message.edit_text(text, reply_markup=holds_keyboard(tr, holds)))
        else:
            replies.add(callback.message.edit_reply_markup(reply_markup=None))
        replies.add(callback.message.answer(tr("holds.cancelled", title=esc(title))))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(my_holds, Command("holds"))
    router.message.register(my_holds, F.text == t("menu.holds"))
    router.callback_query.register(on_reserve, ReserveCB.filter(), flags=writes())
    router.callback_query.register(on_cancel, CancelHoldCB.filter(), flags=writes())
    return router
