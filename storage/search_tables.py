"""Search index tables (owned by nlp/index.py, which fills them). Filled in by the search issue."""
