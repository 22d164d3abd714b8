"""What the class corners show in the chat: a draft batch, a batch to confirm (a monitor's
arrivals, the desk's returns), a corner's contents, a class's overdue list, the clearance list.
Pure text and buttons from the services' views; handlers/corners/commands.py sends them."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers.callbacks import SwapItemCB, SwapSendCB
from handlers.render import Translator, esc
from services.corners import chase
from services.corners.swaps import (
    BarcodeConfirmation,
    BarcodeProblem,
    CornerBook,
    SwapDirection,
    SwapOutcome,
    SwapStatus,
    SwapView,
)

# A button's outcome is its index here (SwapItemCB.outcome).
OUTCOMES = (SwapOutcome.RECEIVED, SwapOutcome.MISSING, SwapOutcome.DAMAGED)
# Three buttons per copy; Telegram allows 100 buttons in a keyboard.
MAX_BUTTON_ROWS = 30
MAX_LISTED = 40


def render_problems(tr: Translator, problems: list[BarcodeProblem]) -> list[str]:
    return [
        tr("corners.problem_line", line=p.line, barcode=esc(p.barcode), reason=tr(p.key))
        for p in problems
    ]


# --- a batch ------------------------------------------------------------------------------


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


def draft_sent(tr: Translator, view: SwapView) -> str:
    return tr(
        "corners.draft_sent",
        class_name=esc(view.class_name),
        incoming=len(view.of(SwapDirection.IN)),
        outgoing=len(view.of(SwapDirection.OUT)),
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
    keyboard = InlineKeyboardBuilder()
    pending = [(n, item) for n, item in enumerate(view.of(direction), 1) if item.outcome is None]
    for n, item in pending[:MAX_BUTTON_ROWS]:  # one row per book: its outcomes side by side
        for index, outcome in enumerate(OUTCOMES):
            keyboard.button(
                text=tr(f"corners.button_{outcome.value}", n=n),
                callback_data=SwapItemCB(item_id=item.item_id, outcome=index),
            )
    keyboard.adjust(len(OUTCOMES))
    return keyboard.as_markup() if pending else None


def batch_message(
    tr: Translator, view: SwapView | None, direction: SwapDirection, class_name: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The batch's text and its buttons, one pair for sending, showing and editing alike."""
    return render_batch(tr, view, direction, class_name), batch_keyboard(tr, view, direction)


def confirmed_text(tr: Translator, done: BarcodeConfirmation) -> str:
    """Scanned barcodes confirmed (a monitor's arrivals, the desk's returns)."""
    lines = []
    if done.confirmed:
        lines.append(tr("corners.confirmed_many", count=len(done.confirmed)))
    for barcode, class_name in done.brought_back:
        lines.append(tr("corners.brought_back", barcode=esc(barcode), class_name=esc(class_name)))
    lines += render_problems(tr, done.problems)
    if any(c.swap_done for c in done.confirmed):
        lines.append(tr("corners.batch_done"))
    return "\n".join(lines)


# --- a corner -----------------------------------------------------------------------------


def render_contents(tr: Translator, class_name: str, books: list[CornerBook]) -> str:
    if not books:
        return tr("corners.contents_none", class_name=esc(class_name))
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
    return "\n".join(lines)


# --- the chase and the clearance ----------------------------------------------------------


def render_overdue(
    tr: Translator, class_name: str, lines: list[chase.OverdueLine], tz: ZoneInfo
) -> str:
    """The same list a monitor gets weekly (services.corners.chase.list_text, escaped here)."""
    if not lines:
        return tr("notify_corners.chase_none", class_name=esc(class_name))
    return tr(
        "notify_corners.chase_list",
        class_name=esc(class_name),
        lines=esc(chase.list_text(lines, tz)),
    )


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
