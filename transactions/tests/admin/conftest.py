"""Fixtures for the transactions admin's tests: the back office's own, defined with the admin site (``audit``)."""

from audit.tests.admin.conftest import superuser_client  # noqa: F401
from audit.tests.conftest import admin_user  # noqa: F401
