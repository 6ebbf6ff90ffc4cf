"""Writes to the audit trail: records, the seals of the hash chain, verification runs.

``records.audit_record`` is the one way to write an audit record; it joins the
caller's transaction. ``sealing`` extends the chain after that transaction
commits (see the design note in ``audit.models`` for why the chain is sealed
out of band and what the unsealed window is); ``chain`` is the canonical form
and the hash that sealing and ``verification`` both compute.

The names below stay importable from the package because modules that other
owners edit import them from here (the accounts, approvals and fx services,
the movement engine, the back office's tests); everything else imports from
the submodules.
"""

from audit.services.records import audit_record, audit_record_unsaved, audit_rows_queued
from audit.services.sealing import audit_seal_after_commit
from audit.services.verification import verification_record

__all__ = ["audit_record", "audit_record_unsaved", "audit_rows_queued", "audit_seal_after_commit", "verification_record"]
