"""Four-eyes approvals through the back-office API, as the contract fixes them."""

import pytest
from django.test import override_settings

from accounts.models import User
from accounts.tests.factories import UserFactory
from approvals.models import ApprovalRequest
from audit.models import AuditAction, AuditRecord
from transactions.models import Transaction
from transactions.services.money import transfer_create
from transactions.tests.helpers import PIN, books, funded_account, new_key

pytestmark = pytest.mark.django_db
BASE = "/api/v1/admin"
THRESHOLD = override_settings(FOUR_EYES_AMOUNT={"USD": 100_000})


def _transfer(source, destination, amount):
    return transfer_create(
        actor=source.owner, source=source, destination=destination, amount=amount, pin=PIN, idempotency_key=new_key()
    ).transaction


def _big_transfer(amount=100_000):
    source, destination = funded_account(amount=amount), funded_account(amount=0)
    return _transfer(source, destination, amount), source, destination


def _request_reversal(api, txn, reason="chargeback"):
    return api.post(f"{BASE}/transactions/{txn.pk}/reverse", {"reason": reason}, format="json")


@THRESHOLD
def test_a_reversal_at_the_threshold_answers_202_with_a_pending_request_and_moves_nothing(requester_api, requester):
    txn, _source, _destination = _big_transfer(100_000)
    before = books()
    response = _request_reversal(requester_api, txn)
    assert response.status_code == 202
    body = response.json()
    approval = ApprovalRequest.objects.get()
    assert body == {
        "id": str(approval.pk),
        "action": "transaction.reverse",
        "target_id": str(txn.pk),
        "requested_by": str(requester.pk),
        "reason": "chargeback",
        "status": "pending",
        "created_at": body["created_at"],
        "decided_by": None,
        "decided_at": None,
        "decision_reason": "",
        "result_id": None,
    }
    assert books() == before
    assert Transaction.objects.get(pk=txn.pk).status == "committed"
    record = AuditRecord.objects.get(action=AuditAction.APPROVAL_REQUESTED)
    assert (record.actor_id, record.target_id) == (requester.pk, str(approval.pk))
    assert record.data == {"action": "transaction.reverse", "target_id": str(txn.pk), "reason": "chargeback"}


@THRESHOLD
def test_below_the_threshold_and_other_currencies_reverse_at_once(requester_api):
    small, _s, _d = _big_transfer(99_999)
    assert _request_reversal(requester_api, small).status_code == 201
    source, destination = funded_account(amount=10**9, currency="NGN"), funded_account(amount=0, currency="NGN")
    naira = _transfer(source, destination, 10**9)
    assert _request_reversal(requester_api, naira).status_code == 201
    assert ApprovalRequest.objects.count() == 0


@override_settings(FOUR_EYES_AMOUNT={})
def test_unset_never_needs_an_approval(requester_api):
    txn, _s, _d = _big_transfer(10**8)
    assert _request_reversal(requester_api, txn).status_code == 201


@THRESHOLD
def test_a_second_admin_approves_and_the_reversal_commits_with_the_decision(requester_api, approver_api, approver, requester):
    txn, source, destination = _big_transfer(150_000)
    approval_id = _request_reversal(requester_api, txn).json()["id"]
    response = approver_api.post(f"{BASE}/approvals/{approval_id}/approve", {"reason": "checked the dispute"}, format="json")
    assert response.status_code == 200
    body = response.json()
    reversal = Transaction.objects.get(reverses=txn)
    assert body["status"] == "approved"
    assert body["decided_by"] == str(approver.pk)
    assert body["decision_reason"] == "checked the dispute"
    assert body["result_id"] == str(reversal.pk)
    assert Transaction.objects.get(pk=txn.pk).status == "reversed"
    source.refresh_from_db(), destination.refresh_from_db()
    assert (source.posted, destination.posted) == (150_000, 0)
    reversed_record = AuditRecord.objects.get(action=AuditAction.TRANSACTION_REVERSED)
    assert reversed_record.actor_id == approver.pk
    assert reversed_record.data["approval"] == approval_id
    assert reversed_record.data["requested_by"] == str(requester.pk)
    decision = AuditRecord.objects.get(action=AuditAction.APPROVAL_APPROVED)
    assert decision.data["result_id"] == str(reversal.pk)
    # Decided: neither approving again nor rejecting changes anything.
    before = books()
    for verb in ("approve", "reject"):
        again = approver_api.post(f"{BASE}/approvals/{approval_id}/{verb}", {"reason": "again"}, format="json")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "invalid_state"
    assert books() == before


@THRESHOLD
def test_the_requester_can_never_approve_their_own_request(requester_api):
    txn, _s, _d = _big_transfer()
    approval_id = _request_reversal(requester_api, txn).json()["id"]
    before = books()
    response = requester_api.post(f"{BASE}/approvals/{approval_id}/approve", {"reason": "me"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert books() == before
    assert ApprovalRequest.objects.get().status == "pending"
    assert not AuditRecord.objects.filter(action=AuditAction.APPROVAL_APPROVED).exists()


@THRESHOLD
def test_reject_with_a_reason_leaves_the_transaction_alone(requester_api, approver_api, approver):
    txn, _s, _d = _big_transfer()
    approval_id = _request_reversal(requester_api, txn).json()["id"]
    before = books()
    blank = approver_api.post(f"{BASE}/approvals/{approval_id}/reject", {"reason": " "}, format="json")
    assert blank.status_code == 400
    response = approver_api.post(f"{BASE}/approvals/{approval_id}/reject", {"reason": "no dispute filed"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["decided_by"]) == ("rejected", str(approver.pk))
    assert books() == before
    record = AuditRecord.objects.get(action=AuditAction.APPROVAL_REJECTED)
    assert record.data["reason"] == "no dispute filed"
    # A new request may follow a decided one.
    assert _request_reversal(requester_api, txn).status_code == 202


@THRESHOLD
def test_a_second_pending_request_for_the_same_transaction_is_refused(requester_api, approver_api):
    txn, _s, _d = _big_transfer()
    assert _request_reversal(requester_api, txn).status_code == 202
    again = _request_reversal(approver_api, txn)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_state"
    assert ApprovalRequest.objects.count() == 1


@THRESHOLD
def test_an_approval_whose_reversal_fails_writes_nothing_and_stays_pending(requester_api, approver_api):
    txn, _source, destination = _big_transfer(100_000)
    approval_id = _request_reversal(requester_api, txn).json()["id"]
    # The money left the destination meanwhile: the reversal would overdraw it.
    _transfer(destination, funded_account(amount=0), 60_000)
    before = books()
    audit_before = AuditRecord.objects.count()
    response = approver_api.post(f"{BASE}/approvals/{approval_id}/approve", {"reason": "ok"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_funds"
    assert books() == before
    assert AuditRecord.objects.count() == audit_before
    assert ApprovalRequest.objects.get().status == "pending"


@THRESHOLD
def test_requests_for_impossible_reversals_are_refused_up_front(requester_api):
    txn, _s, _d = _big_transfer()
    txn.status = Transaction.Status.REVERSED
    Transaction.objects.filter(pk=txn.pk).update(status="reversed")
    response = _request_reversal(requester_api, txn)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"
    assert ApprovalRequest.objects.count() == 0


@override_settings(FOUR_EYES_REINSTATE=True)
def test_reinstatement_waits_for_a_second_admin(requester_api, approver_api):
    user = UserFactory(status=User.Status.SUSPENDED, failed_pin_attempts=3)
    response = requester_api.post(f"{BASE}/users/{user.pk}/reinstate", {"reason": "identity verified"}, format="json")
    assert response.status_code == 202
    assert (response.json()["action"], response.json()["target_id"]) == ("user.reinstate", str(user.pk))
    user.refresh_from_db()
    assert (user.status, user.failed_pin_attempts) == ("suspended", 3)
    approve = approver_api.post(f"{BASE}/approvals/{response.json()['id']}/approve", {"reason": "ok"}, format="json")
    assert approve.status_code == 200
    user.refresh_from_db()
    assert (user.status, user.failed_pin_attempts) == ("active", 0)
    assert AuditRecord.objects.filter(action=AuditAction.USER_REINSTATED, target_id=str(user.pk)).count() == 1


def test_reinstatement_without_the_flag_acts_at_once(requester_api):
    user = UserFactory(status=User.Status.SUSPENDED)
    response = requester_api.post(f"{BASE}/users/{user.pk}/reinstate", {"reason": "ok"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "active"


@THRESHOLD
def test_the_list_filters_by_status_newest_first_with_cursor_pages(requester_api, approver_api):
    txns = [_big_transfer()[0] for _ in range(3)]
    ids = [_request_reversal(requester_api, txn).json()["id"] for txn in txns]
    approver_api.post(f"{BASE}/approvals/{ids[0]}/reject", {"reason": "no"}, format="json")
    pending = approver_api.get(f"{BASE}/approvals?status=pending").json()
    assert [item["id"] for item in pending["results"]] == [ids[2], ids[1]]
    first = approver_api.get(f"{BASE}/approvals?page_size=2").json()
    assert [item["id"] for item in first["results"]] == [ids[2], ids[1]]
    second = approver_api.get(first["next"]).json()
    assert [item["id"] for item in second["results"]] == [ids[0]]
    assert second["next"] is None
    bad = approver_api.get(f"{BASE}/approvals?status=maybe")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("path", ["approvals", "approvals/{id}/approve", "approvals/{id}/reject"])
def test_plain_users_are_forbidden(api_client, path):
    user = UserFactory()
    api_client.force_authenticate(user)
    url = f"{BASE}/" + path.format(id="0190b5d0-0000-7000-8000-000000000000")
    response = api_client.get(url) if path == "approvals" else api_client.post(url, {"reason": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
