"""The trader's page, driven as a trader would: by the labels and button names on the screen."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import PHONE, REQUIRED, screenshot, sign_in, wait_for_the_page

try:
    from playwright.sync_api import expect
except ImportError:  # the test extra is not installed
    if REQUIRED:
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

AXE = Path(__file__).with_name("vendor") / "axe-4.14.1.min.js"

# One worker runs them all: one Chromium (the session's) and one server (the module's), not one a worker.
pytestmark = pytest.mark.xdist_group("browser")


def row(page, trigger_id: str):
    return page.locator(f'#gtt-book tr[data-trigger-id="{trigger_id}"]')


def test_a_wrong_key_is_refused_on_the_page(page, gateway):
    screenshot(page, "signin")
    page.get_by_label("API key").fill("0123456789abcdef." + "0" * 64)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Invalid API key")).to_be_visible()
    expect(page.get_by_role("heading", name="GTT orders")).to_have_count(0)
    assert not [c for c in page.context.cookies() if c["name"] == "gtt_session"]
    assert gateway.key not in page.content()


def test_the_session_cookie_is_http_only_strict_and_ends_at_sign_out(page, gateway):
    sign_in(page, gateway.key)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "gtt_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    assert gateway.key not in page.content() and gateway.key not in page.url
    stolen = cookie["value"]
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    # The old cookie no longer opens anything: the session ended on the server.
    answer = page.request.get("/ui/gtts", headers={"Cookie": f"gtt_session={stolen}"})
    assert answer.status == 401


def test_a_gtt_placed_through_the_api_appears_without_a_reload(page, gateway):
    sign_in(page, gateway.key)
    page.evaluate("window.notReloaded = true")
    gateway.tick("IDEA", 9.50)
    trigger_id = gateway.place(symbol="IDEA", action="BUY", triggerprice_tg=9.62)
    expect(row(page, trigger_id)).to_be_visible(timeout=5_000)  # the table polls: within 5 s
    expect(row(page, trigger_id)).to_contain_text("9.62")
    expect(row(page, trigger_id)).to_contain_text("+1.26%")  # the distance to the trigger
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "orders")


def test_cancel_in_a_row_cancels_it_at_the_broker(page, gateway):
    sign_in(page, gateway.key)
    gateway.tick("INFY", 1500)
    trigger_id = gateway.place(symbol="INFY", action="SELL", triggerprice_sl=1450)
    page.once("dialog", lambda dialog: dialog.accept())  # "Cancel ... at the broker?"
    row(page, trigger_id).get_by_role("button", name="Cancel").click()
    expect(page.get_by_text(f"Cancelled {trigger_id}")).to_be_visible()
    expect(row(page, trigger_id)).to_have_count(0)  # gone from the active book
    data = gateway.status(trigger_id)
    assert data["status"] == "cancelled" and data["legs"][0]["status"] == "CANCELLED"


def test_new_gtt_places_a_single_and_a_bracket(page, gateway):
    gateway.tick("SBIN", 800, open=795)
    sign_in(page, gateway.key)
    form = page.locator("#new-gtt-form")
    form.get_by_label("Symbol").fill("SBIN")
    form.get_by_label("Quantity").fill("3")
    expect(form.get_by_text("Last price: 800.00")).to_be_visible()  # SBIN: a 0.05 tick
    form.get_by_label("Trigger price").fill("790.03")
    # The preview rounds to the tick and, below the last price, fires on a fall.
    expect(page.locator("#preview")).to_contain_text("entry 790.05: fires when the price falls to it")
    expect(page.locator("#preview")).to_contain_text("Warning")
    screenshot(page, "new-gtt")
    form.get_by_role("button", name="Place GTT").click()
    expect(page.locator("#new-gtt-result")).to_contain_text("Placed GTT-")
    single = re.search(r"Placed (GTT-\S+?)[ .(]", page.locator("#new-gtt-result").inner_text()).group(1)
    expect(row(page, single)).to_contain_text("790.05")

    form.get_by_label("Type").select_option("BRACKET")
    expect(form.get_by_label("Entry mode")).to_be_visible()
    form.get_by_label("Entry mode").select_option("manual")
    form.get_by_label("Entry value").fill("805")
    expect(page.locator("#preview")).to_contain_text("entry 805.00: fires when the price rises to it")
    form.get_by_role("button", name="Place GTT").click()
    expect(page.locator("#new-gtt-result")).not_to_contain_text(single)
    expect(page.locator("#new-gtt-result")).to_contain_text("Placed GTT-")
    bracket = re.search(r"Placed (GTT-\S+?)[ .(]", page.locator("#new-gtt-result").inner_text()).group(1)
    assert bracket != single
    expect(row(page, bracket)).to_contain_text("bracket")
    legs = {leg["role"]: leg["price"] for leg in gateway.status(bracket)["legs"]}
    assert legs == {"entry": 805, "target": 813.05, "stoploss": 796.95}  # auto: 1% either side
    assert gateway.status(single)["legs"][0]["trigger_type"] == "BELOW"


def test_a_refusal_shows_beside_its_field(page, gateway):
    sign_in(page, gateway.key)
    form = page.locator("#new-gtt-form")
    form.get_by_label("Symbol").fill("NOSUCHSYMBOL")
    form.get_by_label("Type").select_option("OCO")
    form.get_by_label("Stop-loss trigger").fill("90")
    form.get_by_label("Target trigger").fill("110")
    form.get_by_role("button", name="Place GTT").click()
    expect(page.locator("#new-err-symbol")).to_contain_text("Unknown symbol")
    form.get_by_label("Symbol").fill("IDEA")
    form.get_by_label("Quantity").fill("1.5")
    form.get_by_role("button", name="Place GTT").click()
    expect(page.locator("#new-err-quantity")).to_contain_text("whole number")
    # Corrected, the same form places (the refusal gave it a fresh idempotency key).
    gateway.tick("IDEA", 9.50)
    form.get_by_label("Stop-loss trigger").fill("9.00")
    form.get_by_label("Target trigger").fill("10.00")
    form.get_by_label("Quantity").fill("1")
    form.get_by_role("button", name="Place GTT").click()
    expect(page.locator("#new-gtt-result")).to_contain_text("Placed OCO-")
    expect(page.locator("#new-err-quantity")).to_be_empty()


def test_modify_changes_a_trigger_price(page, gateway):
    sign_in(page, gateway.key)
    gateway.tick("TCS", 3500)
    trigger_id = gateway.place(symbol="TCS", action="BUY", triggerprice_tg=3600)
    row(page, trigger_id).get_by_role("button", name="Modify").click()
    editor = page.get_by_role("form", name=f"Modify {trigger_id}")
    editor.get_by_label("Trigger price").fill("3625.5")
    screenshot(page, "modify")
    editor.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text(f"Modified {trigger_id}")).to_be_visible()
    expect(row(page, trigger_id)).to_contain_text("3625.5")
    assert gateway.status(trigger_id)["legs"][0]["price"] == 3625.5


def test_the_csrf_token_is_enforced(page, gateway):
    sign_in(page, gateway.key)
    gateway.tick("RELIANCE", 1300)
    trigger_id = gateway.place(symbol="RELIANCE", action="BUY", triggerprice_tg=1350)
    # The browser's own cookie, but no token: refused, and the GTT is untouched.
    refused = page.request.post("/ui/cancelgtt", form={"trigger_id": trigger_id})
    assert refused.status == 403 and "CSRF" in refused.text()
    wrong = page.request.post("/ui/cancelgtt", form={"trigger_id": trigger_id, "csrf_token": "0" * 64})
    assert wrong.status == 403
    assert gateway.status(trigger_id)["status"] == "active"


def test_the_sandbox_push_a_price_form_fires_a_trigger(page, gateway):
    sign_in(page, gateway.key)
    gateway.tick("IDEA", 9.50)
    trigger_id = gateway.place(symbol="IDEA", action="BUY", triggerprice_tg=9.70)
    page.get_by_label("Show").select_option("all")
    expect(row(page, trigger_id)).to_contain_text("active")
    push = page.locator("#push-price")
    push.get_by_label("Symbol").fill("IDEA")
    push.get_by_label("Price").fill("9.75")
    push.get_by_role("button", name="Push price").click()
    expect(push.locator("#push-result")).to_contain_text(f"{trigger_id} (BUY at 9.70)")
    expect(row(page, trigger_id).locator("td.status-triggered")).to_be_visible(timeout=5_000)
    row(page, trigger_id).get_by_role("button", name=f"Details of {trigger_id}").click()
    details = page.locator(f"article[aria-label='Details of {trigger_id}']")
    expect(details).to_contain_text("COMPLETED")  # the leg, with its order id
    expect(details).to_contain_text("POST /api/v1/placegtt")  # its life: the requests that named it
    expect(details).to_contain_text("POST /ui/sandbox/ticks")
    screenshot(page, "fired")


def test_the_audit_lists_the_requests_without_secrets(page, gateway):
    sign_in(page, gateway.key)
    gateway.tick("IDEA", 9.50)
    gateway.place(symbol="IDEA", action="SELL", triggerprice_sl=9.10)
    form = page.locator("#new-gtt-form")
    form.get_by_label("Symbol").fill("IDEA")
    form.get_by_label("Trigger price").fill("9.15")
    form.get_by_role("button", name="Place GTT").click()
    expect(page.locator("#new-gtt-result")).to_contain_text("Placed GTT-")
    audit = page.locator("#audit")
    audit.get_by_label("Endpoint").fill("placegtt")
    audit.get_by_role("button", name="Refresh audit").click()
    expect(audit.get_by_text("POST /api/v1/placegtt").first).to_be_visible()
    expect(audit.get_by_text("POST /ui/placegtt").first).to_be_visible()  # the page's places too
    audit.get_by_text("POST /api/v1/placegtt").first.click()
    expect(audit.locator("pre").first).to_contain_text('"apikey": "***"')
    screenshot(page, "audit")
    assert gateway.key not in page.content()


def test_the_page_is_usable_at_a_phones_width_and_passes_axe(page, gateway):
    page.set_viewport_size(PHONE)
    # Keyboard only: the key field is the first stop, Enter signs in.
    page.keyboard.press("Tab")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(gateway.key)
    page.keyboard.press("Enter")
    wait_for_the_page(page)
    gateway.tick("IDEA", 9.50)
    gateway.place(symbol="IDEA", action="BUY", triggerprice_tg=9.9)
    expect(page.locator("#gtt-book tbody tr[data-trigger-id]").first).to_be_visible()
    page.locator("#audit-rows table").wait_for()
    # Nothing wider than the phone: wide tables scroll inside their own box.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(page.get_by_role("button", name="Place GTT")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "phone", full_page=False)
    page.get_by_role("heading", name="New GTT").scroll_into_view_if_needed()
    screenshot(page, "phone-new-gtt", full_page=False)
    violations = _axe(page)
    assert violations == [], violations
    page.set_viewport_size({"width": 1366, "height": 900})
    assert _axe(page) == []
    page.get_by_role("button", name="Sign out").click()
    assert _axe(page) == []  # the sign-in page too


def _axe(page) -> list[str]:
    """axe-core's WCAG 2 A/AA violations (labels, contrast, names, keyboard reach), as lines."""
    # Evaluated by the test harness (DevTools), not loaded by the page: the page's CSP would
    # rightly refuse a script that is not its own.
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate("axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})")
    assert len(result["passes"]) > 10  # axe really ran its checks
    return [f"{v['id']}: {v['help']} ({', '.join(n['target'][0] for n in v['nodes'][:3])})"
            for v in result["violations"]]
