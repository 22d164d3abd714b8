"""The web channel in a real browser: headless Chromium in a phone-sized window (360 px wide),
driven by Selenium, against the real application serving the web channel alone (no bot token)
on loopback, over a migrated SQLite database.

One walk through what a school's readers do: sign in with the link from a generated binding
sheet, search by pinyin, reserve from the card, renew, a due-soon reminder arriving while the
page is open and another while it is closed; then the librarian's desk checkout and /stats
charts, a batch to a class corner, and its monitor confirming a copy. A test of its own: hostile
text (a catalogue title, a reader's message) staying text in the browser.

The application runs on its own event loop in a thread (Selenium's calls block); the sweeps and
the sender are run by hand on the injected clock, as the chat tier does."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pypdf import PdfReader
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from bot.app import Shuxiang, build_app
from bot.config import load_settings
from nlp.search import SearchEngine
from services.readers.binding import issue_codes
from services.readers.sheet import web_link, write_binding_sheet
from storage.db import Database
from storage.models import Copy, Loan, Reader
from tests.e2e.test_webchat_browser import chromium, click_drawn, wait_drawn
from tests.factories import lend, make_world
from tests.people import Clock

WAIT = 30.0
T = TypeVar("T")
HOSTILE = '<img src=x onerror="window.__pwned=1">'
RECORDS = {
    "st": ("三体", ["B1", "B2"]),
    "hz": ("活着", ["H1"]),
    "kl": ("骆驼祥子", ["K1"]),
    "dx": ("平凡的世界", ["D1"]),
    "xy": ("西游记", ["X1"]),
    "ho": (f"围城{HOSTILE}", ["E1"]),
}
READERS = {
    "S1": ("李明", "student"),
    "S2": ("王芳", "student"),
    "M1": ("赵班长", "student"),
    "L1": ("周老师", "librarian"),
}
CLASS = "高一(1)班"
WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 13; V2203A) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 "
    "MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN"
)
Message = dict[str, Any]


@dataclass
class Site:
    loop: asyncio.AbstractEventLoop
    app: Shuxiang
    db: Database
    clock: Clock
    url: str

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def sweep(self, job: str) -> int:
        """A scheduled sweep on the injected clock, then the sender's delivery."""
        count = await self.app.jobs.run_once(job, self.app.job_context)
        await self.app.sender.drain()
        return count


async def _start(db_url: str, search: SearchEngine) -> Site:
    db = Database(db_url)
    await make_world(db, records=RECORDS, readers=READERS, monitors={"M1": CLASS})
    async with db.transaction() as s:
        m1 = await s.scalar(select(Reader).where(Reader.card_no == "M1"))
        assert m1 is not None
        m1.class_name, m1.grade = CLASS, "高一"
    policy = load_settings(_env_file=None).loan_policy()
    for card, barcode in (("S2", "B1"), ("S2", "B2"), ("S1", "H1"), ("S1", "K1")):
        await lend(db, card, barcode, policy=policy)
    settings = load_settings(
        _env_file=None, database_url=db_url, web_listen="127.0.0.1:0", quiet_hours=""
    )
    clock = Clock()
    app = build_app(settings, token=None, db=db, search=search, clock=clock)
    assert app.web is not None
    async with db.transaction() as s:
        await app.search.rebuild_index(s)
    app.start_background = lambda: None  # type: ignore[method-assign]  # sweeps run by hand
    await app.dp.emit_startup(
        dispatcher=app.dp, bots=[app.bot], bot=app.bot, **app.dp.workflow_data
    )
    port = await app.web.start(app.dp, host="127.0.0.1", port=0)
    return Site(asyncio.get_running_loop(), app, db, clock, f"http://127.0.0.1:{port}")


async def _stop(site: Site) -> None:
    await site.app.dp.emit_shutdown(dispatcher=site.app.dp, bots=[site.app.bot], app=site.app)
    await site.app.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium, 360 px wide like a small phone, with its own profile."""
    # A phone: 360 CSS px wide, touch, and WeChat's in-app browser's User-Agent.
    phone = {
        "deviceMetrics": {"width": 360, "height": 760, "pixelRatio": 2.0, "touch": True},
        "userAgent": WECHAT_UA,
    }
    with chromium(tmp_path, window="500,800", mobile=phone) as driver:
        yield driver


@pytest.fixture
def site(tmp_path: Path, sqlite_template: Path, search_engine: SearchEngine) -> Iterator[Site]:
    target = tmp_path / "shuxiang.sqlite3"
    shutil.copyfile(sqlite_template, target)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="web-loop", daemon=True)
    thread.start()
    try:
        started = asyncio.run_coroutine_threadsafe(
            _start(f"sqlite+aiosqlite:///{target}", search_engine), loop
        )
        running = started.result(timeout=120)
        try:
            yield running
        finally:
            running.run(_stop(running))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


LOG_JS = """
return [...document.querySelectorAll("#log .msg")].map((m) => ({
  id: Number(m.dataset.id),
  bot: m.classList.contains("out"),
  text: m.querySelector(".body").innerText,
  html: m.querySelector(".body").innerHTML,
  buttons: [...m.querySelectorAll(".buttons button")].map((b) => b.textContent),
  images: [...m.querySelectorAll("img")].map((i) => i.naturalWidth),
}));
"""


def _log(driver: webdriver.Chrome) -> list[Message]:
    messages: list[Message] = driver.execute_script(LOG_JS)
    return messages


def _wait_for(driver: webdriver.Chrome, pick: Callable[[list[Message]], Message | None]) -> Message:
    return wait_drawn(driver, _log, pick)


def _bot_says(driver: webdriver.Chrome, words: str, *, after: int = 0) -> Message:
    return _wait_for(
        driver,
        lambda log: next(
            (m for m in reversed(log) if m["bot"] and m["id"] > after and words in m["text"]),
            None,
        ),
    )


def _say(driver: webdriver.Chrome, text: str) -> int:
    """Type and send; returns the last message id before it (replies come after)."""
    log = _log(driver)
    before = max((m["id"] for m in log), default=0)
    driver.find_element(By.ID, "text").send_keys(text, Keys.ENTER)
    return before


def _press(driver: webdriver.Chrome, message_id: int, label: str) -> None:
    click_drawn(
        driver, f'//div[@data-id="{message_id}"]//button[contains(normalize-space(), "{label}")]'
    )


def _sign_in(driver: webdriver.Chrome, link: str, name: str) -> None:
    driver.get(link)
    code = link.rsplit("=", 1)[1]
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_element(By.ID, "code").get_attribute("value") == code
    )
    driver.find_element(By.ID, "signin-button").click()
    _bot_says(driver, name)  # /start's greeting opens the conversation
    assert "code=" not in driver.current_url  # the code left the address bar


def _sign_out(driver: webdriver.Chrome) -> None:
    driver.find_element(By.ID, "signout").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.ID, "signin").is_displayed())


async def _codes(site: Site, tmp_path: Path) -> dict[str, str]:
    """A binding sheet as the librarian prints it; each reader's web sign-in link."""
    async with site.db.transaction() as s:
        issued = await issue_codes(
            s, policy=site.app.settings.loan_policy(), card_nos=list(READERS)
        )
    sheet = tmp_path / "codes.pdf"
    write_binding_sheet(sheet, issued, web_url=site.url, issued_on=date.today())
    text = "".join(page.extract_text() for page in PdfReader(sheet).pages)
    assert all(c.code in text for c in issued)
    return {c.card_no: web_link(site.url, c.code) for c in issued}


async def _due(site: Site, barcode: str) -> Any:
    async with site.db.transaction(read_only=True) as s:
        return await s.scalar(
            select(Loan.due_at).join(Copy, Copy.id == Loan.copy_id).where(Copy.barcode == barcode)
        )


def test_a_school_day_on_the_web_channel_in_chromium(
    browser: webdriver.Chrome, site: Site, tmp_path: Path
) -> None:
    driver = browser
    links = site.run(_codes(site, tmp_path))

    # A student signs in with the sheet's link: the code is filled in, one tap.
    _sign_in(driver, links["S1"], "李明")
    assert driver.execute_script("return window.innerWidth") == 360
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 360
    assert driver.execute_script("return document.characterSet") == "UTF-8"
    # The reader's reply keyboard and command menu, as /start set them.
    keyboard = driver.execute_script(
        "return [...document.querySelectorAll('#keyboard button')].map((b) => b.textContent)"
    )
    assert any("我的借阅" in label for label in keyboard), keyboard
    driver.find_element(By.ID, "menu").click()
    menu = driver.find_element(By.CSS_SELECTOR, '#commands button[data-command="sessions"]')
    assert menu.is_displayed()
    driver.find_element(By.ID, "menu").click()

    # Pinyin finds 三体 (both copies out): the card offers 预约.
    before = _say(driver, "santi")
    card = _bot_says(driver, "《三体》", after=before)
    assert any("预约" in b for b in card["buttons"]), card
    assert "<b>" in card["html"]  # formatting drawn as such
    _press(driver, card["id"], "预约")
    _bot_says(driver, "已预约")

    # Renew from 我的借阅.
    before = _say(driver, "/loans")
    loans = _wait_for(
        driver,
        lambda log: next(
            (
                m
                for m in log
                if m["bot"] and m["id"] > before and any("续借" in b for b in m["buttons"])
            ),
            None,
        ),
    )
    label = next(b for b in loans["buttons"] if "续借" in b)
    _press(driver, loans["id"], label)
    _bot_says(driver, "已续借")

    # A due-soon reminder while the page is open: it appears without a reload.
    due = site.run(_due(site, "K1"))
    site.clock.set(due - timedelta(days=3, hours=1))
    assert site.run(site.sweep("due-soon")) >= 1
    _bot_says(driver, "还有 3 天到期")

    # Another reminder while the page is closed: there when it opens again.
    driver.get("about:blank")
    site.clock.set(due - timedelta(days=1, hours=1))
    assert site.run(site.sweep("due-soon")) >= 1
    driver.get(site.url)
    _bot_says(driver, "还有 1 天到期")
    _sign_out(driver)

    # The librarian's desk: a checkout, the term's statistics with charts, a corner batch.
    _sign_in(driver, links["L1"], "周老师")
    before = _say(driver, "/checkout S2 D1")
    _bot_says(driver, "已借出", after=before)
    before = _say(driver, "/stats")
    _wait_for(
        driver,
        lambda log: next(
            (m for m in log if m["id"] > before and m["images"] and all(m["images"])), None
        ),
    )
    before = _say(driver, f"/batch {CLASS}")
    _bot_says(driver, "待发出的一批", after=before)
    before = _say(driver, "X1")
    draft = _bot_says(driver, "已加入 1 册", after=before)
    _press(driver, draft["id"], "发出")
    _bot_says(driver, "已发出")
    site.run(site.app.sender.drain())
    _sign_out(driver)

    # The class monitor confirms the copy that arrived.
    _sign_in(driver, links["M1"], "赵班长")
    before = _say(driver, "/corner")
    batch = _bot_says(driver, "送来的新书", after=before)
    _press(driver, batch["id"], "1 收到")
    _bot_says(driver, "全部确认完毕")


def test_hostile_titles_and_messages_stay_text_in_chromium(
    browser: webdriver.Chrome, site: Site, tmp_path: Path
) -> None:
    """A catalogue title and a reader's own message holding markup are shown as text by the
    browser itself: no element made of them, no script run."""
    driver = browser
    links = site.run(_codes(site, tmp_path))
    _sign_in(driver, links["S2"], "王芳")
    before = _say(driver, "围城")
    found = _bot_says(driver, "围城", after=before)
    assert "<img" not in found["html"] and "onerror" in found["text"]
    before = _say(driver, HOSTILE)
    mine = _wait_for(
        driver, lambda log: next((m for m in log if not m["bot"] and m["id"] > before), None)
    )
    assert mine["text"] == HOSTILE and "<img" not in mine["html"]
    assert driver.execute_script("return document.querySelectorAll('#log img').length") == 0
    assert driver.execute_script("return window.__pwned") is None
