"""Telegram's HTML subset, made safe: what the bot sends keeps its <b>, <i>, links and the
like; anything else (a catalogue title such as ``<img src=x onerror=…>``) is text. The page
sanitises again with the same list (static/app.js) before it touches the DOM."""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser
from urllib.parse import urlsplit

# Telegram's formatting tags (https://core.telegram.org/bots/api#html-style) and the one
# attribute each may keep.
ALLOWED: dict[str, str | None] = {
    "b": None,
    "strong": None,
    "i": None,
    "em": None,
    "u": None,
    "ins": None,
    "s": None,
    "strike": None,
    "del": None,
    "code": None,
    "pre": None,
    "blockquote": None,
    "tg-spoiler": None,
    "a": "href",
}
LINK_SCHEMES = ("http", "https", "mailto", "tg")


def safe_link(href: str) -> str | None:
    scheme = urlsplit(href.strip()).scheme.lower()
    return href.strip() if scheme in LINK_SCHEMES else None


class _Subset(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "span" and ("class", "tg-spoiler") in attrs:
            tag, attrs = "tg-spoiler", []
        if tag not in ALLOWED:
            return
        keep = ALLOWED[tag]
        rendered = ""
        for name, value in attrs:
            if name == keep and value is not None and (link := safe_link(value)):
                rendered = f' {name}="{escape(link, quote=True)}"'
        self.out.append(f"<{tag}{rendered}>")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and "tg-spoiler" in self.open:
            tag = "tg-spoiler"
        if tag not in self.open:
            return
        while self.open:  # close what a sloppy sender left open inside it
            closing = self.open.pop()
            self.out.append(f"</{closing}>")
            if closing == tag:
                break

    def handle_data(self, data: str) -> None:
        self.out.append(escape(data, quote=False))


def sanitise(html: str) -> str:
    """The subset of ``html`` the page may render; every other character is escaped text."""
    parser = _Subset()
    parser.feed(html)
    parser.close()
    parser.out.extend(f"</{tag}>" for tag in reversed(parser.open))
    return "".join(parser.out)


def plain(html: str) -> str:
    """The text without any tags (what Telegram returns as a message's ``text``)."""
    parser = _Subset()
    parser.feed(html)
    parser.close()
    text = "".join(parser.out)
    stripper = _Text()
    stripper.feed(text)
    stripper.close()
    return "".join(stripper.parts)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
