"""Telegram client emulation for the Mini App in headless chromium.

A Telegram mobile client opens the Mini App with its launch parameters in the URL hash and
injects `window.TelegramWebviewProxy`, through which telegram-web-app.js posts events
(`web_app_setup_main_button`, `web_app_setup_closing_behavior`, ...). The client answers with
`Telegram.WebView.receiveEvent(...)` (a press of the MainButton, say). This module does the
same: `launch_url` builds the hash, `INIT_SCRIPT` records the events, `Client` reads them and
presses buttons. Shared by tests/browser and bench/miniapp.py.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import quote

from app.telegram.initdata import sign_init_data

BOT_TOKEN = "7000001:browser-tests-bot-token"
CASHIER_TELEGRAM_ID = 700001
STRANGER_TELEGRAM_ID = 700999

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

THEMES = {
    "light": {"bg_color": "#ffffff", "text_color": "#000000", "hint_color": "#999999",
              "link_color": "#2481cc", "button_color": "#2481cc",
              "button_text_color": "#ffffff", "secondary_bg_color": "#efeff3"},
    "dark": {"bg_color": "#212121", "text_color": "#ffffff", "hint_color": "#aaaaaa",
             "link_color": "#8774e1", "button_color": "#8774e1",
             "button_text_color": "#ffffff", "secondary_bg_color": "#181818"},
}

# Before any script of the page: what a Telegram mobile client injects, recording each event.
INIT_SCRIPT = """
window.__tgEvents = [];
window.TelegramWebviewProxy = {
  postEvent(type, data) { window.__tgEvents.push([type, data]); }
};
window.__tgLast = function (type) {
  for (let i = window.__tgEvents.length - 1; i >= 0; i--) {
    const [t, data] = window.__tgEvents[i];
    if (t === type) { return data ? JSON.parse(data) : {}; }
  }
  return null;
};
"""


def launch(playwright):
    """Debian's chromium, headless; never a downloaded browser."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=CHROMIUM_ARGS)


def init_data(telegram_id: int = CASHIER_TELEGRAM_ID, *, bot_token: str = BOT_TOKEN,
              first_name: str = "Анна", auth_date: float | None = None) -> str:
    """initData as Telegram signs it for this user (auth_date: now unless given)."""
    user = {"id": telegram_id, "first_name": first_name, "last_name": "Кассирова",
            "username": f"user{telegram_id}", "language_code": "ru",
            "allows_write_to_pm": True}
    fields = {
        "query_id": f"AAH{telegram_id}test",
        "user": json.dumps(user, ensure_ascii=False, separators=(",", ":")),
        "auth_date": str(int(auth_date if auth_date is not None else time.time())),
    }
    return sign_init_data(fields, bot_token=bot_token)


def launch_url(web_url: str, telegram_id: int = CASHIER_TELEGRAM_ID, *, theme: str = "light",
               bot_token: str = BOT_TOKEN, auth_date: float | None = None,
               path: str = "/miniapp/") -> str:
    """`<web>/miniapp/#tgWebAppData=...` (or another Mini App's `path`, the shop's
    "/shop/"): the URL a Telegram Android client opens."""
    raw = init_data(telegram_id, bot_token=bot_token, auth_date=auth_date)
    theme_json = json.dumps(THEMES[theme], separators=(",", ":"))
    return (f"{web_url}{path}#tgWebAppData={quote(raw, safe='')}"
            f"&tgWebAppVersion=8.0&tgWebAppPlatform=android"
            f"&tgWebAppThemeParams={quote(theme_json, safe='')}")


#: What chromium writes to the console when a page breaks its Content-Security-Policy
#: ("Applying inline style violates the following Content Security Policy directive ...").
CSP_MARKER = "Content Security Policy"
#: Every violation seen by a watched context since the last `take_csp_violations()`.
_csp_violations: list[str] = []


def watch_csp(context):
    """Record every CSP violation any page of `context` reports on its console."""

    def seen(message) -> None:
        if CSP_MARKER in message.text:
            where = (message.location or {}).get("url", "?")
            _csp_violations.append(f"{where}: {message.text}")

    context.on("console", seen)
    return context


def take_csp_violations() -> list[str]:
    """The violations recorded so far (and forget them)."""
    taken = list(_csp_violations)
    _csp_violations.clear()
    return taken


def new_context(browser, theme: str = "light", *, telegram: bool = True):
    """A fresh browser context (own storage) with the Telegram client's proxy injected and
    its CSP violations watched."""
    context = browser.new_context(
        viewport={"width": 390, "height": 800}, device_scale_factor=1,
        color_scheme="dark" if theme == "dark" else "light", locale="ru-RU",
    )
    if telegram:
        context.add_init_script(INIT_SCRIPT)
    return watch_csp(context)


def artifacts_dir() -> Path:
    path = Path(os.environ.get("KASSA_ARTIFACTS")
                or Path(__file__).resolve().parent / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Client:
    """One Mini App page as a Telegram client sees it."""

    def __init__(self, page, theme: str = "light"):
        self.page = page
        self.theme = theme

    # -- what the page told the client ---------------------------------------------------

    def events(self, event_type: str | None = None) -> list:
        """Every event posted (`[type, data]`), or the parsed data of one type's events."""
        events = self.page.evaluate("window.__tgEvents")
        if event_type is None:
            return events
        return [json.loads(data) if data else {} for t, data in events if t == event_type]

    def last(self, event_type: str) -> dict | None:
        return self.page.evaluate("(t) => window.__tgLast(t)", event_type)

    def main_button(self) -> dict:
        """The MainButton's state as the client shows it ({"is_visible": False} at first)."""
        return self.last("web_app_setup_main_button") or {"is_visible": False}

    def closing_confirmation(self) -> bool:
        state = self.last("web_app_setup_closing_behavior")
        return bool(state and state.get("need_confirmation"))

    def haptics(self) -> list[dict]:
        return self.events("web_app_trigger_haptic_feedback")

    # -- waiting -------------------------------------------------------------------------

    def wait_screen(self, name: str, timeout: float = 5.0):
        """The `#screen` section once it is `data-screen=name`."""
        locator = self.page.locator(f'#screen [data-screen="{name}"]')
        locator.wait_for(state="visible", timeout=timeout * 1000)
        return locator

    def wait_main_button(self, text: str | None = None, *, visible: bool = True,
                         prefix: str = "", timeout: float = 5.0) -> dict:
        """Wait until the MainButton is shown with `text`, or a text that starts with
        `prefix` (or hidden: visible=False)."""
        self.page.wait_for_function(
            """([text, prefix, visible]) => {
                 const b = window.__tgLast('web_app_setup_main_button') || {is_visible: false};
                 if (!visible) { return !b.is_visible; }
                 return b.is_visible && (text === null ? b.text.startsWith(prefix)
                                                       : b.text === text);
               }""",
            arg=[text, prefix, visible], timeout=timeout * 1000)
        return self.main_button()

    def wait_back_button(self, visible: bool = True, timeout: float = 5.0) -> None:
        self.page.wait_for_function(
            """(on) => {
                 const s = window.__tgLast('web_app_setup_back_button');
                 return !!(s && s.is_visible) === on;
               }""", arg=visible, timeout=timeout * 1000)

    def wait_closing_confirmation(self, enabled: bool, timeout: float = 5.0) -> None:
        self.page.wait_for_function(
            """(on) => {
                 const s = window.__tgLast('web_app_setup_closing_behavior');
                 return !!(s && s.need_confirmation) === on;
               }""", arg=enabled, timeout=timeout * 1000)

    # -- what the user does --------------------------------------------------------------

    def press_main_button(self) -> None:
        self.page.evaluate("Telegram.WebView.receiveEvent('main_button_pressed')")

    def press_back_button(self) -> None:
        self.page.evaluate("Telegram.WebView.receiveEvent('back_button_pressed')")

    # -- artifacts -----------------------------------------------------------------------

    def screenshot(self, screen: str) -> Path:
        path = artifacts_dir() / f"{screen}-{self.theme}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def qr_png(self) -> bytes:
        """The QR code as it is on the screen, for a phone camera (tests.helpers.decode_qr)."""
        return self.page.locator('[data-testid="qr"]').screenshot()
