"""Pushes in Telegram form: a kind's buttons (services/notifications/kinds.py) become an inline
keyboard, and pressing one does what it says: 续借 renews in one tap (or the refusal says exactly
why not), 还要 confirms a ready hold, 不要了 gives it up so the copy passes on at once. Under the
weekly new-book list, 预约 N places a hold, 详情 N opens the book card (the search router's), and
退订/少一点 change the list; those leave the list's buttons in place for the next press."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import BookCB, NotifyCB
from handlers.middlewares import bound
from handlers.render import Translator, esc, fmt_date
from handlers.replies import Replies
from services.actor import Actor
from services.circulation import cancel_hold, hold_of, place_hold, renew
from services.errors import ServiceError
from services.notifications import Action, Rendered, RenderedButton
from services.policy import LoanPolicy
from services.recommend.weekly import fewer_books, unsubscribe_weekly
from storage.models import HoldStatus

# Done once: the buttons go away after the press.
ONCE_ACTIONS = frozenset({Action.RENEW, Action.KEEP_HOLD, Action.DROP_HOLD})
# Under a list of several books: the list keeps its buttons for the next press.
LIST_ACTIONS = frozenset({Action.RESERVE, Action.STOP_WEEKLY, Action.FEWER_WEEKLY})
# Action.DETAILS is packed as the search router's BookCB; a forged NotifyCB of it falls through.
ITEMS_PER_ROW = 5


def _button(b: RenderedButton) -> InlineKeyboardButton:
    # 详情 is the book card everywhere: the search router shows it, in a read-only transaction.
    if b.action == Action.DETAILS:
        data = BookCB(record_pk=b.ref).pack()
    else:
        data = NotifyCB(action=b.action, ref=b.ref).pack()
    return InlineKeyboardButton(text=b.label, callback_data=data)


def _row(buttons: Sequence[RenderedButton]) -> list[list[InlineKeyboardButton]]:
    return [
        [_button(b) for b in buttons[i : i + ITEMS_PER_ROW]]
        for i in range(0, len(buttons), ITEMS_PER_ROW)
    ]


def notification_keyboard(rendered: Rendered) -> InlineKeyboardMarkup | None:
    rows = [row for item_row in rendered.item_rows for row in _row(item_row)]
    if rendered.buttons:
        rows.append([_button(b) for b in rendered.buttons])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


async def _kept_text(
    session: AsyncSession, reader: Actor, hold_id: int, tr: Translator, tz: ZoneInfo
) -> str:
    hold = await hold_of(session, reader.own_id, hold_id, actor=reader)
    if hold is None or hold.status != HoldStatus.READY:
        raise ServiceError("hold.not_found")
    if hold.deliver_to_office or hold.ready_until is None:
        return tr("notify.kept_office", title=esc(hold.title))
    return tr("notify.kept", title=esc(hold.title), until=fmt_date(hold.ready_until, tz))


async def on_push_button(
    callback: CallbackQuery,
    callback_data: NotifyCB,
    session: AsyncSession,
    reader: Actor,
    tr: Translator,
    tz: ZoneInfo,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    ref = callback_data.ref
    if callback_data.action == Action.RENEW:
        done = await renew(session, actor=reader, loan_id=ref, policy=policy)
        text = tr("loans.renewed", title=esc(done.title), due=fmt_date(done.due_at, tz))
    elif callback_data.action == Action.KEEP_HOLD:
        text = await _kept_text(session, reader, ref, tr, tz)
    else:
        title = await cancel_hold(session, actor=reader, hold_id=ref, policy=policy)
        text = tr("notify.dropped", title=esc(title))
    if isinstance(callback.message, Message):
        # The buttons did their job: a second tap would only be refused.
        replies.add(callback.message.edit_reply_markup(reply_markup=None))
        replies.add(callback.message.answer(text))
    replies.add(callback.answer())


async def on_list_button(
    callback: CallbackQuery,
    callback_data: NotifyCB,
    session: AsyncSession,
    reader: Actor,
    tr: Translator,
    policy: LoanPolicy,
    replies: Replies,
) -> None:
    if callback_data.action == Action.RESERVE:
        placed = await place_hold(
            session,
            actor=reader,
            reader_id=reader.own_id,
            record_pk=callback_data.ref,
            policy=policy,
        )
        text = tr("holds.placed", title=esc(placed.title), position=placed.position)
    elif callback_data.action == Action.STOP_WEEKLY:
        await unsubscribe_weekly(session, reader.own_id)
        text = tr("recommend.unsubscribed")
    else:
        text = tr("recommend.fewer", count=await fewer_books(session, reader.own_id))
    if isinstance(callback.message, Message):
        replies.add(callback.message.answer(text))
    replies.add(callback.answer())


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.callback_query.register(
        on_list_button, NotifyCB.filter(F.action.in_(LIST_ACTIONS)), flags=bound(writes=True)
    )
    router.callback_query.register(
        on_push_button, NotifyCB.filter(F.action.in_(ONCE_ACTIONS)), flags=bound(writes=True)
    )
    return router
