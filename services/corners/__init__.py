"""班级图书角: monitors, batches and swaps (swaps.py), pulling corner copies back for holds
(requests.py), and chasing overdue books, 催书单 and graduation clearance (chase.py)."""
