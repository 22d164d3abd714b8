"""A push's buttons pressed (handlers/notify_keyboards.py makes the keyboard from the kind's
buttons): pressing one does what it says: 续借 renews in one tap (or the refusal says exactly
why not), 还要 confirms a ready hold, 不要了 gives it up so the copy passes on at once. Under the
weekly new-book list, 预约 N places a hold, 详情 N opens the book card (the search router's), and
退订/少一点 change the list; those leave the list's buttons in place for the next press."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from handlers.callbacks import NotifyCB
from handlers.context import ReaderCtx
from handlers.middlewares import bound
from handlers.render import esc, fmt_date
from services.circulation import HoldStatus, cancel_hold, hold_of, place_hold, renew
from services.errors import ServiceError
from services.notifications import Action
from services.recommend.weekly import fewer_books, unsubscribe_weekly

# Done once: the buttons go away after the press.
ONCE_ACTIONS = frozenset({Action.RENEW, Action.KEEP_HOLD, Action.DROP_HOLD})
# Under a list of several books: the list keeps its buttons for the next press.
LIST_ACTIONS = frozenset({Action.RESERVE, Action.STOP_WEEKLY, Action.FEWER_WEEKLY})
# Action.DETAILS is packed as the search router's BookCB; a forged NotifyCB of it falls through.


async def _kept_text(ctx: ReaderCtx, hold_id: int) -> str:
    hold = await hold_of(ctx.session, ctx.actor.own_id, hold_id, actor=ctx.actor)
    if hold is None or hold.status != HoldStatus.READY:
        raise ServiceError("hold.not_found")
    if hold.deliver_to_office or hold.ready_until is None:
        return ctx.tr("notify.kept_office", title=esc(hold.title))
    until = fmt_date(hold.ready_until, ctx.tz)
    return ctx.tr("notify.kept", title=esc(hold.title), until=until)


async def on_push_button(callback: CallbackQuery, callback_data: NotifyCB, ctx: ReaderCtx) -> None:
    session, tr, now = ctx.session, ctx.tr, ctx.now()
    ref = callback_data.ref
    if callback_data.action == Action.RENEW:
        done = await renew(session, actor=ctx.actor, loan_id=ref, policy=ctx.policy, now=now)
        text = tr("loans.renewed", title=esc(done.title), due=fmt_date(done.due_at, ctx.tz))
    elif callback_data.action == Action.KEEP_HOLD:
        text = await _kept_text(ctx, ref)
    else:
        title = await cancel_hold(session, actor=ctx.actor, hold_id=ref, policy=ctx.policy, now=now)
        text = tr("notify.dropped", title=esc(title))
    if isinstance(callback.message, Message):
        # The buttons did their job: a second tap would only be refused.
        ctx.replies.add(callback.message.edit_reply_markup(reply_markup=None))
        ctx.replies.add(callback.message.answer(text))
    ctx.replies.add(callback.answer())


async def on_list_button(callback: CallbackQuery, callback_data: NotifyCB, ctx: ReaderCtx) -> None:
    session, tr, reader_id = ctx.session, ctx.tr, ctx.actor.own_id
    if callback_data.action == Action.RESERVE:
        placed = await place_hold(
            session,
            actor=ctx.actor,
            reader_id=ctx.actor.own_id,
            record_pk=callback_data.ref,
            policy=ctx.policy,
            now=ctx.now(),
        )
        text = tr("holds.placed", title=esc(placed.title), position=placed.position)
    elif callback_data.action == Action.STOP_WEEKLY:
        await unsubscribe_weekly(session, reader_id)
        text = tr("recommend.unsubscribed")
    else:
        text = tr("recommend.fewer", count=await fewer_books(session, reader_id))
    if isinstance(callback.message, Message):
        ctx.replies.add(callback.message.answer(text))
    ctx.replies.add(callback.answer())


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
