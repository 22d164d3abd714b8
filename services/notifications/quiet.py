"""Quiet hours: pushes wait through the night (school time zone) and go out in the morning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.i18n import t


def parse_clock(value: str) -> time:
    """'07:30' -> time(7, 30); a clear error for anything else."""
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(t("quiet.bad_clock", value=value)) from None


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time | None
    end: time | None
    tz: ZoneInfo

    @classmethod
    def parse(cls, spec: str, tz: ZoneInfo) -> QuietHours:
        """'21:30-07:00' (may wrap midnight); '' means none."""
        if not spec.strip():
            return cls(None, None, tz)
        start, sep, end = spec.partition("-")
        if not sep:
            raise ValueError(t("quiet.bad_hours", value=spec))
        return cls(parse_clock(start), parse_clock(end), tz)

    @classmethod
    def none(cls) -> QuietHours:
        return cls(None, None, ZoneInfo("UTC"))

    def active(self, moment: datetime) -> bool:
        if self.start is None or self.end is None or self.start == self.end:
            return False
        local = moment.astimezone(self.tz).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends(self, moment: datetime) -> datetime:
        """When the quiet period around ``moment`` is over (``moment`` itself when not quiet)."""
        if not self.active(moment) or self.end is None:
            return moment
        local = moment.astimezone(self.tz)
        end = datetime.combine(local.date(), self.end, tzinfo=self.tz)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(UTC)
