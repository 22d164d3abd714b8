"""Reasons in words: one wording for the bot, the CLI and the outbox."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.i18n import t


def reason_text(reason: Mapping[str, object], locale: str | None = None) -> str:
    kind = reason.get("kind")
    if kind == "borrowed":
        return t("recommend.reason_borrowed", locale=locale, title=reason.get("title", ""))
    if kind in ("class", "grade"):
        return t(
            f"recommend.reason_{kind}",
            locale=locale,
            group=reason.get("group", ""),
            count=reason.get("count", 0),
        )
    if kind == "subscribed":
        return t("recommend.reason_subscribed", locale=locale, topic=reason.get("topic", ""))
    if kind == "pick":
        return t("recommend.reason_pick", locale=locale, blurb=reason.get("blurb", ""))
    if kind == "fresh":
        return t("recommend.reason_fresh", locale=locale)
    if kind == "grade_taste":
        return t("recommend.reason_new_popular", locale=locale)
    return t("recommend.reason_popular", locale=locale)


def reasons_text(reasons: Iterable[Mapping[str, object]], locale: str | None = None) -> str:
    separator = t("recommend.reason_separator", locale=locale)
    return separator.join(reason_text(r, locale) for r in reasons)
