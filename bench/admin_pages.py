"""Back-office pages on long histories: server time of each admin page at 10^6 postings.

Phase E of ``bench.scale``: with the scale database loaded (an account "big"
with 10^6 postings beside 10^3 and 10^6 spread over 200 accounts), each page is
rendered in-process by Django's test client as a logged-in superuser, so the
time is the server's (views, queries, templates) without HTTP or the network.
The pages take turns, one of each per sample (the statement bench's reason:
drift reaches every series alike). Target: p50 <= 300 ms for each.

Pages: the account page of "big" (balances, holds, statement page 1) and its
statement page 50 (reached through the "Older postings" links), its activity
timeline page 1 and page 10 (through "Older"), the owner's user page and
timeline (30 accounts), the lists searched by account-number prefix, by email
prefix and by account number (transactions), the audit trail, and the
dashboard over 90 days (every view's cost, and the very first view's, with no
rollup stored yet). Among 10^5 users (``crowd_user``, one of them): the user list, searched
by an email prefix every user shares, by a narrow one, by a name prefix one
user in ten shares and by a whole email, that user's page and timeline, and
the accounts list searched by an owner's email prefix.
"""

from __future__ import annotations

import re
import statistics
import time
from urllib.parse import quote

SAMPLES = 20
COLD_SAMPLES = 5
TARGET_MS = 300.0
_OLDER = {
    "statement": re.compile(r'href="([^"]+)" id="ledgerx-statement-older"'),
    "timeline": re.compile(r'href="([^"]+)" id="ledgerx-timeline-older"'),
}


def _client():
    from django.test import Client

    from accounts.models import User

    class HttpsClient(Client):
        """Production settings redirect plain HTTP to HTTPS (LEDGERX_SSL_REDIRECT): ask as HTTPS."""

        def get(self, path, *args, **kwargs):
            kwargs.setdefault("secure", True)
            return super().get(path, *args, **kwargs)

    admin = User.objects.filter(email="bench-admin@example.com").first() or User.objects.create_superuser(
        email="bench-admin@example.com", password=None
    )
    client = HttpsClient(HTTP_HOST="localhost")
    client.force_login(admin)
    return client


def _follow(client, path: str, kind: str, pages: int) -> str:
    """The path of page ``pages`` (1-based) reached by following the page's "Older" link."""
    import html

    for _page in range(pages - 1):
        body = client.get(path).content.decode()
        match = _OLDER[kind].search(body)
        if match is None:
            raise RuntimeError(f"{path}: fewer than {pages} pages")
        path = html.unescape(match.group(1))
        if path.startswith("?"):
            path = "/admin/activity/" + path
    return path


def admin_paths(client, account, crowd_user=None) -> dict[str, str]:
    """The pages for ``account`` (and its owner); with ``crowd_user``, the user pages among 10^5 users too."""
    from django.urls import reverse

    change = reverse("admin:ledger_ledgeraccount_change", args=[account.pk])
    activity = f"{reverse('admin:ledgerx_activity')}?q={account.number}"
    owner = account.owner
    users = reverse("admin:accounts_user_changelist")
    crowd = {} if crowd_user is None else {
        "users_list": users,
        "users_by_crowd_email_prefix": f"{users}?q={crowd_user.email[:6]}",  # every crowd user matches
        "users_by_email_prefix_narrow": f"{users}?q={crowd_user.email[:10]}",
        "users_by_name_prefix": f"{users}?q={quote(crowd_user.full_name.split()[0].lower() + ' ')}",  # "grace ": one in ten
        "user_by_email": f"{users}?q={quote(crowd_user.email, safe='@')}",
        "crowd_user_page": reverse("admin:accounts_user_change", args=[crowd_user.pk]),
        "crowd_user_timeline": f"{reverse('admin:ledgerx_activity')}?q={quote(crowd_user.email, safe='@')}",
        "accounts_by_owner_prefix": f"{reverse('admin:ledger_ledgeraccount_changelist')}?q={crowd_user.email[:8]}",
    }
    return {
        "account_page": change,
        "account_statement_page50": _follow(client, change, "statement", 50),
        "account_timeline": activity,
        "account_timeline_page10": _follow(client, activity, "timeline", 10),
        "user_page": reverse("admin:accounts_user_change", args=[owner.pk]),
        "user_timeline": f"{reverse('admin:ledgerx_activity')}?q={owner.email}",
        "accounts_by_number_prefix": f"{reverse('admin:ledger_ledgeraccount_changelist')}?q={account.number[:6]}",
        "users_by_email_prefix": f"{reverse('admin:accounts_user_changelist')}?q={owner.email[:6]}",
        "transactions_of_account": f"{reverse('admin:transactions_transaction_changelist')}?q={account.number}",
        "postings_of_account": f"{reverse('admin:ledger_posting_changelist')}?q={account.number}",
        "audit_trail": reverse("admin:audit_auditrecord_changelist"),
        "dashboard_90d": f"{reverse('admin:audit_dashboard_changelist')}?days=90",
        **crowd,
    }


def _timed(client, name: str, path: str) -> float:
    t0 = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{name} {path}: {response.status_code}")
    return elapsed


def admin_page_latencies(account, *, crowd_user=None, samples: int = SAMPLES, cold_samples: int = COLD_SAMPLES) -> dict:
    """p50/p99 (ms) of each back-office page for ``account`` (and ``crowd_user``); raises unless every page answers 200.

    ``dashboard_90d`` is every view's cost (the page has no cache; its volume
    rollup is carried forward from the view before). ``dashboard_90d_cold``
    deletes the stored rollup first, so it is counted afresh from the rows:
    what the very first view costs (``cold_samples`` of it).
    """
    from django.core.management import call_command

    from backoffice.models import VolumeRollup
    from bench.stats import percentile

    call_command("collectstatic", "--noinput", verbosity=0)  # production settings serve the admin's static files from the manifest
    client = _client()
    paths = admin_paths(client, account, crowd_user)
    times: dict = {name: [] for name in paths}
    for sample in range(2 + samples):  # the first 2 rounds warm up
        for name, path in paths.items():
            elapsed = _timed(client, name, path)
            if sample >= 2:
                times[name].append(elapsed)
    paths["dashboard_90d_cold"] = paths["dashboard_90d"]
    times["dashboard_90d_cold"] = []
    for _sample in range(cold_samples):
        VolumeRollup.objects.all().delete()
        times["dashboard_90d_cold"].append(_timed(client, "dashboard_90d_cold", paths["dashboard_90d"]))
    return {
        name: {"p50_ms": statistics.median(values), "p99_ms": percentile(values, 99), "path": paths[name]}
        for name, values in times.items()
    }
