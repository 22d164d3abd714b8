"""Plain text that is not a search: small talk (谢谢, hello, 👍) gets a short friendly answer, a
question about using Shuxiang (怎么续借, how do I renew a book?, 什么是预约) the help for that
feature, a barcode of one of our copies that copy's book card, and a named list (四大名著,
the librarian's 中考必读) the list. Anything else goes on to the search (SkipHandler).

nlp/intent.py decides what a message is and never takes a title for a question; a message that
is small talk and also a title (谢谢你, 早安) gets the answer with a button to the book."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.types import InlineKeyboardMarkup, Message

from handlers.context import AnyCtx
from handlers.keyboards import details_keyboard, title_buttons
from handlers.render import Translator, esc
from handlers.search import MAX_QUERY_MESSAGE, card_reply
from handlers.start import help_text
from nlp.intent import Intent, classify
from services.actor import Actor, Role
from services.policy import LoanPolicy
from services.recommend.text import render_reading_list
from services.talk import NamedList, copy_record, named_list, same_title

# Help that only a bound reader can use: the answer says how to bind as well.
NEEDS_CARD = frozenset(
    {Intent.RENEW, Intent.RESERVE, Intent.LOANS, Intent.REMINDERS, Intent.SUGGEST, Intent.LIMITS}
)


async def on_text(message: Message, ctx: AnyCtx, shelf_map: dict[str, str]) -> None:
    text = (message.text or "").strip()
    if len(text) > MAX_QUERY_MESSAGE:
        raise SkipHandler
    intent = classify(text)
    if intent is not None and intent.small_talk:
        await _small_talk(message, ctx, text, intent)
        return
    if intent is not None:
        ctx.replies.add(message.reply(_help(ctx.tr, intent, ctx.actor, ctx.policy)))
        return
    record_pk = await copy_record(ctx.session, text)
    if record_pk is not None:
        text, markup = await card_reply(ctx, record_pk, shelf_map)
        ctx.replies.add(message.reply(text, reply_markup=markup))
        return
    found = await named_list(ctx.session, text)
    if found is None:
        raise SkipHandler  # a search
    reply = message.reply(_list_text(ctx.tr, found), reply_markup=_list_keyboard(ctx.tr, found))
    ctx.replies.add(reply)


async def _small_talk(message: Message, ctx: AnyCtx, text: str, intent: Intent) -> None:
    """A friendly word; a book titled like the message (谢谢你) is one tap away."""
    tr = ctx.tr
    if ctx.actor is not None and intent == Intent.GREETING:
        lines = [tr("talk.greeting_named", name=esc(ctx.actor.name))]
    else:
        lines = [tr(f"talk.{intent}")]
    books = await same_title(ctx.session, text)
    markup = None
    if books:
        lines += ["", tr("talk.title_too")]
        markup = title_buttons(tr, books)
    ctx.replies.add(message.reply("\n".join(lines), reply_markup=markup))


def _help(tr: Translator, intent: Intent, reader: Actor | None, policy: LoanPolicy) -> str:
    """The help for one feature (always in Chinese), with this reader's own loan rules."""
    if intent == Intent.HELP:
        return help_text(tr, reader, policy)
    role = reader.role if reader is not None else Role.STUDENT.value
    rules = policy.for_role(role)
    text = tr(
        f"talk.{intent}",
        role_name=tr(f"help.role_{role}"),
        max_loans=rules.max_loans,
        loan_days=rules.loan_days,
        renewals=rules.renewals,
        renewal_days=rules.renewal_days,
        max_holds=rules.max_holds,
        pickup_days=policy.hold_pickup_days,
    )
    if intent == Intent.RESERVE and reader is not None and reader.role == Role.TEACHER:
        text += "\n" + tr("talk.reserve_office")
    if intent in NEEDS_CARD and reader is None:
        text += "\n\n" + tr("talk.bind_first")
    return text


def _list_text(tr: Translator, found: NamedList) -> str:
    payload = {
        "name": found.name,
        "books": [{"title": b.title, "authors": b.authors, "blurb": b.blurb} for b in found.books],
    }
    text = render_reading_list(tr, payload, sent=False)
    if found.list_id is None:
        text += "\n\n" + tr("named_list.builtin_note")
    return text


def _list_keyboard(tr: Translator, found: NamedList) -> InlineKeyboardMarkup | None:
    return details_keyboard(tr, [b.record_pk for b in found.books])


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(on_text, F.text, ~F.text.startswith("/"))
    return router
