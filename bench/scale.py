"""Long histories: statement pages, verify_ledger time and memory, seeding rate.

Runs on its own database (``ledgerx_bench_scale``), in phases:

A. 200 funded accounts (the real services), 10^5 more users with an empty
   account each (``bench.bulkload.users_load``), 29 more accounts for the
   owner of "big" (30 in all, past any first-20 cut), then bulk-loaded
   deposits (``bench.bulkload``) up to 10^5 postings in total, one account
   ("small") holding 10^3 of them and each of the 29 a few. ``verify_ledger`` is timed, with its peak memory
   (``/usr/bin/time -v``, max RSS of the manage.py process).
B. More deposits up to 10^6 postings in total; ``verify_ledger`` again.
C. One account ("big") gets 10^6 postings. Statement page 1 and page 50
   (``GET accounts/{id}/entries?page_size=20``, page 50 reached through the
   ``next`` cursors) are timed over HTTP against gunicorn for "small" (10^3)
   and "big" (10^6) in the same database state, with the database's plan
   (EXPLAIN ANALYZE of the statement query) for both; the four series'
   requests take turns (``statement_latencies``).
E. The back office's pages for "big" (``bench.admin_pages``): account page,
   statement page 50, activity timeline pages 1 and 10, user page, searched
   lists, dashboard; the user list, its searches and a user's page and
   timeline among the 10^5 users: server time per page, target p50 <= 300 ms.
D. ``manage.py seed_demo`` (its bulk path) makes 10^6 postings on a fresh
   database (``ledgerx_bench_seed``, dropped afterwards): postings/s, peak
   memory, and verify_ledger on the result. BENCH_SEED_POSTINGS changes the
   size; BENCH_SKIP_SEED=1 skips it. Besides the whole command's rate, the rate
   of its bulk phase alone is taken from its "bulk txns: N in S s" line.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench import env

ROOT = Path(__file__).resolve().parent.parent
PAGE_SIZE = 20
SAMPLES = 30


def _count_postings() -> int:
    from ledger.models import Posting

    with __import__("django.db").db.connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {Posting._meta.db_table}")
        return cursor.fetchone()[0]


def verify_ledger_run(db_name: str) -> tuple[bool, float, int, str]:
    """``manage.py verify_ledger`` on ``db_name``: (passed, seconds, max RSS kB, output)."""
    code, seconds, rss_kb, output = _manage(db_name, "verify_ledger", timed=True)
    return code == 0, seconds, rss_kb, output


SEED_DB = os.environ.get("BENCH_SEED_DB", "ledgerx_bench_seed")


def _manage(db_name: str, *args: str, timed: bool = False) -> tuple[int, float, int, str]:
    """Run manage.py on ``db_name`` with production settings: (exit code, seconds, max RSS kB, output)."""
    run_env = dict(os.environ)
    run_env.update(env.production_secrets())
    run_env["DATABASE_URL"] = env.database_url(db_name)
    run_env["DJANGO_SETTINGS_MODULE"] = "ledgerx.settings"
    cmd = [str(ROOT / ".venv" / "bin" / "python"), "manage.py", *args]
    if timed:
        cmd = ["/usr/bin/time", "-v", *cmd]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    output = proc.stdout.strip() or proc.stderr.strip()[-2000:]
    return proc.returncode, seconds, int(match.group(1)) if match else 0, output


def seed_demo_rate(*, postings: int = 10**6, users: int = 1000, log=print) -> dict:
    """Time ``manage.py seed_demo`` (bulk path: 2 postings per transaction) on a fresh database."""
    code, _, _, help_text = _manage(env.BENCH_DB, "seed_demo", "--help")
    if code != 0 or "--transactions" not in help_text:
        log("  seed_demo: not available (no bulk mode); skipped")
        return {"available": False, "summary": "seed_demo has no bulk mode in this commit; not measured"}
    env.database_recreate(SEED_DB)
    code, _, _, output = _manage(SEED_DB, "migrate", "--noinput")
    if code != 0:
        raise RuntimeError(f"migrate on {SEED_DB} failed:\n{output}")
    transactions = postings // 2
    args = ["seed_demo", "--users", str(users), "--transactions", str(transactions), "--batch", "5000"]
    if "--bulk-threshold" in help_text:
        args += ["--bulk-threshold", "0"]  # the bulk path even for --quick's small count
    code, seconds, rss_kb, output = _manage(SEED_DB, *args, timed=True)
    written = int(env.psql(SEED_DB, "SELECT COUNT(*) FROM ledger_posting"))
    bulk = re.search(r"bulk txns: (\d+) in ([0-9.]+)s", output)
    bulk_rate = 2 * int(bulk.group(1)) / float(bulk.group(2)) if bulk and float(bulk.group(2)) > 0 else None
    ok, vsec, vrss, voutput = verify_ledger_run(SEED_DB)
    result = {
        "available": True,
        "command": "manage.py " + " ".join(args),
        "exit_code": code,
        "seconds": seconds,
        "max_rss_kb": rss_kb,
        "postings": written,
        "rate": written / seconds if seconds else 0.0,
        "bulk_phase_postings_per_s": bulk_rate,
        "verify_ok": ok,
        "summary": (
            f"`{' '.join(args)}`: {written:,} postings in {seconds:.1f} s = {written / seconds:,.0f} postings/s, "
            f"max RSS {rss_kb / 1024:.0f} MiB, exit {code}; verify_ledger {'passed' if ok else 'FAILED'}"
            + (f"; bulk phase alone {bulk_rate:,.0f} postings/s" if bulk_rate else "")
        ),
    }
    log(f"  seed_demo: {result['summary']}")
    if code != 0:
        log(output[-1500:])
    env.database_recreate(SEED_DB)  # 10^6 postings of disk back
    return result


def _verify_result(db_name: str, label: str, log) -> dict:
    postings = _count_postings()
    ok, seconds, rss_kb, output = verify_ledger_run(db_name)
    log(f"  verify_ledger at {postings} postings: {'passed' if ok else 'FAILED'} in {seconds:.1f}s, max RSS {rss_kb} kB")
    if not ok:
        log(output)
    return {"label": label, "postings": postings, "ok": ok, "seconds": seconds, "max_rss_kb": rss_kb}


def _statement_explain(account_id, page_size: int) -> dict:
    """EXPLAIN ANALYZE of the statement query for page 1 and page 50 (the cursor is ``id < boundary``)."""
    from django.db import connection

    from ledger.models import LedgerAccount
    from ledger.selectors import account_statement

    account = LedgerAccount.objects.get(pk=account_id)
    base = account_statement(account=account)
    boundary = base.values_list("id", flat=True)[page_size * 49 - 1]
    plans = {}
    for label, qs in (("page1", base[: page_size + 1]), ("page50", base.filter(id__lt=boundary)[: page_size + 1])):
        sql, params = qs.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plans[label] = "\n".join(row[0] for row in cursor.fetchall())
    return plans


def _timed_get(port: int, path: str, token: str) -> float:
    """One GET, in ms; raises HttpFailure unless it answers 200."""
    from bench.http import HttpFailure, request

    t0 = time.perf_counter()
    status, body = request("GET", port, path, token=token)
    elapsed = (time.perf_counter() - t0) * 1000
    if status != 200:
        raise HttpFailure(status, body)
    return elapsed


def _page50_path(port: int, account, token: str) -> str:
    """Statement page 50 of ``account``, reached by following the ``next`` cursors."""
    import json

    from bench.http import HttpFailure, request

    path = f"/api/v1/accounts/{account.pk}/entries?page_size={PAGE_SIZE}"
    for _page in range(49):
        status, body = request("GET", port, path, token=token)
        if status != 200:
            raise HttpFailure(status, body)
        nxt = json.loads(body)["next"]
        if nxt is None:
            raise RuntimeError(f"account {account.pk} has fewer than 50 pages")
        parts = urlsplit(nxt)
        path = f"{parts.path}?{parts.query}"
    return path


def statement_latencies(port: int, accounts: dict, *, samples: int = SAMPLES) -> dict:
    """p50/p99 (ms) of statement page 1 and page 50 over HTTP, for each ``{label: (account, token)}``.

    The requests of all accounts and both pages take turns, one of each per
    sample: the target compares the accounts with each other, and a drift of
    the shared machine then reaches every series alike. (Measured one series
    after the other, page 50 of a 10^6-posting account once came out 1.31 x
    the 10^3 one's while its query ran in 0.08 ms against 0.2 ms.)
    """
    from bench.stats import percentile

    series = {}
    for label, (account, token) in accounts.items():
        first = f"/api/v1/accounts/{account.pk}/entries?page_size={PAGE_SIZE}"
        series[(label, "page1")] = (first, token)
        series[(label, "page50")] = (_page50_path(port, account, token), token)
    times: dict = {key: [] for key in series}
    for sample in range(3 + samples):  # the first 3 rounds warm up
        for key, (path, token) in series.items():
            elapsed = _timed_get(port, path, token)
            if sample >= 3:
                times[key].append(elapsed)
    out: dict = {label: {} for label in accounts}
    for (label, page), values in times.items():
        out[label][f"{page}_p50_ms"] = statistics.median(values)
        out[label][f"{page}_p99_ms"] = percentile(values, 99)
    return out


def run_scale(*, quick: bool = False, log=print) -> dict:
    """All phases; see the module docstring. ``quick`` divides the sizes by 100."""
    from bench.bulkload import deposits_load
    from bench.books import books_create

    div = 100 if quick else 1
    target_a, target_b, big_n, small_n = 10**5 // div, 10**6 // div, 10**6 // div, 10**3
    crowd_n, owner_extra_accounts, extra_deposits = 10**5 // div, 29, 20
    log(f"==> scale: recreating {env.SCALE_DB}")
    env.database_recreate(env.SCALE_DB)
    from django.db import connections

    connections.close_all()
    os.environ["DATABASE_URL"] = env.database_url(env.SCALE_DB)
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = env.SCALE_DB
    from django.core.management import call_command
    from django_redis import get_redis_connection

    call_command("migrate", verbosity=0, interactive=False)
    get_redis_connection("default").flushdb()
    books_create(n_accounts=200, log=log)
    from bench.books import books_load

    books = books_load()
    small, big, others = books.accounts[0], books.accounts[1], books.accounts[2:]
    out: dict = {"loads": [], "verify": [], "statement": {}}

    from accounts.models import User
    from bench.bulkload import users_load
    from ledger.services import account_open

    seconds = users_load(n=crowd_n, password_hash=books.owner(small).password)
    out["users"] = {"loaded": crowd_n, "seconds": seconds, "total": User.objects.count()}
    log(f"  loaded {crowd_n} users with an account each in {seconds:.1f}s ({out['users']['total']} users in all)")
    admin = User.objects.get(email="bench-admin@bench.invalid")
    extra = [
        account_open(actor=admin, owner=books.owner(big), currency=big.currency, name=f"extra-{i:02d}")
        for i in range(owner_extra_accounts)
    ]

    def spread(total_postings_wanted: int, fixed: dict) -> dict:
        have = _count_postings()
        deposits = max(0, (total_postings_wanted - have) // 2 - sum(fixed.values()))
        counts = dict(fixed)
        per, rest = divmod(deposits, len(others))
        for i, account in enumerate(others):
            n = per + (1 if i < rest else 0)
            if n:
                counts[account.pk] = counts.get(account.pk, 0) + n
        return counts

    def load(label: str, counts: dict) -> None:
        postings, seconds = deposits_load(counts=counts)
        out["loads"].append({"label": label, "postings": postings, "seconds": seconds})
        log(f"  loaded {postings} postings ({label}) in {seconds:.1f}s = {postings / seconds:,.0f} postings/s")

    fixed_a = {small.pk: small_n - 1, **{account.pk: extra_deposits for account in extra}}  # small has its funding deposit
    load("A", spread(target_a, fixed_a))
    out["verify"].append(_verify_result(env.SCALE_DB, "A", log))
    load("B", spread(target_b, {}))
    out["verify"].append(_verify_result(env.SCALE_DB, "B", log))
    load("C", {big.pk: big_n - 1})
    out["verify_final"] = _verify_result(env.SCALE_DB, "C", log)

    from rest_framework_simplejwt.tokens import AccessToken

    from bench.http import Server
    from ledger.models import Posting

    with Server(db_name=env.SCALE_DB) as server:
        accounts = {
            label: (account, str(AccessToken.for_user(books.owner(account))))
            for label, account in (("small", small), ("big", big))
        }
        for label, lat in statement_latencies(server.port, accounts).items():
            account = accounts[label][0]
            n = Posting.objects.filter(account=account).count()
            lat["postings"] = n
            lat["explain"] = _statement_explain(account.pk, PAGE_SIZE)
            out["statement"][label] = lat
            log(
                f"  statement {label} ({n} postings): page1 p50 {lat['page1_p50_ms']:.2f} ms, "
                f"page50 p50 {lat['page50_p50_ms']:.2f} ms"
            )
    # E. The back office's pages on the same books (bench.admin_pages): server time, in-process.
    from bench.admin_pages import admin_page_latencies

    crowd_user = User.objects.filter(email__startswith="crowd").order_by("email")[crowd_n // 8]
    out["admin_pages"] = {
        "postings": Posting.objects.filter(account=big).count(),
        "users": User.objects.count(),
        "owner_accounts": len(extra) + 1,
        "pages": admin_page_latencies(big, crowd_user=crowd_user),
    }
    for name, lat in out["admin_pages"]["pages"].items():
        log(f"  admin {name}: p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms")
    if os.environ.get("BENCH_SKIP_SEED") != "1":
        seed_postings = int(os.environ.get("BENCH_SEED_POSTINGS", 10**6 // div))
        try:
            out["seed_demo"] = seed_demo_rate(postings=seed_postings, log=log)
        except Exception as exc:  # noqa: BLE001 - another team's command; the rest of the run stands
            log(f"  seed_demo failed: {exc!r}")
            out["seed_demo"] = {"available": False, "summary": f"seed_demo failed: {exc!r}"[:300]}
    return out
