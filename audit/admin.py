"""Back office for the audit trail: read-only records with their seals, verification runs,
and django-auditlog's field-level log (re-registered with lists that stay on indexes).

(The dashboard, which reads the books, is registered by ``transactions.admin``: the
top layer may read every other app, while ``audit`` depends on none.)
"""

from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.filters import CIDFilter
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from audit.admin_tools import IndexedListAdmin, ReadOnlyAdmin, RecentFilter, term_email, term_int, term_uuid, user_condition
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


class AuditedModelFilter(admin.SimpleListFilter):
    """The models django-auditlog records, from its registry.

    auditlog's own ResourceTypeFilter finds its choices with a ``SELECT
    DISTINCT`` over the whole log on every page view.
    """

    title = "resource type"
    parameter_name = "resource_type"

    def lookups(self, request, model_admin):
        content_types = ContentType.objects.get_for_models(*auditlog.get_models()).values()
        return sorted(((content_type.pk, content_type.model) for content_type in content_types), key=lambda item: item[1])

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(content_type_id=value) if value else queryset


class TimestampFilter(RecentFilter):
    title = "timestamp"
    field_name = "timestamp"  # indexed


# auditlog registers its LogEntry admin itself (imported above, so it is registered by now):
# its search names ``actor__first_name``, which our User does not have (a 500 on every
# search), ORs icontains over the JSON changes, and its lists count the whole table.
admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class LogEntryAdmin(IndexedListAdmin, AuditlogLogEntryAdmin):
    """auditlog's display (changes rendered, links to the object and the actor) on an indexed list."""

    date_hierarchy = None
    ordering = ("-timestamp",)  # indexed; a hand-written ?o= of an unsortable column falls back to it
    # Choices, the registry, a typed correlation id, fixed ranges of an indexed column.
    list_filter = ("action", AuditedModelFilter, CIDFilter, TimestampFilter)
    search_help_text = "Search by the id of the changed object, or the actor's email (exact)."

    def search_condition(self, term: str) -> Q | None:
        object_pk = term_uuid(term)
        if object_pk is not None:
            return Q(object_pk=str(object_pk))
        if term_int(term) is not None:  # models with integer keys (groups)
            return Q(object_pk=term)
        return user_condition(term, "actor_id")
