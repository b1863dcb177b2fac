"""The four browser journeys of the web client, in one story on one API and one anvil:

4a. the organizer creates the event in the browser and keeps its live sales page open;
1. fan A signs in, waits in the queue, is admitted, pays by card, sees the ticket and its QR;
2. A lists it; fan B finds it in the market and buys it with ether; A's ticket is gone, B's QR
   shows;
3. fan C buys a ticket with ether on the primary sale;
4b. the organizer watched the sales page change; a scanner device admits B at the door.

Every page visited is scanned with axe-core (no serious or critical violation) and
photographed at 390 px and at desktop width under var/screenshots/."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.web.conftest import Person, Stack, hold_up_to_camera

pytestmark = [pytest.mark.browser, pytest.mark.anvil, pytest.mark.slow]

MINT_TIMEOUT = 90_000  # ms: a card payment's webhook, then the worker's mint on anvil


class Story:
    """What the journeys share, in the order they happen."""

    def __init__(self, browser: Browser, stack: Stack) -> None:
        self.browser = browser
        self.stack = stack
        self.people: dict[str, Person] = {}
        self.event_id: int | None = None
        self.token_a: str | None = None

    def person(self, name: str, account: int | None) -> Person:
        if name not in self.people:
            self.people[name] = Person(self.browser, self.stack, name, account)
        return self.people[name]


@pytest.fixture(scope="module")
def story(browser: Browser, stack: Stack) -> Iterator[Story]:
    shared = Story(browser, stack)
    yield shared
    for person in shared.people.values():
        person.close()


def sign_in(person: Person) -> None:
    person.page.get_by_role("button", name="Sign in with Test wallet").click()


def local(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M")  # the contexts run in UTC


def test_4a_organizer_creates_the_event(story: Story) -> None:
    org = story.person("organizer", 1)
    org.go("/organizer/new")
    sign_in(org)
    page = org.page
    expect(page.get_by_label("Event name")).to_be_visible()
    org.axe("create event")
    now = datetime.now(UTC)
    page.get_by_label("Event name").fill("Browser night")
    page.get_by_label("Venue").fill("Hall 1")
    # Within a day of the start, so entry codes are revealed; resale stays open until then.
    page.get_by_label("Starts").fill(local(now + timedelta(hours=3)))
    page.get_by_label("Sale opens").fill(local(now - timedelta(minutes=5)))
    page.get_by_label("Tier name").fill("Floor")
    page.get_by_label("Price (card, in currency units)").fill("25.00")
    page.get_by_label("Tickets", exact=True).fill("20")
    org.shoot("4a-create-event")
    page.get_by_role("button", name="Create event").click()
    expect(page.get_by_role("heading", name="Browser night: live sales")).to_be_visible(
        timeout=60_000
    )
    story.event_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_test_id("tickets-sold")).to_have_text("0 sold")
    org.shoot("4a-sales-page-before")
    org.axe("live sales")


def test_1_fan_a_waits_pays_by_card_and_sees_the_qr(story: Story) -> None:
    org = story.people["organizer"]
    # The organizer holds admissions, so A really waits: the page shows the pause, and A is
    # let in, over the stream, when the organizer resumes.
    org.page.get_by_role("button", name="Pause", exact=True).click()
    expect(org.page.get_by_test_id("queue-state")).to_contain_text("Paused")
    a = story.person("fan A", 2)
    page = a.page
    a.go("/")
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    a.axe("events")
    page.get_by_role("link", name="Browser night").click()
    expect(page.get_by_role("heading", name="Browser night")).to_be_visible()
    expect(page.locator("#main").get_by_text("20 of 20 left")).to_be_visible()
    a.shoot("1-event-page")
    a.axe("event page")
    page.get_by_role("link", name="Get tickets").click()
    expect(page.get_by_role("button", name="Sign in with Test wallet")).to_be_visible()
    a.axe("sign-in panel")
    sign_in(a)
    expect(page.locator("#main").get_by_text("paused admissions")).to_be_visible()
    expect(page.locator("#main").get_by_text("You're next")).to_be_visible()
    a.shoot("1-waiting")
    a.axe("waiting room, waiting")
    org.page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.locator("#main").get_by_text("It's your turn!")).to_be_visible(timeout=30_000)
    # The place survives a refresh: the same admission, not a new place.
    page.reload()
    expect(page.locator("#main").get_by_text("It's your turn!")).to_be_visible(timeout=30_000)
    a.shoot("1-admitted")
    a.axe("waiting room, admitted")
    # A declined card first: said in words, the hold released, and A starts again.
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    expect(page.get_by_role("alert")).to_have_text("Your card was declined. Try another card.")
    a.shoot("1-card-declined")
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("CVC").fill("123")
    a.axe("card form")
    a.shoot("1-card-form")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    expect(page.locator("#main").get_by_text("Your ticket is ready")).to_be_visible(
        timeout=MINT_TIMEOUT
    )
    a.shoot("1-ticket-ready")
    page.get_by_role("link", name="See my tickets").click()
    expect(page.get_by_role("heading", name="My tickets")).to_be_visible()
    a.axe("my tickets")
    a.shoot("1-my-tickets")
    page.get_by_role("link", name=re.compile(r"^Entry code & resale")).first.click()
    qr = page.get_by_role("img", name=re.compile(r"^Entry QR code"))
    expect(qr).to_be_visible()
    expect(page.get_by_test_id("entry-code")).to_have_text(re.compile(r"^FTX1:"))
    story.token_a = page.url.rsplit("/", 1)[1]
    a.shoot("1-ticket-qr")
    a.axe("ticket page")


def test_2_a_lists_b_buys_with_ether(story: Story) -> None:
    a = story.person("fan A", 2)
    page = a.page
    # A first asks too much: the cap is refused in words, before anything is signed.
    page.get_by_label("Price (ETH)").fill("0.009")
    page.get_by_role("button", name="See what I'd receive").click()
    expect(page.get_by_role("alert")).to_contain_text("above the resale cap")
    # Listed at 0.007, then taken off the market again.
    page.get_by_label("Price (ETH)").fill("0.007")
    page.get_by_role("button", name="See what I'd receive").click()
    page.get_by_role("button", name="Sign and list").click()
    expect(page.locator("#main").get_by_text(re.compile(r"^Listed for 0\.007 ETH"))).to_be_visible()
    page.get_by_role("button", name="Take it off the market").click()
    expect(page.locator("#main").get_by_text("Your ticket is off the market.")).to_be_visible()
    page.reload()
    page.get_by_label("Price (ETH)").fill("0.008")
    page.get_by_role("button", name="See what I'd receive").click()
    # The terms before signing: what the seller receives after the organizer's royalty.
    expect(page.get_by_test_id("seller-receives")).to_contain_text("ETH")
    a.shoot("2-terms-before-signing")
    a.axe("resale terms")
    page.get_by_role("button", name="Sign and list").click()
    expect(page.locator("#main").get_by_text(re.compile(r"^Listed for 0\.008 ETH"))).to_be_visible()

    b = story.person("fan B", 3)
    bp = b.page
    b.go("/market")
    expect(bp.locator("#main").get_by_text("1 ticket for sale")).to_be_visible()
    b.axe("market")
    bp.get_by_role("link", name="Browser night").click()
    b.shoot("2-event-market")
    b.axe("event market")
    bp.get_by_role("button", name=re.compile(r"^Buy with ETH")).click()
    b.axe("sign-in page")
    sign_in(b)  # buying needs a wallet: sign in, back to the market
    bp.get_by_role("button", name=re.compile(r"^Buy with ETH")).click()
    expect(bp.locator("#main").get_by_text(re.compile(r"is yours\.$"))).to_be_visible(
        timeout=MINT_TIMEOUT
    )
    bp.get_by_role("link", name="Show my ticket").click()
    expect(bp.get_by_test_id("entry-code")).to_have_text(re.compile(r"^FTX1:"))
    expect(bp.get_by_role("img", name=re.compile(r"^Entry QR code"))).to_be_visible()
    b.shoot("2-b-ticket-qr")

    a.go("/tickets")
    expect(page.locator("#main").get_by_text("You have no tickets yet.")).to_be_visible()
    a.go("/payouts")
    expect(page.get_by_role("heading", name="My payouts")).to_be_visible()
    expect(page.get_by_role("cell", name=re.compile(rf"^#{story.token_a} "))).to_be_visible()
    # The seller's proceeds (price minus the royalty) wait in the contract; A withdraws them.
    page.get_by_role("button", name="Withdraw 0.0076 ETH").click()
    expect(page.locator("#main").get_by_text("Withdrawn: 0.0076 ETH")).to_be_visible()
    a.axe("payouts")
    a.shoot("2-a-payouts")


def test_3_fan_c_buys_with_ether_on_the_primary_sale(story: Story) -> None:
    c = story.person("fan C", 4)
    page = c.page
    c.go(f"/events/{story.event_id}/wait")
    sign_in(c)
    expect(page.locator("#main").get_by_text("It's your turn!")).to_be_visible(timeout=30_000)
    page.get_by_label("Ether (ETH) from my wallet").check()
    page.get_by_role("button", name="Continue to payment").click()
    pay = page.get_by_role("button", name=re.compile(r"with my wallet$"))
    expect(pay).to_be_visible()
    c.shoot("3-pay-with-ether")
    c.axe("ether checkout")
    pay.click()
    expect(page.locator("#main").get_by_text("Your ticket is ready")).to_be_visible(
        timeout=MINT_TIMEOUT
    )
    page.get_by_role("link", name="See my tickets").click()
    expect(page.locator("#main").get_by_text("Browser night")).to_be_visible()


def test_4b_sales_page_changed_and_the_door_admits_b(story: Story) -> None:
    org = story.person("organizer", 1)
    page = org.page
    # The page kept refreshing itself while the fans bought: two sold, one resold.
    expect(page.get_by_test_id("tickets-sold")).to_have_text("2 sold", timeout=15_000)
    expect(page.get_by_test_id("resale-activity")).to_contain_text("1 resold")
    page.get_by_role("button", name="Register a scanner device").click()
    credential = page.get_by_test_id("scanner-credential").inner_text()
    org.shoot("4b-sales-page-after")

    scanner = story.person("scanner", None)
    sp = scanner.page
    scanner.go("/door")
    sp.get_by_label("Device credential").fill(credential)
    sp.get_by_label("Gate").fill("North")
    scanner.axe("door setup")
    sp.get_by_role("button", name="Start scanning").click()
    # B holds the phone up to the scanner's camera: the QR on B's screen, read by jsQR.
    b = story.people["fan B"]
    b.go(f"/tickets/{story.token_a}")
    qr = b.page.get_by_role("img", name=re.compile(r"^Entry QR code"))
    src = qr.get_attribute("src") or ""
    code = b.page.get_by_test_id("entry-code").inner_text()
    hold_up_to_camera(base64.b64decode(src.split(",", 1)[1]))
    scanner.context.grant_permissions(["camera"])
    sp.get_by_role("button", name="Start camera").click()
    expect(sp.get_by_test_id("verdict")).to_contain_text("ADMITTED", timeout=15_000)
    scanner.shoot("4b-door-admitted")
    scanner.axe("door verdict")
    # The same code again is refused, in words the steward can act on.
    sp.get_by_label("Entry code").fill(code)
    sp.get_by_role("button", name="Check ticket").click()
    expect(sp.get_by_test_id("verdict")).to_contain_text("Already used")
    expect(page.get_by_test_id("door-admitted")).to_have_text("1 admitted", timeout=15_000)
    # The organizer closes resale an hour before the start: the window moves.
    policy = page.get_by_role("region", name="Resale policy").locator("p").first
    before = policy.inner_text()
    page.get_by_label("Resale closes before the start (hours)").fill("1")
    page.get_by_role("button", name="Save resale policy").click()
    expect(policy).not_to_have_text(before)
    expect(policy).to_contain_text("Resale is open until")


def test_4c_b_buys_c_s_ticket_by_card_if_the_api_has_the_card_rail(story: Story) -> None:
    """By card when the API's resale takes cards; otherwise the button says so in words."""
    schemas = httpx.get(f"{story.stack.base}/openapi.json").json()["components"]["schemas"]
    card_rail = "card" in json.dumps(schemas["BuyRequest"]["properties"]["method"])
    c = story.people["fan C"]
    c.page.get_by_role("link", name=re.compile(r"^Entry code & resale")).first.click()
    c.page.get_by_label("Price (ETH)").fill("0.0075")
    c.page.get_by_role("button", name="See what I'd receive").click()
    c.page.get_by_role("button", name="Sign and list").click()
    expect(c.page.locator("#main").get_by_text(re.compile(r"^Listed for"))).to_be_visible()
    b = story.people["fan B"]
    b.go(f"/events/{story.event_id}/market")
    b.page.get_by_role("button", name=re.compile(r"^Buy by card")).click()
    if not card_rail:
        expect(b.page.get_by_role("alert")).to_have_text(
            "Buying resale tickets by card isn't available here yet: buy with ETH instead."
        )
        return
    b.page.get_by_label("Card number").fill("4242 4242 4242 4242")
    b.page.get_by_label("Expiry (MM/YY)").fill("12/34")
    b.page.get_by_label("CVC").fill("123")
    b.page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    expect(b.page.locator("#main").get_by_text(re.compile(r"is yours\.$"))).to_be_visible(
        timeout=MINT_TIMEOUT
    )
    b.shoot("4c-bought-by-card")


def test_account_email_export_and_erase(story: Story) -> None:
    a = story.people["fan A"]
    page = a.page
    a.go("/account")
    page.get_by_label("E-mail for receipts").fill("not-an-address")
    page.get_by_label("E-mail for receipts").evaluate("e => e.type = 'text'")  # past the browser
    page.get_by_role("button", name="Save e-mail").click()
    expect(page.get_by_role("alert")).to_have_text("That e-mail address doesn't look right.")
    page.get_by_label("E-mail for receipts").fill("fan.a@example.org")
    page.get_by_role("button", name="Save e-mail").click()
    expect(page.locator("#main").get_by_text("Saved.")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export my data").click()
    exported = json.loads(Path(download.value.path()).read_text())
    sections = exported["sections"]
    assert [c["email"] for c in sections["contact"]] == ["fan.a@example.org"]
    assert exported["address"] == (a.address or "").lower()
    assert sections["listings"] and sections["tickets_held"] == []  # A sold the one ticket
    assert sections["orders"]  # A's card order, kept
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Erase my data").click()
    # DELETE /me/data: the e-mail erased, this session ended (here and in the API), and what is
    # kept said plainly.
    expect(page.get_by_role("heading", name="Your data was erased")).to_be_visible()
    expect(page.locator("#main").get_by_text("Your e-mail address was erased.")).to_be_visible()
    expect(page.get_by_role("heading", name="What fairtix keeps, and why")).to_be_visible()
    expect(page.locator("#main li").first).to_contain_text("orders, tickets")
    expect(page.locator("#wallet").get_by_role("link", name="Sign in")).to_be_visible()
    assert page.evaluate("() => localStorage.getItem('fairtix.session')") is None
    a.axe("erased")
    a.shoot("x-account-erased")
    # Signed in again, the e-mail is gone for good.
    a.go("/account")
    page.get_by_role("button", name="Sign in with Test wallet").click()
    expect(page.get_by_label("E-mail for receipts")).to_have_value("")


def test_the_organizer_cancels_the_event(story: Story) -> None:
    org = story.people["organizer"]
    page = org.page
    page.get_by_label("Reason, for ticket holders").fill("The hall flooded.")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel this event").click()
    expect(page.locator("#main").get_by_text(re.compile(r"^Cancelled: "))).to_be_visible()
    b = story.people["fan B"]
    b.go("/tickets")
    expect(b.page.locator("#main").get_by_text("This event was cancelled.").first).to_be_visible()
    # C still holds the ticket bought with ether (unless B bought it by card above): C claims
    # the ether back from the contract's escrow once the cancellation is on chain.
    c = story.people["fan C"]
    c.go("/tickets")
    opened = c.page.get_by_role("link", name=re.compile(r"^Entry code & resale"))
    expect(c.page.get_by_role("heading", name="My tickets")).to_be_visible()
    if opened.count() == 0:
        return
    opened.first.click()
    claim = c.page.get_by_role("button", name="Claim my ether refund")
    done = c.page.locator("#main").get_by_text("Refund claimed: the ether is in your wallet.")
    for _ in range(20):  # the worker cancels the contract a moment after the API
        claim.click()
        refused = c.page.get_by_role("region", name="Refund").get_by_role("alert")
        expect(done.or_(refused)).to_be_visible()
        if done.is_visible():
            break
        c.page.wait_for_timeout(1000)
    expect(done).to_be_visible()
    c.axe("refund")
    c.shoot("5-refund-claimed")


def test_no_page_errors_or_accessibility_violations(story: Story) -> None:
    other_pages: list[tuple[str, str, Any]] = [
        ("/account", "Account", story.people.get("fan A")),
        ("/organizer", "Organizer", story.people.get("organizer")),
    ]
    for route, heading, person in other_pages:
        if person is None:
            continue
        person.go(route)
        expect(person.page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        person.axe(heading)
        person.shoot(f"x-{heading.lower()}")
    assert story.stack.problems == []
