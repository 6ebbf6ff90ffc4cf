"""Signed checkpoints of the audit chain: tamper evidence that survives the tables' owner.

The hash chain (``audit.services.chain``, extended by ``audit.services.sealing``)
proves that the sealed records still hash to their seals, but someone who owns
the tables can delete the newest records with their seals, or edit a record
and re-seal everything after it, or TRUNCATE the lot: the chain they leave is
consistent. A checkpoint closes that:

* Every ``AUDIT_CHECKPOINT_INTERVAL`` seconds while records are being sealed
  (and at every ``seal_audit``), the sealer signs ``(seal_seq, head_hash,
  record_count, at)`` with ``AUDIT_SIGNING_KEY`` (HMAC-SHA256), a key that is
  not in the database, under the sealer's lock, so the head it signs is the
  chain's head.
* The checkpoint is written to the database (``AuditCheckpoint``, append-only)
  and, once that commits, appended to an external sink: one JSON line to
  ``AUDIT_CHECKPOINT_FILE`` (opened O_APPEND, fsynced) and one log line on the
  ``ledgerx.audit.checkpoint`` logger (for syslog or a log shipper).
* ``verify_audit --checkpoints FILE`` checks each line's signature and that the
  chain, recomputed from the genesis hash, passes through every signed head:
  a removed record leaves a signed seal number missing, a changed or
  re-chained one a different hash at that number.

The window: a record becomes provable against its owner when a checkpoint
covering it reaches the sink, within about ``AUDIT_CHECKPOINT_INTERVAL`` (plus
the sealing interval) of its commit. Anything newer than the last shipped
checkpoint can be removed or rewritten by the owner undetected.
"""

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditCheckpoint, AuditSeal

logger = logging.getLogger("ledgerx.audit.checkpoint")

_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
SIGNED_FIELDS = ("seal_seq", "head_hash", "record_count", "at")


def checkpoint_payload(checkpoint: AuditCheckpoint) -> dict:
    return {
        "seal_seq": checkpoint.seal_seq,
        "head_hash": checkpoint.head_hash,
        "record_count": checkpoint.record_count,
        "at": checkpoint.at.isoformat(timespec="microseconds"),
    }


def checkpoint_signature(payload: dict, key: str | None = None) -> str:
    """HMAC-SHA256 of the signed fields as sorted-key JSON."""
    body = _CANONICAL_JSON.encode({name: payload[name] for name in SIGNED_FIELDS}).encode()
    return hmac.new((key if key is not None else settings.AUDIT_SIGNING_KEY).encode(), body, hashlib.sha256).hexdigest()


def checkpoint_line(checkpoint: AuditCheckpoint) -> str:
    return _CANONICAL_JSON.encode({**checkpoint_payload(checkpoint), "signature": checkpoint.signature})


def checkpoint_append(checkpoint: AuditCheckpoint, path: str | None = None) -> None:
    """Append the checkpoint to the external sink: the JSON-lines file and the checkpoint log."""
    line = checkpoint_line(checkpoint)
    logger.info("audit checkpoint %s", line)
    path = path or settings.AUDIT_CHECKPOINT_FILE
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def audit_checkpoint_create(*, force: bool = False) -> AuditCheckpoint | None:
    """Sign the chain's head if a checkpoint is due (always with ``force``); None if not made.

    Not due: no signing key, no seal yet, the head already checkpointed, or
    (without ``force``) the last checkpoint younger than
    ``AUDIT_CHECKPOINT_INTERVAL``. Takes the sealer's lock (waits for it with
    ``force``, else gives up when it is busy), so the head cannot move while it
    is signed. The sink is written after commit: a checkpoint whose transaction
    rolled back never reaches it.
    """
    from audit.services.sealing import sealer_lock

    if not settings.AUDIT_SIGNING_KEY:
        return None
    with transaction.atomic():
        if not sealer_lock(wait=force):
            return None
        now = timezone.now()
        last = AuditCheckpoint.objects.order_by("-id").first()
        if not force and last is not None and (now - last.at).total_seconds() < settings.AUDIT_CHECKPOINT_INTERVAL:
            return None
        head = AuditSeal.objects.order_by("-seq").values_list("seq", "hash").first()
        if head is None or (last is not None and last.seal_seq == head[0]):
            return None
        checkpoint = AuditCheckpoint(seal_seq=head[0], head_hash=head[1], record_count=head[0], at=now)
        checkpoint.signature = checkpoint_signature(checkpoint_payload(checkpoint))
        checkpoint.save()
        transaction.on_commit(lambda: checkpoint_append(checkpoint), robust=True)
    return checkpoint


@dataclass(frozen=True)
class CheckpointReport:
    ok: bool
    checked: int
    problem: str | None

    def summary_of(self, where: str) -> str:
        if self.ok:
            return f"{self.checked} signed checkpoint(s) in {where} match the chain"
        return f"checkpoints BROKEN: {self.problem}"


def _parse_at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def checkpoints_verify(entries, *, source: str) -> CheckpointReport:
    """Check signed checkpoints (dicts as in the sink) against the chain in the database.

    Meant to run after ``audit_chain_verify`` found the chain itself intact:
    then a signed head that is still the hash at its seal number proves every
    record up to it unchanged, present and in its place. Names the first
    checkpoint that fails.
    """
    key = settings.AUDIT_SIGNING_KEY
    checked = 0
    for number, entry in entries:
        where = f"{source} {number}"
        try:
            payload = {name: entry[name] for name in SIGNED_FIELDS}
            seal_seq = int(payload["seal_seq"])
            _parse_at(payload["at"])
            signature = str(entry["signature"])
        except (KeyError, TypeError, ValueError):
            return CheckpointReport(False, checked, f"{where} is not a checkpoint")
        if not key or not hmac.compare_digest(checkpoint_signature(payload, key), signature):
            return CheckpointReport(False, checked, f"{where}: the signature does not verify (forged, or another key)")
        head = AuditSeal.objects.filter(seq=seal_seq).values_list("hash", flat=True).first()
        if head is None:
            return CheckpointReport(
                False, checked, f"{where} signed seal #{seal_seq} at {payload['at']}, which is gone: records were removed"
            )
        if head != payload["head_hash"]:
            return CheckpointReport(
                False,
                checked,
                f"{where}: seal #{seal_seq} no longer has the signed hash: records up to it were changed or re-chained",
            )
        if int(payload["record_count"]) != seal_seq:
            return CheckpointReport(False, checked, f"{where}: record count {payload['record_count']} is not seal #{seal_seq}")
        checked += 1
    return CheckpointReport(True, checked, None)


def checkpoints_from_file(path: str):
    """``(line number, entry)`` for each non-blank line of a checkpoint file (a bad line is an entry of None)."""
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield f"line {number}", json.loads(line)
            except json.JSONDecodeError:
                yield f"line {number}", None


def checkpoints_from_database():
    for checkpoint in AuditCheckpoint.objects.order_by("id").iterator():
        yield f"#{checkpoint.pk}", {**checkpoint_payload(checkpoint), "signature": checkpoint.signature}
