"""Leaving a dialogue. Whatever a form or the desk is waiting for (an aiogram FSM state), 取消,
/cancel or any other command ends it and says so: the 荐购 draft is dropped, a run of desk scans
ends with its summary, a question is left. Then the command runs as usual (/cancel has nothing
more to do). Before every other router, so no step can swallow a command; /cancel outside a
dialogue says there is nothing to cancel instead of 没有这个命令."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from handlers.context import AnyCtx
from handlers.desk import RUNS, summary_text
from handlers.render import Translator
from services.i18n import t

CANCEL = "cancel"
# The state group (the text before ':' in an FSM state) and how its end is told.
ENDED = {"SuggestForm": "dialog_end.suggest", "Desk": "dialog_end.desk"}


def in_dialogue(message: Message, raw_state: str | None = None) -> bool:
    return raw_state is not None


def ended_text(tr: Translator, raw_state: str, data: dict[str, Any]) -> str:
    if raw_state in RUNS:
        return summary_text(tr, raw_state, data)
    return tr(ENDED.get(raw_state.partition(":")[0], "dialog_end.other"))


def _is_cancel(text: str) -> bool:
    word = text.strip()
    if word == t("dialog_end.cancel_word"):
        return True
    command = word.split(maxsplit=1)[0] if word.startswith("/") else ""
    return command.partition("@")[0].lower() == f"/{CANCEL}"


async def end_dialogue(message: Message, ctx: AnyCtx, state: FSMContext, raw_state: str) -> None:
    data = await state.get_data()
    await state.clear()
    ctx.replies.add(message.answer(ended_text(ctx.tr, raw_state, data)))
    if not _is_cancel(message.text or ""):
        raise SkipHandler  # another command: it runs now, outside the dialogue


async def nothing_to_cancel(message: Message, ctx: AnyCtx) -> None:
    ctx.replies.add(message.answer(ctx.tr("dialog_end.nothing")))


def build_router() -> Router:
    """A fresh router each time: a Dispatcher takes ownership of the routers it includes."""
    router = Router(name=__name__)
    leaving = F.text.startswith("/") | (F.text == t("dialog_end.cancel_word"))
    router.message.register(end_dialogue, in_dialogue, F.text, leaving)
    router.message.register(nothing_to_cancel, Command(CANCEL))
    router.message.register(nothing_to_cancel, F.text == t("dialog_end.cancel_word"))
    return router
