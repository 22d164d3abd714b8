"""Faults: failures injected into the bot's Bot API calls (flood waits, blocked users, server
errors, slow or lost answers, dropped connections), so tests can show what the bot does when
Telegram says no or the network fails."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sandbox.emulator.protocol import (
    BLOCKED,
    JSON,
    ApiError,
    ConnectionDropped,
    as_int,
    bad_request,
    too_many_requests,
)

__all__ = ["Fault", "FaultInjector"]

_SERVER_ERRORS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class Fault:
    """One injected failure; see :meth:`FaultInjector.add`."""

    method: str
    kind: str
    retry_after: int = 1
    times: int | None = 1
    chat_id: int | None = None
    delay: float = 1.0
    description: str | None = None
    status: int = 502
    every: int = 1
    hits: int = 0
    seen: int = 0  # matching calls, failed or not (for ``every``)

    def matches(self, method: str, params: JSON) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method not in ("*", method):
            return False
        return self.chat_id is None or as_int(params.get("chat_id")) == self.chat_id

    def error(self) -> ApiError | None:
        """The error reply this fault answers with, if it answers with one."""
        if self.kind == "429":
            return too_many_requests(self.retry_after)
        if self.kind == "403":
            return ApiError(403, self.description or BLOCKED)
        if self.kind == "5xx":
            return ApiError(self.status, self.description or _SERVER_ERRORS[self.status])
        if self.kind == "400":
            return bad_request(self.description or "injected fault")
        return None

    async def before(self) -> None:
        """What happens before the method runs: an error, a dropped connection or a wait."""
        error = self.error()
        if error is not None:
            raise error
        if self.kind == "drop":
            raise ConnectionDropped
        if self.kind == "slow":
            await asyncio.sleep(self.delay)

    async def after(self) -> None:
        """What happens after the method ran (its effect is kept): a late or a lost answer."""
        if self.kind == "late":
            await asyncio.sleep(self.delay)
        elif self.kind == "lost":
            raise ConnectionDropped

    def to_json(self) -> JSON:
        return {
            "method": self.method,
            "kind": self.kind,
            "retry_after": self.retry_after,
            "times": self.times,
            "chat_id": self.chat_id,
            "delay": self.delay,
            "description": self.description,
            "status": self.status,
            "every": self.every,
            "hits": self.hits,
        }


class FaultInjector:
    """Failures to inject into Bot API calls, consumed in the order they were added."""

    KINDS = ("429", "403", "5xx", "400", "slow", "late", "drop", "lost")

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        method: str = "*",
        kind: str = "429",
        *,
        retry_after: int = 1,
        times: int | None = 1,
        chat_id: int | None = None,
        delay: float = 1.0,
        description: str | None = None,
        status: int = 502,
        every: int = 1,
    ) -> Fault:
        """Fail the next ``times`` calls (None = forever) of ``method`` ("*" = any method),
        only those to ``chat_id`` if given; with ``every`` N, only every Nth matching call.

        kinds: "429" (flood wait ``retry_after``), "403" (blocked by the user, or
        ``description`` such as "Forbidden: user is deactivated"), "5xx" (``status`` 500, 502,
        503 or 504), "400" (``description``), "slow" (answer normally after ``delay`` seconds),
        "late" (do it, answer ``delay`` seconds later), "drop" (close the connection without
        doing it), "lost" (do it, then close the connection without an answer).
        """
        if kind not in self.KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {self.KINDS}")
        if kind == "5xx" and status not in _SERVER_ERRORS:
            raise ValueError(f"5xx status must be one of {sorted(_SERVER_ERRORS)}")
        if every < 1 or retry_after < 1 or delay < 0:
            raise ValueError("need every >= 1, retry_after >= 1 and delay >= 0")
        fault = Fault(
            method=method.lower(),
            kind=kind,
            retry_after=retry_after,
            times=times,
            chat_id=chat_id,
            delay=delay,
            description=description,
            status=status,
            every=every,
        )
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    @property
    def active(self) -> list[Fault]:
        return [f for f in self._faults if f.times is None or f.hits < f.times]

    def take(self, method: str, params: JSON) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, params):
                fault.seen += 1
                if fault.seen % fault.every:
                    continue
                fault.hits += 1
                return fault
        return None
