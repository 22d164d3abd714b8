"""The push of 荐购 (services/suggestions.py): the reader hears what became of a suggestion."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from services.notifications.kinds import Kind
from storage.models import SuggestionStatus


class SuggestionResolvedPayload(BaseModel):
    suggestion_id: int
    query: str
    status: SuggestionStatus


SUGGESTION_RESOLVED = Kind(
    name="suggestion_resolved",
    payload=SuggestionResolvedPayload,
    template="stats.suggest.notify_declined",
    dedupe=lambda p: f"suggestion:{p.suggestion_id}:{p.status.value}",
    variant=lambda p: (
        "stats.suggest.notify_bought" if p.status == SuggestionStatus.PURCHASED else None
    ),
    label="stats.kind_suggestion_resolved",
)

KINDS: tuple[Kind[Any], ...] = (SUGGESTION_RESOLVED,)
