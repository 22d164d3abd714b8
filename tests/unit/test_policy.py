"""Due dates are dates: the end of the school's day, whatever the time of lending."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.policy import LoanPolicy


@pytest.mark.parametrize(
    ("lent_utc", "days", "due_utc"),
    [
        # 10:00 in Shanghai (02:00 UTC) + 30 days → 23:59:59 Shanghai that day.
        (datetime(2026, 9, 1, 2, 0, tzinfo=UTC), 30, datetime(2026, 10, 1, 15, 59, 59, tzinfo=UTC)),
        # 15:30 UTC is 23:30 in Shanghai: the local date, not the UTC one, counts.
        (datetime(2026, 9, 1, 15, 30, tzinfo=UTC), 1, datetime(2026, 9, 2, 15, 59, 59, tzinfo=UTC)),
        (datetime(2026, 9, 1, 16, 30, tzinfo=UTC), 1, datetime(2026, 9, 3, 15, 59, 59, tzinfo=UTC)),
        # A renewal from a due date keeps the end of day.
        (
            datetime(2026, 10, 1, 15, 59, 59, tzinfo=UTC),
            15,
            datetime(2026, 10, 16, 15, 59, 59, tzinfo=UTC),
        ),
    ],
)
def test_due_is_end_of_local_day(lent_utc: datetime, days: int, due_utc: datetime) -> None:
    assert LoanPolicy().due(lent_utc, days) == due_utc


def test_other_time_zone() -> None:
    policy = LoanPolicy(timezone="Europe/Berlin")
    due = policy.due(datetime(2026, 1, 10, 12, 0, tzinfo=UTC), 3)
    assert due == datetime(2026, 1, 13, 22, 59, 59, tzinfo=UTC)
