-- ledgerx_movement_create: ONE call writes one new movement (deposit, withdrawal, transfer or hold).
--
-- The only text of the function. Migrations load frozen copies of it
-- (transactions/migrations/*_movement_function.sql); a test compares the
-- installed function with this file. transactions/engine/postgres.py calls it
-- by named arguments built from its one parameter table.
--
-- The refusals, in the precedence of transactions/engine/codes.py, each a
-- RAISE with SQLSTATE LX000 and the code as message: in_progress, key_bound,
-- user_suspended, not_found (system_missing for a vanished system shard),
-- currency_mismatch, account_frozen:source, account_frozen:destination,
-- insufficient_funds, balance_limit. A refusal leaves nothing behind.
--
-- committed_at, the postings' created_at and the stored response's
-- committed_at are all the booking moment, clock_timestamp() under the locks.
-- committed: the booking moment as the stored response writes it (JSON; null for a hold), which
-- the events written in the same statement take too. lock_wait_us: how long the accounts'
-- lock took (the trace's lock-wait span).
DROP FUNCTION IF EXISTS ledgerx_movement_create(
    bigint, boolean, uuid, text, boolean, uuid, uuid, uuid, text, bigint, uuid, timestamptz, timestamptz, text, jsonb,
    text, text, text, jsonb, uuid, text, inet, text, jsonb
);
CREATE FUNCTION ledgerx_movement_create(
    p_lock_key bigint,
    p_unlock boolean,
    p_actor uuid,
    p_type text,
    p_hold boolean,
    p_source uuid,
    p_destination uuid,
    p_system uuid,
    p_currency text,
    p_amount bigint,
    p_txn_id uuid,
    p_now timestamptz,
    p_expires_at timestamptz,
    p_description text,
    p_metadata jsonb,
    p_endpoint text,
    p_key text,
    p_fingerprint text,
    p_body jsonb,
    p_audit_id uuid,
    p_audit_action text,
    p_audit_ip inet,
    p_audit_request_id text,
    p_audit_data jsonb
) RETURNS TABLE (
    entry_id bigint, account_id uuid, posted bigint, pending bigint, version bigint, status text, name text,
    booked_at timestamptz, committed jsonb, lock_wait_us bigint
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    c_limit CONSTANT numeric := 9007199254740991;  -- 2^53 - 1: ledger.exceptions.BALANCE_LIMIT
    v_user_status text;
    -- %ROWTYPE variables start as all-NULL rows, so "not found" is v_src.id IS NULL.
    v_src ledger_ledgeraccount%ROWTYPE;
    v_dst ledger_ledgeraccount%ROWTYPE;
    v_sys ledger_ledgeraccount%ROWTYPE;
    v_row ledger_ledgeraccount%ROWTYPE;
    v_debit ledger_ledgeraccount%ROWTYPE;
    v_credit ledger_ledgeraccount%ROWTYPE;
    v_entry bigint;
    v_booked timestamptz;
    v_lock_from timestamptz;
    v_lock_wait_us bigint;
    v_committed jsonb;
BEGIN
    -- 1. key claimed? 2. same key running elsewhere? (The try-lock succeeds at once if this session holds it.)
    IF p_lock_key IS NOT NULL AND NOT pg_try_advisory_xact_lock(p_lock_key) THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'in_progress';
    END IF;
    IF EXISTS (SELECT 1 FROM transactions_idempotencyrecord r
                WHERE r.user_id = p_actor AND r.endpoint = p_endpoint AND r.key = p_key) THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'key_bound';
    END IF;

    -- 3. actor active (FOR SHARE: a suspension waits for the movement, or is seen by it).
    SELECT u.status INTO v_user_status FROM accounts_user u WHERE u.id = p_actor FOR SHARE;
    IF v_user_status IS DISTINCT FROM 'active' THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'user_suspended';
    END IF;

    -- The entry needs no balance: it goes in before the accounts are locked.
    IF NOT p_hold THEN
        INSERT INTO ledger_journalentry (ref_type, ref_id, created_at)
        VALUES (p_type, p_txn_id, p_now)
        RETURNING id INTO v_entry;
    END IF;

    -- Every touched account locked by ONE select in primary-key order (as ledger.services.accounts_lock).
    v_lock_from := clock_timestamp();
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

    -- The booking moment, under the locks, from the clock the postings carry.
    v_booked := clock_timestamp();
    v_lock_wait_us := (extract(epoch FROM v_booked - v_lock_from) * 1000000)::bigint;

    -- 4. accounts exist and are customer accounts.
    IF (p_source IS NOT NULL AND (v_src.id IS NULL OR v_src.kind <> 'customer'))
       OR (p_destination IS NOT NULL AND (v_dst.id IS NULL OR v_dst.kind <> 'customer')) THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'not_found';
    END IF;
    IF p_system IS NOT NULL AND (v_sys.id IS NULL OR v_sys.kind <> 'system') THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'system_missing';
    END IF;
    -- 5. currency.
    IF (p_source IS NOT NULL AND v_src.currency <> p_currency)
       OR (p_destination IS NOT NULL AND v_dst.currency <> p_currency)
       OR (p_system IS NOT NULL AND v_sys.currency <> p_currency) THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'currency_mismatch';
    END IF;
    -- 6., 7. frozen source, frozen destination.
    IF p_source IS NOT NULL AND v_src.status = 'frozen' THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'account_frozen:source';
    END IF;
    IF p_destination IS NOT NULL AND v_dst.status = 'frozen' THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'account_frozen:destination';
    END IF;
    -- 8. funds.
    IF p_source IS NOT NULL AND v_src.posted - v_src.pending < p_amount THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'insufficient_funds';
    END IF;
    -- 9. balance limit (in numeric: no bigint overflow on the way).
    IF p_source IS NOT NULL THEN v_debit := v_src; ELSE v_debit := v_sys; END IF;
    IF p_destination IS NOT NULL THEN v_credit := v_dst; ELSE v_credit := v_sys; END IF;
    IF NOT p_hold AND (v_credit.posted::numeric + p_amount > c_limit
                       OR v_debit.posted::numeric - p_amount < -c_limit) THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'balance_limit';
    END IF;

    -- The stored response and the audit record say when the money was booked.
    v_committed := CASE WHEN p_hold THEN 'null'::jsonb ELSE to_jsonb(
        to_char(v_booked AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN to_char(v_booked AT TIME ZONE 'UTC', 'US') = '000000' THEN ''
                ELSE '.' || to_char(v_booked AT TIME ZONE 'UTC', 'US') END
        || 'Z') END;

    INSERT INTO transactions_transaction
        (id, type, status, amount, currency, description, metadata, created_at, committed_at, expires_at,
         source_account_id, destination_account_id, entry_id, initiated_by_id, reverses_id, batch_id)
    VALUES
        (p_txn_id, p_type, CASE WHEN p_hold THEN 'pending' ELSE 'committed' END, p_amount, p_currency,
         p_description, p_metadata, p_now, CASE WHEN p_hold THEN NULL ELSE v_booked END, p_expires_at,
         p_source, p_destination, v_entry, p_actor, NULL, NULL);
    -- ON CONFLICT: a concurrent duplicate bound the key after the probe above (its lock was not held).
    INSERT INTO transactions_idempotencyrecord
        (user_id, endpoint, key, fingerprint, response_status, response_body, created_at, transaction_id)
    VALUES (p_actor, p_endpoint, p_key, p_fingerprint, 201, jsonb_set(p_body, '{committed_at}', v_committed),
            p_now, p_txn_id)
    ON CONFLICT (user_id, endpoint, key) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'key_bound';
    END IF;
    INSERT INTO audit_auditrecord (id, at, actor_id, action, target_type, target_id, ip, request_id, data)
    VALUES (p_audit_id, p_now, p_actor, p_audit_action, 'transaction', p_txn_id::text, p_audit_ip,
            p_audit_request_id, jsonb_set(p_audit_data, '{committed_at}', v_committed));
    INSERT INTO audit_auditpending (record_id) VALUES (p_audit_id);

    IF p_hold THEN
        RETURN QUERY
            UPDATE ledger_ledgeraccount a
               SET pending = a.pending + p_amount, version = a.version + 1
             WHERE a.id = p_source
         RETURNING NULL::bigint, a.id, a.posted, a.pending, a.version, a.status::text, a.name::text, v_booked,
                   v_committed, v_lock_wait_us;
    ELSE
        -- One UPDATE for both sides; each posting carries the balance its account ends at.
        RETURN QUERY
            WITH changed AS (
                UPDATE ledger_ledgeraccount a
                   SET posted = a.posted + CASE WHEN a.id = v_debit.id THEN -p_amount ELSE p_amount END,
                       version = a.version + 1
                 WHERE a.id IN (v_debit.id, v_credit.id)
             RETURNING a.id, a.kind, a.posted, a.pending, a.version, a.status, a.name
            ), lines AS (
                INSERT INTO ledger_posting (entry_id, account_id, currency, amount, balance_after, created_at)
                SELECT v_entry, c.id, p_currency, CASE WHEN c.id = v_debit.id THEN -p_amount ELSE p_amount END,
                       c.posted, v_booked
                  FROM changed c
            )
            SELECT v_entry, c.id, c.posted, c.pending, c.version, c.status::text, c.name::text, v_booked,
                   v_committed, v_lock_wait_us
              FROM changed c WHERE c.kind = 'customer';
    END IF;

    IF p_unlock THEN
        PERFORM pg_advisory_unlock(p_lock_key);
    END IF;
    RETURN;
END;
$$;
