"""No client text the database cannot store (NUL, a lone surrogate) gets past validation.

Each free-text input is sent as raw JSON (so ``\\u0000`` and ``\\ud800`` reach
the parser as escapes, as from a real client) and must answer 400
validation_error naming the field, on PostgreSQL as on SQLite.
"""

import pytest

from accounts.tests.factories import DEFAULT_PASSWORD, AdminFactory, UserFactory
from ledger.tests.factories import customer_account
from ledgerx.text import text_error
from transactions.tests.helpers import PIN, books, funded_account, user_with_pin

BAD = [(r"a\u0000b", "Null characters are not allowed."), (r"\ud800", "Surrogate characters are not allowed: U+D800.")]


@pytest.mark.parametrize(
    "text, message",
    [
        ("plain text, émoji 💸", None),
        ("a\x00b", "Null characters are not allowed."),
        ("\ud800", "Surrogate characters are not allowed: U+D800."),
        ("ok\udfff", "Surrogate characters are not allowed: U+DFFF."),
    ],
)
def test_text_error(text, message):
    assert text_error(text) == message


def _cases():
    register = '{"email": "%s", "password": "%s", "full_name": "%s"}'
    ok_password = "a-long-unusual-passphrase"
    return [
        ("register", "auth/register", register % ("n{}@example.com", ok_password, "Ada"), "email"),
        ("register", "auth/register", register % ("n@example.com", ok_password, "Ada {}"), "full_name"),
        ("register", "auth/register", register % ("n@example.com", ok_password + "{}", "Ada"), "password"),
        ("anonymous", "auth/login", '{"email": "u{}@example.com", "password": "x"}', "email"),
        ("anonymous", "auth/login", '{"email": "u@example.com", "password": "x{}"}', "password"),
        ("anonymous", "auth/refresh", '{"refresh": "x{}"}', "refresh"),
        ("user", "accounts", '{"currency": "USD", "name": "n{}"}', "name"),
        ("user", "deposits", '{"account": "{account}", "amount": 5, "description": "d{}"}', "description"),
        ("user", "me/pin", '{"pin": "48{}", "password": "%s"}' % DEFAULT_PASSWORD, "pin"),
        ("user", "me/password", '{"current_password": "x{}", "new_password": "%s"}' % ("y" * 12), "current_password"),
        ("admin", "admin/accounts/{account}/freeze", '{"reason": "r{}"}', "reason"),
        ("admin", "admin/accounts/{account}/unfreeze", '{"reason": "r{}"}', "reason"),
        ("admin", "admin/transactions/{txn}/reverse", '{"reason": "r{}"}', "reason"),
        ("admin", "admin/users/{user}/suspend", '{"reason": "r{}"}', "reason"),
        ("admin", "admin/users/{user}/reinstate", '{"reason": "r{}"}', "reason"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("bad, message", BAD)
@pytest.mark.parametrize("who, path, body, field", _cases())
def test_free_text_inputs_refuse_unstorable_characters(api_client, who, path, body, field, bad, message):
    from transactions.services.money import transfer_create

    owner = user_with_pin()
    account = funded_account(owner=owner, amount=100)
    txn = transfer_create(
        actor=owner, source=account, destination=customer_account(), amount=1, pin=PIN, idempotency_key="t"
    ).transaction
    if who in ("user", "admin"):
        api_client.force_authenticate(owner if who == "user" else AdminFactory())
    ids = {"{account}": str(account.pk), "{txn}": str(txn.pk), "{user}": str(owner.pk)}
    for placeholder, value in ids.items():
        path, body = path.replace(placeholder, value), body.replace(placeholder, value)
    before = books()
    send = api_client.put if path.startswith("me/") else api_client.post
    response = send(f"/api/v1/{path}", body.replace("{}", bad), content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]["fields"][field]
    assert books() == before


@pytest.mark.django_db
def test_free_text_query_parameters(api_client):
    api_client.force_authenticate(AdminFactory())
    response = api_client.get("/api/v1/admin/audit?target_id=x%00")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"target_id": ["Null characters are not allowed."]}
    # Invalid UTF-8 (a surrogate's bytes) in a query string decodes to U+FFFD, which is storable text.
    response = api_client.get("/api/v1/admin/audit?target_id=x%ED%A0%80")
    assert (response.status_code, response.json()["results"]) == (200, [])
