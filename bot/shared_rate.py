"""One send rate for every worker's sender, kept in Redis, so that the whole deployment stays
within Telegram's ~30 messages a second however many workers drain the outbox.

GCRA in reservation form: each send reserves the next free slot (``max(theoretical arrival time,
now)``, then moves it on by ``1/rate``) in one atomic Lua script and waits until its slot. No two
slots are closer than ``1/rate``, whichever worker took them, so no second holds more than the
rate (plus the one send at its edge). The clock is Redis's own ``TIME`` (workers' clocks may
drift apart); tests pass ``now``. aiolimiter keeps its bucket in the process, and the Redis-backed
limiters on PyPI poll with "try again later" answers or keep fixed windows, which let two
windows' worth through across an edge; a reservation is a dozen lines of Lua and exact.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import Redis

# Returns the wait before the reserved slot, in microseconds (Redis returns integers).
_RESERVE = """
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(tat, now)
redis.call('SET', KEYS[1], string.format('%.0f', slot + interval),
           'PX', math.ceil((slot + interval - now) / 1000) + 1000)
return math.ceil(slot - now)
"""


class SharedRate:
    """``await reserve()`` returns the seconds to wait before sending (0 when the slot is now)."""

    def __init__(self, redis: Redis, key: str, rate: float) -> None:
        self.redis = redis
        self.key = key
        self.interval_us = 1_000_000 / rate
        self._script = redis.register_script(_RESERVE)

    async def reserve(self, now: float | None = None) -> float:
        """``now`` (seconds) only for tests on an injected clock; else Redis's clock."""
        now_us = -1 if now is None else round(now * 1_000_000)
        waited = await cast(
            "Any", self._script(keys=[self.key], args=[now_us, f"{self.interval_us:.0f}"])
        )
        return int(waited) / 1_000_000

    async def acquire(self) -> None:
        wait = await self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)
