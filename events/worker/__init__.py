"""Delivering webhooks, and the periodic work, for ``manage.py worker``.

Why a small claiming loop and not a job engine: the outbox table already is
the queue (a ``Delivery`` row per event and endpoint, written in the change's
own transaction), so a job engine would add a second queue to keep in step
with it, and procrastinate runs on PostgreSQL only while LedgerX must also
deliver on its embedded SQLite default. The loop is small and as safe:

* **Claim** (``claiming.deliveries_claim``): one short transaction marks up to N due
  pending deliveries with this worker's id and a lease (``claimed_until``),
  selected ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent workers
  never claim the same row; on SQLite the database's single writer gives the
  same exclusion. A claimed row is skipped by everyone until its lease ends.
* **Send** (``sending``) outside any transaction, then **record** the outcome only if the
  claim is still ours (``claimed_by``): a worker killed mid-delivery loses
  nothing, its lease runs out and another worker sends the delivery again
  (at-least-once; receivers deduplicate by ``webhook-id``).
* **Retry** with exponential backoff and jitter (``RETRY_SCHEDULE``: 5 s,
  30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, then every 8 h) for as long as
  the endpoint has failed less than 5 days; past that the endpoint is
  disabled, with a ``webhook_endpoint.disabled`` event and an audit record,
  and its pending deliveries are marked failed. A success pulls the
  endpoint's other pending deliveries forward, so a receiver that comes back
  gets its backlog at once, in the order of first attempts.
* **Limits**: 10 s timeout per attempt (``settings.WEBHOOKS_TIMEOUT``, connect
  and whole response), at most ``PER_ENDPOINT`` requests in flight per
  endpoint across all workers (counted as live claims, under a lock of the
  endpoint row: ``claiming.deliveries_claim``), a response body over 64 KB is not read. The URL is
  checked again and resolved before each attempt, and the connection goes to
  the address that was checked (no DNS rebinding).
* **Waiting**: an idle worker on PostgreSQL waits for a NOTIFY of new
  deliveries (``waiting.deliveries_wait``) for at most its poll interval, so polling
  stays the fallback; SQLite workers just poll.

The loop itself, and the periodic work it runs between passes, is ``loop``.
"""
