"""What a search shows: the page of results, the "nothing found" note with its closest titles,
and the book card (a long 内容简介 folded to a few lines until 展开). Pure text from what the
catalogue services return; handlers/search.py does the asking and the replying."""

from __future__ import annotations

import math
from zoneinfo import ZoneInfo

from handlers.render import Translator, esc, fmt_date
from nlp.search import MAX_TOTAL, SearchResult
from services.catalogue.card import PAGE_SIZE, BookCard
from services.circulation import HoldStatus
from services.titles import NameParts, told_apart

# A summary longer than FOLD_AT characters shows its first FOLDED characters (about three lines
# on a phone) until 展开; unfolded it is still capped so a card stays far below 4,096 characters.
FOLD_AT = 90
FOLDED = 70
SUMMARY_MAX = 2500


def render_results(tr: Translator, query: str, result: SearchResult, page: int) -> str:
    pages = max(1, math.ceil(result.total / PAGE_SIZE))
    if result.total >= MAX_TOTAL:  # counting stops there: say "more than"
        header = tr("search.results_capped", query=esc(query), total=MAX_TOTAL, page=page + 1)
    else:
        header_key = "search.class_list" if result.kind == "clc" else "search.results"
        header = tr(header_key, query=esc(query), total=result.total, page=page + 1, pages=pages)
    lines = [header, ""]
    # Two editions of one book would read alike: say what tells them apart.
    apart = told_apart(
        (
            (h.title, h.subtitle, h.author),
            NameParts(h.record_pk, h.title, h.subtitle, h.publisher, h.pub_date, h.record_id),
        )
        for h in result.hits
    )
    for n, hit in enumerate(result.hits, page * PAGE_SIZE + 1):
        if hit.copies == 0:
            availability = tr("search.no_copies")
        elif hit.on_shelf == 0:
            availability = tr("search.none_on_shelf")
        else:
            availability = tr("search.available", on_shelf=hit.on_shelf, copies=hit.copies)
        author = f" {esc(hit.author)}" if hit.author else ""
        subtitle = esc(hit.subtitle) if hit.subtitle else ""
        lines.append(
            tr(
                "search.line",
                n=n,
                title=esc(hit.title),
                subtitle=subtitle,
                author=author,
                apart=tr("search.apart", apart=esc(apart[hit.record_pk]))
                if hit.record_pk in apart
                else "",
                availability=availability,
            )
        )
    return "\n".join(lines)


def _earliest_due(tr: Translator, card: BookCard, tz: ZoneInfo) -> list[str]:
    """All copies out: when the soonest is due back (not for its own borrower)."""
    if card.earliest_due is None or card.my_loan_due is not None:
        return []
    return [tr("due.card_earliest", due=fmt_date(card.earliest_due, tz))]


def summary_folded(card: BookCard, expanded: bool) -> bool | None:
    """None: no summary or a short one (no button); else whether it is shown folded."""
    if card.summary is None or len(card.summary) <= FOLD_AT:
        return None
    return not expanded


def _summary(tr: Translator, card: BookCard, expanded: bool) -> list[str]:
    if card.summary is None:
        return []
    text = card.summary
    limit = FOLDED if summary_folded(card, expanded) else SUMMARY_MAX
    if len(text) > limit:
        text = text[:limit].rstrip() + "…"
    return ["", tr("card_more.summary", summary=esc(text))]


def render_card(tr: Translator, card: BookCard, tz: ZoneInfo, *, expanded: bool = False) -> str:
    lines = [tr("card.title", title=esc(card.title))]
    if card.subtitle:
        lines.append(tr("card.subtitle", subtitle=esc(card.subtitle)))
    if card.authors:
        lines.append(tr("card.authors", authors=esc(card.authors)))
    if card.publisher and card.pub_year:
        lines.append(tr("card.publisher_year", publisher=esc(card.publisher), year=card.pub_year))
    elif card.publisher:
        lines.append(tr("card.publisher", publisher=esc(card.publisher)))
    if card.call_number:
        lines.append(tr("card.call_number", call_number=esc(card.call_number)))
    lines.append(
        tr("card.location", location=esc(card.location))
        if card.location
        else tr("card.location_unknown")
    )
    if card.copies:
        lines.append(tr("card.copies", on_shelf=card.on_shelf, copies=card.copies))
        lines += _earliest_due(tr, card, tz)
    else:
        lines.append(tr("card.no_copies"))
    if card.in_corners:
        lines.append(tr("card.corners", count=card.in_corners))
        places = "、".join(
            [tr("corners.in_corner", class_name=esc(c)) for c in card.corner_names]
            + [tr("corners.to_corner", class_name=esc(c)) for c in card.corners_bound]
        )
        if places:
            lines.append(places)
    if card.waiting:
        lines.append(tr("card.waiting", count=card.waiting))
    return "\n".join(lines + _summary(tr, card, expanded) + _my_state(tr, card, tz))


def _my_state(tr: Translator, card: BookCard, tz: ZoneInfo) -> list[str]:
    """The reader's own relation to the title (their loan, their hold), after a blank line."""
    if card.my_loan_due is not None:
        mine = [tr("card.my_loan", due=fmt_date(card.my_loan_due, tz))]
        if card.waiting:
            mine.append(tr("card.my_loan_waiting", count=card.waiting))
    elif card.my_hold_status == HoldStatus.READY and card.my_hold_office:
        mine = [tr("card.my_hold_ready_office")]
    elif card.my_hold_status == HoldStatus.READY and card.my_hold_ready_until is not None:
        mine = [tr("card.my_hold_ready", until=fmt_date(card.my_hold_ready_until, tz))]
    elif card.my_hold_id is not None:
        mine = [tr("card.my_hold_waiting", position=card.my_hold_position)]
    elif card.on_shelf:
        mine = [tr("card.on_shelf_hint")]
    elif card.copies and card.reserve_refusal is not None:
        # No 预约 button: place_hold would refuse (hold limit, card stopped), and this is why.
        mine = [tr("card.cannot_reserve", why=esc(card.reserve_refusal.render(tr.locale)))]
    else:
        return []
    return ["", *mine]


def render_miss(tr: Translator, query: str, result: SearchResult) -> str:
    """Nothing found; the closest titles (or ISBNs one digit away) when there are some."""
    text = tr("search.miss", query=esc(query))
    if not result.suggestions:
        return text
    lines = [text, "", tr("search_suggest.did_you_mean")]
    for suggestion in result.suggestions:
        author = f" {esc(suggestion.author)}" if suggestion.author else ""
        isbn = suggestion.isbn if result.kind == "isbn" and suggestion.isbn else ""
        lines.append(
            tr(
                "search_suggest.suggestion", title=esc(suggestion.title), author=author, isbn=isbn
            ).rstrip()
        )
    return "\n".join(lines)
