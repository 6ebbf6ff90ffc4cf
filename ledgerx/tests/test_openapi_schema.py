"""The served OpenAPI schema tells a generated client every answer it can get (ledgerx/api/openapi.py)."""

import importlib
import os
import re
import uuid
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

from ledgerx.api.openapi import OPERATIONS
from ledgerx.exceptions import LedgerXError

EVERYWHERE = {"405", "406", "429", "500", "503"}
# Codes the server answers that the contract's table does not name yet (reported to
# the contract's owners; remove one here when API.md lists it).
NOT_IN_API_MD = {"method_not_allowed", "not_acceptable", "payload_too_large"}


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            yield path, method, op


def _resolve(schema, ref_or_obj):
    if "$ref" not in ref_or_obj:
        return ref_or_obj
    kind, name = ref_or_obj["$ref"].split("/")[-2:]
    return schema["components"][kind][name]


def _codes(schema, response) -> list[str]:
    envelope = _resolve(schema, response["content"]["application/json"]["schema"])
    return envelope["properties"]["error"]["properties"]["code"]["enum"]


def _typed_errors() -> set[type[LedgerXError]]:
    for app in apps.get_app_configs():
        try:
            importlib.import_module(f"{app.name}.exceptions")
        except ModuleNotFoundError:
            pass
    found, todo = set(), [LedgerXError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return found


def test_every_operation_is_in_the_table_and_the_table_has_no_stale_entry(schema):
    assert {op["operationId"] for _, _, op in _operations(schema)} == set(OPERATIONS)


def test_every_operation_declares_the_answers_every_request_can_get(schema):
    for path, method, op in _operations(schema):
        statuses = set(op["responses"])
        assert EVERYWHERE <= statuses, (method, path)
        assert ("413" in statuses) == (method in ("post", "put", "patch")), (method, path)
        assert op["summary"], (method, path)
        for status, response in op["responses"].items():
            headers = response["headers"]
            assert "X-Request-ID" in headers, (method, path, status)
            if status in ("429", "503"):
                assert _resolve(schema, headers["Retry-After"])["schema"]["type"] == "integer"
            if status == "401":
                assert _resolve(schema, headers["WWW-Authenticate"])["schema"]["enum"] == ["Bearer"]
            if status == "201":
                assert _resolve(schema, headers["Location"])["required"] is True
            if int(status) >= 400:
                codes = _codes(schema, response)
                examples = response["content"]["application/json"]["examples"]
                assert set(examples) == set(codes), (method, path, status)
                assert all(f"`{code}`" in response["description"] for code in codes)
            elif "content" in response:
                assert "example" in response["content"]["application/json"], (method, path, status)
        if "requestBody" in op:
            assert "example" in op["requestBody"]["content"]["application/json"], (method, path)
        authenticated = any(op.get("security") or [])
        assert ("401" in statuses) >= authenticated, (method, path)


def test_each_error_status_lists_exactly_the_codes_of_its_typed_errors(schema):
    transfers = schema["paths"]["/api/v1/transfers"]["post"]["responses"]
    assert _codes(schema, transfers["409"]) == [
        "idempotency_in_progress", "account_frozen", "insufficient_funds", "balance_limit"
    ]
    assert _codes(schema, transfers["422"]) == ["idempotency_key_reused"]
    assert "attempts_remaining" in _resolve(schema, transfers["403"]["content"]["application/json"]["schema"])[
        "properties"]["error"]["properties"]
    deposits = schema["paths"]["/api/v1/deposits"]["post"]["responses"]
    assert "same_account" not in _codes(schema, deposits["400"])
    assert "pin_not_set" not in _codes(schema, deposits["403"])
    assert "insufficient_funds" not in _codes(schema, deposits["409"])
    audit = schema["paths"]["/api/v1/admin/audit"]["get"]["responses"]
    assert _codes(schema, audit["400"]) == ["validation_error"]
    freeze = schema["paths"]["/api/v1/admin/accounts/{account_id}/freeze"]["post"]["responses"]
    assert _codes(schema, freeze["403"]) == ["forbidden", "user_suspended"]
    batch = schema["paths"]["/api/v1/batches"]["post"]["responses"]["409"]
    assert "index" in _resolve(schema, batch["content"]["application/json"]["schema"])["properties"]["error"]["properties"]


def test_every_typed_error_is_declared_somewhere_and_named_in_the_contract(schema):
    declared = {
        code
        for _, _, op in _operations(schema)
        for status, response in op["responses"].items()
        if int(status) >= 400
        for code in _codes(schema, response)
    }
    server = {kind.code for kind in _typed_errors()}
    assert server <= declared, server - declared
    api_md = Path(settings.BASE_DIR).parent / "shared" / "API.md"
    if not api_md.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{api_md} is missing: CI lays shared/ beside the checkout")
        pytest.skip("no shared/API.md beside the checkout")
    table = set(re.findall(r"`([a-z_]+)`", api_md.read_text().split("## Errors", 1)[1].split("\n## ", 1)[0]))
    assert declared - table == NOT_IN_API_MD


def test_lists_declare_their_paging_with_bounds(schema):
    lists = [(path, op) for path, method, op in _operations(schema) if OPERATIONS[op["operationId"]].list]
    assert {path for path, _ in lists} >= {"/api/v1/accounts", "/api/v1/accounts/{account_id}/entries"}
    for path, op in lists:
        params = {param["name"]: param for param in op["parameters"]}
        assert params["cursor"]["schema"]["type"] == "string", path
        assert params["page_size"]["schema"] | {} == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}
        assert {"400", "404"} <= set(op["responses"]), path


def test_constraints_the_server_enforces_are_in_the_schema(schema):
    schemas = schema["components"]["schemas"]
    assert schemas["PinSetInputRequest"]["properties"]["pin"]["pattern"] == "^[0-9]{4,6}$"
    assert schemas["TransferInputRequest"]["properties"]["pin"]["pattern"] == "^[0-9]{4,6}$"
    assert schemas["AccountCreateInputRequest"]["properties"]["currency"]["enum"] == sorted(settings.CURRENCIES)
    assert schemas["DepositInputRequest"]["properties"]["amount"] | {} == {
        "type": "integer", "format": "int64", "minimum": 1, "maximum": 10**15
    }
    for name in ("posted", "pending", "available"):
        assert schemas["BalanceOutput"]["properties"][name]["format"] == "int64"
    key = {p["name"]: p for p in schema["paths"]["/api/v1/deposits"]["post"]["parameters"]}["Idempotency-Key"]
    assert key["required"] and key["schema"]["minLength"] == 1 and key["schema"]["maxLength"] == 255
    # A request field with a default is optional, and carries no `default` a generator would make required.
    transfer = schemas["TransferInputRequest"]
    assert not {"description", "hold", "metadata"} & set(transfer["required"])
    assert not any("default" in prop for prop in transfer["properties"].values())


def test_request_strings_declare_the_nul_they_refuse_and_new_passwords_their_policy(schema):
    schemas = schema["components"]["schemas"]
    no_nul = "^[^\\u0000]*$"
    assert schemas["TransferInputRequest"]["properties"]["description"]["pattern"] == no_nul
    assert schemas["RegisterInputRequest"]["properties"]["full_name"]["pattern"] == no_nul
    metadata = schemas["TransferInputRequest"]["properties"]["metadata"]
    assert metadata["maxProperties"] == 20
    assert metadata["propertyNames"] == {"minLength": 1, "maxLength": 64, "pattern": no_nul}
    assert metadata["additionalProperties"] == {"type": "string", "maxLength": 512, "pattern": no_nul}
    # A field with its own pattern or format keeps it.
    assert schemas["TransferInputRequest"]["properties"]["pin"]["pattern"] == "^[0-9]{4,6}$"
    assert "pattern" not in schemas["RegisterInputRequest"]["properties"]["email"]
    for name, field in (("RegisterInputRequest", "password"), ("PasswordChangeInputRequest", "new_password")):
        prop = schemas[name]["properties"][field]
        assert prop["minLength"] == 10 and "commonly used" in prop["description"]
    # Logging in with an old, shorter password stays a schema-valid request (answered 401).
    assert "minLength" not in schemas["LoginInputRequest"]["properties"]["password"] or (
        schemas["LoginInputRequest"]["properties"]["password"]["minLength"] == 1
    )


@pytest.mark.django_db
def test_a_nul_in_a_request_string_is_the_400_the_schema_announces(api_client):
    response = api_client.post(
        "/api/v1/auth/register",
        {"email": "nul@example.com", "password": "Long-enough-pass-1", "full_name": "A\u0000B"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "full_name" in response.json()["error"]["fields"]


# --- the server does what the schema says ---------------------------------------------------


@pytest.fixture
def client_for():
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/accounts", "/api/v1/transactions", "/api/v1/events", "ENTRIES"])
@pytest.mark.parametrize("size", ["0", "201", "abc", "-1", "1.5", "٣"])
def test_an_invalid_page_size_is_a_400_on_every_list(client_for, path, size):
    from accounts.tests.factories import UserFactory
    from ledger.services.customer_accounts import account_open

    user = UserFactory()
    if path == "ENTRIES":
        path = f"/api/v1/accounts/{account_open(actor=user, owner=user, currency='USD').pk}/entries"
    response = client_for(user).get(path, {"page_size": size})
    assert response.status_code == 400, response.content
    assert set(response.json()["error"]["fields"]) == {"page_size"}


@pytest.mark.django_db
def test_a_201_names_what_it_created_and_a_401_names_the_scheme(client_for, api_client):
    from accounts.tests.factories import UserFactory

    client = client_for(UserFactory())
    account = client.post("/api/v1/accounts", {"currency": "USD"}, format="json")
    assert account.status_code == 201 and account["Location"] == f"/api/v1/accounts/{account.json()['id']}"
    key = str(uuid.uuid4())
    body = {"account": account.json()["id"], "amount": 1050}
    first = client.post("/api/v1/deposits", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    replay = client.post("/api/v1/deposits", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first["Location"] == replay["Location"] == f"/api/v1/transactions/{first.json()['id']}"
    anonymous = api_client.get("/api/v1/me")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Bearer"


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["/api/v1/transactions?type=", "/api/v1/transactions?account=", "/api/v1/events?type="])
def test_a_filter_sent_empty_is_a_400_not_no_filter(client_for, query):
    from accounts.tests.factories import UserFactory

    response = client_for(UserFactory()).get(query)
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {query.rsplit("?", 1)[1].rstrip("=")}
