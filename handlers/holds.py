"""预约: place, list and cancel holds."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.methods import EditMessageReplyMarkup, EditMessageText
from aiogram.types import CallbackQuery, Message

from handlers.callbacks import CancelHoldCB, CancelHoldSureCB, ReserveCB
from handlers.context import ReaderCtx
from handlers.keyboards import cancel_hold_confirm_keyboard, holds_keyboard
from handlers.middlewares import bound
from handlers.render import Translator, esc, fmt_date
from services.circulation import HoldStatus, HoldView, cancel_hold, hold_of, holds_of, place_hold
from services.i18n import t


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


async def my_holds(message: Message, ctx: ReaderCtx) -> None:
    holds = await holds_of(ctx.session, ctx.actor.own_id, actor=ctx.actor)
    ctx.replies.add(
        message.answer(
            render_holds(ctx.tr, holds, ctx.tz), reply_markup=holds_keyboard(ctx.tr, holds)
        )
    )


async def on_reserve(callback: CallbackQuery, callback_data: ReserveCB, ctx: ReaderCtx) -> None:
    placed = await place_hold(
        ctx.session,
        actor=ctx.actor,
        reader_id=ctx.actor.own_id,
        record_pk=callback_data.record_pk,
        policy=ctx.policy,
        deliver_to_office=callback_data.office,
        now=ctx.now(),
    )
    key = "holds.placed_office" if placed.deliver_to_office else "holds.placed"
    ctx.replies.add(callback.answer())
    if isinstance(callback.message, Message):
        ctx.replies.add(callback.message.edit_reply_markup(reply_markup=None))
        text = ctx.tr(key, title=esc(placed.title), position=placed.position)
        ctx.replies.add(callback.message.answer(text))


async def on_cancel(callback: CallbackQuery, callback_data: CancelHoldCB, ctx: ReaderCtx) -> None:
    """取消 asks first; only 确定 (``on_cancel_sure``) cancels."""
    tr = ctx.tr
    hold = await hold_of(ctx.session, ctx.actor.own_id, callback_data.hold_id, actor=ctx.actor)
    if hold is None or not isinstance(callback.message, Message):
        ctx.replies.add(callback.answer(tr("hold.not_found"), show_alert=True))
        return
    keyboard = cancel_hold_confirm_keyboard(
        tr, hold.hold_id, callback.message.message_id, in_list=callback_data.in_list
    )
    ctx.replies.add(callback.answer())
    ctx.replies.add(
        callback.message.answer(
            tr("confirm.cancel_hold", title=esc(hold.title)), reply_markup=keyboard
        )
    )


async def on_cancel_sure(
    callback: CallbackQuery, callback_data: CancelHoldSureCB, ctx: ReaderCtx
) -> None:
    """A second 确定 finds the hold gone: the refusal (hold.not_found) is the polite answer."""
    tr = ctx.tr
    title = await cancel_hold(
        ctx.session,
        actor=ctx.actor,
        hold_id=callback_data.hold_id,
        policy=ctx.policy,
        now=ctx.now(),
    )
    ctx.replies.add(callback.answer())
    if not isinstance(callback.message, Message):
        return
    chat_id = callback.message.chat.id
    if callback_data.in_list:  # the list it was pressed under, refreshed
        holds = await holds_of(ctx.session, ctx.actor.own_id, actor=ctx.actor)
        ctx.replies.add(
            EditMessageText(
                chat_id=chat_id,
                message_id=callback_data.origin,
                text=render_holds(tr, holds, ctx.tz),
                reply_markup=holds_keyboard(tr, holds),
            )
        )
    else:  # the book card: its 取消预约 button no longer applies
        ctx.replies.add(EditMessageReplyMarkup(chat_id=chat_id, message_id=callback_data.origin))
    ctx.replies.add(callback.message.edit_text(tr("holds.cancelled", title=esc(title))))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(my_holds, Command("holds"), flags=bound())
    router.message.register(my_holds, F.text == t("menu.holds"), flags=bound())
    router.callback_query.register(on_reserve, ReserveCB.filter(), flags=bound(writes=True))
    router.callback_query.register(on_cancel, CancelHoldCB.filter(), flags=bound())
    router.callback_query.register(
        on_cancel_sure, CancelHoldSureCB.filter(), flags=bound(writes=True)
    )
    return router
