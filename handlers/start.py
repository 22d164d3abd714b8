"""Welcome, help, and binding a Telegram account to a library card."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.methods import DeleteMyCommands, SendMessage, SetMyCommands
from aiogram.types import BotCommandScopeChat, CallbackQuery, Message

from handlers.callbacks import KeepCB, UnbindSureCB
from handlers.channels import channel_of
from handlers.context import AnyCtx
from handlers.keyboards import bot_commands, main_menu, unbind_confirm_keyboard
from handlers.middlewares import LibrarianRoster, writes
from handlers.render import Translator, esc
from services.actor import Actor, Role
from services.i18n import t
from services.policy import LoanPolicy
from services.readers.binding import BindLimits, bind, librarian_chats, unbind


def role_commands(tr: Translator, reader: Actor, chat_id: int) -> SetMyCommands:
    """This reader's command menu, in their chat (the default scope is a stranger's)."""
    commands = bot_commands(tr, librarian=reader.is_librarian, monitor=reader.is_monitor)
    return SetMyCommands(commands=commands, scope=BotCommandScopeChat(chat_id=chat_id))


def help_text(tr: Translator, reader: Actor | None, policy: LoanPolicy) -> str:
    """Every feature a reader has: a student's, plus office delivery for a teacher, the corner
    for a class monitor, the desk and the corners for the librarian."""
    parts = [tr("help.student")]
    if reader is not None and reader.role == Role.TEACHER:
        rules = policy.for_role(reader.role)
        parts.append(tr("help.teacher", max_loans=rules.max_loans, loan_days=rules.loan_days))
    if reader is not None and reader.is_monitor:
        parts.append(tr("corners.help_monitor"))
    if reader is not None and reader.is_librarian:
        parts += [tr("start.help_librarian"), tr("corners.help_librarian")]
    return "\n\n".join(parts)


async def _bind(
    message: Message, code: str, ctx: AnyCtx, roster: LibrarianRoster, bind_limits: BindLimits
) -> None:
    if message.from_user is None:  # private chats always have a sender
        return
    tr, replies = ctx.tr, ctx.replies
    outcome = await bind(
        ctx.session,
        code=code,
        channel=channel_of(message.bot),
        address=str(message.from_user.id),
        chat=str(message.chat.id),
        limits=bind_limits,
        now=ctx.now(),
    )
    bound = outcome.reader
    if bound is None:
        replies.add(message.answer(tr(outcome.refused or "binding.invalid"), parse_mode=None))
        if outcome.flood is not None:
            alert = tr("binding.flood_alert", count=outcome.flood)
            for chat_id in await librarian_chats(ctx.session):
                replies.add(SendMessage(chat_id=chat_id, text=alert))
        return
    replies.add(
        message.answer(
            tr("bind.ok", name=esc(bound.name), card_no=esc(bound.card_no)),
            reply_markup=main_menu(tr, librarian=bound.is_librarian),
        )
    )
    if bound.is_librarian:
        roster.forget()
    replies.add(role_commands(tr, bound, message.chat.id))
    if outcome.previous is not None:
        # The chat that held the card until now, on the channel it was typed on.
        previous: int | str = outcome.previous_chat_id or outcome.previous
        said = "binding.moved" if outcome.previous_chat_id is not None else "binding.moved_web"
        moved = tr(said, name=esc(bound.name), card_no=esc(bound.card_no))
        replies.add(SendMessage(chat_id=previous, text=moved))
        replies.add(DeleteMyCommands(scope=BotCommandScopeChat(chat_id=previous)))


async def start_with_code(
    message: Message,
    command: CommandObject,
    ctx: AnyCtx,
    roster: LibrarianRoster,
    bind_limits: BindLimits,
) -> None:
    await _bind(message, command.args or "", ctx, roster, bind_limits)


async def start(message: Message, ctx: AnyCtx) -> None:
    tr, reader = ctx.tr, ctx.actor
    if reader is None:
        ctx.replies.add(message.answer(tr("start.welcome_unbound"), reply_markup=main_menu(tr)))
        return
    parts = [tr("start.welcome_bound", name=esc(reader.name))]
    if reader.is_librarian:
        parts.append(tr("help.start_librarian"))
    elif reader.is_monitor:
        parts.append(tr("help.start_monitor", class_name=esc(reader.class_name or "")))
    menu = main_menu(tr, librarian=reader.is_librarian)
    ctx.replies.add(message.answer("\n\n".join(parts), reply_markup=menu))
    ctx.replies.add(role_commands(tr, reader, message.chat.id))


async def help_(message: Message, ctx: AnyCtx) -> None:
    reader = ctx.actor
    text = help_text(ctx.tr, reader, ctx.policy)
    librarian = reader is not None and reader.is_librarian
    ctx.replies.add(message.answer(text, reply_markup=main_menu(ctx.tr, librarian=librarian)))
    if reader is not None:
        ctx.replies.add(role_commands(ctx.tr, reader, message.chat.id))


async def need_code(message: Message, ctx: AnyCtx) -> None:
    ctx.replies.add(message.answer(ctx.tr("bind.need_code")))


async def bind_command(
    message: Message,
    command: CommandObject,
    ctx: AnyCtx,
    roster: LibrarianRoster,
    bind_limits: BindLimits,
) -> None:
    await _bind(message, command.args or "", ctx, roster, bind_limits)


async def unbind_command(message: Message, ctx: AnyCtx) -> None:
    """/unbind asks first; only 确定 (``on_unbind_sure``) unbinds."""
    if ctx.actor is None:
        ctx.replies.add(message.answer(ctx.tr("bind.not_bound")))
        return
    keyboard = unbind_confirm_keyboard(ctx.tr)
    ctx.replies.add(message.answer(ctx.tr("confirm.unbind"), reply_markup=keyboard))


async def on_unbind_sure(callback: CallbackQuery, ctx: AnyCtx, roster: LibrarianRoster) -> None:
    tr, replies = ctx.tr, ctx.replies
    channel = channel_of(callback.bot)
    if not await unbind(ctx.session, channel=channel, address=str(callback.from_user.id)):
        # A second tap, or unbound meanwhile elsewhere.
        replies.add(callback.answer(tr("confirm.already_unbound"), show_alert=True))
        return
    if ctx.actor is not None and ctx.actor.is_librarian:
        roster.forget()
    replies.add(callback.answer())
    if isinstance(callback.message, Message):
        chat_id = callback.message.chat.id
        replies.add(DeleteMyCommands(scope=BotCommandScopeChat(chat_id=chat_id)))
        replies.add(callback.message.edit_text(tr("bind.unbound")))


async def on_keep(callback: CallbackQuery, ctx: AnyCtx) -> None:
    """再想想: the question becomes a note that nothing changed (a second tap edits nothing)."""
    ctx.replies.add(callback.answer())
    if isinstance(callback.message, Message):
        ctx.replies.add(callback.message.edit_text(ctx.tr("confirm.kept")))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(start_with_code, CommandStart(deep_link=True), flags=writes())
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.message.register(help_, F.text == t("menu.help"))
    router.message.register(need_code, Command("bind"), F.text.func(_without_args))
    router.message.register(bind_command, Command("bind"), flags=writes())
    router.message.register(unbind_command, Command("unbind"))
    router.callback_query.register(on_unbind_sure, UnbindSureCB.filter(), flags=writes())
    router.callback_query.register(on_keep, KeepCB.filter())
    return router


def _without_args(text: str) -> bool:
    """``/bind`` alone asks for the code without a write transaction."""
    return len(text.split(maxsplit=1)) < 2
