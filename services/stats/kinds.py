"""The pushes of the monthly 读书之星: to each star, and to the class monitor naming the class's."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from services.notifications.kinds import Kind


class StarPayload(BaseModel):
    month: str  # "2026-10"
    scope: str  # ScopeKind: grade or class
    group: str
    reader_id: int
    name: str
    books: int


class StarMonitorPayload(BaseModel):
    month: str
    class_name: str
    monitor_id: int
    names: str  # the winners, already joined
    books: int


READING_STAR = Kind(
    name="reading_star",
    payload=StarPayload,
    template="stats.star.notify",
    dedupe=lambda p: f"star:{p.month}:{p.scope}:{p.group}:{p.reader_id}",
    label="stats.kind_reading_star",
)
READING_STAR_MONITOR = Kind(
    name="reading_star_monitor",
    payload=StarMonitorPayload,
    template="stats.star.notify_monitor",
    dedupe=lambda p: f"star-monitor:{p.month}:{p.class_name}:{p.monitor_id}",
    label="stats.kind_reading_star_monitor",
)

KINDS: tuple[Kind[Any], ...] = (READING_STAR, READING_STAR_MONITOR)
