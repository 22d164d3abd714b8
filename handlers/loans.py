"""我的借阅: open loans with due dates, and renewal."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import RenewCB
from handlers.keyboards import loans_keyboard
from handlers.middlewares import writes
from handlers.render import Translator, esc, fmt_date
from handlers.replies import Replies
from services.circulation import LoanView, loans_of, renew
from services.i18n import t
from services.policy import LoanPolicy, calendar_days
from services.readers import BoundReader
from storage.models import utcnow

DUE_SOON_DAYS = 3


def render_loans(tr: Translator, loans: list[LoanView], tz: ZoneInfo) -> str:
    if not loans:
        return tr("loans.empty")
    now = utcnow()
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
        lines.append(
            tr("loans.line", n=n, title=esc(loan.title), due=fmt_date(loan.due_at, tz), state=state)
        )
    return "\n".join(lines)


async def my_loans(
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
    loans = await loans_of(session, reader.reader_id)
    replies.add(message.answer(render_loans(tr, loans, tz), reply_markup=loans_keyboard(tr, loans)))


async def on_renew(
    callback: CallbackQuery,
    callback_data: RenewCB,
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
    renewed = await renew(
        session, reader_id=reader.reader_id, loan_id=callback_data.loan_id, policy=policy
    )
    text = tr("loans.renewed", title=esc(renewed.title), due=fmt_date(renewed.due_at, tz))
    replies.add(callback.answer())
    if isinstance(callback.message, Message):
        loans = await loans_of(session, reader.reader_id)
        replies.add(
            callback.message.edit_text(
                render_loans(tr, loans, tz), reply_markup=loans_keyboard(tr, loans)
            )
        )
        replies.add(callback.message.answer(text))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(my_loans, Command("loans"))
    router.message.register(my_loans, F.text == t("menu.loans"))
    router.callback_query.register(on_renew, RenewCB.filter(), flags=writes())
    return router
