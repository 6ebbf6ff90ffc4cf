"""``ledgerx_movement_create`` also returns each changed account's status and name.

The account cache (``ledger.balance_cache``) stores an account's whole
changing state at a version -- balances, status and name -- so the account
endpoint can answer from it without a query; a movement's store must then
carry all of it. The function is otherwise unchanged: 0005's docstring
describes its contract, and this is its current text. Deploying: migrate, then
restart the workers (their prepared call expects the old result columns).
"""

import importlib

from django.db import migrations

FORWARD = r"""
-- The result type changes, which CREATE OR REPLACE cannot do.
DROP FUNCTION IF EXISTS ledgerx_movement_create(
    bigint, boolean, uuid, text, boolean, uuid, uuid, uuid, text, bigint, uuid, timestamptz, timestamptz, text, jsonb,
    text, text, text, jsonb, uuid, text, inet, text, jsonb
);
CREATE FUNCTION ledgerx_movement_create(
    p_lock_key bigint,        -- the key's in-flight advisory lock (NULL: none)
    p_unlock boolean,         -- the caller holds p_lock_key at session level: release it once written
    p_actor uuid,
    p_type text,              -- 'deposit' | 'withdrawal' | 'transfer'
    p_hold boolean,           -- transfer only: reserve (pending += amount), no entry
    p_source uuid,            -- customer account paying (NULL for a deposit)
    p_destination uuid,       -- customer account paid (NULL for a withdrawal)
    p_system uuid,            -- the system shard on the other side (deposit/withdrawal), else NULL
    p_currency text,
    p_amount bigint,
    p_txn_id uuid,
    p_now timestamptz,
    p_expires_at timestamptz, -- holds only
    p_description text,
    p_metadata jsonb,
    p_endpoint text,
    p_key text,
    p_fingerprint text,
    p_body jsonb,             -- the 201 response stored for replays
    p_audit_id uuid,          -- NULL: no audit record (used only by the benchmark's audit-off measurement)
    p_audit_action text,
    p_audit_ip inet,
    p_audit_request_id text,
    p_audit_data jsonb
) RETURNS TABLE (entry_id bigint, account_id uuid, posted bigint, pending bigint, version bigint, status text, name text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_user_status text;
    -- %ROWTYPE variables start as all-NULL rows, so "not found" is v_src.id IS NULL.
    v_src ledger_ledgeraccount%ROWTYPE;
    v_dst ledger_ledgeraccount%ROWTYPE;
    v_sys ledger_ledgeraccount%ROWTYPE;
    v_row ledger_ledgeraccount%ROWTYPE;
    v_debit uuid;
    v_credit uuid;
    v_entry bigint;
    v_booked timestamptz;
BEGIN
    -- Same key still running elsewhere? (Succeeds at once if this session holds it.)
    IF p_lock_key IS NOT NULL AND NOT pg_try_advisory_xact_lock(p_lock_key) THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'in_progress';
    END IF;
    INSERT INTO transactions_idempotencyrecord
        (user_id, endpoint, key, fingerprint, response_status, response_body, created_at, transaction_id)
    VALUES (p_actor, p_endpoint, p_key, p_fingerprint, 201, p_body, p_now, p_txn_id)
    ON CONFLICT (user_id, endpoint, key) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'key_bound';
    END IF;

    SELECT u.status INTO v_user_status FROM accounts_user u WHERE u.id = p_actor FOR SHARE;
    IF v_user_status IS DISTINCT FROM 'active' THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'user_suspended';
    END IF;

    -- Rows that need no balance go in BEFORE the accounts are locked: a hot
    -- account's row lock then spans only the lock query, the checks, one
    -- UPDATE, the postings and the commit. (A refusal below rolls them back.)
    IF NOT p_hold THEN
        INSERT INTO ledger_journalentry (ref_type, ref_id, created_at)
        VALUES (p_type, p_txn_id, p_now)
        RETURNING id INTO v_entry;
    END IF;
    INSERT INTO transactions_transaction
        (id, type, status, amount, currency, description, metadata, created_at, committed_at, expires_at,
         source_account_id, destination_account_id, entry_id, initiated_by_id, reverses_id)
    VALUES
        (p_txn_id, p_type, CASE WHEN p_hold THEN 'pending' ELSE 'committed' END, p_amount, p_currency,
         p_description, p_metadata, p_now, CASE WHEN p_hold THEN NULL ELSE p_now END, p_expires_at,
         p_source, p_destination, v_entry, p_actor, NULL);

    IF p_audit_id IS NOT NULL THEN
        INSERT INTO audit_auditrecord (id, at, actor_id, action, target_type, target_id, ip, request_id, data)
        VALUES (p_audit_id, p_now, p_actor, p_audit_action, 'transaction', p_txn_id::text, p_audit_ip,
                p_audit_request_id, p_audit_data);
        INSERT INTO audit_auditpending (record_id) VALUES (p_audit_id);
    END IF;

    FOR v_row IN
        SELECT a.*
          FROM ledger_ledgeraccount a
         WHERE a.id = ANY (ARRAY[p_source, p_destination, p_system])
         ORDER BY a.id
           FOR UPDATE
    LOOP
        IF v_row.id = p_source THEN
            v_src := v_row;
        ELSIF v_row.id = p_destination THEN
            v_dst := v_row;
        ELSE
            v_sys := v_row;
        END IF;
    END LOOP;

    -- Postings are stamped under the locks, with the database clock: on every
    -- account their created_at then follows the order their balance_after was
    -- computed in, which is what balance?as_of= relies on. (p_now is when the
    -- request was taken, before any lock wait.)
    v_booked := clock_timestamp();

    IF (p_source IS NOT NULL AND (v_src.id IS NULL OR v_src.kind <> 'customer'))
       OR (p_destination IS NOT NULL AND (v_dst.id IS NULL OR v_dst.kind <> 'customer')) THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'not_found';
    END IF;
    IF p_system IS NOT NULL AND (v_sys.id IS NULL OR v_sys.kind <> 'system') THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'system_missing';
    END IF;
    IF (p_source IS NOT NULL AND v_src.currency <> p_currency)
       OR (p_destination IS NOT NULL AND v_dst.currency <> p_currency)
       OR (p_system IS NOT NULL AND v_sys.currency <> p_currency) THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'currency_mismatch';
    END IF;
    IF p_source IS NOT NULL AND v_src.status = 'frozen' THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'account_frozen:source';
    END IF;
    IF p_destination IS NOT NULL AND v_dst.status = 'frozen' THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'account_frozen:destination';
    END IF;
    IF p_source IS NOT NULL AND v_src.posted - v_src.pending < p_amount THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'insufficient_funds';
    END IF;

    IF p_hold THEN
        RETURN QUERY
            UPDATE ledger_ledgeraccount a
               SET pending = a.pending + p_amount, version = a.version + 1
             WHERE a.id = p_source
         RETURNING NULL::bigint, a.id, a.posted, a.pending, a.version, a.status::text, a.name::text;
    ELSE
        v_debit := COALESCE(p_source, p_system);
        v_credit := COALESCE(p_destination, p_system);
        -- One UPDATE for both sides; each posting carries the balance its account ends at.
        RETURN QUERY
            WITH changed AS (
                UPDATE ledger_ledgeraccount a
                   SET posted = a.posted + CASE WHEN a.id = v_debit THEN -p_amount ELSE p_amount END,
                       version = a.version + 1
                 WHERE a.id IN (v_debit, v_credit)
             RETURNING a.id, a.kind, a.posted, a.pending, a.version, a.status, a.name
            ), lines AS (
                INSERT INTO ledger_posting (entry_id, account_id, currency, amount, balance_after, created_at)
                SELECT v_entry, c.id, p_currency, CASE WHEN c.id = v_debit THEN -p_amount ELSE p_amount END,
                       c.posted, v_booked
                  FROM changed c
            )
            SELECT v_entry, c.id, c.posted, c.pending, c.version, c.status::text, c.name::text FROM changed c WHERE c.kind = 'customer';
    END IF;

    IF p_unlock THEN
        PERFORM pg_advisory_unlock(p_lock_key);
    END IF;
    RETURN;
END;
$$;
"""



def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        previous = importlib.import_module("transactions.migrations.0005_movement_function")
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(previous.BACKWARD)
            cursor.execute(previous.FORWARD)


class Migration(migrations.Migration):
    dependencies = [("transactions", "0006_alter_transaction_id")]

    operations = [migrations.RunPython(forward, backward)]
