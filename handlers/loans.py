"""我的借阅: open loans with due dates, and renewal by title; 借阅历史, page by page.

The list is ordered by due date, then title, then loan id; after a renewal the message is edited
in place in the order it had before, so the rows do not move under the reader's finger."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from handlers.callbacks import HistoryCB, RenewCB
from handlers.context import AnyCtx, ReaderCtx
from handlers.keyboards import history_keyboard, loans_keyboard
from handlers.middlewares import bound
from handlers.render import Translator, esc, fmt_date
from services.circulation import HistoryPage, LoanView, loan_history, loans_of, renew
from services.i18n import t
from services.policy import calendar_days

DUE_SOON_DAYS = 3


def render_loans(ctx: AnyCtx, loans: list[LoanView]) -> str:
    tr, tz, now = ctx.tr, ctx.tz, ctx.now()
    if not loans:
        return tr("loans.empty")
    lines = [tr("loans.title", count=len(loans))]
    for n, loan in enumerate(loans, 1):
        state = ""
        days_left = calendar_days(now, loan.due_at, tz)
        if loan.overdue:
            state = tr("loans.state_overdue", days=max(1, calendar_days(loan.due_at, now, tz)))
        elif days_left < DUE_SOON_DAYS:
            state = tr("loans.state_due_soon", days=days_left)
        if loan.renewals:
            state += tr("loans.state_renewed", count=loan.renewals)
        due = fmt_date(loan.due_at, tz)
        line = tr("loans.line", n=n, title=esc(loan.title), due=due, state=state)
        if loan.refusal is not None:
            why = tr(f"renewal.refused_{loan.refusal.reason}", **loan.refusal.params)
            line += f"\n　{why}"
        lines.append(line)
    return "\n".join(lines)


def in_order(loans: list[LoanView], order: list[int]) -> list[LoanView]:
    """``loans`` in the order of the loan ids in ``order`` (ids not in it go last, as given)."""
    place = {loan_id: n for n, loan_id in enumerate(order)}
    return sorted(loans, key=lambda loan: place.get(loan.loan_id, len(place)))


def render_history(tr: Translator, history: HistoryPage, tz: ZoneInfo) -> str:
    if not history.total:
        return tr("history.empty")
    lines = [tr("history.title", total=history.total, page=history.page + 1, pages=history.pages)]
    for n, loan in enumerate(history.loans, history.first_number):
        lines.append(
            tr(
                "history.line",
                n=n,
                title=esc(loan.title),
                lent=fmt_date(loan.lent_at, tz),
                returned=fmt_date(loan.returned_at, tz),
            )
        )
    return "\n".join(lines)


async def my_loans(message: Message, ctx: ReaderCtx) -> None:
    loans = await loans_of(
        ctx.session, ctx.actor.own_id, ctx.now(), actor=ctx.actor, policy=ctx.policy
    )
    ctx.replies.add(
        message.answer(render_loans(ctx, loans), reply_markup=loans_keyboard(ctx.tr, loans))
    )


async def on_renew(callback: CallbackQuery, callback_data: RenewCB, ctx: ReaderCtx) -> None:
    now = ctx.now()
    mine = await loans_of(ctx.session, ctx.actor.own_id, now, actor=ctx.actor)
    shown = [loan.loan_id for loan in mine]
    renewed = await renew(
        ctx.session,
        actor=ctx.actor,
        loan_id=callback_data.loan_id,
        policy=ctx.policy,
        now=now,
    )
    text = ctx.tr("loans.renewed", title=esc(renewed.title), due=fmt_date(renewed.due_at, ctx.tz))
    ctx.replies.add(callback.answer())
    if isinstance(callback.message, Message):
        loans = in_order(
            await loans_of(ctx.session, ctx.actor.own_id, now, actor=ctx.actor, policy=ctx.policy),
            shown,
        )
        ctx.replies.add(
            callback.message.edit_text(
                render_loans(ctx, loans), reply_markup=loans_keyboard(ctx.tr, loans)
            )
        )
        ctx.replies.add(callback.message.answer(text))


async def history(message: Message, ctx: ReaderCtx) -> None:
    page = await loan_history(ctx.session, ctx.actor.own_id, actor=ctx.actor)
    markup = history_keyboard(ctx.tr, page.page, page.pages)
    ctx.replies.add(message.answer(render_history(ctx.tr, page, ctx.tz), reply_markup=markup))


async def on_history(callback: CallbackQuery, callback_data: HistoryCB, ctx: ReaderCtx) -> None:
    if not isinstance(callback.message, Message):
        ctx.replies.add(callback.answer(ctx.tr("errors.stale_button"), show_alert=True))
        return
    page = await loan_history(ctx.session, ctx.actor.own_id, callback_data.page, actor=ctx.actor)
    text = render_history(ctx.tr, page, ctx.tz)
    markup = history_keyboard(ctx.tr, page.page, page.pages)
    ctx.replies.add(callback.answer())
    if callback_data.fresh:
        ctx.replies.add(callback.message.answer(text, reply_markup=markup))
    else:
        ctx.replies.add(callback.message.edit_text(text, reply_markup=markup))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(my_loans, Command("loans"), flags=bound())
    router.message.register(my_loans, F.text == t("menu.loans"), flags=bound())
    router.callback_query.register(on_renew, RenewCB.filter(), flags=bound(writes=True))
    router.message.register(history, Command("history"), flags=bound())
    router.callback_query.register(on_history, HistoryCB.filter(), flags=bound())
    return router
