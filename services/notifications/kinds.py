"""What a kind of push is, without any kind: the ``Kind`` type, its ``Button`` and the ``Action``
a button carries. The kinds themselves are declared by the features that send them (see the
package docstring) and gathered in registry.py.

A kind's payload is a pydantic model stored as JSON in the outbox row. The template is a locale key
whose placeholders are the payload's fields (titles escaped, datetimes shown as school dates).
Buttons are described without aiogram: a locale key for the label and an action the handlers carry
out with the id found in the payload's ``ref`` field (handlers/notify_keyboards.py turns them into
a keyboard). A push listing several things (the weekly new books) names the payload's list in
``items`` and gives ``item_buttons``: one numbered button per item, its id read from the item.
A text richer than one template (books with their reasons) is built by ``compose``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel


class Action(enum.StrEnum):
    """What a push's button does; one set for all kinds, since handlers/notify.py carries them out
    and handlers/callbacks.py's NotifyCB packs them."""

    RENEW = "renew"
    KEEP_HOLD = "keep"
    DROP_HOLD = "drop"
    RESERVE = "reserve"  # a hold on the record
    DETAILS = "details"  # the record's book card
    STOP_WEEKLY = "wstop"  # 退订 the weekly list
    FEWER_WEEKLY = "wfewer"  # 少一点


@dataclass(frozen=True, slots=True)
class Button:
    label: str  # locale key (an item's button gets the item's number as ``n``)
    action: Action
    # The payload (or item) field holding the id the action works on; none: it acts on the reader.
    ref: str | None = None
    # Shown only when the rule behind the action would accept it (the payload says so); the
    # kind's ``note`` then says why not.
    shown: Callable[[Any], bool] = field(default=lambda _p: True)


P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Kind(Generic[P]):
    name: str
    payload: type[P]
    template: str
    dedupe: Callable[[P], str]
    buttons: tuple[Button, ...] = ()
    # A reader may switch it off in /settings (overdue reminders, for one, cannot be).
    optional: bool = False
    # Another template for some payloads (e.g. a teacher's book delivered to the office).
    variant: Callable[[P], str | None] = field(default=lambda _p: None)
    # Shown in /settings and by `shuxiang scheduler --list`.
    label: str = ""
    # The payload's list field whose items each get ``item_buttons`` (ids read from the item).
    items: str | None = None
    item_buttons: tuple[Button, ...] = ()
    # Builds the text (from the payload and the locale) when one template cannot say it.
    compose: Callable[[P, str], str] | None = None
    # A line added under the text (a locale key and its parameters), e.g. why a button is absent.
    note: Callable[[P], tuple[str, dict[str, Any]] | None] = field(default=lambda _p: None)

    def template_for(self, payload: P) -> str:
        return self.variant(payload) or self.template

    def dump(self, payload: P) -> dict[str, Any]:
        return payload.model_dump(mode="json")

    def load(self, data: dict[str, Any]) -> P:
        return self.payload.model_validate(data)
