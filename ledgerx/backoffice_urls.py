from django.urls import path

from audit.apis import AuditListApi

# The back-office API (role admin): routes to each app's admin_apis module.
urlpatterns: list = [
    path("audit", AuditListApi.as_view(), name="admin-audit-list"),
]
