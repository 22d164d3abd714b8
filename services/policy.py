"""Loan policy: the numbers a school sets per role. Built by bot/config, passed into services."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def calendar_days(start: datetime, end: datetime, tz: ZoneInfo) -> int:
    """Whole calendar days from start to end in the school's time zone, never negative."""
    return max(0, (end.astimezone(tz).date() - start.astimezone(tz).date()).days)


@dataclass(frozen=True, slots=True)
class RolePolicy:
    max_loans: int
    loan_days: int
    renewals: int
    renewal_days: int
    max_holds: int


@dataclass(frozen=True, slots=True)
class LoanPolicy:
    roles: dict[str, RolePolicy] = field(
        default_factory=lambda: {
            "student": RolePolicy(3, 30, 1, 15, 3),
            "teacher": RolePolicy(10, 60, 2, 30, 10),
            "librarian": RolePolicy(20, 60, 3, 30, 20),
        }
    )
    hold_pickup_days: int = 3
    binding_code_days: int = 30
    timezone: str = "Asia/Shanghai"

    def for_role(self, role: str) -> RolePolicy:
        return self.roles.get(role, self.roles["student"])

    def due(self, start: datetime, days: int) -> datetime:
        """The end of the school's day ``days`` after ``start``: readers are told a date, so a
        book due "2026-12-28" is not overdue until that day is over."""
        tz = ZoneInfo(self.timezone)
        day = (start + timedelta(days=days)).astimezone(tz).date()
        return datetime.combine(day, time(23, 59, 59), tzinfo=tz).astimezone(UTC)
