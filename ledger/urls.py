from django.urls import path

from ledger import apis

urlpatterns = [
    path("accounts", apis.AccountListCreateApi.as_view(), name="accounts"),
    path("accounts/<uuid:account_id>", apis.AccountDetailApi.as_view(), name="account-detail"),
    path("accounts/<uuid:account_id>/balance", apis.AccountBalanceApi.as_view(), name="account-balance"),
    path("accounts/<uuid:account_id>/entries", apis.AccountEntriesApi.as_view(), name="account-entries"),
]
