"""The one typed per-update context a handler receives as ``ctx``.

Built by the UnitOfWork middleware once it has opened the update's transaction, from what the
outer middlewares resolved (the actor, the translator, the reply buffer) and the dispatcher's
long-lived objects (time zone, loan policy, the injected clock). Handlers take ``ctx`` and only
what is theirs besides (``callback_data``, ``state``, the search engine …).

``Ctx[Actor]`` is the context of a handler registered with ``flags=bound()``: UnitOfWork answers
strangers itself, so such a handler always has its reader. Others take ``Ctx[Actor | None]``.

Handlers never read the wall clock: ``ctx.now()`` is the dispatcher's clock (tests and the
demo's clock move it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.render import Translator
from handlers.replies import Replies
from services.actor import Actor
from services.policy import LoanPolicy

A = TypeVar("A", bound=Actor | None, covariant=True)
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Ctx(Generic[A]):
    session: AsyncSession
    actor: A
    tr: Translator
    tz: ZoneInfo
    policy: LoanPolicy
    replies: Replies
    clock: Clock

    def now(self) -> datetime:
        return self.clock()


ReaderCtx = Ctx[Actor]
AnyCtx = Ctx[Actor | None]
