"""Back office for users: find them, suspend and reinstate them (with a reason).

Suspension status changes only through ``user_suspend`` / ``user_reinstate``
(audited with the reason); PIN and password hashes are neither shown nor
editable. Field-level changes made here (role, staff flag, groups ...) are
recorded in LedgerX's audit trail (``admin.change``, old and new values).

Who may edit what (``get_readonly_fields``): staff with ``change_user`` edit
only the full name. Role, staff and superuser flags and groups grant power, so
only a superuser changes them, and never on their own user (a staff member
could otherwise promote themselves, and a superuser demote the last
superuser). ``is_active`` is never edited here: blocking a user is a
suspension, with a reason. The email is the login identity: changing it
without a reason or an audit of why would hand the account to whoever owns
the new address, so it is read-only too.
"""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.models import Group
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

# Imported before unregistering so the order of INSTALLED_APPS cannot bring them back.
from rest_framework_simplejwt.token_blacklist import admin as _token_blacklist_admin  # noqa: F401
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import User
from accounts.services import user_suspend
from approvals.admin import approval_or_result
from approvals.services import user_reinstate_requested
from audit.admin_tools import (
    PREFIX_MIN,
    AuditedChangeAdmin,
    IndexedListAdmin,
    ObjectActionsAdmin,
    reason_action,
    term_prefix,
    term_uuid,
    user_prefix_condition,
)
from audit.compliance import PERM_SUSPEND

# simplejwt's token admin: deleting a BlacklistedToken row un-revokes a refresh
# token, its add page loads every OutstandingToken and its lists count the whole
# table. Revocation is ``auth_logout`` / reuse detection; nothing here undoes it.
admin.site.unregister(OutstandingToken)
admin.site.unregister(BlacklistedToken)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """Groups grant permissions, so only a superuser adds, changes or deletes one.

    Django lets any staff user with ``auth.change_group`` edit groups: one could
    give their own group every permission. Others with ``view_group`` may look.
    """

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser



@admin.register(User)
class UserAdmin(ObjectActionsAdmin, IndexedListAdmin, AuditedChangeAdmin):
    list_display = ("email", "full_name", "role", "status", "is_staff", "created_at")
    list_filter = ("status", "role", "is_staff")
    search_help_text = (
        f"Search by the start of an email or of a name, any case, at least {PREFIX_MIN} characters "
        '("customer00", "ada lov"), or by user id.'
    )
    # created_at is indexed only behind status (accounts_user_status_idx); email is unique, so indexed.
    ordering = ("email",)
    sortable_by = ("email",)
    fields = (
        "email", "full_name", "role", "status", "pin_set", "failed_pin_attempts",
        "is_staff", "is_active", "is_superuser", "groups", "created_at", "last_login", "related_links",
    )
    readonly_fields = (
        "email", "status", "pin_set", "failed_pin_attempts", "is_active", "created_at", "last_login", "related_links",
    )
    # Editable only by a superuser, and not on their own user.
    privilege_fields = ("role", "is_staff", "is_superuser", "groups")
    filter_horizontal = ("groups",)
    actions = ("suspend_users", "reinstate_users")

    def get_readonly_fields(self, request, obj=None):
        """Read-only fields are left out of the form: a posted value for them is ignored."""
        readonly = tuple(self.readonly_fields)
        if not request.user.is_superuser or obj is None or obj.pk == request.user.pk:
            readonly += self.privilege_fields
        return readonly

    def search_condition(self, term: str) -> Q | None:
        user_pk = term_uuid(term)
        if user_pk is not None:
            return Q(pk=user_pk)
        prefix = term_prefix(term)
        return user_prefix_condition(prefix) if prefix is not None else None

    def has_add_permission(self, request) -> bool:
        # Users register through the API; operators through createsuperuser.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Users are referenced by audit records and the books: never deleted.
        return False

    def timeline_term(self, obj) -> str:
        return obj.email

    def object_actions(self, request, obj) -> list[tuple[str, str]]:
        if obj.status == User.Status.SUSPENDED:
            return [("reinstate_users", "Reinstate")]
        return [("suspend_users", "Suspend")]

    def has_suspend_permission(self, request) -> bool:
        return request.user.has_perm(PERM_SUSPEND)

    @admin.display(description="Accounts and activity")
    def related_links(self, obj: User) -> str:
        # By URL, not by import: the accounts app sits below the ledger and the audit trail's search.
        return format_html(
            '<a href="{}?q={}" id="ledgerx-user-accounts">Accounts</a> · '
            '<a href="{}?q={}" id="ledgerx-user-activity">Activity (by and about this user, and their money)</a>',
            reverse("admin:ledger_ledgeraccount_changelist"), obj.email,
            reverse("admin:ledgerx_activity"), obj.email,
        )

    @admin.display(boolean=True, description="PIN set")
    def pin_set(self, obj: User) -> bool:
        return obj.pin_set

    @admin.action(description="Suspend selected users (stops money movement)", permissions=["suspend"])
    def suspend_users(self, request, queryset):
        return reason_action(
            self, request, queryset,
            title="Suspend users",
            verb="Suspend",
            service=lambda *, actor, obj, reason: user_suspend(actor=actor, user=obj, reason=reason),
            explanation="Suspended users can still log in and read, but cannot move money until reinstated.",
        )

    @admin.action(description="Reinstate selected users (clears failed PIN count)", permissions=["suspend"])
    def reinstate_users(self, request, queryset):
        return reason_action(
            self, request, queryset,
            title="Reinstate users",
            verb="Reinstate",
            service=lambda *, actor, obj, reason: user_reinstate_requested(actor=actor, user=obj, reason=reason),
            explanation="Reinstated users can move money again; their failed PIN count is reset to zero. "
            "With four-eyes reinstatement on, each waits in Approvals for a second admin.",
            describe=approval_or_result,
        )
