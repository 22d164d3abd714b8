"""Recommendations: the engine (plain Python), the model built from the database, the weekly
new-book list, and the loan-history import that feeds them."""
