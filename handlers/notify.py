"""Pushes in Telegram form: a kind's buttons (services/notifications/kinds.py) become an inline
keyboard, and pressing one does what it says: 续借 renews in one tap (or the refusal says exactly
why not), 还要 confirms a ready hold, 不要了 gives it up so the copy passes on at once."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import NotifyCB
from handlers.middlewares import writes
from handlers.render import Translator, esc, fmt_date
from handlers.replies import Replies
from services.circulation import cancel_hold, holds_of, renew
from services.errors import ServiceError
from services.notifications import Action, RenderedButton
from services.policy import LoanPolicy
from services.readers import BoundReader
from storage.models import HoldStatus


def notification_keyboard(buttons: Sequence[RenderedButton]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    row = [
        InlineKeyboardButton(
            text=b.label, callback_data=NotifyCB(action=b.action, ref=b.ref).pack()
        )
        for b in buttons
    ]
    return InlineKeyboardMarkup(inline_keyboard=[row])


async def _kept_text(
    session: AsyncSession, reader: BoundReader, hold_id: int, tr: Translator, tz: ZoneInfo
) -> str:
    hold = next(
        (h for h in await holds_of(session, reader.reader_id) if h.hold_id == hold_id), None
    )
    if hold is None or hold.status != HoldStatus.READY:
        raise ServiceError("hold.not_found")
    if hold.deliver_to_office or hold.ready_until is None:
        return tr("notify.kept_office", title=esc(hold.title))
    return tr("notify.kept", title=esc(hold.title), until=fmt_date(hold.ready_until, tz))


async def on_push_button(
    callback: CallbackQuery,
    callback_data: NotifyCB,
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
    ref = callback_data.ref
    if callback_data.action == Action.RENEW:
        done = await renew(session, reader_id=reader.reader_id, loan_id=ref, policy=policy)
        text = tr("loans.renewed", title=esc(done.title), due=fmt_date(done.due_at, tz))
    elif callback_data.action == Action.KEEP_HOLD:
        text = await _kept_text(session, reader, ref, tr, tz)
    else:
        title = await cancel_hold(session, reader_id=reader.reader_id, hold_id=ref, policy=policy)
        text = tr("notify.dropped", title=esc(title))
    if isinstance(callback.message, Message):
        # The buttons did their job: a second tap would only be refused.
        replies.add(callback.message.edit_reply_markup(reply_markup=None))
        replies.add(callback.message.answer(text))
    replies.add(callback.answer())


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.callback_query.register(on_push_button, NotifyCB.filter(), flags=writes())
    return router
