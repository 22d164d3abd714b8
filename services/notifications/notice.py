"""The notifications feature's own kind: a notice broadcast to every reader (e.g. the library
closed for stocktaking)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from services.notifications.kinds import Kind


class NoticePayload(BaseModel):
    # Names the broadcast (e.g. "2027-w10"): with the reader, the dedupe key.
    notice: str
    reader_id: int
    text: str


NOTICE = Kind(
    name="notice",
    payload=NoticePayload,
    template="notify.notice",
    dedupe=lambda p: f"notice:{p.notice}:{p.reader_id}",
    label="notify.kind_notice",
)

KINDS: tuple[Kind[Any], ...] = (NOTICE,)
