import pytest
from django.contrib.auth.models import Group

from accounts.tests.factories import UserFactory
from audit.compliance import GROUP_NAME


@pytest.fixture
def superuser_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def compliance_user(db):
    user = UserFactory(email="compliance@example.com", is_staff=True)
    user.groups.add(Group.objects.get(name=GROUP_NAME))
    return user


@pytest.fixture
def compliance_client(client, compliance_user):
    client.force_login(compliance_user)
    return client


def action_post(client, url: str, action: str, pks, **extra):
    """POST the changelist's action form (first step), or the confirmation page (with confirm='yes')."""
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0", **extra}
    return client.post(url, data)
