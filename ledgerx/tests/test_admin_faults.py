"""Admin URLs a prober tries answer their status, and refusals are not logged as errors."""

import logging

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from accounts.tests.factories import AdminFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("object_id", ["1", "not-a-uuid", "0" * 100])
def test_the_view_on_site_shortcut_with_a_malformed_id_is_404(client, object_id):
    client.force_login(AdminFactory())
    client.raise_request_exception = False
    user_type = ContentType.objects.get_for_model(UserFactory._meta.model)
    for content_type_id in (1, user_type.pk):
        response = client.get(f"/admin/r/{content_type_id}/{object_id}/")
        assert response.status_code == 404, (content_type_id, response.status_code)


def test_an_admin_403_is_logged_at_info_without_a_traceback(client, caplog):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_ledgeraccount"))
    client.force_login(viewer)
    with caplog.at_level(logging.DEBUG):
        assert client.get("/admin/accounts/user/").status_code == 403
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert [r for r in caplog.records if r.exc_info] == []
    refused = [r for r in caplog.records if r.name == "ledgerx.errors"]
    assert [(r.levelno, r.getMessage()) for r in refused] == [(logging.INFO, "refused: PermissionDenied")]


def test_an_api_403_is_not_logged_as_an_error(api_client, caplog):
    from rest_framework_simplejwt.tokens import AccessToken

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(UserFactory())}")
    with caplog.at_level(logging.DEBUG):
        assert api_client.get("/api/v1/admin/audit").status_code == 403
    assert [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
