import uuid

import pytest

from accounts.models import User
from accounts.services import user_suspend
from accounts.tests.factories import DEFAULT_PASSWORD, AdminFactory, UserFactory
from audit.models import AuditAction, AuditRecord, AuditSeal
from ledger.models import LedgerAccount
from ledger.services.customer_accounts import account_freeze
from transactions.models import Transaction
from transactions.services.money import transfer_create, withdrawal_create
from transactions.tests.helpers import PIN, books, funded_account, new_key

pytestmark = pytest.mark.django_db
BASE = "/api/v1/admin"


def _transfer(source, destination, amount, **kwargs):
    return transfer_create(
        actor=source.owner, source=source, destination=destination, amount=amount, pin=PIN, idempotency_key=new_key(), **kwargs
    ).transaction


def _error(response):
    return response.json()["error"]


# --- permissions -----------------------------------------------------------------------


ENDPOINTS = [
    ("post", "accounts/{account}/freeze"),
    ("post", "accounts/{account}/unfreeze"),
    ("post", "transactions/{txn}/reverse"),
    ("post", "users/{user}/suspend"),
    ("post", "users/{user}/reinstate"),
    ("get", "audit"),
]


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_plain_users_get_403_forbidden_and_nothing_changes(user_api, method, path):
    account = funded_account(amount=1000)
    txn = Transaction.objects.get(destination_account=account)
    url = f"{BASE}/" + path.format(account=account.pk, txn=txn.pk, user=account.owner_id)
    before = books()
    response = getattr(user_api, method)(url, {"reason": "because"}, format="json")
    assert response.status_code == 403
    assert response.json() == {"error": {"code": "forbidden", "message": "You do not have permission to perform this action."}}
    assert books() == before
    assert User.objects.get(pk=account.owner_id).status == "active"


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_anonymous_callers_get_401(api_client, method, path):
    url = f"{BASE}/" + path.format(account=uuid.uuid4(), txn=uuid.uuid4(), user=uuid.uuid4())
    response = getattr(api_client, method)(url, {"reason": "x"}, format="json")
    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"


def test_staff_with_role_user_is_forbidden_on_the_api(api_client):
    staff = UserFactory(is_staff=True, is_superuser=True, role=User.Role.USER)
    api_client.force_authenticate(staff)
    assert api_client.get(f"{BASE}/audit").status_code == 403


@pytest.mark.parametrize(
    "path",
    ["accounts/{id}/freeze", "accounts/{id}/unfreeze", "transactions/{id}/reverse", "users/{id}/suspend", "users/{id}/reinstate"],
)
def test_unknown_ids_are_404(admin_api, path):
    response = admin_api.post(f"{BASE}/" + path.format(id=uuid.uuid4()), {"reason": "x"}, format="json")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": None}, {"reason": 12}, {"reason": ["x"]}])
def test_reason_is_required_non_empty_string(admin_api, body):
    account = funded_account(amount=1000)
    before = books()
    response = admin_api.post(f"{BASE}/accounts/{account.pk}/freeze", body, format="json")
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["reason"]
    assert books() == before
    assert LedgerAccount.objects.get(pk=account.pk).status == "active"


def test_a_system_account_cannot_be_frozen_through_the_api(admin_api):
    funded_account(amount=1000)
    system = LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SYSTEM).first()
    response = admin_api.post(f"{BASE}/accounts/{system.pk}/freeze", {"reason": "x"}, format="json")
    assert response.status_code == 404


# --- freeze / unfreeze ------------------------------------------------------------------


def test_freeze_then_unfreeze(admin_api, admin_user):
    account = funded_account(amount=1234)
    response = admin_api.post(f"{BASE}/accounts/{account.pk}/freeze", {"reason": "sanctions hit"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["balance"]) == (
        str(account.pk), "frozen", {"posted": 1234, "pending": 0, "available": 1234}
    )
    assert set(body) == {"id", "number", "name", "currency", "status", "balance", "created_at"}
    record = AuditRecord.objects.get(action=AuditAction.ACCOUNT_FROZEN)
    assert (record.actor_id, record.target_id, record.data["reason"]) == (admin_user.pk, str(account.pk), "sanctions hit")

    again = admin_api.post(f"{BASE}/accounts/{account.pk}/freeze", {"reason": "again"}, format="json")
    assert again.status_code == 409
    assert _error(again)["code"] == "invalid_state"

    response = admin_api.post(f"{BASE}/accounts/{account.pk}/unfreeze", {"reason": "cleared"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    assert AuditRecord.objects.filter(action=AuditAction.ACCOUNT_FROZEN).count() == 1
    assert AuditRecord.objects.filter(action=AuditAction.ACCOUNT_UNFROZEN).count() == 1


def test_unfreezing_an_active_account_is_409(admin_api):
    account = funded_account(amount=0)
    response = admin_api.post(f"{BASE}/accounts/{account.pk}/unfreeze", {"reason": "x"}, format="json")
    assert response.status_code == 409
    assert _error(response)["code"] == "invalid_state"


# --- reverse ------------------------------------------------------------------------------


def test_reverse_returns_201_with_the_reversal(admin_api, admin_user):
    source, destination = funded_account(amount=5000), funded_account(amount=0)
    original = _transfer(source, destination, 1500)
    response = admin_api.post(f"{BASE}/transactions/{original.pk}/reverse", {"reason": "dispute 42"}, format="json")
    assert response.status_code == 201
    body = response.json()
    reversal = Transaction.objects.get(reverses=original)
    assert body["id"] == str(reversal.pk)
    assert (body["type"], body["status"], body["amount"], body["currency"], body["reverses"]) == (
        "reversal", "committed", 1500, "USD", str(original.pk)
    )
    assert (body["source_account"], body["destination_account"]) == (str(destination.pk), str(source.pk))
    original.refresh_from_db()
    source.refresh_from_db()
    destination.refresh_from_db()
    assert (original.status, source.posted, destination.posted) == ("reversed", 5000, 0)
    detail = admin_api.post(f"{BASE}/transactions/{original.pk}/reverse", {"reason": "twice"}, format="json")
    assert detail.status_code == 409
    assert _error(detail)["code"] == "invalid_state"


def test_reversing_a_reversal_or_a_pending_hold_is_409(admin_api):
    source, destination = funded_account(amount=5000), funded_account(amount=0)
    original = _transfer(source, destination, 100)
    admin_api.post(f"{BASE}/transactions/{original.pk}/reverse", {"reason": "r"}, format="json")
    reversal = Transaction.objects.get(reverses=original)
    hold = _transfer(source, destination, 100, hold=True)
    before = books()
    for txn in (reversal, hold):
        response = admin_api.post(f"{BASE}/transactions/{txn.pk}/reverse", {"reason": "r"}, format="json")
        assert response.status_code == 409
        assert _error(response)["code"] == "invalid_state"
    assert books() == before


def test_reversal_that_would_overdraw_a_customer_is_409_insufficient_funds(admin_api):
    source, destination = funded_account(amount=5000), funded_account(amount=0)
    original = _transfer(source, destination, 3000)
    withdrawal_create(actor=destination.owner, account=destination, amount=2500, pin=PIN, idempotency_key=new_key())
    before = books()
    response = admin_api.post(f"{BASE}/transactions/{original.pk}/reverse", {"reason": "late dispute"}, format="json")
    assert response.status_code == 409
    assert _error(response)["code"] == "insufficient_funds"
    assert books() == before
    assert Transaction.objects.get(pk=original.pk).status == "committed"


# --- suspend / reinstate ---------------------------------------------------------------------


def test_suspend_and_reinstate(admin_api, admin_user):
    target = UserFactory()
    response = admin_api.post(f"{BASE}/users/{target.pk}/suspend", {"reason": "chargebacks"}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "id": str(target.pk), "email": target.email, "full_name": target.full_name,
        "role": "user", "status": "suspended", "pin_set": False,
    }
    assert admin_api.post(f"{BASE}/users/{target.pk}/suspend", {"reason": "x"}, format="json").status_code == 409
    User.objects.filter(pk=target.pk).update(failed_pin_attempts=3)
    response = admin_api.post(f"{BASE}/users/{target.pk}/reinstate", {"reason": "ok now"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    target.refresh_from_db()
    assert target.failed_pin_attempts == 0
    actions = list(AuditRecord.objects.filter(target_id=str(target.pk)).order_by("at").values_list("action", "actor_id"))
    assert actions == [("user.suspended", admin_user.pk), ("user.reinstated", admin_user.pk)]


def test_a_suspended_admin_can_change_nothing_not_even_their_own_suspension(admin_api, admin_user):
    source, destination = funded_account(amount=5000), funded_account(amount=0)
    original = _transfer(source, destination, 1500)
    target = UserFactory()
    user_suspend(actor=AdminFactory(), user=admin_user, reason="under review")
    before = books()
    for path in (
        f"transactions/{original.pk}/reverse",
        f"accounts/{source.pk}/freeze",
        f"users/{target.pk}/suspend",
        f"users/{admin_user.pk}/reinstate",
    ):
        response = admin_api.post(f"{BASE}/{path}", {"reason": "r"}, format="json")
        assert (response.status_code, _error(response)["code"]) == (403, "user_suspended"), path
    assert books() == before
    assert Transaction.objects.get(pk=original.pk).status == "committed"
    assert LedgerAccount.objects.get(pk=source.pk).status == "active"
    assert User.objects.get(pk=admin_user.pk).status == "suspended"
    assert User.objects.get(pk=target.pk).status == "active"
    assert admin_api.get(f"{BASE}/audit").status_code == 200  # reading stays allowed


def test_an_admin_cannot_suspend_themself(admin_api, admin_user):
    AdminFactory()  # not the last admin either
    response = admin_api.post(f"{BASE}/users/{admin_user.pk}/suspend", {"reason": "oops"}, format="json")
    assert response.status_code == 409
    assert _error(response) == {"code": "invalid_state", "message": "You cannot suspend yourself."}
    assert User.objects.get(pk=admin_user.pk).status == "active"
    assert not AuditRecord.objects.filter(action=AuditAction.USER_SUSPENDED).exists()


def test_the_last_active_admin_cannot_be_suspended(admin_user):
    other = AdminFactory()
    user_suspend(actor=admin_user, user=other, reason="left the company")
    # Now admin_user is the only active admin: a superuser script (actor None) cannot suspend them either.
    from ledgerx.exceptions import InvalidState

    with pytest.raises(InvalidState, match="The last active admin cannot be suspended."):
        user_suspend(actor=None, user=admin_user, reason="x")
    assert User.objects.get(pk=admin_user.pk).status == "active"
    assert AuditRecord.objects.filter(action=AuditAction.USER_SUSPENDED).count() == 1


def test_the_last_active_admin_through_the_api(admin_api, admin_user):
    second = AdminFactory()
    user_suspend(actor=second, user=AdminFactory(), reason="a third admin, suspended")
    # admin_user suspends second: admin_user stays as the one active admin, which is allowed.
    assert admin_api.post(f"{BASE}/users/{second.pk}/suspend", {"reason": "r"}, format="json").status_code == 200
    assert User.objects.filter(role="admin", status="active").count() == 1


# --- audit list --------------------------------------------------------------------------------


def test_audit_list_newest_first_filters_and_paginates(admin_api, admin_user):
    account = funded_account(amount=100)
    account_freeze(actor=admin_user, account=account, reason="r1")
    other = funded_account(amount=100)
    response = admin_api.get(f"{BASE}/audit", {"target_id": str(account.pk)})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [row["action"] for row in results] == ["account.frozen", "account.opened"]
    assert set(results[0]) == {"id", "at", "actor", "action", "target_type", "target_id", "ip", "request_id", "data", "hash", "prev_hash"}
    assert (results[0]["actor"], results[0]["data"]["reason"]) == (str(admin_user.pk), "r1")

    by_actor = admin_api.get(f"{BASE}/audit", {"actor": str(admin_user.pk)}).json()["results"]
    assert [row["action"] for row in by_actor] == ["account.frozen"]
    by_action = admin_api.get(f"{BASE}/audit", {"action": "account.opened"}).json()["results"]
    assert {row["target_id"] for row in by_action} == {str(account.pk), str(other.pk)}

    total = AuditRecord.objects.count()
    page = admin_api.get(f"{BASE}/audit", {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"] and page["previous"] is None
    seen = [row["id"] for row in page["results"]]
    while page["next"]:
        page = admin_api.get(page["next"]).json()
        seen += [row["id"] for row in page["results"]]
    assert len(seen) == len(set(seen)) == total
    newest = list(AuditRecord.objects.order_by("-at", "-id").values_list("id", flat=True))
    assert seen == [str(pk) for pk in newest]


def test_audit_list_shows_the_seal_once_sealed(admin_api):
    from audit.services.sealing import audit_seal_pending

    funded_account(amount=100)
    rows = admin_api.get(f"{BASE}/audit").json()["results"]
    assert all(row["hash"] is None and row["prev_hash"] is None for row in rows)
    audit_seal_pending()
    rows = admin_api.get(f"{BASE}/audit").json()["results"]
    seals = {seal.record_id: seal for seal in AuditSeal.objects.all()}
    assert len(rows) == len(seals) >= 3
    for row in rows:
        seal = seals[uuid.UUID(row["id"])]
        assert (row["hash"], row["prev_hash"]) == (seal.hash, seal.prev_hash)
    # One chain: starts at the genesis hash, each link names the previous hash.
    hashes = {row["hash"] for row in rows}
    assert sorted(row["prev_hash"] in hashes for row in rows) == [False] + [True] * (len(rows) - 1)
    assert "0" * 64 in {row["prev_hash"] for row in rows}


@pytest.mark.parametrize("query", [{"actor": "not-a-uuid"}, {"action": "no.such"}])
def test_audit_list_rejects_bad_filters(admin_api, query):
    response = admin_api.get(f"{BASE}/audit", query)
    assert response.status_code == 400
    assert list(_error(response)["fields"]) == list(query)


def test_admin_api_with_a_real_login_token(api_client, admin_user):
    login = api_client.post("/api/v1/auth/login", {"email": admin_user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert login.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
    response = api_client.get(f"{BASE}/audit", {"action": "auth.login_succeeded"}, HTTP_X_REQUEST_ID="trace-77")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "trace-77"
