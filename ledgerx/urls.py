from django.contrib import admin
from django.contrib.contenttypes.views import shortcut
from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ledgerx.api import health
from ledgerx.api.errors import api_not_found
from ledgerx.favicon import favicon
from ledgerx.observability.views import metrics_view

def admin_shortcut(request, content_type_id, object_id):
    """The admin's "view on site" redirect, with a malformed object id a 404.

    Django's own view looks the id up as given: on a model with a UUID key,
    ``/admin/r/<type>/1/`` raised a validation error (a 500).
    """
    try:
        return shortcut(request, content_type_id, object_id)
    except (ValidationError, ValueError, OverflowError) as exc:
        raise Http404("No such object.") from exc


api_v1 = [
    path("", health.api_index, name="api-index"),
    path("", include("accounts.urls")),
    path("", include("ledger.urls")),
    path("", include("transactions.urls")),
    path("", include("fx.urls")),
    path("", include("events.urls")),
    path("admin/", include("ledgerx.backoffice_urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include(api_v1)),
    path("admin/r/<int:content_type_id>/<path:object_id>/", admin.site.admin_view(admin_shortcut)),
    path("admin/", admin.site.urls),
    # Unknown API paths answer the JSON envelope even with DEBUG on (where
    # Django would otherwise render its HTML technical 404).
    re_path(r"^api/", api_not_found),
]

handler400 = "ledgerx.api.errors.handler400"
handler403 = "ledgerx.api.errors.handler403"
handler404 = "ledgerx.api.errors.handler404"
handler500 = "ledgerx.api.errors.handler500"
