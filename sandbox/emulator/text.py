"""Text checks: Telegram's parse modes (HTML, MarkdownV2, legacy Markdown) turned into plain text
plus entities with UTF-16 offsets, and the limits Telegram puts on texts, captions and keyboards.

Errors are Telegram's own 400 texts ("can't parse entities: ...", "message is too long"), so a
bot that passes here would pass against the real Bot API.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from sandbox.emulator.protocol import JSON, MAX_CAPTION, MAX_TEXT, ApiError, bad_request

__all__ = [
    "caption_of",
    "check_markup",
    "format_text",
    "message_text",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "utf16_len",
]


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram uses for entity offsets."""
    return len(text.encode("utf-16-le")) // 2


class _TextBuilder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0  # UTF-16 offset of the end of the text so far
        self.entities: list[JSON] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += utf16_len(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append(
                {"type": kind, "offset": start, "length": self.pos - start, **extra}
            )

    def result(self) -> tuple[str, list[JSON]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


def _entity_error(message: str) -> ApiError:
    return bad_request(f"can't parse entities: {message}")


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ATTR_RE = re.compile(r"([a-zA-Z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+)))?")
_CHARREF_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);")
_NAMED_REFS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _unescape_html(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref.startswith(("#x", "#X")):
            return chr(int(ref[2:], 16))
        if ref.startswith("#"):
            return chr(int(ref[1:]))
        return _NAMED_REFS.get(ref.lower(), m.group(0))

    return _CHARREF_RE.sub(repl, text)


def parse_html(source: str) -> tuple[str, list[JSON]]:
    """Telegram's HTML parse mode (a simplified but strict subset of its parser)."""
    out = _TextBuilder()
    stack: list[_OpenTag] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "<":
            i = _html_tag(source, i, out, stack)
            continue
        if ch == "&":
            m = _CHARREF_RE.match(source, i)
            if m is not None:
                out.add(_unescape_html(m.group(0)))
                i = m.end()
                continue
        out.add(ch)
        i += 1
    if stack:
        raise _entity_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


# An open HTML tag: its name, the UTF-16 offset where it began, the entity it makes (if any).
_OpenTag = tuple[str, int, JSON | None]


def _html_tag(source: str, i: int, out: _TextBuilder, stack: list[_OpenTag]) -> int:
    """Handle the tag at ``i``; return the index after it."""
    m = _TAG_RE.match(source, i)
    offset = _byte_offset(source, i)
    if m is None:
        tail = source[i + 1 : i + 16].split(">")[0]
        raise _entity_error(f'Unsupported start tag "{tail}" at byte offset {offset}')
    closing, name, raw_attrs = m.group(1) == "/", m.group(2).lower(), m.group(3) or ""
    if closing:
        if not stack:
            raise _entity_error(f"Unexpected end tag at byte offset {offset}")
        open_name, start, closed = stack.pop()
        if open_name != name:
            raise _entity_error(
                f'Unmatched end tag at byte offset {offset}, expected "</{open_name}>", '
                f'found "</{name}>"'
            )
        if closed is not None:
            out.entity(start=start, **closed)
    else:
        entity = _html_entity(name, raw_attrs, offset, out.pos, stack)
        stack.append((name, out.pos, entity))
    return m.end()


def _html_entity(
    name: str, raw_attrs: str, offset: int, pos: int, stack: list[_OpenTag]
) -> JSON | None:
    """The entity an opening tag makes (None for a link without href or a pre's language)."""
    if name not in _HTML_TAGS:
        raise _entity_error(f'Unsupported start tag "{name}" at byte offset {offset}')
    attrs = {
        a.group(1).lower(): _unescape_html(a.group(2) or a.group(3) or a.group(4) or "")
        for a in _ATTR_RE.finditer(raw_attrs)
    }
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise _entity_error(f'Unsupported start tag "span" at byte offset {offset}')
    if name == "a":
        return {"kind": "text_link", "url": attrs["href"]} if "href" in attrs else None
    if name == "blockquote" and "expandable" in attrs:
        return {"kind": "expandable_blockquote"}
    if name == "tg-emoji":
        return {"kind": "custom_emoji", "custom_emoji_id": attrs.get("emoji-id", "")}
    if name == "code" and stack and stack[-1][0] == "pre" and stack[-1][1] == pos:
        pre = stack[-1][2]
        language = attrs.get("class", "")
        if pre is not None and language.startswith("language-"):
            pre["language"] = language[len("language-") :]
            return None
    return {"kind": _HTML_TAGS[name]}


_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!\\")
_MD2_NAMES = {
    "*": ("bold", "Bold"),
    "_": ("italic", "Italic"),
    "__": ("underline", "Underline"),
    "~": ("strikethrough", "Strikethrough"),
    "||": ("spoiler", "Spoiler"),
    "[": ("text_link", "TextUrl"),
}


def _md2_scan_until(source: str, i: int, end: str, byte_start: int, what: str) -> tuple[str, int]:
    """Read escaped text from ``i`` up to the unescaped ``end``; return (text, index after end)."""
    buf: list[str] = []
    n = len(source)
    while i < n:
        if source[i] == "\\" and i + 1 < n:
            buf.append(source[i + 1])
            i += 2
            continue
        if source.startswith(end, i):
            return "".join(buf), i + len(end)
        buf.append(source[i])
        i += 1
    raise _entity_error(f"Can't find end of {what} entity at byte offset {byte_start}")


def parse_markdown_v2(source: str) -> tuple[str, list[JSON]]:
    """Telegram's MarkdownV2 parse mode, including the reserved-character rule."""
    out = _TextBuilder()
    stack: list[tuple[str, int, int]] = []  # marker, UTF-16 start, byte offset
    quote_start: int | None = None
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        offset = _byte_offset(source, i)
        if ch == "\\" and i + 1 < n and 0 < ord(source[i + 1]) < 127:
            out.add(source[i + 1])
            i += 2
        elif ch == "`":
            i = _md2_code(source, i, offset, out)
        elif ch in "*_~|":
            i = _md2_marker(source, i, offset, out, stack)
        elif ch == "[":
            stack.append(("[", out.pos, offset))
            i += 1
        elif ch == "]" and stack and stack[-1][0] == "[" and source.startswith("(", i + 1):
            url, i = _md2_scan_until(source, i + 2, ")", offset, "URL")
            _, start, _ = stack.pop()
            out.entity("text_link", start, url=url)
        elif ch == ">" and (i == 0 or source[i - 1] == "\n"):
            quote_start = out.pos if quote_start is None else quote_start
            i += 1
        elif ch in _MD2_RESERVED:
            raise _entity_error(
                f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        else:
            if ch == "\n" and quote_start is not None and not source.startswith(">", i + 1):
                out.entity("blockquote", quote_start)
                quote_start = None
            out.add(ch)
            i += 1
    if quote_start is not None:
        out.entity("blockquote", quote_start)
    if stack:
        marker, _, b = stack[-1]
        raise _entity_error(f"Can't find end of {_MD2_NAMES[marker][1]} entity at byte offset {b}")
    return out.result()


def _md2_code(source: str, i: int, offset: int, out: _TextBuilder) -> int:
    """A `code` or ```pre``` block at ``i``; return the index after it."""
    start = out.pos
    if source.startswith("```", i):
        body, i = _md2_scan_until(source, i + 3, "```", offset, "Pre")
        language = ""
        first, sep, rest = body.partition("\n")
        if sep and re.fullmatch(r"[\w+#.-]*", first):
            language, body = first, rest
        out.add(body)
        extra = {"language": language} if language else {}
        out.entity("pre", start, **extra)
    else:
        body, i = _md2_scan_until(source, i + 1, "`", offset, "Code")
        out.add(body)
        out.entity("code", start)
    return i


def _md2_marker(
    source: str, i: int, offset: int, out: _TextBuilder, stack: list[tuple[str, int, int]]
) -> int:
    """A bold/italic/underline/strikethrough/spoiler marker at ``i``: opens or closes an
    entity; return the index after it."""
    marker = source[i]
    if source.startswith("__", i):
        marker = "__"
    elif marker == "|":
        if not source.startswith("||", i):
            raise _entity_error(
                "Character '|' is reserved and must be escaped with the preceding '\\'"
            )
        marker = "||"
    if stack and stack[-1][0] == marker:
        _, start, _ = stack.pop()
        out.entity(_MD2_NAMES[marker][0], start)
    elif any(m == marker for m, _, _ in stack):
        _, _, b = next(s for s in stack if s[0] == marker)
        raise _entity_error(f"Can't find end of {_MD2_NAMES[marker][1]} entity at byte offset {b}")
    else:
        stack.append((marker, out.pos, offset))
    return i + len(marker)


def parse_markdown(source: str) -> tuple[str, list[JSON]]:
    """Telegram's legacy Markdown parse mode (no nesting, few escapes)."""
    out = _TextBuilder()
    i, n = 0, len(source)
    kinds = {"*": "bold", "_": "italic"}
    while i < n:
        ch = source[i]
        offset = _byte_offset(source, i)
        missing = _entity_error(f"Can't find end of the entity starting at byte offset {offset}")
        if ch == "\\" and i + 1 < n and source[i + 1] in "_*`[":
            out.add(source[i + 1])
            i += 2
        elif ch in kinds:
            end = source.find(ch, i + 1)
            if end < 0:
                raise missing
            start = out.pos
            out.add(source[i + 1 : end])
            out.entity(kinds[ch], start)
            i = end + 1
        elif ch == "`":
            fence = "```" if source.startswith("```", i) else "`"
            end = source.find(fence, i + len(fence))
            if end < 0:
                raise missing
            start = out.pos
            out.add(source[i + len(fence) : end])
            out.entity("pre" if fence == "```" else "code", start)
            i = end + len(fence)
        elif ch == "[":
            m = re.compile(r"\[([^\]]*)\]\(([^)]*)\)").match(source, i)
            if m is None:
                raise missing
            start = out.pos
            out.add(m.group(1))
            out.entity("text_link", start, url=m.group(2))
            i = m.end()
        else:
            out.add(ch)
            i += 1
    return out.result()


def format_text(text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[JSON]]:
    """Apply ``entities`` (wins, like Telegram) or ``parse_mode`` to a message text."""
    if isinstance(entities, list):
        return text, [dict(e) for e in entities if isinstance(e, dict)]
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    if mode:
        raise bad_request("unsupported parse_mode")
    return text, []


_BUTTON_ACTIONS = {
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
}
# check_markup's "leave the reply keyboard as it is"
KEEP_KEYBOARD: Any = object()


def message_text(params: JSON) -> tuple[str, list[JSON]]:
    """The text and entities of sendMessage/editMessageText, checked as Telegram does."""
    raw = params.get("text")
    text, entities = format_text(
        raw if isinstance(raw, str) else "", params.get("parse_mode"), params.get("entities")
    )
    if not text.strip():
        raise bad_request("message text is empty")
    if utf16_len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text, entities


def caption_of(params: JSON) -> tuple[str | None, list[JSON]]:
    raw = params.get("caption")
    if not isinstance(raw, str) or raw == "":
        return None, []
    caption, entities = format_text(raw, params.get("parse_mode"), params.get("caption_entities"))
    if utf16_len(caption) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    return caption, entities


def check_markup(markup: Any, *, inline_only: bool = False) -> tuple[JSON | None, Any]:
    """Validate reply_markup; return (inline markup to echo, reply-keyboard change).

    The change is a keyboard dict, None (remove it) or KEEP_KEYBOARD.
    """
    if markup is None:
        return None, KEEP_KEYBOARD
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                _check_inline_button(button)
        return ({"inline_keyboard": rows} if any(rows) else None), KEEP_KEYBOARD
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays'
            )
        return None, copy.deepcopy(markup)
    if markup.get("remove_keyboard"):
        return None, None
    if "force_reply" in markup:
        return None, KEEP_KEYBOARD
    raise bad_request("can't parse reply keyboard markup JSON object")


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request("can't parse inline keyboard button: Text must be a String")
    if not _BUTTON_ACTIONS & button.keys():
        raise bad_request("text buttons are unallowed in the inline keyboard")
    data = button.get("callback_data")
    if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
        raise bad_request("BUTTON_DATA_INVALID")
    url = button.get("url")
    if url is not None and not re.match(r"(https?|tg)://\S+$", str(url)):
        raise bad_request("BUTTON_URL_INVALID")
