"""Class reading corners in the bot: monitors confirm batches, the librarian builds and receives
them, /cuishu shows a class's overdue list to its monitors only, /clearance the books a
graduating grade still owes. Who may do what is decided by services.corners (a refusal is a
ServiceError the unit of work turns into a polite reply); the text is built in views.py."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from handlers.callbacks import SwapItemCB, SwapSendCB
from handlers.context import AnyCtx
from handlers.corners.views import (
    OUTCOMES,
    batch_message,
    confirmed_text,
    draft_keyboard,
    draft_sent,
    render_clearance,
    render_contents,
    render_draft,
    render_overdue,
    render_problems,
)
from handlers.middlewares import writes
from handlers.render import esc
from handlers.start import role_commands
from nlp.isbn import looks_like_isbn
from services.actor import own_class, require_librarian
from services.circulation import find_reader_by_card
from services.corners import chase
from services.corners import swaps as corners
from services.corners.swaps import SwapDirection
from services.scopes import find_class, resolve_class
from services.talk import bound_reader_chat

# `/clearance 高三 提醒`: the word that asks for the reminders to go out, not just the list.
SEND_WORDS = ("提醒", "send", "--send")


def _args(command: CommandObject) -> list[str]:
    return (command.args or "").split()


# --- librarian: monitors ------------------------------------------------------------------


async def monitor_command(
    message: Message, command: CommandObject, monitors_per_class: int, ctx: AnyCtx
) -> None:
    session, actor, tr = ctx.session, ctx.actor, ctx.tr
    args = _args(command)
    if not args:
        monitors = await corners.list_monitors(session, actor)
        if not monitors:
            ctx.replies.add(message.answer(tr("corners.monitors_none")))
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
        ctx.replies.add(message.answer("\n".join(lines)))
    elif args[0] == "add" and len(args) == 3:
        done = await corners.appoint_monitor(
            session,
            actor,
            card_no=args[1],
            class_name=args[2],
            limit=monitors_per_class,
            now=ctx.now(),
        )
        ctx.replies.add(
            message.answer(
                tr(
                    "corners.monitor_added",
                    name=esc(done.name),
                    card_no=esc(done.card_no),
                    class_name=esc(done.class_name),
                )
            )
        )
        await _menu_follows(ctx, args[1])
    elif args[0] == "remove" and len(args) == 2:
        classes = await corners.remove_monitor(session, actor, card_no=args[1], now=ctx.now())
        ctx.replies.add(
            message.answer(
                tr("corners.monitor_removed", name=esc(args[1]), classes=esc("、".join(classes)))
            )
        )
        await _menu_follows(ctx, args[1])
    else:
        require_librarian(actor)  # the usage is the librarian's to see
        ctx.replies.add(message.answer(tr("corners.usage_monitor")))


async def _menu_follows(ctx: AnyCtx, card: str) -> None:
    """A reader who became (or stopped being) a class monitor gets the menu of their role."""
    found = await bound_reader_chat(ctx.session, card)
    if found is not None:
        ctx.replies.add(role_commands(ctx.tr, found[1], found[0]))


# --- librarian: batches -------------------------------------------------------------------


async def batch_command(message: Message, command: CommandObject, ctx: AnyCtx) -> None:
    args = _args(command)
    if len(args) != 1:
        require_librarian(ctx.actor)
        ctx.replies.add(message.answer(ctx.tr("corners.usage_batch")))
        return
    view = await corners.open_draft(ctx.session, ctx.actor, class_name=args[0], now=ctx.now())
    ctx.replies.add(
        message.answer(render_draft(ctx.tr, view), reply_markup=draft_keyboard(ctx.tr, view))
    )


async def propose_command(message: Message, command: CommandObject, ctx: AnyCtx) -> None:
    args = _args(command)
    if len(args) != 2 or not args[1].isdigit():
        require_librarian(ctx.actor)
        ctx.replies.add(message.answer(ctx.tr("corners.usage_propose")))
        return
    result = await corners.propose(
        ctx.session, ctx.actor, class_name=args[0], size=int(args[1]), now=ctx.now()
    )
    ctx.replies.add(
        message.answer(
            render_draft(ctx.tr, result.view), reply_markup=draft_keyboard(ctx.tr, result.view)
        )
    )


async def on_send(callback: CallbackQuery, callback_data: SwapSendCB, ctx: AnyCtx) -> None:
    swap_id = callback_data.swap_id
    if callback_data.send:
        view = await corners.send_batch(ctx.session, ctx.actor, swap_id=swap_id, now=ctx.now())
        text = draft_sent(ctx.tr, view)
    else:
        await corners.cancel_draft(ctx.session, ctx.actor, swap_id=swap_id, now=ctx.now())
        text = ctx.tr("corners.draft_cancelled")
    if isinstance(callback.message, Message):
        ctx.replies.add(callback.message.edit_text(text))
    ctx.replies.add(callback.answer())


async def desk_command(message: Message, command: CommandObject, ctx: AnyCtx) -> None:
    args = _args(command)
    require_librarian(ctx.actor)  # a monitor's /desk is refused, not shown their own class
    if len(args) != 1:
        ctx.replies.add(message.answer(ctx.tr("corners.usage_desk")))
        return
    class_name = await resolve_class(ctx.session, args[0])
    view = await corners.batch_for(ctx.session, ctx.actor, class_name)
    text, markup = batch_message(ctx.tr, view, SwapDirection.OUT, class_name)
    ctx.replies.add(message.answer(text, reply_markup=markup))


async def back_command(message: Message, command: CommandObject, ctx: AnyCtx) -> None:
    require_librarian(ctx.actor)
    barcodes = corners.parse_barcodes(command.args or "")
    if not barcodes:
        ctx.replies.add(message.answer(ctx.tr("corners.usage_back")))
        return
    ctx.replies.add(message.answer(await _confirm_text(ctx, barcodes)))


async def _confirm_text(ctx: AnyCtx, barcodes: list[tuple[int, str]]) -> str:
    done = await corners.confirm_barcodes(
        ctx.session, ctx.actor, barcodes=barcodes, policy=ctx.policy, now=ctx.now()
    )
    return confirmed_text(ctx.tr, done)


async def on_barcodes(message: Message, ctx: AnyCtx) -> None:
    """Scanned or typed barcodes: into the librarian's open draft, or confirmed by a monitor.
    Anyone else's, an ISBN, or barcodes that belong to nothing open go on to the search."""
    actor, tr = ctx.actor, ctx.tr
    barcodes = corners.parse_barcodes(message.text or "")
    if all(looks_like_isbn(b) for _, b in barcodes):
        raise SkipHandler
    if actor is not None and actor.is_librarian:
        draft = await corners.current_draft(ctx.session, actor)
        if draft is None:
            raise SkipHandler
        result = await corners.add_barcodes(
            ctx.session, actor, swap_id=draft.swap_id, barcodes=barcodes, now=ctx.now()
        )
        lines = [
            tr("corners.draft_added", count=len(result.added)),
            *render_problems(tr, result.problems),
            "",
            render_draft(tr, result.view),
        ]
        markup = draft_keyboard(tr, result.view)
        ctx.replies.add(message.answer("\n".join(lines), reply_markup=markup))
        return
    # Only routing: a scan that is not a monitor's own pending arrival is a search. The service
    # decides who may confirm what.
    if actor is None or actor.class_name is None or not actor.monitors(actor.class_name):
        raise SkipHandler
    view = await corners.open_batch(ctx.session, actor.class_name)
    pending = {i.barcode for i in view.of(SwapDirection.IN, pending=True)} if view else set()
    if not pending & {b for _, b in barcodes}:
        raise SkipHandler
    ctx.replies.add(message.answer(await _confirm_text(ctx, barcodes)))


def _looks_like_barcodes(message: Message) -> bool:
    text = message.text or ""
    return not text.startswith("/") and corners.looks_like_barcodes(text)


# --- monitors -----------------------------------------------------------------------------


async def corner_command(message: Message, command: CommandObject, ctx: AnyCtx) -> None:
    args = _args(command)
    class_name = await resolve_class(ctx.session, args[0]) if args else own_class(ctx.actor)
    view = await corners.batch_for(ctx.session, ctx.actor, class_name)
    _, books = await corners.corner_contents(ctx.session, ctx.actor, class_name)
    ctx.replies.add(message.answer(render_contents(ctx.tr, class_name, books)))
    text, markup = batch_message(ctx.tr, view, SwapDirection.IN, class_name)
    ctx.replies.add(message.answer(text, reply_markup=markup))


async def on_item(callback: CallbackQuery, callback_data: SwapItemCB, ctx: AnyCtx) -> None:
    tr = ctx.tr
    done = await corners.confirm_item(
        ctx.session,
        ctx.actor,
        item_id=callback_data.item_id,
        outcome=OUTCOMES[callback_data.outcome],
        policy=ctx.policy,
        now=ctx.now(),
    )
    direction = SwapDirection(done.item.direction)
    view = await corners.swap_view(ctx.session, done.swap_id)
    if isinstance(callback.message, Message):
        text, markup = batch_message(tr, view, direction, done.class_name)
        ctx.replies.add(callback.message.edit_text(text, reply_markup=markup))
    outcome = tr(f"corners.outcome_{done.item.outcome}")
    ctx.replies.add(
        callback.answer(
            tr(
                "corners.confirmed",
                barcode=done.item.barcode,
                title=done.item.title,
                outcome=outcome,
            )
        )
    )


async def holder_command(message: Message, command: CommandObject, ctx: AnyCtx) -> None:
    tr = ctx.tr
    args = _args(command)
    if not 1 <= len(args) <= 2:
        own_class(ctx.actor)  # the usage is a monitor's to see
        ctx.replies.add(message.answer(tr("corners.usage_holder")))
        return
    title, name = await corners.record_holder(
        ctx.session,
        ctx.actor,
        barcode=args[0],
        card_no=args[1] if len(args) == 2 else None,
        now=ctx.now(),
    )
    if name:
        ctx.replies.add(message.answer(tr("corners.holder_set", title=esc(title), name=esc(name))))
    else:
        ctx.replies.add(message.answer(tr("corners.holder_cleared", title=esc(title))))


# --- the chase and the clearance ----------------------------------------------------------


async def cuishu_command(message: Message, command: CommandObject, ctx: AnyCtx) -> None:
    args = _args(command)
    class_name, lines = await chase.overdue_for(
        ctx.session, ctx.actor, class_name=args[0] if args else None, now=ctx.now(), tz=ctx.tz
    )
    ctx.replies.add(message.answer(render_overdue(ctx.tr, class_name, lines, ctx.tz)))


async def clearance_command(message: Message, command: CommandObject, ctx: AnyCtx) -> None:
    """``/clearance 高三`` lists who still owes books; ``/clearance 高三 提醒`` reminds them."""
    session, actor, now = ctx.session, ctx.actor, ctx.now()
    args = _args(command)
    require_librarian(actor)
    send = len(args) == 2 and args[1] in SEND_WORDS
    if len(args) != 1 and not send:
        ctx.replies.add(message.answer(ctx.tr("clearance.nobody")))
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
        now=now,
        tz=ctx.tz,
    )
    sent = (
        await chase.remind_owing(session, actor, rows, now=now, tz=ctx.tz)
        if send and rows
        else None
    )
    ctx.replies.add(message.answer(render_clearance(ctx.tr, rows, sent, scope=args[0])))


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
