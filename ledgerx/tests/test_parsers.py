"""Request bodies: only UTF-8 JSON of bounded depth is parsed; the rest is 400 before any work."""

import bz2
import json

import pytest

from accounts.models import User
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from audit.models import AuditRecord
from ledger.tests.factories import customer_account
from ledgerx.api.parsers import MAX_DEPTH, json_loads
from transactions.tests.helpers import books

pytestmark = pytest.mark.django_db
LOGIN = "/api/v1/auth/login"
MALFORMED = {"code": "validation_error", "message": "Malformed JSON body."}


def _post(client, path, body: bytes | str, content_type="application/json", **extra):
    body = body.encode() if isinstance(body, str) else body
    return client.generic("POST", path, body, content_type=content_type, **extra)


def _assert_malformed(response):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert {key: error[key] for key in ("code", "message")} == MALFORMED
    assert list(error["fields"]) == ["non_field_errors"]


def test_deeply_nested_array_to_login_is_400_and_nothing_happens(client):
    user = UserFactory()
    _assert_malformed(_post(client, LOGIN, "[" * 5000 + "]" * 5000))
    assert AuditRecord.objects.count() == 0  # no login attempt was made (nor audited)
    assert User.objects.get() == user


def test_deeply_nested_object_to_register_is_400(client):
    _assert_malformed(_post(client, "/api/v1/auth/register", '{"a":' * 3000 + "1" + "}" * 3000))
    assert User.objects.count() == 0 and AuditRecord.objects.count() == 0


def test_deeply_nested_body_to_deposits_moves_nothing(api_client):
    owner = UserFactory()
    customer_account(owner=owner)
    api_client.force_authenticate(owner)
    before = books()
    _assert_malformed(_post(api_client, "/api/v1/deposits", "[" * 5000 + "]" * 5000, HTTP_IDEMPOTENCY_KEY="k"))
    assert books() == before


def _nested(depth: int) -> str:
    return '{"email": "a@example.com", "password": "x", "extra": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def test_nesting_is_capped_at_max_depth(client):
    # The body object is level 1; MAX_DEPTH levels parse (the field is ignored), one more does not.
    assert client.post(LOGIN, _nested(MAX_DEPTH), content_type="application/json").status_code == 401
    _assert_malformed(_post(client, LOGIN, _nested(MAX_DEPTH + 1)))


@pytest.mark.parametrize(
    "charset, body",
    [
        # DRF handed the body to whatever codec the charset named: bz2_codec decompressed it.
        ("bz2_codec", bz2.compress(b'{"email": "a@example.com", "password": "x"}')),
        ("utf-16", '{"email": "a@example.com", "password": "x"}'.encode("utf-16")),
    ],
)
def test_bodies_are_utf8_whatever_the_charset_says(client, charset, body):
    _assert_malformed(_post(client, LOGIN, body, content_type=f"application/json; charset={charset}"))


@pytest.mark.parametrize("charset", ["latin-1", "rot13"])  # rot13, a str-to-str codec, crashed DRF's parser (500)
def test_a_utf8_body_is_read_as_utf8_even_if_labelled_otherwise(client, charset):
    user = UserFactory(email="zoë@example.com")
    body = json.dumps({"email": user.email, "password": DEFAULT_PASSWORD}, ensure_ascii=False).encode()
    response = _post(client, LOGIN, body, content_type=f"application/json; charset={charset}")
    assert response.status_code == 200 and set(response.json()) == {"access", "refresh"}


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity}', b"\xff", "[" * 100_000])
def test_json_loads_raises_only_value_error(text):
    with pytest.raises(ValueError):
        json_loads(text)
