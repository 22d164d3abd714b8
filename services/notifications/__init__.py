"""Pushes: the machinery only. What a kind is (kinds.py: ``Kind``, ``Button``, ``Action``),
queueing it in the event's transaction and claiming it for the sender (outbox.py), quiet hours
(quiet.py), the text and buttons of a stored row (render.py), every kind by name (registry.py) and
the sweeps that queue reminders (reminders.py). The sender is bot/sender.py.

Each kind is declared by the feature that sends it, beside its rules: services/circulation/kinds.py
(holds and due dates), services/corners/kinds.py, services/stats/kinds.py (读书之星),
services/recommend/kinds.py (the weekly list), services/suggestion_kinds.py (荐购),
services/reading_list_kinds.py, and this package's notice.py (a broadcast notice).

Imports run one way, so there is no cycle:

- a feature's kinds module imports only kinds.py (and what its payloads need); a feature's rules
  import their own kinds module and this package (``enqueue``);
- this package's ``__init__`` imports kinds.py, outbox.py and quiet.py, none of which imports a
  feature, so a feature may import it at any point of its own import;
- registry.py imports every feature's kinds module; only render.py, the sender, /settings and the
  CLI import it (directly, never through this ``__init__``), and no feature does.
"""

from services.notifications.kinds import Action, Button, Kind
from services.notifications.outbox import (
    Outgoing,
    claim,
    enqueue,
    enqueue_many,
    enqueue_raw,
    enqueue_rows,
    mark_failed,
    mark_retry,
    mark_sent,
    mark_unreachable,
    preferences,
    release_claims,
    set_preference,
    wants,
)
from services.notifications.quiet import QuietHours

__all__ = [
    "Action",
    "Button",
    "Kind",
    "Outgoing",
    "QuietHours",
    "claim",
    "enqueue",
    "enqueue_many",
    "enqueue_raw",
    "enqueue_rows",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "mark_unreachable",
    "preferences",
    "release_claims",
    "set_preference",
    "wants",
]
