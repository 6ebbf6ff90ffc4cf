"""The benchmark's books: 1000 funded USD accounts, one of them the hot one.

999 users each own one ``bench-NNNN`` account; a merchant user owns
``bench-hot``. Every account is opened with ``ledger.services.customer_accounts.account_open`` and
funded with ``transactions.services.money.deposit_create`` (the real write path, so
``verify_ledger`` holds from the start). Users share one precomputed password
hash and one PIN hash (bcrypt cost 12, the production pepper): hashing 1000
times would cost minutes and measure nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

N_ACCOUNTS = 1000
CURRENCY = "USD"
FUNDING = 10**12  # minor units per account: never runs dry at <= 100 per transfer
BENCH_PIN = "4826"
BENCH_PASSWORD = "bench-password-not-secret-42"
HOT_NAME = "bench-hot"


@dataclass
class Books:
    users: dict  # user id -> User
    accounts: list  # the 999 regular LedgerAccounts, ordered by name
    hot: object  # the hot LedgerAccount

    def owner(self, account):
        return self.users[account.owner_id]


def books_create(*, n_accounts: int = N_ACCOUNTS, log=print) -> None:
    from django.conf import settings
    from django.contrib.auth.hashers import make_password

    from accounts.models import User
    from accounts.services import _pin_hash  # the app's own PIN hashing (pepper + bcrypt)
    from ledger.services.customer_accounts import account_open
    from transactions.services.money import deposit_create

    log(f"==> creating {n_accounts} funded {CURRENCY} accounts (bcrypt cost {settings.PIN_BCRYPT_ROUNDS} PIN hash)")
    password_hash = make_password(BENCH_PASSWORD)
    pin_hash = _pin_hash(BENCH_PIN)
    users = [
        User(
            email=f"bench{i:04d}@bench.invalid",
            full_name=f"Bench User {i}",
            password=password_hash,
            pin_hash=pin_hash,
        )
        for i in range(n_accounts)
    ]
    User.objects.bulk_create(users, batch_size=500)
    admin = User.objects.create(
        email="bench-admin@bench.invalid", full_name="Bench Admin", password=password_hash, role=User.Role.ADMIN
    )
    for i, user in enumerate(users):
        name = HOT_NAME if i == n_accounts - 1 else f"bench-{i:04d}"
        account = account_open(actor=admin, owner=user, currency=CURRENCY, name=name)
        deposit_create(actor=user, account=account, amount=FUNDING, idempotency_key=f"bench-fund-{account.pk}")


def books_exist() -> bool:
    from ledger.models import LedgerAccount

    return LedgerAccount.objects.filter(name=HOT_NAME).exists()


def books_load() -> Books:
    from accounts.models import User
    from ledger.models import LedgerAccount

    accounts = list(LedgerAccount.objects.filter(name__startswith="bench-").order_by("name"))
    hot = next(a for a in accounts if a.name == HOT_NAME)
    regular = [a for a in accounts if a.name != HOT_NAME]
    users = {u.pk: u for u in User.objects.filter(pk__in=[a.owner_id for a in accounts])}
    return Books(users=users, accounts=regular, hot=hot)


def new_key() -> str:
    return uuid.uuid4().hex
