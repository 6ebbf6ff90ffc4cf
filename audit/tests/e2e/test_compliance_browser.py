"""A compliance officer in headless Chromium, clicking: freeze from the account page, reverse with
four eyes (request as one officer, approve as another), find an account's activity by its number.

Screenshots at 1366 px go to ``artifacts/e2e/`` (gitignored) for a person to look at; every step
asserts what the page shows.
"""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import connections
from django.utils.timezone import now as timezone_now

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from approvals.models import ApprovalRequest
from audit.compliance import GROUP_NAME
from audit.tests.e2e.test_admin_browser import CHROMIUM_ARGS, chromium_path  # noqa: F401  (fixture)
from ledger.models import LedgerAccount
from transactions.models import Transaction
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, funded_account, new_key

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "e2e"


@pytest.fixture
def page_1366(chromium_path, monkeypatch):  # noqa: F811
    playwright_sync = pytest.importorskip("playwright.sync_api")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            browser.close()
            connections.close_all()  # see test_admin_browser: the sync API's thread-local connection


def _officer(email):
    user = UserFactory(email=email, is_staff=True, full_name=email.split("@")[0].title())
    user.groups.add(Group.objects.get(name=GROUP_NAME))
    return user


def _log_in(page, base_url, user):
    page.goto(f"{base_url}/admin/login/")
    page.fill('input[name="username"]', user.email)
    page.fill('input[name="password"]', DEFAULT_PASSWORD)
    page.click('input[type="submit"]')
    # The login page has the header too: wait for the page the login leads to.
    page.wait_for_url(lambda url: "/admin/login" not in url)
    page.wait_for_selector("#site-name")
    assert "/admin/login" not in page.url
    assert "LedgerX back office" in page.inner_text("#site-name")


def _confirm(page, reason, verb):
    page.wait_for_selector("#ledgerx-confirm-form")
    page.fill('textarea[name="reason"]', reason)
    page.click(f'input[type="submit"][value="{verb}"]')
    page.wait_for_selector(".messagelist")


def _shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_compliance_officers_freeze_reverse_with_four_eyes_and_find_activity(live_server, page_1366, settings):
    settings.FOUR_EYES_AMOUNT = {"USD": 100_000}
    base, page = live_server.url, page_1366
    maker, checker = _officer("maker@example.com"), _officer("checker@example.com")
    source, destination = funded_account(amount=300_000), funded_account(amount=0)
    transfer = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=150_000, pin=PIN, idempotency_key=new_key()
    ).transaction

    _log_in(page, base, maker)
    # Freeze from the account page.
    page.goto(f"{base}/admin/ledger/ledgeraccount/{destination.pk}/change/")
    assert page.inner_text("#ledgerx-status") == "Active"
    page.click("#ledgerx-action-freeze_accounts")
    _shot(page, "01-freeze-confirmation")
    _confirm(page, "e2e: account takeover report", "Freeze")
    assert f"Freeze: {destination}" in page.inner_text(".messagelist")
    assert page.inner_text("#ledgerx-status") == "Frozen"
    assert page.locator("#ledgerx-action-unfreeze_accounts").count() == 1
    _shot(page, "02-account-frozen")
    assert LedgerAccount.objects.get(pk=destination.pk).status == "frozen"

    # Reverse from the transaction page: over the threshold, it waits for a second officer.
    page.goto(f"{base}/admin/transactions/transaction/{transfer.pk}/change/")
    page.click("#ledgerx-action-reverse_transactions")
    _confirm(page, "e2e: customer dispute", "Reverse")
    approval = ApprovalRequest.objects.get()
    assert f"approval request {approval.pk}" in page.inner_text(".messagelist")
    assert page.inner_text("#ledgerx-approvals-badge") == "Approvals 1 pending"
    _shot(page, "03-reversal-requested")
    assert Transaction.objects.get(pk=transfer.pk).status == "committed"

    # The maker cannot approve their own request.
    page.goto(f"{base}/admin/approvals/approvalrequest/{approval.pk}/change/")
    page.click("#ledgerx-action-approve_requests")
    _confirm(page, "e2e: my own", "Approve")
    assert "Approve refused for" in page.inner_text(".messagelist .error")
    page.click("#logout-form button")
    page.wait_for_url("**/admin/logout/**")

    # The checker approves from the queue reached by the badge.
    _log_in(page, base, checker)
    page.click("#ledgerx-approvals-badge")
    page.wait_for_url("**/approvals/approvalrequest/?status=pending")
    assert "e2e: customer dispute" in page.inner_text("#result_list")
    _shot(page, "04-approvals-queue")
    page.click(f'#result_list a[href*="{approval.pk}"]')
    page.click("#ledgerx-action-approve_requests")
    _confirm(page, "e2e: dispute evidence checked", "Approve")
    assert "Approve:" in page.inner_text(".messagelist .success")
    assert page.inner_text("#ledgerx-status") == "Approved"
    _shot(page, "05-approved")
    reversal = Transaction.objects.get(reverses=transfer)
    assert Transaction.objects.get(pk=transfer.pk).status == "reversed"
    source.refresh_from_db(), destination.refresh_from_db()
    assert (source.posted, destination.posted) == (300_000, 0)

    # Find the account's activity by its number.
    page.goto(f"{base}/admin/audit/auditrecord/")
    page.fill("#searchbar", destination.number)
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    listing = page.inner_text("#result_list")
    assert "Account Frozen" in listing and "Transaction Reversed" in listing and "Transfer Created" in listing
    assert "UTC" in listing  # times with seconds, in UTC, said so
    assert str(reversal.pk) in listing
    _shot(page, "06-activity-by-number")


def _no_horizontal_scroll(page):
    """At 1366 px every column shows: neither the page nor a table's box scrolls sideways (nothing hidden to the right)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"page is {width} px wide"
    clipped = page.evaluate(
        "Array.from(document.querySelectorAll('.results, table, svg'))"
        ".filter(el => el.scrollWidth > el.clientWidth + 1 || el.getBoundingClientRect().right > 1366)"
        ".map(el => (el.id || el.className.baseVal || el.className) + ':' + el.scrollWidth + '>' + el.clientWidth)"
    )
    assert clipped == [], clipped


def test_an_officer_finds_an_account_by_number_prefix_reads_its_timeline_and_exports_a_list(live_server, page_1366):
    from audit.models import AuditAction, AuditRecord
    from ledger.services.customer_accounts import account_freeze

    base, page = live_server.url, page_1366
    officer = _officer("officer@example.com")
    source, destination = funded_account(amount=50_000), funded_account(amount=2_500)
    transfer = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=12_345, pin=PIN, idempotency_key=new_key()
    ).transaction
    account_freeze(actor=officer, account=destination, reason="e2e: sanctions screening hit")

    _log_in(page, base, officer)
    # Find the account by the start of its number.
    page.goto(f"{base}/admin/ledger/ledgeraccount/")
    assert "account number or its start" in page.inner_text("#changelist-search")
    page.fill("#searchbar", destination.number[:9])
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    assert destination.number in page.inner_text("#result_list")
    _shot(page, "07-accounts-by-number-prefix")
    _no_horizontal_scroll(page)

    # Its page: balances, statement, and History opens its activity timeline.
    page.click(f'#result_list a:text-is("{destination.number}")')
    page.wait_for_selector("#ledgerx-statement")
    assert "148.45 USD" in page.inner_text("#ledgerx-statement")  # 25.00 + 123.45, the balance after the transfer
    _shot(page, "08-account-page")
    _no_horizontal_scroll(page)
    page.click("a.historylink")
    page.wait_for_selector("#ledgerx-timeline")
    timeline = page.inner_text("#ledgerx-timeline")
    assert "Account Frozen" in timeline and "e2e: sanctions screening hit" in timeline
    assert "Transfer" in timeline and "123.45 USD" in timeline and "148.45 USD" in timeline
    assert str(transfer.pk) in timeline and "officer@example.com" in timeline
    assert page.locator(f'#ledgerx-timeline a[href*="{transfer.pk}"]').count() >= 1
    _shot(page, "09-account-timeline")
    _no_horizontal_scroll(page)

    # Export a filtered list: the deposits.
    page.goto(f"{base}/admin/transactions/transaction/?type__exact=deposit")
    page.wait_for_selector("#result_list")
    _shot(page, "10-deposits-list")
    _no_horizontal_scroll(page)
    with page.expect_download() as download_info:
        page.click("#ledgerx-export-csv")
    content = Path(download_info.value.path()).read_text()
    lines = content.strip().splitlines()
    assert lines[0].startswith("Id,Type,Status,Amount,")
    assert len(lines) == 1 + 2 and all(",deposit," in line.lower() for line in lines[1:])
    assert any("500.00 USD" in line for line in lines[1:]) and any("25.00 USD" in line for line in lines[1:])
    record = AuditRecord.objects.get(action=AuditAction.ADMIN_EXPORT)
    assert (record.actor_id, record.data["query"], record.data["rows"]) == (officer.pk, {"type__exact": "deposit"}, 2)

    page.goto(f"{base}/admin/audit/dashboard/")
    page.wait_for_selector("#ledgerx-count-chart")
    assert "e2e: sanctions screening hit" in page.inner_text("#ledgerx-recent-actions")
    _shot(page, "11-dashboard")
    _no_horizontal_scroll(page)


def test_every_list_and_object_page_shows_all_its_columns_at_1366_px(live_server, page_1366, settings):
    """Each list the back office registers, and the first object's page, with realistic rows."""
    from django.contrib import admin
    from django.urls import reverse

    from accounts.tests.factories import AdminFactory
    from approvals.services import transaction_reverse_requested
    from events.models import WebhookEndpoint
    from ledger.services.customer_accounts import account_freeze
    from transactions.services.reversals import transaction_reverse

    settings.FOUR_EYES_AMOUNT = {"USD": 100_000}
    base, page = live_server.url, page_1366
    chief = AdminFactory(email="chief.compliance.officer@example.com", full_name="Chief Compliance Officer")
    source = funded_account(amount=900_000_00)
    destination = funded_account(amount=12_345_67)
    small = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=1_234_56, pin=PIN, idempotency_key=new_key(),
        description="Invoice 2026-11 for consulting services, second instalment",
    ).transaction
    large = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=250_000_00, pin=PIN, idempotency_key=new_key()
    ).transaction
    transfer_create(
        actor=source.owner, source=source, destination=destination, amount=99_00, pin=PIN, idempotency_key=new_key(), hold=True
    )
    transaction_reverse(actor=chief, transaction=small, reason="duplicate payment reported by the customer's bank")
    transaction_reverse_requested(actor=chief, transaction=large, reason="suspected account takeover")
    account_freeze(actor=chief, account=destination, reason="sanctions screening hit, pending review")
    WebhookEndpoint.objects.create(
        owner=source.owner, url="https://hooks.example-customer-with-a-long-domain.com/ledgerx/webhooks/v1",
        secret_nonce="n", failing_since=timezone_now(),
    )

    _log_in(page, base, chief)
    checked = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        try:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        except Exception:  # noqa: BLE001 - a model admin without a list
            continue
        page.goto(base + url)
        page.wait_for_selector("#content")
        name = f"20-list-{opts.app_label}-{opts.model_name}"
        _shot(page, name)
        _no_horizontal_scroll(page)
        first = page.locator("#result_list tbody tr th a, #result_list tbody tr td a").first
        if page.locator("#result_list").count() and first.count():
            first.click()
            page.wait_for_selector("#content")
            _shot(page, name.replace("list", "page"))
            _no_horizontal_scroll(page)
        checked.append(opts.label_lower)
    assert {"ledger.ledgeraccount", "accounts.user", "transactions.transaction", "audit.auditrecord",
            "approvals.approvalrequest", "events.webhookendpoint"} <= set(checked)
    for path in ("/admin/", f"/admin/activity/?q={destination.number}", f"/admin/activity/?q={source.owner.email}",
                 f"/admin/activity/?q={large.pk}", "/admin/audit/dashboard/?days=90"):
        page.goto(base + path)
        page.wait_for_selector("#content")
        _shot(page, "21-" + re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[:60])
        _no_horizontal_scroll(page)
        if path == "/admin/":  # the index's links read on one line each (not one letter per line)
            for link in ("Dashboard", "Activity"):
                box = page.locator(f'#ledgerx-dashboard-link th a:text-is("{link}")').bounding_box()
                assert box["height"] < 30 and box["width"] > 40, (link, box)
