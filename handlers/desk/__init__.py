"""The circulation desk in the librarian's chat. A barcode scanner types the code and Enter, so a
bare barcode is a scan: the copy's state and the obvious next step as buttons (归还 when it
is out, 借出 when it is on the shelf, 借给 the reader it is kept for). The keyboard's 借出, 归还
and 读者 wait for the next scans in an aiogram FSM state (states.py); 预约架 lists the hold
shelf. Students never reach these handlers (librarian filter), and the services refuse them
anyway.

handling.py has the routers and handlers, views.py the texts and the desk's keyboards. Two
routers: ``build_router`` (buttons, waiting states, presses) runs before the class corners, so
a card scanned while the desk waits for a reader is not taken for a corner barcode;
``build_scan_router`` (bare scans) runs after them, so an open corner draft still collects scans.
"""

from handlers.desk.handling import build_router, build_scan_router, reader_command
from handlers.desk.states import RUNS, Desk
from handlers.desk.views import checked_out_text, returned_text, summary_text

__all__ = [
    "RUNS",
    "Desk",
    "build_router",
    "build_scan_router",
    "checked_out_text",
    "reader_command",
    "returned_text",
    "summary_text",
]
