-- ledgerx_batch_apply: ONE call applies a batch's items (deposits, withdrawals, transfers, holds,
-- conversions) in order and writes everything they change.
--
-- The only text of the function. Migrations load frozen copies of it
-- (transactions/migrations/*_batch_function.sql); a test compares the
-- installed function with this file. transactions/engine/postgres.py calls it
-- by named arguments built from its one parameter table (BATCH_PARAMETERS);
-- transactions/batches.py is its caller and holds the same rules in Python
-- (the SQLite path, _items_run), in the same order.
--
-- Request-level refusals first, each a RAISE with SQLSTATE LX000 and the code
-- as message: in_progress (the key's advisory lock is held elsewhere),
-- key_bound (replay), user_suspended (the actor's row read FOR SHARE). Then
-- every touched account (the named ones and the system shards the items
-- need, among the candidates p_shards the caller picked) locked by ONE
-- SELECT ... FOR UPDATE in primary-key order, the quotes FOR UPDATE in pk
-- order, the booking moment read under the locks (clock_timestamp()), and
-- each item checked against the balances the items before it left, first
-- refusal wins (transactions/engine/codes.py): not_found, same_account,
-- currency_mismatch, quote_expired, account_frozen:source,
-- account_frozen:destination, insufficient_funds, balance_limit. A refused
-- item changes nothing in memory: an atomic batch raises LX000 at once (the
-- code as message, the item's index as detail, the client's message as
-- hint), a non-atomic one records the item's error and goes on.
-- system_missing (detail: the currency) says a needed shard was not among
-- the candidates or is gone; the caller makes sure of the shards and retries.
--
-- Then the rows of the applied items, set-based: journal entries, postings
-- (each with its account's balance after it), transactions, audit records
-- and their sealing-queue rows, one UPDATE of the changed balances, one of
-- the quotes used, the batch row (p_batch_id not null), the ONE idempotency
-- record and the events (the items' transaction.created, then batch.created;
-- the same rows events.services.events_statement_ctes writes). Every
-- timestamp is the booking moment. The stored response is built here, so a
-- replay returns it as the first answer did.
--
-- Result (one row): body (the stored response), accounts (each changed
-- customer account's [id, posted, pending, version, status, name], for the
-- balance cache), booked_at, lock_wait_us (how long the locks took).
DROP FUNCTION IF EXISTS ledgerx_batch_apply(
    bigint, boolean, uuid, text, text, text, uuid, boolean, text[], bigint[], uuid[], uuid[], boolean[], uuid[],
    text[], jsonb[], uuid[], uuid[], uuid[], uuid, uuid[], interval, jsonb, jsonb, inet, text
);
CREATE FUNCTION ledgerx_batch_apply(
    p_lock_key bigint,
    p_unlock boolean,
    p_actor uuid,
    p_endpoint text,
    p_key text,
    p_fingerprint text,
    p_batch_id uuid,
    p_atomic boolean,
    p_types text[],
    p_amounts bigint[],
    p_debits uuid[],
    p_credits uuid[],
    p_holds boolean[],
    p_quotes uuid[],
    p_descriptions text[],
    p_metadata jsonb[],
    p_txn_ids uuid[],
    p_audit_ids uuid[],
    p_event_ids uuid[],
    p_batch_event_id uuid,
    p_shards uuid[],
    p_hold_ttl interval,
    p_audit_actions jsonb,
    p_errors jsonb,
    p_audit_ip inet,
    p_audit_request_id text
) RETURNS TABLE (body jsonb, accounts jsonb, booked_at timestamptz, lock_wait_us bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    c_limit CONSTANT numeric := 9007199254740991;  -- 2^53 - 1: ledger.exceptions.BALANCE_LIMIT
    v_n int := coalesce(array_length(p_types, 1), 0);
    v_status text;
    v_admin boolean;
    v_named uuid[];
    v_needs text[];
    -- The locked accounts, by position k (a_*[k]); items point at them by position.
    a_id uuid[]; a_kind text[]; a_owner uuid[]; a_cur text[]; a_role text[]; a_status text[]; a_name text[];
    a_posted bigint[]; a_pending bigint[]; a_version bigint[]; a_touched boolean[];
    -- The locked quotes, by position.
    q_id uuid[]; q_user uuid[]; q_src_cur text[]; q_dst_cur text[]; q_src_amt bigint[]; q_dst_amt bigint[];
    q_rate numeric[]; q_expires timestamptz[]; q_used boolean[];
    v_di int[]; v_ci int[]; v_qi int[];
    -- Per item: its outcome and the shape of its transaction.
    r_ok boolean[] := array_fill(false, ARRAY[v_n]);
    r_error jsonb[] := array_fill(NULL::jsonb, ARRAY[v_n]);
    t_status text[] := array_fill(NULL::text, ARRAY[v_n]);
    t_amount bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
    t_cur text[] := array_fill(NULL::text, ARRAY[v_n]);
    t_src uuid[] := array_fill(NULL::uuid, ARRAY[v_n]);
    t_dst uuid[] := array_fill(NULL::uuid, ARRAY[v_n]);
    t_src_owner uuid[] := array_fill(NULL::uuid, ARRAY[v_n]);
    t_dst_owner uuid[] := array_fill(NULL::uuid, ARRAY[v_n]);
    t_entry boolean[] := array_fill(false, ARRAY[v_n]);
    t_q int[] := array_fill(NULL::int, ARRAY[v_n]);
    -- The postings, in order.
    l_txn uuid[] := '{}'; l_acct uuid[] := '{}'; l_cur text[] := '{}'; l_amt bigint[] := '{}'; l_bal bigint[] := '{}';
    v_used uuid[] := '{}';
    i int; k int; di int; ci int; qi int; si int; sj int;
    v_type text; v_amt bigint; v_code text; v_error jsonb; v_role text;
    v_booked timestamptz;
    v_lock_from timestamptz;
    v_ts jsonb;
    v_expires timestamptz;
    v_repr jsonb[];
    v_ok_count int := 0;
    v_body jsonb;
    v_batch_status text;
    v_accounts jsonb;
BEGIN
    -- 1. key claimed? 2. same key running elsewhere? (The try-lock succeeds at once if this session holds it.)
    IF p_lock_key IS NOT NULL AND NOT pg_try_advisory_xact_lock(p_lock_key) THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'in_progress';
    END IF;
    IF EXISTS (SELECT 1 FROM transactions_idempotencyrecord r
                WHERE r.user_id = p_actor AND r.endpoint = p_endpoint AND r.key = p_key) THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'key_bound';
    END IF;
    -- 3. actor active (FOR SHARE: a suspension waits for the batch, or is seen by it).
    SELECT u.status, u.role = 'admin' INTO v_status, v_admin FROM accounts_user u WHERE u.id = p_actor FOR SHARE;
    IF v_status IS DISTINCT FROM 'active' THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'user_suspended';
    END IF;

    -- The system roles the items need, per currency of the accounts they name (an account's
    -- currency never changes: read without a lock), and so which candidate shards to lock.
    v_named := ARRAY(SELECT DISTINCT x FROM unnest(p_debits || p_credits) x WHERE x IS NOT NULL);
    v_needs := ARRAY(
        SELECT DISTINCT a.currency || ' ' || CASE u.t WHEN 'deposit' THEN 'funding' WHEN 'withdrawal' THEN 'payouts'
                                                     ELSE 'fx_pool' END
          FROM unnest(p_types, p_debits, p_credits) u(t, d, c)
          JOIN ledger_ledgeraccount a
            ON a.id = CASE u.t WHEN 'deposit' THEN u.c WHEN 'withdrawal' THEN u.d END
            OR (u.t = 'conversion' AND a.id IN (u.d, u.c))
         WHERE u.t <> 'transfer');

    -- Every touched account locked by ONE select in primary-key order (as ledger.services.accounts_lock).
    v_lock_from := clock_timestamp();
    SELECT array_agg(l.id ORDER BY l.id), array_agg(l.kind ORDER BY l.id), array_agg(l.owner_id ORDER BY l.id),
           array_agg(l.currency ORDER BY l.id), array_agg(l.system_role ORDER BY l.id),
           array_agg(l.status ORDER BY l.id), array_agg(l.name ORDER BY l.id), array_agg(l.posted ORDER BY l.id),
           array_agg(l.pending ORDER BY l.id), array_agg(l.version ORDER BY l.id)
      INTO a_id, a_kind, a_owner, a_cur, a_role, a_status, a_name, a_posted, a_pending, a_version
      FROM (SELECT a.id, a.kind, a.owner_id, a.currency, a.system_role, a.status, a.name, a.posted, a.pending, a.version
              FROM ledger_ledgeraccount a
             WHERE a.id = ANY (v_named)
                OR (a.id = ANY (p_shards) AND a.kind = 'system' AND a.currency || ' ' || a.system_role = ANY (v_needs))
             ORDER BY a.id
               FOR UPDATE) l;
    a_touched := array_fill(false, ARRAY[coalesce(array_length(a_id, 1), 0)]);
    -- Every needed shard among them?
    SELECT min(split_part(x, ' ', 1)) INTO v_code FROM unnest(v_needs) x
     WHERE NOT EXISTS (SELECT 1 FROM unnest(a_id, a_kind, a_cur, a_role) s(id, kind, cur, role)
                        WHERE s.kind = 'system' AND s.cur || ' ' || s.role = x);
    IF v_code IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'system_missing', DETAIL = v_code;
    END IF;
    -- The quotes after the accounts, in primary-key order.
    SELECT array_agg(q.id ORDER BY q.id), array_agg(q.user_id ORDER BY q.id),
           array_agg(q.source_currency ORDER BY q.id), array_agg(q.destination_currency ORDER BY q.id),
           array_agg(q.source_amount ORDER BY q.id), array_agg(q.destination_amount ORDER BY q.id),
           array_agg(q.rate ORDER BY q.id), array_agg(q.expires_at ORDER BY q.id),
           array_agg(q.used_at IS NOT NULL ORDER BY q.id)
      INTO q_id, q_user, q_src_cur, q_dst_cur, q_src_amt, q_dst_amt, q_rate, q_expires, q_used
      FROM (SELECT f.* FROM fx_fxquote f WHERE f.id = ANY (p_quotes) ORDER BY f.id FOR UPDATE) q;

    -- The booking moment, under the locks, from the clock the postings carry.
    v_booked := clock_timestamp();
    v_ts := to_jsonb(
        to_char(v_booked AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN to_char(v_booked AT TIME ZONE 'UTC', 'US') = '000000' THEN ''
                ELSE '.' || to_char(v_booked AT TIME ZONE 'UTC', 'US') END
        || 'Z');
    v_expires := v_booked + p_hold_ttl;

    -- Each item's accounts and quote by position (NULL: not found).
    SELECT array_agg(s.k ORDER BY u.n), array_agg(c.k ORDER BY u.n), array_agg(q.k ORDER BY u.n)
      INTO v_di, v_ci, v_qi
      FROM unnest(p_debits, p_credits, p_quotes) WITH ORDINALITY u(d, c, q, n)
      LEFT JOIN unnest(a_id) WITH ORDINALITY s(id, k) ON s.id = u.d
      LEFT JOIN unnest(a_id) WITH ORDINALITY c(id, k) ON c.id = u.c
      LEFT JOIN unnest(q_id) WITH ORDINALITY q(id, k) ON q.id = u.q;

    FOR i IN 1 .. v_n LOOP
        v_type := p_types[i];
        v_amt := p_amounts[i];
        di := v_di[i];
        ci := v_ci[i];
        qi := v_qi[i];
        v_code := NULL;
        v_error := NULL;
        si := NULL;
        sj := NULL;
        IF v_type = 'conversion' THEN
            IF di IS NULL OR a_kind[di] <> 'customer' OR a_owner[di] IS DISTINCT FROM p_actor
               OR ci IS NULL OR a_kind[ci] <> 'customer' OR a_owner[ci] IS DISTINCT FROM p_actor THEN
                v_code := 'not_found';
            ELSIF qi IS NULL OR q_user[qi] <> p_actor THEN
                v_code := 'not_found'; v_error := p_errors -> 'not_found:quote';
            ELSIF di = ci THEN
                v_code := 'same_account';
            ELSIF a_cur[di] <> q_src_cur[qi] OR a_cur[ci] <> q_dst_cur[qi] THEN
                v_code := 'currency_mismatch';
                v_error := jsonb_build_object('code', p_errors -> 'currency_mismatch:quote' ->> 'code', 'message',
                    format(p_errors -> 'currency_mismatch:quote' ->> 'message', q_src_cur[qi], q_dst_cur[qi],
                           a_cur[di], a_cur[ci]));
            ELSIF q_used[qi] THEN
                v_code := 'quote_expired'; v_error := p_errors -> 'quote_expired:used';
            ELSIF q_expires[qi] <= v_booked THEN
                v_code := 'quote_expired';
            ELSIF a_status[di] = 'frozen' THEN
                v_code := 'account_frozen:source';
            ELSIF a_status[ci] = 'frozen' THEN
                v_code := 'account_frozen:destination';
            ELSIF a_posted[di] - a_pending[di] < q_src_amt[qi] THEN
                v_code := 'insufficient_funds';
            ELSIF a_posted[ci]::numeric + q_dst_amt[qi] > c_limit THEN
                v_code := 'balance_limit';
            ELSE
                FOR j IN 1 .. array_length(a_id, 1) LOOP
                    IF a_kind[j] = 'system' AND a_role[j] = 'fx_pool' THEN
                        IF a_cur[j] = a_cur[di] AND si IS NULL THEN si := j; END IF;
                        IF a_cur[j] = a_cur[ci] AND sj IS NULL THEN sj := j; END IF;
                    END IF;
                END LOOP;
            END IF;
        ELSE
            IF v_type <> 'deposit' AND (di IS NULL OR a_kind[di] <> 'customer' OR a_owner[di] IS DISTINCT FROM p_actor) THEN
                v_code := 'not_found';
            ELSIF v_type <> 'withdrawal' AND (ci IS NULL OR a_kind[ci] <> 'customer') THEN
                v_code := 'not_found';
            ELSIF v_type = 'deposit' AND a_owner[ci] IS DISTINCT FROM p_actor AND NOT v_admin THEN
                v_code := 'not_found';
            ELSIF v_type = 'transfer' AND di = ci THEN
                v_code := 'same_account';
            ELSIF v_type = 'transfer' AND a_cur[di] <> a_cur[ci] THEN
                v_code := 'currency_mismatch';
            END IF;
            IF v_code IS NULL AND v_type <> 'transfer' THEN
                -- The house's side: the shard of the customer account's currency.
                v_role := CASE v_type WHEN 'deposit' THEN 'funding' ELSE 'payouts' END;
                k := CASE v_type WHEN 'deposit' THEN ci ELSE di END;
                FOR j IN 1 .. array_length(a_id, 1) LOOP
                    IF a_kind[j] = 'system' AND a_role[j] = v_role AND a_cur[j] = a_cur[k] THEN
                        si := j;
                        EXIT;
                    END IF;
                END LOOP;
                IF v_type = 'deposit' THEN di := si; ELSE ci := si; END IF;
            END IF;
            IF v_code IS NOT NULL THEN
                NULL;
            ELSIF a_kind[di] = 'customer' AND a_status[di] = 'frozen' THEN
                v_code := 'account_frozen:source';
            ELSIF a_kind[ci] = 'customer' AND a_status[ci] = 'frozen' THEN
                v_code := 'account_frozen:destination';
            ELSIF a_kind[di] = 'customer' AND a_posted[di] - a_pending[di] < v_amt THEN
                v_code := 'insufficient_funds';
            ELSIF a_kind[ci] = 'customer' AND NOT p_holds[i] AND a_posted[ci]::numeric + v_amt > c_limit THEN
                v_code := 'balance_limit';
            END IF;
        END IF;

        IF v_code IS NOT NULL THEN
            v_error := coalesce(v_error, p_errors -> v_code);
            IF p_atomic THEN
                RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = v_code, DETAIL = (i - 1)::text,
                                      HINT = v_error ->> 'message';
            END IF;
            r_error[i] := v_error;
            CONTINUE;
        END IF;

        -- Applied: in memory now, written set-based after the loop.
        r_ok[i] := true;
        v_ok_count := v_ok_count + 1;
        IF v_type = 'conversion' THEN
            t_status[i] := 'committed';
            t_amount[i] := q_src_amt[qi];
            t_cur[i] := q_src_cur[qi];
            t_src[i] := a_id[di];
            t_dst[i] := a_id[ci];
            t_src_owner[i] := a_owner[di];
            t_dst_owner[i] := a_owner[ci];
            t_entry[i] := true;
            t_q[i] := qi;
            q_used[qi] := true;
            v_used := v_used || q_id[qi];
            FOREACH k IN ARRAY ARRAY[di, si, sj, ci] LOOP
                a_posted[k] := a_posted[k] + CASE WHEN k = di THEN -q_src_amt[qi] WHEN k = si THEN q_src_amt[qi]
                                                  WHEN k = sj THEN -q_dst_amt[qi] ELSE q_dst_amt[qi] END;
                a_version[k] := a_version[k] + 1;
                a_touched[k] := true;
                l_txn := l_txn || p_txn_ids[i];
                l_acct := l_acct || a_id[k];
                l_cur := l_cur || a_cur[k];
                l_amt := l_amt || CASE WHEN k = di THEN -q_src_amt[qi] WHEN k = si THEN q_src_amt[qi]
                                       WHEN k = sj THEN -q_dst_amt[qi] ELSE q_dst_amt[qi] END;
                l_bal := l_bal || a_posted[k];
            END LOOP;
        ELSE
            t_amount[i] := v_amt;
            t_cur[i] := a_cur[di];
            t_src[i] := CASE WHEN a_kind[di] = 'customer' THEN a_id[di] END;
            t_dst[i] := CASE WHEN a_kind[ci] = 'customer' THEN a_id[ci] END;
            t_src_owner[i] := a_owner[di];  -- a system account's is NULL
            t_dst_owner[i] := a_owner[ci];
            IF p_holds[i] THEN
                t_status[i] := 'pending';
                a_pending[di] := a_pending[di] + v_amt;
                a_version[di] := a_version[di] + 1;
                a_touched[di] := true;
            ELSE
                t_status[i] := 'committed';
                t_entry[i] := true;
                FOREACH k IN ARRAY ARRAY[di, ci] LOOP
                    a_posted[k] := a_posted[k] + CASE WHEN k = di THEN -v_amt ELSE v_amt END;
                    a_version[k] := a_version[k] + 1;
                    a_touched[k] := true;
                    l_txn := l_txn || p_txn_ids[i];
                    l_acct := l_acct || a_id[k];
                    l_cur := l_cur || a_cur[k];
                    l_amt := l_amt || CASE WHEN k = di THEN -v_amt ELSE v_amt END;
                    l_bal := l_bal || a_posted[k];
                END LOOP;
            END IF;
        END IF;
    END LOOP;

    -- Each applied item's transaction as the API shows it (transactions.representations).
    SELECT array_agg(CASE WHEN u.ok THEN
               jsonb_build_object(
                   'id', u.id, 'type', u.t, 'status', u.st, 'amount', u.amt, 'currency', u.cur,
                   'source_account', u.src, 'destination_account', u.dst, 'description', u.descr,
                   'metadata', u.meta, 'created_at', v_ts,
                   'committed_at', CASE WHEN u.st = 'pending' THEN 'null'::jsonb ELSE v_ts END,
                   'reverses', 'null'::jsonb, 'reversed_by', 'null'::jsonb, 'batch', p_batch_id)
               || CASE WHEN u.q IS NULL THEN '{}'::jsonb ELSE jsonb_build_object(
                   'source_amount', q_src_amt[u.q], 'destination_amount', q_dst_amt[u.q],
                   'destination_currency', q_dst_cur[u.q], 'rate', trim_scale(q_rate[u.q])::text,
                   'quote', q_id[u.q]) END
           END ORDER BY u.n)
      INTO v_repr
      FROM unnest(r_ok, p_txn_ids, p_types, t_status, t_amount, t_cur, t_src, t_dst, p_descriptions, p_metadata, t_q)
           WITH ORDINALITY u(ok, id, t, st, amt, cur, src, dst, descr, meta, q, n);

    IF p_batch_id IS NULL THEN
        v_body := v_repr[1];
    ELSE
        v_batch_status := CASE WHEN v_ok_count = v_n THEN 'committed' WHEN v_ok_count > 0 THEN 'partial' ELSE 'failed' END;
        -- Built as json text (no jsonb tree per result), then parsed once.
        SELECT json_build_object(
                   'id', p_batch_id, 'atomic', p_atomic, 'status', v_batch_status, 'created_at', v_ts, 'count', v_n,
                   'succeeded', v_ok_count, 'failed', v_n - v_ok_count,
                   'results', coalesce(json_agg(json_build_object(
                       'index', u.n - 1, 'status', CASE WHEN u.ok THEN 'ok' ELSE 'failed' END,
                       'transaction', u.repr, 'error', u.err) ORDER BY u.n), '[]'::json))::jsonb
          INTO v_body
          FROM unnest(r_ok, v_repr, r_error) WITH ORDINALITY u(ok, repr, err, n);
        INSERT INTO transactions_batch (id, atomic, status, count, succeeded, failed, results, created_at, owner_id)
        SELECT p_batch_id, p_atomic, v_batch_status, v_n, v_ok_count, v_n - v_ok_count,
               coalesce(jsonb_agg(jsonb_build_object(
                   'index', u.n - 1, 'status', CASE WHEN u.ok THEN 'ok' ELSE 'failed' END,
                   'transaction', CASE WHEN u.ok THEN u.id::text END, 'error', u.err) ORDER BY u.n), '[]'::jsonb),
               v_booked, p_actor
          FROM unnest(r_ok, p_txn_ids, r_error) WITH ORDINALITY u(ok, id, err, n);
    END IF;

    -- The ONE idempotency record. ON CONFLICT: a concurrent duplicate bound the key after the probe above.
    INSERT INTO transactions_idempotencyrecord
        (user_id, endpoint, key, fingerprint, response_status, response_body, created_at, transaction_id)
    VALUES (p_actor, p_endpoint, p_key, p_fingerprint, 201, v_body, v_booked,
            CASE WHEN p_batch_id IS NULL THEN p_txn_ids[1] END)
    ON CONFLICT (user_id, endpoint, key) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LX000', MESSAGE = 'key_bound';
    END IF;

    IF v_ok_count > 0 THEN
        -- Entries (in item order), their postings (in line order), the transactions.
        WITH entries AS (
            INSERT INTO ledger_journalentry (ref_type, ref_id, created_at)
            SELECT u.t, u.id, v_booked
              FROM unnest(p_types, p_txn_ids, t_entry) WITH ORDINALITY u(t, id, e, n)
             WHERE u.e
             ORDER BY u.n
            RETURNING id, ref_id
        ), lines AS (
            INSERT INTO ledger_posting (entry_id, account_id, currency, amount, balance_after, created_at)
            SELECT e.id, l.acct, l.cur, l.amt, l.bal, v_booked
              FROM unnest(l_txn, l_acct, l_cur, l_amt, l_bal) WITH ORDINALITY l(txn, acct, cur, amt, bal, n)
              JOIN entries e ON e.ref_id = l.txn
             ORDER BY l.n
        )
        INSERT INTO transactions_transaction
            (id, type, status, amount, currency, description, metadata, created_at, committed_at, expires_at,
             source_account_id, destination_account_id, entry_id, initiated_by_id, reverses_id, batch_id,
             source_amount, destination_amount, destination_currency, rate, quote_id)
        SELECT u.id, u.t, u.st, u.amt, u.cur, u.descr, u.meta, v_booked,
               CASE WHEN u.st = 'pending' THEN NULL ELSE v_booked END,
               CASE WHEN u.st = 'pending' THEN v_expires END,
               u.src, u.dst, e.id, p_actor, NULL, p_batch_id,
               q_src_amt[u.q], q_dst_amt[u.q], q_dst_cur[u.q], q_rate[u.q], q_id[u.q]
          FROM unnest(r_ok, p_txn_ids, p_types, t_status, t_amount, t_cur, t_src, t_dst, p_descriptions, p_metadata, t_q)
               WITH ORDINALITY u(ok, id, t, st, amt, cur, src, dst, descr, meta, q, n)
          LEFT JOIN entries e ON e.ref_id = u.id
         WHERE u.ok
         ORDER BY u.n;

        -- Their audit records (queued for sealing) and transaction.created events (both sides see them).
        WITH records AS (
            INSERT INTO audit_auditrecord (id, at, actor_id, action, target_type, target_id, ip, request_id, data)
            SELECT u.aid, v_booked, p_actor,
                   p_audit_actions ->> CASE WHEN u.st = 'pending' THEN 'hold' ELSE u.t END,
                   'transaction', u.id::text, p_audit_ip, p_audit_request_id, u.repr
              FROM unnest(r_ok, p_audit_ids, p_txn_ids, p_types, t_status, v_repr) WITH ORDINALITY
                   u(ok, aid, id, t, st, repr, n)
             WHERE u.ok
             ORDER BY u.n
            RETURNING id
        )
        INSERT INTO audit_auditpending (record_id) SELECT id FROM records;

        INSERT INTO events_event (id, type, created_at, data, xid)
        SELECT u.eid, 'transaction.created', v_booked, u.repr, pg_current_xact_id()::text::bigint
          FROM unnest(r_ok, p_event_ids, v_repr) WITH ORDINALITY u(ok, eid, repr, n)
         WHERE u.ok
         ORDER BY u.n;

        -- The changed balances, one UPDATE; the quotes used.
        WITH changed AS (
            UPDATE ledger_ledgeraccount a
               SET posted = v.posted, pending = v.pending, version = v.version
              FROM unnest(a_id, a_posted, a_pending, a_version, a_touched) v(id, posted, pending, version, touched)
             WHERE a.id = v.id AND v.touched
         RETURNING a.id, a.kind, a.posted, a.pending, a.version, a.status, a.name
        )
        SELECT coalesce(jsonb_agg(jsonb_build_array(c.id, c.posted, c.pending, c.version, c.status, c.name)), '[]'::jsonb)
          INTO v_accounts
          FROM changed c WHERE c.kind = 'customer';
        IF array_length(v_used, 1) > 0 THEN
            UPDATE fx_fxquote f SET used_at = v_booked WHERE f.id = ANY (v_used);
        END IF;
    ELSE
        v_accounts := '[]'::jsonb;
    END IF;

    IF p_batch_id IS NOT NULL THEN
        -- The caller sees batch.created after its items' transaction.created events.
        INSERT INTO events_event (id, type, created_at, data, xid)
        VALUES (p_batch_event_id, 'batch.created', v_booked, v_body, pg_current_xact_id()::text::bigint);
    END IF;
    -- Who sees each event, and one pending delivery per subscribed enabled endpoint of theirs
    -- (as events.services.events_statement_ctes writes them).
    WITH seen AS (
        SELECT u.eid, 'transaction.created'::text AS t, w.user_id
          FROM unnest(r_ok, p_event_ids, t_src_owner, t_dst_owner) u(ok, eid, src, dst)
         CROSS JOIN LATERAL (SELECT u.src WHERE u.src IS NOT NULL
                             UNION SELECT u.dst WHERE u.dst IS NOT NULL) w(user_id)
         WHERE u.ok
        UNION ALL
        SELECT p_batch_event_id, 'batch.created', p_actor WHERE p_batch_id IS NOT NULL
    ), recipients AS (
        INSERT INTO events_eventrecipient (event_id, user_id, type, xid)
        SELECT s.eid, s.user_id, s.t, pg_current_xact_id()::text::bigint FROM seen s
    )
    INSERT INTO events_delivery
        (id, event_id, endpoint_id, status, attempts, next_attempt_at, claimed_until, claimed_by, last_attempt_at,
         last_status_code, last_duration_ms, last_error, delivered_at, created_at, xid)
    SELECT (substr(s.eid::text, 1, 19) || substr(gen_random_uuid()::text, 20))::uuid, s.eid, e.id, 'pending', 0,
           v_booked, NULL, '', NULL, NULL, NULL, '', NULL, v_booked, pg_current_xact_id()::text::bigint
      FROM seen s
      JOIN events_webhookendpoint e ON e.owner_id = s.user_id AND e.status = 'enabled'
                                   AND (e.events = '[]'::jsonb OR e.events @> jsonb_build_array(s.t));

    IF p_unlock THEN
        PERFORM pg_advisory_unlock(p_lock_key);
    END IF;
    RETURN QUERY SELECT v_body, v_accounts, v_booked, (extract(epoch FROM v_booked - v_lock_from) * 1000000)::bigint;
END;
$$;
