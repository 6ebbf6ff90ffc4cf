"""Back office for the audit trail: read-only records with their seals, verification runs.

(The dashboard, which reads the books, is registered by ``transactions.admin``: the
top layer may read every other app, while ``audit`` depends on none.)
"""

from django.contrib import admin
from django.db.models import Q

from audit.admin_tools import ReadOnlyAdmin, RecentFilter, term_email, term_uuid, user_condition
from audit.models import AuditRecord, AuditSeal, VerificationRun


class AtFilter(RecentFilter):
    title = "at"
    field_name = "at"  # indexed


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    list_display = ("at", "action", "actor", "target_type", "target_id", "ip", "seq")
    list_filter = (AtFilter, "action")
    search_help_text = (
        "Search by the id of what a record is about (user, account, transaction), a record id, "
        "or an email: records by that actor or about that address (failed logins) (exact)."
    )
    list_select_related = ("actor", "seal")
    raw_id_fields = ("actor",)
    ordering = ("-at", "-id")
    sortable_by = ("at",)
    fields = ("id", "at", "actor", "action", "target_type", "target_id", "ip", "request_id", "data", "seq", "prev_hash", "hash")
    readonly_fields = fields

    def search_condition(self, term: str) -> Q | None:
        # target_id is text: a UUID as str() writes it, an email lowercased (auth.login_failed).
        record_pk = term_uuid(term)
        if record_pk is not None:
            return Q(target_id=str(record_pk)) | Q(pk=record_pk)
        email = term_email(term)
        if email is None:
            return None
        return Q(target_id=email[:64]) | user_condition(email, "actor_id")

    def _seal(self, obj):
        try:
            return obj.seal
        except AuditSeal.DoesNotExist:
            return None

    @admin.display(description="Chain #")
    def seq(self, obj) -> str:
        seal = self._seal(obj)
        return str(seal.seq) if seal else "awaiting seal"

    @admin.display(description="Previous hash")
    def prev_hash(self, obj) -> str:
        seal = self._seal(obj)
        return seal.prev_hash if seal else "-"

    @admin.display(description="Hash")
    def hash(self, obj) -> str:
        seal = self._seal(obj)
        return seal.hash if seal else "-"


@admin.register(VerificationRun)
class VerificationRunAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "ok", "summary")
    list_filter = ("kind", "ok")
    ordering = ("-at", "-id")

