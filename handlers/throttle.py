"""The throttling window kept in Redis, so that a user whose updates land on several workers is
counted once (ThrottlingMiddleware in ``handlers/middlewares.py`` uses it when given one).

The same sliding window as the in-process one: a sorted set of the user's recent update times,
trimmed, counted and added to in one Lua script (atomic across workers); a second key marks the
first refusal of a window, which alone is answered.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

# 1: allowed; 0: refused, the first refusal of this window (say so); -1: refused, silently.
_WINDOW = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local ttl = math.ceil(window / 1000) + 1
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ttl * 1000)
  return 1
end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', window) then
  return 0
end
return -1
"""

ALLOWED, REFUSED_FIRST, REFUSED = 1, 0, -1


class RedisWindow:
    def __init__(self, redis: Redis, *, prefix: str, limit: int = 8, window_s: float = 5.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limit = limit
        self.window_ms = round(window_s * 1000)
        self._script = redis.register_script(_WINDOW)

    async def check(self, user_id: int, now: float | None = None) -> int | None:
        """ALLOWED, REFUSED_FIRST or REFUSED; None when Redis does not answer (the caller falls
        back to its own window: throttling is no reason to drop an update). ``now`` (seconds)
        for tests on an injected clock."""
        now_ms = round((time.time() if now is None else now) * 1000)
        keys = [f"{self.prefix}:throttle:{user_id}", f"{self.prefix}:throttle-warned:{user_id}"]
        args: list[int | str] = [
            now_ms,
            self.window_ms,
            self.limit,
            f"{now_ms}-{uuid.uuid4().hex[:8]}",
        ]
        try:
            return int(await cast("Any", self._script(keys=keys, args=args)))
        except (RedisError, OSError):
            return None
