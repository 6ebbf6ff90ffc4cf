"""The FX pools' own shard count: new currencies get it, the migration gives it to pools made with fewer."""

import importlib

import pytest
from django.apps import apps

from ledger.models import LedgerAccount
from ledger.tests.factories import customer_account

pytestmark = pytest.mark.django_db

migration = importlib.import_module("fx.migrations.0003_fx_pool_shards")


def _pools(currency):
    return LedgerAccount.objects.filter(kind="system", system_role="fx_pool", currency=currency).order_by("shard")


def test_the_migration_adds_the_pool_shards_a_currency_is_missing_named_as_new_ones_are(settings):
    settings.LEDGER_FX_POOL_SHARDS = 8
    customer_account(currency="NGN")
    assert _pools("NGN").count() == 8
    settings.LEDGER_FX_POOL_SHARDS = 32
    customer_account(currency="GBP")  # a currency opened after the change: the shards as the services name them
    migration.pool_shards_add(apps, None)
    migration.pool_shards_add(apps, None)  # again: nothing more
    assert [(a.shard, a.number, a.name) for a in _pools("NGN")] == [
        (a.shard, a.number.replace("GBP", "NGN"), a.name.replace("GBP", "NGN")) for a in _pools("GBP")
    ]
    assert list(_pools("NGN").values_list("shard", flat=True)) == list(range(32))
    assert LedgerAccount.objects.filter(kind="system", currency="NGN", system_role="funding").count() == 8
    assert not _pools("EUR").exists()  # a currency without accounts gets its shards when it is first used
