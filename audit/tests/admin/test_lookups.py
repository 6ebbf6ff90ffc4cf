"""Every registered admin list accepts only its own filters as lookups: no hash oracle by ``__startswith``."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _fields(model):
    return [field.name for field in model._meta.get_fields() if getattr(field, "concrete", False) or field.is_relation]


@pytest.mark.parametrize("model,model_admin", REGISTERED, ids=[model._meta.label for model, _ in REGISTERED])
def test_no_field_of_any_registered_model_is_a_lookup_unless_a_filter_offers_it(model, model_admin, admin_user):
    request = RequestFactory().get("/")
    request.user = admin_user
    for name in _fields(model):
        for lookup in (f"{name}__startswith", f"{name}__regex", f"{name}__gt", f"{name}__contains"):
            assert model_admin.lookup_allowed(lookup, "x", request) is False, (model._meta.label, lookup)
        for related in ("password__startswith", "pin_hash__startswith", "email__startswith"):
            assert model_admin.lookup_allowed(f"{name}__{related}", "x", request) is False, (model._meta.label, name)


def test_the_password_hash_oracle_answers_400(superuser_client):
    url = reverse("admin:accounts_user_changelist")
    for lookup in ("password__startswith", "pin_hash__startswith", "password__regex"):
        response = superuser_client.get(url, {lookup: "pbkdf2"})
        assert response.status_code == 400, lookup
    refused = superuser_client.get(reverse("admin:ledger_ledgeraccount_changelist"), {"owner__password__startswith": "b"})
    assert refused.status_code == 400


def test_the_offered_filters_still_work(superuser_client):
    UserFactory(email="sus@example.com", status="suspended")
    response = superuser_client.get(reverse("admin:accounts_user_changelist"), {"status__exact": "suspended"})
    assert response.status_code == 200
    assert [user.email for user in response.context["cl"].result_list] == ["sus@example.com"]
    assert superuser_client.get(reverse("admin:accounts_user_changelist"), {"is_staff__exact": "1"}).status_code == 200
    pending = superuser_client.get(reverse("admin:approvals_approvalrequest_changelist"), {"status": "pending"})
    assert pending.status_code == 200
