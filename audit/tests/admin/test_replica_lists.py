"""Admin list pages are read-only work: a GET may be served by a replica, an action (POST) never."""

from types import SimpleNamespace
from unittest import mock

import pytest

from audit.tests.admin.conftest import action_post
from ledger.tests.factories import customer_account
from ledgerx.db import replicas

pytestmark = pytest.mark.django_db

URL = "/admin/ledger/ledgeraccount/"
REPLICA = "replica-under-test"


@pytest.fixture
def replica_offered(settings, monkeypatch):
    """A replica is fit for every read; records where each page was rendered (no router in tests,
    so the queries themselves still reach the test database)."""
    settings.REPLICA_ALIASES = [REPLICA]
    monkeypatch.setattr(replicas, "connections", {REPLICA: SimpleNamespace(errors_occurred=False, close=lambda: None)})
    choose = mock.Mock(return_value=REPLICA)
    monkeypatch.setattr(replicas, "replica_choose", choose)
    rendered_in = []
    from django.template.response import SimpleTemplateResponse

    real_render = SimpleTemplateResponse.render

    def render(response):
        rendered_in.append(replicas.current_read_alias())
        return real_render(response)

    monkeypatch.setattr(SimpleTemplateResponse, "render", render)
    return choose, rendered_in


def test_a_list_page_is_rendered_inside_the_replica_scope(superuser_client, admin_user, replica_offered):
    choose, rendered_in = replica_offered
    customer_account()
    response = superuser_client.get(URL)
    assert response.status_code == 200
    choose.assert_called_once_with(admin_user.pk)
    # The page's lazy querysets run while it renders: that happened in the replica's scope.
    assert rendered_in[0] == REPLICA


def test_an_action_post_on_a_list_never_asks_for_a_replica(superuser_client, replica_offered):
    choose, rendered_in = replica_offered
    account = customer_account()
    response = action_post(superuser_client, URL, "freeze_accounts", [account.pk])
    assert response.status_code == 200
    assert choose.call_count == 0
    assert REPLICA not in rendered_in
