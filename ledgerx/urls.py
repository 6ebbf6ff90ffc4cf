from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ledgerx.api import health
from ledgerx.api.errors import api_not_found
from ledgerx.observability.views import metrics_view

api_v1 = [
    path("", health.api_index, name="api-index"),
    path("", include("accounts.urls")),
    path("", include("ledger.urls")),
    path("", include("transactions.urls")),
    path("", include("audit.urls")),
    path("", include("events.urls")),
    path("admin/", include("ledgerx.backoffice_urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    # Unknown API paths answer the JSON envelope even with DEBUG on (where
    # Django would otherwise render its HTML technical 404).
    re_path(r"^api/", api_not_found),
]

handler400 = "ledgerx.api.errors.handler400"
handler403 = "ledgerx.api.errors.handler403"
handler404 = "ledgerx.api.errors.handler404"
handler500 = "ledgerx.api.errors.handler500"
