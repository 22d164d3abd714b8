"""Readers and their bindings: single-use codes, bind and unbind (binding.py), the printable
binding sheet (sheet.py)."""
