from django.urls import path

from ledger import apis
from ledgerx.api import converters  # noqa: F401  (registers <uuid_ci:...>)

urlpatterns = [
    path("accounts", apis.AccountListCreateApi.as_view(), name="accounts"),
    path("accounts/<uuid_ci:account_id>", apis.AccountDetailApi.as_view(), name="account-detail"),
    path("accounts/<uuid_ci:account_id>/balance", apis.AccountBalanceApi.as_view(), name="account-balance"),
    path("accounts/<uuid_ci:account_id>/entries", apis.AccountEntriesApi.as_view(), name="account-entries"),
]
