"""Every kind of push, by name: the features' kinds modules gathered in one place, so that the
sender, the renderer, /settings and `shuxiang scheduler` know each kind a stored row may name.

This is the one module of the package that imports features; nothing in a feature imports it
(see the package docstring). A new feature's kinds module is added to ``_FEATURES``; the order
is the order /settings lists the optional kinds in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from services import reading_list_kinds, suggestion_kinds
from services.circulation import kinds as circulation_kinds
from services.corners import kinds as corner_kinds
from services.notifications import notice
from services.notifications.kinds import Kind
from services.recommend import kinds as recommend_kinds
from services.stats import kinds as stats_kinds

_FEATURES: tuple[tuple[Kind[Any], ...], ...] = (
    circulation_kinds.KINDS,
    notice.KINDS,
    stats_kinds.KINDS,
    suggestion_kinds.KINDS,
    corner_kinds.KINDS,
    recommend_kinds.KINDS,
    reading_list_kinds.KINDS,
)


def _by_name(kinds: Iterable[Kind[Any]]) -> dict[str, Kind[Any]]:
    found: dict[str, Kind[Any]] = {}
    for kind in kinds:
        # Rows are stored by name: two kinds of one name could not be told apart when sending.
        if kind.name in found:
            raise ValueError(f"notification kind {kind.name!r} declared twice")
        found[kind.name] = kind
    return found


KINDS: Mapping[str, Kind[Any]] = MappingProxyType(
    _by_name(kind for feature in _FEATURES for kind in feature)
)


def kind_named(name: str) -> Kind[Any] | None:
    return KINDS.get(name)


def optional_kinds() -> list[Kind[Any]]:
    return [kind for kind in KINDS.values() if kind.optional]
