"""Storage: SQLAlchemy models, the unit of work, queries and migrations. Imports nothing of ours."""
