"""What the desk waits for next: an aiogram FSM state per chat (memory, or Redis with
SHUXIANG_REDIS_URL so a restart keeps it)."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup

SINCE = "since"  # FSM data: the message a run of scans began at (older 完成 buttons are stale)


class Desk(StatesGroup):
    lend_reader = State()  # data: copy_id (optional): the next text names the reader
    lend_books = State()  # data: reader_id: each scan lends that copy to them
    returning = State()  # each scan takes a copy back
    find_reader = State()  # the next text names a reader to show


# Runs of scans: 完成 (or a command that ends one) says what it did.
RUNS = (Desk.lend_books.state, Desk.returning.state)
