"""The database router installed when ``DATABASE_REPLICA_URLS`` names replicas.

It never guesses from the ORM call: a read goes to a replica only inside
``ledgerx.db.replicas.replica_reads`` (which chose the replica, or the primary,
for that one read-only unit of work), and only for the apps whose tables the
read-only views show. Every write, every read outside such a scope (money
movement, anything under a lock, idempotency lookups, the PIN counter,
sessions, migrations) goes to the primary, so nothing that needs the primary
can drift to a replica by a new query someone adds.
"""

from django.db import DEFAULT_DB_ALIAS

from ledgerx.db.replicas import current_read_alias

# The domain apps whose rows the read-only views and admin lists show; Django's
# own tables (sessions, content types, auth permissions) stay on the primary.
REPLICA_APPS = frozenset({"accounts", "ledger", "transactions", "events", "audit", "approvals"})


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints):
        if model._meta.app_label not in REPLICA_APPS:
            return DEFAULT_DB_ALIAS
        return current_read_alias()

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # A replica holds the same rows as the primary.
        return True

    def allow_migrate(self, db, app_label, **hints):
        return db == DEFAULT_DB_ALIAS
