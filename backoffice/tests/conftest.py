from audit.tests.admin.conftest import compliance_client, compliance_user, superuser_client  # noqa: F401
from audit.tests.conftest import admin_user  # noqa: F401
