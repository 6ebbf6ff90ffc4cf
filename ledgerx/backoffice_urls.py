from django.urls import path

from accounts.admin_apis import UserReinstateApi, UserSuspendApi
from approvals.apis import ApprovalApproveApi, ApprovalListApi, ApprovalRejectApi
from audit.apis import AuditListApi
from fx.apis import RatesAdminApi
from ledger.admin_apis import AccountFreezeApi, AccountUnfreezeApi
from ledgerx.api import converters  # noqa: F401  (registers <uuid_ci:...>)
from transactions.admin_apis import TransactionReverseApi

# The back-office API (role admin): routes to each app's admin_apis module.
urlpatterns: list = [
    path("accounts/<uuid_ci:account_id>/freeze", AccountFreezeApi.as_view(), name="admin-account-freeze"),
    path("accounts/<uuid_ci:account_id>/unfreeze", AccountUnfreezeApi.as_view(), name="admin-account-unfreeze"),
    path("transactions/<uuid_ci:transaction_id>/reverse", TransactionReverseApi.as_view(), name="admin-transaction-reverse"),
    path("users/<uuid_ci:user_id>/suspend", UserSuspendApi.as_view(), name="admin-user-suspend"),
    path("users/<uuid_ci:user_id>/reinstate", UserReinstateApi.as_view(), name="admin-user-reinstate"),
    path("audit", AuditListApi.as_view(), name="admin-audit-list"),
    path("fx-rates", RatesAdminApi.as_view(), name="admin-fx-rates"),
    path("approvals", ApprovalListApi.as_view(), name="admin-approval-list"),
    path("approvals/<uuid_ci:approval_id>/approve", ApprovalApproveApi.as_view(), name="admin-approval-approve"),
    path("approvals/<uuid_ci:approval_id>/reject", ApprovalRejectApi.as_view(), name="admin-approval-reject"),
]
