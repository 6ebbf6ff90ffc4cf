from django.urls import path

from ledgerx.api import converters  # noqa: F401  (registers <uuid_ci:...>)
from transactions import apis

urlpatterns = [
    path("deposits", apis.DepositCreateApi.as_view(), name="deposits"),
    path("withdrawals", apis.WithdrawalCreateApi.as_view(), name="withdrawals"),
    path("transfers", apis.TransferCreateApi.as_view(), name="transfers"),
    path("conversions", apis.ConversionCreateApi.as_view(), name="conversions"),
    path("batches", apis.BatchesApi.as_view(), name="batches"),
    path("batches/<uuid_ci:batch_id>", apis.BatchDetailApi.as_view(), name="batch-detail"),
    path("transactions", apis.TransactionListApi.as_view(), name="transactions"),
    path("transactions/<uuid_ci:transaction_id>", apis.TransactionDetailApi.as_view(), name="transaction-detail"),
    path("transactions/<uuid_ci:transaction_id>/commit", apis.HoldCommitApi.as_view(), name="transaction-commit"),
    path("transactions/<uuid_ci:transaction_id>/void", apis.HoldVoidApi.as_view(), name="transaction-void"),
]
