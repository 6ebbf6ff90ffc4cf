"""The FX pools split into ``settings.LEDGER_FX_POOL_SHARDS`` rows in the databases made with fewer.

New currencies get their shards when their first account opens
(``ledger.services.system_accounts_ensure``); the currencies that have system
accounts already get the pool shards they are missing here, named as that
function names them, so conversions spread over all of them from the start.
"""

from django.conf import settings
from django.db import migrations


def pool_shards_add(apps, schema_editor):
    LedgerAccount = apps.get_model("ledger", "LedgerAccount")
    count = max(1, settings.LEDGER_FX_POOL_SHARDS)
    currencies = LedgerAccount.objects.filter(kind="system").values_list("currency", flat=True).distinct()
    for currency in sorted(set(currencies)):
        existing = set(
            LedgerAccount.objects.filter(kind="system", system_role="fx_pool", currency=currency).values_list("shard", flat=True)
        )
        LedgerAccount.objects.bulk_create(
            LedgerAccount(
                kind="system", system_role="fx_pool", shard=shard, currency=currency,
                number=f"SYS-{currency}-FX-{shard:02d}", name=f"System fx_pool {currency} #{shard}",
            )
            for shard in range(count)
            if shard not in existing
        )


class Migration(migrations.Migration):
    dependencies = [
        ("fx", "0002_quote_created_index"),
        ("ledger", "0005_fx_pool_role"),
    ]

    operations = [migrations.RunPython(pool_shards_add, migrations.RunPython.noop)]
