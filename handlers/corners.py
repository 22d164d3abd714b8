"""Class reading corners in the bot: monitors confirm batches, the librarian builds and receives
them, /cuishu shows a class's overdue list to its monitors only. Who may do what is decided by
services.corners.swaps (a refusal is a ServiceError the unit of work turns into a polite reply)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.callbacks import SwapItemCB, SwapSendCB
from handlers.middlewares import writes
from handlers.render import Translator, esc
from handlers.replies import Replies
from handlers.start import role_commands
from nlp.isbn import looks_like_isbn
from services.actor import Actor, actor_of, own_class, require_librarian
from services.circulation import find_reader_by_card
from services.corners import chase
from services.corners import swaps as corners
from services.corners.swaps import BarcodeProblem, SwapView
from services.policy import LoanPolicy
from services.scopes import find_class, resolve_class
from services.talk import bound_reader_chat
from storage.models import SwapDirection, SwapOutcome, SwapStatus

OUTCOMES = (SwapOutcome.RECEIVED, SwapOutcome.MISSING, SwapOutcome.DAMAGED)
# Three buttons per copy; Telegram allows 100 buttons in a keyboard.
MAX_BUTTON_ROWS = 30
MAX_LISTED = 40
# `/clearance 高三 提醒`: the word that asks for the reminders to go out, not just the list.
SEND_WORDS = ("提醒", "send", "--send")


async def _actor(session: AsyncSession, reader: Actor | None) -> Actor | None:
    return await actor_of(session, reader.reader_id if reader else None)


def _args(command: CommandObject) -> list[str]:
    return (command.args or "").split()


def render_problems(tr: Translator, problems: list[BarcodeProblem]) -> list[str]:
    return [
        tr("corners.problem_line", line=p.line, barcode=esc(p.barcode), reason=tr(p.key))
        for p in problems
    ]


# --- rendering a batch --------------------------------------------------------------------


def render_draft(tr: Translator, view: SwapView) -> str:
    items = view.of(SwapDirection.IN)
    lines = [tr("corners.draft_title", class_name=esc(view.class_name), count=len(items))]
    for n, item in enumerate(items[:MAX_LISTED], 1):
        lines.append(
            tr("corners.draft_line", n=n, barcode=esc(item.barcode), title=esc(item.title))
        )
    if len(items) > MAX_LISTED:
        lines.append(tr("corners.draft_more", count=len(items) - MAX_LISTED))
    lines.append(tr("corners.draft_hint"))
    return "\n".join(lines)


def draft_keyboard(tr: Translator, view: SwapView) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=tr("corners.button_send"),
                    callback_data=SwapSendCB(swap_id=view.swap_id).pack(),
                ),
                InlineKeyboardButton(
                    text=tr("corners.button_cancel"),
                    callback_data=SwapSendCB(swap_id=view.swap_id, send=False).pack(),
                ),
            ]
        ]
    )


def render_batch(
    tr: Translator, view: SwapView | None, direction: SwapDirection, class_name: str
) -> str:
    incoming = direction == SwapDirection.IN
    if view is None or not view.of(direction):
        return tr(
            "corners.batch_none" if incoming else "corners.desk_none", class_name=esc(class_name)
        )
    items = view.of(direction)
    pending = view.of(direction, pending=True)
    title_key = "corners.batch_title" if incoming else "corners.desk_title"
    lines = [tr(title_key, class_name=esc(class_name), pending=len(pending), count=len(items))]
    for n, item in enumerate(items, 1):
        if len(lines) > MAX_LISTED:
            lines.append(tr("corners.draft_more", count=len(items) - n + 1))
            break
        outcome = f" — {tr(f'corners.outcome_{item.outcome}')}" if item.outcome else ""
        lines.append(
            tr(
                "corners.batch_line",
                n=n,
                barcode=esc(item.barcode),
                title=esc(item.title),
                outcome=outcome,
            )
        )
    lines.append(
        tr("corners.batch_hint" if incoming else "corners.desk_hint")
        if pending
        else tr("corners.batch_done")
    )
    return "\n".join(lines)


def batch_keyboard(
    tr: Translator, view: SwapView | None, direction: SwapDirection
) -> InlineKeyboardMarkup | None:
    if view is None or view.status != SwapStatus.PROPOSED.value:
        return None
    rows = []
    for n, item in enumerate(view.of(direction), 1):
        if item.outcome is not None:
            continue
        rows.append(
            [
                InlineKeyboardButton(
                    text=tr(f"corners.button_{outcome.value}", n=n),
                    callback_data=SwapItemCB(item_id=item.item_id, outcome=index).pack(),
                )
                for index, outcome in enumerate(OUTCOMES)
            ]
        )
        if len(rows) >= MAX_BUTTON_ROWS:
            break
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def batch_message(
    tr: Translator, view: SwapView | None, direction: SwapDirection, class_name: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The batch's text and its buttons, one pair for sending, showing and editing alike."""
    return render_batch(tr, view, direction, class_name), batch_keyboard(tr, view, direction)


# --- librarian: monitors ------------------------------------------------------------------


async def monitor_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
    monitors_per_class: int,
) -> None:
    actor = await _actor(session, reader)
    args = _args(command)
    if not args:
        monitors = await corners.list_monitors(session, actor)
        if not monitors:
            replies.add(message.answer(tr("corners.monitors_none")))
            return
        lines = [tr("corners.monitors_title", count=len(monitors))]
        lines += [
            tr(
                "corners.monitors_line",
                class_name=esc(m.class_name),
                name=esc(m.name),
                card_no=esc(m.card_no),
            )
            for m in monitors
        ]
        replies.add(message.answer("\n".join(lines)))
    elif args[0] == "add" and len(args) == 3:
        done = await corners.appoint_monitor(
            session, actor, card_no=args[1], class_name=args[2], limit=monitors_per_class
        )
        replies.add(
            message.answer(
                tr(
                    "corners.monitor_added",
                    name=esc(done.name),
                    card_no=esc(done.card_no),
                    class_name=esc(done.class_name),
                )
            )
        )
        await _menu_follows(session, tr, replies, args[1])
    elif args[0] == "remove" and len(args) == 2:
        classes = await corners.remove_monitor(session, actor, card_no=args[1])
        replies.add(
            message.answer(
                tr("corners.monitor_removed", name=esc(args[1]), classes=esc("、".join(classes)))
            )
        )
        await _menu_follows(session, tr, replies, args[1])
    else:
        require_librarian(actor)
        replies.add(message.answer(tr("corners.usage_monitor")))


async def _menu_follows(session: AsyncSession, tr: Translator, replies: Replies, card: str) -> None:
    """A reader who became (or stopped being) a class monitor gets the menu of their role."""
    found = await bound_reader_chat(session, card)
    if found is not None:
        replies.add(role_commands(tr, found[1], found[0]))


# --- librarian: batches -------------------------------------------------------------------


async def batch_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
) -> None:
    actor = await _actor(session, reader)
    args = _args(command)
    if len(args) != 1:
        require_librarian(actor)
        replies.add(message.answer(tr("corners.usage_batch")))
        return
    view = await corners.open_draft(session, actor, class_name=args[0])
    replies.add(message.answer(render_draft(tr, view), reply_markup=draft_keyboard(tr, view)))


async def propose_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
) -> None:
    actor = await _actor(session, reader)
    args = _args(command)
    if len(args) != 2 or not args[1].isdigit():
        require_librarian(actor)
        replies.add(message.answer(tr("corners.usage_propose")))
        return
    result = await corners.propose(session, actor, class_name=args[0], size=int(args[1]))
    replies.add(
        message.answer(render_draft(tr, result.view), reply_markup=draft_keyboard(tr, result.view))
    )


async def on_send(
    callback: CallbackQuery,
    callback_data: SwapSendCB,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
) -> None:
    actor = await _actor(session, reader)
    if callback_data.send:
        view = await corners.send_batch(session, actor, swap_id=callback_data.swap_id)
        text = tr(
            "corners.draft_sent",
            class_name=esc(view.class_name),
            incoming=len(view.of(SwapDirection.IN)),
            outgoing=len(view.of(SwapDirection.OUT)),
        )
    else:
        await corners.cancel_draft(session, actor, swap_id=callback_data.swap_id)
        text = tr("corners.draft_cancelled")
    if isinstance(callback.message, Message):
        replies.add(callback.message.edit_text(text))
    replies.add(callback.answer())


async def desk_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
) -> None:
    actor = await _actor(session, reader)
    args = _args(command)
    require_librarian(actor)
    if len(args) != 1:
        replies.add(message.answer(tr("corners.usage_desk")))
        return
    class_name = await resolve_class(session, args[0])
    view = await corners.batch_for(session, actor, class_name)
    text, markup = batch_message(tr, view, SwapDirection.OUT, class_name)
    replies.add(message.answer(text, reply_markup=markup))


async def back_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
    policy: LoanPolicy,
) -> None:
    actor = await _actor(session, reader)
    require_librarian(actor)
    barcodes = corners.parse_barcodes(command.args or "")
    if not barcodes:
        replies.add(message.answer(tr("corners.usage_back")))
        return
    replies.add(message.answer(await _confirm_text(session, actor, barcodes, tr, policy)))


async def _confirm_text(
    session: AsyncSession,
    actor: Actor | None,
    barcodes: list[tuple[int, str]],
    tr: Translator,
    policy: LoanPolicy,
) -> str:
    done = await corners.confirm_barcodes(session, actor, barcodes=barcodes, policy=policy)
    lines = []
    if done.confirmed:
        lines.append(tr("corners.confirmed_many", count=len(done.confirmed)))
    for barcode, class_name in done.brought_back:
        lines.append(tr("corners.brought_back", barcode=esc(barcode), class_name=esc(class_name)))
    lines += render_problems(tr, done.problems)
    if any(c.swap_done for c in done.confirmed):
        lines.append(tr("corners.batch_done"))
    return "\n".join(lines)


async def on_barcodes(
    message: Message,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
    policy: LoanPolicy,
) -> None:
    """Scanned or typed barcodes: into the librarian's open draft, or confirmed by a monitor.
    Anyone else's, an ISBN, or barcodes that belong to nothing open go on to the search."""
    actor = await _actor(session, reader)
    barcodes = corners.parse_barcodes(message.text or "")
    if all(looks_like_isbn(b) for _, b in barcodes):
        raise SkipHandler
    if actor is not None and actor.is_librarian:
        draft = await corners.current_draft(session, actor)
        if draft is None:
            raise SkipHandler
        result = await corners.add_barcodes(
            session, actor, swap_id=draft.swap_id, barcodes=barcodes
        )
        lines = [
            tr("corners.draft_added", count=len(result.added)),
            *render_problems(tr, result.problems),
            "",
            render_draft(tr, result.view),
        ]
        replies.add(message.answer("\n".join(lines), reply_markup=draft_keyboard(tr, result.view)))
        return
    if actor is None or actor.class_name is None or not actor.monitors(actor.class_name):
        raise SkipHandler
    view = await corners.open_batch(session, actor.class_name)
    pending = {i.barcode for i in view.of(SwapDirection.IN, pending=True)} if view else set()
    if not pending & {b for _, b in barcodes}:
        raise SkipHandler
    replies.add(message.answer(await _confirm_text(session, actor, barcodes, tr, policy)))


def _looks_like_barcodes(message: Message) -> bool:
    text = message.text or ""
    return not text.startswith("/") and corners.looks_like_barcodes(text)


# --- monitors -----------------------------------------------------------------------------


async def corner_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
) -> None:
    actor = await _actor(session, reader)
    args = _args(command)
    class_name = await resolve_class(session, args[0]) if args else own_class(actor)
    view = await corners.batch_for(session, actor, class_name)
    _, books = await corners.corner_contents(session, actor, class_name)
    lines = [tr("corners.contents_title", class_name=esc(class_name), count=len(books))]
    for book in books[:MAX_LISTED]:
        holder = tr("corners.contents_holder", name=esc(book.holder)) if book.holder else ""
        if book.status == "damaged":
            holder += tr("corners.contents_damaged")
        lines.append(
            tr(
                "corners.contents_line",
                barcode=esc(book.barcode),
                title=esc(book.title),
                holder=holder,
            )
        )
    if not books:
        lines = [tr("corners.contents_none", class_name=esc(class_name))]
    replies.add(message.answer("\n".join(lines)))
    text, markup = batch_message(tr, view, SwapDirection.IN, class_name)
    replies.add(message.answer(text, reply_markup=markup))


async def on_item(
    callback: CallbackQuery,
    callback_data: SwapItemCB,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
    policy: LoanPolicy,
) -> None:
    actor = await _actor(session, reader)
    done = await corners.confirm_item(
        session,
        actor,
        item_id=callback_data.item_id,
        outcome=OUTCOMES[callback_data.outcome],
        policy=policy,
    )
    direction = SwapDirection(done.item.direction)
    view = await corners.swap_view(session, done.swap_id)
    if isinstance(callback.message, Message):
        text, markup = batch_message(tr, view, direction, done.class_name)
        replies.add(callback.message.edit_text(text, reply_markup=markup))
    outcome = tr(f"corners.outcome_{done.item.outcome}")
    replies.add(
        callback.answer(
            tr(
                "corners.confirmed",
                barcode=done.item.barcode,
                title=done.item.title,
                outcome=outcome,
            )
        )
    )


async def holder_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
) -> None:
    actor = await _actor(session, reader)
    args = _args(command)
    if not 1 <= len(args) <= 2:
        own_class(actor)
        replies.add(message.answer(tr("corners.usage_holder")))
        return
    title, name = await corners.record_holder(
        session, actor, barcode=args[0], card_no=args[1] if len(args) == 2 else None
    )
    if name:
        replies.add(message.answer(tr("corners.holder_set", title=esc(title), name=esc(name))))
    else:
        replies.add(message.answer(tr("corners.holder_cleared", title=esc(title))))


# --- the chase ----------------------------------------------------------------------------


def render_overdue(
    tr: Translator, class_name: str, lines: list[chase.OverdueLine], tz: ZoneInfo
) -> str:
    """The same list a monitor gets weekly (services.chase.list_text, escaped here)."""
    if not lines:
        return tr("notify_corners.chase_none", class_name=esc(class_name))
    return tr(
        "notify_corners.chase_list",
        class_name=esc(class_name),
        lines=esc(chase.list_text(lines, tz)),
    )


async def cuishu_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
    tz: ZoneInfo,
) -> None:
    actor = await _actor(session, reader)
    args = _args(command)
    class_name, lines = await chase.overdue_for(
        session, actor, class_name=args[0] if args else None, tz=tz
    )
    replies.add(message.answer(render_overdue(tr, class_name, lines, tz)))


async def clearance_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    reader: Actor | None,
    tr: Translator,
    replies: Replies,
    tz: ZoneInfo,
) -> None:
    """``/clearance 高三`` lists who still owes books; ``/clearance 高三 提醒`` reminds them."""
    actor = await _actor(session, reader)
    args = _args(command)
    require_librarian(actor)
    send = len(args) == 2 and args[1] in SEND_WORDS
    if len(args) != 1 and not send:
        replies.add(message.answer(tr("clearance.nobody")))
        return
    # A reader's card; else digits make an unknown card, unless it is a class (高三1班, refused
    # as a grade); else a grade (高三).
    by_card = await find_reader_by_card(session, args[0]) is not None or (
        any(ch.isdigit() for ch in args[0]) and await find_class(session, args[0]) is None
    )
    rows = await chase.clearance(
        session,
        actor,
        grade=None if by_card else args[0],
        card_no=args[0] if by_card else None,
        tz=tz,
    )
    sent = await chase.remind_owing(session, actor, rows, tz=tz) if send and rows else None
    replies.add(message.answer(render_clearance(tr, rows, sent, scope=args[0])))


def render_clearance(
    tr: Translator,
    rows: list[chase.ClearanceRow],
    sent: chase.ClearanceSent | None = None,
    *,
    scope: str = "",
) -> str:
    if not rows:
        return tr("clearance.none")
    lines = [tr("clearance.title", count=len(rows))]
    for row in rows[:MAX_LISTED]:
        books = "、".join(
            tr("clearance.book", title=esc(b.title), lost=tr("clearance.lost") if b.lost else "")
            for b in row.books
        )
        lines.append(
            tr(
                "clearance.line",
                class_name=esc(row.class_name or ""),
                name=esc(row.name),
                card_no=esc(row.card_no),
                books=books,
            )
        )
    if len(rows) > MAX_LISTED:
        lines.append(tr("corners.draft_more", count=len(rows) - MAX_LISTED))
    if sent is None:
        lines.append(tr("clearance.not_sent_chat", scope=esc(scope)))
        return "\n".join(lines)
    lines.append(tr("clearance.sent", count=sent.sent))
    if sent.earlier:
        lines.append(tr("clearance.sent_earlier", count=sent.earlier))
    if sent.unreachable:
        names = tr("scopes.separator").join(
            tr("clearance.unreachable_name", name=esc(r.name), card_no=esc(r.card_no))
            for r in sent.unreachable
        )
        lines.append(tr("clearance.unreachable", count=len(sent.unreachable), names=names))
    return "\n".join(lines)


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    router.message.register(monitor_command, Command("monitor"), flags=writes())
    router.message.register(batch_command, Command("batch"), flags=writes())
    router.message.register(propose_command, Command("propose"), flags=writes())
    router.message.register(desk_command, Command("desk"))
    router.message.register(back_command, Command("back"), flags=writes())
    router.message.register(corner_command, Command("corner"))
    router.message.register(holder_command, Command("holder"), flags=writes())
    router.message.register(cuishu_command, Command("cuishu"), flags=writes())
    router.message.register(clearance_command, Command("clearance"), flags=writes())
    router.message.register(on_barcodes, F.text, _looks_like_barcodes, flags=writes())
    router.callback_query.register(on_item, SwapItemCB.filter(), flags=writes())
    router.callback_query.register(on_send, SwapSendCB.filter(), flags=writes())
    return router
