"""The catalogue as readers see it: the book card, search pages, and what counts as 新书."""
