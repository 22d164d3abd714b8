"""Faults: failures injected into the bot's Bot API calls (flood waits, blocked users, server
errors, slow answers), so tests can show what the bot does when Telegram says no."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.emulator.protocol import JSON, as_int

__all__ = ["Fault", "FaultInjector"]


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
    hits: int = 0

    def matches(self, method: str, params: JSON) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method not in ("*", method):
            return False
        return self.chat_id is None or as_int(params.get("chat_id")) == self.chat_id

    def to_json(self) -> JSON:
        return {
            "method": self.method,
            "kind": self.kind,
            "retry_after": self.retry_after,
            "times": self.times,
            "chat_id": self.chat_id,
            "delay": self.delay,
            "hits": self.hits,
        }


class FaultInjector:
    """Failures to inject into Bot API calls, consumed in the order they were added."""

    KINDS = ("429", "403", "5xx", "slow", "400")

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
    ) -> Fault:
        """Fail the next ``times`` calls (None = forever) of ``method`` ("*" = any method).

        kinds: "429" (flood wait ``retry_after``), "403" (blocked by the user), "5xx" (502 Bad
        Gateway), "slow" (answer normally after ``delay`` seconds), "400" (``description``).
        """
        if kind not in self.KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {self.KINDS}")
        fault = Fault(
            method=method.lower(),
            kind=kind,
            retry_after=retry_after,
            times=times,
            chat_id=chat_id,
            delay=delay,
            description=description,
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
                fault.hits += 1
                return fault
        return None
