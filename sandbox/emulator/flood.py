"""Telegram's flood limits, opt-in: about 30 messages a second across all chats and about one a
second to one chat (a short burst tolerated); past them a send gets 429 "Too Many Requests:
retry after N", as from the real Bot API.

Both limits are token buckets (a bucket holds ``burst`` sends and refills at ``rate`` a second).
The emulator needs Telegram's ``retry_after`` and a clock a test can drive, which neither
aiolimiter nor limits exposes, so the buckets are written out here (a few lines).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.emulator.protocol import JSON

__all__ = ["SEND_METHODS", "FloodLimits"]

# What Telegram's limits count: messages sent, not edits, callback answers or reads.
SEND_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendsticker",
        "sendmediagroup",
        "copymessage",
        "forwardmessage",
    }
)


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self) -> float:
        """Seconds until one send fits (0 when it fits now)."""
        return 0.0 if self.tokens >= 1 - 1e-9 else (1 - self.tokens) / self.rate


class FloodLimits:
    """The global and per-chat limits and what they refused; off until :meth:`enable`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.enabled = False
        self.global_rate = 30.0
        self.global_burst = 30.0
        self.chat_rate = 1.0
        self.chat_burst = 3.0
        self.accepted = 0
        self.rejected = 0  # 429s sent by these limits (injected 429 faults are not counted)
        self.rejected_by_chat: Counter[int] = Counter()
        self._global: _Bucket | None = None
        self._chats: dict[int, _Bucket] = {}

    def enable(
        self,
        *,
        global_rate: float = 30.0,
        global_burst: float | None = None,
        chat_rate: float = 1.0,
        chat_burst: float = 3.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Turn the limits on (buckets start full); ``global_burst`` defaults to one second's."""
        if min(global_rate, chat_rate, chat_burst) <= 0 or (global_burst or 1) <= 0:
            raise ValueError("flood rates and bursts must be positive")
        if clock is not None:
            self.clock = clock
        self.enabled = True
        self.global_rate = float(global_rate)
        self.global_burst = float(global_burst if global_burst is not None else global_rate)
        self.chat_rate = float(chat_rate)
        self.chat_burst = float(chat_burst)
        self._global = None
        self._chats.clear()

    def disable(self) -> None:
        self.enabled = False

    def reset_counters(self) -> None:
        self.accepted = 0
        self.rejected = 0
        self.rejected_by_chat.clear()

    def check(self, method: str, chat_id: int | None) -> int | None:
        """Count one call; return Telegram's ``retry_after`` when it is refused, else None."""
        if not self.enabled or method not in SEND_METHODS:
            return None
        now = self.clock()
        if self._global is None:
            self._global = _Bucket(self.global_rate, self.global_burst, self.global_burst, now)
        buckets = [self._global]
        if chat_id is not None:
            chat = self._chats.get(chat_id)
            if chat is None:
                chat = self._chats[chat_id] = _Bucket(
                    self.chat_rate, self.chat_burst, self.chat_burst, now
                )
            buckets.append(chat)
        for bucket in buckets:
            bucket.refill(now)
        wait = max(bucket.wait() for bucket in buckets)
        if wait > 0:
            self.rejected += 1
            if chat_id is not None:
                self.rejected_by_chat[chat_id] += 1
            return max(1, math.ceil(wait))
        for bucket in buckets:
            bucket.tokens -= 1
        self.accepted += 1
        return None

    def stats(self) -> JSON:
        """Settings and counters, JSON-ready (chat ids as string keys)."""
        return {
            "enabled": self.enabled,
            "global_rate": self.global_rate,
            "global_burst": self.global_burst,
            "chat_rate": self.chat_rate,
            "chat_burst": self.chat_burst,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejected_by_chat": {str(c): n for c, n in sorted(self.rejected_by_chat.items())},
        }
