"""The admin end to end: Playwright drives Debian's Chromium against live_server.

Run with the rest of the suite. Where ``CI`` is set, a browser that cannot
start fails these tests; elsewhere they are skipped only when Chromium or
Playwright is not installed. ``KEYVAL_SCREENSHOTS=docs/_static`` saves the
screenshots the documentation shows (otherwise they go to a temporary
directory).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User

from keyval_backend.cache import KeyValCache
from keyval_backend.identity import encode_name, name_hash
from keyval_backend.models import Entry

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "correct horse"
# Milliseconds any one step may take: a slow CI machine, not a hung page.
STEP_TIMEOUT = 15_000


def unavailable(reason: str) -> NoReturn:
    """Fail in CI, where the browser tests are required; skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def async_unsafe_allowed() -> Iterator[None]:
    """Playwright's sync API keeps an event loop running in this thread, which
    Django takes for async code and refuses the ORM to; the ORM calls here are
    plain synchronous test code, around (never inside) the browser's work."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser(async_unsafe_allowed: None) -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000
        )
    except Exception as exc:
        playwright.stop()
        pytest.fail(f"Chromium ({CHROMIUM}) did not start: {exc}", pytrace=False)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    target = os.environ.get("KEYVAL_SCREENSHOTS")
    return Path(target) if target else tmp_path


@pytest.fixture
def seeded(kv: KeyValCache, make_cache: Callable[..., KeyValCache], settings: Any) -> KeyValCache:
    """A few stores with the kinds of values an operator meets: JSON, native
    integers, a pickled set (pickled whatever the suite's serializer: a json
    cache shows it unverified), one expiring soon, expired ones, a tampered one."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if not django_settings.STATIC_URL:
        pytest.fail(
            "live_server cannot serve the admin: tests/settings.py needs "
            "'django.contrib.staticfiles' in INSTALLED_APPS and a STATIC_URL",
            pytrace=False,
        )
    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    shop, config, default = kv.store("shop"), kv.store("settings"), kv
    shop.set("cart:42", {"items": [{"sku": "A-1", "qty": 2}], "total": 19.9})
    shop.set("100%_off", {"code": "SPRING", "percent": 100})
    shop.set("1000_off", {"code": "BIG", "amount": 1000})
    shop.set("visits", 1234)
    shop.set("session:9f2c", {"user": 7, "step": "payment"}, timeout=200)
    make_cache("shop", OPTIONS={"SERIALIZER": "pickle"}).set("tags", {"sale", "new"})
    config.set("theme", "dark")
    config.set("feature_flags", {"beta": True, "new_checkout": False})
    config.set("limits", [10, 100, 1000])
    default.set("greeting", "héllo wörld")
    default.set("suspicious", 1.5)
    for store, key in (("default", ":1:stale"), ("shop", ":1:old_offer")):
        kv.store(store).set(key.removeprefix(":1:"), "expired")
        Entry.objects.filter(pk=row(store, key).pk).update(expires=time.time() - 90)
    Entry.objects.filter(pk=row("default", ":1:suspicious").pk).update(value=b"\x00" * 40)
    return kv


def row(store: str, key: str) -> Entry:
    return Entry.objects.get(
        store_hash=name_hash(encode_name(store)), key_hash=name_hash(encode_name(key))
    )


@pytest.fixture
def page(browser: Browser, live_server: Any, seeded: KeyValCache) -> Iterator[Page]:
    """A page logged in as a superuser, on the entries' changelist."""
    context = browser.new_context(viewport={"width": 1600, "height": 900})
    context.set_default_timeout(STEP_TIMEOUT)
    # The app list beside the page only narrows the screenshots.
    context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/keyval_backend/entry/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")
    yield page
    context.close()


def keys_listed(page: Page) -> list[str]:
    """The keys of the changelist, as the application wrote them."""
    return [
        text.strip() for text in page.locator("#result_list th.field-key_display").all_inner_texts()
    ]


def test_filter_search_open_edit_with_validation(
    page: Page, seeded: KeyValCache, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    assert "stale" not in keys_listed(page)
    page.locator("#result_list").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "admin-changelist.png"), full_page=True)

    page.locator("#changelist-filter").get_by_role("link", name="shop", exact=True).click()
    expect(page.locator("#result_list")).to_contain_text("cart:42")
    assert "theme" not in keys_listed(page)
    assert "old_offer" not in keys_listed(page)

    page.fill("#searchbar", "100%")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=100%25**")
    assert keys_listed(page) == ["100%_off"]

    page.get_by_role("link", name="100%_off", exact=True).click()
    textarea = page.locator("textarea[name=value_json]")
    expect(textarea).to_contain_text('"percent": 100')
    page.screenshot(path=str(screenshots / "admin-change-form.png"), full_page=True)

    textarea.fill('{"code": "SPRING", "percent": 50')
    page.click("input[name=_save]")
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".errorlist")).to_contain_text("Enter valid JSON")
    assert seeded.store("shop").get("100%_off") == {"code": "SPRING", "percent": 100}

    page.locator("textarea[name=value_json]").fill('{"code": "SPRING", "percent": 50}')
    page.check("input[name=expiry][value=in]")
    page.fill("input[name=expires_in]", "3600")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")
    shop = seeded.store("shop")
    assert shop.get("100%_off") == {"code": "SPRING", "percent": 50}
    assert shop.ttl("100%_off") == pytest.approx(3600, abs=60)


@pytest.mark.pickle_only("the cache must read the pickled set")
def test_read_only_value_and_delete(page: Page, seeded: KeyValCache) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="tags", exact=True).click()
    expect(page.locator(".field-value_display")).to_contain_text("is not a JSON value")
    assert page.locator("textarea[name=value_json]").count() == 0
    page.locator("a.deletelink").click()
    page.locator("input[type=submit]").click()
    expect(page.locator(".messagelist .success")).to_contain_text("was deleted successfully")
    assert not seeded.store("shop").has_key("tags")
    assert "tags" not in keys_listed(page)


def test_purge_expired_action(page: Page, seeded: KeyValCache) -> None:
    from playwright.sync_api import expect

    page.locator("#changelist-filter").get_by_role("link", name="Expired only").click()
    expect(page.locator("#result_list")).to_contain_text("old_offer")
    assert sorted(keys_listed(page)) == ["old_offer", "stale"]
    expect(page.locator("#result_list .keyval-expired").first).to_contain_text("expired")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "purge_expired")
    page.click("button[name=index]")
    expect(page.locator(".messagelist .success")).to_contain_text("Purged 2 expired entries.")
    assert keys_listed(page) == []
    assert Entry.objects.filter(expires__lte=time.time()).count() == 0
