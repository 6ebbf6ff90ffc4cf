"""The LedgerX admin site: branding, a login through the API's login service, audited logouts.

Installed in place of ``django.contrib.admin`` (``audit.admin_config``), so
``admin.site`` everywhere is this site. The login form checks the password
with ``accounts.services.admin_login_check`` -- the same check, rate limits
(per client IP and per email, the API login's buckets: alternating between
the API and the admin buys no extra guesses) and audit records as
``POST /auth/login`` -- instead of Django's ModelBackend, which had no limit
and wrote no record.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm

from ledgerx.exceptions import LedgerXError


class BackOfficeLoginForm(AdminAuthenticationForm):
    def clean(self):
        from accounts.exceptions import InvalidCredentials
        from accounts.services import admin_login_check
        from ledgerx.api.ratelimit import auth_rate_limit_ip, auth_rate_limit_key

        email, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        try:
            auth_rate_limit_ip(self.request, scope="login")
            if email:
                auth_rate_limit_key(self.request, scope="login", value=email)
            if email is None or password is None:
                return self.cleaned_data
            self.user_cache = admin_login_check(email=email, password=password)
        except InvalidCredentials:
            raise self.get_invalid_login_error() from None
        except LedgerXError as exc:  # rate limited, or the limiter is down
            raise forms.ValidationError(exc.message, code=exc.code) from None
        self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class BackOfficeSite(admin.AdminSite):
    # Staff read "LedgerX back office", not "Django administration"; "View site"
    # opens the API documentation (there is no customer-facing site to view).
    site_header = "LedgerX back office"
    site_title = "LedgerX back office"
    index_title = "Back office"
    site_url = "/api/docs/"
    login_form = BackOfficeLoginForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._extra_views: list = []

    def register_view(self, route: str, view, name: str) -> None:
        """Add a page of the back office that is no model's list (the activity timeline, an export).

        Registered by the app that owns it (``backoffice.admin``); served behind
        ``admin_view`` (staff login, the idle timeout) like every admin page.
        """
        self._extra_views.append((route, view, name))

    def get_urls(self):
        from django.urls import path

        extra = [path(route, self.admin_view(view), name=name) for route, view, name in self._extra_views]
        return extra + super().get_urls()

    def logout(self, request, extra_context=None):
        from accounts.services import admin_logout_record

        if request.method == "POST" and request.user.is_authenticated:
            admin_logout_record(user=request.user)
        return super().logout(request, extra_context)
