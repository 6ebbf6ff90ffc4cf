"""No arithmetic path answers 500: storage overflows are clean errors in the envelope.

The movement engine refuses balances past its ceiling (409 ``balance_limit``)
before any sum can leave a bigint column; the error layer is the backstop for
any other path where the database refuses a number as out of range.
"""

import pytest
from django.db import connection
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger.exceptions import BALANCE_LIMIT as BALANCE_CEILING
from ledger.models import LedgerAccount
from ledgerx.urls import urlpatterns as project_urls
from ledger.tests.fixtures import client_for  # noqa: F401
from transactions.tests.helpers import books, funded_account


class _NotANumber(APIView):
    """A value the database refuses for its type (not a range problem)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT CAST(%s AS integer)", ["twelve"])
        return Response({})


class _BigintSum(APIView):
    """Asks the database for a sum past the bigint range, as a balance update past it would."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT CAST(%s AS bigint) + CAST(%s AS bigint)", [2**63 - 1, 1])
        return Response({})


class _TooLargeParameter(APIView):
    """A Python integer past the bigint range (a sum computed in Python, written back)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT CAST(%s AS bigint)", [2**70])
        return Response({})


urlpatterns = [
    path("api/v1/_bigint_sum", _BigintSum.as_view()),
    path("api/v1/_too_large", _TooLargeParameter.as_view()),
    path("api/v1/_not_a_number", _NotANumber.as_view()),
    *project_urls,
]


@pytest.mark.postgres
@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_a_bigint_overflow_in_the_database_is_409_balance_limit(client):
    response = client.get("/api/v1/_bigint_sum")
    assert (response.status_code, response.json()) == (409, BALANCE_LIMIT)


BALANCE_LIMIT = {
    "error": {"code": "balance_limit", "message": "The result would exceed the largest amount the ledger holds."}
}


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_an_integer_past_the_bigint_range_is_409_balance_limit_on_both_databases(client):
    response = client.get("/api/v1/_too_large")
    assert (response.status_code, response.json()) == (409, BALANCE_LIMIT)


@pytest.mark.postgres
@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_any_other_value_the_database_refuses_is_400_not_500(client):
    response = client.get("/api/v1/_not_a_number")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.django_db
def test_a_deposit_past_the_ceiling_is_409_and_moves_nothing(client_for):
    account = funded_account(amount=100)
    # The highest balance the database admits (ledger_account_customer_balance_limit).
    LedgerAccount.objects.filter(pk=account.pk).update(posted=BALANCE_CEILING)
    before = books()
    response = client_for(account.owner).post(
        "/api/v1/deposits", {"account": str(account.pk), "amount": 10**15}, format="json", HTTP_IDEMPOTENCY_KEY="edge"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "balance_limit"
    assert books() == before
