"""manage.py seed_demo: demo data for LedgerX, idempotent, from a handful to millions of postings.

Two paths:

* Services (default; used up to ``--bulk-threshold`` transactions): demo users
  registered with known credentials, an account per currency each, and
  deposits, withdrawals, transfers and holds made through the batch engine
  (``transactions.batches``: each user's movements in batches of up to 1000,
  in order, one commit each), then holds committed, voided and left open, a
  few reversals and currency conversions (at demo rates set if missing)
  through their services. Every batch and conversion uses an idempotency key
  derived from its user and position, so running the command again replays
  instead of moving money twice.
* Bulk (``--transactions`` above the threshold): users, accounts, journal
  entries, postings, transactions and audit records are written with
  ``bulk_create`` in batches, each batch in one database transaction that locks
  the accounts it touches (primary-key order) and writes balances from the
  locked values, so ``verify_ledger`` passes and memory stays constant in the
  number of transactions. The bulk path is resumable: it counts the
  transactions it already made (``metadata.seed == "bulk"``) and makes the rest.

Demo PINs (``--pin-rounds``, default 4) and passwords (cost 4) are hashed at
a low bcrypt cost, so registering the demo users and setting their PINs takes
milliseconds, not a quarter of a second per hash; they are demo credentials,
printed on the terminal, never real ones. The first right use of such a PIN
outside the seeder re-hashes it at the configured cost
(``accounts.services.pin_verify``), and the first login re-hashes such a
password (Django's ``check_password`` upgrades a hash whose cost differs).

Progress: a bar on a terminal; otherwise (a log, CI) one line every few
seconds with the count, the rate and an ETA.
"""

import random
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import BCryptSHA256PasswordHasher, make_password
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.db.models import Max
from django.test.utils import override_settings
from django.utils import timezone

from accounts.models import User
from accounts.services import pin_set, user_register
from audit.compliance import GROUP_NAME
from audit.models import AuditAction, AuditPending, AuditRecord
from audit.services.sealing import audit_seal_pending
from ledger.models import JournalEntry, LedgerAccount, Posting
from ledger.services.customer_accounts import account_open
from ledger.services.postings import account_cache_after_commit
from ledger.services.system import system_accounts_ensure
from ledgerx.exceptions import LedgerXError
from ledgerx.ids import uuid7
from fx.models import FxRate
from fx.services import quote_create, rate_set
from transactions.batches import MAX_ITEMS, BatchItem, batch_create
from transactions.models import IdempotencyRecord, Transaction
from transactions.services.holds import hold_commit, hold_void
from transactions.services.money import conversion_create
from transactions.services.reversals import transaction_reverse

DEMO_PASSWORD = "demo-password-2026"
DEMO_PIN = "4826"
ADMIN = ("admin@ledgerx.local", "admin-password-2026")
COMPLIANCE = ("compliance@ledgerx.local", "compliance-password-2026")
BULK_NAMED_USERS = 12
# Demo mid rates (base, quote, mid, spread in bps), set only where the pair has no rate yet.
DEMO_RATES = (("USD", "NGN", "1532.75", 50), ("GBP", "USD", "1.2705", 25), ("EUR", "USD", "1.0842", 25))


class Progress:
    """A dependency-free progress report: a bar on a terminal, else a line every ``interval`` seconds with an ETA."""

    def __init__(self, stream, label: str, total: int, *, interval: float = 3.0, clock=time.monotonic):
        self.stream, self.label, self.total, self.done = stream, label, max(total, 1), 0
        self.interval, self.clock = interval, clock
        self.started = self.last_line = clock()
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self.clock()
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        eta = max(self.total - self.done, 0) / rate if rate else 0.0
        if self.tty:
            filled = int(30 * self.done / self.total)
            self.stream.write(
                f"\r{self.label:<14} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} ({rate:,.0f}/s, ETA {eta:.0f}s)"
            )
            self.stream.flush()
        elif now - self.last_line >= self.interval and self.done < self.total:
            self.last_line = now
            self.stream.write(
                f"{self.label}: {self.done}/{self.total} ({100 * self.done // self.total}%), {rate:,.0f}/s, ETA {eta:.0f}s\n"
            )
            self.stream.flush()

    def close(self) -> None:
        elapsed = self.clock() - self.started
        self.stream.write(("\n" if self.tty else "") + f"{self.label}: {self.done} in {elapsed:.1f}s\n")


class DemoPasswordHasher(BCryptSHA256PasswordHasher):
    """Demo passwords at the seeder's low cost; the first login re-hashes them at the configured one."""

    rounds = 4


class Command(BaseCommand):
    help = "Create idempotent demo data (users, accounts in every currency, transactions of every kind)."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=12, help="Customer users besides the demo ones (default 12).")
        parser.add_argument("--transactions", type=int, default=2000, help="Money movements to make (default 2000).")
        parser.add_argument(
            "--bulk-threshold", type=int, default=20_000,
            help="Above this many transactions, use the bulk path (default 20000).",
        )
        parser.add_argument("--batch", type=int, default=2000, help="Bulk path: transactions per database transaction.")
        parser.add_argument("--pin-rounds", type=int, default=4, help="bcrypt cost of the demo PINs (default 4).")
        parser.add_argument("--seed", type=int, default=2026, help="Random seed (same seed, same data).")

    def handle(self, *args, **options):
        self.rng = random.Random(options["seed"])
        self.currencies = sorted(settings.CURRENCIES)
        bulk = options["transactions"] > options["bulk_threshold"]
        # The bulk path registers only the named demo users through the services
        # (each pays a cost-12 bcrypt password hash); the rest are bulk rows.
        named = min(options["users"], BULK_NAMED_USERS) if bulk else options["users"]
        demo_hashers = [f"{__name__}.DemoPasswordHasher", *settings.PASSWORD_HASHERS]
        with override_settings(PIN_BCRYPT_ROUNDS=options["pin_rounds"], PASSWORD_HASHERS=demo_hashers):
            admin, customers = self._people(named)
        if bulk:
            # --users counts every customer: the named ones plus the bulk rows.
            self._bulk(users=max(options["users"] - named, 0), total=options["transactions"], batch=options["batch"])
        else:
            accounts = self._accounts(customers)
            self._movements(admin=admin, accounts=accounts, total=options["transactions"])
        sealed = audit_seal_pending(wait=True)
        self.stdout.write(f"audit records sealed: {sealed}")
        self._credentials(len(customers))

    # --- people and accounts (services) ------------------------------------------------

    def _people(self, count: int) -> tuple[User, list[User]]:
        call_command("demo_users", stdout=open("/dev/null", "w"))  # demo@ / admin@ with the documented passwords
        admin = User.objects.get(email__iexact=ADMIN[0])
        compliance = User.objects.filter(email__iexact=COMPLIANCE[0]).first()
        if compliance is None:
            compliance = user_register(email=COMPLIANCE[0], password=COMPLIANCE[1], full_name="Demo Compliance Officer")
            compliance.is_staff = True
            compliance.save(update_fields=["is_staff"])
        compliance.groups.add(Group.objects.get(name=GROUP_NAME))
        emails = ["demo@ledgerx.local"] + [f"customer{index:03d}@ledgerx.local" for index in range(1, count + 1)]
        progress = Progress(self.stdout, "users", len(emails))
        customers = []
        for index, email in enumerate(emails):
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                user = user_register(email=email, password=DEMO_PASSWORD, full_name=f"Demo Customer {index}")
            if not user.pin_set:
                password = _demo_user_password() if email == "demo@ledgerx.local" else DEMO_PASSWORD
                pin_set(user=user, pin=DEMO_PIN, password=password)
            customers.append(user)
            progress.advance()
        progress.close()
        return admin, customers

    def _accounts(self, customers: list[User]) -> list[LedgerAccount]:
        progress = Progress(self.stdout, "accounts", len(customers) * len(self.currencies))
        accounts = []
        for user in customers:
            have = {account.currency: account for account in LedgerAccount.objects.filter(owner=user)}
            for currency in self.currencies:
                account = have.get(currency) or account_open(actor=user, owner=user, currency=currency, name=f"{currency} wallet")
                accounts.append(account)
                progress.advance()
        progress.close()
        return accounts

    # --- movements (services) ----------------------------------------------------------------

    def _movements(self, *, admin: User, accounts: list[LedgerAccount], total: int) -> None:
        plan = self._plan(accounts, total)
        counts = {"deposit": 0, "withdrawal": 0, "transfer": 0, "hold": 0, "refused": 0}
        holds: list[Transaction] = []
        transfers: list[Transaction] = []
        progress = Progress(self.stdout, "transactions", total)
        owners = {account.owner_id: account.owner for account in accounts}
        for owner_id, items in plan.items():
            for chunk_index, first in enumerate(range(0, len(items), MAX_ITEMS)):
                chunk = items[first : first + MAX_ITEMS]
                outcome = batch_create(
                    actor=owners[owner_id], items=chunk, atomic=False, pin=DEMO_PIN,
                    idempotency_key=f"seed-{owners[owner_id].email}-{chunk_index}",
                )
                by_id = {str(txn.pk): txn for txn in Transaction.objects.filter(batch=outcome.batch)}
                for item, result in zip(chunk, outcome.body["results"]):
                    if result["status"] != "ok":
                        # Only when the data changed outside this command (e.g. a demo
                        # user moved money through the API): that item wrote nothing.
                        counts["refused"] += 1
                        continue
                    kind = "hold" if item.hold else item.type
                    counts[kind] += 1
                    if item.type == Transaction.Type.TRANSFER:
                        # Listed by kind, not by current status: on a rerun the replayed
                        # transactions may be reversed or finished already, and the picks
                        # below must not shift.
                        (holds if item.hold else transfers).append(by_id[result["transaction"]["id"]])
                progress.advance(len(chunk))
        progress.close()
        holds.sort(key=lambda txn: txn.pk)
        transfers.sort(key=lambda txn: txn.pk)
        self._finish_holds(holds)
        self._reversals(admin, transfers)
        by_currency: dict[str, list[LedgerAccount]] = {}
        for account in accounts:
            by_currency.setdefault(account.currency, []).append(account)
        counts["conversion"] = self._conversions(admin, by_currency)
        self.stdout.write(
            "movements: " + ", ".join(f"{name} {count}" for name, count in counts.items())
        )

    def _plan(self, accounts: list[LedgerAccount], total: int) -> dict:
        """Each owner's movements, in order: {owner id: [BatchItem, ...]}.

        Decisions come from the RNG and a simulated available balance (from
        zero), never from the database: a second run makes the same choices and
        the same batches with the same idempotency keys, so everything replays
        and nothing moves. Only an account's own deposits count towards what it
        may spend (money it receives does not), so the owners' batches can run
        in any order and each item still finds the money it was planned with.
        """
        by_currency: dict[str, list[LedgerAccount]] = {}
        for account in accounts:
            by_currency.setdefault(account.currency, []).append(account)
        available: dict = {account.pk: 0 for account in accounts}
        plan: dict = {}
        for index in range(total):
            if index < len(accounts):  # fund every account first
                account, roll = accounts[index], 0.0
            else:
                account, roll = self.rng.choice(accounts), self.rng.random()
            amount = self.rng.randint(1, 500) * 100 + self.rng.randint(0, 99)
            if roll >= 0.35 and available[account.pk] < amount:
                roll = 0.0  # not enough (simulated) money: deposit instead
            if roll < 0.35:
                item = BatchItem(type=Transaction.Type.DEPOSIT, account=account.pk, amount=amount * 3)
                available[account.pk] += amount * 3
            elif roll < 0.5:
                item = BatchItem(type=Transaction.Type.WITHDRAWAL, account=account.pk, amount=amount)
                available[account.pk] -= amount
            else:
                destination = self.rng.choice([other for other in by_currency[account.currency] if other.pk != account.pk])
                item = BatchItem(
                    type=Transaction.Type.TRANSFER, source_account=account.pk, destination_account=destination.pk,
                    amount=amount, description=f"demo transfer {index}", hold=roll >= 0.9,
                )
                available[account.pk] -= amount
            plan.setdefault(account.owner_id, []).append(item)
        return plan

    def _finish_holds(self, holds: list[Transaction]) -> None:
        """Commit half of the holds, void a quarter, leave the rest open (they show on the dashboard)."""
        for index, hold in enumerate(holds):
            hold.refresh_from_db()
            if hold.status != Transaction.Status.PENDING or index % 4 == 3:
                continue
            try:
                finish = hold_commit if index % 4 in (0, 1) else hold_void
                finish(actor=hold.source_account.owner, transaction=hold)
            except LedgerXError:
                pass  # e.g. the account was frozen meanwhile; the hold stays open

    def _reversals(self, admin: User, transfers: list[Transaction]) -> None:
        """A few reversals by the demo admin (skipped when already reversed on an earlier run)."""
        for txn in transfers[:: max(1, len(transfers) // 3)][:3]:
            txn.refresh_from_db()
            if txn.status != Transaction.Status.COMMITTED:
                continue
            try:
                transaction_reverse(actor=admin, transaction=txn, reason="demo: customer dispute")
            except LedgerXError:
                pass  # the receiver already spent it: the service refuses, as it should

    def _conversions(self, admin: User, by_currency: dict) -> int:
        """One conversion per customer from their USD wallet to their NGN one (a tenth of its balance).

        Idempotent like the rest: a conversion whose key is bound already is
        skipped (a new quote would make the replay a different request).
        """
        for base, quote, mid, spread in DEMO_RATES:
            if {base, quote} <= set(self.currencies) and not FxRate.objects.filter(base__in=(base, quote), quote__in=(base, quote)).exists():
                rate_set(actor=admin, base=base, quote=quote, mid=mid, spread_bps=spread, source="seed_demo")
        naira = {account.owner_id: account for account in by_currency.get("NGN", [])}
        made = 0
        for source in by_currency.get("USD", []):
            destination = naira.get(source.owner_id)
            key = f"seed-fx-{source.pk}"
            if destination is None or IdempotencyRecord.objects.filter(user=source.owner, endpoint="conversions", key=key).exists():
                continue
            source.refresh_from_db()
            if source.available < 10:
                continue
            try:
                offer = quote_create(actor=source.owner, source_currency="USD", destination_currency="NGN",
                                     source_amount=source.available // 10)
                conversion_create(actor=source.owner, quote_id=offer.pk, source=source, destination=destination,
                                  pin=DEMO_PIN, idempotency_key=key, description="demo conversion")
            except LedgerXError:
                continue  # e.g. a frozen wallet, or a stale rate nobody refreshed
            made += 1
        return made

    # --- bulk path -----------------------------------------------------------------------------

    def _bulk(self, *, users: int, total: int, batch: int) -> None:
        for currency in self.currencies:
            system_accounts_ensure(currency=currency)
        accounts_by_currency = self._bulk_people(users)
        if not any(len(ids) >= 2 for ids in accounts_by_currency.values()):
            self.stdout.write("bulk: needs at least 2 bulk accounts in one currency; raise --users")
            return
        done = Transaction.objects.filter(metadata__seed="bulk").count()
        if done >= total:
            self.stdout.write(f"bulk: {done} seeded transactions already present; nothing to do")
            return
        start = timezone.now() - timedelta(days=30)
        latest = Posting.objects.aggregate(latest=Max("created_at"))["latest"]
        if latest and latest > start:
            start = latest
        step = (timezone.now() - start) / max(total - done, 1)
        progress = Progress(self.stdout, "bulk txns", total - done)
        index = 0
        while done < total:
            size = min(batch, total - done)
            self._bulk_batch(accounts_by_currency, size, at=start + step * index, step=step)
            done += size
            index += size
            progress.advance(size)
            audit_seal_pending(wait=True)
        progress.close()

    def _bulk_people(self, count: int) -> dict[str, list]:
        """Bulk users ``bulk{n}@ledgerx.local`` (same demo password and PIN), one account each."""
        from accounts.services import _pin_hash

        password_hash = make_password(DEMO_PASSWORD)
        with override_settings(PIN_BCRYPT_ROUNDS=4):
            pin_hash = _pin_hash(DEMO_PIN)
        existing = User.objects.filter(email__startswith="bulk", email__endswith="@ledgerx.local").count()
        progress = Progress(self.stdout, "bulk users", max(count - existing, 0))
        for first in range(existing, count, 5000):
            with transaction.atomic():
                new_users = [
                    User(email=f"bulk{n:07d}@ledgerx.local", full_name=f"Bulk Customer {n}", password=password_hash, pin_hash=pin_hash)
                    for n in range(first, min(first + 5000, count))
                ]
                User.objects.bulk_create(new_users)
                LedgerAccount.objects.bulk_create(
                    [
                        LedgerAccount(
                            owner=user, currency=self.currencies[n % len(self.currencies)], name="bulk wallet",
                            number=_bulk_number(n), kind=LedgerAccount.Kind.CUSTOMER,
                        )
                        for n, user in enumerate(new_users, start=first)
                    ]
                )
            progress.advance(len(new_users))
        progress.close()
        result: dict[str, list] = {}
        # Only accounts that may move money: a rerun must not move a frozen account or a suspended user's.
        for pk, currency in LedgerAccount.objects.filter(
            kind=LedgerAccount.Kind.CUSTOMER, owner__email__startswith="bulk",
            status=LedgerAccount.Status.ACTIVE, owner__status=User.Status.ACTIVE,
        ).values_list("pk", "currency").iterator(chunk_size=10_000):
            result.setdefault(currency, []).append(pk)
        return result

    def _bulk_batch(self, accounts_by_currency: dict[str, list], size: int, *, at, step) -> None:
        """One database transaction: lock the touched accounts, then write ``size`` movements."""
        currency = self.rng.choice([code for code, ids in accounts_by_currency.items() if len(ids) >= 2])
        pool = accounts_by_currency[currency]
        chosen = self.rng.sample(pool, min(len(pool), max(2, size // 2)))
        with transaction.atomic():
            shards = list(
                LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SYSTEM, currency=currency, shard=0).values_list("pk", flat=True)
            )
            locked = {
                account.pk: account
                for account in LedgerAccount.objects.select_for_update().filter(pk__in=chosen + shards).order_by("pk")
            }
            funding = next(a for a in locked.values() if a.system_role == LedgerAccount.SystemRole.FUNDING)
            payouts = next(a for a in locked.values() if a.system_role == LedgerAccount.SystemRole.PAYOUTS)
            entries, lines_of, txns, records = [], [], [], []
            for offset in range(size):
                when = at + step * offset
                source = locked[self.rng.choice(chosen)]
                amount = self.rng.randint(100, 50_000)
                roll = self.rng.random()
                if roll < 0.4 or source.available < amount:  # open holds stay covered
                    kind, lines, src, dst = "deposit", [(funding, -amount), (source, amount)], None, source
                elif roll < 0.6:
                    kind, lines, src, dst = "withdrawal", [(source, -amount), (payouts, amount)], source, None
                else:
                    destination = source
                    while destination.pk == source.pk:  # chosen has >= 2 accounts
                        destination = locked[self.rng.choice(chosen)]
                    kind, lines, src, dst = "transfer", [(source, -amount), (destination, amount)], source, destination
                txn_id = uuid7()
                entry = JournalEntry(ref_type=kind, ref_id=txn_id, created_at=when)
                entries.append(entry)
                for account, delta in lines:
                    account.posted += delta
                    account.version += 1
                    lines_of.append((entry, account, delta, account.posted, when))
                txns.append(
                    Transaction(
                        id=txn_id, type=kind, status=Transaction.Status.COMMITTED, amount=amount, currency=currency,
                        source_account=src, destination_account=dst, description=f"bulk demo {kind}",
                        metadata={"seed": "bulk"}, entry=entry, created_at=when, committed_at=when,
                    )
                )
                action = {"deposit": AuditAction.DEPOSIT_CREATED, "withdrawal": AuditAction.WITHDRAWAL_CREATED,
                          "transfer": AuditAction.TRANSFER_CREATED}[kind]
                records.append(
                    AuditRecord(at=when, actor_id=(src or dst).owner_id, action=action, target_type="transaction",
                                target_id=str(txn_id), data={"amount": amount, "currency": currency, "seed": "bulk"})
                )
            # Ids come back from the INSERT (RETURNING) in row order, so each
            # account's postings get increasing ids in the order of their
            # balance_after values, which is what verify_ledger checks.
            JournalEntry.objects.bulk_create(entries)
            Posting.objects.bulk_create(
                [
                    Posting(entry=entry, account=account, currency=currency, amount=delta, balance_after=after, created_at=when)
                    for entry, account, delta, after, when in lines_of
                ]
            )
            Transaction.objects.bulk_create(txns)
            AuditRecord.objects.bulk_create(records)
            AuditPending.objects.bulk_create([AuditPending(record=record) for record in records])
            _balances_write(list(locked.values()))
            account_cache_after_commit(list(locked.values()))

    # --- output --------------------------------------------------------------------------------

    def _credentials(self, customers: int) -> None:
        self.stdout.write("")
        self.stdout.write("Demo credentials (demo data only):")
        self.stdout.write(f"  admin (API role admin, /admin/ superuser): {ADMIN[0]} / {ADMIN[1]}")
        self.stdout.write(f"  compliance officer (/admin/, Compliance group): {COMPLIANCE[0]} / {COMPLIANCE[1]}")
        self.stdout.write(f"  customer: demo@ledgerx.local / {_demo_user_password()}  PIN {DEMO_PIN}")
        self.stdout.write(
            f"  {customers - 1} more customers: customer001..customer{customers - 1:03d}@ledgerx.local / {DEMO_PASSWORD}  PIN {DEMO_PIN}"
        )


def _demo_user_password() -> str:
    from accounts.management.commands.demo_users import DEMO_USERS

    return next(spec["password"] for spec in DEMO_USERS if not spec["admin"])


def _balances_write(accounts: list[LedgerAccount]) -> None:
    """The batch's new balances in one UPDATE (the rows are locked by the batch's transaction).

    Django's ``bulk_update`` builds a CASE branch per row, which PostgreSQL
    plans slowly for thousands of rows; ``UPDATE ... FROM (VALUES ...)`` does not.
    """
    if connection.vendor != "postgresql":
        LedgerAccount.objects.bulk_update(accounts, ["posted", "version"])
        return
    table = connection.ops.quote_name(LedgerAccount._meta.db_table)
    values = ", ".join(["(%s::uuid, %s::bigint, %s::bigint)"] * len(accounts))
    params = [value for account in accounts for value in (account.pk, account.posted, account.version)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS a SET posted = v.posted, version = v.version "
            f"FROM (VALUES {values}) AS v(id, posted, version) WHERE a.id = v.id",
            params,
        )


def _bulk_number(n: int) -> str:
    """Bulk account numbers: "8" + the bulk index + a Luhn digit (unique, and never a random service number's
    collision risk at millions of rows)."""
    from ledger.services.customer_accounts import _luhn_digit

    body = f"8{n:010d}"
    return body + _luhn_digit(body)
