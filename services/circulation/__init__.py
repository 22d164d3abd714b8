"""Circulation rules, by family: lending (checkout, return, renewal), the hold queue, and the read
models behind 我的借阅 and 我的预约.

Every function runs inside the caller's unit of work (``Database.transaction()`` or the bot's
per-update session) and never commits. Anything that changes a title's copies, loans or holds first
locks that title's record row, so on PostgreSQL concurrent returns, renewals and reservations of
one title queue up instead of interleaving; on SQLite ``BEGIN IMMEDIATE`` already serialises
writers.

The services that change state or show a reader's data take the ``actor`` asking
(services/actor.py) and check it themselves: lending, returns and the desk's look-ups are the
librarian's (or the server's); a reader's own loans, holds and renewals are that reader's (or the
librarian's); a stranger is refused.
"""

from services.circulation.common import (
    COUNTED,
    LENDABLE,
    copy_by_barcode,
    find_copy_by_barcode,
    find_reader_by_card,
    lock_record,
    open_loan_count,
    overdue_count,
    queue_place,
    queue_position,
    reader_by_card,
    waiting_count,
)
from services.circulation.desk import (
    CopyState,
    DeskLoan,
    ReaderDesk,
    ShelfItem,
    ShelfPage,
    card_at_desk,
    copy_at_desk,
    copy_state,
    find_readers,
    hold_shelf,
    reader_desk,
)
from services.circulation.holds import (
    HoldPlaced,
    cancel_hold,
    expire_ready_holds,
    hold_refusal,
    pass_copy_on,
    place_hold,
    title_hold_refusal,
)
from services.circulation.lending import (
    CheckoutResult,
    RenewalRefusal,
    RenewResult,
    ReturnResult,
    checkout,
    renew,
    renewal_refusal,
    return_copy,
)
from services.circulation.refusals import Person, lend_refusal, title_already_out_to
from services.circulation.views import (
    HistoryPage,
    HoldView,
    LoanView,
    PastLoan,
    hold_of,
    holds_of,
    loan_history,
    loans_of,
)

# The statuses the chat's texts branch on, so handlers need not reach into storage.
from storage.models import CopyStatus, HoldStatus

__all__ = [
    "COUNTED",
    "LENDABLE",
    "CheckoutResult",
    "CopyState",
    "CopyStatus",
    "DeskLoan",
    "HistoryPage",
    "HoldPlaced",
    "HoldStatus",
    "HoldView",
    "LoanView",
    "PastLoan",
    "Person",
    "ReaderDesk",
    "RenewResult",
    "RenewalRefusal",
    "ReturnResult",
    "ShelfItem",
    "ShelfPage",
    "cancel_hold",
    "card_at_desk",
    "checkout",
    "copy_at_desk",
    "copy_by_barcode",
    "copy_state",
    "expire_ready_holds",
    "find_copy_by_barcode",
    "find_reader_by_card",
    "find_readers",
    "hold_of",
    "hold_refusal",
    "hold_shelf",
    "holds_of",
    "lend_refusal",
    "loan_history",
    "loans_of",
    "lock_record",
    "open_loan_count",
    "overdue_count",
    "pass_copy_on",
    "place_hold",
    "queue_place",
    "queue_position",
    "reader_by_card",
    "reader_desk",
    "renew",
    "renewal_refusal",
    "return_copy",
    "title_already_out_to",
    "title_hold_refusal",
    "waiting_count",
]
