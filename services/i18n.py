"""The locale catalogue: every user-facing string, looked up by key (zh-CN first).

A locale is a folder of TOML files, one per feature (``services/locales/zh-CN/*.toml``), merged
into one flat table; the same key in two files is an error, not a silent override, while a table
shared by features (``[commands]``, ``[notify]``, ``[cli]``) has its entries in each feature's file.
``{name}`` fields are filled by ``str.format``; values put into bot messages are HTML-escaped by
the caller."""

from __future__ import annotations

import logging
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

DEFAULT_LOCALE = "zh-CN"
LOCALES = Path(__file__).with_name("locales")
log = logging.getLogger(__name__)


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


@cache
def catalogue(locale: str = DEFAULT_LOCALE) -> dict[str, str]:
    folder = LOCALES / locale
    if not folder.is_dir():
        folder = LOCALES / DEFAULT_LOCALE
    merged: dict[str, str] = {}
    for path in sorted(folder.glob("*.toml")):
        with path.open("rb") as fh:
            table = _flatten(tomllib.load(fh))
        clash = sorted(merged.keys() & table.keys())
        if clash:
            raise ValueError(f"{path.name} repeats locale keys: {', '.join(clash[:5])}")
        merged.update(table)
    return merged


def available_locale(language_code: str | None) -> str:
    """Telegram sends e.g. 'zh-hans' or 'en'; all map to zh-CN until more catalogues exist."""
    return DEFAULT_LOCALE


def t(key: str, /, locale: str | None = None, **params: Any) -> str:
    messages = catalogue(locale or DEFAULT_LOCALE)
    template = messages.get(key)
    if template is None:
        template = catalogue(DEFAULT_LOCALE).get(key)
    if template is None:
        log.error("missing locale key %s", key)
        return key
    try:
        return template.format(**params) if params else template
    except (KeyError, IndexError, ValueError):
        log.exception("bad parameters for locale key %s", key)
        return template
