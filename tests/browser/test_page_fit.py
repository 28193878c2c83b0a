"""The trader's page at a phone's width (375 px) and on a laptop (1280 px): every GTT readable and
actionable without scrolling sideways, prices as the instrument quotes them, words a trader uses,
a quiet console, a paged audit, and a GTT's life showing what fired it."""
from __future__ import annotations

import pytest

from tests.browser.conftest import PHONE, REQUIRED, screenshot, sign_in

try:
    from playwright.sync_api import expect
except ImportError:  # the test extra is not installed
    if REQUIRED:
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

pytestmark = pytest.mark.xdist_group("browser")

LAPTOP = {"width": 1280, "height": 800}


def row(page, trigger_id: str):
    return page.locator(f'#gtt-book tr[data-trigger-id="{trigger_id}"]')


# The GTT table's columns, as drawn: a cell by what it shows, whatever the layout.
COLUMNS = {"Trigger id": 0, "Symbol": 1, "Type": 2, "Action": 3, "Qty": 4, "Trigger": 5, "Last price": 6,
           "Distance": 7, "Status": 8}


def cell(gtt, column: str):
    return gtt.locator("td").nth(COLUMNS[column])


def on_screen(page, locator, width: int) -> None:
    """The element is drawn, and wholly inside the viewport's width: nothing to scroll sideways to."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None and box["width"] > 0
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (locator, box)


def not_clipped(page, locator) -> None:
    """The element is wholly inside every box that would clip it (its scroll containers)."""
    clipped = locator.evaluate("""el => {
        const me = el.getBoundingClientRect();
        for (let box = el.parentElement; box; box = box.parentElement) {
            const style = getComputedStyle(box);
            if (!/(auto|scroll|hidden|clip)/.test(style.overflowX)) continue;
            const r = box.getBoundingClientRect();
            if (me.left < r.left - 0.5 || me.right > r.right + 0.5) return `${el.outerHTML.slice(0, 80)} in ${box.className} ${me.left} ${me.right} ${r.left} ${r.right} ${box.scrollWidth} ${box.clientWidth}`;
        }
        return null;
    }""")
    assert clipped is None, clipped


def a_book_of_every_kind(gateway) -> dict[str, str]:
    gateway.tick("IDEA", 9.50)
    gateway.tick("SBIN", 800, open=795)
    gateway.tick("BANKNIFTY29DEC2652000CE", 380.5, exchange="NFO")
    ids = {
        "single": gateway.place(symbol="IDEA", action="BUY", triggerprice_tg=10.8),
        "oco": gateway.place(symbol="IDEA", action="SELL", trigger_type="OCO", triggerprice_sl=9.1,
                             triggerprice_tg=10.5),
        "bracket": gateway.place(symbol="SBIN", action="BUY", product="MIS", trigger_type="BRACKET",
                                 entry_mode="manual", entry_value=805),
        # The longest names a book holds: an option's symbol, on NFO.
        "option": gateway.place(symbol="BANKNIFTY29DEC2652000CE", exchange="NFO", action="SELL", product="NRML",
                                quantity=35, trigger_type="OCO", triggerprice_sl=310.05, triggerprice_tg=450.5),
    }
    return ids


def test_at_a_phones_width_each_gtt_shows_its_symbol_type_triggers_status_and_actions(page, gateway):
    page.set_viewport_size(PHONE)
    sign_in(page, gateway.key)
    ids = a_book_of_every_kind(gateway)
    for trigger_id in ids.values():
        gtt = row(page, trigger_id)
        expect(gtt).to_be_visible(timeout=5_000)
        for label in ("Symbol", "Type", "Trigger", "Status"):
            on_screen(page, cell(gtt, label), PHONE["width"])
        on_screen(page, gtt.get_by_role("button", name=f"Modify {trigger_id}"), PHONE["width"])
        on_screen(page, gtt.get_by_role("button", name=f"Cancel {trigger_id}"), PHONE["width"])
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # No box on the page scrolls sideways to hide part of a GTT.
    book = page.locator("#gtt-book .overflow-auto")
    assert book.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    row(page, ids["bracket"]).scroll_into_view_if_needed()
    screenshot(page, "phone-orders", full_page=False)


def test_at_1280_px_with_all_states_nothing_is_clipped(page, gateway):
    page.set_viewport_size(LAPTOP)
    sign_in(page, gateway.key)
    ids = a_book_of_every_kind(gateway)
    gateway.post("cancelgtt", trigger_id=ids["oco"])
    gateway.tick("IDEA", 10.85)  # fires the single
    page.get_by_label("Show").select_option("all")
    expect(row(page, ids["single"]).locator("td.status-triggered")).to_be_visible(timeout=5_000)
    expect(row(page, ids["oco"])).to_contain_text("cancelled")
    book = page.locator("#gtt-book .overflow-auto")
    widths = book.evaluate("el => [el.scrollWidth, el.clientWidth, [...el.querySelectorAll('thead th')].map("
                           "th => Math.round(th.getBoundingClientRect().width))]")
    assert widths[0] <= widths[1] + 1, f"the GTT table scrolls sideways at 1280 px: {widths}"
    for cell in row(page, ids["bracket"]).locator("td").all():
        not_clipped(page, cell)
    for button in page.locator("#gtt-book td.actions button").all():
        not_clipped(page, button)
        on_screen(page, button, LAPTOP["width"])
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    screenshot(page, "desktop-all-states", full_page=False)


def test_prices_have_the_ticks_decimals_and_legs_are_named(page, gateway):
    sign_in(page, gateway.key)
    ids = a_book_of_every_kind(gateway)
    expect(cell(row(page, ids["single"]), "Trigger")).to_have_text("10.80")  # IDEA: 0.01 tick
    expect(cell(row(page, ids["single"]), "Last price")).to_have_text("9.50")
    expect(cell(row(page, ids["bracket"]), "Trigger")).to_have_text(
        "entry 805.00 · target 813.05 · stop-loss 796.95")
    expect(cell(row(page, ids["oco"]), "Trigger")).to_have_text("stop-loss 9.10 · target 10.50")
    row(page, ids["bracket"]).get_by_role("button", name=f"Details of {ids['bracket']}").click()
    legs = page.locator(f"article[aria-label='Details of {ids['bracket']}'] table").first
    expect(legs).to_contain_text("stop-loss")
    expect(legs).to_contain_text("796.95")
    expect(legs).not_to_contain_text("IMMEDIATE")


def test_the_preview_says_when_each_leg_fires_without_broker_jargon(page, gateway):
    gateway.tick("SBIN", 800, open=795)
    sign_in(page, gateway.key)
    form = page.locator("#new-gtt-form")
    form.get_by_label("Symbol").fill("SBIN")
    form.get_by_label("Type").select_option("BRACKET")
    form.get_by_label("Entry mode").select_option("manual")
    form.get_by_label("Entry value").fill("805")
    preview = page.locator("#preview")
    expect(preview).to_contain_text("entry 805.00: fires when the price rises to it")
    expect(preview).to_contain_text("target 813.05: armed once the entry fills")
    expect(preview).to_contain_text("stop-loss 796.95: armed once the entry fills")
    expect(preview).not_to_contain_text("IMMEDIATE")
    expect(preview).not_to_contain_text("stoploss")


def test_a_refusal_points_to_the_fields_where_they_are(page, gateway):
    sign_in(page, gateway.key)
    form = page.locator("#new-gtt-form")
    form.get_by_label("Symbol").fill("IDEA")
    form.get_by_label("Quantity").fill("1.5")
    form.get_by_label("Type").select_option("OCO")
    form.get_by_label("Stop-loss trigger").fill("9")
    form.get_by_label("Target trigger").fill("10")
    form.get_by_role("button", name="Place GTT").click()
    said = page.locator("#new-gtt-result p.error")
    field = page.locator("#new-err-quantity")
    expect(field).to_contain_text("whole number")
    expect(said).to_contain_text("see the fields marked")
    where = "above" if field.bounding_box()["y"] < said.bounding_box()["y"] else "below"
    expect(said).to_contain_text(f"see the fields marked {where}")
    assert where == "above"  # the result is drawn under the form


def test_the_legs_status_names_the_broker_in_use(page, gateway):
    sign_in(page, gateway.key)
    gateway.tick("IDEA", 9.50)
    trigger_id = gateway.place(symbol="IDEA", action="BUY", triggerprice_tg=9.9)
    row(page, trigger_id).get_by_role("button", name=f"Details of {trigger_id}").click()
    details = page.locator(f"article[aria-label='Details of {trigger_id}']")
    expect(details.get_by_role("columnheader", name="Sandbox status")).to_be_visible()
    expect(details).not_to_contain_text("Upstox")


def test_the_page_has_a_favicon_and_a_quiet_console_through_a_session(browser, gateway):
    context = browser.new_context(viewport=LAPTOP, base_url=gateway.url)
    page = context.new_page()
    said: list[str] = []
    page.on("console", lambda m: said.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: said.append(str(exc)))
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto("/")
    sign_in(page, gateway.key)
    icon = page.locator("link[rel=icon]")
    expect(icon).to_have_count(1)
    answer = page.request.get(icon.get_attribute("href"))
    assert answer.status == 200 and answer.headers["content-type"].startswith("image/")
    # A session's worth of the page, each step one that succeeds: nothing may complain.
    gateway.tick("IDEA", 9.50)
    trigger_id = gateway.place(symbol="IDEA", action="BUY", triggerprice_tg=9.90)
    row(page, trigger_id).get_by_role("button", name=f"Details of {trigger_id}").click()
    expect(page.locator(f"article[aria-label='Details of {trigger_id}']")).to_be_visible()
    row(page, trigger_id).get_by_role("button", name=f"Modify {trigger_id}").click()
    expect(page.get_by_role("form", name=f"Modify {trigger_id}")).to_be_visible()
    form = page.locator("#new-gtt-form")
    form.get_by_label("Symbol").fill("IDEA")
    form.get_by_label("Type").select_option("OCO")
    form.get_by_label("Stop-loss trigger").fill("9.00")
    form.get_by_label("Target trigger").fill("10.00")
    expect(page.locator("#preview")).to_contain_text("target 10.00")
    page.get_by_label("Show").select_option("all")
    page.locator("#audit-rows summary").first.click()
    expect(page.locator("#audit-rows pre").first).to_be_visible()
    push = page.locator("#push-price")
    push.get_by_label("Symbol").fill("IDEA")
    push.get_by_label("Price").fill("9.95")
    push.get_by_role("button", name="Push price").click()
    expect(push.locator("#push-result")).to_contain_text("fired")
    page.wait_for_timeout(2_500)  # a poll of the book and the header too
    context.close()
    assert said == [] and failed == []


def test_the_audit_is_paged_25_rows_at_a_time(page, gateway):
    for _ in range(30):
        assert gateway.post("ping").status_code == 200
    sign_in(page, gateway.key)
    audit = page.locator("#audit")
    audit.get_by_label("Endpoint").fill("ping")
    audit.get_by_role("button", name="Refresh audit").click()
    rows = page.locator("#audit-rows tbody tr")
    expect(rows).to_have_count(25)

    def row_ids() -> list[int]:  # each row opens its own audit record: /ui/audit/row?id=N
        return [int(link.split("id=")[1]) for link in
                page.locator("#audit-rows tbody details").evaluate_all("els => els.map(e => e.getAttribute('hx-get'))")]

    first_page = row_ids()
    assert first_page == sorted(first_page, reverse=True)  # newest first
    audit.get_by_role("button", name="Older").click()
    expect(page.get_by_role("button", name="Newest")).to_be_visible()
    older = row_ids()
    assert 5 <= len(older) <= 25 and max(older) < min(first_page)  # the next 25 back, none shown twice
    audit.get_by_role("button", name="Newest").click()
    expect(page.get_by_role("button", name="Newest")).to_have_count(0)
    assert row_ids() == first_page


def test_a_gtts_life_shows_the_tick_that_fired_it(page, gateway):
    sign_in(page, gateway.key)
    gateway.tick("IDEA", 9.50)
    trigger_id = gateway.place(symbol="IDEA", action="BUY", triggerprice_tg=9.70)
    fired = gateway.tick("IDEA", 9.75)  # through the API, not the page
    assert [f["gtt_id"] for f in fired] == [trigger_id]
    page.get_by_label("Show").select_option("all")
    expect(row(page, trigger_id).locator("td.status-triggered")).to_be_visible(timeout=5_000)
    row(page, trigger_id).get_by_role("button", name=f"Details of {trigger_id}").click()
    life = page.locator(f"article[aria-label='Details of {trigger_id}'] table").nth(1)
    expect(life).to_contain_text("POST /api/v1/sandbox/ticks")
    expect(life).to_contain_text("fired it: BUY at 9.70 (tick at 9.75)")
    expect(life).to_contain_text("triggered, by a sandbox tick")
    life.scroll_into_view_if_needed()
    screenshot(page, "life", full_page=False)
