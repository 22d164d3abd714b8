"""What a message is, before it is searched: small talk, a question about using Shuxiang, or a
search (``None``). Also the words of a named list (四大名著, 中考必读) in any order.

Small talk is a message made only of small-talk words (你好, 谢谢啦, thanks so much, 好的再见 …)
and fillers, or only of emoji. A question about a feature needs a feature word (续借, 预约,
renew …) *and* something that makes it a question or a request to the bot (怎么, 吗, 如何, how,
"?", 我想 …), unless the message is nothing but feature words. Anything in 《》, any longer text,
and any feature word next to other content without a question marker is a search: a title such as
《如何阅读一本书》 or 《你好，旧时光》 is never taken for a question (tests/unit/test_intent.py
runs every title of the shared catalogue through ``classify``).
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from functools import cache
from itertools import pairwise, permutations

from nlp.normalize import normalize

__all__ = ["Intent", "classify", "list_name_key", "list_query_keys"]


class Intent(StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    BYE = "bye"
    OK = "ok"  # 好的, 收到, 👍: acknowledged
    HELP = "help"  # how to use Shuxiang in general
    SEARCH = "search"
    BORROW = "borrow"
    LIMITS = "limits"
    RENEW = "renew"
    RESERVE = "reserve"
    RETURN = "return"
    OVERDUE = "overdue"
    BIND = "bind"
    LOANS = "loans"
    SUGGEST = "suggest"
    REMINDERS = "reminders"
    RECOMMEND = "recommend"

    @property
    def small_talk(self) -> bool:
        return self in _SMALL_TALK


_SMALL_TALK = frozenset({Intent.GREETING, Intent.THANKS, Intent.BYE, Intent.OK})
MAX_CHARS = 40  # longer messages are searches (or anything but small talk and a question)

# fmt: off
_TALK_WORDS: dict[Intent, tuple[str, ...]] = {
    Intent.THANKS: (
        "谢谢", "谢了", "谢啦", "多谢", "感谢", "非常感谢", "太感谢了", "感恩", "辛苦了", "辛苦",
        "麻烦你了", "谢", "thanks", "thank", "thankyou", "thx", "ty", "tks", "3q", "appreciateit",
    ),
    Intent.BYE: (
        "再见", "拜拜", "拜", "回见", "晚安", "下次见", "明天见", "回头见", "先走了", "走了",
        "bye", "byebye", "goodbye", "goodnight", "seeyou", "seeya", "cya", "later",
    ),
    Intent.GREETING: (
        "你好", "您好", "你们好", "大家好", "嗨", "哈喽", "哈罗", "哈啰", "嘿", "喂", "早上好",
        "早安", "早", "上午好", "中午好", "下午好", "晚上好", "在吗", "在不在", "在么", "有人吗",
        "hello", "hi", "hey", "hiya", "yo", "morning", "goodmorning", "goodafternoon",
        "goodevening", "greetings", "howareyou", "你好吗", "最近好吗",
    ),
    Intent.OK: (
        "好的", "好滴", "好哒", "好嘞", "好吧", "好", "嗯", "哦", "噢", "喔", "知道了", "明白了",
        "明白", "收到", "了解", "懂了", "ok", "okay", "okk", "可以", "棒", "真棒", "太棒了",
        "厉害", "哈哈", "嘻嘻", "呵呵", "666", "nice", "great", "cool", "good", "lol", "yes",
        "yeah", "yep", "sure", "gotit", "isee", "wow", "牛", "赞", "点赞", "是的", "没事",
        "没关系", "不用了", "算了",
    ),
}
# Words that go with small talk but say nothing alone.
_FILLERS = (
    "呀", "啊", "啦", "哦", "喔", "哈", "嘿", "嗯", "呢", "了", "吧", "哒", "么", "嘛", "哟",
    "噢", "老师", "书香", "同学", "你", "您", "大家", "机器人", "我", "很", "非常", "真", "太",
    "的", "so", "much", "very", "a", "lot", "again", "there", "dear", "all", "guys", "bot",
    "shuxiang", "friend", "you", "u", "for", "your", "help", "the", "and", "oh", "ah", "hmm",
    "um", "everyone", "teacher", "哈哈哈", "啦啦",
)

# Feature words, compact Chinese (found anywhere) and English (whole words).
_TOPICS: dict[Intent, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Intent.RENEW: (
        (
            "续借", "续期", "续一下", "续一续", "延长借期", "延期", "续书", "再借一段",
        ),
        (
            "renew", "renewal", "renewing", "renewed", "extend", "extension",
        ),
    ),
    Intent.RESERVE: (
        (
            "预约", "预订", "预定", "排队借", "约书", "占书",
        ),
        (
            "reserve", "reservation", "reserving", "reserved", "hold", "holds",
        ),
    ),
    Intent.BIND: (
        (
            "绑定", "解绑", "解除绑定", "借书证", "借阅证", "证号", "登录", "登陆", "注册",
            "账号", "帐号", "激活",
        ),
        (
            "bind", "binding", "unbind", "link", "register", "login", "signin", "signup", "card",
            "account",
        ),
    ),
    Intent.OVERDUE: (
        (
            "逾期", "忘记还", "丢书", "书丢", "超期", "过期", "超时", "罚款", "罚钱", "罚金",
            "赔钱", "赔偿", "弄丢", "丢了", "丢失", "弄坏", "损坏", "晚还", "迟还", "忘了还",
            "没按时还", "到期",
        ),
        (
            "overdue", "lose", "fine", "fines", "penalty", "lost", "damaged", "due",
        ),
    ),
    Intent.RETURN: (
        (
            "还书", "归还", "怎么还", "如何还", "怎样还", "在哪还", "哪里还", "哪儿还", "还到哪",
            "还给谁", "书还了", "还回去",
        ),
        (
            "return", "returning", "giveback", "bringback",
        ),
    ),
    Intent.LOANS: (
        (
            "我的借阅", "借了什么", "借了哪些", "借了哪几本", "借了几本", "借阅历史", "借阅记录",
            "借书记录", "借过", "还过",
        ),
        (
            "myloans", "mybooks", "loanhistory", "borrowinghistory", "readinghistory", "loans",
        ),
    ),
    Intent.SUGGEST: (
        (
            "荐购", "买书", "推荐购买", "买这本", "进这本", "没有这本", "买新书", "建议买",
        ),
        (
            "suggest", "suggestion", "purchase", "buy",
        ),
    ),
    Intent.REMINDERS: (
        (
            "提醒", "通知", "订阅", "退订", "免打扰", "消息太多", "别发了", "推送",
        ),
        (
            "remind", "reminder", "reminders", "notification", "notifications", "notify",
            "subscribe", "unsubscribe", "settings",
        ),
    ),
    Intent.RECOMMEND: (
        (
            "推荐", "好书", "看什么书", "读什么书", "看什么", "读什么", "书单", "同学在读",
            "在读",
        ),
        (
            "recommend", "recommendation", "recommendations", "whattoread", "whatshouldiread",
            "goodbooks", "goodbook",
        ),
    ),
    Intent.SEARCH: (
        (
            "查书", "搜书名", "查书名", "找书", "搜书", "搜索", "检索", "查询", "找一本书",
            "查一本书",
        ),
        (
            "search", "find", "lookup", "look",
        ),
    ),
    Intent.BORROW: (
        (
            "借书", "借阅", "怎么借", "如何借", "怎样借", "能借", "可以借", "在哪借", "哪里借",
            "借一本", "借本书", "借几本", "借多久",
        ),
        (
            "borrow", "keep", "borrowing", "checkout", "lend", "loan",
        ),
    ),
    Intent.HELP: (
        (
            "帮助", "你会干嘛", "你能干嘛", "能干什么", "会干什么", "怎么用", "如何用", "怎样用",
            "如何使用", "怎么使用", "使用说明", "说明书", "功能", "你能做什么", "你会什么",
            "你是谁", "你是干什么的", "有什么用", "菜单", "教程", "指南", "用法", "命令",
        ),
        (
            "help", "howtouse", "howdoesthiswork", "whatcanyoudo", "whoareyou", "commands",
            "menu", "guide", "manual",
        ),
    ),
}
# How much and how long: a borrowing question about the rules.
_LIMIT_WORDS = (
    (
        "几本", "多少本", "最多", "多久", "多长时间", "几天", "借期", "期限", "上限", "多少天",
    ),
    (
        "howmany", "howlong", "limit", "maximum", "max", "days",
    ),
)
# fmt: on
# What makes a message a question or a request to the bot.
_QUESTION_CN = re.compile(
    r"怎么|怎样|如何|咋|能不能|能否|可不可以|可以吗|行不行|是否|有没有|要不要|会不会|"
    r"什么|啥|哪|几|多少|多久|为什么|为啥|请问|规则|流程|步骤|方法|说明|吗$|呢$|么$|"
    r"我要|我想|想要|想让|希望|不想|不要|帮我|帮忙|麻烦|我能|我可以|我该|教我|告诉我|求助|不会|不知道|不懂|"
    r"多长时间|几天"
)
_QUESTION_EN_FIRST = frozenset(
    [
        "how",
        "what",
        "whats",
        "where",
        "when",
        "why",
        "can",
        "could",
        "may",
        "do",
        "does",
        "did",
        "is",
        "are",
        "will",
        "should",
        "which",
        "i",
        "im",
        "please",
        "help",
        "tell",
        "want",
        "need",
        "wanna",
    ]
)
# Neutral words a question is made of: what remains after them is the question's content.
_GLUE_CN = re.compile(
    r"请问|怎么|怎样|如何|咋|能不能|能否|可不可以|可以|行不行|是否|有没有|要不要|会不会|什么|啥|"
    r"哪里|哪儿|在哪|哪|几|多少|多久|为什么|为啥|规则|流程|步骤|方法|说明|我要|我想|想要|帮我|"
    r"帮忙|麻烦|我能|我该|教我|告诉我|不会|不知道|不懂|不想|不要|收到|关掉|关闭|取消|多长时间|几天|"
    r"一下|意思|时间|让|好|是|的|了|吗|呢|么|吧|啊|呀|"
    r"我|你|您|这|那|个|本|书|一|要|想|能|会|去|和|还是|在|用|做|办|有|老师|书香|图书馆|同学"
)
# The question words, and the small words around what is asked.
_GLUE_EN = _QUESTION_EN_FIRST | frozenset(
    [
        "me",
        "my",
        "a",
        "an",
        "the",
        "to",
        "of",
        "for",
        "in",
        "on",
        "at",
        "it",
        "this",
        "that",
        "book",
        "books",
        "library",
        "you",
        "your",
        "get",
        "much",
        "many",
        "long",
        "about",
        "with",
        "if",
        "there",
        "some",
        "any",
    ]
)
# Features a title may well name (社会学有什么用, 看照片看什么): only when nothing else is said.
_WEAK = frozenset({Intent.HELP, Intent.RECOMMEND, Intent.SEARCH})
_ENGLISH_CONTEXT = frozenset(["i", "my", "me", "im", "book", "books", "library", "card"])
_ONLY_SYMBOLS = re.compile(r"[\W_]+")


def classify(text: str) -> Intent | None:
    """The intent of a chat message; ``None``: search it."""
    raw = unicodedata.normalize("NFKC", text or "").strip()
    if not raw or len(raw) > MAX_CHARS or "《" in raw or "》" in raw:
        return None
    norm = normalize(raw)
    if not norm:  # emoji, punctuation: a question mark asks for help, a smile is small talk
        return Intent.HELP if "?" in raw else Intent.OK if _ONLY_SYMBOLS.fullmatch(raw) else None
    words = norm.split()
    flat = "".join(words)
    talk = _small_talk(flat)
    if talk is not None:
        return talk
    return _question(raw, words, flat)


def _small_talk(flat: str) -> Intent | None:
    """The message is only small-talk words and fillers (with at least one small-talk word)."""
    found = _cover(flat)
    if not found:
        return None
    for intent in (Intent.THANKS, Intent.BYE, Intent.GREETING, Intent.OK):
        if intent in found:
            return intent
    return None


def _cover(flat: str) -> set[Intent]:
    """Intents whose words, with fillers, make up the whole text (empty set: they do not)."""
    vocabulary = _talk_vocabulary()
    # best[i]: intents found in a cover of flat[:i] (None: no cover reaches i)
    best: list[frozenset[Intent] | None] = [None] * (len(flat) + 1)
    best[0] = frozenset()
    for i in range(len(flat)):
        here = best[i]
        if here is None:
            continue
        for word, intent in vocabulary:
            if flat.startswith(word, i):
                j = i + len(word)
                found = here | {intent} if intent is not None else here
                if best[j] is None or len(found) > len(best[j] or ()):
                    best[j] = found
    return set(best[-1] or ())


@cache
def _talk_vocabulary() -> tuple[tuple[str, Intent | None], ...]:
    words: list[tuple[str, Intent | None]] = [
        (word, intent) for intent, group in _TALK_WORDS.items() for word in group
    ]
    words += [(word, None) for word in _FILLERS]
    return tuple(sorted(words, key=lambda pair: -len(pair[0])))


def _question(raw: str, words: list[str], flat: str) -> Intent | None:
    """A feature word plus a question marker (or nothing but feature words)."""
    topics = _topics_cn(flat)
    topics += [t for t in _topics_en(words) if t not in topics]
    if not topics:
        return None
    asked = "?" in raw or words[0] in _QUESTION_EN_FIRST or bool(_QUESTION_CN.search(flat))
    residue = _residue(words, topics)
    if residue and (not asked or all(t in _WEAK for t in topics)):
        return None  # 预约幸福, 社会学有什么用: a title with a feature word in it
    # What Is History?, The Return: English titles ask questions too; the reader's own
    # questions say I, my, book or library (or are one word: renew, help).
    english = all(w.isascii() for w in words) and not _ENGLISH_CONTEXT.intersection(words)
    if english and (residue or not (asked or len(words) == 1)):
        return None
    return _pick(topics, flat, words)


def _topics_cn(flat: str) -> list[Intent]:
    return [intent for intent, (cn, _) in _TOPICS.items() if any(w in flat for w in cn)]


def _topics_en(words: list[str]) -> list[Intent]:
    joined = "".join(words)
    pairs = {a + b for a, b in pairwise(words)}
    found = []
    for intent, (_, en) in _TOPICS.items():
        if any(w in words or w in pairs or (len(w) > 8 and w in joined) for w in en):
            found.append(intent)
    return found


def _residue(words: list[str], topics: list[Intent]) -> str:
    """What is left once feature words and question glue are taken out."""
    joined = "".join(words)
    phrases = [w for t in topics for w in _TOPICS[t][1] if w in joined]
    rest = "".join(
        w for w in words if w not in _GLUE_EN and not any(w in phrase for phrase in phrases)
    )
    for word in sorted((w for t in topics for w in _TOPICS[t][0]), key=len, reverse=True):
        rest = rest.replace(word, "")
    return _GLUE_CN.sub("", rest)


def _pick(topics: list[Intent], flat: str, words: list[str]) -> Intent:
    """The most specific feature asked about: how many/how long makes borrowing 借阅规则;
    a specific feature wins over borrowing in general, borrowing over general help."""
    cn, en = _LIMIT_WORDS
    limits = any(w in flat for w in cn) or any(w in flat for w in en)
    specific = [t for t in topics if t not in (Intent.BORROW, Intent.HELP, Intent.SEARCH)]
    if specific:
        if Intent.RECOMMEND in specific and len(specific) > 1:
            specific.remove(Intent.RECOMMEND)
        return specific[0]
    if limits and Intent.BORROW in topics:
        return Intent.LIMITS
    if Intent.BORROW in topics:
        return Intent.BORROW
    return topics[0]


# --- named lists --------------------------------------------------------------------------------

# Said around a list's name: 四大名著书单, 中考必读书目有哪些, 中国四大名著.
_LIST_WRAP_HEAD = re.compile(r"^(?:请问|推荐一下|推荐|我想看|我想找|有没有|中国|我国)+")
_LIST_WRAP_TAIL = re.compile(
    r"(?:书单|书目|列表|清单|的书|有哪些书|有哪些|有什么书|有什么|是哪些|是什么|都有啥|包括哪些|"
    r"吗|呢|推荐)+$"
)
_LIST_WORD = re.compile(r"必读|名著|推荐|[\u4e00-\u9fff]{2}|[a-z0-9]+|.")


def list_name_key(name: str) -> str:
    """A list name's compact form without wrappers: 中考必读书目 → 中考必读."""
    flat = normalize(name).replace(" ", "")
    stripped = _LIST_WRAP_TAIL.sub("", _LIST_WRAP_HEAD.sub("", flat))
    return stripped or flat


def list_query_keys(name: str) -> frozenset[str]:
    """Every order of the name's words (两字词 for Chinese): 四大名著 also as 名著四大."""
    key = list_name_key(name)
    words = _LIST_WORD.findall(key)
    if len(words) > 5:
        return frozenset({key})
    return frozenset("".join(order) for order in permutations(words))
