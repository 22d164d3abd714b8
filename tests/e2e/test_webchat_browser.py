"""The sandbox's web chat page in a real browser: headless Chromium (Debian's chromium and
chromium-driver, which `make test` installs) driven by Selenium, against the real emulator and the
real bot on loopback with the demo data.

The sandbox runs on its own event loop in a thread: Selenium's calls block, and the page's requests
must be answered while they do. Everything is private to the test (random ports, a temporary
database, a Chromium profile under tmp_path), so it runs beside others under pytest-xdist.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from bot.config import Settings
from sandbox.demo import SELF_CHECK_QUERY, Sandbox, start_sandbox
from tests.conftest import resource_missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Every wait is bounded; generous because the machine may be busy (Chromium, jieba, the bot).
WAIT = 30.0
# One message of the page's log, as LOG_JS reads it.
Message = dict[str, Any]


def _require_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if not missing:
        return
    # Like PostgreSQL (tests/conftest.py): CI must run this test, a laptop may skip it.
    resource_missing(
        f"no {', '.join(missing)}: apt-get install chromium chromium-driver (make test does)"
    )


@pytest.fixture
def sandbox(demo_settings: Settings) -> Iterator[Sandbox]:
    """`shuxiang demo`'s sandbox on a random port, its loop running in a thread of its own."""
    settings = demo_settings
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sandbox-loop", daemon=True)
    thread.start()
    try:
        started = asyncio.run_coroutine_threadsafe(start_sandbox(settings, port=0), loop)
        box, _ = started.result(timeout=120)
        try:
            yield box
        finally:
            asyncio.run_coroutine_threadsafe(box.stop(), loop).result(timeout=60)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with its own profile; console messages kept for get_log('browser')."""
    with chromium(tmp_path, window="900,1000", console=True) as driver:
        yield driver


@contextlib.contextmanager
def chromium(
    tmp_path: Path, *, window: str, console: bool = False, mobile: dict[str, Any] | None = None
) -> Iterator[webdriver.Chrome]:
    """Debian's headless Chromium with a profile under ``tmp_path``; ``mobile``: Chrome's
    mobileEmulation (a phone's screen and User-Agent)."""
    _require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in containers; the page is our own
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--lang=zh-CN",
        f"--window-size={window}",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    if console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if mobile is not None:
        options.add_experimental_option("mobileEmulation", mobile)
    # An explicit driver path: Selenium Manager is never asked (it would try to download one).
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log")
    )
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


# Draws two different characters: with no CJK font both come out as the same empty box (tofu).
DISTINCT_GLYPHS_JS = """
const draw = (ch) => {
  const c = document.createElement("canvas");
  c.width = c.height = 40;
  const g = c.getContext("2d");
  g.font = getComputedStyle(document.body).font;
  g.fillText(ch, 4, 30);
  return c.toDataURL();
};
return draw(arguments[0]) !== draw(arguments[1]);
"""


# The log as the page shows it, read in one go: the page redraws it on every transcript change,
# so element references held across two calls can go stale.
LOG_JS = """
return [...document.querySelectorAll("#log .msg")].map((m) => ({
  mid: Number(m.dataset.mid),
  bot: m.classList.contains("bot"),
  text: [...m.querySelectorAll(".text")].map((t) => t.innerText).join("\\n"),
  meta: m.querySelector(".meta").textContent,
  buttons: [...m.querySelectorAll(".kb button[data-cb]")].map((b) => b.textContent),
}));
"""


def _log(driver: webdriver.Chrome) -> list[Message]:
    messages: list[Message] = driver.execute_script(LOG_JS)
    return messages


def wait_drawn(
    driver: webdriver.Chrome,
    log: Callable[[webdriver.Chrome], list[Message]],
    pick: Callable[[list[Message]], Message | None],
) -> Message:
    """The message ``pick`` finds in the page's log as ``log`` reads it, once it is drawn
    (bounded wait). For both chat pages: this one and the web channel's."""

    def probe(d: webdriver.Chrome) -> Message | Literal[False]:
        return pick(log(d)) or False

    return WebDriverWait(driver, WAIT).until(probe)


def click_drawn(driver: webdriver.Chrome, xpath: str) -> None:
    """Click the element as drawn now (a redraw between finding and clicking makes it stale)."""

    def click(d: webdriver.Chrome) -> bool:
        d.find_element(By.XPATH, xpath).click()
        return True

    WebDriverWait(driver, WAIT, ignored_exceptions=[StaleElementReferenceException]).until(click)


def _wait_for(driver: webdriver.Chrome, pick: Callable[[list[Message]], Message | None]) -> Message:
    return wait_drawn(driver, _log, pick)


def _press(driver: webdriver.Chrome, mid: int, label: str) -> None:
    click_drawn(
        driver, f'//div[@data-mid="{mid}"]//button[@data-cb and normalize-space()="{label}"]'
    )


def _changed(element: WebElement, before: str) -> Callable[[webdriver.Chrome], bool]:
    return lambda driver: element.text != before


# The browser first: without Chromium the test skips before starting a sandbox for nothing.
def test_webchat_page_searches_and_presses_buttons_in_chromium(
    browser: webdriver.Chrome, sandbox: Sandbox
) -> None:
    driver = browser
    wait = WebDriverWait(driver, WAIT)
    driver.get(sandbox.url)
    student = next(p for p in sandbox.personas if p.role == "student")
    teacher = next(p for p in sandbox.personas if p.role == "teacher")

    # Chinese arrives intact: UTF-8, the template's and the persona's names unmangled, real glyphs.
    assert driver.execute_script("return document.characterSet") == "UTF-8"
    assert driver.title.endswith("· 测试聊天")
    assert "测试沙盒" in driver.find_element(By.CSS_SELECTOR, "header h1").text
    assert driver.execute_script(DISTINCT_GLYPHS_JS, "书", "香")

    # Pick the student the way a person does: the selector (switching away and back on the way).
    persona = Select(driver.find_element(By.ID, "persona"))
    persona.select_by_value(str(teacher.user_id))
    persona.select_by_value(str(student.user_id))
    assert persona.first_selected_option.text == student.as_webchat()["label"]
    # The student's own transcript: the due-soon reminder the sandbox pushed at start.
    _wait_for(driver, lambda log: next((m for m in log if "还有 3 天到期" in m["text"]), None))

    # Type a search and press Enter; the bot's list of hits is drawn with its number buttons.
    box = driver.find_element(By.ID, "text")
    box.send_keys(SELF_CHECK_QUERY, Keys.ENTER)

    def reply_to_query(log: list[Message]) -> Message | None:
        asked = [i for i, m in enumerate(log) if not m["bot"] and m["text"] == SELF_CHECK_QUERY]
        after = [m for m in log[asked[-1] + 1 :] if m["bot"]] if asked else []
        return after[0] if after and after[0]["buttons"] else None

    hits = _wait_for(driver, reply_to_query)
    assert box.get_attribute("value") == ""  # sent, and the box cleared for the next one
    assert "共找到" in hits["text"] and "1. 《三体》 刘慈欣" in hits["text"], hits
    assert hits["buttons"][0] == "1", hits

    # The first hit's button: the book's card arrives as a new message below.
    _press(driver, hits["mid"], "1")
    card = _wait_for(
        driver,
        lambda log: next(
            (m for m in log if m["bot"] and m["mid"] > hits["mid"] and "馆藏" in m["text"]), None
        ),
    )
    assert card["text"].startswith("📖 《三体》"), card
    assert "展开全文 ▾" in card["buttons"], card

    # Unfolding the summary edits the card in place: same message, longer text, marked edited.
    _press(driver, card["mid"], "展开全文 ▾")
    unfolded = _wait_for(
        driver,
        lambda log: next(
            (m for m in log if m["mid"] == card["mid"] and "已编辑" in m["meta"]), None
        ),
    )
    assert len(unfolded["text"]) > len(card["text"]) and "展开全文 ▾" not in unfolded["buttons"]
    # The demo's clock control: three days forward, a press at a time, and the loan's last-day
    # reminder arrives in the student's chat; the demo's time beside the buttons moves along.
    shown = driver.find_element(By.CSS_SELECTOR, "#clock .now")
    wait.until(lambda d: shown.text.strip() != "")
    for _ in range(3):
        before = shown.text
        driver.find_element(By.CSS_SELECTOR, '#clock button[data-step="day"]').click()
        wait.until(_changed(shown, before))
        assert "已快进到 " + shown.text in driver.find_element(By.ID, "toast").text
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#clock button:disabled"))
    # Three days ahead (less the moments the sweeps took: the demo's time waits for them).
    assert timedelta(days=3, minutes=-1) < sandbox.clock.clock.offset <= timedelta(days=3)
    _wait_for(driver, lambda log: next((m for m in log if "还有 1 天到期" in m["text"]), None))

    # No pending spinner left and nothing garbled anywhere on the page.
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".kb button.busy"))
    assert "\ufffd" not in driver.find_element(By.TAG_NAME, "body").text

    console = driver.get_log("browser")  # type: ignore[no-untyped-call]  # untyped in Selenium
    errors = [e for e in console if e["level"] == "SEVERE"]
    assert errors == []
