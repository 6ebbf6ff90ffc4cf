"""Shared pieces of the back office (Django admin): read-only admins, lists built
for tables of millions of rows (a paginator that never counts a whole table,
search by exact lookups and sorting by indexed columns only), and back-office
actions that ask for a reason on a confirmation page and then call the owning
service.

The admin is a client of the services: an action here never writes a model
itself; it calls ``account_freeze``, ``user_suspend``, ``transaction_reverse``
... with ``actor=request.user``, exactly as the admin API does, so the same
locks, checks and audit records apply.
"""

import re
import uuid
from collections.abc import Callable
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils import timezone
from django.utils.functional import cached_property

from audit.admin_reauth import password_proof_fresh, password_reverify
from ledgerx.db.replicas import replica_run
from ledgerx.exceptions import LedgerXError

# At most this many rows are counted for a changelist; beyond it the admin
# shows "COUNT_CAP+" pages and staff narrow the list with filters and search.
COUNT_CAP = 10_000
# A back-office action applies to at most this many objects at once.
ACTION_MAX_OBJECTS = 100


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows (``SELECT COUNT(*) FROM (... LIMIT n)``).

    Django's default paginator runs COUNT(*) over the whole filtered queryset,
    which on a table of millions of postings is a full scan on every page view.
    """

    @cached_property
    def count(self) -> int:
        counted = self.object_list[: COUNT_CAP + 1].count()
        return CappedCount(counted) if counted > COUNT_CAP else counted


class CappedCount(int):
    """A count that reached the cap: computes as COUNT_CAP + 1 (pages, "select all"), reads "10,000+".

    The admin's templates print ``cl.result_count`` in several places (the
    paginator line, "N results", "Select all N"); "10001 postings" there
    claimed an exact count nobody took.
    """

    def __str__(self) -> str:
        return f"{COUNT_CAP:,}+"


# --- Search by the shape of the term ------------------------------------------------------

# A condition that matches no row; Django answers it without a query.
NO_ROWS = Q(pk__in=[])
_DIGITS = re.compile(r"[0-9]{1,18}")  # [0-9], not \d (which also matches other scripts' digits); fits a bigint
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def term_int(term: str) -> int | None:
    """``term`` as a bigint id ("123"), or None."""
    return int(term) if _DIGITS.fullmatch(term) else None


def term_uuid(term: str) -> uuid.UUID | None:
    """``term`` as a UUID (with or without hyphens, any case), or None."""
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


def term_email(term: str) -> str | None:
    """``term`` as an email in the form users are stored (lowercased whole: ``UserManager``), or None."""
    return term.lower() if _EMAIL.fullmatch(term) else None


# A prefix search needs at least this many characters ("cu" would list most users).
PREFIX_MIN = 3
# A search by the start of an owner's email looks at most this many matching users' rows.
PREFIX_USERS_MAX = 50


def term_prefix(term: str) -> str | None:
    """``term`` lowercased as the start of an email or a name, or None if too short to narrow a list."""
    return term.lower() if len(term) >= PREFIX_MIN else None


def user_prefix_condition(prefix: str) -> Q:
    """Users whose email or name starts with ``prefix`` (any case).

    Two index range scans ORed: the unique email column's ``varchar_pattern_ops``
    index (emails are stored lowercase) and ``accounts_user_name_prefix_idx``
    on ``lower(full_name)`` (accounts/0002).
    """
    from django.db.models.functions import Lower
    from django.db.models.lookups import StartsWith

    return Q(email__startswith=prefix) | Q(StartsWith(Lower("full_name"), prefix))


def user_condition(term: str, *columns: str) -> Q | None:
    """Rows whose user ``columns`` (foreign keys to the user) name the user with the email ``term``.

    The user is resolved first, by the unique index on the stored (lowercase)
    email, so the list filters on the foreign key's own index instead of
    joining the user table. None when ``term`` is not an email.
    """
    email = term_email(term)
    if email is None:
        return None
    user_pk = get_user_model().objects.filter(email=email).values_list("pk", flat=True).first()
    return NO_ROWS if user_pk is None else any_column_is(user_pk, columns)


def any_column_is(value, columns) -> Q:
    """``col1 = value OR col2 = value ...``: each column with an index of its own, that is a bitmap OR of index scans."""
    condition = Q()
    for column in columns:
        condition |= Q(**{column: value})
    return condition


class _IndexOrderedChangeList(ChangeList):
    """Sorts only by the admin's ``sortable_by`` columns, and breaks ties in their direction."""

    def get_ordering_field(self, field_name):
        # ``sortable_by`` alone only hides the header links: a hand-written
        # ``?o=2`` still sorted the whole table by any column. A column that is
        # not sortable has no ordering field, so Django skips it (and the
        # list's default order applies).
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)

    def get_ordering(self, request, queryset):
        return self._index_order(super().get_ordering(request, queryset))

    def _index_order(self, ordering: list) -> list:
        """Each column once, and the primary-key tie-break in the direction of the first column.

        Django puts the clicked column before the admin's whole default order
        (``created_at``, ``-created_at``, ``-id``): the database then orders by
        (created_at ASC, id DESC), which no (created_at, id) index serves in
        either direction, so it sorts the whole table.
        """
        pk_name = self.lookup_opts.pk.name
        result, seen = [], set()
        for part in ordering:
            if not isinstance(part, str):
                result.append(part)
                continue
            name = part.lstrip("-")
            name = pk_name if name == "pk" else name
            if name not in seen:
                seen.add(name)
                result.append(part)
        first, last = result[0] if result else None, result[-1] if result else None
        if len(result) > 1 and isinstance(first, str) and isinstance(last, str) and last.lstrip("-") in ("pk", pk_name):
            result[-1] = ("-" if first.startswith("-") else "") + last.lstrip("-")
        return result


class IndexedListAdmin(admin.ModelAdmin):
    """A changelist for a table of millions of rows: every query it runs is served by an index.

    * Counts are capped (``CappedCountPaginator``) and the unfiltered total is not counted.
    * Search maps the term by its shape (``search_condition``: a UUID, digits,
      an email) to exact lookups on indexed columns. Django's own search runs
      ``UPPER(col::text) = UPPER(...)`` or ``LIKE`` per search field, ORed
      across joins: a sequential scan of every table involved on every search.
      A term of no known shape finds no rows and says which shapes work.
    * Only the columns named in ``sortable_by`` (subclasses name indexed
      ones) sort the list, from the header or the URL; Django's default makes
      every column, joins included, a click away from sorting the whole table.
      The default ``ordering`` must be an index's order too.
    * No ``date_hierarchy``: it runs MIN/MAX and ``SELECT DISTINCT`` date
      truncations over the table on every page view (``RecentFilter`` instead),
      and no list filter that computes its choices from the table
      (``FixedChoicesFilter``).
    """

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # "Show counts" counts every filter choice over the whole table
    paginator = CappedCountPaginator
    list_per_page = 50
    sortable_by = ()
    # Subclasses that search say here which shapes of term they take (shown under the search box).
    search_help_text = None

    def search_condition(self, term: str) -> Q | None:
        """A condition on indexed columns for a search term, or None if its shape means nothing here."""
        return None

    def get_search_fields(self, request):
        # Non-empty makes Django show the search box; the terms never reach
        # these fields (``get_search_results`` below maps them).
        return ("pk",) if self.search_help_text else ()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = self.search_condition(term)
        if condition is None:
            help_text = self.search_help_text or "This list has no search."
            self.message_user(request, f'"{term}" was not searched. {help_text}', level=messages.WARNING)
            return queryset.none(), False
        return queryset.filter(condition), False

    def get_changelist(self, request, **kwargs):
        return _IndexOrderedChangeList

    # A list's "Export CSV" button downloads the list as filtered and searched (audit.exports).
    change_list_template = "admin/ledgerx/change_list.html"

    def changelist_view(self, request, extra_context=None):
        """The list page titled "Ledger accounts" (not Django's "Select ledger account to change").

        A list page read (GET) is served by a replica when one may
        (``ledgerx.db.replicas``); a POST runs an action, whose rows must come
        from the primary. The page is rendered here, inside the choice, so its
        lazy querysets are evaluated where it was made.
        """
        from django.utils.text import capfirst

        extra_context = {"title": capfirst(str(self.model._meta.verbose_name_plural)), **(extra_context or {})}
        if request.method != "GET":
            return super().changelist_view(request, extra_context)

        def rendered():
            response = super(IndexedListAdmin, self).changelist_view(request, extra_context)
            if hasattr(response, "render"):
                response.render()
            return response

        return replica_run(request.user.pk, rendered)
    def get_urls(self):
        from django.urls import path

        opts = self.model._meta
        export = path(
            "export/", self.admin_site.admin_view(self.export_view), name=f"{opts.app_label}_{opts.model_name}_export"
        )
        return [export, *super().get_urls()]

    def export_view(self, request):
        """The changelist's rows as CSV: the same filters, search and order, at most ``EXPORT_MAX_ROWS``."""
        from django.contrib.admin.options import IncorrectLookupParameters
        from django.core.exceptions import PermissionDenied

        from audit.exports import changelist_csv_response

        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            opts = self.model._meta
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist") + "?e=1")
        return changelist_csv_response(self, request, changelist)


class ReadOnlyAdmin(IndexedListAdmin):
    """Viewable, never added, changed or deleted through the admin (superusers included)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReasonForm(forms.Form):
    """The confirmation page's form: a reason, and the password when the session's last check is old."""

    reason = forms.CharField(
        label="Reason",
        max_length=1000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required. Recorded in the audit trail with your name.",
    )

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        if not password_proof_fresh(request.session):
            minutes = max(1, settings.ADMIN_REAUTH_SECONDS // 60)
            self.fields["password"] = forms.CharField(
                label="Your password",
                strip=False,
                widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
                help_text=f"Required: your password was last checked more than {minutes} minute(s) ago.",
            )

    def clean_password(self):
        from accounts.exceptions import InvalidCredentials

        password = self.cleaned_data["password"]
        try:
            password_reverify(self.request, password)
        except InvalidCredentials:
            raise forms.ValidationError("Wrong password.", code="invalid_credentials") from None
        except LedgerXError as exc:  # rate limited, or the limiter is down
            raise forms.ValidationError(exc.message, code=exc.code) from None
        return password


# An action started from an object page names the page to go back to ("No, take me back", and after it ran).
BACK_FIELD = "_ledgerx_back"


def _back_url(request) -> str:
    """Where "No, take me back" leads: the object page the action came from, else the list with its filters."""
    back = request.POST.get(BACK_FIELD, "")
    if back.startswith("/admin/") and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    return request.get_full_path()


def reason_action(
    modeladmin: admin.ModelAdmin,
    request,
    queryset,
    *,
    title: str,
    verb: str,
    service: Callable,
    explanation: str,
    describe: Callable | None = None,
):
    """Run ``service(actor, obj, reason)`` on each selected object after a confirmation page.

    ``describe(obj, result)``, if given, says in the success message what the
    service did with ``obj`` (e.g. "approval requested" instead of acting).

    First call (from the changelist's action menu): renders the confirmation
    page listing the objects, with a mandatory reason. Second call (the page's
    form, ``confirm=yes``): validates the reason, calls the service per object
    and reports what was done and what was refused (e.g. already frozen). An
    empty reason shows the page again with the error; nothing is changed.
    """
    back_url = _back_url(request)
    objects = list(queryset[: ACTION_MAX_OBJECTS + 1])
    if len(objects) > ACTION_MAX_OBJECTS:
        modeladmin.message_user(
            request, f"Select at most {ACTION_MAX_OBJECTS} objects for one action.", level=messages.ERROR
        )
        return None
    if request.POST.get("confirm") == "yes":
        form = ReasonForm(request.POST, request=request)
        if form.is_valid():
            done, refused = [], []
            for obj in objects:
                try:
                    result = service(actor=request.user, obj=obj, reason=form.cleaned_data["reason"])
                    done.append(describe(obj, result) if describe else str(obj))
                except LedgerXError as exc:
                    refused.append(f"{verb} refused for {obj}: {exc.message}")
            if done:
                modeladmin.message_user(request, f"{verb}: {', '.join(done)}.", level=messages.SUCCESS)
            for line in refused:
                modeladmin.message_user(request, line, level=messages.ERROR)
            # From an object page: back to it. From a list: None (Django reloads the list, filters kept).
            return HttpResponseRedirect(back_url) if request.POST.get(BACK_FIELD) else None
    else:
        form = ReasonForm(request=request)
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "verb": verb,
        "explanation": explanation,
        "objects": objects,
        "form": form,
        "opts": opts,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "select_across": request.POST.get("select_across", "0"),
        "index": request.POST.get("index", "0"),
        "media": modeladmin.media,
        "back_url": back_url,
        "back_field": BACK_FIELD,
        "back_posted": request.POST.get(BACK_FIELD, ""),
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/ledgerx/confirm_action.html", context)


def _plain(value):
    """A form value as JSON-friendly data for the audit record."""
    if hasattr(value, "all") and callable(value.all):  # a related manager or queryset (groups)
        return sorted(str(item.pk) for item in value.all())
    if isinstance(value, (list, tuple, set)):
        return sorted(str(getattr(item, "pk", item)) for item in value)
    if hasattr(value, "pk"):
        return str(value.pk)
    return value if isinstance(value, (str, int, bool, type(None))) else str(value)


class AuditedChangeAdmin(admin.ModelAdmin):
    """Records every admin edit as an ``admin.change`` audit record (old and new values).

    Runs inside the admin's own transaction around the change view, so the edit
    and its audit record commit together. It is the one record of admin edits:
    (django-auditlog, which kept a second, look-alike trail, is no longer installed.)

    An edit writes only the columns the form changed (``save_model``).
    """

    def save_model(self, request, obj, form, change):
        """Write only the fields this form changed, never the whole row.

        Django's default ``obj.save()`` writes every column with the values read
        when the change view loaded the object. Other code writes the same rows
        meanwhile -- a transfer an account's balance, a third wrong PIN a user's
        status -- and the whole-row write would silently put the old values back.
        """
        if not change:
            return super().save_model(request, obj, form, change)
        columns = {field.name for field in obj._meta.concrete_fields}
        changed = [name for name in form.changed_data if name in columns]
        if changed:  # many-to-many changes (groups) are saved by save_related
            obj.save(update_fields=changed)

    def save_related(self, request, form, formsets, change):
        from audit.models import AuditAction
        from audit.services.records import audit_record

        super().save_related(request, form, formsets, change)
        if not form.changed_data:
            return
        obj = form.instance
        audit_record(
            actor=request.user,
            action=AuditAction.ADMIN_CHANGE,
            target_type=obj._meta.label_lower,
            target_id=obj.pk,
            data={
                "changed": list(form.changed_data),
                "old": {name: _plain(form.initial.get(name)) for name in form.changed_data},
                "new": {name: _plain(form.cleaned_data.get(name)) for name in form.changed_data},
            },
        )


class FixedChoicesFilter(admin.SimpleListFilter):
    """A list filter over a fixed set of values.

    Django's default filter for a plain CharField runs ``SELECT DISTINCT`` over
    the whole table to find its choices: a full scan of millions of rows on
    every page view. Subclasses name the field and its values instead.
    """

    field_name = ""

    def choices_for(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return self.choices_for()

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field_name: value}) if value else queryset


class CurrencyFilter(FixedChoicesFilter):
    title = "currency"
    parameter_name = "currency"
    field_name = "currency"

    def choices_for(self):
        from django.conf import settings

        return [(code, code) for code in sorted(settings.CURRENCIES)]


class RecentFilter(admin.SimpleListFilter):
    """Rows of today, the past 7 or the past 30 days, by a timestamp column with an index of its own.

    Fixed ranges in place of ``date_hierarchy``, whose links are computed
    from the table (MIN/MAX, ``SELECT DISTINCT`` date truncations) on every
    page view. A range is one ``col >= since`` condition the index serves.
    """

    parameter_name = "since"
    field_name = ""
    RANGES = {"today": "Today", "7d": "Past 7 days", "30d": "Past 30 days"}

    def lookups(self, request, model_admin):
        return list(self.RANGES.items())

    def queryset(self, request, queryset):
        value = self.value()
        if value not in self.RANGES:
            return queryset
        now = timezone.now()
        if value == "today":
            since = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            since = now - timedelta(days=int(value.removesuffix("d")))
        return queryset.filter(**{f"{self.field_name}__gte": since})


# --- Lookups: only the filters a list offers ------------------------------------------------

# What Django's own field filters put in the URL after the field name.
_FIELD_FILTER_SUFFIXES = ("", "__exact", "__isnull", "__id__exact", "__in", "__gte", "__lt")


def offered_lookups(model_admin, request) -> set[str]:
    """The URL parameters the list's filters themselves write (and nothing else)."""
    from django.contrib.admin.filters import ListFilter

    offered: set[str] = set()
    list_filter = model_admin.get_list_filter(request) if request is not None else model_admin.list_filter
    for item in list_filter:
        if isinstance(item, type) and issubclass(item, ListFilter):
            offered.add(getattr(item, "parameter_name", "") or "")
            continue
        name = item[0] if isinstance(item, (list, tuple)) else item
        offered.update(f"{name}{suffix}" for suffix in _FIELD_FILTER_SUFFIXES)
    offered.discard("")
    return offered


def offered_lookup_allowed(model_admin, lookup, value, request=None) -> bool:
    """``ModelAdmin.lookup_allowed`` that allows only the list's own filters.

    Django allows any lookup on a model's local fields, so a query string such
    as ``?password__startswith=pbkdf2_sha256$1`` or ``?pin_hash__startswith=`` on
    the user list was a yes/no oracle over the hashes for anyone who may view
    the list. Here a lookup must be one a filter in ``list_filter`` writes
    (``status__exact``, a SimpleListFilter's ``parameter_name``); the raw-id
    popups' ``limit_choices_to`` lookups stay allowed as in Django.
    """
    from django.contrib.admin import widgets

    for fk_lookup in model_admin.model._meta.related_fkey_lookups:
        if callable(fk_lookup):
            fk_lookup = fk_lookup()
        if (lookup, value) in widgets.url_params_from_lookup_dict(fk_lookup).items():
            return True
    return lookup in offered_lookups(model_admin, request)


def lookups_restrict(site) -> None:
    """Give every ModelAdmin registered on ``site`` (third-party ones included) ``offered_lookup_allowed``."""
    from types import MethodType

    for model_admin in site._registry.values():
        model_admin.lookup_allowed = MethodType(offered_lookup_allowed, model_admin)


# --- Object pages: the actions as buttons ------------------------------------------------------


class ObjectActionsAdmin(admin.ModelAdmin):
    """Change pages with the object's back-office actions as buttons, and its status as a badge.

    Each button posts the list's own action for this one object, so it gets the
    same reason confirmation page, permission check and service call as the
    list's action menu; afterwards (or on "No, take me back") staff are back on
    the object's page. Subclasses say which actions fit the object's state.
    """

    change_form_template = "admin/ledgerx/change_form.html"

    def object_actions(self, request, obj) -> list[tuple[str, str]]:
        """``(action name, button label)`` pairs that fit ``obj`` now."""
        return []

    def object_panels(self, request, obj) -> list[tuple[str, str, str]]:
        """``(html id, title, html)`` sections shown below the object's fields (holds, statement ...)."""
        return []

    def timeline_term(self, obj) -> str | None:
        """What finds ``obj``'s activity timeline (an account number, an email, an id), or None if it has none."""
        return None

    def history_view(self, request, object_id, extra_context=None):
        """Django's "History" is the object's activity timeline (LedgerX's audit records and its money).

        Django's own page lists ``django.contrib.admin`` log entries, which
        LedgerX does not write: it said "no history" after a freeze.
        """
        from django.contrib.admin.utils import unquote
        from django.http import Http404
        from urllib.parse import urlencode

        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_or_change_permission(request, obj):
            raise Http404("No such object.")
        term = self.timeline_term(obj)
        if term is None:
            return super().history_view(request, object_id, extra_context)
        return HttpResponseRedirect(reverse("admin:ledgerx_activity") + "?" + urlencode({"q": term}))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from django.contrib.admin.utils import unquote

        # Buttons on the page as shown (GET); a POST (an edit) loads the object once, in Django's view.
        obj = self.get_object(request, unquote(object_id)) if request.method == "GET" else None
        allowed = self.get_actions(request)  # only those the user has the permission for
        offered = [(name, label) for name, label in self.object_actions(request, obj) if name in allowed] if obj else []
        opts = self.model._meta
        extra_context = {
            **(extra_context or {}),
            "ledgerx_object_actions": offered,
            "ledgerx_panels": self.object_panels(request, obj) if obj else [],
            "ledgerx_changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
            "ledgerx_status": getattr(obj, "status", None),
            "ledgerx_back_field": BACK_FIELD,
        }
        return super().change_view(request, object_id, form_url, extra_context)
