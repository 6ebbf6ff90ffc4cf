"""End to end: a real headless Chromium drives the Django admin served by ``live_server``.

Log in, freeze an account and reverse a transaction through the action menus
and the reason confirmation pages, exactly as an operator would.
"""

import os
import subprocess
from pathlib import Path

import pytest
from django.db import connections

from accounts.tests.factories import DEFAULT_PASSWORD, AdminFactory
from audit.models import AuditAction, AuditRecord
from ledger.models import LedgerAccount
from transactions.models import Transaction
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, funded_account, new_key

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
INSTALLER = Path(__file__).resolve().parents[3] / "scripts" / "install-browser"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium, installed by scripts/install-browser when missing (never `playwright install`)."""
    if not os.path.exists(CHROMIUM):
        result = subprocess.run(["bash", str(INSTALLER)], capture_output=True, text=True, timeout=900)
        if result.returncode != 0 or not os.path.exists(CHROMIUM):
            pytest.fail(f"could not install chromium: {result.stderr[-2000:]}")
    return CHROMIUM


@pytest.fixture
def browser_page(chromium_path, monkeypatch):
    playwright_sync = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM
    # calls between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            browser.close()


def _run_action(page, *, changelist_url: str, pk, action: str, reason: str, verb: str) -> None:
    page.goto(changelist_url)
    page.check(f'input[name="_selected_action"][value="{pk}"]')
    page.select_option('select[name="action"]', action)
    page.click('button[name="index"]')
    # The confirmation page: the browser itself refuses to submit it without a reason
    # (the server refuses too: see the admin tests).
    page.wait_for_selector("#ledgerx-confirm-form")
    page.click(f'input[type="submit"][value="{verb}"]')
    assert page.locator('textarea[name="reason"]').evaluate("el => el.validity.valueMissing") is True
    assert page.locator("#ledgerx-confirm-form").count() == 1
    page.fill('textarea[name="reason"]', reason)
    page.click(f'input[type="submit"][value="{verb}"]')
    page.wait_for_selector(".messagelist .success")


def test_operator_logs_in_freezes_an_account_and_reverses_a_transaction(live_server, browser_page):
    try:
        _operator_session(live_server.url, browser_page)
    finally:
        # Django's connections are context-local, and under Playwright's sync
        # API the ORM calls of this body get a connection of their own that
        # pytest-django's teardown does not see. Left open, it keeps the test
        # database from being dropped at the end of the run.
        connections.close_all()


def _operator_session(base_url: str, page) -> None:
    admin = AdminFactory(email="operator@example.com")
    source, destination = funded_account(amount=9000), funded_account(amount=0)
    transfer = transfer_create(
        actor=source.owner, source=source, destination=destination, amount=4000, pin=PIN, idempotency_key=new_key()
    ).transaction

    page.goto(f"{base_url}/admin/login/")
    page.fill('input[name="username"]', admin.email)
    page.fill('input[name="password"]', DEFAULT_PASSWORD)
    page.click('input[type="submit"]')
    page.wait_for_selector("#site-name")
    assert "/admin/login" not in page.url

    _run_action(
        page, changelist_url=f"{base_url}/admin/ledger/ledgeraccount/", pk=source.pk,
        action="freeze_accounts", reason="e2e: suspicious activity", verb="Freeze",
    )
    assert f"Freeze: {source}" in page.inner_text(".messagelist")
    assert LedgerAccount.objects.get(pk=source.pk).status == "frozen"

    _run_action(
        page, changelist_url=f"{base_url}/admin/transactions/transaction/", pk=transfer.pk,
        action="reverse_transactions", reason="e2e: sent in error", verb="Reverse",
    )
    assert Transaction.objects.get(pk=transfer.pk).status == "reversed"
    reversal = Transaction.objects.get(reverses=transfer)
    assert (reversal.type, reversal.amount, reversal.initiated_by_id) == ("reversal", 4000, admin.pk)
    source.refresh_from_db()
    destination.refresh_from_db()
    assert (source.posted, destination.posted) == (9000, 0)

    records = {
        record.action: record for record in AuditRecord.objects.filter(actor=admin)
    }
    assert records[AuditAction.ACCOUNT_FROZEN].data["reason"] == "e2e: suspicious activity"
    assert records[AuditAction.TRANSACTION_REVERSED].data["reason"] == "e2e: sent in error"
    # Requests from the browser carry a request id into the audit trail.
    assert records[AuditAction.ACCOUNT_FROZEN].request_id

    page.goto(f"{base_url}/admin/audit/dashboard/")
    page.wait_for_selector("#ledgerx-dashboard")
    assert "e2e: sent in error" in page.inner_text("#ledgerx-dashboard")
